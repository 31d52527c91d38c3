/** Building models: initialisation, buffers, the public model API and the library entry. */
import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import { Mlp } from '../src/model/mlp.js';
import { Rng } from '../src/rng.js';
import * as api from '../src/index.js';

const kernels = createReferenceKernels();

function stats(values: Float32Array): { maxAbs: number; mean: number; std: number } {
  let sum = 0;
  let sq = 0;
  let maxAbs = 0;
  for (const v of values) {
    sum += v;
    sq += v * v;
    maxAbs = Math.max(maxAbs, Math.abs(v));
  }
  const mean = sum / values.length;
  return { maxAbs, mean, std: Math.sqrt(sq / values.length - mean * mean) };
}

describe('initialisation', () => {
  it('auto = kaiming_uniform for relu (gain sqrt 2), zero biases, seeded and repeatable', () => {
    const a = new Mlp({ layers: [300, 200, 10], activation: 'relu', alpha: 0 }, { kernels, capacity: 1, rng: new Rng(5) });
    const b = new Mlp({ layers: [300, 200, 10], activation: 'relu', alpha: 0 }, { kernels, capacity: 1, rng: new Rng(5) });
    const c = new Mlp({ layers: [300, 200, 10], activation: 'relu', alpha: 0 }, { kernels, capacity: 1, rng: new Rng(6) });
    const pa = a.getParameters();
    const w0 = stats(pa['layers.0.weight']!);
    const bound = Math.SQRT2 * Math.sqrt(3 / 300);
    expect(w0.maxAbs).toBeLessThanOrEqual(bound);
    expect(w0.maxAbs).toBeGreaterThan(0.99 * bound);
    expect(w0.std).toBeCloseTo(bound / Math.sqrt(3), 3);
    // The output layer is linear into softmax: gain 1.
    expect(stats(pa['layers.1.weight']!).maxAbs).toBeLessThanOrEqual(Math.sqrt(3 / 200));
    expect(stats(pa['layers.1.weight']!).maxAbs).toBeGreaterThan(0.99 * Math.sqrt(3 / 200));
    expect(pa['layers.0.bias']!.every((v) => v === 0)).toBe(true);
    expect(Array.from(b.getParameters()['layers.0.weight']!)).toEqual(Array.from(pa['layers.0.weight']!));
    expect(Array.from(c.getParameters()['layers.0.weight']!)).not.toEqual(Array.from(pa['layers.0.weight']!));
    for (const m of [a, b, c]) m.dispose();
  });

  it('xavier for tanh (gain 5/3), normal variants, leaky gain, prelu slope starts at alpha', () => {
    const tanh = new Mlp({ layers: [400, 100, 10], activation: 'tanh', alpha: 0 }, { kernels, capacity: 1, rng: new Rng(1) });
    expect(stats(tanh.getParameters()['layers.0.weight']!).maxAbs).toBeGreaterThan(0.99 * (5 / 3) * Math.sqrt(6 / 500));
    expect(stats(tanh.getParameters()['layers.0.weight']!).maxAbs).toBeLessThanOrEqual((5 / 3) * Math.sqrt(6 / 500));
    tanh.dispose();
    const normal = new Mlp({ layers: [400, 100, 10], activation: 'leaky_relu', alpha: 0.2 }, { kernels, capacity: 1, rng: new Rng(1), init: 'kaiming_normal' });
    const s = stats(normal.getParameters()['layers.0.weight']!);
    expect(s.std).toBeCloseTo(Math.sqrt(2 / (1 + 0.04)) / Math.sqrt(400), 3);
    expect(Math.abs(s.mean)).toBeLessThan(0.002);
    normal.dispose();
    const xn = new Mlp({ layers: [400, 100, 10], activation: 'sigmoid', alpha: 0 }, { kernels, capacity: 1, rng: new Rng(1), init: 'xavier_normal' });
    expect(stats(xn.getParameters()['layers.0.weight']!).std).toBeCloseTo(Math.sqrt(2 / 500), 3);
    xn.dispose();
    const prelu = new Mlp({ layers: [4, 3, 3, 2], activation: 'prelu', alpha: 0.25 }, { kernels, capacity: 1, rng: new Rng(1) });
    expect(prelu.parameterNames).toEqual([
      'layers.0.weight', 'layers.0.bias', 'layers.0.prelu_slope',
      'layers.1.weight', 'layers.1.bias', 'layers.1.prelu_slope',
      'layers.2.weight', 'layers.2.bias',
    ]);
    expect(prelu.preluSlopes()).toEqual([0.25, 0.25]);
    prelu.dispose();
  });
});

