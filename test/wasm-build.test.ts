// The wasm backend end to end: the build script, the loader's errors, and every kernel against
// the reference backend on awkward shapes (1, primes, non-multiples of 4 and 8, tall and wide).
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Activation, Kernels, Tensor } from '../src/kernels/types.js';
import { WA, createWasmBackend, loadWasmKernels, wasmModulePath } from '../src/kernels/wasm.js';
import { packageRoot } from '../src/kernels/paths.js';

const root = packageRoot();

describe('build-wasm script', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'densetrain-wasm-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('compiles assembly/ offline into a module with the expected exports, importing only its shared memory', () => {
    const out = join(dir, 'densetrain.wasm');
    const log = execFileSync(process.execPath, [join(root, 'scripts', 'build-wasm.mjs'), '--out', out, '--wat'], {
      cwd: root,
      encoding: 'utf8',
      env: { ...process.env, npm_config_offline: 'true' },
    });
    expect(log).toMatch(/wrote .*densetrain\.wasm/);
    expect(existsSync(join(dir, 'densetrain.wat'))).toBe(true);
    expect(existsSync(join(dir, 'densetrain-relaxed.wasm'))).toBe(true); // the relaxed-SIMD build beside it
    const module = new WA.Module(readFileSync(out));
    expect(WA.Module.imports(module)).toEqual([{ module: 'env', name: 'memory', kind: 'memory' }]);
    const exports = WA.Module.exports(module).map((e) => e.name);
    for (const name of ['memory', 'alloc', 'free', 'heapUsed', 'gemm', 'gemmStrided', 'gemmSetScratch', 'biasActivation', 'activationBackward', 'biasGrad', 'softmaxCrossEntropy', 'softmax', 'sgdStep', 'adamStep', 'sumSquares']) {
      expect(exports).toContain(name);
    }
    // The module built here works like the shipped one.
    const { kernels } = createWasmBackend(out);
    const a = kernels.alloc(6);
    const b = kernels.alloc(6);
    const c = kernels.alloc(4);
    a.data.set([1, 2, 3, 4, 5, 6]);
    b.data.set([1, 0, 0, 1, 1, 1]);
    kernels.gemm(false, false, 2, 2, 3, 1, a, b, 0, c);
    expect(Array.from(c.data)).toEqual([4, 5, 10, 11]);
  });

  it('exits non-zero with a clear message when the compiler fails', () => {
    let failed = false;
    try {
      execFileSync(process.execPath, [join(root, 'scripts', 'build-wasm.mjs'), '--out', join(dir, 'x.wasm'), '--entry', join(dir, 'missing.ts')], {
        cwd: root,
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (error) {
      failed = true;
      const e = error as { status: number; stderr: string };
      expect(e.status).not.toBe(0);
      expect(e.stderr).toMatch(/^build-wasm: /);
    }
    expect(failed).toBe(true);
  });
});

describe('wasm loader', () => {
  it('says the module is missing, and what to do, when the file is missing', () => {
    const missing = join(tmpdir(), 'densetrain-no-such-dir', 'densetrain.wasm');
    expect(() => createWasmBackend(missing)).toThrowError(
      new Error(`wasm module missing: ${missing}; reinstall densetrain (in a git clone: npm run build:wasm)`),
    );
  });

  it('loads the shipped module and reports itself', () => {
    expect(existsSync(wasmModulePath())).toBe(true);
    const kernels = loadWasmKernels();
    expect(kernels.name).toBe('wasm');
    expect(kernels.info()).toMatchObject({ backend: 'wasm', isa: 'simd128', bf16: { available: true } });
    const threads = kernels.info().threads;
    try {
      kernels.setThreads(3);
      expect(kernels.info().threads).toBe(3);
      kernels.setThreads(1);
      expect(kernels.info().threads).toBe(1);
      expect(() => kernels.setThreads(0)).toThrow(RangeError);
      expect(() => kernels.setThreads(257)).toThrow(/between 1 and 256 on the wasm backend/);
    } finally {
      kernels.setThreads(threads);
    }
  });
});

// ---------------------------------------------------------------------------------------------
// Kernels against the reference.

/** Small deterministic PRNG (mulberry32). */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const wasm = createWasmBackend().kernels;
const ref = createReferenceKernels();

interface Pair {
  w: Tensor;
  r: Tensor;
}

function pair(values: ArrayLike<number>): Pair {
  const w = wasm.alloc(values.length);
  const r = ref.alloc(values.length);
  w.data.set(values);
  r.data.set(values);
  return { w, r };
}

function randomValues(n: number, random: () => number, scale = 1): Float32Array {
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = (random() * 2 - 1) * scale;
  return out;
}

function freeAll(...pairs: Pair[]): void {
  for (const p of pairs) {
    wasm.free(p.w);
    ref.free(p.r);
  }
}

/** |a - b| <= rel * |b| + abs elementwise, with a readable failure. */
function expectClose(actual: Float32Array, expected: Float32Array, rel: number, abs: number, what: string): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < actual.length; i++) {
    const a = actual[i]!;
    const b = expected[i]!;
    if (Number.isNaN(b)) {
      if (!Number.isNaN(a)) throw new Error(`${what}[${i}]: expected NaN, got ${a}`);
      continue;
    }
    if (!(Math.abs(a - b) <= rel * Math.abs(b) + abs)) throw new Error(`${what}[${i}]: got ${a}, reference ${b}`);
  }
}

