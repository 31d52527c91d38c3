/**
 * opt_sgd / opt_momentum / opt_adam: three steps on the relu net, through the model and the
 * optimizer classes, on every backend that loads. The fixtures put L2 (lambda = 1e-3) in the
 * loss; we fold it into the optimizer step instead (weights only), which is the same update.
 * Tolerances as in model.golden.test.ts (1e-5 of each tensor's scale + 1e-4 relative): a
 * missing bias correction or a wrong momentum buffer changes the parameters by >= 1e-3 of
 * their scale.
 */
import { describe, expect, it } from 'vitest';
import { Mlp } from '../src/model/mlp.js';
import { Adam, Sgd, createOptimizer, learningRateAt, type Optimizer } from '../src/optim/index.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { maxAbs, ourName, paramsInOurLayout, readGolden, toFloat32, toOurLayout, worstViolation, type FixtureTensor } from './helpers/golden-model.js';

interface OptCase {
  lambda: number;
  layer_sizes: number[];
  optimizer: { type: 'sgd' | 'sgd_momentum' | 'adam'; lr: number; momentum?: number; beta1?: number; beta2?: number; eps?: number };
  x: FixtureTensor;
  y: FixtureTensor;
  initial_params: Record<string, FixtureTensor>;
  losses: number[];
  steps: {
    step: number;
    loss_before: number;
    grads: Record<string, FixtureTensor>;
    params_after: Record<string, FixtureTensor>;
    state_after: Record<string, Record<string, FixtureTensor> | number>;
  }[];
}

function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  const worst = worstViolation(actual, expected, 1e-5 * Math.max(maxAbs(expected), 1e-30), 1e-4);
  expect(worst.ratio, `${what}[${worst.index}] = ${worst.actual}, expected ${worst.expected}`).toBeLessThanOrEqual(1);
}

registerMissingBackends('optimizer golden');

for (const backend of loadedBackends()) {
  describe(`optimizer trajectories (${backend.name})`, () => {
    for (const name of ['opt_sgd', 'opt_momentum', 'opt_adam'] as const) {
      it(name, () => {
        const g = readGolden<OptCase>(name);
        const k = backend.kernels;
        const model = new Mlp({ layers: g.layer_sizes, activation: 'relu', alpha: 0 }, { kernels: k, capacity: 8 });
        const o = g.optimizer;
        const optimizer: Optimizer =
          o.type === 'adam'
            ? new Adam(k, model.parameters, { beta1: o.beta1!, beta2: o.beta2!, eps: o.eps!, l2: g.lambda })
            : new Sgd(k, model.parameters, { momentum: o.type === 'sgd_momentum' ? o.momentum! : 0, l2: g.lambda });
        try {
          model.setParameters(toFloat32(paramsInOurLayout(g.initial_params)));
          const x = Float32Array.from(g.x.data);
          g.steps.forEach((step, s) => {
            // The gradient the fixture records (L2 included) ...
            const full = model.lossAndGradients(x, g.y.data, { l2: g.lambda });
            expect(Math.abs(full.loss - step.loss_before) / step.loss_before).toBeLessThan(1e-5);
            for (const [pname, e] of Object.entries(paramsInOurLayout(step.grads))) expectClose(`step ${s + 1} grad ${pname}`, full.gradients[pname]!, e);
            // ... and the update, with L2 folded into the optimizer (gradients without it).
            model.lossAndGradients(x, g.y.data, { l2: 0 });
            optimizer.step(o.lr);
            expect(optimizer.stepCount).toBe(s + 1);
            const params = model.getParameters();
            for (const [pname, e] of Object.entries(paramsInOurLayout(step.params_after))) expectClose(`step ${s + 1} ${pname}`, params[pname]!, e);
            const state = optimizer.stateTensors();
            const slots: [string, string][] = o.type === 'adam' ? [['exp_avg', 'm'], ['exp_avg_sq', 'v']] : o.type === 'sgd_momentum' ? [['momentum_buffer', 'velocity']] : [];
            expect(state.size).toBe(slots.length * model.parameters.length);
            for (const [fixtureSlot, ourSlot] of slots) {
              const tensors = step.state_after[fixtureSlot] as Record<string, FixtureTensor>;
              for (const [fname, t] of Object.entries(tensors)) {
                const ours = state.get(`optim.${ourName(fname)}.${ourSlot}`);
                expect(ours, `optim.${ourName(fname)}.${ourSlot}`).toBeDefined();
                expectClose(`step ${s + 1} ${fixtureSlot} ${fname}`, ours!.data, toOurLayout(fname, t));
              }
            }
          });
          // The loss after the third step.
          const after = model.lossAndGradients(x, g.y.data, { l2: g.lambda });
          expect(Math.abs(after.loss - g.losses[3]!) / g.losses[3]!).toBeLessThan(1e-5);
        } finally {
          optimizer.dispose();
          model.dispose();
        }
      });
    }
  });
}

