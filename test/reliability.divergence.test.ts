/**
 * Reliability, divergence: a run whose loss (or weights) stop being finite stops at the first
 * non-finite value with a message naming where and suggesting a lower learning rate; the CLI
 * exits 1; the last good checkpoint stays on disk, loads, and holds only finite values; so does
 * the kept model (model.safetensors), which `eval` can use.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadModel, MODEL_FILE } from '../src/model/load.js';
import { CHECKPOINT_FILE, readCheckpoint } from '../src/train/checkpoint.js';
import { train } from '../src/train/train.js';
import type { RunRecord, TrainConfig } from '../src/train/types.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { ensureBuilt, runCli, writeTinyDataset, type TinyDataset } from './helpers/cli.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

let tmp: string;
let data: TinyDataset;

beforeAll(() => {
  ensureBuilt();
  tmp = mkdtempSync(join(tmpdir(), 'densetrain-rel-div-'));
  data = writeTinyDataset(join(tmp, 'tiny'));
});
afterAll(() => {
  if (tmp) rmSync(tmp, { recursive: true, force: true });
});

async function expectFiniteCheckpoint(dir: string): Promise<Awaited<ReturnType<typeof readCheckpoint>>> {
  const ckpt = await readCheckpoint(dir);
  expect(ckpt.tensors.size).toBeGreaterThan(0);
  for (const [name, t] of ckpt.tensors) expect(t.data.every(Number.isFinite), `${name} in ${ckpt.file}`).toBe(true);
  return ckpt;
}

async function expectFiniteModelFile(dir: string): Promise<void> {
  const model = await loadModel(join(dir, MODEL_FILE), { kernels: loadedBackends()[0]!.kernels });
  try {
    for (const [name, values] of Object.entries(model.getParameters())) expect(values.every(Number.isFinite), name).toBe(true);
  } finally {
    model.dispose();
  }
}

describe('divergence through `densetrain train`', () => {
  it('lr 10: stops at the first NaN loss, exits 1 with one clear line, keeps the last good checkpoint', async () => {
    const out = join(tmp, 'lr10');
    const result = await runCli(
      ['train', '--data', data.dir, '--layers', '64,16,10', '--lr', '10', '--epochs', '5', '--batch-size', '16', '--patience', '0', '--out', out, '--quiet'],
      { cwd: tmp },
    );
    expect(result.code, result.stderr).toBe(1);
    const last = result.stderr.trim().split('\n').at(-1)!;
    const m = /^densetrain: training diverged: the loss became NaN in epoch (\d+), batch (\d+) \(lr [\d.e+-]+\); try a lower learning rate \(e\.g\. lr 1\); the kept model is from epoch (\d+)$/.exec(last);
    expect(m, last).not.toBeNull();
    expect(result.stderr).not.toMatch(/\n\s+at /);
    const [epoch, batch, kept] = [Number(m![1]), Number(m![2]), Number(m![3])];

    // Stopped at the FIRST non-finite loss: every recorded loss is finite and the failing batch is the next one.
    const record = JSON.parse(readFileSync(join(out, 'metrics.json'), 'utf8')) as RunRecord;
    expect(record.stopReason).toBe('diverged');
    for (const b of record.batches) expect(Number.isFinite(b.loss), `epoch ${b.epoch} batch ${b.batch}`).toBe(true);
    const lastGood = record.batches.at(-1)!;
    const batchesPerEpoch = Math.ceil(record.dataset.trainCount / 16);
    const next = lastGood.batch === batchesPerEpoch ? [lastGood.epoch + 1, 1] : [lastGood.epoch, lastGood.batch + 1];
    expect([epoch, batch]).toEqual(next);

    // This configuration diverges after epoch 1 ended, so a checkpoint exists: the end of the epoch before.
    expect(epoch).toBeGreaterThanOrEqual(2);
    const ckpt = await expectFiniteCheckpoint(out);
    expect([ckpt.state.epoch, ckpt.state.batch]).toEqual([epoch - 1, 0]);
    expect(kept).toBe(record.bestEpoch);
    await expectFiniteModelFile(out);
    // The kept model is usable.
    const evaluated = await runCli(['eval', '--model', out, '--data', data.dir], { cwd: tmp });
    expect(evaluated.code, evaluated.stderr).toBe(0);
  });
});

registerMissingBackends('divergence');

const dataset = syntheticDataset({ train: 240, test: 40, classes: 4, side: 8 });
const base: Partial<TrainConfig> = { data: 'synthetic', layers: [64, 16, 4], patience: 0, seed: 5, schedule: 'constant' };

for (const { name, kernels } of loadedBackends()) {
  describe(`divergence in the trainer (${name})`, () => {
    it('leaky_relu slope 3 on a deep net: stops at the first non-finite loss, checkpoint and model finite', async () => {
      const out = join(tmp, `leaky-${name}`);
      const { record, model } = await train(
        { ...base, layers: [64, 64, 64, 64, 64, 64, 64, 64, 4], activation: 'leaky_relu', alpha: 3, lr: 0.01, epochs: 6, batchSize: 16 },
        { dataset, kernels, outDir: out },
      );
      try {
        expect(record.stopReason).toBe('diverged');
        expect(record.stopMessage).toMatch(/^the loss became (NaN|-?Infinity) in epoch \d+, batch \d+ .*lower learning rate/);
        for (const b of record.batches) expect(Number.isFinite(b.loss)).toBe(true);
        for (const values of Object.values(model.getParameters())) expect(values.every(Number.isFinite)).toBe(true);
        if (existsSync(join(out, CHECKPOINT_FILE))) await expectFiniteCheckpoint(out);
        await expectFiniteModelFile(out);
      } finally {
        model.dispose();
      }
    });

    // One batch per epoch and no validation split: every step ends an epoch, so a step that
    // overflows the weights (while its own loss was finite) meets the epoch-end save first.
    const overflowing: Partial<TrainConfig> = { ...base, optimizer: 'sgd', momentum: 0, nesterov: false, lr: 1e38, l2: 100, valSplit: 0, epochs: 3 };

    it('a step that overflows the weights at an epoch end is caught before the checkpoint and the best weights', async () => {
      const out = join(tmp, `overflow-${name}`);
      const { record, model } = await train({ ...overflowing, batchSize: dataset.train.count }, { dataset, kernels, outDir: out });
      try {
        expect(record.stopReason).toBe('diverged');
        expect(record.stopMessage).toMatch(/^the weights \(layers\.\d\.(weight|bias)\) became non-finite in epoch 1, batch 1 \(lr 1e\+38\); try a lower learning rate/);
        for (const values of Object.values(model.getParameters())) expect(values.every(Number.isFinite)).toBe(true);
        // No epoch ended with good weights, so no checkpoint; the model file holds the initial weights.
        expect(existsSync(join(out, CHECKPOINT_FILE))).toBe(false);
        await expectFiniteModelFile(out);
      } finally {
        model.dispose();
      }
    });

    it('an interruption right after an overflowing step does not save the overflowed weights', async () => {
      const out = join(tmp, `overflow-abort-${name}`);
      const controller = new AbortController();
      const { record, model } = await train(
        { ...overflowing, batchSize: dataset.train.count / 2 },
        { dataset, kernels, outDir: out, signal: controller.signal, onBatch: () => controller.abort() },
      );
      try {
        expect(record.stopReason).toBe('diverged');
        expect(record.stopMessage).toMatch(/became non-finite in epoch 1, batch 1 /);
        expect(existsSync(join(out, CHECKPOINT_FILE))).toBe(false);
        await expectFiniteModelFile(out);
      } finally {
        model.dispose();
      }
    });
  });
}
