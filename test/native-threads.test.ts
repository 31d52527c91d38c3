/**
 * The native backend's ISA paths and thread pool:
 * - every ISA this CPU supports (forced with setIsa, as DENSETRAIN_ISA does at load) matches a
 *   float64 GEMM within the float32 error bound, for all four transposes and awkward shapes
 *   (1, primes, tall, wide, across the MR/NR/MC/KC/NC block edges), and matches the reference
 *   backend on every element-wise kernel;
 * - results are bit-for-bit identical at 1, 2, 3 and 5 threads;
 * - DENSETRAIN_ISA / DENSETRAIN_THREADS work at load time (child processes);
 * - the pool sleeps when idle and shuts down cleanly (process exit, worker thread exit).
 *
 * Skipped (visibly, with the reason) when the addon is not built, unless
 * DENSETRAIN_REQUIRE_BACKENDS names native: then that is a failure.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, loadNativeKernels, nativeAddonPath, type NativeAddon, type NativeIsa } from '../src/kernels/native.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Activation, Kernels, Tensor } from '../src/kernels/types.js';

let addon: NativeAddon | null = null;
let loadError = '';
try {
  addon = loadNativeAddon();
} catch (error) {
  loadError = error instanceof Error ? error.message : String(error);
}
const required = (process.env['DENSETRAIN_REQUIRE_BACKENDS'] ?? '').split(',').map((s) => s.trim()).includes('native');

describe.runIf(!addon && required)('native addon (required by DENSETRAIN_REQUIRE_BACKENDS)', () => {
  it('loads', () => {
    throw new Error(`the native addon is required but does not load: ${loadError}`);
  });
});

/** mulberry32, test data only. */
class Rng {
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
  floats(n: number, scale = 1): Float32Array {
    const out = new Float32Array(n);
    for (let i = 0; i < n; i++) out[i] = (2 * this.next() - 1) * scale;
    return out;
  }
}

const U = 2 ** -24;
const gamma = (k: number) => (k * U) / (1 - k * U);

function upload(k: Kernels, values: ArrayLike<number>, extra = 3): Tensor {
  const t = k.alloc(Math.max(1, values.length + extra));
  t.data.set(Array.from(values));
  t.data.fill(777.25, values.length);
  return t;
}

function bits(a: Float32Array, n = a.length): Uint32Array {
  return new Uint32Array(a.buffer, a.byteOffset, n).slice();
}

interface GemmCase {
  m: number;
  n: number;
  k: number;
  ta: boolean;
  tb: boolean;
  alpha: number;
  beta: number;
  a: Float32Array;
  b: Float32Array;
  c0: Float32Array;
  exact: Float64Array;
  bound: Float64Array;
}

function gemmCase(rng: Rng, m: number, n: number, k: number, ta: boolean, tb: boolean, alpha: number, beta: number): GemmCase {
  const a = rng.floats(m * k);
  const b = rng.floats(k * n);
  const c0 = beta === 0 ? new Float32Array(m * n).fill(Number.NaN) : rng.floats(m * n);
  const exact = new Float64Array(m * n);
  const bound = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let sa = 0;
      for (let p = 0; p < k; p++) {
        const x = ta ? a[p * m + i]! : a[i * k + p]!;
        const y = tb ? b[j * k + p]! : b[p * n + j]!;
        s += x * y;
        sa += Math.abs(x * y);
      }
      const c = beta === 0 ? 0 : c0[i * n + j]!;
      exact[i * n + j] = alpha * s + beta * c;
      bound[i * n + j] = gamma(k + 3) * (Math.abs(alpha) * sa + Math.abs(beta * c)) + 1e-37;
    }
  }
  return { m, n, k, ta, tb, alpha, beta, a, b, c0, exact, bound };
}

function runGemm(k: Kernels, g: GemmCase): Float32Array {
  const a = upload(k, g.a);
  const b = upload(k, g.b);
  const c = upload(k, g.c0);
  k.gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, a, b, g.beta, c);
  const out = c.data.slice();
  for (const t of [a, b, c]) k.free(t);
  return out;
}