const SIZES = [1, 2, 3, 4, 5, 7, 8, 9, 13, 16, 17, 31, 33, 64, 67, 127, 257];

describe('wasm gemm matches the reference', () => {
  const random = rng(12345);
  const pick = () => SIZES[Math.floor(random() * SIZES.length)]!;
  const shapes: [number, number, number][] = [
    [1, 1, 1],
    [1, 1, 300],
    [3, 5, 7],
    [4, 8, 4],
    [8, 16, 260],
    [67, 1, 13],
    [1, 67, 13],
    [301, 7, 3],
    [5, 301, 2],
    [129, 515, 3],
    [70, 530, 300], // crosses the MC, NC and KC block edges
    [128, 64, 784],
    [9, 19, 517], // k blocks of 176, 176, 165
    [6, 1030, 5], // n split into column blocks
  ];
  for (let i = 0; i < 12; i++) shapes.push([pick(), pick(), pick()]);

  for (const [m, n, k] of shapes) {
    for (const transA of [false, true]) {
      for (const transB of [false, true]) {
        it(`m=${m} n=${n} k=${k} transA=${transA} transB=${transB}`, () => {
          const rnd = rng(m * 1000003 + n * 1009 + k + (transA ? 7 : 0) + (transB ? 13 : 0));
          const a = pair(randomValues(m * k, rnd));
          const b = pair(randomValues(k * n, rnd));
          const c0 = randomValues(m * n, rnd);
          for (const [alpha, beta] of [
            [1, 0],
            [0.5, 1],
            [-1.5, 0.25],
          ] as const) {
            const c = pair(c0);
            wasm.gemm(transA, transB, m, n, k, alpha, a.w, b.w, beta, c.w);
            ref.gemm(transA, transB, m, n, k, alpha, a.r, b.r, beta, c.r);
            // Tolerance scaled by the sum of |terms|: float32 accumulation over k products.
            const A = a.r.data;
            const B = b.r.data;
            const got = c.w.data;
            const want = c.r.data;
            for (let i = 0; i < m; i++) {
              for (let j = 0; j < n; j++) {
                let mag = 0;
                for (let p = 0; p < k; p++) {
                  const aip = transA ? A[p * m + i]! : A[i * k + p]!;
                  const bpj = transB ? B[j * k + p]! : B[p * n + j]!;
                  mag += Math.abs(aip * bpj);
                }
                mag = Math.abs(alpha) * mag + Math.abs(beta * c0[i * n + j]!);
                const diff = Math.abs(got[i * n + j]! - want[i * n + j]!);
                if (!(diff <= 1e-5 * mag + 1e-30)) {
                  throw new Error(`C[${i},${j}] = ${got[i * n + j]}, reference ${want[i * n + j]} (alpha=${alpha}, beta=${beta})`);
                }
              }
            }
            freeAll(c);
          }
          freeAll(a, b);
        });
      }
    }
  }

  it('beta = 0 does not read C (NaN in C does not propagate)', () => {
    for (const [m, n, k] of [
      [4, 8, 5],
      [5, 9, 3],
      [13, 17, 300],
    ] as const) {
      const a = pair(randomValues(m * k, random));
      const b = pair(randomValues(k * n, random));
      const c = pair(new Float32Array(m * n).fill(Number.NaN));
      wasm.gemm(false, false, m, n, k, 1, a.w, b.w, 0, c.w);
      ref.gemm(false, false, m, n, k, 1, a.r, b.r, 0, c.r);
      expect(c.w.data.some(Number.isNaN)).toBe(false);
      expectClose(c.w.data, c.r.data, 1e-5, 1e-5, 'C');
      freeAll(a, b, c);
    }
  });

  it('k = 0 scales C by beta (and beta = 0 zeroes it)', () => {
    const a = pair([1]);
    const b = pair([1]);
    const c = pair([1, 2, 3, 4, 5, 6]);
    wasm.gemm(false, false, 2, 3, 0, 2, a.w, b.w, 0.5, c.w);
    expect(Array.from(c.w.data)).toEqual([0.5, 1, 1.5, 2, 2.5, 3]);
    c.w.data.fill(Number.NaN);
    wasm.gemm(true, true, 2, 3, 0, 2, a.w, b.w, 0, c.w);
    expect(Array.from(c.w.data)).toEqual([0, 0, 0, 0, 0, 0]);
    freeAll(a, b, c);
  });

  it('uses only the first m*n elements of a longer C', () => {
    const a = pair(randomValues(6, random));
    const b = pair(randomValues(6, random));
    const c = pair(new Float32Array(10).fill(7));
    wasm.gemm(false, false, 2, 2, 3, 1, a.w, b.w, 0, c.w);
    expect(Array.from(c.w.data.subarray(4))).toEqual([7, 7, 7, 7, 7, 7]);
    freeAll(a, b, c);
  });

  it('rejects bad calls through the shared checks', () => {
    const a = wasm.alloc(4);
    const r = ref.alloc(4);
    expect(() => wasm.gemm(false, false, 2, 2, 2, 1, a, r, 0, a)).toThrow(TypeError);
    expect(() => wasm.gemm(false, false, 2, 2, 3, 1, a, a, 0, wasm.alloc(4))).toThrow(RangeError);
    wasm.free(a);
    ref.free(r);
  });
});

