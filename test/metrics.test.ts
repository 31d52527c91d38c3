import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  accuracy,
  argmaxRows,
  confusionMatrix,
  countCorrect,
  mostConfidentWrong,
  normalizeConfusion,
  perClassStats,
  topKPerClass,
} from '../src/train/metrics.js';

interface T {
  shape: number[];
  data: number[];
}
const golden = JSON.parse(
  readFileSync(fileURLToPath(new URL('./fixtures/golden/predict.json', import.meta.url)), 'utf8'),
) as Record<string, unknown> & {
  probs: T;
  y: T;
  predictions: T;
  accuracy: number;
  top3_per_class: T;
  top3_per_class_probs: T;
  confusion: T;
  confusion_row_normalized: T;
  confusion_col_normalized: T;
  class_counts: T;
};

const [count, classes] = golden.probs.shape as [number, number];
const probs64 = Float64Array.from(golden.probs.data);
const labels = golden.y.data;

function rows(t: T): number[][] {
  const [r, c] = t.shape as [number, number];
  return Array.from({ length: r }, (_, i) => t.data.slice(i * c, (i + 1) * c));
}

function expectClose(actual: number[][], expected: number[][], tol: number): void {
  expect(actual.length).toBe(expected.length);
  actual.forEach((row, r) => {
    expect(row.length).toBe(expected[r]!.length);
    row.forEach((v, c) => {
      const e = expected[r]![c]!;
      if (Math.abs(v - e) > tol) throw new Error(`[${r}][${c}] = ${v}, expected ${e}`);
    });
  });
}

describe('metrics vs predict.json', () => {
  it('fixture has the expected shape', () => {
    expect(count).toBe(40);
    expect(classes).toBe(10);
  });

  it('argmaxRows matches predictions (float64 and float32)', () => {
    expect(Array.from(argmaxRows(probs64, count, classes))).toEqual(golden.predictions.data);
    expect(Array.from(argmaxRows(Float32Array.from(golden.probs.data), count, classes))).toEqual(golden.predictions.data);
  });

  it('confusion matrix and normalisations', () => {
    const m = confusionMatrix(labels, golden.predictions.data, classes);
    expect(m).toEqual(rows(golden.confusion));
    expectClose(normalizeConfusion(m, 'row'), rows(golden.confusion_row_normalized), 1e-12);
    expectClose(normalizeConfusion(m, 'col'), rows(golden.confusion_col_normalized), 1e-12);
  });

  it('accuracy, both forms', () => {
    expect(accuracy(labels, golden.predictions.data)).toBe(golden.accuracy);
    expect(accuracy(rows(golden.confusion))).toBe(golden.accuracy);
  });

  it('top-3 per class: indices exact, probabilities exact (float64)', () => {
    const top = topKPerClass(probs64, labels, count, classes, 3);
    expect(top.map((r) => r.map((s) => s.index))).toEqual(rows(golden.top3_per_class));
    expect(top.map((r) => r.map((s) => s.prob))).toEqual(rows(golden.top3_per_class_probs));
  });

  it('top-3 per class from float32 probabilities keeps the same ranking', () => {
    const top = topKPerClass(Float32Array.from(golden.probs.data), labels, count, classes, 3);
    expect(top.map((r) => r.map((s) => s.index))).toEqual(rows(golden.top3_per_class));
  });

  it('per-class stats from the golden confusion', () => {
    const m = rows(golden.confusion);
    const stats = perClassStats(m);
    expect(stats.map((s) => s.support)).toEqual(golden.class_counts.data);
    const row = rows(golden.confusion_row_normalized);
    const col = rows(golden.confusion_col_normalized);
    stats.forEach((s, c) => {
      expect(s.recall).toBeCloseTo(row[c]![c]!, 12);
      expect(s.accuracy).toBe(s.recall);
      expect(s.precision).toBeCloseTo(col[c]![c]!, 12);
    });
  });

  it('most confidently wrong: all wrong samples, sorted by predicted-class probability', () => {
    const wrong = mostConfidentWrong(probs64, labels, count, classes, 100);
    const expectedWrong = labels.filter((y, i) => y !== golden.predictions.data[i]).length;
    expect(wrong.length).toBe(expectedWrong);
    for (const w of wrong) {
      expect(w.trueLabel).toBe(labels[w.index]);
      expect(w.predicted).toBe(golden.predictions.data[w.index]);
      expect(w.predicted).not.toBe(w.trueLabel);
      expect(w.prob).toBe(probs64[w.index * classes + w.predicted]);
      expect(w.trueProb).toBe(probs64[w.index * classes + w.trueLabel]);
    }
    for (let i = 1; i < wrong.length; i++) expect(wrong[i - 1]!.prob).toBeGreaterThanOrEqual(wrong[i]!.prob);
    expect(mostConfidentWrong(probs64, labels, count, classes, 3)).toEqual(wrong.slice(0, 3));
  });
});