// Shapes around every blocking edge: AVX2 6x16 tiles, AVX-512 12x32, generic 6x8;
// MC 144/240, KC 256, NC 2048; plus 1, primes, tall, wide, k = 0.
const SHAPES: [number, number, number][] = [
  [1, 1, 1],
  [1, 7, 13],
  [13, 1, 7],
  [7, 13, 1],
  [2, 3, 0],
  [6, 16, 256],
  [5, 15, 255],
  [7, 17, 257],
  [12, 32, 64],
  [13, 33, 65],
  [17, 31, 263],
  [151, 37, 29],
  [241, 19, 11],
  [1031, 3, 17],
  [3, 1031, 17],
  [11, 2081, 9],
  [97, 131, 521],
  [173, 151, 89],
];
const TRANSPOSES: [boolean, boolean][] = [
  [false, false],
  [false, true],
  [true, false],
  [true, true],
];

describe.skipIf(!addon)(`native ISA paths${addon ? '' : ` (skipped: ${loadError})`}`, () => {
  const raw = addon!;
  const supported = addon ? raw.supportedIsas() : [];
  const kernels = addon ? loadNativeKernels() : (null as unknown as Kernels);
  const reference = createReferenceKernels();
  const originalIsa = addon ? raw.isa() : 'generic';
  const originalThreads = addon ? raw.threads() : 1;
  afterAll(() => {
    if (!addon) return;
    raw.setIsa(originalIsa);
    raw.setThreads(originalThreads);
  });

  const rng = new Rng(20240611);
  const cases: GemmCase[] = [];
  for (const [m, n, k] of SHAPES) {
    for (const [ta, tb] of TRANSPOSES) {
      const variant = cases.length % 3;
      const [alpha, beta] = variant === 0 ? [1, 0] : variant === 1 ? [-0.75, 1] : [1.5, -0.5];
      cases.push(gemmCase(rng, m, n, k, ta, tb, alpha, beta));
    }
  }

  it('reports the CPU ISAs best-first, always including generic', () => {
    expect(supported.at(-1)).toBe('generic');
    // Unforced, the addon starts on the best ISA the CPU has.
    if (!process.env['DENSETRAIN_ISA']) expect(originalIsa).toBe(supported[0]);
    const info = kernels.info();
    expect(info.backend).toBe('native');
    expect(['avx512', 'avx2', 'generic']).toContain(info.isa);
  });

  for (const isa of ['avx512', 'avx2', 'generic'] as NativeIsa[]) {
    describe(`isa ${isa}`, () => {
      const available = supported.includes(isa);
      it.skipIf(!available)(`gemm matches float64 within the float32 bound (${cases.length} cases)${available ? '' : ' [CPU lacks it]'}`, () => {
        raw.setIsa(isa);
        expect(kernels.info().isa).toBe(isa);
        for (const threads of [1, 2]) {
          raw.setThreads(threads);
          for (const g of cases) {
            const got = runGemm(kernels, g);
            for (let i = 0; i < g.m * g.n; i++) {
              const diff = Math.abs(got[i]! - g.exact[i]!);
              if (!(diff <= g.bound[i]!)) {
                throw new Error(
                  `${isa} threads=${threads} gemm ${g.ta ? 'T' : 'N'}${g.tb ? 'T' : 'N'} m=${g.m} n=${g.n} k=${g.k} alpha=${g.alpha} beta=${g.beta}: ` +
                    `c[${i}] = ${got[i]} but exact ${g.exact[i]} (bound ${g.bound[i]})`,
                );
              }
            }
            // Past the m*n elements nothing was written.
            for (let i = g.m * g.n; i < got.length; i++) expect(got[i]).toBe(777.25);
          }
        }
      });

      it.skipIf(!available)(`sigmoid and tanh within 8U of float64 over a dense sweep and special values${available ? '' : ' [CPU lacks it]'}`, () => {
        raw.setIsa(isa);
        const values: number[] = [0, -0, 1e-30, -1e-30, 1e-8, -1e-8, 0.625, -0.625, 0.62499997, 88, -88, 87.4, -87.4, 89, -89, 100, -100, 1000, -1000, 3e38, -3e38, Infinity, -Infinity, Number.NaN];
        for (let x = -120; x <= 120; x += 0.0137) values.push(x);
        for (let x = -2; x <= 2; x += 0.000731) values.push(x);
        const z = Float32Array.from(values);
        const n = z.length;
        for (const [kind, code, exact] of [
          ['sigmoid', 3, (v: number) => 1 / (1 + Math.exp(-v))],
          ['tanh', 4, Math.tanh],
        ] as [string, number, (v: number) => number][]) {
          const zin = raw.alloc(n);
          const h = raw.alloc(n);
          zin.set(z);
          raw.biasActivation(1, n, zin, null, code, 0, h);
          for (let i = 0; i < n; i++) {
            const want = exact(z[i]!);
            const got = h[i]!;
            if (Number.isNaN(want)) {
              expect(Number.isNaN(got), `${kind}(${z[i]})`).toBe(true);
              continue;
            }
            // 8U relative (the shared suites' ACT_ULPS), and results below FLT_MIN may flush to 0.
            const tol = 8 * U * Math.abs(want) + 2 ** -126;
            if (!(Math.abs(got - want) <= tol)) throw new Error(`${isa} ${kind}(${z[i]}) = ${got}, float64 ${want}`);
          }
          raw.free(zin);
          raw.free(h);
        }
      });

      it.skipIf(!available)(`denseForward is bit-identical to gemm NT + biasActivation${available ? '' : ' [CPU lacks it]'}`, () => {
        raw.setIsa(isa);
        const rng = new Rng(23);
        // Shapes across the MR/NR tile edges and several KC slices (k > 256 or 512); outF <= 16
        // takes the narrow tile on AVX-512, threaded in the 400x600->10 case.
        for (const [rows, inF, outF] of [[1, 1, 1], [7, 5, 3], [13, 300, 33], [50, 784, 70], [25, 1030, 40], [4, 0, 9], [400, 600, 10], [130, 257, 16]] as const) {
          const x = raw.alloc(Math.max(1, rows * inF));
          const w = raw.alloc(Math.max(1, outF * inF));
          const bias = raw.alloc(outF);
          x.set(rng.floats(rows * inF));
          w.set(rng.floats(outF * inF));
          bias.set(rng.floats(outF));
          for (let code = 0; code <= 5; code++) {
            for (const withBias of [true, false]) {
              for (const inPlace of [false, true]) {
                for (const threads of [1, 2]) {
                  raw.setThreads(threads);
                  const size = rows * outF;
                  const [z1, h1, z2, h2] = [raw.alloc(size), raw.alloc(size), raw.alloc(size), raw.alloc(size)];
                  z1.fill(Number.NaN);
                  raw.denseForward(rows, inF, outF, x, w, withBias ? bias : null, code, -0.3, z1, inPlace ? z1 : h1);
                  raw.gemm(false, true, rows, outF, inF, 1, x, w, 0, z2);
                  raw.biasActivation(rows, outF, z2, withBias ? bias : null, code, -0.3, inPlace ? z2 : h2);
                  const label = `${isa} ${rows}x${inF}->${outF} kind ${code} bias ${withBias} inPlace ${inPlace} threads ${threads}`;
                  expect(bits(z1), label).toEqual(bits(z2));
                  if (!inPlace) expect(bits(h1), label).toEqual(bits(h2));
                  for (const t of [z1, h1, z2, h2]) raw.free(t);
                }
              }
            }
          }
          for (const t of [x, w, bias]) raw.free(t);
        }
      });

      it.skipIf(!available)(`element-wise kernels match the reference backend${available ? '' : ' [CPU lacks it]'}`, () => {
        raw.setIsa(isa);
        compareElementwise(kernels, reference, new Rng(99));
      });
    });
  }

  it('refuses an ISA this CPU or build lacks, and unknown names', () => {
    for (const isa of ['avx512', 'avx2'] as NativeIsa[]) {
      if (!supported.includes(isa)) expect(() => raw.setIsa(isa)).toThrow(RangeError);
    }
    expect(() => raw.setIsa('sse9' as NativeIsa)).toThrow(/unknown ISA/);
    expect(raw.setIsa('auto')).toBe(supported[0]);
  });
});

