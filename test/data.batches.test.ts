import { describe, expect, it } from 'vitest';
import { computeScaling, fillBatch, scalePixel, scalingTable } from '../src/data/batches.js';
import type { ImageSet, PixelScaling } from '../src/data/types.js';
import { syntheticSet } from './helpers/data-fixtures.js';

const raw = syntheticSet(50, 3, 3, 10, 21);
const set: ImageSet = { ...raw, features: 9 };

describe('fillBatch', () => {
  it('writes x row-major (count x features) as x/255 and y as the class index', () => {
    const idx = Uint32Array.of(7, 2, 49, 0, 13);
    const x = new Float32Array(3 * 9);
    const y = new Float32Array(3);
    fillBatch(set, idx, 1, 3, x, y, { kind: 'unit' });
    const chosen = [2, 49, 0];
    chosen.forEach((img, k) => {
      for (let p = 0; p < 9; p++) expect(x[k * 9 + p]).toBe(Math.fround(set.images[img * 9 + p]! / 255));
      expect(y[k]).toBe(set.labels[img]);
    });
    expect(x[3 * 9 - 9]).toBe(0); // image 0 pixel 0 is 0
    expect(x[3 * 9 - 8]).toBe(1); // image 0 pixel 1 is 255
  });

  it('standardize: (x/255 - mean) / std', () => {
    const s: PixelScaling = { kind: 'standardize', mean: 0.25, std: 0.5 };
    const x = new Float32Array(9);
    const y = new Float32Array(1);
    fillBatch(set, Uint32Array.of(4), 0, 1, x, y, s);
    for (let p = 0; p < 9; p++) expect(x[p]).toBe(Math.fround((set.images[36 + p]! / 255 - 0.25) / 0.5));
  });

  it('buffers may be longer than the batch; only the batch part is written', () => {
    const x = new Float32Array(4 * 9).fill(-7);
    const y = new Float32Array(4).fill(-7);
    fillBatch(set, Uint32Array.of(1, 2), 0, 2, x, y, { kind: 'unit' });
    expect(Array.from(x.subarray(18))).toEqual(new Array(18).fill(-7));
    expect(Array.from(y.subarray(2))).toEqual([-7, -7]);
    expect(x[0]).not.toBe(-7);
  });

  it('checks sizes and indices before writing anything', () => {
    const x = new Float32Array(2 * 9).fill(-1);
    const y = new Float32Array(2).fill(-1);
    expect(() => fillBatch(set, Uint32Array.of(0, 1), 1, 2, x, y, { kind: 'unit' })).toThrow(/exceeds indices.length/);
    expect(() => fillBatch(set, Uint32Array.of(0, 1, 2), 0, 3, x, y, { kind: 'unit' })).toThrow(/x holds 18 floats/);
    expect(() => fillBatch(set, Uint32Array.of(0, 1), 0, 2, x, new Float32Array(1), { kind: 'unit' })).toThrow(/y holds 1/);
    expect(() => fillBatch(set, Uint32Array.of(0, 50), 0, 2, x, y, { kind: 'unit' })).toThrow(/indices\[1\] = 50 is out of range/);
    expect(() => fillBatch(set, Uint32Array.of(0), -1, 1, x, y, { kind: 'unit' })).toThrow(RangeError);
    expect(() => fillBatch(set, Uint32Array.of(0), 0, 1, x, y, { kind: 'standardize', mean: 0, std: 0 })).toThrow(/std/);
    expect(Array.from(x)).toEqual(new Array(18).fill(-1));
  });

  it('aligned images (four pixels per load) give exactly what byte-by-byte reading gives', () => {
    // 4x4 images: features a multiple of 4, so a 4-byte-aligned set takes the 32-bit path and
    // the same bytes at an odd offset take the byte path.
    const sq = syntheticSet(40, 4, 4, 10, 5);
    const aligned: ImageSet = { ...sq, features: 16 };
    const storage = new Uint8Array(sq.images.length + 1);
    storage.set(sq.images, 1);
    const unaligned: ImageSet = { ...aligned, images: storage.subarray(1) };
    expect(unaligned.images.byteOffset % 4).toBe(1);
    const idx = Uint32Array.of(39, 0, 17, 5, 22, 39);
    for (const s of [{ kind: 'unit' }, { kind: 'standardize', mean: 0.3, std: 0.7 }] as PixelScaling[]) {
      const xa = new Float32Array(6 * 16);
      const xu = new Float32Array(6 * 16);
      const ya = new Float32Array(6);
      const yu = new Float32Array(6);
      fillBatch(aligned, idx, 0, 6, xa, ya, s);
      fillBatch(unaligned, idx, 0, 6, xu, yu, s);
      expect(Array.from(xa)).toEqual(Array.from(xu));
      expect(Array.from(ya)).toEqual(Array.from(yu));
      idx.forEach((img, k) => {
        for (let p = 0; p < 16; p++) expect(xa[k * 16 + p]).toBe(scalePixel(sq.images[img * 16 + p]!, s));
      });
      expect(computeScaling(aligned, idx, true)).toEqual(computeScaling(unaligned, idx, true));
    }
  });

  it('reuses one lookup table per scaling (no allocation per call)', () => {
    expect(scalingTable({ kind: 'unit' })).toBe(scalingTable({ kind: 'unit' }));
    const s: PixelScaling = { kind: 'standardize', mean: 0.1, std: 0.3 };
    const t = scalingTable(s);
    expect(scalingTable(s)).toBe(t);
    expect(scalingTable({ kind: 'standardize', mean: 0.1, std: 0.3 })).toBe(t); // same values, new object
    expect(scalingTable({ kind: 'standardize', mean: 0.2, std: 0.3 })).not.toBe(t);
    expect(scalingTable(s)).toBe(t);
    expect(t.length).toBe(256);
    expect(scalePixel(255, s)).toBe(Math.fround((1 - 0.1) / 0.3));
  });
});

describe('computeScaling', () => {
  it('unit unless standardize', () => {
    expect(computeScaling(set, Uint32Array.of(0, 1), false)).toEqual({ kind: 'unit' });
  });

  it('mean and population std of x/255 over the given images only', () => {
    const idx = Uint32Array.of(3, 10, 11, 40);
    const s = computeScaling(set, idx, true);
    const vals: number[] = [];
    for (const i of idx) for (let p = 0; p < 9; p++) vals.push(set.images[i * 9 + p]! / 255);
    const mean = vals.reduce((a, b) => a + b, 0) / vals.length;
    const std = Math.sqrt(vals.reduce((a, b) => a + (b - mean) ** 2, 0) / vals.length);
    expect(s.kind).toBe('standardize');
    if (s.kind !== 'standardize') return;
    expect(s.mean).toBeCloseTo(mean, 12);
    expect(s.std).toBeCloseTo(std, 12);
    const other = computeScaling(set, Uint32Array.of(0, 1, 2), true);
    expect(other).not.toEqual(s); // depends on which images
  });

  it('a constant set gets std 1; no images is an error', () => {
    const flat: ImageSet = { count: 2, height: 1, width: 2, features: 2, images: Uint8Array.of(51, 51, 51, 51), labels: Uint8Array.of(0, 1) };
    expect(computeScaling(flat, Uint32Array.of(0, 1), true)).toEqual({ kind: 'standardize', mean: 0.2, std: 1 });
    expect(() => computeScaling(flat, new Uint32Array(0), true)).toThrow(RangeError);
  });
});
