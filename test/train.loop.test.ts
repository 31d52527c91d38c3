/**
 * The training loop on small synthetic data: determinism, resume bit-identity (epoch boundary
 * and mid-epoch), no backend allocation per batch, divergence, early stopping, interruption,
 * event-loop yielding.
 */
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { train, type BatchEvent } from '../src/train/train.js';
import { readCheckpoint } from '../src/train/checkpoint.js';
import { decodeSafetensors, encodeSafetensors } from '../src/model/safetensors.js';
import type { Kernels } from '../src/kernels/types.js';
import type { TrainConfig } from '../src/train/types.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

const dataset = syntheticDataset({ train: 400, test: 100 });
const base: Partial<TrainConfig> = {
  data: 'synthetic',
  layers: [64, 16, 4],
  batchSize: 32,
  epochs: 4,
  valSplit: 0.2,
  patience: 0,
  lr: 0.01,
  schedule: 'step',
  stepSize: 2,
  gamma: 0.5,
  seed: 3,
};

const dirs: string[] = [];
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'densetrain-train-'));
  dirs.push(dir);
  return dir;
}
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});

function expectSameParameters(a: Record<string, Float32Array>, b: Record<string, Float32Array>): void {
  expect(Object.keys(a).sort()).toEqual(Object.keys(b).sort());
  for (const name of Object.keys(a)) {
    // Bit for bit: compare the raw bytes (so -0 vs 0 or NaN payloads would differ too).
    expect(Buffer.from(a[name]!.buffer, a[name]!.byteOffset, a[name]!.byteLength).equals(Buffer.from(b[name]!.buffer, b[name]!.byteOffset, b[name]!.byteLength)), name).toBe(true);
  }
}

registerMissingBackends('training loop');