/** Every element-wise kernel on both backends with the same inputs; results within a few ulp. */
function compareElementwise(native: Kernels, ref: Kernels, rng: Rng): void {
  // Tolerance: `units` of U relative, plus an absolute `floor`.
  const close = (what: string, got: ArrayLike<number>, want: ArrayLike<number>, n: number, units = 4, floor = 1e-37) => {
    for (let i = 0; i < n; i++) {
      const g = got[i]!;
      const w = want[i]!;
      if (Object.is(g, w)) continue;
      const tol = units * U * Math.abs(w) + floor;
      if (!(Math.abs(g - w) <= tol)) throw new Error(`${what}[${i}]: native ${g}, reference ${w}`);
    }
  };
  const both = (values: ArrayLike<number>) => [upload(native, values), upload(ref, values)] as const;
  const rows = 67;
  const cols = 45;
  const size = rows * cols;
  const zv = rng.floats(size, 4);
  for (let i = 0; i < 40; i++) zv[i * 7] = 0; // exact zeros: the derivative conventions at 0
  const biasv = rng.floats(cols, 0.5);
  const slopev = [0.25];
  const acts = (slopeT: Tensor): Activation[] => [
    { kind: 'relu' },
    { kind: 'leaky_relu', alpha: 0.01 },
    { kind: 'leaky_relu', alpha: -1.7 },
    { kind: 'prelu', slope: slopeT },
    { kind: 'sigmoid' },
    { kind: 'tanh' },
    { kind: 'linear' },
  ];
  const [sn, sr] = both(slopev);
  const actsN = acts(sn);
  const actsR = acts(sr);
  for (let a = 0; a < actsN.length; a++) {
    const what = `${actsN[a]!.kind}#${a}`;
    const [zn, zr] = both(zv);
    const [bn, br] = both(biasv);
    const [hn, hr] = both(new Float32Array(size));
    native.biasActivation(rows, cols, zn, bn, actsN[a]!, hn);
    ref.biasActivation(rows, cols, zr, br, actsR[a]!, hr);
    close(`${what} z`, zn.data, zr.data, size, 0);
    // Transcendental activations run in float (vectorized exp/tanh): the shared suites allow 8U.
    const transcendental = actsN[a]!.kind === 'sigmoid' || actsN[a]!.kind === 'tanh';
    close(`${what} h`, hn.data, hr.data, size, transcendental ? 8 : 2);
    // Backward from identical inputs (the reference's h), so forward differences do not propagate.
    hn.data.set(hr.data);
    const dhv = rng.floats(size);
    const [dhn, dhr] = both(dhv);
    const [dzn, dzr] = both(new Float32Array(size));
    const [dsn, dsr] = both([0]);
    native.activationBackward(rows, cols, actsN[a]!, zn, hn, dhn, dzn, dsn);
    ref.activationBackward(rows, cols, actsR[a]!, zr, hr, dhr, dzr, dsr);
    close(`${what} dz`, dzn.data, dzr.data, size, 2);
    if (actsN[a]!.kind === 'prelu') close(`${what} dSlope`, dsn.data, dsr.data, 1, 2);
    // In place: h = z, dz = dh.
    native.biasActivation(rows, cols, zn, null, actsN[a]!, zn);
    ref.biasActivation(rows, cols, zr, null, actsR[a]!, zr);
    close(`${what} in-place h`, zn.data, zr.data, size, transcendental ? 8 : 2);
  }
  {
    const [dzn, dzr] = both(rng.floats(size));
    const [dbn, dbr] = both(new Float32Array(cols));
    native.biasGrad(rows, cols, dzn, dbn);
    ref.biasGrad(rows, cols, dzr, dbr);
    close('biasGrad', dbn.data, dbr.data, cols, 1);
  }
  for (const scale of [3, 1000]) {
    const c = 10;
    const r = 53;
    const logits = rng.floats(r * c, scale);
    const labels = Array.from({ length: r }, (_, i) => (i * 7) % c);
    const [ln, lr] = both(logits);
    const [yn, yr] = both(labels);
    const [pn, pr] = both(new Float32Array(r * c));
    const [dn, dr] = both(new Float32Array(r * c));
    const lossN = native.softmaxCrossEntropy(r, c, ln, yn, pn, dn);
    const lossR = ref.softmaxCrossEntropy(r, c, lr, yr, pr, dr);
    expect(Number.isFinite(lossN)).toBe(true);
    expect(Math.abs(lossN - lossR)).toBeLessThanOrEqual(1e-12 * Math.abs(lossR) + 1e-300);
    close(`softmaxCE(${scale}) probs`, pn.data, pr.data, r * c, 2);
    close(`softmaxCE(${scale}) dlogits`, dn.data, dr.data, r * c, 2);
    native.softmax(r, c, ln, pn);
    ref.softmax(r, c, lr, pr);
    close(`softmax(${scale})`, pn.data, pr.data, r * c, 2);
  }
  const n = 1001;
  for (const [momentum, nesterov, l2] of [
    [0, false, 0],
    [0.9, false, 1e-4],
    [0.9, true, 0.01],
  ] as [number, boolean, number][]) {
    const p = rng.floats(n);
    const g = rng.floats(n);
    const v = rng.floats(n, 0.1);
    const [pn, pr] = both(p);
    const [gn, gr] = both(g);
    const [vn, vr] = both(v);
    for (let s = 0; s < 3; s++) {
      native.sgdStep(n, pn, gn, momentum === 0 ? null : vn, 0.05, momentum, nesterov, l2);
      ref.sgdStep(n, pr, gr, momentum === 0 ? null : vr, 0.05, momentum, nesterov, l2);
    }
    close(`sgd(${momentum},${nesterov}) param`, pn.data, pr.data, n, 2);
    close(`sgd(${momentum},${nesterov}) velocity`, vn.data, vr.data, n, 2);
  }
  {
    const [pn, pr] = both(rng.floats(n));
    const [gn, gr] = both(rng.floats(n));
    const [mn, mr] = both(new Float32Array(n));
    const [vn, vr] = both(new Float32Array(n));
    for (let step = 1; step <= 4; step++) {
      native.adamStep(n, pn, gn, mn, vn, 1e-3, 0.9, 0.999, 1e-8, 1e-4, step);
      ref.adamStep(n, pr, gr, mr, vr, 1e-3, 0.9, 0.999, 1e-8, 1e-4, step);
    }
    // The Adam step is computed in float: a few U of the step size (lr / (1 - b1^t) <= 1e-2).
    close('adam param', pn.data, pr.data, n, 2, 1e-2 * 16 * U);
    close('adam m', mn.data, mr.data, n, 2);
    close('adam v', vn.data, vr.data, n, 2);
  }
  {
    const x = rng.floats(100_003, 3);
    const [xn, xr] = both(x);
    const sn2 = native.sumSquares(100_003, xn);
    const sr2 = ref.sumSquares(100_003, xr);
    expect(Math.abs(sn2 - sr2)).toBeLessThanOrEqual(1e-12 * sr2);
  }
}

