/**
 * bf16 mixed precision (precision 'bf16' of gemm and denseForward): the rounding rule, and every
 * backend that offers it against a float64 oracle built on that rule.
 *
 * TOLERANCES. bfloat16 keeps 8 significant bits, so rounding one operand moves it by at most
 * u = 2^-8 of its size, and a product of two rounded operands by at most 2u + u^2 (< 2^-6.99).
 * That is the gap between a bf16 GEMM and an fp32 one: |c_bf16 - c_exact| <= (2u + u^2) Σ|a b|
 * plus the float32 summation error. Between a backend and the oracle, though, the rounding is
 * the same bits (every backend rounds on the bits with the same rule, checked below), and each
 * product of two bfloat16 values is exact in float32 (8 + 8 significant bits <= 24): only the
 * float32 accumulation differs, so the backend must be within γ_{k+2} (|α| Σ|â b̂| + |β c|) of
 * the oracle (â, b̂ the rounded operands), the same bound as the fp32 GEMM tests, ~2^-8 times
 * tighter than the bf16-vs-fp32 gap. A backend that skipped the rounding would be off by up to
 * that gap and fails; so would one that rounded differently (truncation, ties away from zero).
 * vdpbf16ps treats bfloat16 subnormals (below 2^-126) as zero: FLT_MIN-scale absolute slack.
 */
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../src/kernels/native.js';
import { roundBf16, roundedBf16Copy } from '../src/kernels/bf16.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Kernels, Tensor } from '../src/kernels/types.js';
import { backendStatus, registerMissingBackends } from './helpers/backends.js';
import { TestRng, guardIntact, read, sameBits, upload } from './helpers/random.js';
import { FLT_MIN, gamma } from './helpers/tolerance.js';

registerMissingBackends('bf16');

const bitsOf = (x: number): number => new Uint32Array(Float32Array.of(x).buffer)[0]!;
const fromBits = (b: number): number => new Float32Array(Uint32Array.of(b >>> 0).buffer)[0]!;

/** The bfloat16 nearest to a float32 by arithmetic on values (not bits): the rule's oracle. */
function nearestBf16ByValue(x: number): number {
  const f = Math.fround(x);
  if (Number.isNaN(f) || !Number.isFinite(f) || f === 0) return f;
  const down = fromBits(bitsOf(f) & 0xffff0000); // toward zero
  const up = fromBits(((bitsOf(f) & 0xffff0000) + 0x10000) >>> 0); // away from zero (may be inf)
  const dDown = Math.abs(f - down);
  // Past the largest bfloat16 the next step up is 2^128 (which rounds to infinity).
  const dUp = Math.abs((Number.isFinite(up) ? up : Math.sign(f) * 2 ** 128) - f);
  if (dDown < dUp) return down;
  if (dUp < dDown) return up;
  return ((bitsOf(down) >>> 16) & 1) === 0 ? down : up; // tie: even last bit
}