describe('model buffers and API', () => {
  it('allocates at build, frees everything on dispose, refuses use afterwards', () => {
    const before = kernels.allocatedBytes();
    const m = new Mlp({ layers: [6, 5, 4, 3], activation: 'relu', alpha: 0 }, { kernels, capacity: 7, rng: new Rng(2) });
    const params = 6 * 5 + 5 + 5 * 4 + 4 + 4 * 3 + 3;
    // params + grads, input + labels, z for every layer, h and dh for hidden ones, probs + dlogits.
    const expected = 2 * params + 7 * 6 + 7 + 7 * (5 + 4 + 3) + 2 * 7 * (5 + 4) + 2 * 7 * 3;
    expect(kernels.allocatedBytes() - before).toBe(4 * expected);
    m.dispose();
    expect(kernels.allocatedBytes()).toBe(before);
    expect(m.disposed).toBe(true);
    expect(() => m.predict(new Float32Array(6), 1)).toThrow(/disposed/);
    m.dispose(); // idempotent
  });

  it('predict works in chunks: the same probabilities for any capacity', () => {
    const small = new Mlp({ layers: [5, 8, 3], activation: 'sigmoid', alpha: 0 }, { kernels, capacity: 3, rng: new Rng(4) });
    const big = new Mlp({ layers: [5, 8, 3], activation: 'sigmoid', alpha: 0 }, { kernels, capacity: 64, rng: new Rng(4) });
    const x = Float32Array.from({ length: 5 * 11 }, (_, i) => Math.cos(i * 0.7));
    expect(Array.from(small.predict(x, 11))).toEqual(Array.from(big.predict(x, 11)));
    expect(small.capacity).toBe(3);
    // lossAndGradients on more rows than the capacity grows the buffers (outside training).
    const r = small.lossAndGradients(x, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]);
    expect(small.capacity).toBe(11);
    expect(r.loss).toBeCloseTo(big.lossAndGradients(x, [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1]).loss, 6);
    expect(() => small.lossAndGradients(x, [0, 3])).toThrow(/labels\[1\] = 3/);
    expect(() => small.predict(x, 12)).toThrow(/x holds 55 values/);
    expect(() => small.setParameters({ 'layers.0.weight': [1, 2] })).toThrow(/layers\.0\.weight needs 40 values/);
    expect(() => small.setParameters({ nope: [1] })).toThrow(/unknown parameter "nope"/);
    small.dispose();
    big.dispose();
  });

  it('rejects bad architectures', () => {
    expect(() => new Mlp({ layers: [4], activation: 'relu', alpha: 0 }, { kernels })).toThrow(/at least an input size/);
    expect(() => new Mlp({ layers: [4, 0, 2], activation: 'relu', alpha: 0 }, { kernels })).toThrow(/layers\[1\]/);
    expect(() => new Mlp({ layers: [4, 2], activation: 'gelu' as never, alpha: 0 }, { kernels })).toThrow(/activation must be one of/);
  });
});

describe('library entry (src/index.ts)', () => {
  it('exports the API', () => {
    for (const name of ['train', 'loadModel', 'createModel', 'backendInfo', 'getKernels', 'loadDataset', 'DEFAULT_CONFIG']) {
      expect(api, name).toHaveProperty(name);
    }
    expect(api.DEFAULT_CONFIG.layers).toEqual([784, 256, 128, 10]);
    const model = api.createModel({ layers: [3, 2], activation: 'linear', alpha: 0 }, { kernels, seed: 3 });
    const probs = model.predict(Float32Array.from([1, 2, 3]), 1);
    expect(probs[0]! + probs[1]!).toBeCloseTo(1, 6);
    model.dispose();
  });
});
