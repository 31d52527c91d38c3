/**
 * Property tests: every kernel of every non-reference backend against the reference backend, on
 * random shapes (1, small primes, non-multiples of 4/8/16, tall 257x3, wide 3x257, zero sizes),
 * all four gemm transposes, alpha/beta including 0 (beta = 0 with NaN pre-filled in C), and every
 * activation (leaky/prelu slopes negative, zero and above 1). When neither native nor wasm loads,
 * the properties run against the test-only float32 emulation instead, so the suite and its
 * tolerances are exercised on every machine.
 *
 * TOLERANCES. Both the backend and the reference are correct float32 implementations of the same
 * formula, so each is within the bound e of tolerance.ts / bounds.ts of the exact result, and
 * |backend - reference| <= 2e. For gemm that is 2 γ_{k+3} (|α| Σ_p |a_ip b_pj| + |β| |c_ij|): it
 * grows with k and with the magnitudes of the terms (not of the result, which may cancel), and is
 * ~1e-6 relative for k = 127, far below what a wrong index, a dropped term or a wrong transpose
 * gives (O(1) relative). FLT_MIN is added wherever a result can underflow (a backend may flush
 * subnormals). Inputs are also checked to be unmodified and guard elements past every logical
 * size to be untouched.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Activation, Kernels, Tensor } from '../src/kernels/types.js';
import { nonReferenceBackends, registerMissingBackends } from './helpers/backends.js';
import { BMat, adamStep as adamBound, sgdStep as sgdBound, softmaxCrossEntropy as softmaxBound } from './helpers/bounds.js';
import { createF32EmuKernels } from './helpers/f32emu.js';
import { TestRng, guardIntact, read, sameBits, upload } from './helpers/random.js';
import { ACT_ULPS, FLT_MIN, U, U64, assertClose, gamma } from './helpers/tolerance.js';

registerMissingBackends('property');

const ref = createReferenceKernels();
const loaded = nonReferenceBackends().map((b) => ({ name: b.name as string, kernels: b.kernels }));
const targets =
  loaded.length > 0 ? loaded : [{ name: 'f32emu (stand-in: no native/wasm backend loaded)', kernels: createF32EmuKernels() }];

const DIMS = [1, 2, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 31, 33, 64, 67, 127];
const dim = fc.constantFrom(...DIMS);
const smallDim = fc.constantFrom(1, 2, 3, 5, 7, 8, 13, 17, 31);
const gemmShape = fc.oneof(
  { weight: 8, arbitrary: fc.record({ m: dim, n: dim, k: dim }) },
  {
    weight: 2,
    arbitrary: fc.constantFrom(
      { m: 257, n: 3, k: 13 },
      { m: 3, n: 257, k: 13 },
      { m: 257, n: 3, k: 257 },
      { m: 3, n: 257, k: 127 },
      { m: 1, n: 1, k: 1031 },
      { m: 67, n: 1, k: 127 },
      { m: 1, n: 67, k: 127 },
    ),
  },
  { weight: 1, arbitrary: fc.constantFrom({ m: 0, n: 5, k: 3 }, { m: 4, n: 0, k: 3 }, { m: 4, n: 5, k: 0 }, { m: 0, n: 0, k: 0 }) },
);
const scalar = (...specials: number[]): fc.Arbitrary<number> =>
  fc.oneof(fc.constantFrom(...specials), fc.double({ min: -4, max: 4, noNaN: true, noDefaultInfinity: true }));
const scale = fc.constantFrom(1, 1e-3, 1e3, 0.5);
const slopeValue = fc.oneof(
  fc.constantFrom(0.01, 0.2, -0.5, 0, 1, 1.5, -2),
  fc.double({ min: -3, max: 3, noNaN: true, noDefaultInfinity: true }),
);
type ActDesc =
  | { kind: 'relu' | 'sigmoid' | 'tanh' | 'linear' }
  | { kind: 'leaky_relu'; alpha: number }
  | { kind: 'prelu'; slope: number };
const actArb: fc.Arbitrary<ActDesc> = fc.oneof(
  fc.constantFrom<ActDesc>({ kind: 'relu' }, { kind: 'sigmoid' }, { kind: 'tanh' }, { kind: 'linear' }),
  slopeValue.map((alpha): ActDesc => ({ kind: 'leaky_relu', alpha })),
  slopeValue.map((slope): ActDesc => ({ kind: 'prelu', slope })),
);

/** Materialises an activation on a backend (prelu's slope is a tensor of that backend). */
function activation(k: Kernels, d: ActDesc, owned: Tensor[]): Activation {
  if (d.kind !== 'prelu') return d;
  const slope = upload(k, [d.slope]);
  owned.push(slope);
  return { kind: 'prelu', slope };
}

