import { describe, expect, it } from 'vitest';
import { Rng } from '../src/rng.js';
import { heldOutCount, shuffleEpoch, splitIndices, subsetImageSet, validationSplit } from '../src/data/split.js';
import { syntheticSet } from './helpers/data-fixtures.js';
import type { ImageSet } from '../src/data/types.js';

const raw = syntheticSet(1000, 2, 2, 10, 4);
const set: ImageSet = { ...raw, features: 4 };

function sorted(a: Uint32Array): number[] {
  return Array.from(a).sort((x, y) => x - y);
}

describe('validation split', () => {
  it('is deterministic by seed, and different seeds give different splits', () => {
    const a = validationSplit(set, new Rng(42));
    const b = validationSplit(set, new Rng(42));
    const c = validationSplit(set, new Rng(43));
    expect(Array.from(a.val)).toEqual(Array.from(b.val));
    expect(Array.from(a.train)).toEqual(Array.from(b.train));
    expect(Array.from(a.val)).not.toEqual(Array.from(c.val));
  });

  it('default fraction 0.1; parts are disjoint and cover every index once', () => {
    const { train, val } = validationSplit(set, new Rng(1));
    expect(val.length).toBe(100);
    expect(train.length).toBe(900);
    expect(sorted(new Uint32Array([...train, ...val]))).toEqual(Array.from({ length: 1000 }, (_, i) => i));
  });

  it('fraction 0 holds nothing out; bad fractions throw', () => {
    const { train, val } = validationSplit(set, new Rng(1), 0);
    expect(val.length).toBe(0);
    expect(train.length).toBe(1000);
    expect(() => validationSplit(set, new Rng(1), 1)).toThrow(RangeError);
    expect(() => validationSplit(set, new Rng(1), -0.1)).toThrow(RangeError);
    expect(() => validationSplit(set, new Rng(1), Number.NaN)).toThrow(RangeError);
  });

  it('heldOutCount rounds and keeps both parts non-empty', () => {
    expect(heldOutCount(1000, 0.1)).toBe(100);
    expect(heldOutCount(10, 0.01)).toBe(1);
    expect(heldOutCount(2, 0.9)).toBe(1);
    expect(() => heldOutCount(1, 0.5)).toThrow(/cannot split 1 item/);
  });

  it('stratified: each class gives its share, total still round(n * fraction)', () => {
    // Unbalanced labels: class c has 10 * (c + 1) items.
    const labels: number[] = [];
    for (let c = 0; c < 10; c++) for (let k = 0; k < 10 * (c + 1); k++) labels.push(c);
    const l = Uint8Array.from(labels);
    const { train, held } = splitIndices(l.length, 0.2, new Rng(3), l, { stratify: true });
    expect(held.length).toBe(Math.round(l.length * 0.2));
    const counts = new Array<number>(10).fill(0);
    for (const i of held) counts[l[i]!]!++;
    counts.forEach((n, c) => expect(n).toBe(2 * (c + 1)));
    expect(train.length + held.length).toBe(l.length);
  });

  it('stratified split is deterministic by seed', () => {
    const a = splitIndices(1000, 0.15, new Rng(8), set.labels, { stratify: true });
    const b = splitIndices(1000, 0.15, new Rng(8), set.labels, { stratify: true });
    expect(Array.from(a.held)).toEqual(Array.from(b.held));
  });
});

describe('epoch shuffling', () => {
  it('reshuffles in place, deterministically, as a permutation', () => {
    const { train } = validationSplit(set, new Rng(5));
    const rngA = new Rng(77);
    const rngB = new Rng(77);
    const a = train.slice();
    const b = train.slice();
    shuffleEpoch(a, rngA);
    shuffleEpoch(b, rngB);
    expect(Array.from(a)).toEqual(Array.from(b));
    expect(Array.from(a)).not.toEqual(Array.from(train));
    expect(sorted(a)).toEqual(sorted(train));
    const epoch1 = a.slice();
    shuffleEpoch(a, rngA); // the next epoch differs
    expect(Array.from(a)).not.toEqual(Array.from(epoch1));
  });
});

describe('subsetImageSet', () => {
  it('copies the chosen images and labels in order', () => {
    const s = subsetImageSet(set, Uint32Array.of(3, 0, 999));
    expect(s).toMatchObject({ count: 3, height: 2, width: 2, features: 4 });
    expect(Array.from(s.images.subarray(0, 4))).toEqual(Array.from(set.images.subarray(12, 16)));
    expect(Array.from(s.images.subarray(8, 12))).toEqual(Array.from(set.images.subarray(3996, 4000)));
    expect(Array.from(s.labels)).toEqual([set.labels[3], set.labels[0], set.labels[999]]);
    expect(() => subsetImageSet(set, Uint32Array.of(1000))).toThrow(RangeError);
  });
});
