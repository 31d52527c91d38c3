/**
 * `densetrain sweep` end to end on a tiny generated dataset: a learning-rate sweep where one
 * value diverges (kept as diverged in sweep.json, sweep.html and the terminal table; the other
 * values complete; exit 0), a width sweep of a chosen hidden layer, and bad options (exit 2).
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main.js';
import type { Io } from '../src/cli/io.js';
import type { RunRecord } from '../src/train/types.js';
import { ensureBuilt, runCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-cli-sweep-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

interface SweepJson {
  param: string;
  scale: string;
  values: number[];
  layerIndex: number | null;
  runs: { value: number; label: string; status: string; testAccuracy: number | null; epochsRun: number; stopMessage: string | null; report: string | null; folder: string }[];
}

function chartSvg(html: string, name: string): string {
  const m = new RegExp(`<figure class="chart" id="chart-${name}"[^>]*>(<svg[\\s\\S]*?</svg>)`).exec(html);
  expect(m, `chart ${name}`).not.toBeNull();
  return m![1]!;
}

describe('densetrain sweep', () => {
  it('lr sweep: a diverging value is kept as diverged, the others complete, exit 0', async () => {
    const out = join(tmp, 'lr');
    // 1e6 makes the loss NaN within the first epoch; it is trained first, and the sweep carries on.
    const result = await runCli(
      ['sweep', '--param', 'lr', '--values', '1e6,0.1, 0.01', '--data', data.dir, '--layers', '64,16,10', '--batch-size', '16', '--epochs', '2', '--out', out],
      { cwd: tmp },
    );
    expect(result.code, result.stderr).toBe(0);

    const sweep = readJson<SweepJson>(join(out, 'sweep.json'));
    expect(sweep.param).toBe('lr');
    expect(sweep.scale).toBe('log');
    expect(sweep.values).toEqual([0.01, 0.1, 1e6]);
    expect(sweep.runs.map((r) => [r.value, r.status])).toEqual([
      [0.01, 'completed'],
      [0.1, 'completed'],
      [1e6, 'diverged'],
    ]);
    const diverged = sweep.runs[2]!;
    expect(diverged.stopMessage).toMatch(/loss became (NaN|Infinity|-Infinity)/);
    expect(diverged.label).toBe('lr=1e6');

    for (const run of sweep.runs) {
      const record = readJson<RunRecord>(join(out, run.folder, 'metrics.json'));
      expect(record.config.lr).toBe(run.value);
      expect(record.stopReason).toBe(run.status);
      expect(existsSync(join(out, run.folder, 'report.html')), `${run.folder}/report.html`).toBe(true);
      expect(run.report).toBe(`${run.folder}/report.html`);
      if (run.status === 'completed') {
        expect(record.epochs).toHaveLength(2);
        expect(run.testAccuracy).toBe(record.test!.accuracy);
      }
    }

    const html = readFileSync(join(out, 'sweep.html'), 'utf8');
    expect(html).toMatch(/<tr class="diverged" data-run="lr=1e6" data-status="diverged">/);
    expect(html).toMatch(/<tr class="completed" data-run="lr=0.01" data-status="completed">/);
    expect(html).toMatch(/<tr class="completed" data-run="lr=0.1" data-status="completed">/);
    for (const name of ['sweep-loss', 'sweep-accuracy']) {
      const svg = chartSvg(html, name);
      // The completed values as points on a drawn line, the diverged one as a labelled cross.
      expect(svg).toMatch(/<path aria-label="[^"]*"[^>]*aria-roledescription="line mark"[^>]*\sd="M[^"]+L/);
      expect(svg).toMatch(/aria-label="lr: 0\.01; test (loss|accuracy): [\d.]+%?"[^>]*aria-roledescription="point"/);
      expect(svg).toMatch(/aria-label="lr: 1e\+6"[^>]*aria-roledescription="point"[^>]*fill="#c0392b"/);
      expect(svg).toMatch(/>diverged<\/text>/);
    }

    expect(result.stdout).toMatch(/│ +0\.01 +│ +[\d.]+% +│ +[\d.]+% +│ +[\d.]+ +│ +2\/2 +│ +[\d.]+ +│ +completed/);
    expect(result.stdout).toMatch(/│ +1e6 +│ .*│ +diverged/);
    expect(result.stdout).toContain(`sweep: ${join(out, 'sweep.html')}`);
    expect(result.stderr).toContain('lr=1e6 diverged (kept in the sweep)');
    // Trained in the order given (the diverged run first), shown in order of value.
    const order = ['lr=1e6', 'lr=0.1', 'lr=0.01'].map((l) => result.stdout.indexOf(`] ${l}: `));
    expect(order.every((p) => p >= 0) && order[0]! < order[1]! && order[1]! < order[2]!, result.stdout).toBe(true);
  });

  it('width sweep changes the chosen hidden layer only', async () => {
    const out = join(tmp, 'width');
    const result = await runCli(
      ['sweep', '--param', 'width', '--layer-index', '1', '--values', '4,12', '--data', data.dir, '--layers', '64,16,8,10', '--batch-size', '16', '--epochs', '1', '--out', out],
      { cwd: tmp },
    );
    expect(result.code, result.stderr).toBe(0);
    const sweep = readJson<SweepJson>(join(out, 'sweep.json'));
    expect(sweep.layerIndex).toBe(1);
    expect(sweep.runs.map((r) => readJson<RunRecord>(join(out, r.folder, 'metrics.json')).config.layers)).toEqual([
      [64, 16, 4, 10],
      [64, 16, 12, 10],
    ]);
    expect(readFileSync(join(out, 'sweep.html'), 'utf8')).toContain('width of hidden layer 2');
  });
});

async function inProcess(args: string[]): Promise<{ code: number; stderr: string }> {
  const err: string[] = [];
  const io: Io = { out: () => {}, err: (l = '') => void err.push(l), tty: false, stderr: process.stderr };
  const code = await main(args, io);
  return { code, stderr: err.join('\n') };
}

describe('densetrain sweep: bad options exit 2 naming the option, before anything is written', () => {
  const cases: [string, string[], RegExp][] = [
    ['unknown --param', ['--param', 'dropout', '--values', '0.1,0.2'], /--param must be one of lr, l2, alpha, momentum, batch-size, width; got "dropout"/],
    ['missing --values', ['--param', 'lr'], /sweep needs --values/],
    ['empty --values', ['--param', 'lr', '--values', ''], /--values must be a comma-separated list of numbers/],
    ['an empty item', ['--param', 'lr', '--values', '0.1,,1'], /--values must be a comma-separated list of numbers/],
    ['a word in --values', ['--param', 'lr', '--values', '0.1,fast'], /--values: "fast" is not a finite number/],
    ['a repeated value', ['--param', 'lr', '--values', '0.1,1e-1'], /--values lists 1e-1 twice/],
    ['lr <= 0 per the schema', ['--param', 'lr', '--values', '0.1,-1'], /--values -1 is not a valid lr: must be > 0, got -1/],
    ['momentum >= 1', ['--param', 'momentum', '--values', '0.5,1'], /--values 1 is not a valid momentum: must be in \[0, 1\)/],
    ['a fractional batch size', ['--param', 'batch-size', '--values', '8,2.5'], /--values 2\.5 is not a valid batch-size: must be an integer/],
    ['a batch larger than the split', ['--param', 'batch-size', '--values', '8,5000'], /--values 5000 \(--param batch-size\): --batch-size 5000 is larger than the training split/],
    ['a fractional width', ['--param', 'width', '--values', '8,2.5'], /--values 2\.5: a width .* must be a positive integer/],
    ['--layer-index out of range', ['--param', 'width', '--values', '8,16', '--layer-index', '1'], /--layer-index must be an integer from 0 to 0/],
    ['--layer-index without width', ['--param', 'lr', '--values', '0.1,1', '--layer-index', '2'], /--layer-index applies only to --param width/],
    ['the swept option also given', ['--param', 'lr', '--values', '0.1,1', '--lr', '0.5'], /--lr is what --param lr sweeps/],
    ['alpha with relu', ['--param', 'alpha', '--values', '0.1,1'], /--param alpha has no effect with --activation relu/],
    ['momentum with adam', ['--param', 'momentum', '--values', '0.5,0.9', '--optimizer', 'adam'], /--param momentum has no effect with --optimizer adam/],
    ['a bad shared option', ['--param', 'lr', '--values', '0.1,1', '--epochs', '0'], /--epochs must be an integer >= 1, got 0/],
  ];
  for (const [name, args, message] of cases) {
    it(name, async () => {
      const out = join(tmp, `bad-${name.replace(/\W+/g, '-')}`);
      const result = await inProcess(['sweep', '--data', data.dir, '--layers', '64,16,10', '--epochs', '1', ...args, '--out', out]);
      expect(result.code, result.stderr).toBe(2);
      expect(result.stderr.split('\n')).toHaveLength(1);
      expect(result.stderr).toMatch(/^densetrain: /);
      expect(result.stderr).toMatch(message);
      expect(existsSync(out), 'nothing written').toBe(false);
    });
  }
});