for (const { name, kernels } of loadedBackends()) {
  describe(`training determinism and resume (${name})`, () => {
    it('two runs with the same seed are identical; another seed differs', async () => {
      const a = await train({ ...base, activation: 'prelu', alpha: 0.25, optimizer: 'sgd', momentum: 0.9, nesterov: true, l2: 1e-3 }, { dataset, kernels });
      const b = await train({ ...base, activation: 'prelu', alpha: 0.25, optimizer: 'sgd', momentum: 0.9, nesterov: true, l2: 1e-3 }, { dataset, kernels });
      const c = await train({ ...base, activation: 'prelu', alpha: 0.25, optimizer: 'sgd', momentum: 0.9, nesterov: true, l2: 1e-3, seed: 4 }, { dataset, kernels });
      try {
        expectSameParameters(a.model.getParameters(), b.model.getParameters());
        expect(a.record.batches).toEqual(b.record.batches);
        expect(a.record.epochs.map((e) => [e.trainLoss, e.valLoss, e.preluSlopes])).toEqual(b.record.epochs.map((e) => [e.trainLoss, e.valLoss, e.preluSlopes]));
        expect(a.record.test).toEqual(b.record.test);
        expect(c.record.batches[0]!.loss).not.toBe(a.record.batches[0]!.loss);
      } finally {
        for (const r of [a, b, c]) r.model.dispose();
      }
    });

    it('2 epochs + resume to 4 gives the same weights as 4 epochs, bit for bit', async () => {
      const fullDir = await tempDir();
      const full = await train({ ...base, l2: 1e-4 }, { dataset, kernels, outDir: fullDir });
      const dir = await tempDir();
      const first = await train({ ...base, l2: 1e-4, epochs: 2 }, { dataset, kernels, outDir: dir });
      first.model.dispose();
      expect((await readdir(dir)).sort()).toEqual(['checkpoint.safetensors', 'metrics.jsonl', 'model.safetensors']);
      const resumed = await train({ epochs: 4 }, { dataset, kernels, outDir: dir, resumeFrom: dir });
      try {
        expect(resumed.record.stopReason).toBe('completed');
        expectSameParameters(resumed.model.getParameters(), full.model.getParameters());
        expect(resumed.record.epochs.map((e) => e.epoch)).toEqual([1, 2, 3, 4]);
        expect(resumed.record.epochs.map((e) => [e.trainLoss, e.valLoss, e.lr])).toEqual(full.record.epochs.map((e) => [e.trainLoss, e.valLoss, e.lr]));
        expect(resumed.record.batches).toEqual(full.record.batches);
        expect(resumed.record.bestEpoch).toBe(full.record.bestEpoch);
        expect(resumed.record.test).toEqual(full.record.test);
        // Every checkpoint tensor (current weights, optimizer state, best weights) matches too.
        const a = await readCheckpoint(dir);
        const b = await readCheckpoint(fullDir);
        expect(a.state.epoch).toBe(4);
        expect([...a.tensors.keys()].sort()).toEqual([...b.tensors.keys()].sort());
        expect([...a.tensors.keys()].filter((k) => k.startsWith('optim.')).length).toBe(4); // SGD momentum velocity per parameter
        expectSameParameters(Object.fromEntries([...a.tensors].map(([k, t]) => [k, t.data])), Object.fromEntries([...b.tensors].map(([k, t]) => [k, t.data])));
        expect(a.state.rngEpochStart).toEqual(b.state.rngEpochStart);
      } finally {
        full.model.dispose();
        resumed.model.dispose();
      }
    });

    it('an interruption mid-epoch, then resume, gives the same weights as an uninterrupted run', async () => {
      const config = { ...base, optimizer: 'adam' as const, lr: 3e-3, activation: 'tanh' as const, schedule: 'cosine' as const };
      const full = await train(config, { dataset, kernels });
      const dir = await tempDir();
      const controller = new AbortController();
      const interrupted = await train(config, {
        dataset,
        kernels,
        outDir: dir,
        signal: controller.signal,
        onBatch: (e) => {
          if (e.epoch === 2 && e.batch === 3) controller.abort();
        },
      });
      interrupted.model.dispose();
      expect(interrupted.record.stopReason).toBe('interrupted');
      expect(interrupted.record.stopMessage).toMatch(/epoch 2 after batch 3/);
      expect(interrupted.record.batches.at(-1)).toMatchObject({ epoch: 2, batch: 3 });
      const ckpt = await readCheckpoint(join(dir, 'checkpoint.safetensors'));
      expect([ckpt.state.epoch, ckpt.state.batch]).toEqual([1, 3]);

      const resumed = await train({}, { dataset, kernels, resumeFrom: dir });
      try {
        expect(resumed.record.stopReason).toBe('completed');
        expectSameParameters(resumed.model.getParameters(), full.model.getParameters());
        expect(resumed.record.batches).toEqual(full.record.batches);
        expect(resumed.record.epochs.map((e) => [e.trainLoss, e.trainAccuracy, e.valLoss])).toEqual(full.record.epochs.map((e) => [e.trainLoss, e.trainAccuracy, e.valLoss]));
      } finally {
        full.model.dispose();
        resumed.model.dispose();
      }
    });
  });
}