/** Runs `body` with a list that collects the backend's tensors, freeing them afterwards. */
function withTensors<T>(k: Kernels, body: (owned: Tensor[], up: (v: ArrayLike<number>) => Tensor) => T): T {
  const owned: Tensor[] = [];
  const up = (v: ArrayLike<number>): Tensor => {
    const t = upload(k, v, 1 + (v.length % 3));
    owned.push(t);
    return t;
  };
  try {
    return body(owned, up);
  } finally {
    for (const t of owned) k.free(t);
  }
}

const RUNS = { gemm: 60, cheap: 100 };

/** gemm through one backend; returns C (m*n) and asserts inputs/guards untouched. */
function runGemm(
  k: Kernels,
  p: { m: number; n: number; k: number; tA: boolean; tB: boolean; alpha: number; beta: number },
  A: Float32Array,
  B: Float32Array,
  C0: Float32Array,
): Float64Array {
  return withTensors(k, (_owned, up) => {
    const [a, b, c] = [up(A), up(B), up(C0)];
    k.gemm(p.tA, p.tB, p.m, p.n, p.k, p.alpha, a, b, p.beta, c);
    expect(sameBits(a.data, A, A.length) && sameBits(b.data, B, B.length), 'gemm modified A or B').toBe(true);
    expect(guardIntact(a, A.length) && guardIntact(b, B.length) && guardIntact(c, C0.length), 'gemm wrote past a tensor').toBe(true);
    return read(c, C0.length);
  });
}

function gemmInputs(shape: { m: number; n: number; k: number }, beta: number, seed: number, sa: number, sb: number) {
  const rng = new TestRng(seed);
  const { m, n, k } = shape;
  const A = rng.floats(m * k, sa, 0.05);
  const B = rng.floats(k * n, sb, 0.05);
  // beta = 0: C is written without being read, so NaN must not propagate.
  const C0 = beta === 0 ? new Float32Array(m * n).fill(NaN) : rng.floats(m * n, 1, 0.05);
  return { A, B, C0 };
}

/** Exact C in float64, and the magnitude |α| Σ|a b| + |β| |c0| of its terms. */
function gemm64(
  p: { m: number; n: number; k: number; tA: boolean; tB: boolean; alpha: number; beta: number },
  A: Float32Array,
  B: Float32Array,
  C0: Float32Array,
): { exact: Float64Array; mag: Float64Array } {
  const { m, n, k } = p;
  const exact = new Float64Array(m * n);
  const mag = new Float64Array(m * n);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let s = 0;
      let g = 0;
      for (let q = 0; q < k; q++) {
        const a = p.tA ? A[q * m + i]! : A[i * k + q]!;
        const b = p.tB ? B[j * k + q]! : B[q * n + j]!;
        s += a * b;
        g += Math.abs(a * b);
      }
      const c = p.beta === 0 ? 0 : C0[i * n + j]!;
      exact[i * n + j] = p.alpha * s + p.beta * c;
      mag[i * n + j] = Math.abs(p.alpha) * g + Math.abs(p.beta * c);
    }
  }
  return { exact, mag };
}

const gemmParamsRecord = {
  shape: gemmShape,
  tA: fc.boolean(),
  tB: fc.boolean(),
  alpha: scalar(0, 1, -1, 0.5),
  beta: scalar(0, 1, -1, 0.5),
  seed: fc.integer(),
  sa: scale,
  sb: scale,
};
const gemmParams = fc.record(gemmParamsRecord);

