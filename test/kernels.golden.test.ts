/**
 * Golden tests: every PyTorch float64 fixture reproduced through the kernels of every backend.
 *
 * TOLERANCES. The kernels compute in float32 and the fixtures are float64, so each comparison
 * allows exactly the error a correct float32 implementation can make, derived per element by
 * test/helpers/bounds.ts (a first-order running error analysis: unit roundoff U = 2^-24, the
 * any-order dot-product bound γ_k Σ|a_i b_i| for every gemm of length k, propagated through the
 * layers, the activations, softmax, the backward pass and the optimizer). On top of that bound:
 *   × 1.05         the analysis drops second-order terms (products of two error bounds), smaller
 *                  than the first-order bound by about the relative error of the inputs involved;
 *                  5% covers them. Measured: every entry of reference, native, wasm and a float32
 *                  emulation is within 85% of its bound; the element-wise optimizer results come
 *                  closest (their bound is only a few roundings, so it is tight), gemm-based
 *                  results stay far below (the γ_k bound is worst-case);
 *   + 1e-12 |ref|  the fixtures' own float64 rounding (FORMAT.md: ~1e-15 relative).
 * The tests below also PROVE that these tolerances are tight enough for known bugs: the wrong
 * derivative at z = 0, a missing L2 term and TensorFlow's Adam epsilon placement each fall outside them.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Kernels } from '../src/kernels/types.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { type ActSpec, BMat, type BParams, type BScalar, adamStep, mlp, sgdStep } from './helpers/bounds.js';
import { createF32EmuKernels } from './helpers/f32emu.js';
import {
  MLP_CASES,
  type MlpCase,
  OPT_CASES,
  type OptCase,
  type TensorJson,
  loadMlpCase,
  loadOptCase,
  manifestMismatches,
  pick,
} from './helpers/fixtures.js';
import { KernelNet, type Layout, type Params64 } from './helpers/net.js';
import { allFinite, assertClose, violations } from './helpers/tolerance.js';

// ---------------------------------------------------------------------------------------------
// Fixture -> bounds/harness inputs

function actSpec(c: { activation: MlpCase['activation'] }): ActSpec {
  const a = c.activation;
  if (a.name === 'leaky_relu') {
    if (a.alpha === undefined) throw new Error('leaky_relu fixture without alpha');
    return { name: 'leaky_relu', alpha: a.alpha };
  }
  return { name: a.name };
}

const PARAM = (kind: 'W' | 'b' | 'prelu', l: number): string => `${kind}${l + 1}`;

function boundParams(params: Record<string, TensorJson>, sizes: readonly number[]): BParams {
  const W: BMat[] = [];
  const b: BMat[] = [];
  const slope: (BScalar | null)[] = [null, null];
  for (let l = 0; l < 3; l++) {
    W.push(BMat.rounded(sizes[l]!, sizes[l + 1]!, pick(params, PARAM('W', l)).data));
    b.push(BMat.rounded(1, sizes[l + 1]!, pick(params, PARAM('b', l)).data));
    const s = params[PARAM('prelu', l)];
    if (s && l < 2) {
      const v = s.data[0]!;
      slope[l] = { v, e: 2 ** -24 * Math.abs(v) };
    }
  }
  return { W, b, slope };
}

function params64(p: BParams): Params64 {
  return { W: p.W.map((m) => m.v), b: p.b.map((m) => m.v), slope: p.slope.map((s) => (s ? s.v : null)) };
}

/** Tolerance array for a bound matrix compared against float64 reference values (see header). */
function tolerance(e: ArrayLike<number>, ref: ArrayLike<number>): Float64Array {
  return Float64Array.from({ length: ref.length }, (_, i) => 1.05 * e[i]! + 1e-12 * Math.abs(ref[i]!));
}
const scalarTol = (s: BScalar, ref: number): number => 1.05 * s.e + 1e-12 * Math.abs(ref);

function check(what: string, actual: ArrayLike<number>, ref: TensorJson, bound: BMat): void {
  assertClose(what, actual, ref.data, tolerance(bound.e, ref.data));
}

function checkScalar(what: string, actual: number, ref: number, bound: BScalar): void {
  const tol = scalarTol(bound, ref);
  if (!(Math.abs(actual - ref) <= tol)) {
    throw new Error(`${what}: got ${actual}, want ${ref}, |diff| ${Math.abs(actual - ref).toExponential(3)} > tol ${tol.toExponential(3)}`);
  }
}