describe.skipIf(!addon)(`native results do not depend on the thread count${addon ? '' : ` (skipped: ${loadError})`}`, () => {
  const raw = addon!;
  const originalThreads = addon ? raw.threads() : 1;
  afterAll(() => {
    if (addon) raw.setThreads(originalThreads);
  });

  /** Runs `body` at several thread counts and expects bit-identical outputs. */
  function sameAtAllThreadCounts(body: () => Float32Array[]): void {
    raw.setThreads(1);
    const base = body().map((a) => bits(a));
    for (const threads of [2, 3, 5]) {
      raw.setThreads(threads);
      expect(raw.threads()).toBe(threads);
      const got = body().map((a) => bits(a));
      for (let i = 0; i < base.length; i++) {
        const same = got[i]!.length === base[i]!.length && got[i]!.every((v, j) => v === base[i]![j]);
        if (!same) throw new Error(`output ${i} differs between 1 and ${threads} threads`);
      }
    }
  }

  for (const [ta, tb] of TRANSPOSES) {
    it(`large gemm ${ta ? 'T' : 'N'}${tb ? 'T' : 'N'} (263 x 517 x 389) is bit-identical at 1, 2, 3, 5 threads`, () => {
      const rng = new Rng(7);
      const m = 263;
      const n = 517;
      const k = 389;
      const a = raw.alloc(m * k);
      const b = raw.alloc(k * n);
      const c = raw.alloc(m * n);
      a.set(rng.floats(m * k));
      b.set(rng.floats(k * n));
      const c0 = rng.floats(m * n);
      sameAtAllThreadCounts(() => {
        c.set(c0);
        raw.gemm(ta, tb, m, n, k, 0.5, a, b, 0.25, c);
        const first = c.slice();
        raw.gemm(ta, tb, m, n, k, 1, a, b, 0, c);
        return [first, c.slice()];
      });
      raw.free(a);
      raw.free(b);
      raw.free(c);
    });
  }

  it('large denseForward (263 x 389 -> 517, relu and tanh) is bit-identical at 1, 2, 3, 5 threads', () => {
    const rng = new Rng(9);
    const [rows, inF, outF] = [263, 389, 517];
    const x = raw.alloc(rows * inF);
    const w = raw.alloc(outF * inF);
    const bias = raw.alloc(outF);
    const z = raw.alloc(rows * outF);
    const h = raw.alloc(rows * outF);
    x.set(rng.floats(rows * inF));
    w.set(rng.floats(outF * inF));
    bias.set(rng.floats(outF));
    sameAtAllThreadCounts(() => {
      raw.denseForward(rows, inF, outF, x, w, bias, 0, 0, z, h);
      const relu = [z.slice(), h.slice()];
      raw.denseForward(rows, inF, outF, x, w, bias, 4, 0, z, z);
      return [...relu, z.slice()];
    });
    for (const t of [x, w, bias, z, h]) raw.free(t);
  });

  it('element-wise kernels and reductions are bit-identical at 1, 2, 3, 5 threads', () => {
    const k = loadNativeKernels();
    const rng = new Rng(11);
    const rows = 1200;
    const cols = 300; // 360k elements: several chunks per kernel
    const size = rows * cols;
    const zv = rng.floats(size, 3);
    const dhv = rng.floats(size);
    const z = k.alloc(size);
    const h = k.alloc(size);
    const dh = k.alloc(size);
    const dz = k.alloc(size);
    const bias = upload(k, rng.floats(cols));
    const slope = upload(k, [0.2]);
    const dSlope = k.alloc(1);
    const db = k.alloc(cols);
    const labels = upload(k, Array.from({ length: 40_000 }, (_, i) => (i * 3) % 9));
    const logits = upload(k, rng.floats(40_000 * 9, 20));
    const probs = k.alloc(40_000 * 9);
    const dlogits = k.alloc(40_000 * 9);
    const p = upload(k, rng.floats(size));
    const g = upload(k, rng.floats(size));
    const m1 = k.alloc(size);
    const v1 = k.alloc(size);
    sameAtAllThreadCounts(() => {
      const out: Float32Array[] = [];
      for (const act of [{ kind: 'sigmoid' }, { kind: 'prelu', slope }] as Activation[]) {
        z.data.set(zv);
        dh.data.set(dhv);
        dSlope.data[0] = 0;
        k.biasActivation(rows, cols, z, bias, act, h);
        k.activationBackward(rows, cols, act, z, h, dh, dz, dSlope);
        out.push(h.data.slice(), dz.data.slice(), dSlope.data.slice());
      }
      k.biasGrad(rows, cols, dz, db);
      out.push(db.data.slice());
      const loss = k.softmaxCrossEntropy(40_000, 9, logits, labels, probs, dlogits);
      out.push(probs.data.slice(), dlogits.data.slice(), new Float32Array(new Float64Array([loss]).buffer));
      const ss = k.sumSquares(size, z);
      out.push(new Float32Array(new Float64Array([ss]).buffer));
      const p0 = p.data.slice();
      m1.data.fill(0);
      v1.data.fill(0);
      k.adamStep(size, p, g, m1, v1, 1e-3, 0.9, 0.999, 1e-8, 1e-4, 1);
      out.push(p.data.slice(), m1.data.slice(), v1.data.slice());
      k.sgdStep(size, p, g, m1, 0.1, 0.9, true, 1e-3);
      out.push(p.data.slice());
      p.data.set(p0);
      return out;
    });
    for (const t of [z, h, dh, dz, bias, slope, dSlope, db, labels, logits, probs, dlogits, p, g, m1, v1]) k.free(t);
  });
});

