/**
 * The fused training step (Kernels.createTrainStep, native): one call per batch must give the
 * same bits as the model's composed step (the same kernels in the same order), for every hidden
 * activation, with and without L2, for short batches, in fp32 and bf16; with an SGD update fused
 * into it, the parameters and velocities of computeGradients + Sgd.step, at 1 and 2 threads, and
 * no update after a non-finite loss; and it must refuse to run over a freed tensor or a bad label
 * instead of touching memory.
 */
import { describe, expect, it } from 'vitest';
import { loadNativeAddon } from '../src/kernels/native.js';
import type { ActivationName, Kernels, Precision } from '../src/kernels/types.js';
import { Mlp } from '../src/model/mlp.js';
import { Sgd } from '../src/optim/optimizer.js';
import { Rng } from '../src/rng.js';
import { backendStatus } from './helpers/backends.js';
import { TestRng } from './helpers/random.js';

const native = backendStatus().loaded.find((b) => b.name === 'native');

function build(kernels: Kernels, activation: ActivationName, precision: Precision, fusedStep: boolean): Mlp {
  return new Mlp({ layers: [37, 29, 17, 5], activation, alpha: 0.2 }, { kernels, capacity: 24, init: 'auto', rng: new Rng(4), precision, fusedStep });
}

function fill(model: Mlp, rows: number, seed: number): void {
  const rng = new TestRng(seed);
  model.inputTensor.data.set(rng.floats(rows * model.inputSize, 1));
  for (let i = 0; i < rows; i++) model.labelTensor.data[i] = i % model.classes;
}