describe('bfloat16 rounding (bf16.ts, the rule every backend follows)', () => {
  it('rounds ties to even', () => {
    // 1 + 2^-8 lies halfway between 1 and 1 + 2^-7: even is 1. 1 + 3·2^-8 lies between
    // 1 + 2^-7 (odd) and 1 + 2^-6 (even): even is up.
    expect(roundBf16(1 + 2 ** -8)).toBe(1);
    expect(roundBf16(1 + 3 * 2 ** -8)).toBe(1 + 2 ** -6);
    expect(roundBf16(-(1 + 2 ** -8))).toBe(-1);
    expect(roundBf16(1 + 2 ** -8 + 2 ** -20)).toBe(1 + 2 ** -7); // just past the tie
    expect(roundBf16(1 + 2 ** -8 - 2 ** -20)).toBe(1);
    expect(roundBf16(3.140625)).toBe(3.140625); // already a bfloat16
  });

  it('keeps infinities, zeros and their signs; overflows past the largest bfloat16 to infinity', () => {
    expect(roundBf16(Infinity)).toBe(Infinity);
    expect(roundBf16(-Infinity)).toBe(-Infinity);
    expect(Object.is(roundBf16(-0), -0)).toBe(true);
    expect(Object.is(roundBf16(0), 0)).toBe(true);
    const maxBf16 = fromBits(0x7f7f0000);
    expect(roundBf16(maxBf16)).toBe(maxBf16);
    expect(roundBf16(fromBits(0x7f7f7fff))).toBe(maxBf16); // below the tie
    expect(roundBf16(fromBits(0x7f7f8000))).toBe(Infinity); // tie, odd below: up to infinity
    expect(roundBf16(fromBits(0xff7fffff))).toBe(-Infinity); // largest float32
  });

  it('keeps NaNs NaN, including those whose payload is only in the dropped bits', () => {
    for (const bits of [0x7fc00000, 0x7f800001, 0xff800001, 0x7fbfffff, 0xffffffff]) {
      const r = roundBf16(fromBits(bits));
      expect(Number.isNaN(r)).toBe(true);
      expect(bitsOf(r) & 0xffff).toBe(0);
    }
  });

  it('rounds subnormals like any other value (no flush to zero)', () => {
    const smallestBf16 = 2 ** -133; // bfloat16's smallest subnormal
    expect(roundBf16(smallestBf16)).toBe(smallestBf16);
    expect(roundBf16(2 ** -149)).toBe(0); // far below half of it
    expect(roundBf16(smallestBf16 / 2)).toBe(0); // the tie between 0 (even) and 2^-133
    expect(roundBf16(smallestBf16 * 1.5)).toBe(2 * smallestBf16); // tie, 2^-133 odd: up
    expect(roundBf16(-smallestBf16 * 0.75)).toBe(-smallestBf16);
    expect(roundBf16(fromBits(0x007fffff))).toBe(2 ** -126); // largest float32 subnormal rounds up to FLT_MIN
  });

  it('agrees with the nearest bfloat16 by value on 20,000 random bit patterns, and the array form agrees bit for bit', () => {
    const rng = new TestRng(14);
    const values = new Float32Array(20000);
    const bits = new Uint32Array(values.buffer);
    for (let i = 0; i < bits.length; i++) bits[i] = Math.floor(rng.next() * 2 ** 32) >>> 0;
    const copy = roundedBf16Copy(values, values.length);
    for (let i = 0; i < values.length; i++) {
      const x = values[i]!;
      const r = roundBf16(x);
      if (Number.isNaN(x)) {
        expect(Number.isNaN(r)).toBe(true);
        continue;
      }
      expect(r).toBe(nearestBf16ByValue(x));
      expect(Math.abs(r - x)).toBeLessThanOrEqual(Number.isFinite(r) ? Math.max(Math.abs(x) * 2 ** -8, 2 ** -134) : Infinity);
      expect(Object.is(copy[i], r)).toBe(true);
    }
  });
});

/** C = alpha op(Â) op(B̂) + beta C in float64 (Â, B̂ rounded to bfloat16), and Σ|α â b̂| + |β c| per entry. */
function oracle(ta: boolean, tb: boolean, m: number, n: number, k: number, alpha: number, A: Float32Array, B: Float32Array, beta: number, C0: Float64Array, bf16: boolean) {
  const a = bf16 ? roundedBf16Copy(A, m * k) : A;
  const b = bf16 ? roundedBf16Copy(B, k * n) : B;
  const c = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let t = 0;
      for (let p = 0; p < k; p++) {
        const x = (ta ? a[p * m + i] : a[i * k + p])! * (tb ? b[j * k + p] : b[p * n + j])!;
        s += x;
        t += Math.abs(x);
      }
      const old = beta === 0 ? 0 : beta * C0[i * n + j]!;
      c[i * n + j] = alpha * s + old;
      mag[i * n + j] = Math.abs(alpha) * t + Math.abs(old);
    }
  }
  return { c, mag };
}

const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [3, 5, 7],
  [13, 33, 9],
  [17, 16, 31], // narrow output (16 columns), odd k
  [128, 10, 64], // the 10-class layer
  [128, 64, 128],
  [37, 70, 301],
  [64, 130, 784], // k past one KC slice, odd panel counts
];

const bf16Backends = backendStatus().loaded.filter((b) => b.kernels.info().bf16?.available);

