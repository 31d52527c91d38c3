/**
 * --repeats and --parallel on compare and sweep: each configuration trained with seeds seed,
 * seed+1, ...; mean ± std in compare.json / sweep.json equal to the statistics of the seeds'
 * own metrics.json; a diverged seed counted and not averaged; the spread chart drawn; runs in
 * parallel worker processes give the serial numbers bit for bit; an interrupted sweep resumed
 * with --resume ends with the uninterrupted sweep's numbers.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunRecord } from '../src/train/types.js';
import { collect, ensureBuilt, runCli, signalWhenSeen, spawnCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-cli-repeats-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

interface SpreadJson {
  n: number;
  mean: number | null;
  std: number | null;
  min: number | null;
  max: number | null;
}
interface RunJson {
  label: string;
  status: string;
  folder: string;
  stats: { repeats: number; diverged: number; testAccuracy: SpreadJson; bestValAccuracy: SpreadJson; testLoss: SpreadJson; preluSlopes: SpreadJson[] | null };
  repeats: { seed: number; folder: string; status: string; testAccuracy: number | null; report: string | null; preluSlopes: number[] | null }[];
}

function meanStd(values: number[]): { mean: number; std: number } {
  const mean = values.reduce((a, v) => a + v, 0) / values.length;
  return { mean, std: Math.sqrt(values.reduce((a, v) => a + (v - mean) ** 2, 0) / (values.length - 1)) };
}

describe('--repeats', () => {
  it('compare: every seed in its own folder; mean ± std of the seeds, PReLU slopes per layer; the spread chart drawn', async () => {
    const out = join(tmp, 'prelu');
    const r = await runCli(['compare', '--data', data.dir, '--layers', '64,16,8,10', '--batch-size', '16', '--activation', 'relu,prelu', '--epochs', '2', '--seed', '5', '--repeats', '3', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const json = readJson<{ repeats: number; runs: RunJson[] }>(join(out, 'compare.json'));
    expect(json.repeats).toBe(3);
    for (const run of json.runs) {
      expect(run.repeats.map((x) => x.seed)).toEqual([5, 6, 7]);
      const records = run.repeats.map((x) => readJson<RunRecord>(join(out, x.folder, 'metrics.json')));
      expect(run.repeats.map((x) => x.folder)).toEqual([5, 6, 7].map((s) => `activation-${run.label}/seed-${s}`));
      records.forEach((rec, i) => expect(rec.config.seed).toBe(5 + i));
      const accs = records.map((rec) => rec.test!.accuracy);
      expect(new Set(records.map((rec) => rec.test!.loss)).size, 'different seeds give different runs').toBe(3);
      const { mean, std } = meanStd(accs);
      expect(run.stats.testAccuracy.n).toBe(3);
      expect(run.stats.testAccuracy.mean).toBeCloseTo(mean, 12);
      expect(run.stats.testAccuracy.std).toBeCloseTo(std, 12);
      expect([run.stats.testAccuracy.min, run.stats.testAccuracy.max]).toEqual([Math.min(...accs), Math.max(...accs)]);
      expect(run.stats.testLoss.mean).toBeCloseTo(meanStd(records.map((rec) => rec.test!.loss)).mean, 12);
      for (const x of run.repeats) expect(existsSync(join(out, x.report!))).toBe(true);
      if (run.label === 'prelu') {
        const slopes = records.map((rec) => rec.epochs.at(-1)!.preluSlopes!);
        expect(run.stats.preluSlopes).toHaveLength(2);
        for (const layer of [0, 1]) expect(run.stats.preluSlopes![layer]!.mean).toBeCloseTo(meanStd(slopes.map((s) => s[layer]!)).mean, 12);
      } else expect(run.stats.preluSlopes).toBeNull();
    }
    // The terminal table: mean ± std and the slopes.
    const prelu = json.runs[1]!.stats.testAccuracy;
    expect(r.stdout).toContain(`${(prelu.mean! * 100).toFixed(2)} ± ${(prelu.std! * 100).toFixed(2)}%`);
    expect(r.stdout).toMatch(/layer 1: -?[\d.]+ ± [\d.]+; layer 2: -?[\d.]+ ± [\d.]+/);
    const html = readFileSync(join(out, 'compare.html'), 'utf8');
    expect(html).toContain('Repeats: 3 seeds per configuration');
    const svg = /<figure class="chart" id="chart-repeats-test-accuracy"[^>]*>(<svg[\s\S]*?<\/svg>)/.exec(html)![1]!;
    // 6 seed points + 2 means, and the two error bars.
    expect(svg.match(/aria-roledescription="point"/g)!.length).toBe(8);
    expect(svg.match(/aria-roledescription="rule mark"/g)!.length).toBe(2);
    expect(html).toContain('href="activation-prelu/seed-7/report.html"');
  }, 120_000);

  it('compare with one configuration and --repeats (the PReLU study\'s form)', async () => {
    const out = join(tmp, 'one');
    const r = await runCli(['compare', '--data', data.dir, '--layers', '64,16,10', '--batch-size', '16', '--activation', 'prelu', '--epochs', '1', '--repeats', '2', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const json = readJson<{ runs: RunJson[] }>(join(out, 'compare.json'));
    expect(json.runs.map((x) => x.label)).toEqual(['layers=64,16,10 activation=prelu batch-size=16']); // every option given but data, seed, kernels, epochs
    expect(json.runs[0]!.stats.preluSlopes).toHaveLength(1);
    expect(json.runs[0]!.stats.preluSlopes![0]!.n).toBe(2);
  }, 60_000);

  it('sweep: a diverged seed is counted and shown, never averaged in', async () => {
    const out = join(tmp, 'lr');
    const r = await runCli(['sweep', '--param', 'lr', '--values', '1e6,0.1', '--data', data.dir, '--layers', '64,16,10', '--batch-size', '16', '--epochs', '1', '--repeats', '2', '--out', out]);
    expect(r.code, r.stderr).toBe(0);
    const json = readJson<{ runs: (RunJson & { value: number })[] }>(join(out, 'sweep.json'));
    const [ok, bad] = json.runs;
    expect(ok!.value).toBe(0.1);
    expect(ok!.stats.testAccuracy.n).toBe(2);
    expect(bad!.status).toBe('diverged');
    expect(bad!.repeats.map((x) => x.status)).toEqual(['diverged', 'diverged']);
    expect(bad!.stats.diverged).toBe(2);
    expect(bad!.stats.testAccuracy).toEqual({ n: 0, mean: null, std: null, min: null, max: null });
    expect(r.stdout).toMatch(/│ +1e6 +│ +0\/2 +│ +– +│ +– +│ +– +│ +– +│ +2 +│ diverged/);
  }, 120_000);
});

describe('--parallel', () => {
  it('compare and sweep in 2 worker processes give the serial numbers bit for bit', async () => {
    const args = (out: string, parallel: string) => ['sweep', '--param', 'lr', '--values', '0.01,0.05,0.1,0.2', '--data', data.dir, '--layers', '64,16,10', '--batch-size', '16', '--epochs', '2', '--repeats', '2', '--parallel', parallel, '--quiet', '--out', out];
    const one = join(tmp, 'serial');
    const two = join(tmp, 'parallel');
    const [a, b] = await Promise.all([runCli(args(one, '1')), runCli(args(two, '2'))]);
    expect(a.code, a.stderr).toBe(0);
    expect(b.code, b.stderr).toBe(0);
    expect(b.stdout).toMatch(/runs: 8 \(4 configurations x 2 seeds\), 2 at once, each in its own process/);
    const ja = readJson<{ runs: RunJson[] }>(join(one, 'sweep.json'));
    const jb = readJson<{ runs: RunJson[] }>(join(two, 'sweep.json'));
    expect(jb.runs.map((x) => x.stats)).toEqual(ja.runs.map((x) => x.stats));
    for (const run of ja.runs) {
      for (const rep of run.repeats) {
        const ra = readJson<RunRecord>(join(one, rep.folder, 'metrics.json'));
        const rb = readJson<RunRecord>(join(two, rep.folder, 'metrics.json'));
        expect(rb.epochs.map((e) => [e.trainLoss, e.valLoss, e.valAccuracy])).toEqual(ra.epochs.map((e) => [e.trainLoss, e.valLoss, e.valAccuracy]));
        expect(rb.test).toEqual(ra.test);
      }
    }
  }, 180_000);

  it('refuses a bad --repeats or --parallel with exit 2', async () => {
    for (const [flag, value] of [['--repeats', '0'], ['--parallel', 'x'], ['--repeats', '1.5']] as const) {
      const r = await runCli(['compare', '--data', data.dir, '--layers', '64,16,10', '--activation', 'relu,tanh', flag, value, '--out', join(tmp, 'no')]);
      expect(r.code).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${flag} must be an integer >= 1`));
    }
  }, 60_000);
});

describe('--resume', () => {
  it('an interrupted sweep (Ctrl-C, exit 130) continues with --resume to the uninterrupted results', async () => {
    const args = ['sweep', '--param', 'lr', '--values', '0.05,0.1', '--data', data.dir, '--layers', '64,16,10', '--batch-size', '4', '--epochs', '12', '--patience', '0', '--repeats', '2', '--quiet'];
    const whole = join(tmp, 'whole');
    const cut = join(tmp, 'cut');
    const child = spawnCli([...args, '--out', cut]);
    // Stop in the second run (lr 0.05, seed 2).
    const sent = signalWhenSeen(child, /epoch +3\/12[\s\S]*epoch +3\/12/);
    const [first, full] = await Promise.all([collect(child, 120_000), runCli([...args, '--out', whole], { timeoutMs: 120_000 })]);
    expect(sent()).toBe(true);
    expect(first.code, first.stderr).toBe(130);
    expect(first.stderr).toContain(`continue with: densetrain sweep --resume ${cut}`);
    expect(full.code, full.stderr).toBe(0);
    const partial = readJson<{ interrupted: boolean; runs: RunJson[] }>(join(cut, 'sweep.json'));
    expect(partial.interrupted).toBe(true);
    expect(partial.runs[0]!.repeats.map((r) => r.status)).toEqual(['completed', 'interrupted']);
    expect(partial.runs[1]!.repeats.map((r) => r.status)).toEqual(['not run', 'not run']);
    const again = await runCli(['sweep', '--resume', cut, '--quiet']);
    expect(again.code, again.stderr).toBe(0);
    // Only the unfinished runs trained: 3 of 4.
    expect(again.stdout.match(/^\[\d\/3\] /gm)).toHaveLength(3);
    const a = readJson<{ runs: RunJson[] }>(join(cut, 'sweep.json'));
    const b = readJson<{ runs: RunJson[] }>(join(whole, 'sweep.json'));
    expect(a.runs.map((r) => r.stats)).toEqual(b.runs.map((r) => r.stats));
    for (const run of b.runs) {
      for (const rep of run.repeats) {
        expect(readJson<RunRecord>(join(cut, rep.folder, 'metrics.json')).epochs.map((e) => e.valLoss)).toEqual(
          readJson<RunRecord>(join(whole, rep.folder, 'metrics.json')).epochs.map((e) => e.valLoss),
        );
      }
    }
    const refused = await runCli(['sweep', '--resume', cut, '--lr', '0.1']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/--resume continues with the settings in its series\.json; leave out --lr/);
    const notSweep = await runCli(['compare', '--resume', cut]);
    expect(notSweep.code).toBe(2);
    expect(notSweep.stderr).toMatch(/is not a densetrain compare/);
  }, 240_000);
});