const ACTS = (slope: Pair): [string, Activation, Activation][] => [
  ['relu', { kind: 'relu' }, { kind: 'relu' }],
  ['leaky_relu 0.01', { kind: 'leaky_relu', alpha: 0.01 }, { kind: 'leaky_relu', alpha: 0.01 }],
  ['leaky_relu -1.7', { kind: 'leaky_relu', alpha: -1.7 }, { kind: 'leaky_relu', alpha: -1.7 }],
  ['prelu', { kind: 'prelu', slope: slope.w }, { kind: 'prelu', slope: slope.r }],
  ['sigmoid', { kind: 'sigmoid' }, { kind: 'sigmoid' }],
  ['tanh', { kind: 'tanh' }, { kind: 'tanh' }],
  ['linear', { kind: 'linear' }, { kind: 'linear' }],
];

/** Pre-activations that cover the interesting points: 0, -0, tiny, large, saturating. */
function preActivations(n: number, random: () => number): Float32Array {
  const special = [0, -0, 1e-8, -1e-8, 3e-5, -3e-5, 1e-3, 0.5, -0.5, 20, -20, 90, -90, 100, -110, 1000, -1000];
  const z = randomValues(n, random, 6);
  for (let i = 0; i < n; i++) if (random() < 0.3) z[i] = special[Math.floor(random() * special.length)]!;
  return z;
}