/** |float64 harness - fixture| <= 1e-12 + 1e-9|ref| (FORMAT.md's suggestion for float64 ports). */
function anchor(what: string, mine: ArrayLike<number>, ref: ArrayLike<number>): void {
  assertClose(
    `float64 harness, ${what}`,
    mine,
    ref,
    Float64Array.from({ length: ref.length }, (_, i) => 1e-12 + 1e-9 * Math.abs(ref[i]!)),
  );
}

const mlpCases = new Map<string, MlpCase>(MLP_CASES.map((name) => [name, loadMlpCase(name)]));
const optCases = new Map<string, OptCase>(OPT_CASES.map((name) => [name, loadOptCase(name)]));
const mlpCase = (name: string): MlpCase => mlpCases.get(name)!;
const optCase = (name: string): OptCase => optCases.get(name)!;

function exactFor(c: MlpCase, options: Parameters<typeof mlp>[6] = {}): ReturnType<typeof mlp> {
  const sizes = c.layer_sizes;
  const p = boundParams(c.params, sizes);
  return mlp(p, BMat.rounded(c.batch, sizes[0], c.x.data), c.y.data, actSpec(c), c.lambda, true, options);
}

// ---------------------------------------------------------------------------------------------
// Backend-independent checks: fixture integrity, the float64 harness, and tolerance tightness.

describe('golden fixtures and the error model', () => {
  it('fixture files match manifest.json (size and sha256)', () => {
    expect(manifestMismatches()).toEqual([]);
  });

  it.each(MLP_CASES)('float64 harness reproduces %s (anchors the bound model)', (name) => {
    const c = mlpCase(name);
    const r = exactFor(c);
    anchor('z1', r.z[0]!.v, c.forward.z1.data);
    anchor('h1', r.h[0]!.v, c.forward.h1.data);
    anchor('z2', r.z[1]!.v, c.forward.z2.data);
    anchor('h2', r.h[1]!.v, c.forward.h2.data);
    anchor('logits', r.z[2]!.v, c.forward.logits.data);
    anchor('probs', r.probs.v, c.forward.probs.data);
    anchor('dloss_dlogits', r.dlogits.v, c.dloss_dlogits.data);
    anchor('loss', [r.dataLoss.v, r.sumSq.v, r.loss.v], [c.data_loss, c.l2_sum_sq_weights, c.loss]);
    for (let l = 0; l < 3; l++) {
      anchor(`dW${l + 1}`, r.gW[l]!.v, pick(c.grads, PARAM('W', l)).data);
      anchor(`db${l + 1}`, r.gb[l]!.v, pick(c.grads, PARAM('b', l)).data);
      if (l < 2 && r.gSlope[l]) anchor(`dprelu${l + 1}`, [r.gSlope[l]!.v], pick(c.grads, PARAM('prelu', l)).data);
    }
  });

  it.each(['relu_zero', 'leaky_relu_0.2_zero'])('%s: the tolerance rejects the wrong derivative at z = 0', (name) => {
    const c = mlpCase(name);
    const units = c.zero_preactivation!.units;
    const right = exactFor(c);
    const wrong = exactFor(c, { zeroBranch: 'positive' });
    const ref = pick(c.grads, 'b1').data;
    for (const j of units) {
      expect(right.z[0]!.v[c.zero_preactivation!.sample * right.z[0]!.cols + j]).toBe(0);
      const tol = 1.05 * right.gb[0]!.e[j]! + 1e-12 * Math.abs(ref[j]!);
      // The brief: wrong conventions differ by >= 1e-3 here, so the tolerance must be far tighter.
      expect(tol).toBeLessThan(1e-4);
      expect(Math.abs(wrong.gb[0]!.v[j]! - ref[j]!)).toBeGreaterThan(tol);
    }
  });

  it.each(MLP_CASES.filter((n) => !n.startsWith('hard')))('%s: the tolerance rejects weight gradients without the L2 term', (name) => {
    const c = mlpCase(name);
    const r = exactFor(c);
    for (let l = 0; l < 3; l++) {
      const ref = pick(c.grads, PARAM('W', l)).data;
      const noL2 = pick(c.grads_lambda0, PARAM('W', l)).data;
      // Not just one entry must catch it (lambda*|W| is far above the float32 bound for most):
      // at least a quarter of every weight matrix.
      expect(violations(noL2, ref, tolerance(r.gW[l]!.e, ref)).length).toBeGreaterThan(ref.length / 4);
    }
  });

  it('opt_adam: the tolerance rejects the other bias-correction placement (eps scaled by sqrt(1-b2^t))', () => {
    const c = optCase('opt_adam');
    const o = c.optimizer;
    const [b1, b2, eps, lr] = [o.beta1!, o.beta2!, o.eps!, o.lr];
    let rejected = 0;
    for (const name of c.param_order) {
      let p = BMat.rounded(1, pick(c.initial_params, name).data.length, pick(c.initial_params, name).data);
      let m = BMat.zeros(p.rows, p.cols);
      let v = BMat.zeros(p.rows, p.cols);
      const alt = Float64Array.from(p.v);
      const am = new Float64Array(p.v.length);
      const av = new Float64Array(p.v.length);
      for (let k = 0; k < 3; k++) {
        const g = pick(c.steps[k]!.grads, name).data;
        ({ p, m, v } = adamStep(p, BMat.rounded(1, g.length, g), m, v, lr, b1, b2, eps, 0, k + 1));
        const t = k + 1;
        for (let i = 0; i < alt.length; i++) {
          am[i] = b1 * am[i]! + (1 - b1) * g[i]!;
          av[i] = b2 * av[i]! + (1 - b2) * g[i]! ** 2;
          // TensorFlow / "Adam paper, algorithm 1 footnote" form: lr_t = lr*sqrt(1-b2^t)/(1-b1^t), eps unscaled.
          alt[i] = alt[i]! - ((lr * Math.sqrt(1 - b2 ** t)) / (1 - b1 ** t)) * (am[i]! / (Math.sqrt(av[i]!) + eps));
        }
      }
      const ref = pick(c.steps[2]!.params_after, name).data;
      rejected += violations(alt, ref, tolerance(p.e, ref)).length;
    }
    expect(rejected).toBeGreaterThan(0);
  });
});