describe.runIf(native !== undefined)('fused training step (native)', () => {
  const kernels = native!.kernels;

  it('is offered by the native backend', () => {
    expect(typeof kernels.createTrainStep).toBe('function');
  });

  for (const precision of ['fp32', 'bf16'] as const) {
    it(`gives the bits of the composed step (${precision}; relu, leaky_relu, prelu, tanh, sigmoid; l2 0 and 1e-2; short batches)`, () => {
      if (precision === 'bf16' && !kernels.info().bf16?.available) return;
      for (const activation of ['relu', 'leaky_relu', 'prelu', 'tanh', 'sigmoid'] as const) {
        const fused = build(kernels, activation, precision, true);
        const composed = build(kernels, activation, precision, false);
        try {
          for (const [rows, l2, seed] of [[24, 0, 1], [7, 1e-2, 2], [1, 0, 3]] as const) {
            fill(fused, rows, seed);
            fill(composed, rows, seed);
            const a = fused.computeGradients(rows, l2);
            const b = composed.computeGradients(rows, l2);
            expect(Object.is(a, b), `${activation} loss`).toBe(true);
            fused.parameters.forEach((p, i) => {
              const q = composed.parameters[i]!;
              const same = Buffer.from(p.grad.data.buffer, p.grad.data.byteOffset, p.size * 4).equals(Buffer.from(q.grad.data.buffer, q.grad.data.byteOffset, q.size * 4));
              expect(same, `${activation} ${precision} rows ${rows} l2 ${l2}: ${p.name} gradient`).toBe(true);
            });
            expect(Array.from(fused.probsTensor.data.subarray(0, rows * 5))).toEqual(Array.from(composed.probsTensor.data.subarray(0, rows * 5)));
            // A step of plain SGD keeps the two models' weights identical for the next round.
            for (const m of [fused, composed]) for (const p of m.parameters) kernels.sgdStep(p.size, p.value, p.grad, null, 0.1, 0, false, 0);
          }
        } finally {
          fused.dispose();
          composed.dispose();
        }
      }
    });
  }

  const bits = (t: { data: Float32Array }, n: number) => Buffer.from(t.data.buffer, t.data.byteOffset, n * 4);

  for (const threads of [1, 2]) {
    it(`with SGD fused in, gives the parameters and velocities of computeGradients + Sgd.step (${threads} thread(s); relu, prelu; momentum 0, 0.9 + nesterov; l2)`, () => {
      const before = kernels.info().threads;
      kernels.setThreads(threads);
      try {
        for (const activation of ['relu', 'prelu'] as const) {
          for (const options of [{ momentum: 0, nesterov: false, l2: 0 }, { momentum: 0.9, nesterov: true, l2: 1e-2 }]) {
            const fused = build(kernels, activation, 'fp32', true);
            const composed = build(kernels, activation, 'fp32', false);
            const fusedOpt = new Sgd(kernels, fused.parameters, options);
            const composedOpt = new Sgd(kernels, composed.parameters, options);
            try {
              expect(fused.fuseSgd(fusedOpt.fusedSgd())).toBe(true);
              expect(composed.fuseSgd(composedOpt.fusedSgd())).toBe(false); // no fused step to put it in
              for (const [rows, seed] of [[24, 1], [7, 2], [24, 3], [1, 4]] as const) {
                fill(fused, rows, seed);
                fill(composed, rows, seed);
                const a = fused.trainStep(rows, 0.05);
                fusedOpt.countFusedStep();
                const b = composed.computeGradients(rows, 0);
                composedOpt.step(0.05);
                expect(Object.is(a, b), `${activation} loss`).toBe(true);
                fused.parameters.forEach((p, i) => {
                  const q = composed.parameters[i]!;
                  expect(bits(p.value, p.size).equals(bits(q.value, q.size)), `${activation} ${JSON.stringify(options)} rows ${rows}: ${p.name}`).toBe(true);
                });
                const va = [...fusedOpt.stateTensors().values()];
                const vb = [...composedOpt.stateTensors().values()];
                expect(va.length).toBe(options.momentum === 0 ? 0 : fused.parameters.length);
                va.forEach((v, i) => expect(bits(v, v.length).equals(bits(vb[i]!, v.length)), `velocity ${i}`).toBe(true));
              }
              expect(fusedOpt.stepCount).toBe(composedOpt.stepCount);
            } finally {
              fused.fuseSgd(null);
              for (const x of [fusedOpt, composedOpt, fused, composed]) x.dispose();
            }
          }
        }
      } finally {
        kernels.setThreads(before);
      }
    });
  }

  it('with SGD fused in, a non-finite loss updates nothing; without fuseSgd trainStep refuses', () => {
    const model = build(kernels, 'relu', 'fp32', true);
    const opt = new Sgd(kernels, model.parameters, { momentum: 0.9, nesterov: false, l2: 0 });
    try {
      expect(() => model.trainStep(4, 0.1)).toThrow(/fuseSgd/);
      expect(model.fuseSgd(opt.fusedSgd())).toBe(true);
      fill(model, 4, 5);
      const outputBias = model.parameters[model.parameters.length - 1]!.value.data;
      outputBias[0] = NaN; // every logit row gets a NaN: the loss is NaN
      const values = model.parameters.map((p) => Buffer.from(p.value.data.slice(0, p.size).buffer));
      expect(Number.isFinite(model.trainStep(4, 0.1))).toBe(false);
      model.parameters.forEach((p, i) => expect(bits(p.value, p.size).equals(values[i]!), p.name).toBe(true));
      for (const v of opt.stateTensors().values()) expect(v.data.every((x) => x === 0)).toBe(true);
      outputBias[0] = 0;
      expect(Number.isFinite(model.trainStep(4, 0.1))).toBe(true);
      expect(bits(model.parameters[0]!.value, model.parameters[0]!.size).equals(values[0]!)).toBe(false);
      // The plan holds the velocities: freeing them makes the step refuse to run until re-planned.
      model.fuseSgd(null);
      expect(Number.isFinite(model.computeGradients(4, 0))).toBe(true);
    } finally {
      opt.dispose();
      model.dispose();
    }
  });

  it('refuses a freed tensor and a bad label (RangeError), and a disposed model', () => {
    const model = build(kernels, 'relu', 'fp32', true);
    fill(model, 4, 9);
    model.labelTensor.data[2] = 5; // classes are 0..4
    expect(() => model.computeGradients(4)).toThrow(/labels\[2\] = 5 is not a class index in \[0, 5\)/);
    model.labelTensor.data[2] = 1;
    expect(() => model.computeGradients(25)).toThrow(RangeError);
    kernels.free(model.parameters[0]!.grad);
    expect(() => model.computeGradients(4)).toThrow(/has been freed; create the step again/);
    model.dispose();
    expect(() => model.computeGradients(4)).toThrow(/disposed/);
  });

  it('the raw addon checks a plan once: mismatched sizes and aliased outputs are refused', () => {
    const addon = loadNativeAddon();
    const t = (n: number) => addon.alloc(n);
    const layer = { inF: 4, outF: 3, kind: 0, alpha: 0, w: t(12), b: t(3), gw: t(12), gb: t(3), z: t(6), h: t(6), dhIn: null, slope: null, slopeGrad: null };
    const spec = { capacity: 2, bf16: false, input: t(8), labels: t(2), probs: t(6), dlogits: t(6), layers: [layer] };
    expect(() => addon.createTrainStep({ ...spec, input: t(7) })).toThrow(/input holds 7 elements but the step needs 8/);
    expect(() => addon.createTrainStep({ ...spec, layers: [{ ...layer, gw: layer.w }] })).toThrow(/must be distinct/);
    expect(() => addon.createTrainStep({ ...spec, probs: spec.dlogits })).toThrow(/must be distinct/);
    const plan = addon.createTrainStep(spec);
    expect(addon.runTrainStep(plan, 2, 0)).toBeCloseTo(Math.log(3), 6); // zero weights: uniform softmax
    expect(() => addon.runTrainStep({}, 2, 0)).toThrow(TypeError);
    expect(() => addon.runTrainStep(plan, 3, 0)).toThrow(RangeError);
  });
});