describe('reference oracle vs a naive float64 re-derivation', () => {
  it('gemm: reference = correctly rounded float64 result (|err| <= U|exact| + γ64_{k+3}·mag)', () => {
    fc.assert(
      fc.property(gemmParams, ({ shape, tA, tB, alpha, beta, seed, sa, sb }) => {
        const p = { ...shape, tA, tB, alpha, beta };
        const { A, B, C0 } = gemmInputs(shape, beta, seed, sa, sb);
        const got = runGemm(ref, p, A, B, C0);
        const { exact, mag } = gemm64(p, A, B, C0);
        // The reference accumulates in float64 and rounds once: U|exact| for the final rounding
        // (2^-150 below the normal range), (k+3)·U64 for the float64 sum, alpha and beta.
        const tol = exact.map((x, i) => U * Math.abs(x) + ((shape.k + 3) * U64 * mag[i]!) / (1 - (shape.k + 3) * U64) + 2 ** -150);
        assertClose(`reference gemm ${JSON.stringify(p)}`, got, exact, tol);
      }),
      { numRuns: RUNS.gemm },
    );
  });

  it('sgdStep (incl. Nesterov) and adamStep follow the documented formulas', () => {
    fc.assert(
      fc.property(
        smallDim,
        fc.integer(),
        fc.constantFrom(0, 0.5, 0.9),
        fc.boolean(),
        fc.constantFrom(0, 1e-3, 0.05),
        (n, seed, mu, nesterov, l2) => {
          const rng = new TestRng(seed);
          const P = rng.floats(n);
          const G = rng.floats(n);
          const V = rng.floats(n);
          withTensors(ref, (_o, up) => {
            const [p, g, v] = [up(P), up(G), up(V)];
            ref.sgdStep(n, p, g, mu === 0 ? null : v, 0.1, mu, nesterov, l2);
            const b = sgdBound(BMat.exact(1, n, P), BMat.exact(1, n, G), BMat.exact(1, n, V), 0.1, mu, nesterov, l2);
            assertClose('sgd param', read(p, n), b.p.v, b.p.e);
            if (mu !== 0) assertClose('sgd velocity', read(v, n), b.vel!.v, b.vel!.e);
          });
          const Vsq = Float32Array.from(V, (x) => x * x);
          withTensors(ref, (_o, up) => {
            const [p, g, m, v] = [up(P), up(G), up(V), up(Vsq)];
            ref.adamStep(n, p, g, m, v, 1e-2, 0.9, 0.999, 1e-8, l2, 3);
            const b = adamBound(BMat.exact(1, n, P), BMat.exact(1, n, G), BMat.exact(1, n, V), BMat.exact(1, n, Vsq), 1e-2, 0.9, 0.999, 1e-8, l2, 3);
            assertClose('adam param', read(p, n), b.p.v, b.p.e);
            assertClose('adam m', read(m, n), b.m.v, b.m.e);
            assertClose('adam v', read(v, n), b.v.v, b.v.e);
          });
        },
      ),
      { numRuns: RUNS.cheap },
    );
  });
});

