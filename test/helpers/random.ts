/**
 * Seeded test data. fast-check draws the shapes, options and a seed; the (large) float arrays
 * come from this small PRNG so that shrinking stays cheap and a failing seed reproduces.
 */
import type { Kernels, Tensor } from '../../src/kernels/types.js';

/** mulberry32: a tiny, well-mixed 32-bit generator (test data only). */
export class TestRng {
  private s: number;
  constructor(seed: number) {
    this.s = seed >>> 0;
  }
  next(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  /** Uniform in [-scale, scale), a fraction `zeros` of exact zeros, rounded to float32. */
  floats(n: number, scale = 1, zeros = 0): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = this.next() < zeros ? 0 : (2 * this.next() - 1) * scale;
    return out;
  }
}

export const GUARD = 12345.5;

/** A tensor holding `values`, followed by `pad` >= 1 guard elements. */
export function upload(k: Kernels, values: ArrayLike<number>, pad = 2): Tensor {
  const t = k.alloc(values.length + Math.max(1, pad));
  t.data.set(Array.from(values));
  t.data.fill(GUARD, values.length);
  return t;
}

/** True if every element from `from` on still holds the guard value. */
export function guardIntact(t: Tensor, from: number): boolean {
  return t.data.subarray(from).every((v) => v === GUARD);
}

/** Float64 copy of the first n elements. */
export function read(t: Tensor, n = t.length): Float64Array {
  return Float64Array.from(t.data.subarray(0, n));
}

/** Bitwise equality of two float32 ranges (NaN payloads aside), for determinism checks. */
export function sameBits(a: ArrayLike<number>, b: ArrayLike<number>, n: number): boolean {
  for (let i = 0; i < n; i++) if (!Object.is(a[i], b[i])) return false;
  return true;
}