// ---------------------------------------------------------------------------------------------
// Per backend

registerMissingBackends('golden');

const emu = { name: 'f32emu (test-only float32 emulation)', kernels: createF32EmuKernels() };
const targets: { name: string; kernels: Kernels }[] = [...loadedBackends(), emu];
const LAYOUTS: Layout[] = ['in_out', 'out_in'];

for (const { name: backend, kernels: k } of targets) {
  describe(`golden: ${backend}`, () => {
    const bytesBefore = k.allocatedBytes();
    afterAll(() => {
      // Every test frees what it allocates.
      expect(k.allocatedBytes()).toBe(bytesBefore);
    });

    for (const name of MLP_CASES) {
      for (const layout of LAYOUTS) {
        it(`${name} [${layout}]: forward, loss, dlogits, every gradient`, () => {
          const c = mlpCase(name);
          const sizes = c.layer_sizes;
          const bp = boundParams(c.params, sizes);
          const r = mlp(bp, BMat.rounded(c.batch, sizes[0], c.x.data), c.y.data, actSpec(c), c.lambda, true);
          const net = new KernelNet(k, sizes, c.batch, layout, actSpec(c));
          try {
            net.setParams(params64(bp));
            net.setInput(c.x.data, c.y.data);
            const dataLoss = net.forward();
            const sumSq = net.sumSquares();
            const loss = dataLoss + 0.5 * c.lambda * sumSq;
            const B = c.batch;
            const rd = KernelNet.read;

            check('z1', rd(net.z[0]!, B * sizes[1]), c.forward.z1, r.z[0]!);
            check('h1', rd(net.h[0]!, B * sizes[1]), c.forward.h1, r.h[0]!);
            check('z2', rd(net.z[1]!, B * sizes[2]), c.forward.z2, r.z[1]!);
            check('h2', rd(net.h[1]!, B * sizes[2]), c.forward.h2, r.h[1]!);
            check('logits', rd(net.z[2]!, B * sizes[3]), c.forward.logits, r.z[2]!);
            const probs = rd(net.probs, B * sizes[3]);
            check('probs', probs, c.forward.probs, r.probs);
            checkScalar('data loss', dataLoss, c.data_loss, r.dataLoss);
            checkScalar('sum of squared weights', sumSq, c.l2_sum_sq_weights, r.sumSq);
            checkScalar('loss (with L2)', loss, c.loss, r.loss);
            check('dloss_dlogits', rd(net.dlogits, B * sizes[3]), c.dloss_dlogits, r.dlogits);

            net.backward(c.lambda);
            for (let l = 0; l < 3; l++) {
              check(`dW${l + 1}`, net.readW(net.gW[l]!, l), pick(c.grads, PARAM('W', l)), r.gW[l]!);
              check(`db${l + 1}`, rd(net.gb[l]!, sizes[l + 1]!), pick(c.grads, PARAM('b', l)), r.gb[l]!);
              if (l < 2 && net.gSlope[l]) {
                const s = r.gSlope[l]!;
                checkScalar(`dprelu${l + 1}`, net.gSlope[l]!.data[0]!, pick(c.grads, PARAM('prelu', l)).data[0]!, s);
              }
            }

            if (c.zero_preactivation) {
              // The z = 0 convention, asserted on its own so a failure says what it is about.
              const ref = pick(c.grads, 'b1').data;
              const got = rd(net.gb[0]!, sizes[1]);
              for (const j of c.zero_preactivation.units) {
                const tol = 1.05 * r.gb[0]!.e[j]! + 1e-12 * Math.abs(ref[j]!);
                expect(
                  Math.abs(got[j]! - ref[j]!),
                  `b1[${j}] gradient at z1[0,${j}] = 0: PyTorch's convention (negative branch at z = 0)`,
                ).toBeLessThanOrEqual(tol);
              }
            }

            if (c.hard) {
              expect(Number.isFinite(dataLoss)).toBe(true);
              for (const t of [net.z[2]!, net.probs, net.dlogits, ...net.gW, ...net.gb]) expect(allFinite(t.data, t.length - 5)).toBe(true);
              // Where the exact probability is below 1e-50, float32 must give exactly 0: the bound on
              // the logits' error there is below 5 (asserted), and e^5 * 1e-50 is far below the
              // smallest float32 subnormal 2^-149 ≈ 1.4e-45.
              const fp = c.forward.probs.data;
              let zeros = 0;
              for (let i = 0; i < fp.length; i++) {
                if (fp[i]! < 1e-50) {
                  expect(r.z[2]!.e[i]).toBeLessThan(5);
                  expect(probs[i], `probs[${i}] (exact ${fp[i]})`).toBe(0);
                  zeros++;
                }
              }
              if (name === 'hard_logits_1000') expect(zeros).toBeGreaterThanOrEqual(7);
            }
            expect(net.guardsIntact(), 'a kernel wrote past the logical end of a buffer').toBe(true);
          } finally {
            net.free();
          }
        });
      }
    }

    for (const name of OPT_CASES) {
      it(`${name}: the fixture's gradients through ${name === 'opt_adam' ? 'adamStep' : 'sgdStep'}, 3 steps`, () => {
        const c = optCase(name);
        const o = c.optimizer;
        const tensors: ReturnType<Kernels['alloc']>[] = [];
        const alloc = (values: ArrayLike<number> | null, n: number): ReturnType<Kernels['alloc']> => {
          const t = k.alloc(n);
          if (values) t.data.set(Array.from(values));
          tensors.push(t);
          return t;
        };
        try {
          for (const pname of c.param_order) {
            const init = pick(c.initial_params, pname).data;
            const n = init.length;
            let bp = BMat.rounded(1, n, init);
            let bvel: BMat | null = null;
            let bm = BMat.zeros(1, n);
            let bv = BMat.zeros(1, n);
            const p = alloc(bp.v, n);
            const g = alloc(null, n);
            const s1 = alloc(null, n);
            const s2 = alloc(null, n);
            for (let step = 0; step < 3; step++) {
              const rec = c.steps[step]!;
              const grad = pick(rec.grads, pname).data;
              const bg = BMat.rounded(1, n, grad);
              g.data.set(grad);
              if (o.type === 'adam') {
                k.adamStep(n, p, g, s1, s2, o.lr, o.beta1!, o.beta2!, o.eps!, 0, step + 1);
                ({ p: bp, m: bm, v: bv } = adamStep(bp, bg, bm, bv, o.lr, o.beta1!, o.beta2!, o.eps!, 0, step + 1));
                expect(rec.state_after.step).toBe(step + 1);
                const ea = pick(rec.state_after.exp_avg!, pname).data;
                const eas = pick(rec.state_after.exp_avg_sq!, pname).data;
                anchor(`${pname} exp_avg`, bm.v, ea);
                anchor(`${pname} exp_avg_sq`, bv.v, eas);
                assertClose(`step ${step + 1} ${pname} exp_avg (m)`, s1.data, ea, tolerance(bm.e, ea));
                assertClose(`step ${step + 1} ${pname} exp_avg_sq (v)`, s2.data, eas, tolerance(bv.e, eas));
              } else {
                const mu = o.momentum ?? 0;
                k.sgdStep(n, p, g, mu !== 0 ? s1 : null, o.lr, mu, o.nesterov ?? false, 0);
                ({ p: bp, vel: bvel } = sgdStep(bp, bg, bvel, o.lr, mu, o.nesterov ?? false, 0));
                if (mu !== 0) {
                  const mb = pick(rec.state_after.momentum_buffer!, pname).data;
                  anchor(`${pname} momentum_buffer`, bvel!.v, mb);
                  assertClose(`step ${step + 1} ${pname} momentum_buffer`, s1.data, mb, tolerance(bvel!.e, mb));
                }
              }
              const ref = pick(rec.params_after, pname).data;
              anchor(`${pname} after step ${step + 1}`, bp.v, ref);
              assertClose(`step ${step + 1} ${pname}`, p.data, ref, tolerance(bp.e, ref));
            }
          }
        } finally {
          for (const t of tensors) k.free(t);
        }
      });

      it(`${name}: full loop, gradients computed by the kernels, L2 folded into the optimizer, 3 steps`, () => {
        const c = optCase(name);
        const o = c.optimizer;
        const sizes = c.layer_sizes;
        const act = actSpec(c);
        const x = BMat.rounded(c.batch, sizes[0], c.x.data);
        let bp = boundParams(c.initial_params, sizes);
        const net = new KernelNet(k, sizes, c.batch, 'out_in', act);
        const state: ReturnType<Kernels['alloc']>[][] = [];
        try {
          net.setParams(params64(bp));
          net.setInput(c.x.data, c.y.data);
          // Optimizer state per parameter tensor: W1, b1, W2, b2, W3, b3 (model storage).
          const tensorsOf = (l: number): [ReturnType<Kernels['alloc']>, ReturnType<Kernels['alloc']>, number, number][] => [
            [net.W[l]!, net.gW[l]!, sizes[l]! * sizes[l + 1]!, c.lambda],
            [net.b[l]!, net.gb[l]!, sizes[l + 1]!, 0],
          ];
          for (let l = 0; l < 3; l++) for (const [, , n] of tensorsOf(l)) state.push([k.alloc(n), k.alloc(n)]);
          type St = { a: BMat | null; b: BMat | null };
          const bstate: St[] = Array.from({ length: 6 }, () => ({ a: null, b: null }));

          for (let step = 0; step < 4; step++) {
            const r = mlp(bp, x, c.y.data, act, c.lambda, false);
            const dataLoss = net.forward();
            const loss = dataLoss + 0.5 * c.lambda * net.sumSquares();
            anchor(`loss at p${step}`, [r.loss.v], [c.losses[step]!]);
            checkScalar(`loss at p${step}`, loss, c.losses[step]!, r.loss);
            if (step === 3) break;
            net.backward(0);
            const next: BParams = { W: [], b: [], slope: [null, null] };
            let s = 0;
            for (let l = 0; l < 3; l++) {
              for (const [which, [param, grad, n, l2]] of tensorsOf(l).entries()) {
                const bParam = which === 0 ? bp.W[l]! : bp.b[l]!;
                const bGrad = which === 0 ? r.gW[l]! : r.gb[l]!;
                const [s1, s2] = state[s]!;
                const st = bstate[s]!;
                let updated: BMat;
                if (o.type === 'adam') {
                  k.adamStep(n, param, grad, s1!, s2!, o.lr, o.beta1!, o.beta2!, o.eps!, l2, step + 1);
                  const res = adamStep(bParam, bGrad, st.a ?? BMat.zeros(bParam.rows, bParam.cols), st.b ?? BMat.zeros(bParam.rows, bParam.cols), o.lr, o.beta1!, o.beta2!, o.eps!, l2, step + 1);
                  [updated, st.a, st.b] = [res.p, res.m, res.v];
                } else {
                  const mu = o.momentum ?? 0;
                  k.sgdStep(n, param, grad, mu !== 0 ? s1! : null, o.lr, mu, o.nesterov ?? false, l2);
                  const res = sgdStep(bParam, bGrad, st.a, o.lr, mu, o.nesterov ?? false, l2);
                  [updated, st.a] = [res.p, res.vel];
                }
                if (which === 0) next.W.push(updated);
                else next.b.push(updated);
                s++;
              }
            }
            bp = next;
            const rec = c.steps[step]!;
            for (let l = 0; l < 3; l++) {
              const wref = pick(rec.params_after, PARAM('W', l)).data;
              const bref = pick(rec.params_after, PARAM('b', l)).data;
              anchor(`W${l + 1} after step ${step + 1}`, bp.W[l]!.v, wref);
              assertClose(`step ${step + 1} W${l + 1}`, net.readW(net.W[l]!, l), wref, tolerance(bp.W[l]!.e, wref));
              assertClose(`step ${step + 1} b${l + 1}`, KernelNet.read(net.b[l]!, sizes[l + 1]!), bref, tolerance(bp.b[l]!.e, bref));
            }
          }
          expect(net.guardsIntact()).toBe(true);
        } finally {
          for (const [a, b] of state) {
            k.free(a!);
            k.free(b!);
          }
          net.free();
        }
      });
    }
  });
}