for (const { name, kernels: k } of targets) {
  describe(`property: ${name} vs reference`, () => {
    it('gemm: all transposes, alpha/beta incl. 0, NaN in C with beta = 0, odd shapes', () => {
      fc.assert(
        fc.property(gemmParams, ({ shape, tA, tB, alpha, beta, seed, sa, sb }) => {
          const p = { ...shape, tA, tB, alpha, beta };
          const { A, B, C0 } = gemmInputs(shape, beta, seed, sa, sb);
          const want = runGemm(ref, p, A, B, C0);
          const got = runGemm(k, p, A, B, C0);
          const { mag } = gemm64(p, A, B, C0);
          const g = gamma(shape.k + 3);
          assertClose(`${name} gemm ${JSON.stringify(p)}`, got, want, mag.map((x) => 2 * g * x + FLT_MIN));
        }),
        { numRuns: RUNS.gemm },
      );
    });

    it('gemm: large shapes crossing cache-block and thread-split boundaries', () => {
      // Every shape, each with random transposes and scalars. n = 10 and 16 take the narrow
      // micro-tile where the ISA has one (AVX-512: 16x16), here with k past KC and threads split.
      const shapes = [{ m: 129, n: 1025, k: 513 }, { m: 515, n: 17, k: 1030 }, { m: 1, n: 4099, k: 3 }, { m: 4099, n: 1, k: 9 }, { m: 260, n: 260, k: 600 }, { m: 1031, n: 10, k: 600 }, { m: 600, n: 16, k: 300 }];
      for (const shape of shapes) fc.assert(
        fc.property(
          fc.constant(shape),
          fc.boolean(),
          fc.boolean(),
          scalar(1, -1),
          scalar(0, 1),
          fc.integer(),
          ({ m, n, k: kk }, tA, tB, alpha, beta, seed) => {
            const p = { m, n, k: kk, tA, tB, alpha, beta };
            const { A, B, C0 } = gemmInputs(p, beta, seed, 1, 1);
            const want = runGemm(ref, p, A, B, C0);
            const got = runGemm(k, p, A, B, C0);
            const { mag } = gemm64(p, A, B, C0);
            assertClose(`${name} gemm ${JSON.stringify(p)}`, got, want, mag.map((x) => 2 * gamma(kk + 3) * x + FLT_MIN));
          },
        ),
        { numRuns: 2 },
      );
    });

    it('biasActivation: every activation, with and without bias, in place and not', () => {
      fc.assert(
        fc.property(dim, dim, actArb, fc.boolean(), fc.boolean(), fc.integer(), scale, (rows, cols, act, withBias, inPlace, seed, s) => {
          const rng = new TestRng(seed);
          const Z = rng.floats(rows * cols, s, 0.1);
          const bias = rng.floats(cols, s, 0.2);
          const H0 = rng.floats(rows * cols);
          const run = (kk: Kernels): { z: Float64Array; h: Float64Array } =>
            withTensors(kk, (owned, up) => {
              const z = up(Z);
              const h = inPlace ? z : up(H0);
              const b = withBias ? up(bias) : null;
              kk.biasActivation(rows, cols, z, b, activation(kk, act, owned), h);
              expect(guardIntact(z, Z.length) && guardIntact(h, Z.length)).toBe(true);
              if (b) expect(sameBits(b.data, bias, cols)).toBe(true);
              return { z: read(z, Z.length), h: read(h, Z.length) };
            });
          const want = run(ref);
          const got = run(k);
          // z + b: both are correctly rounded float32 sums of the same float32 inputs (a float64
          // sum rounded to float32 is correctly rounded, Figueroa 1995), so equal (FTZ aside).
          if (!inPlace) assertClose(`${name} biasActivation z`, got.z, want.z, FLT_MIN);
          // h: piecewise-linear: alpha·z may be rounded through a float32 alpha (2U); sigmoid/tanh:
          // each backend within ACT_ULPS·U of exact, the reference within U.
          const rel = act.kind === 'sigmoid' || act.kind === 'tanh' ? ACT_ULPS + 1 : 2;
          assertClose(`${name} biasActivation h (${JSON.stringify(act)})`, got.h, want.h, want.h.map((x) => rel * U * Math.abs(x) + FLT_MIN));
        }),
        { numRuns: RUNS.cheap },
      );
    });

    it('denseForward: every activation, with and without bias, h = z or not; = gemm NT + biasActivation', () => {
      const shapeArb = fc.oneof(
        { weight: 8, arbitrary: fc.record({ rows: dim, inF: dim, outF: dim }) },
        {
          weight: 2,
          arbitrary: fc.constantFrom(
            { rows: 257, inF: 13, outF: 3 },
            { rows: 3, inF: 1031, outF: 67 },
            { rows: 130, inF: 600, outF: 33 },
            { rows: 31, inF: 257, outF: 129 },
          ),
        },
        { weight: 1, arbitrary: fc.constantFrom({ rows: 0, inF: 3, outF: 5 }, { rows: 4, inF: 0, outF: 5 }, { rows: 4, inF: 3, outF: 0 }) },
      );
      fc.assert(
        fc.property(shapeArb, actArb, fc.boolean(), fc.boolean(), fc.integer(), scale, ({ rows, inF, outF }, act, withBias, inPlace, seed, s) => {
          const rng = new TestRng(seed);
          const X = rng.floats(rows * inF, s, 0.05);
          const W = rng.floats(outF * inF, 1, 0.05);
          const bias = rng.floats(outF, s, 0.2);
          const Z0 = new Float32Array(rows * outF).fill(NaN); // written without being read
          const H0 = rng.floats(rows * outF);
          const size = rows * outF;
          const fused = (kk: Kernels): { z: Float64Array; h: Float64Array } =>
            withTensors(kk, (owned, up) => {
              const [x, w] = [up(X), up(W)];
              const b = withBias ? up(bias) : null;
              const z = up(Z0);
              const h = inPlace ? z : up(H0);
              kk.denseForward(rows, inF, outF, x, w, b, activation(kk, act, owned), z, h);
              expect(sameBits(x.data, X, X.length) && sameBits(w.data, W, W.length), 'denseForward modified x or w').toBe(true);
              if (b) expect(sameBits(b.data, bias, outF), 'denseForward modified bias').toBe(true);
              expect(guardIntact(z, size) && guardIntact(h, size), 'denseForward wrote past z or h').toBe(true);
              return { z: read(z, size), h: read(h, size) };
            });
          const composed = (kk: Kernels): { z: Float64Array; h: Float64Array } =>
            withTensors(kk, (owned, up) => {
              const [x, w] = [up(X), up(W)];
              const b = withBias ? up(bias) : null;
              const z = up(Z0);
              const h = inPlace ? z : up(H0);
              kk.gemm(false, true, rows, outF, inF, 1, x, w, 0, z);
              kk.biasActivation(rows, outF, z, b, activation(kk, act, owned), h);
              return { z: read(z, size), h: read(h, size) };
            });
          const got = fused(k);
          // The documented contract: the same bits as the backend's own gemm + biasActivation.
          const same = composed(k);
          expect(sameBits(Float32Array.from(got.z), Float32Array.from(same.z), size), `${name} denseForward z != its gemm + biasActivation`).toBe(true);
          expect(sameBits(Float32Array.from(got.h), Float32Array.from(same.h), size), `${name} denseForward h != its gemm + biasActivation`).toBe(true);
          // Against the reference (which is gemm + biasActivation): the gemm bound of the gemm
          // test over the terms |x w| and |b|, plus one rounding of the bias sum on each side;
          // h through the activation's Lipschitz constant, plus the activation's own error.
          const want = fused(ref);
          const { mag } = gemm64({ m: rows, n: outF, k: inF, tA: false, tB: true, alpha: 1, beta: 0 }, X, W, Z0);
          const g = gamma(inF + 4);
          const tolZ = want.z.map((x, i) => 2 * g * (mag[i]! + (withBias ? Math.abs(bias[i % outF]!) : 0)) + 2 * U * Math.abs(x) + FLT_MIN);
          if (!inPlace) assertClose(`${name} denseForward z`, got.z, want.z, tolZ);
          const slope = act.kind === 'leaky_relu' ? act.alpha : act.kind === 'prelu' ? act.slope : 1;
          const lip = Math.max(1, Math.abs(slope));
          const rel = act.kind === 'sigmoid' || act.kind === 'tanh' ? ACT_ULPS + 1 : 2;
          assertClose(
            `${name} denseForward h (${JSON.stringify(act)}, ${rows}x${inF}->${outF})`,
            got.h,
            want.h,
            want.h.map((x, i) => lip * tolZ[i]! + rel * U * Math.abs(x) + FLT_MIN),
          );
        }),
        { numRuns: RUNS.gemm },
      );
    });

    it('activationBackward: every activation, z = 0 exactly in places, prelu slope gradient written', () => {
      fc.assert(
        fc.property(dim, dim, actArb, fc.boolean(), fc.integer(), scale, (rows, cols, act, inPlace, seed, s) => {
          const rng = new TestRng(seed);
          const n = rows * cols;
          const Z = rng.floats(n, s, 0.15);
          const dH = rng.floats(n, 1, 0.05);
          // h = act(z) from the reference, so both backends see consistent inputs.
          const H = withTensors(ref, (owned, up) => {
            const z = up(Z);
            const h = up(new Float32Array(n));
            ref.biasActivation(rows, cols, z, null, activation(ref, act, owned), h);
            return Float32Array.from(read(h, n));
          });
          const run = (kk: Kernels): { dz: Float64Array; slope: number } =>
            withTensors(kk, (owned, up) => {
              const [z, h, dh] = [up(Z), up(H), up(dH)];
              const dz = inPlace ? dh : up(new Float32Array(n));
              const dSlope = up([NaN]); // written, never accumulated into
              kk.activationBackward(rows, cols, activation(kk, act, owned), z, h, dh, dz, dSlope);
              expect(sameBits(z.data, Z, n) && sameBits(h.data, H, n)).toBe(true);
              expect(guardIntact(dz, n) && guardIntact(dSlope, 1)).toBe(true);
              if (act.kind !== 'prelu') expect(dSlope.data[0]).toBeNaN(); // ignored for other activations
              return { dz: read(dz, n), slope: dSlope.data[0]! };
            });
          const want = run(ref);
          const got = run(k);
          const tol = want.dz.map((x, i) => {
            const h = H[i]!;
            const dh = Math.abs(dH[i]!);
            switch (act.kind) {
              case 'sigmoid':
                return ACT_ULPS * U * dh * (h * (1 - h) + Math.abs(h)) + U * Math.abs(x) + FLT_MIN;
              case 'tanh':
                // |d| + h² with d = 1 - h²: the cancellation in 1 - h² costs U·h², absolutely.
                return ACT_ULPS * U * dh * 1 + U * Math.abs(x) + FLT_MIN;
              default:
                return 2 * U * Math.abs(x) + FLT_MIN;
            }
          });
          assertClose(`${name} activationBackward dz (${JSON.stringify(act)})`, got.dz, want.dz, tol);
          if (act.kind === 'prelu') {
            let mag = 0;
            for (let i = 0; i < n; i++) if (Z[i]! <= 0) mag += Math.abs(dH[i]! * Z[i]!);
            assertClose(`${name} prelu slope gradient`, [got.slope], [want.slope], 2 * gamma(n + 1) * mag + FLT_MIN);
          }
        }),
        { numRuns: RUNS.cheap },
      );
    });

    it('biasGrad: column sums are written (not accumulated)', () => {
      fc.assert(
        fc.property(dim, dim, fc.integer(), scale, (rows, cols, seed, s) => {
          const dZ = new TestRng(seed).floats(rows * cols, s, 0.05);
          const run = (kk: Kernels): Float64Array =>
            withTensors(kk, (_o, up) => {
              const dz = up(dZ);
              const db = up(new Float32Array(cols).fill(NaN));
              kk.biasGrad(rows, cols, dz, db);
              expect(guardIntact(db, cols) && sameBits(dz.data, dZ, dZ.length)).toBe(true);
              return read(db, cols);
            });
          const mag = new Float64Array(cols);
          for (let i = 0; i < rows * cols; i++) mag[i % cols] = mag[i % cols]! + Math.abs(dZ[i]!);
          assertClose(`${name} biasGrad`, run(k), run(ref), mag.map((x) => 2 * gamma(rows + 1) * x + FLT_MIN));
        }),
        { numRuns: RUNS.cheap },
      );
    });

    it('softmaxCrossEntropy and softmax: logits up to ±1000, dlogits separate, null or aliasing logits', () => {
      fc.assert(
        fc.property(
          dim,
          fc.constantFrom(1, 2, 3, 10, 17, 257),
          fc.constantFrom(1, 10, 100, 1000),
          fc.constantFrom('separate', 'null', 'alias'),
          fc.integer(),
          (rows, cols, s, mode, seed) => {
            const rng = new TestRng(seed);
            const L = rng.floats(rows * cols, s, 0.05);
            const Y = Float32Array.from({ length: rows }, () => rng.int(cols));
            const run = (kk: Kernels) =>
              withTensors(kk, (_o, up) => {
                const [logits, labels, probs] = [up(L), up(Y), up(new Float32Array(rows * cols))];
                const dl = mode === 'separate' ? up(new Float32Array(rows * cols)) : mode === 'alias' ? logits : null;
                const loss = kk.softmaxCrossEntropy(rows, cols, logits, labels, probs, dl);
                const probs2 = up(new Float32Array(rows * cols));
                const logits2 = up(L);
                kk.softmax(rows, cols, logits2, probs2);
                expect(guardIntact(probs, L.length) && guardIntact(probs2, L.length) && guardIntact(logits, L.length)).toBe(true);
                if (mode !== 'alias') expect(sameBits(logits.data, L, L.length)).toBe(true);
                return { loss, probs: read(probs, L.length), dl: dl ? read(dl, L.length) : null, probs2: read(probs2, L.length) };
              });
            const want = run(ref);
            const got = run(k);
            const b = softmaxBound(BMat.exact(rows, cols, L), Y);
            const twice = (e: Float64Array): Float64Array => e.map((x) => 2 * x);
            assertClose(`${name} softmaxCrossEntropy probs`, got.probs, want.probs, twice(b.probs.e));
            assertClose(`${name} softmax probs`, got.probs2, want.probs2, twice(b.probs.e));
            assertClose(`${name} softmaxCrossEntropy loss`, [got.loss], [want.loss], 2 * b.loss.e);
            if (got.dl && want.dl) assertClose(`${name} softmaxCrossEntropy dlogits`, got.dl, want.dl, twice(b.dlogits.e));
            expect(Number.isFinite(got.loss)).toBe(true);
          },
        ),
        { numRuns: RUNS.cheap },
      );
    });

    it('sgdStep: momentum 0 (velocity null or not), momentum, Nesterov, L2', () => {
      fc.assert(
        fc.property(
          dim,
          fc.integer(),
          fc.constantFrom(0, 1e-3, 0.1, 1),
          fc.constantFrom(0, 0.5, 0.9, 0.99),
          fc.boolean(),
          fc.constantFrom(0, 1e-4, 1e-2),
          fc.boolean(),
          (n, seed, lr, mu, nesterov, l2, nullVelocity) => {
            const rng = new TestRng(seed);
            const [P, G, V] = [rng.floats(n), rng.floats(n), rng.floats(n)];
            const run = (kk: Kernels) =>
              withTensors(kk, (_o, up) => {
                const [p, g, v] = [up(P), up(G), up(V)];
                kk.sgdStep(n, p, g, mu === 0 && nullVelocity ? null : v, lr, mu, nesterov, l2);
                expect(guardIntact(p, n) && guardIntact(v, n) && sameBits(g.data, G, n)).toBe(true);
                return { p: read(p, n), v: read(v, n) };
              });
            const want = run(ref);
            const got = run(k);
            const b = sgdBound(BMat.exact(1, n, P), BMat.exact(1, n, G), BMat.exact(1, n, V), lr, mu, nesterov, l2);
            assertClose(`${name} sgdStep param`, got.p, want.p, b.p.e.map((e) => 2 * e + FLT_MIN));
            if (mu !== 0) assertClose(`${name} sgdStep velocity`, got.v, want.v, b.vel!.e.map((e) => 2 * e + FLT_MIN));
            else assertClose(`${name} sgdStep velocity untouched at momentum 0`, got.v, V, 0);
          },
        ),
        { numRuns: RUNS.cheap },
      );
    });

    it('adamStep: random hyper-parameters and steps', () => {
      fc.assert(
        fc.property(
          dim,
          fc.integer(),
          fc.constantFrom(1e-3, 1e-2, 0.1),
          fc.constantFrom(0, 0.5, 0.9, 0.99),
          fc.constantFrom(0, 0.9, 0.999, 0.9999),
          fc.constantFrom(1e-8, 1e-6, 1e-3),
          fc.constantFrom(0, 1e-4, 1e-2),
          fc.constantFrom(1, 2, 3, 10, 1000),
          (n, seed, lr, b1, b2, eps, l2, step) => {
            const rng = new TestRng(seed);
            const [P, G, M] = [rng.floats(n), rng.floats(n, 1, 0.1), rng.floats(n, 0.1)];
            const V = Float32Array.from(rng.floats(n, 0.1), (x) => x * x);
            const run = (kk: Kernels) =>
              withTensors(kk, (_o, up) => {
                const [p, g, m, v] = [up(P), up(G), up(M), up(V)];
                kk.adamStep(n, p, g, m, v, lr, b1, b2, eps, l2, step);
                expect(guardIntact(p, n) && guardIntact(m, n) && guardIntact(v, n)).toBe(true);
                return { p: read(p, n), m: read(m, n), v: read(v, n) };
              });
            const want = run(ref);
            const got = run(k);
            const b = adamBound(BMat.exact(1, n, P), BMat.exact(1, n, G), BMat.exact(1, n, M), BMat.exact(1, n, V), lr, b1, b2, eps, l2, step);
            assertClose(`${name} adamStep param`, got.p, want.p, b.p.e.map((e) => 2 * e + FLT_MIN));
            assertClose(`${name} adamStep m`, got.m, want.m, b.m.e.map((e) => 2 * e + FLT_MIN));
            assertClose(`${name} adamStep v`, got.v, want.v, b.v.e.map((e) => 2 * e + FLT_MIN));
          },
        ),
        { numRuns: RUNS.cheap },
      );
    });

    it('sumSquares: accumulated in float64 (as documented), so within 2(n+1)·U64·Σx² of the reference', () => {
      fc.assert(
        fc.property(fc.constantFrom(...DIMS, 1000, 4099), fc.integer(), scale, (n, seed, s) => {
          const X = new TestRng(seed).floats(n, s, 0.05);
          const run = (kk: Kernels): number => withTensors(kk, (_o, up) => kk.sumSquares(n, up(X)));
          const want = run(ref);
          assertClose(`${name} sumSquares`, [run(k)], [want], 2 * (n + 1) * U64 * want);
        }),
        { numRuns: RUNS.cheap },
      );
    });

    it('results do not depend on the thread count (bitwise)', (ctx) => {
      const original = k.info().threads;
      const counts = [1, 2, 3, 4].filter((t) => {
        try {
          k.setThreads(t);
          return true;
        } catch (e) {
          expect(e).toBeInstanceOf(RangeError);
          return false;
        }
      });
      k.setThreads(original);
      if (counts.length < 2) ctx.skip(`${name} accepts only ${counts.join(', ')} thread(s)`);
      try {
        const bigShapes = fc.constantFrom({ m: 512, n: 512, k: 300 }, { m: 1031, n: 129, k: 257 }, { m: 64, n: 2050, k: 130 }, { m: 2053, n: 10, k: 300 });
        fc.assert(
          fc.property(fc.record({ ...gemmParamsRecord, shape: fc.oneof(gemmShape, bigShapes) }), ({ shape, tA, tB, alpha, beta, seed, sa, sb }) => {
            const p = { ...shape, tA, tB, alpha, beta };
            const { A, B, C0 } = gemmInputs(shape, beta, seed, sa, sb);
            const results = counts.map((t) => {
              k.setThreads(t);
              return runGemm(k, p, A, B, C0);
            });
            for (const r of results.slice(1)) expect(sameBits(r, results[0]!, r.length)).toBe(true);
          }),
          { numRuns: 20 },
        );
        // denseForward: the fused epilogue runs on the same tile grid as the GEMM.
        fc.assert(
          fc.property(fc.oneof(gemmShape, bigShapes), actArb, fc.boolean(), fc.integer(), ({ m, n, k: kk }, act, inPlace, seed) => {
            const rng = new TestRng(seed);
            const X = rng.floats(m * kk, 1, 0.05);
            const W = rng.floats(n * kk, 1, 0.05);
            const bias = rng.floats(n, 1, 0.2);
            const results = counts.map((t) => {
              k.setThreads(t);
              return withTensors(k, (owned, up) => {
                const z = up(new Float32Array(m * n));
                const h = inPlace ? z : up(new Float32Array(m * n));
                k.denseForward(m, kk, n, up(X), up(W), up(bias), activation(k, act, owned), z, h);
                return [...read(z, m * n), ...read(h, m * n)];
              });
            });
            for (const r of results.slice(1)) expect(sameBits(r, results[0]!, r.length)).toBe(true);
          }),
          { numRuns: 12 },
        );
      } finally {
        k.setThreads(original);
      }
    });
  });
}
