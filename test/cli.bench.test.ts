/**
 * `densetrain bench` wiring, kept cheap: the kernels suite on one tiny GEMM shape with the
 * reference backend, the train suite on a tiny 28x28 CSV set (one timed epoch; the reference
 * backend is listed as skipped), both into one JSON record, and usage errors. No timing
 * assertions: only that the suites ran through the installed command and recorded their rows.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BACKEND_NAMES, tryLoadBackend } from '../src/kernels/index.js';
import { ensureBuilt, runCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-cli-bench-'));
  data = writeTinyDataset(join(tmp, 'tiny28'), { side: 28, train: 300, test: 40 });
});

afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

interface Record {
  suite: string;
  machine: { cpuModel: string; logicalCpus: number; loadAverageAtStart: number | null };
  rows?: { backend: string; kernel: string; variant: string; shape: string; gflops: number | null }[];
  train?: {
    data: { name: string; trainImages: number };
    notes: string[];
    rows: {
      backend: string;
      model: string;
      secondsPerEpoch: number | null;
      epochSeconds: number[];
      gemmCalls: unknown[];
      kernelCallsPerBatch: number | null;
      allocationsAfterFirstBatch: number | null;
      peakRssBytes: number;
      note?: string;
    }[];
    peakRssBytes: number;
  };
}

describe('densetrain bench', () => {
  it('kernels, then train, into one JSON record', async () => {
    const json = join(tmp, 'bench.json');
    const kernels = await runCli(['bench', 'kernels', '--quick', '--no-openblas', '--backend', 'reference', '--shapes', '16x24x8', '--json', json], { timeoutMs: 120_000 });
    expect(kernels.code, kernels.stderr).toBe(0);
    expect(kernels.stdout).toMatch(/│ reference │ js +│ +1 │ gemm +│ NT +│ 16x24x8 /);
    let record = JSON.parse(readFileSync(json, 'utf8')) as Record;
    expect(record.suite).toBe('kernels');
    expect(record.machine.logicalCpus).toBeGreaterThan(0);
    const gemmRows = record.rows!.filter((r) => r.kernel === 'gemm');
    expect(gemmRows.map((r) => `${r.variant} ${r.shape}`)).toEqual(['NT 16x24x8', 'NN 16x24x8', 'TN 16x24x8']);
    for (const r of gemmRows) expect(r.gflops).toBeGreaterThan(0);

    const train = await runCli(['bench', 'train', '--backend', 'all', '--data', data.dir, '--models', '784-128-64-10', '--epochs', '1', '--quick', '--json', json], {
      timeoutMs: 180_000,
    });
    expect(train.code, train.stderr).toBe(0);
    expect(train.stdout).toMatch(/timed on .*300 training images per epoch/);
    expect(train.stdout).toMatch(/reference 784-128-64-10: skipped/);
    expect(train.stdout).toMatch(/peak RSS of this process: \d+ MB/);
    record = JSON.parse(readFileSync(json, 'utf8')) as Record;
    // The train run kept the kernels rows of the same file.
    expect(record.suite).toBe('kernels+train');
    expect(record.rows!.filter((r) => r.kernel === 'gemm')).toHaveLength(3);
    const t = record.train!;
    expect(t.data.trainImages).toBe(300);
    const loaded = BACKEND_NAMES.filter((n) => tryLoadBackend(n).ok);
    expect(t.rows.map((r) => r.backend)).toEqual(loaded);
    for (const r of t.rows) {
      expect(r.model).toBe('784-128-64-10');
      if (r.backend === 'reference') {
        expect(r.note).toMatch(/skipped/);
        expect(r.secondsPerEpoch).toBeNull();
        continue;
      }
      expect(r.epochSeconds).toHaveLength(1);
      expect(r.secondsPerEpoch).toBeGreaterThan(0);
      // forward x3, dW x3, dX x2 (none for the input layer)
      expect(r.gemmCalls).toHaveLength(8);
      // The same calls every batch, at most 23: 8 gemm + 3 biasActivation (or fewer with a fused
      // forward) + 1 softmaxCrossEntropy + 2 activationBackward + 3 biasGrad + 6 sgdStep.
      expect(Number.isInteger(r.kernelCallsPerBatch)).toBe(true);
      expect(r.kernelCallsPerBatch).toBeGreaterThan(0);
      expect(r.kernelCallsPerBatch).toBeLessThanOrEqual(23);
      expect(r.allocationsAfterFirstBatch).toBe(0);
      expect(r.peakRssBytes).toBeGreaterThan(0);
    }
  });

  it('usage errors exit 2 with the usage line', async () => {
    const cases = [['bench', 'bogus'], ['bench', 'kernels', '--shapes', '12x12'], ['bench', 'kernels', '--models', '784-128-64-10'], ['bench', 'train', '--models', 'nope'], ['bench', 'train', '--precision', 'fp16'], ['bench', 'kernels', '--vs-torch'], ['bench', 'kernels', '--vs-tfjs'], ['bench', 'train', '--step', 'bogus']];
    const results = await Promise.all(cases.map((args) => runCli(args)));
    results.forEach((r, i) => {
      expect(r.code, `${cases[i]!.join(' ')}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toContain('usage: densetrain bench');
    });
  });
});