describe.each(bf16Backends.map((b) => [b.name, b.kernels] as const))('bf16 GEMM on %s', (_name, k: Kernels) => {
  it('reports how it runs bf16', () => {
    const info = k.info().bf16!;
    expect(info.available).toBe(true);
    expect(info.detail.length).toBeGreaterThan(2);
  });

  it('matches the float64 oracle on rounded operands within the float32 summation bound, all forms', () => {
    const rng = new TestRng(3);
    for (const [m, n, kk] of SHAPES) {
      for (const ta of [false, true]) {
        for (const tb of [false, true]) {
          for (const [alpha, beta] of [[1, 0], [0.5, -1.25]] as const) {
            const A = rng.floats(m * kk, 2);
            const B = rng.floats(kk * n, 2);
            const C0 = rng.floats(m * n, 1);
            const a = upload(k, A);
            const b = upload(k, B);
            const c = upload(k, beta === 0 ? new Float32Array(m * n).fill(Number.NaN) : C0);
            k.gemm(ta, tb, m, n, kk, alpha, a, b, beta, c, 'bf16');
            const got = read(c, m * n);
            const { c: want, mag } = oracle(ta, tb, m, n, kk, alpha, A, B, beta, Float64Array.from(C0), true);
            const tol = gamma(kk + 2);
            for (let i = 0; i < m * n; i++) {
              const err = Math.abs(got[i]! - want[i]!);
              if (!(err <= tol * mag[i]! + FLT_MIN)) {
                throw new Error(`${m}x${n}x${kk} ta=${ta} tb=${tb} alpha=${alpha} beta=${beta}: c[${i}] = ${got[i]}, oracle ${want[i]} (|err| ${err} > ${tol * mag[i]!})`);
              }
            }
            expect(guardIntact(c, m * n)).toBe(true);
            expect(sameBits(a.data, A, m * kk)).toBe(true); // operands are rounded in scratch, not in place
            for (const t of [a, b, c]) k.free(t);
          }
        }
      }
    }
  });

  it('really rounds: results differ from fp32 by up to the bf16 gap and stay within (2u + u^2) Σ|ab|', () => {
    const rng = new TestRng(5);
    const [m, n, kk] = [32, 40, 200];
    const A = rng.floats(m * kk, 1);
    const B = rng.floats(kk * n, 1);
    const a = upload(k, A);
    const b = upload(k, B);
    const c = upload(k, new Float32Array(m * n));
    k.gemm(false, false, m, n, kk, 1, a, b, 0, c, 'bf16');
    const got = read(c, m * n);
    const { c: exact, mag } = oracle(false, false, m, n, kk, 1, A, B, 0, new Float64Array(m * n), false);
    const u = 2 ** -8;
    let beyondFp32 = 0;
    for (let i = 0; i < m * n; i++) {
      const err = Math.abs(got[i]! - exact[i]!);
      expect(err).toBeLessThanOrEqual((2 * u + u * u + gamma(kk + 2)) * mag[i]!);
      if (err > gamma(kk + 2) * mag[i]!) beyondFp32++;
    }
    // An fp32 GEMM stays within γ_{k+2} Σ|ab| everywhere; rounded operands leave it on most entries.
    expect(beyondFp32).toBeGreaterThan((m * n) / 2);
    for (const t of [a, b, c]) k.free(t);
  });

  it('passes special values through the rounding rule (1x1x1: c = bf16(a) · 1)', () => {
    const one = upload(k, [1]);
    for (const x of [1 + 2 ** -8, 1 + 3 * 2 ** -8, -(1 + 2 ** -8), Infinity, -Infinity, Number.NaN, fromBits(0x7f800001), fromBits(0x7f7f8000), 2 ** -100, 2 ** -133]) {
      const a = upload(k, [x]);
      const c = upload(k, [0]);
      k.gemm(false, false, 1, 1, 1, 1, a, one, 0, c, 'bf16');
      const got = c.data[0]!;
      const want = roundBf16(x);
      if (Math.abs(want) < FLT_MIN && want !== 0) {
        // A bfloat16 subnormal: vdpbf16ps reads it as zero; plain-code backends keep it.
        expect(got === want || got === 0).toBe(true);
      } else {
        expect(Object.is(got, want) || (Number.isNaN(got) && Number.isNaN(want))).toBe(true);
      }
      k.free(a);
      k.free(c);
    }
    k.free(one);
  });

  it('denseForward in bf16 gives the bits of gemm NT in bf16 + biasActivation', () => {
    const rng = new TestRng(9);
    for (const [rows, inF, outF] of [[128, 784, 128], [128, 64, 10], [5, 7, 33]] as const) {
      const x = upload(k, rng.floats(rows * inF, 1));
      const w = upload(k, rng.floats(outF * inF, 0.1));
      const bias = upload(k, rng.floats(outF, 0.1));
      const z1 = k.alloc(rows * outF);
      const h1 = k.alloc(rows * outF);
      const z2 = k.alloc(rows * outF);
      const h2 = k.alloc(rows * outF);
      k.denseForward(rows, inF, outF, x, w, bias, { kind: 'relu' }, z1, h1, 'bf16');
      k.gemm(false, true, rows, outF, inF, 1, x, w, 0, z2, 'bf16');
      k.biasActivation(rows, outF, z2, bias, { kind: 'relu' }, h2);
      expect(sameBits(z1.data, z2.data, rows * outF)).toBe(true);
      expect(sameBits(h1.data, h2.data, rows * outF)).toBe(true);
      for (const t of [x, w, bias, z1, h1, z2, h2]) k.free(t);
    }
  });

  it('gives the same bits at 1 and 2 threads', () => {
    if (k.name !== 'native') return;
    const threads = k.info().threads;
    const rng = new TestRng(11);
    const [m, n, kk] = [256, 130, 784];
    const a = upload(k, rng.floats(m * kk, 1));
    const b = upload(k, rng.floats(kk * n, 1));
    const c1 = k.alloc(m * n);
    const c2 = k.alloc(m * n);
    try {
      k.setThreads(1);
      k.gemm(true, false, m, n, kk, 1, a, b, 0, c1, 'bf16');
      k.setThreads(2);
      k.gemm(true, false, m, n, kk, 1, a, b, 0, c2, 'bf16');
      expect(sameBits(c1.data, c2.data, m * n)).toBe(true);
    } finally {
      k.setThreads(threads);
      for (const t of [a, b, c1, c2]) k.free(t);
    }
  });
});