// The C++ GEMM self-test (native/test/): every kernel table this CPU runs, plus the AVX-512
// tile configuration (12x32, MC 240, partial transposes) emulated with AVX2 so its blocking
// logic is checked even where AVX-512 is missing; and the arm64 NEON build under qemu when a
// cross compiler and qemu-aarch64 are installed.
const hasCommand = (cmd: string) => spawnSync('sh', ['-c', `command -v ${cmd}`]).status === 0;
// (Skipped in the sanitizer run: it would preload ASan into the compiler and qemu.)
describe.skipIf(process.env['DENSETRAIN_SANITIZED'] === '1')('native GEMM self-test (C++, outside Node)', () => {
  const x86 = process.arch === 'x64' && hasCommand(process.env['CXX'] || 'g++');
  it.skipIf(!x86)(`every table, and the AVX-512 tile shape on AVX2${x86 ? '' : ' [needs x86-64 and g++]'}`, () => {
    const r = spawnSync('bash', [new URL('../native/test/run-selftest.sh', import.meta.url).pathname], {
      encoding: 'utf8',
      timeout: 600_000,
    });
    expect(r.stderr + r.stdout).not.toMatch(/FAILED/);
    expect(r.status, r.stderr + r.stdout).toBe(0);
    expect(r.stdout).toMatch(/generic \(\d+x\d+ tiles\): ok/);
  });
  const arm = hasCommand('aarch64-linux-gnu-g++') && hasCommand('qemu-aarch64');
  it.skipIf(!arm)(`arm64 NEON generic kernels under qemu${arm ? '' : ' [needs aarch64-linux-gnu-g++ and qemu-aarch64]'}`, () => {
    const root = new URL('..', import.meta.url).pathname;
    const dir = mkdtempSync(join(tmpdir(), 'densetrain-arm64-'));
    const exe = join(dir, 'selftest');
    const build = spawnSync(
      'aarch64-linux-gnu-g++',
      ['-std=c++17', '-O2', '-ffp-contract=off', '-fno-math-errno', '-static', `-I${root}native/src`,
        `${root}native/test/gemm_selftest.cc`, `${root}native/src/isa_generic.cc`, '-o', exe],
      { encoding: 'utf8', timeout: 600_000 },
    );
    expect(build.status, build.stderr).toBe(0);
    const run = spawnSync('qemu-aarch64', [exe], { encoding: 'utf8', timeout: 600_000 });
    expect(run.status, run.stdout + run.stderr).toBe(0);
    expect(run.stdout).toMatch(/generic \(8x12 tiles\): ok/);
    rmSync(dir, { recursive: true, force: true });
  });
});