describe('training loop', () => {
  const reference = createReferenceKernels();

  it('allocates no backend memory per batch, and frees everything but the returned model', async () => {
    let allocs = 0;
    const counting: Kernels = {
      ...reference,
      alloc(length: number) {
        allocs++;
        return reference.alloc(length);
      },
    };
    const baseline = reference.allocatedBytes();
    let allocsAtFirstBatch = -1;
    let bytesAtFirstBatch = -1;
    const seen: { allocs: number; bytes: number }[] = [];
    const { record, model } = await train({ ...base, epochs: 2 }, {
      dataset,
      kernels: counting,
      onBatch: () => {
        if (allocsAtFirstBatch < 0) {
          allocsAtFirstBatch = allocs;
          bytesAtFirstBatch = reference.allocatedBytes();
        }
        seen.push({ allocs, bytes: reference.allocatedBytes() });
      },
      onEpoch: () => seen.push({ allocs, bytes: reference.allocatedBytes() }),
    });
    expect(record.batches.length).toBe(2 * Math.ceil(320 / 32));
    expect(allocsAtFirstBatch).toBeGreaterThan(0);
    for (const s of seen) expect(s).toEqual({ allocs: allocsAtFirstBatch, bytes: bytesAtFirstBatch });
    // Only the model's buffers remain (the optimizer state was freed), and dispose frees them.
    expect(reference.allocatedBytes()).toBeGreaterThan(baseline);
    model.dispose();
    expect(reference.allocatedBytes()).toBe(baseline);
  });

  it('yields to the event loop between batches', async () => {
    let ticks = 0;
    let running = true;
    const tick = (): void => {
      ticks++;
      if (running) setImmediate(tick);
    };
    setImmediate(tick);
    const ticksAtBatch: number[] = [];
    const { model } = await train({ ...base, epochs: 1 }, { dataset, kernels: reference, onBatch: () => ticksAtBatch.push(ticks) });
    running = false;
    model.dispose();
    // Between two consecutive batches, at least one other macrotask ran.
    for (let i = 1; i < ticksAtBatch.length; i++) expect(ticksAtBatch[i]!).toBeGreaterThan(ticksAtBatch[i - 1]!);
  });

  it('stops with "diverged" on a non-finite loss, naming epoch and batch, and keeps good weights', async () => {
    const dir = await tempDir();
    // A linear net with lr 10 overflows within two epochs (relu nets tend to die instead: see train.mnist.test.ts for lr 10 on real data).
    const { record, model } = await train({ ...base, activation: 'linear', optimizer: 'sgd', momentum: 0.9, lr: 10, schedule: 'constant', epochs: 20 }, { dataset, kernels: reference, outDir: dir });
    try {
      expect(record.stopReason).toBe('diverged');
      expect(record.stopMessage).toMatch(/epoch \d+, batch \d+/);
      expect(record.stopMessage).toMatch(/lower learning rate/);
      for (const values of Object.values(model.getParameters())) expect(values.every(Number.isFinite)).toBe(true);
      const last = record.batches.at(-1)!;
      expect(record.stopMessage).toContain(`epoch ${last.epoch}, batch ${last.batch + 1}`);
      // The last good checkpoint stays: the end of the epoch before the failure.
      expect(record.bestEpoch).toBeGreaterThanOrEqual(1);
      const ckpt = await readCheckpoint(dir);
      expect([ckpt.state.epoch, ckpt.state.batch]).toEqual([last.epoch - 1, 0]);
      for (const t of ckpt.tensors.values()) expect(t.data.every(Number.isFinite)).toBe(true);
      expect(record.test).not.toBeNull();
    } finally {
      model.dispose();
    }
  });

  it('keeps the per-batch history in a float32 tensor of the checkpoint, not in its JSON state', async () => {
    const dir = await tempDir();
    const { record, model } = await train({ ...base, epochs: 2 }, { dataset, kernels: reference, outDir: dir });
    try {
      const file = join(dir, 'checkpoint.safetensors');
      const raw = decodeSafetensors(await readFile(file), file);
      expect(JSON.parse(raw.metadata['training']!)).not.toHaveProperty('batches');
      const t = raw.tensors.get('training.batches')!;
      expect(t.shape).toEqual([record.batches.length, 3]);
      expect(record.batches.every((b) => b.loss === Math.fround(b.loss))).toBe(true);
      expect((await readCheckpoint(dir)).state.batches).toEqual(record.batches);

      // A checkpoint written before the tensor existed (history in the JSON state) still resumes.
      const ckpt = await readCheckpoint(dir);
      const legacy = new Map([...raw.tensors].filter(([name]) => name !== 'training.batches'));
      // (encodeSafetensors writes fresh checksums over the copied ones.)
      const meta = { ...raw.metadata, training: JSON.stringify({ ...JSON.parse(raw.metadata['training']!), batches: record.batches }) };
      await writeFile(file, encodeSafetensors(legacy, meta));
      expect((await readCheckpoint(dir)).state).toEqual(ckpt.state);
    } finally {
      model.dispose();
    }
  });

  it('stops early when validation loss stops improving and keeps the best epoch\'s weights', async () => {
    const noisy = syntheticDataset({ train: 300, test: 50, randomLabels: true, seed: 11 });
    const dir = await tempDir();
    const { record, model } = await train(
      { ...base, layers: [64, 64, 4], optimizer: 'adam', lr: 0.01, schedule: 'constant', epochs: 40, patience: 2 },
      { dataset: noisy, kernels: reference, outDir: dir },
    );
    try {
      expect(record.stopReason).toBe('early-stopping');
      expect(record.epochs.length).toBeLessThan(40);
      const valLosses = record.epochs.map((e) => e.valLoss!);
      const bestIndex = valLosses.indexOf(Math.min(...valLosses));
      expect(record.bestEpoch).toBe(bestIndex + 1);
      expect(record.epochs.length).toBe(record.bestEpoch + 2);
      // The returned model holds the best epoch's weights, not the last epoch's.
      const ckpt = await readCheckpoint(dir);
      const params = model.getParameters();
      let differsFromLast = false;
      for (const [name, values] of Object.entries(params)) {
        expect(Array.from(values)).toEqual(Array.from(ckpt.tensors.get(`best.${name}`)!.data));
        if (!values.every((v, i) => v === ckpt.tensors.get(name)!.data[i])) differsFromLast = true;
      }
      expect(differsFromLast).toBe(true);
    } finally {
      model.dispose();
    }
  });

  it('reports batches and epochs through events, with the lr schedule', async () => {
    const batches: BatchEvent[] = [];
    const { record, model } = await train({ ...base, epochs: 3, schedule: 'step', stepSize: 1, gamma: 0.1 }, { dataset, kernels: reference, onBatch: (e) => batches.push(e) });
    model.dispose();
    expect(batches.length).toBe(30);
    expect(batches[0]).toMatchObject({ epoch: 1, batch: 1, batches: 10 });
    for (const b of batches) {
      expect(b.accuracy).toBeGreaterThanOrEqual(0);
      expect(b.accuracy).toBeLessThanOrEqual(1);
      expect(b.samplesPerSecond).toBeGreaterThan(0);
    }
    expect(record.epochs.map((e) => e.lr)).toEqual([0.01, 0.01 * 0.1, 0.01 * 0.1 ** 2]);
    expect(record.dataset).toMatchObject({ trainCount: 320, valCount: 80, testCount: 100 });
    expect(record.test!.count).toBe(100);
    expect(record.test!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(100);
    expect(record.backend.backend).toBe('reference');
  });

  it('config.backend forces a backend; auto defers to DENSETRAIN_BACKEND', async () => {
    const forced = await train({ ...base, epochs: 1, backend: 'reference' }, { dataset });
    forced.model.dispose();
    expect(forced.record.backend.backend).toBe('reference');
    expect(forced.record.config.backend).toBe('reference');
    const previous = process.env['DENSETRAIN_BACKEND'];
    process.env['DENSETRAIN_BACKEND'] = 'reference';
    try {
      const auto = await train({ ...base, epochs: 1 }, { dataset });
      auto.model.dispose();
      expect(auto.record.backend.backend).toBe('reference');
      expect(auto.record.config.backend).toBe('auto');
    } finally {
      if (previous === undefined) delete process.env['DENSETRAIN_BACKEND'];
      else process.env['DENSETRAIN_BACKEND'] = previous;
    }
  });

  it('refuses to resume with a changed hyper-parameter, and checks the data shape', async () => {
    const dir = await tempDir();
    const { model } = await train({ ...base, epochs: 1 }, { dataset, kernels: reference, outDir: dir });
    model.dispose();
    await expect(train({ lr: 0.5 }, { dataset, kernels: reference, resumeFrom: dir })).rejects.toThrow(/lr is 0.01 in .*checkpoint.safetensors/);
    await expect(train({ ...base, layers: [10, 4] }, { dataset, kernels: reference })).rejects.toThrow(/starts with 10 inputs but the data has 64/);
    await expect(train({ ...base, lr: -1 }, { dataset, kernels: reference })).rejects.toThrow(/"lr" must be > 0/);
  });
});