describe('optimizers', () => {
  const k = createReferenceKernels();

  it('SGD with Nesterov momentum follows PyTorch formulation; L2 only on weights', () => {
    const model = new Mlp({ layers: [2, 2], activation: 'relu', alpha: 0 }, { kernels: k, capacity: 1 });
    const sgd = new Sgd(k, model.parameters, { momentum: 0.9, nesterov: true, l2: 0.5 });
    try {
      model.setParameters({ 'layers.0.weight': [1, -2, 3, 0.5], 'layers.0.bias': [0.25, -1] });
      const w = model.parameters[0]!;
      const b = model.parameters[1]!;
      w.grad.data.set([0.1, 0.2, -0.3, 0.4]);
      b.grad.data.set([1, -1]);
      // Two steps by hand in float64: g = grad + l2·p (weights), v = mu·v + g, p -= lr·(g + mu·v).
      const p = [1, -2, 3, 0.5, 0.25, -1];
      const grad = [0.1, 0.2, -0.3, 0.4, 1, -1];
      const v = [0, 0, 0, 0, 0, 0];
      for (let s = 0; s < 2; s++) {
        sgd.step(0.1);
        for (let i = 0; i < 6; i++) {
          const gi = grad[i]! + (i < 4 ? 0.5 * p[i]! : 0);
          v[i] = 0.9 * v[i]! + gi;
          p[i] = p[i]! - 0.1 * (gi + 0.9 * v[i]!);
        }
      }
      const got = [...w.value.data, ...b.value.data];
      got.forEach((value, i) => expect(value).toBeCloseTo(p[i]!, 6));
    } finally {
      sgd.dispose();
      model.dispose();
    }
  });

  it('allocates state once and frees it on dispose', () => {
    const before = k.allocatedBytes();
    const model = new Mlp({ layers: [5, 4, 3], activation: 'prelu', alpha: 0.25 }, { kernels: k, capacity: 2 });
    const withModel = k.allocatedBytes();
    const adam = createOptimizer(k, model.parameters, { optimizer: 'adam', momentum: 0, nesterov: false, beta1: 0.9, beta2: 0.999, eps: 1e-8, l2: 0 });
    // m and v for every parameter (weights, biases, the prelu slope).
    expect(k.allocatedBytes() - withModel).toBe(2 * 4 * (5 * 4 + 4 + 1 + 4 * 3 + 3));
    const plain = createOptimizer(k, model.parameters, { optimizer: 'sgd', momentum: 0, nesterov: false, beta1: 0.9, beta2: 0.999, eps: 1e-8, l2: 0 });
    expect(plain.stateTensors().size).toBe(0);
    adam.dispose();
    plain.dispose();
    model.dispose();
    expect(k.allocatedBytes()).toBe(before);
  });

  it('rejects bad hyper-parameters', () => {
    const model = new Mlp({ layers: [2, 2], activation: 'relu', alpha: 0 }, { kernels: k, capacity: 1 });
    expect(() => new Sgd(k, model.parameters, { momentum: 1 })).toThrow(/momentum/);
    expect(() => new Sgd(k, model.parameters, { nesterov: true })).toThrow(/nesterov/);
    expect(() => new Adam(k, model.parameters, { beta2: 1 })).toThrow(/beta2/);
    const sgd = new Sgd(k, model.parameters);
    expect(() => sgd.step(Number.NaN)).toThrow(/lr/);
    model.dispose();
  });
});

describe('learning-rate schedules', () => {
  const base = { lr: 0.1, stepSize: 2, gamma: 0.5, epochs: 4 };
  it('constant', () => {
    expect([0, 1, 2, 3].map((e) => learningRateAt({ ...base, schedule: 'constant' }, e))).toEqual([0.1, 0.1, 0.1, 0.1]);
  });
  it('step: lr · gamma^floor(epoch / stepSize)', () => {
    expect([0, 1, 2, 3, 4].map((e) => learningRateAt({ ...base, schedule: 'step' }, e))).toEqual([0.1, 0.1, 0.05, 0.05, 0.025]);
  });
  it('cosine: from lr down towards 0 over the run', () => {
    const lrs = [0, 1, 2, 3, 4].map((e) => learningRateAt({ ...base, schedule: 'cosine' }, e));
    expect(lrs[0]).toBe(0.1);
    expect(lrs[2]).toBeCloseTo(0.05, 15);
    expect(lrs[3]).toBeGreaterThan(0);
    expect(lrs[4]).toBeCloseTo(0, 15);
    for (let i = 1; i < lrs.length; i++) expect(lrs[i]!).toBeLessThan(lrs[i - 1]!);
  });
});