/** Runs a script in a fresh node with the addon path in ADDON; returns status and output. */
function child(script: string, env: Record<string, string | undefined> = {}, nodeArgs: string[] = []) {
  const childEnv: NodeJS.ProcessEnv = { ...process.env, ADDON: nativeAddonPath() };
  delete childEnv['DENSETRAIN_ISA'];
  delete childEnv['DENSETRAIN_THREADS'];
  for (const [key, value] of Object.entries(env)) {
    if (value === undefined) delete childEnv[key];
    else childEnv[key] = value;
  }
  const r = spawnSync(process.execPath, [...nodeArgs, '-e', script], { env: childEnv, encoding: 'utf8', timeout: 120_000 });
  return { status: r.status, signal: r.signal, stdout: r.stdout.trim(), stderr: r.stderr.trim() };
}

describe.skipIf(!addon)(`native load-time settings and pool lifecycle${addon ? '' : ` (skipped: ${loadError})`}`, () => {
  const supported = addon ? addon.supportedIsas() : [];

  it('DENSETRAIN_ISA forces any supported ISA, and refuses unsupported or unknown ones at load', () => {
    for (const isa of supported) {
      const r = child('process.stdout.write(require(process.env.ADDON).isa())', { DENSETRAIN_ISA: isa });
      expect(r.stderr).toBe('');
      expect(r.stdout).toBe(isa);
    }
    expect(child('process.stdout.write(require(process.env.ADDON).isa())', { DENSETRAIN_ISA: 'auto' }).stdout).toBe(supported[0]);
    for (const isa of ['avx512', 'avx2'].filter((i) => !supported.includes(i as NativeIsa))) {
      const r = child('require(process.env.ADDON)', { DENSETRAIN_ISA: isa });
      expect(r.status).not.toBe(0);
      expect(r.stderr).toMatch(/DENSETRAIN_ISA: ISA "avx(512|2)" is not available on this CPU/);
    }
    const bad = child('require(process.env.ADDON)', { DENSETRAIN_ISA: 'neon9' });
    expect(bad.status).not.toBe(0);
    expect(bad.stderr).toMatch(/unknown ISA "neon9"/);
  });

  it('DENSETRAIN_THREADS sets the pool size, and a bad value is an error at load', () => {
    expect(child('process.stdout.write(String(require(process.env.ADDON).threads()))', { DENSETRAIN_THREADS: '3' }).stdout).toBe('3');
    for (const value of ['0', 'two', '1.5', '100000']) {
      const r = child('require(process.env.ADDON)', { DENSETRAIN_THREADS: value });
      expect(r.status, value).not.toBe(0);
      expect(r.stderr).toMatch(/DENSETRAIN_THREADS must be an integer from 1 to/);
    }
  });

  it('exits cleanly after parallel work, naturally and through process.exit', () => {
    const work = `
      const a = require(process.env.ADDON);
      a.setThreads(4);
      const n = 300, x = a.alloc(n * n), y = a.alloc(n * n), z = a.alloc(n * n);
      x.fill(1); y.fill(2);
      a.gemm(false, true, n, n, n, 1, x, y, 0, z);
      if (z[0] !== 600) throw new Error('wrong result ' + z[0]);
    `;
    for (const tail of ['', 'process.exit(0);', 'setTimeout(() => {}, 50);']) {
      const r = child(work + tail);
      expect(r.stderr).toBe('');
      expect(r.status).toBe(0);
      expect(r.signal).toBeNull();
    }
  });

  it('works in worker threads, and a worker that ends shuts its pool down', () => {
    const script = `
      const { Worker } = require('node:worker_threads');
      const code = \`
        const { parentPort } = require('node:worker_threads');
        const a = require(process.env.ADDON);
        a.setThreads(3);
        const n = 200, x = a.alloc(n * n), y = a.alloc(n * n), z = a.alloc(n * n);
        x.fill(1); y.fill(1);
        a.gemm(false, false, n, n, n, 1, x, y, 0, z);
        parentPort.postMessage(z[n * n - 1]);
      \`;
      let done = 0;
      for (let i = 0; i < 3; i++) {
        const w = new Worker(code, { eval: true });
        w.on('message', (v) => { if (v !== 200) { console.error('bad', v); process.exit(2); } });
        w.on('error', (e) => { console.error(e); process.exit(3); });
        w.on('exit', () => { if (++done === 3) process.stdout.write('ok'); });
      }
    `;
    const r = child(script);
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe('ok');
    expect(r.status).toBe(0);
  });

  it('an idle pool sleeps instead of spinning', () => {
    // CPU time (not wall time) used by the whole process while idle for 400 ms after parallel
    // work: sleeping workers use next to nothing; spinning ones would use ~400 ms each.
    const r = child(`
      const a = require(process.env.ADDON);
      a.setThreads(4);
      const n = 256, x = a.alloc(n * n), y = a.alloc(n * n), z = a.alloc(n * n);
      a.gemm(false, false, n, n, n, 1, x, y, 0, z);
      const before = process.cpuUsage();
      setTimeout(() => {
        const used = process.cpuUsage(before);
        process.stdout.write(String((used.user + used.system) / 1000));
      }, 400);
    `);
    expect(r.status).toBe(0);
    expect(Number(r.stdout)).toBeLessThan(200);
  });
});
