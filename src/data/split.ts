/**
 * Seeded splits and per-epoch shuffling. Every random choice comes from the Rng passed in, so
 * the same seed gives the same split and the same batch order, bit for bit.
 */
import type { Rng } from '../rng.js';
import type { ImageSet } from './types.js';

export interface IndexSplit {
  /** Indices into the set that stay for training (in shuffled order). */
  train: Uint32Array;
  /** Held-out indices (in shuffled order). Empty when fraction is 0. */
  held: Uint32Array;
}

export interface SplitOptions {
  /**
   * Keep class proportions: each class gives the same fraction (largest-remainder rounding,
   * so the total is still round(count * fraction)). Needs labels.
   */
  stratify?: boolean;
}

/** Number of held-out items for a fraction: round(count * fraction), at least 1 and at most count - 1 when fraction > 0. */
export function heldOutCount(count: number, fraction: number): number {
  if (!(fraction >= 0 && fraction < 1)) throw new RangeError(`split fraction must be in [0, 1), got ${fraction}`);
  if (fraction === 0) return 0;
  if (count < 2) throw new RangeError(`cannot split ${count} item${count === 1 ? '' : 's'} into two non-empty parts`);
  return Math.min(count - 1, Math.max(1, Math.round(count * fraction)));
}

/**
 * Splits indices 0..count-1 into train and held-out parts: a Fisher-Yates shuffle by `rng`,
 * the first round(count * fraction) held out. With `stratify`, each class contributes its
 * share (the labels decide the class of each index).
 */
export function splitIndices(
  count: number,
  fraction: number,
  rng: Rng,
  labels?: Uint8Array,
  options: SplitOptions = {},
): IndexSplit {
  if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
  const nHeld = heldOutCount(count, fraction);
  const order = new Uint32Array(count);
  for (let i = 0; i < count; i++) order[i] = i;
  rng.shuffle(order);
  if (nHeld === 0) return { train: order, held: new Uint32Array(0) };
  if (!options.stratify) {
    return { train: order.slice(nHeld), held: order.slice(0, nHeld) };
  }
  if (labels === undefined || labels.length < count) throw new RangeError('stratified split needs one label per item');

  // Quota per class: floor of the exact share, then the largest remainders get one more.
  const perClass = new Array<number>(256).fill(0);
  for (let i = 0; i < count; i++) perClass[labels[i]!]!++;
  const quota = perClass.map((n) => Math.floor((n * nHeld) / count));
  let assigned = quota.reduce((a, b) => a + b, 0);
  const byRemainder = perClass
    .map((n, c) => ({ c, rem: (n * nHeld) / count - quota[c]!, n }))
    .filter((e) => e.n > 0)
    .sort((a, b) => b.rem - a.rem || a.c - b.c);
  for (let k = 0; assigned < nHeld && k < byRemainder.length; k++) {
    const c = byRemainder[k]!.c;
    if (quota[c]! < perClass[c]!) {
      quota[c]!++;
      assigned++;
    }
  }
  // Walk the shuffled order: an index is held out while its class quota lasts.
  const held = new Uint32Array(nHeld);
  const train = new Uint32Array(count - nHeld);
  let h = 0;
  let t = 0;
  for (let k = 0; k < count; k++) {
    const idx = order[k]!;
    const c = labels[idx]!;
    if (quota[c]! > 0 && h < nHeld) {
      quota[c]!--;
      held[h++] = idx;
    } else {
      train[t++] = idx;
    }
  }
  return { train, held };
}

/**
 * Validation split for training: `fraction` (default 0.1) of the training set held out.
 * Returns indices into `set`; use them with fillBatch.
 */
export function validationSplit(
  set: ImageSet,
  rng: Rng,
  fraction = 0.1,
  options: SplitOptions = {},
): { train: Uint32Array; val: Uint32Array } {
  const { train, held } = splitIndices(set.count, fraction, rng, set.labels, options);
  return { train, val: held };
}

/** Reshuffles the training order in place for a new epoch. */
export function shuffleEpoch(order: Uint32Array, rng: Rng): void {
  rng.shuffle(order);
}

/** A new ImageSet holding copies of the given images (in the given order). */
export function subsetImageSet(set: ImageSet, indices: Uint32Array): ImageSet {
  const f = set.features;
  const images = new Uint8Array(indices.length * f);
  const labels = new Uint8Array(indices.length);
  for (let k = 0; k < indices.length; k++) {
    const i = indices[k]!;
    if (i >= set.count) throw new RangeError(`index ${i} out of range for a set of ${set.count}`);
    images.set(set.images.subarray(i * f, (i + 1) * f), k * f);
    labels[k] = set.labels[i]!;
  }
  return { count: indices.length, height: set.height, width: set.width, features: f, images, labels };
}
