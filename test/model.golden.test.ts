/**
 * Every PyTorch golden case through the model API (build, setParameters, logits, predict,
 * lossAndGradients), on every backend that loads.
 *
 * Tolerances (float32 against float64 PyTorch): the inputs and parameters are rounded to
 * float32 (unit roundoff u = 6e-8), the longest reduction has 20 terms, and errors compound
 * over three layers forward and back. A float32-accumulating backend stays within about
 * 20·u ≈ 1e-6 of each tensor's scale; the reference backend measures <= 3e-7. We allow
 * 1e-5 · max|expected| per tensor plus 1e-4 relative: 10x above that bound, and still 100x
 * below the >= 1e-3 differences by which the *_zero cases tell relu'(0) = 0 from 1.
 */
import { describe, expect, it } from 'vitest';
import { Mlp } from '../src/model/mlp.js';
import type { ActivationName } from '../src/kernels/types.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { MLP_CASES } from './helpers/fixtures.js';
import { maxAbs, paramsInOurLayout, readGolden, toFloat32, worstViolation, type FixtureTensor } from './helpers/golden-model.js';

// The twelve network cases of the golden set (the optimizer and predict cases are tested elsewhere).
const CASES = MLP_CASES;

interface GoldenCase {
  activation: { name: ActivationName; alpha?: number; init?: number[] };
  layer_sizes: number[];
  batch: number;
  lambda: number;
  x: FixtureTensor;
  y: FixtureTensor;
  params: Record<string, FixtureTensor>;
  forward: { logits: FixtureTensor; probs: FixtureTensor };
  loss: number;
  loss_lambda0: number;
  grads: Record<string, FixtureTensor>;
  grads_lambda0: Record<string, FixtureTensor>;
}

const NORM_TOL = 1e-5;
const REL_TOL = 1e-4;

function expectClose(what: string, actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  const atol = NORM_TOL * Math.max(maxAbs(expected), 1e-30);
  const worst = worstViolation(actual, expected, atol, REL_TOL);
  expect(worst.ratio, `${what}[${worst.index}] = ${worst.actual}, expected ${worst.expected}`).toBeLessThanOrEqual(1);
}

registerMissingBackends('model golden');

for (const backend of loadedBackends()) {
  describe(`model golden cases (${backend.name})`, () => {
    for (const name of CASES) {
      it(name, () => {
        const g = readGolden<GoldenCase>(name);
        const act = g.activation;
        const alpha = act.alpha ?? act.init?.[0] ?? 0;
        const model = new Mlp({ layers: g.layer_sizes, activation: act.name, alpha }, { kernels: backend.kernels, capacity: g.batch });
        try {
          const params = toFloat32(paramsInOurLayout(g.params));
          expect(Object.keys(params).sort()).toEqual([...model.parameterNames].sort());
          model.setParameters(params);
          const x = Float32Array.from(g.x.data);
          const labels = g.y.data;

          expectClose('logits', model.logits(x, g.batch), g.forward.logits.data);
          const probs = model.predict(x, g.batch);
          expectClose('probs', probs, g.forward.probs.data);
          g.forward.probs.data.forEach((p, i) => {
            // Where float64 underflows to exactly 0, float32 must too; never NaN.
            if (p === 0) expect(probs[i], `probs[${i}]`).toBe(0);
          });

          for (const [l2, loss, grads] of [
            [g.lambda, g.loss, g.grads],
            [0, g.loss_lambda0, g.grads_lambda0],
          ] as const) {
            const result = model.lossAndGradients(x, labels, { l2 });
            expect(Math.abs(result.loss - loss) / loss, `loss (l2 = ${l2}): ${result.loss} vs ${loss}`).toBeLessThan(REL_TOL / 10);
            const expected = paramsInOurLayout(grads);
            expect(Object.keys(result.gradients).sort()).toEqual(Object.keys(expected).sort());
            for (const [pname, e] of Object.entries(expected)) expectClose(`${pname} grad (l2 = ${l2})`, result.gradients[pname]!, e);
          }
        } finally {
          model.dispose();
        }
      });
    }

    it('predict.json: probabilities in chunks smaller than the batch', () => {
      const g = readGolden<{ x: FixtureTensor; params: Record<string, FixtureTensor>; probs: FixtureTensor; predictions: number[] | FixtureTensor }>('predict');
      const count = g.x.shape[0]!;
      const model = new Mlp({ layers: [20, 16, 12, 10], activation: 'relu', alpha: 0 }, { kernels: backend.kernels, capacity: 16 });
      try {
        model.setParameters(toFloat32(paramsInOurLayout(g.params)));
        const probs = model.predict(Float32Array.from(g.x.data), count);
        expect(probs.length).toBe(count * 10);
        expectClose('probs', probs, g.probs.data);
      } finally {
        model.dispose();
      }
    });
  });
}
