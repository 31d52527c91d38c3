/**
 * Reliability, concurrency: two trainings in one process through the library API, running at
 * the same time (Promise.all) on the same backend instance, produce exactly what each produces
 * alone: bit-identical final weights, the same loss history, the same test result, and the same
 * checkpoint tensors. Their batches interleave (the trainer yields between batches), so shared
 * kernel state (native thread pool and GEMM workspace, wasm scratch memory) must not leak from
 * one run into the other.
 */
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../src/kernels/types.js';
import { CHECKPOINT_FILE } from '../src/train/checkpoint.js';
import { decodeSafetensors } from '../src/model/safetensors.js';
import { train, type TrainResult } from '../src/train/train.js';
import type { TrainConfig } from '../src/train/types.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

const dataset = syntheticDataset({ train: 480, test: 120, classes: 5, side: 10, seed: 4 });
const configs: Partial<TrainConfig>[] = [
  { data: 'synthetic', layers: [100, 48, 24, 5], activation: 'prelu', optimizer: 'adam', lr: 0.003, batchSize: 24, epochs: 3, seed: 11, patience: 0 },
  { data: 'synthetic', layers: [100, 64, 5], activation: 'tanh', optimizer: 'sgd', lr: 0.05, batchSize: 16, epochs: 3, seed: 12, patience: 0, l2: 1e-3 },
];

interface Outcome {
  weights: Record<string, Buffer>;
  history: unknown;
  checkpoint: Record<string, Buffer>;
}

async function runOne(config: Partial<TrainConfig>, kernels: Kernels, progress?: number[]): Promise<Outcome> {
  const outDir = await mkdtemp(join(tmpdir(), 'densetrain-rel-conc-'));
  dirs.push(outDir);
  const result: TrainResult = await train(config, { dataset, kernels, outDir, onBatch: () => progress?.push(config.seed!) });
  try {
    const weights: Record<string, Buffer> = {};
    for (const [name, values] of Object.entries(result.model.getParameters())) weights[name] = Buffer.from(values.buffer, values.byteOffset, values.byteLength);
    const { record } = result;
    const history = {
      stopReason: record.stopReason,
      bestEpoch: record.bestEpoch,
      batches: record.batches,
      epochs: record.epochs.map(({ seconds: _s, samplesPerSecond: _p, ...rest }) => rest),
      test: record.test,
    };
    const checkpoint: Record<string, Buffer> = {};
    const file = join(outDir, CHECKPOINT_FILE);
    for (const [name, t] of decodeSafetensors(await readFile(file), file).tensors) checkpoint[name] = Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength);
    return { weights, history, checkpoint };
  } finally {
    result.model.dispose();
  }
}

function expectSame(a: Outcome, b: Outcome, label: string): void {
  expect(Object.keys(b.weights).sort(), label).toEqual(Object.keys(a.weights).sort());
  for (const name of Object.keys(a.weights)) expect(b.weights[name]!.equals(a.weights[name]!), `${label}: ${name}`).toBe(true);
  for (const name of Object.keys(a.checkpoint)) expect(b.checkpoint[name]?.equals(a.checkpoint[name]!), `${label}: checkpoint ${name}`).toBe(true);
  expect(b.history, label).toEqual(a.history);
}

registerMissingBackends('concurrency');

describe('two concurrent trainings in one process equal each run alone', () => {
  for (const { name, kernels } of loadedBackends()) {
    it(`${name}`, async () => {
      const aloneA = await runOne(configs[0]!, kernels);
      const aloneB = await runOne(configs[1]!, kernels);
      const order: number[] = [];
      const [togetherA, togetherB] = await Promise.all([runOne(configs[0]!, kernels, order), runOne(configs[1]!, kernels, order)]);
      // They really ran interleaved: the batch order switches between the runs many times.
      let switches = 0;
      for (let i = 1; i < order.length; i++) if (order[i] !== order[i - 1]) switches++;
      expect(switches).toBeGreaterThan(20);
      expectSame(aloneA, togetherA, `${name}, run A`);
      expectSame(aloneB, togetherB, `${name}, run B`);
      // And the two configurations are different runs (the comparison is not vacuous).
      expect(togetherA.history).not.toEqual(togetherB.history);
    });
  }
});