describe('metrics edge cases', () => {
  it('argmax ties go to the lower index; NaN never wins', () => {
    const p = Float32Array.from([0.5, 0.5, 0, 0, 1, 1, NaN, 0.2, 0.1, NaN, NaN, NaN]);
    expect(Array.from(argmaxRows(p, 4, 3))).toEqual([0, 1, 1, 0]);
  });

  it('countCorrect counts rows whose argmax (same rule) equals the label, reading only count rows', () => {
    const p = Float32Array.from([0.5, 0.5, 0, 0, 1, 1, NaN, 0.2, 0.1, NaN, NaN, NaN, 9, 9, 9]);
    const argmax = Array.from(argmaxRows(p.subarray(0, 12), 4, 3)); // [0, 1, 1, 0]
    for (const labels of [[0, 1, 1, 0], [1, 2, 1, 0], [2, 2, 2, 2]]) {
      const expected = labels.filter((y, i) => y === argmax[i]).length;
      expect(countCorrect(p, Float32Array.from([...labels, 7]), 4, 3)).toBe(expected);
    }
    expect(countCorrect(p, [0], 0, 3)).toBe(0);
    expect(() => countCorrect(p, [0, 1, 1, 0], 6, 3)).toThrow(RangeError);
    expect(() => countCorrect(p, [0, 1], 4, 3)).toThrow(RangeError);
  });

  it('top-k ties go to the lower index, short classes are padded with -1', () => {
    const p = Float64Array.from([
      0.7, 0.3, // 0: label 0
      0.7, 0.3, // 1: label 0 (tie with 0)
      0.9, 0.1, // 2: label 0
      0.2, 0.8, // 3: label 1
    ]);
    const top = topKPerClass(p, [0, 0, 0, 1], 4, 2, 3);
    expect(top[0]!.map((s) => s.index)).toEqual([2, 0, 1]);
    expect(top[1]!.map((s) => s.index)).toEqual([3, -1, -1]);
    expect(Number.isNaN(top[1]![1]!.prob)).toBe(true);
  });

  it('zero sums normalise to zeros', () => {
    const m = [
      [2, 0, 0],
      [0, 0, 0],
      [1, 0, 1],
    ];
    expect(normalizeConfusion(m, 'row')).toEqual([
      [1, 0, 0],
      [0, 0, 0],
      [0.5, 0, 0.5],
    ]);
    expect(normalizeConfusion(m, 'col')).toEqual([
      [2 / 3, 0, 0],
      [0, 0, 0],
      [1 / 3, 0, 1],
    ]);
    const stats = perClassStats(m);
    expect(stats[1]).toEqual({ precision: 0, recall: 0, accuracy: 0, support: 0 });
  });

  it('bad shapes and labels throw', () => {
    expect(() => argmaxRows(new Float32Array(5), 2, 3)).toThrow(RangeError);
    expect(() => confusionMatrix([0, 3], [0, 1], 3)).toThrow(/outside/);
    expect(() => confusionMatrix([0, 1], [0], 3)).toThrow(RangeError);
    expect(() => topKPerClass(new Float32Array(4), [0, 2], 2, 2)).toThrow(/outside/);
  });

  it('most confident wrong breaks ties toward the lower index', () => {
    const p = Float32Array.from([0.1, 0.9, 0.1, 0.9, 0.9, 0.1]);
    expect(mostConfidentWrong(p, [0, 0, 0], 3, 2, 5).map((w) => w.index)).toEqual([0, 1]);
  });
});
