/**
 * "No waste" on the training path, checked by counting rather than timing (no timing assertions):
 * - once the model and optimizer exist, the backend allocates and frees nothing: not per batch,
 *   not per epoch (validation, best-weights snapshot, checkpoint writes), not in the final test
 *   pass, on every backend that loads;
 * - images stay bytes (Uint8Array, untouched) until a batch is filled: the model's input buffer
 *   holds one batch (its capacity), and the backend memory of a run does not grow with the
 *   number of images.
 * train.loop.test.ts checks the reference backend's allocation count batch by batch on a plain
 * run; this suite adds the other backends and the epoch-end work. Timings: src/bench/train.ts.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../src/kernels/types.js';
import { train } from '../src/train/train.js';
import type { TrainConfig } from '../src/train/types.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { syntheticDataset } from './helpers/synthetic-data.js';

const config: Partial<TrainConfig> = {
  data: 'synthetic',
  layers: [64, 24, 12, 4],
  batchSize: 32,
  epochs: 2,
  valSplit: 0.2,
  patience: 0,
  lr: 0.02,
  seed: 5,
};

const dirs: string[] = [];
afterAll(async () => {
  for (const dir of dirs) await rm(dir, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'densetrain-perf-alloc-'));
  dirs.push(dir);
  return dir;
}

/** The backend's kernels with alloc and free counted (everything else delegates). */
function counted(k: Kernels): { kernels: Kernels; allocs: () => number; frees: () => number } {
  let allocs = 0;
  let frees = 0;
  const kernels: Kernels = {
    ...k,
    alloc(length: number) {
      allocs++;
      return k.alloc(length);
    },
    free(t) {
      frees++;
      k.free(t);
    },
  };
  return { kernels, allocs: () => allocs, frees: () => frees };
}

/** A cheap fingerprint of the bytes (to show training never rewrites them). */
function fingerprint(bytes: Uint8Array): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < bytes.length; i++) h = Math.imul(h ^ bytes[i]!, 0x01000193) >>> 0;
  return h;
}

registerMissingBackends('training without waste');

for (const { name, kernels: backend } of loadedBackends()) {
  describe(`training without waste (${name})`, () => {
    it('allocates and frees no backend memory after setup: batches, validation, checkpoints, test pass', async () => {
      const dataset = syntheticDataset({ train: 500, test: 120, side: 8, classes: 4 });
      const c = counted(backend);
      let setup: { allocs: number; frees: number; bytes: number } | null = null;
      const after: { at: string; allocs: number; frees: number; bytes: number }[] = [];
      const now = (at: string) => ({ at, allocs: c.allocs(), frees: c.frees(), bytes: backend.allocatedBytes() });
      const { record, model } = await train(config, {
        dataset,
        kernels: c.kernels,
        outDir: await tempDir(),
        onBatch: (e) => {
          const s = now(`epoch ${e.epoch} batch ${e.batch}`);
          if (setup === null) setup = { allocs: s.allocs, frees: s.frees, bytes: s.bytes };
          after.push(s);
        },
        onEpoch: (e) => after.push(now(`end of epoch ${e.epoch}`)),
      });
      const end = now('after train() returned (test pass done)');
      try {
        expect(record.stopReason).toBe('completed');
        expect(record.test).not.toBeNull();
        expect(setup).not.toBeNull();
        expect(after.length).toBe(2 * Math.ceil(400 / 32) + 2);
        for (const s of after) expect(s, s.at).toEqual({ at: s.at, ...setup! });
        // The test pass allocated nothing; train() then freed its optimizer state (one SGD
        // velocity per parameter: 3 weights + 3 biases) and nothing else.
        expect(end.allocs).toBe(setup!.allocs);
        expect(end.frees - setup!.frees).toBe(6);
        expect(end.bytes).toBeLessThan(setup!.bytes);
      } finally {
        model.dispose();
      }
    });

    it('keeps images as bytes and converts one batch at a time: the input buffer holds one batch, backend memory does not grow with the data', async () => {
      const small = syntheticDataset({ train: 300, test: 50, side: 8, seed: 11 });
      const large = syntheticDataset({ train: 1500, test: 50, side: 8, seed: 11 });
      const bytesAtFirstBatch: number[] = [];
      for (const dataset of [small, large]) {
        const images = dataset.train.images;
        const before = fingerprint(images);
        const base = backend.allocatedBytes();
        let first = -1;
        const { model } = await train(
          { ...config, epochs: 1, valSplit: 0.1 },
          {
            dataset,
            kernels: backend,
            onBatch: () => {
              if (first < 0) first = backend.allocatedBytes() - base;
            },
          },
        );
        try {
          // Still the same byte array, unchanged: no float copy of the data set was made in its place.
          expect(dataset.train.images).toBe(images);
          expect(images).toBeInstanceOf(Uint8Array);
          expect(fingerprint(images)).toBe(before);
          // The input buffer is one batch (capacity rows), not the data set.
          expect(model.capacity).toBe(Math.max(config.batchSize!, 256));
          expect(model.inputTensor.length).toBe(model.capacity * dataset.train.features);
          expect(model.inputTensor.length).toBeLessThan(dataset.train.count * dataset.train.features);
        } finally {
          model.dispose();
        }
        bytesAtFirstBatch.push(first);
      }
      // Five times the images, the same backend memory: nothing is sized by the data set.
      expect(bytesAtFirstBatch[0]).toBeGreaterThan(0);
      expect(bytesAtFirstBatch[1]).toBe(bytesAtFirstBatch[0]);
    });
  });
}
