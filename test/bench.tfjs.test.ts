/**
 * The TF.js side of `densetrain bench train --vs-tfjs` (src/bench/tfjs.ts): without TF.js the
 * comparison is skipped with one line naming the remedy; with the devDependencies installed, a
 * tiny model trains on TF.js's wasm backend (its loss falls and it learns a separable set), and
 * the ratio attaches to the fp32 rows of the same model only. No timing assertions.
 */
import { describe, expect, it } from 'vitest';
import { attachTfjs, runTfjsBench, type TfjsOptions } from '../src/bench/tfjs.js';
import type { TrainBenchRow } from '../src/bench/train.js';
import type { ImageSet } from '../src/data/types.js';

/** 4 classes, each lighting its own quarter of the 16 pixels (plus a little structured noise). */
function separableSet(count: number): ImageSet {
  const features = 16;
  const images = new Uint8Array(count * features);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    labels[i] = i % 4;
    for (let p = 0; p < features; p++) images[i * features + p] = ((p >> 2) === labels[i] ? 200 : 20) + ((i * 7 + p * 13) % 40);
  }
  return { count, height: 4, width: 4, features, images, labels };
}

const base: TfjsOptions = {
  models: [{ name: '16-8-4', layers: [16, 8, 4], batchSize: 32 }],
  epochs: 2,
  warmup: 1,
  trainSet: separableSet(512),
  recipe: { lr: 0.05, momentum: 0.9, nesterov: true, l2: 1e-3 },
};

describe('bench --vs-tfjs', () => {
  it('skips with one line naming the remedy when TF.js is not installed', async () => {
    const missing = Object.assign(new Error("Cannot find package '@tensorflow/tfjs-core'"), { code: 'ERR_MODULE_NOT_FOUND' });
    const r = await runTfjsBench({ ...base, importModule: () => Promise.reject(missing) });
    expect(r).toMatchObject({ ok: false, reason: 'TF.js is not installed' });
    expect(r.lines).toEqual([expect.stringMatching(/^TF\.js comparison skipped: TF\.js is not installed; @tensorflow\/tfjs-core and @tensorflow\/tfjs-backend-wasm 4\.22\.0 are devDependencies/)]);
  });

  it('trains the model on the wasm backend (the loss falls, the set is learnt) and attaches the ratio to fp32 rows', async () => {
    const r = await runTfjsBench(base);
    if (!r.ok) throw new Error(r.lines.join('\n')); // a clone has the devDependencies
    expect(r).toMatchObject({ backend: 'wasm', version: '4.22.0', threads: 1 });
    const [row] = r.rows;
    expect(row).toMatchObject({ model: '16-8-4', batchSize: 32 });
    expect(row!.epochSeconds).toHaveLength(2);
    expect(row!.secondsPerEpoch).toBeGreaterThan(0);
    expect(row!.finalTrainLoss).toBeLessThan(Math.log(4) / 2); // chance is ln 4
    expect(row!.finalTrainAccuracy).toBeGreaterThan(0.9);

    const rows = [
      { model: '16-8-4', precision: 'fp32', secondsPerEpoch: 2 * row!.secondsPerEpoch },
      { model: '16-8-4', precision: 'bf16', secondsPerEpoch: 1 },
      { model: 'other', precision: 'fp32', secondsPerEpoch: 1 },
    ] as TrainBenchRow[];
    attachTfjs(rows, r);
    expect(rows[0]!.tfjsSecondsPerEpoch).toBe(row!.secondsPerEpoch);
    expect(rows[0]!.tfjsRatio).toBeCloseTo(2, 12);
    expect(rows[1]!.tfjsRatio).toBeUndefined();
    expect(rows[2]!.tfjsRatio).toBeUndefined();
  });
});