describe('precision argument', () => {
  const ref = createReferenceKernels();
  it('refuses anything but fp32 and bf16, naming it', () => {
    const a = ref.alloc(4);
    const b = ref.alloc(4);
    const c = ref.alloc(4);
    expect(() => ref.gemm(false, false, 2, 2, 2, 1, a, b, 0, c, 'fp16' as never)).toThrow(/precision must be 'fp32' or 'bf16', got the string "fp16"/);
    expect(() => ref.denseForward(2, 2, 2, a, b, null, { kind: 'relu' }, c, c, 'half' as never)).toThrow(RangeError);
  });

  it('fp32 and an absent precision are the same call', () => {
    const rng = new TestRng(2);
    const A = rng.floats(12, 1);
    const a = upload(ref, A);
    const b = upload(ref, rng.floats(12, 1));
    const c1 = ref.alloc(9);
    const c2 = ref.alloc(9);
    ref.gemm(false, false, 3, 3, 4, 1, a, b, 0, c1);
    ref.gemm(false, false, 3, 3, 4, 1, a, b, 0, c2, 'fp32');
    expect(sameBits(c1.data, c2.data, 9)).toBe(true);
  });
});

describe('native without bf16 instructions', () => {
  const native = backendStatus().loaded.find((b) => b.name === 'native');
  it.runIf(native !== undefined)('says why and refuses bf16 (never a silent fp32 or emulation) when the ISA in use has none', () => {
    const addon = loadNativeAddon();
    const k = native!.kernels as Kernels;
    const before = addon.isa();
    const a = upload(k, [1, 2, 3, 4]);
    const b = upload(k, [1, 2, 3, 4]);
    const c: Tensor = k.alloc(4);
    try {
      addon.setIsa('avx2');
      const info = k.info().bf16!;
      expect(info.available).toBe(false);
      expect(info.detail).toMatch(/AVX512-BF16/);
      expect(() => k.gemm(false, false, 2, 2, 2, 1, a, b, 0, c, 'bf16')).toThrow(/precision 'bf16' is not available on the native backend: .*AVX512-BF16/);
      // The raw addon refuses too (defence in depth).
      expect(() => addon.gemm(false, false, 2, 2, 2, 1, a.data, b.data, 0, c.data, true)).toThrow(RangeError);
      k.gemm(false, false, 2, 2, 2, 1, a, b, 0, c); // fp32 still runs
      expect(Array.from(c.data)).toEqual([7, 10, 15, 22]);
    } finally {
      addon.setIsa(before);
      for (const t of [a, b, c]) k.free(t);
    }
  });
});

describe('bf16 availability on this machine', () => {
  it('native reports bf16 exactly when the CPU has AVX512-BF16 and the avx512 kernels are in use', async () => {
    const native = backendStatus().loaded.find((b) => b.name === 'native');
    if (!native) return;
    const { readFileSync } = await import('node:fs');
    let flags = '';
    try {
      flags = readFileSync('/proc/cpuinfo', 'utf8');
    } catch {
      return; // not Linux: nothing to compare with
    }
    const hasBf16 = /\bavx512_bf16\b/.test(flags);
    const info = native.kernels.info();
    expect(info.bf16?.available).toBe(hasBf16 && info.isa === 'avx512');
  });
});