describe('wasm activations match the reference', () => {
  const random = rng(777);
  const slope = pair([0.23]);
  const shapes: [number, number][] = [
    [1, 1],
    [1, 3],
    [3, 1],
    [2, 5],
    [7, 13],
    [16, 16],
    [33, 67],
    [1, 1031],
  ];
  for (const [name, actW, actR] of ACTS(slope)) {
    for (const [rows, cols] of shapes) {
      it(`${name} forward and backward ${rows}x${cols}`, () => {
        const zv = preActivations(rows * cols, random);
        const z = pair(zv);
        const bias = pair(randomValues(cols, random));
        const h = pair(new Float32Array(rows * cols));
        wasm.biasActivation(rows, cols, z.w, bias.w, actW, h.w);
        ref.biasActivation(rows, cols, z.r, bias.r, actR, h.r);
        expectClose(z.w.data, z.r.data, 0, 0, 'z');
        expectClose(h.w.data, h.r.data, 2e-7, 1e-30, 'h');
        // No bias, in place (h = z).
        const z2 = pair(zv);
        wasm.biasActivation(rows, cols, z2.w, null, actW, z2.w);
        ref.biasActivation(rows, cols, z2.r, null, actR, z2.r);
        expectClose(z2.w.data, z2.r.data, 2e-7, 1e-30, 'h (in place)');

        const dh = pair(randomValues(rows * cols, random));
        const dz = pair(new Float32Array(rows * cols));
        const dSlope = pair([Number.NaN]);
        wasm.activationBackward(rows, cols, actW, z.w, h.w, dh.w, dz.w, dSlope.w);
        ref.activationBackward(rows, cols, actR, z.r, h.r, dh.r, dz.r, dSlope.r);
        expectClose(dz.w.data, dz.r.data, 2e-7, 1e-30, 'dz');
        if (actW.kind === 'prelu') {
          expectClose(dSlope.w.data, dSlope.r.data, 1e-6, 1e-6, 'dSlope');
        } else {
          expect(Number.isNaN(dSlope.w.data[0])).toBe(true);
        }
        // dz may be dh.
        wasm.activationBackward(rows, cols, actW, z.w, h.w, dh.w, dh.w, dSlope.w);
        expectClose(dh.w.data, dz.r.data, 2e-7, 1e-30, 'dz (in place)');
        freeAll(z, bias, h, z2, dh, dz, dSlope);
      });
    }
  }

  it('uses PyTorch conventions at z = 0', () => {
    const z = pair([0, -0, 0]);
    const h = pair([0, 0, 0]);
    const dh = pair([1, 1, 2]);
    const dz = pair([9, 9, 9]);
    const dSlope = pair([0]);
    const cases: [Activation, number[]][] = [
      [{ kind: 'relu' }, [0, 0, 0]],
      [{ kind: 'leaky_relu', alpha: 0.25 }, [0.25, 0.25, 0.5]],
      [{ kind: 'prelu', slope: slope.w }, [Math.fround(0.23), Math.fround(0.23), Math.fround(0.46)]],
    ];
    for (const [act, want] of cases) {
      wasm.activationBackward(1, 3, act, z.w, h.w, dh.w, dz.w, dSlope.w);
      expect(Array.from(dz.w.data)).toEqual(want);
    }
    freeAll(z, h, dh, dz, dSlope);
  });

  it('sigmoid and tanh saturate without NaN or Infinity at +-1000', () => {
    const z = pair([1000, -1000, 88.8, -88.8, -104, 710, -710]);
    const h = pair(new Float32Array(7));
    for (const act of ['sigmoid', 'tanh'] as const) {
      wasm.biasActivation(1, 7, z.w, null, { kind: act }, h.w);
      ref.biasActivation(1, 7, z.r, null, { kind: act }, h.r);
      expect(Array.from(h.w.data)).toEqual(Array.from(h.r.data));
    }
    freeAll(z, h);
  });
});

