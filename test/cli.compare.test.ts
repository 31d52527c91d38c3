/**
 * `densetrain compare` end to end on a tiny generated dataset: one run folder per activation
 * (each with its own finished report), compare.html linking them with drawn charts and a row
 * per run, compare.json, the terminal table; several --config files; bad options exit 2.
 */
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { Io } from '../src/cli/io.js';
import type { RunRecord } from '../src/train/types.js';
import { collect, ensureBuilt, runCli, signalWhenSeen, spawnCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-cli-compare-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

/** Non-empty path data of marks with the given role description, by aria-label. */
function drawn(svg: string, role: string): string[] {
  const re = new RegExp(`<path aria-label="([^"]*)"[^>]*aria-roledescription="${role}"[^>]*\\sd="M[^"]+"`, 'g');
  return [...svg.matchAll(re)].map((m) => m[1]!);
}

function chartSvg(html: string, name: string): string {
  const m = new RegExp(`<figure class="chart" id="chart-${name}"[^>]*>(<svg[\\s\\S]*?</svg>)`).exec(html);
  expect(m, `chart ${name}`).not.toBeNull();
  return m![1]!;
}

const TINY = () => ['--data', data.dir, '--layers', '64,16,10', '--batch-size', '16'];

describe('densetrain compare', () => {
  it('trains each activation into its own folder and writes compare.html linking them', async () => {
    const out = join(tmp, 'act');
    const result = await runCli(['compare', ...TINY(), '--activation', 'relu,tanh,sigmoid', '--epochs', '2', '--out', out], { cwd: tmp });
    expect(result.code, result.stderr).toBe(0);

    const activations = ['relu', 'tanh', 'sigmoid'];
    const records = activations.map((a) => {
      const dir = join(out, `activation-${a}`);
      for (const f of ['metrics.json', 'model.safetensors', 'report.html']) expect(existsSync(join(dir, f)), `${a}/${f}`).toBe(true);
      expect(existsSync(join(dir, 'INCOMPLETE')), `${a} finished`).toBe(false);
      return readJson<RunRecord>(join(dir, 'metrics.json'));
    });
    // Same data, split and seed; only the activation differs; the shared flags reached every run.
    records.forEach((r, i) => {
      expect(r.config.activation).toBe(activations[i]);
      expect(r.config.epochs).toBe(2);
      expect(r.config.layers).toEqual([64, 16, 10]);
      expect(r.config.seed).toBe(records[0]!.config.seed);
      expect(r.dataset).toEqual(records[0]!.dataset);
      expect(r.epochs).toHaveLength(2);
    });

    const html = readFileSync(join(out, 'compare.html'), 'utf8');
    for (const a of activations) {
      expect(html).toContain(`href="activation-${a}/report.html"`);
      expect(html).toMatch(new RegExp(`<tr class="completed" data-run="${a}" data-status="completed">`));
    }
    const testCells = records.map((r) => `${(r.test!.accuracy * 100).toFixed(2)}%`);
    for (const cell of testCells) expect(html).toContain(cell);
    for (const metric of ['loss', 'accuracy']) {
      const lines = drawn(chartSvg(html, `compare-${metric}`), 'line mark');
      for (const a of activations) {
        expect(lines.filter((l) => l.includes(`run: ${a};`)), `${metric} ${a}`).toHaveLength(2); // train + validation
      }
    }
    expect(drawn(chartSvg(html, 'per-class'), 'point')).toHaveLength(3 * data.classes);

    const summary = readJson<{ varied: string; runs: { label: string; status: string; testAccuracy: number; report: string }[] }>(join(out, 'compare.json'));
    expect(summary.varied).toBe('--activation');
    expect(summary.runs.map((r) => [r.label, r.status, r.report])).toEqual(activations.map((a) => [a, 'completed', `activation-${a}/report.html`]));
    expect(summary.runs.map((r) => r.testAccuracy)).toEqual(records.map((r) => r.test!.accuracy));

    // The terminal table: one row per run with its test accuracy.
    activations.forEach((a, i) => {
      expect(result.stdout).toMatch(new RegExp(`│ ${a} +│ +[\\d.]+% +│ +${testCells[i]!.replace('.', '\\.')} +│ +[\\d.]+ +│ +2/2 +│ +[\\d.]+ +│ +completed`));
    });
    expect(result.stdout).toContain(`comparison: ${join(out, 'compare.html')}`);

    // The same folder again is refused (exit 2) and changes nothing.
    const again = await runCli(['compare', ...TINY(), '--activation', 'relu,tanh', '--epochs', '1', '--out', out], { cwd: tmp });
    expect(again.code).toBe(2);
    expect(again.stderr).toMatch(/--out .* already holds/);
  });

  it('one run per --config file, flags applying to each', async () => {
    const a = join(tmp, 'small.json');
    const b = join(tmp, 'wide.json');
    writeFileSync(a, JSON.stringify({ layers: [64, 8, 10], epochs: 5 }));
    writeFileSync(b, JSON.stringify({ layers: [64, 32, 10], optimizer: 'adam', lr: 0.01 }));
    const out = join(tmp, 'configs');
    const result = await runCli(
      ['compare', '--data', data.dir, '--batch-size', '16', '--config', a, '--config', b, '--epochs', '1', '--out', out],
      { cwd: tmp },
    );
    expect(result.code, result.stderr).toBe(0);
    const small = readJson<RunRecord>(join(out, 'small', 'metrics.json'));
    const wide = readJson<RunRecord>(join(out, 'wide', 'metrics.json'));
    expect(small.config.layers).toEqual([64, 8, 10]);
    expect(small.config.epochs).toBe(1); // the flag beats the file
    expect(wide.config.optimizer).toBe('adam');
    expect(wide.config.lr).toBe(0.01);
    const html = readFileSync(join(out, 'compare.html'), 'utf8');
    expect(html).toContain('href="small/report.html"');
    expect(html).toContain('href="wide/report.html"');
    expect(html).toMatch(/<table class="grid diff">[\s\S]*--layers[\s\S]*--optimizer/);
  });
});

describe('densetrain compare: Ctrl-C', () => {
  it('stops the current run (checkpoint kept), skips the rest, writes the comparison so far, exits 130', async () => {
    const out = join(tmp, 'interrupted');
    const child = spawnCli(
      ['compare', ...TINY(), '--batch-size', '4', '--activation', 'relu,tanh', '--epochs', '100000', '--patience', '0', '--out', out],
      { cwd: tmp },
    );
    const sent = signalWhenSeen(child, /epoch +2\/100000/);
    const result = await collect(child);
    expect(sent(), `never saw epoch 2: ${result.stderr}`).toBe(true);
    expect(result.code, result.stderr).toBe(130);
    expect(existsSync(join(out, 'activation-relu', 'checkpoint.safetensors'))).toBe(true);
    expect(existsSync(join(out, 'activation-relu', 'INCOMPLETE'))).toBe(true);
    expect(existsSync(join(out, 'activation-tanh')), 'the second run never started').toBe(false);
    const html = readFileSync(join(out, 'compare.html'), 'utf8');
    expect(html).toMatch(/data-run="relu" data-status="interrupted"/);
    expect(html).toMatch(/data-run="tanh" data-status="not run"/);
    expect(readJson<{ interrupted: boolean }>(join(out, 'compare.json')).interrupted).toBe(true);
  });
});

interface Outcome {
  code: number;
  stderr: string;
}

async function inProcess(args: string[]): Promise<Outcome> {
  const err: string[] = [];
  const io: Io = { out: () => {}, err: (l = '') => void err.push(l), tty: false, stderr: process.stderr };
  const code = await main(args, io);
  return { code, stderr: err.join('\n') };
}

describe('densetrain compare: bad options exit 2 naming the option, before anything is written', () => {
  const cases: [string, string[], RegExp][] = [
    ['nothing to compare', ['--activation', 'relu'], /compare needs several configurations/],
    ['a single --config', ['--config', 'x.json'], /compare needs several configurations/],
    ['lists in two options', ['--activation', 'relu,tanh', '--lr', '0.1,0.01'], /one option at a time.*--activation and --lr/],
    ['a list of seeds', ['--seed', '1,2'], /--seed cannot be a list/],
    ['an empty item', ['--activation', 'relu,,tanh'], /--activation must be a list of values separated by ','/],
    ['a repeated item', ['--activation', 'relu,relu'], /--activation lists "relu" twice/],
    ['an invalid value', ['--activation', 'relu,swish'], /--activation must be one of relu, .*got "swish"/],
    ['an invalid number', ['--lr', '0.1,-1'], /--lr must be > 0, got -1/],
    ['bad layer lists', ['--layers', '64,16,10;64,x,10'], /--layers must be comma-separated layer sizes/],
    ['layers not matching the data', ['--layers', '64,16,10;60,16,10'], /--layers 60,16,10: --layers starts with 60 inputs but the data has 64 pixels/],
    ['a list with several config files', ['--activation', 'relu,tanh', '--config', 'a.json', '--config', 'b.json'], /either a list in --activation or several --config files/],
    ['a missing config file', ['--config', 'nope-a.json', '--config', 'nope-b.json'], /--config nope-a\.json: no such file/],
    ['an unknown option', ['--activations', 'relu,tanh'], /unknown option '--activations'/],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const out = join(tmp, `bad-${name.replace(/\W+/g, '-')}`);
      const hasLayers = args.includes('--layers');
      const result = await inProcess(['compare', '--data', data.dir, ...(hasLayers ? [] : ['--layers', '64,16,10']), '--epochs', '1', ...args, '--out', out]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr.split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/^densetrain: /);
      expect(result.stderr).toMatch(message);
      expect(existsSync(out), 'nothing written').toBe(false);
    });
  }

  it('the data shape is checked for every run before the first one trains', async () => {
    const out = join(tmp, 'late-check');
    const result = await inProcess(['compare', '--data', data.dir, '--layers', '64,16,10;64,16,7', '--epochs', '1', '--out', out]);
    expect(result.code).toBe(2);
    expect(result.stderr).toMatch(/ends with 7 outputs but the data has 10 classes/);
    expect(existsSync(out) ? readdirSync(out) : []).toEqual([]);
  });
});
