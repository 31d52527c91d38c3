/**
 * `densetrain tune` end to end on a tiny generated dataset: tune.json, run folders, the
 * terminal leaderboard and tune.html; trials in parallel worker processes give the serial
 * numbers bit for bit; a trial whose process is killed fails alone; Ctrl-C then --resume gives
 * the uninterrupted leaderboard; bad options exit 2 naming what is wrong; tune.html in
 * headless chromium (no console errors, charts drawn).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TuneFile } from '../src/experiments/tune.js';
import { train, tune, type TuneEvent } from '../src/index.js';
import type { RunRecord } from '../src/train/types.js';
import { launchChromium, skipBrowser } from './helpers/chromium.js';
import { collect, ensureBuilt, runCli, signalWhenSeen, spawnCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';

let tmp: string;
let data: TinyDataset;
let space: string;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-cli-tune-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
  space = join(tmp, 'space.json');
  writeFileSync(space, JSON.stringify({ lr: { min: 0.005, max: 0.5, log: true }, activation: ['relu', 'tanh'] }));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;
const base = () => ['--data', data.dir, '--layers', `${data.side * data.side},16,${data.classes}`, '--batch-size', '32', '--backend', 'reference'];

/** What must not change between runs of the same trials: status, epochs and every number. */
function trialNumbers(file: TuneFile) {
  return file.trials.map((t) => ({ id: t.id, status: t.status, epochs: t.epochs, config: t.config, val: t.bestValAccuracy, valLoss: t.bestValLoss, test: t.testAccuracy, testLoss: t.testLoss }));
}

