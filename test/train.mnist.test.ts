/**
 * Learning on real data: 'mnist-sample' (8,000 train / 2,000 test MNIST digits) with the
 * backend that auto-selects. Short runs only; the full default recipe is measured outside
 * the suite (see src/train/defaults.ts).
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/registry.js';
import type { Dataset } from '../src/data/types.js';
import { train } from '../src/train/train.js';

let dataset: Dataset;
beforeAll(async () => {
  dataset = await loadDataset('mnist-sample');
});

describe('training on mnist-sample', () => {
  it('learns: the loss falls and test accuracy is far above chance after 2 epochs', async () => {
    const losses: number[] = [];
    const { record, model } = await train({ layers: [784, 64, 10], epochs: 2 }, { dataset, onBatch: (e) => losses.push(e.loss) });
    try {
      expect(record.stopReason).toBe('completed');
      expect(record.dataset).toMatchObject({ trainCount: 7200, valCount: 800, testCount: 2000 });
      const first = losses[0]!;
      const last = losses.slice(-10).reduce((a, b) => a + b) / 10;
      expect(first).toBeGreaterThan(1.5); // about ln 10 = 2.3 at the start
      expect(last).toBeLessThan(first / 5);
      expect(record.epochs[1]!.trainLoss).toBeLessThan(record.epochs[0]!.trainLoss);
      expect(record.epochs[1]!.valAccuracy!).toBeGreaterThan(0.85);
      expect(record.test!.count).toBe(2000);
      expect(record.test!.accuracy).toBeGreaterThan(0.85); // chance is 0.1
      expect(record.test!.confusion.flat().reduce((a, b) => a + b, 0)).toBe(2000);
      // predict() agrees with the evaluation: probabilities per row sum to 1.
      const probs = model.predict(new Float32Array(784 * 3), 3);
      for (let r = 0; r < 3; r++) expect(probs.subarray(r * 10, r * 10 + 10).reduce((a, b) => a + b)).toBeCloseTo(1, 5);
      expect(model.scaling?.kind).toBe('standardize');
    } finally {
      model.dispose();
    }
  });

  it('lr 10 with the default recipe diverges, with a message naming epoch and batch', async () => {
    const { record, model } = await train({ lr: 10, epochs: 1 }, { dataset });
    model.dispose();
    expect(record.stopReason).toBe('diverged');
    expect(record.stopMessage).toMatch(/^the loss became (NaN|Infinity) in epoch 1, batch \d+ \(lr 10\); try a lower learning rate/);
    expect(record.bestEpoch).toBe(0);
    expect(record.test).toBeNull();
  });
});