describe('wasm reductions, softmax and optimizers match the reference', () => {
  const random = rng(4242);

  for (const [rows, cols] of [
    [1, 1],
    [1, 7],
    [5, 3],
    [13, 1],
    [64, 10],
    [3, 1100],
  ] as const) {
    it(`biasGrad ${rows}x${cols}`, () => {
      const dz = pair(randomValues(rows * cols, random));
      const db = pair(new Float32Array(cols).fill(Number.NaN));
      wasm.biasGrad(rows, cols, dz.w, db.w);
      ref.biasGrad(rows, cols, dz.r, db.r);
      // Summed in float64 in row order, as the reference does: bit-identical.
      expect(Array.from(db.w.data)).toEqual(Array.from(db.r.data));
      freeAll(dz, db);
    });

    it(`softmaxCrossEntropy and softmax ${rows}x${cols}`, () => {
      const logits = randomValues(rows * cols, random, 8);
      if (rows * cols > 2) {
        logits[0] = 1000;
        logits[1] = -1000;
      }
      const labels = new Float32Array(rows);
      for (let i = 0; i < rows; i++) labels[i] = Math.floor(random() * cols);
      const l = pair(logits);
      const y = pair(labels);
      const p = pair(new Float32Array(rows * cols));
      const d = pair(new Float32Array(rows * cols));
      const lossW = wasm.softmaxCrossEntropy(rows, cols, l.w, y.w, p.w, d.w);
      const lossR = ref.softmaxCrossEntropy(rows, cols, l.r, y.r, p.r, d.r);
      expect(Number.isFinite(lossW)).toBe(true);
      expect(Math.abs(lossW - lossR)).toBeLessThanOrEqual(1e-12 * Math.max(1, Math.abs(lossR)));
      expectClose(p.w.data, p.r.data, 1e-6, 1e-30, 'probs');
      expectClose(d.w.data, d.r.data, 1e-6, 1e-30, 'dlogits');
      // Loss only, and dlogits written over the logits.
      expect(wasm.softmaxCrossEntropy(rows, cols, l.w, y.w, p.w, null)).toBe(lossW);
      expect(wasm.softmaxCrossEntropy(rows, cols, l.w, y.w, p.w, l.w)).toBe(lossW);
      expectClose(l.w.data, d.r.data, 1e-6, 1e-30, 'dlogits (in place)');
      // softmax alone.
      const l2 = pair(logits);
      const p2 = pair(new Float32Array(rows * cols));
      wasm.softmax(rows, cols, l2.w, p2.w);
      expectClose(p2.w.data, p.r.data, 1e-6, 1e-30, 'softmax');
      freeAll(l, y, p, d, l2, p2);
    });
  }

  for (const n of [1, 3, 4, 5, 17, 1000, 4099]) {
    it(`sgdStep, adamStep and sumSquares n=${n}`, () => {
      const param = randomValues(n, random);
      const grad = randomValues(n, random);
      const vel = randomValues(n, random, 0.1);
      const configs: [number, number, boolean, number, boolean][] = [
        [0.1, 0, false, 0, false],
        [0.05, 0.9, false, 1e-4, true],
        [0.05, 0.9, true, 1e-3, true],
      ];
      for (const [lr, momentum, nesterov, l2, withV] of configs) {
        const p = pair(param);
        const g = pair(grad);
        const v = withV ? pair(vel) : null;
        for (let step = 0; step < 3; step++) {
          wasm.sgdStep(n, p.w, g.w, v?.w ?? null, lr, momentum, nesterov, l2);
          ref.sgdStep(n, p.r, g.r, v?.r ?? null, lr, momentum, nesterov, l2);
        }
        // Float64 arithmetic on float32 storage, as the reference: bit-identical.
        expect(Array.from(p.w.data)).toEqual(Array.from(p.r.data));
        if (v) expect(Array.from(v.w.data)).toEqual(Array.from(v.r.data));
        freeAll(p, g, ...(v ? [v] : []));
      }
      const p = pair(param);
      const g = pair(grad);
      const m = pair(new Float32Array(n));
      const v = pair(new Float32Array(n));
      for (let step = 1; step <= 4; step++) {
        const l2 = step === 2 ? 1e-2 : 0;
        wasm.adamStep(n, p.w, g.w, m.w, v.w, 1e-3, 0.9, 0.999, 1e-8, l2, step);
        ref.adamStep(n, p.r, g.r, m.r, v.r, 1e-3, 0.9, 0.999, 1e-8, l2, step);
        if (step === 1) {
          // From the same state, m and v (float64, rounded once, as the reference) are identical.
          expect(Array.from(m.w.data)).toEqual(Array.from(m.r.data));
          expect(Array.from(v.w.data)).toEqual(Array.from(v.r.data));
        }
        // The update is computed in float32: within a few ulps of the update, i.e. at most an
        // ulp or so of param (and, through l2 * param, of later m and v).
        expectClose(p.w.data, p.r.data, 2.5e-7, 1e-9, `adam param (step ${step})`);
        expectClose(m.w.data, m.r.data, 1e-6, 1e-12, `adam m (step ${step})`);
        expectClose(v.w.data, v.r.data, 1e-6, 1e-15, `adam v (step ${step})`);
      }
      p.w.data.set(p.r.data);
      const ssW = wasm.sumSquares(n, p.w);
      const ssR = ref.sumSquares(n, p.r);
      expect(Math.abs(ssW - ssR)).toBeLessThanOrEqual(1e-13 * ssR);
      expect(wasm.sumSquares(0, p.w)).toBe(0);
      freeAll(p, g, m, v);
    });
  }
});