describe('densetrain tune', () => {
  let serial: string;

  it('searches with ASHA: tune.json, a run folder per trial, the leaderboard and tune.html', async () => {
    serial = join(tmp, 'serial');
    const r = await runCli(['tune', '--space', space, '--trials', '8', '--epochs', '6', '--reduction', '2', '--out', serial, ...base()]);
    expect(r.stderr).not.toMatch(/failed/);
    expect(r.code).toBe(0);
    const file = readJson<TuneFile>(join(serial, 'tune.json'));
    expect(file.rungs).toEqual([1, 2, 4]);
    expect(file.interrupted).toBe(false);
    expect(file.trials).toHaveLength(8);
    const pruned = file.trials.filter((t) => t.status === 'pruned');
    expect(pruned.length).toBeGreaterThan(0);
    for (const t of file.trials) {
      expect(['completed', 'pruned']).toContain(t.status);
      const record = readJson<RunRecord>(join(serial, t.runDir, 'metrics.json'));
      expect(record.epochs).toHaveLength(t.epochs);
      expect(Math.max(...record.epochs.map((e) => e.valAccuracy!))).toBe(t.bestValAccuracy);
      // Ranked by the kept weights' validation accuracy: the epoch whose weights the run keeps.
      expect(record.epochs.find((e) => e.epoch === record.bestEpoch)!.valAccuracy).toBe(t.keptValAccuracy);
      expect(record.test!.accuracy).toBe(t.testAccuracy);
      expect(existsSync(join(serial, t.runDir, 'report.html'))).toBe(true);
      expect(existsSync(join(serial, t.runDir, 'INCOMPLETE'))).toBe(false);
      if (t.status === 'pruned') {
        // Stopped at a rung, the run folder keeps its curves and says where it stopped.
        expect(file.rungs).toContain(t.epochs);
        expect(t.rungs.at(-1)).toMatchObject({ epoch: t.epochs, decision: 'prune' });
        expect(record.stopMessage).toMatch(new RegExp(`pruned by ASHA after epoch ${t.epochs}`));
      } else expect(t.epochs).toBe(6);
    }
    const vals = file.leaderboard.map((id) => file.trials.find((t) => t.id === id)!.keptValAccuracy!);
    expect(vals).toEqual([...vals].sort((a, b) => b - a));
    // The terminal: the leaderboard in order, and the count of pruned trials.
    const lines = r.stdout.split('\n').filter((l) => /^\d+\s+t\d{3}\s/.test(l));
    expect(lines.map((l) => l.split(/\s+/)[1])).toEqual(file.leaderboard);
    expect(r.stdout).toContain(`pruned ${pruned.length}`);
    const html = readFileSync(join(serial, 'tune.html'), 'utf8');
    expect(html).toContain('1st');
    expect(html).toMatch(/<figure class="chart" id="chart-tune-curves"/);
    expect(html).toMatch(/id="chart-tune-param-lr"/);
    expect(html).toMatch(/id="chart-tune-param-activation"/);
    for (const t of file.trials) expect(html).toContain(`href="${t.runDir}/report.html"`);
  }, 180_000);

  it('runs trials in parallel processes with the same numbers as one at a time', async () => {
    const one = join(tmp, 'p1');
    const two = join(tmp, 'p2');
    const args = ['tune', '--space', space, '--trials', '4', '--epochs', '3', '--scheduler', 'none', ...base()];
    // Thread counts differ too (1 per worker against the default), native when available.
    const [a, b] = await Promise.all([
      runCli([...args, '--out', one, '--parallel', '1'].filter((x) => x !== 'reference' && x !== '--backend')),
      runCli([...args, '--out', two, '--parallel', '2'].filter((x) => x !== 'reference' && x !== '--backend')),
    ]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/trials 2 at once, each in its own process with 1 native thread/);
    const fa = readJson<TuneFile>(join(one, 'tune.json'));
    const fb = readJson<TuneFile>(join(two, 'tune.json'));
    expect(trialNumbers(fb)).toEqual(trialNumbers(fa));
    for (const t of fa.trials) {
      const ra = readJson<RunRecord>(join(one, t.runDir, 'metrics.json'));
      const rb = readJson<RunRecord>(join(two, t.runDir, 'metrics.json'));
      expect(rb.epochs.map((e) => [e.trainLoss, e.valLoss])).toEqual(ra.epochs.map((e) => [e.trainLoss, e.valLoss]));
    }
  }, 180_000);

  it('a trial whose process dies fails alone; the others finish on fresh workers', async () => {
    const out = join(tmp, 'crash');
    const grid = join(tmp, 'grid.json');
    writeFileSync(grid, JSON.stringify({ lr: [0.01, 0.02, 0.05] }));
    const child = spawnCli(['tune', '--space', grid, '--strategy', 'grid', '--scheduler', 'none', '--epochs', '300', '--parallel', '2', '--quiet', '--out', out, ...base()]);
    const done = collect(child, 240_000);
    // Kill the process running t001 (its pid is in the trial's INCOMPLETE marker), as an OOM killer would.
    const marker = join(out, 'trials', 't001', 'INCOMPLETE');
    let killed = 0;
    for (let i = 0; i < 600 && killed === 0; i++) {
      await new Promise((r) => setTimeout(r, 25));
      if (!existsSync(marker)) continue;
      const pid = Number(/process (\d+)/.exec(readFileSync(marker, 'utf8'))?.[1]);
      if (pid && pid !== child.pid) {
        process.kill(pid, 'SIGKILL');
        killed = pid;
      }
    }
    expect(killed).toBeGreaterThan(0);
    const r = await done;
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/trial t001 failed: the trial's process was killed by SIGKILL/);
    const file = readJson<TuneFile>(join(out, 'tune.json'));
    expect(file.trials.map((t) => t.status)).toEqual(['failed', 'completed', 'completed']);
    expect(file.trials[0]!.error).toMatch(/killed by SIGKILL/);
    expect(file.leaderboard).not.toContain('t001');
    expect(existsSync(join(out, 'tune.html'))).toBe(true);
  }, 240_000);

  it('Ctrl-C checkpoints the running trial and exits 130; --resume finishes with the uninterrupted leaderboard', async () => {
    const out = join(tmp, 'cut');
    const args = ['tune', '--space', space, '--trials', '8', '--epochs', '6', '--reduction', '2', '--quiet', ...base()];
    // Interrupt the first trial after t001 that gets past the rungs at epochs 1 and 2.
    const child = spawnCli([...args, '--out', out]);
    const sent = signalWhenSeen(child, /t00[2-8] epoch 3\/6/);
    const first = await collect(child, 180_000);
    expect(sent()).toBe(true);
    expect(first.code).toBe(130);
    expect(first.stderr).toMatch(/continue with: densetrain tune --resume/);
    const cut = readJson<TuneFile>(join(out, 'tune.json'));
    expect(cut.interrupted).toBe(true);
    const stopped = cut.trials.find((t) => t.status === 'interrupted');
    expect(stopped).toBeDefined();
    expect(existsSync(join(out, stopped!.runDir, 'checkpoint.safetensors'))).toBe(true);
    const later = await runCli(['tune', '--resume', out, '--quiet']);
    expect(later.code, later.stderr).toBe(0);
    expect(later.stderr).toContain(`${stopped!.id} resumes after epoch`);
    const resumed = readJson<TuneFile>(join(out, 'tune.json'));
    const whole = readJson<TuneFile>(join(serial, 'tune.json'));
    expect(trialNumbers(resumed)).toEqual(trialNumbers(whole));
    expect(resumed.leaderboard).toEqual(whole.leaderboard);
    expect(resumed.asha.map((e) => [e.trial, e.epoch, e.decision])).toEqual(whole.asha.map((e) => [e.trial, e.epoch, e.decision]));
  }, 240_000);

  it('--repeats: completed trials get their other seeds, mean ± std in tune.json, the table and tune.html', async () => {
    const out = join(tmp, 'repeats');
    const r = await runCli(['tune', '--space', space, '--trials', '4', '--epochs', '4', '--reduction', '2', '--repeats', '2', '--parallel', '2', '--quiet', '--out', out, ...base()]);
    expect(r.code, r.stderr).toBe(0);
    const file = readJson<TuneFile>(join(out, 'tune.json'));
    const completed = file.trials.filter((t) => t.status === 'completed');
    expect(completed.length).toBeGreaterThan(0);
    for (const t of completed) {
      expect(t.repeats!.map((x) => x.status)).toEqual(['completed', 'completed']);
      const records = t.repeats!.map((x) => readJson<RunRecord>(join(out, x.runDir, 'metrics.json')));
      expect(records.map((rec) => rec.config.seed)).toEqual([t.config.seed, t.config.seed + 1]);
      const accs = records.map((rec) => rec.test!.accuracy);
      expect(t.stats!.testAccuracy.mean).toBeCloseTo((accs[0]! + accs[1]!) / 2, 12);
    }
    expect(r.stdout).toContain('val acc (mean ± std)');
    expect(readFileSync(join(out, 'tune.html'), 'utf8')).toMatch(/n = 2 of 2 seeds/);
  }, 180_000);

  it('SIGTERM stops the same way with exit 143', async () => {
    const out = join(tmp, 'term');
    const child = spawnCli(['tune', '--space', space, '--trials', '2', '--epochs', '200', '--scheduler', 'none', '--quiet', '--out', out, ...base()]);
    const sent = signalWhenSeen(child, /t001 epoch 2\//, 'SIGTERM');
    const r = await collect(child, 120_000);
    expect(sent()).toBe(true);
    expect(r.code).toBe(143);
    expect(readJson<TuneFile>(join(out, 'tune.json')).trials.map((t) => t.status)).toEqual(['interrupted', 'pending']);
  }, 120_000);

  it.each([
    [['--space', 'SPACE', '--trials', '2', '--lrate', '0.1'], /unknown option '--lrate' \(did you mean --lr\?\)/],
    [['--trials', '2'], /tune needs --space/],
    [['--space', 'BAD', '--trials', '2'], /bad\.json: "lr" has min 0\.5 > max 0\.1/],
    [['--space', 'SPACE', '--trials', '0'], /--trials must be an integer >= 1/],
    [['--space', 'SPACE', '--trials', '2', '--strategy', 'bayes'], /--strategy must be one of random, grid/],
    [['--space', 'SPACE', '--strategy', 'grid'], /"lr" is a range: the grid strategy needs its "steps"/],
    [['--space', 'SPACE', '--trials', '2', '--parallel', 'many'], /--parallel must be an integer >= 1/],
    [['--space', 'SPACE', '--trials', '2', '--val-split', '0'], /tune ranks and prunes trials on the validation split only/],
    [['--space', 'SPACE', '--trials', '2', '--epochs', '1'], /--min-epochs 1 leaves ASHA no rung below 1 epochs/],
    [['--space', 'WIDE', '--trials', '2'], /wide\.json: "layers" starts with 784 inputs but the data has 64 pixels/],
    [['--resume', 'NOWHERE'], /no tune\.json there/],
  ])('refuses %j with exit 2', async (args, message) => {
    writeFileSync(join(tmp, 'bad.json'), JSON.stringify({ lr: { min: 0.5, max: 0.1 } }));
    writeFileSync(join(tmp, 'wide.json'), JSON.stringify({ layers: ['784,16,10'] }));
    const mapped = args.map((a) => (a === 'SPACE' ? space : a === 'BAD' ? join(tmp, 'bad.json') : a === 'WIDE' ? join(tmp, 'wide.json') : a === 'NOWHERE' ? join(tmp, 'nowhere') : a));
    const r = await runCli(['tune', ...mapped, '--data', data.dir, '--layers', `${data.side * data.side},16,${data.classes}`, '--out', join(tmp, 'refused')].filter((a, i, all) => !(args[0] === '--resume' && (a === '--data' || all[i - 1] === '--data' || a === '--layers' || all[i - 1] === '--layers' || a === '--out' || all[i - 1] === '--out'))));
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect(existsSync(join(tmp, 'refused', 'trials'))).toBe(false);
  }, 60_000);

  it.skipIf(skipBrowser())('tune.html in headless chromium: no console errors, every chart drawn', async () => {
    const browser = await launchChromium();
    try {
      const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
      const errors: string[] = [];
      page.on('console', (m) => {
        if (m.type() === 'error' || m.type() === 'warning') errors.push(m.text());
      });
      page.on('pageerror', (e) => errors.push(e.message));
      await page.goto(pathToFileURL(join(serial, 'tune.html')).href, { waitUntil: 'load' });
      const charts = await page.evaluate(() =>
        Array.from(document.querySelectorAll('figure.chart')).map((fig) => {
          const marks = Array.from(fig.querySelectorAll('svg .role-mark path')) as SVGGraphicsElement[];
          return { name: fig.getAttribute('data-chart'), drawn: marks.filter((m) => m.getBBox().width > 0 || m.getBBox().height > 0).length };
        }),
      );
      expect(errors).toEqual([]);
      expect(charts.map((c) => c.name)).toEqual(['tune-curves', 'tune-param-lr', 'tune-param-activation']);
      for (const c of charts) expect(c.drawn, c.name!).toBeGreaterThan(0);
      const rows = await page.locator('table.trials tbody tr').count();
      expect(rows).toBe(8);
      expect(await page.locator('tr.podium').count()).toBe(3);
    } finally {
      await browser.close();
    }
  }, 60_000);
});

describe('tune() from the library', () => {
  it('train() awaits a promise from onEpoch before the next epoch (with metrics.jsonl on): a late stop takes effect at that epoch', async () => {
    const controller = new AbortController();
    const { record, model } = await train(
      { data: data.dir, layers: [data.side * data.side, 16, data.classes], batchSize: 32, epochs: 5, backend: 'reference' },
      {
        outDir: join(tmp, 'await-epoch'),
        signal: controller.signal,
        // The decision arrives after a timer, long after train() would have started epoch 2 if it did not wait.
        onEpoch: (e) => new Promise<void>((resolve) => setTimeout(() => {
          if (e.epoch === 1) controller.abort();
          resolve();
        }, 100)),
      },
    );
    model.dispose();
    expect(record.epochs).toHaveLength(1);
    expect(record.stopReason).toBe('interrupted');
  }, 60_000);

  it('returns the leaderboard, reports each trial through onTrial, writes the same tune.json', async () => {
    const outDir = join(tmp, 'library');
    const events: TuneEvent['type'][] = [];
    const ids = new Set<string>();
    const result = await tune(
      { lr: [0.01, 0.05, 0.2] },
      { outDir, strategy: 'grid', base: { data: data.dir, layers: [data.side * data.side, 16, data.classes], batchSize: 32, epochs: 4, backend: 'reference' }, reduction: 2 },
      {
        onTrial: (e) => {
          if (e.type !== 'batch') events.push(e.type);
          ids.add(e.trial.id);
        },
      },
    );
    expect([...ids]).toEqual(['t001', 't002', 't003']);
    expect(events.filter((e) => e === 'start')).toHaveLength(3);
    expect(events.filter((e) => e === 'end')).toHaveLength(3);
    const file = readJson<TuneFile>(join(outDir, 'tune.json'));
    expect(result.leaderboard.map((t) => t.id)).toEqual(file.leaderboard);
    expect(result.leaderboard[0]!.keptValAccuracy).toBe(Math.max(...file.trials.map((t) => t.keptValAccuracy!)));
    expect(events.filter((e) => e === 'epoch').length).toBe(file.trials.reduce((a, t) => a + t.epochs, 0));
  }, 60_000);
});
