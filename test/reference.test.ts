/**
 * Reference-backend specifics: tensor lifetime, allocatedBytes accounting, info/threads, the
 * z = 0 derivative convention of its exported helpers, zero sizes, in-place forms and the
 * float64 results it documents. (Numerics against the fixtures are in kernels.golden.test.ts.)
 */
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { activate, activationDerivative, createReferenceKernels } from '../src/kernels/reference.js';
import type { Tensor } from '../src/kernels/types.js';

describe('reference: tensors', () => {
  it('alloc gives zero-filled tensors of the requested length; data is a live Float32Array', () => {
    const k = createReferenceKernels();
    const t = k.alloc(7);
    expect(t.length).toBe(7);
    expect(t.freed).toBe(false);
    expect(t.data).toBeInstanceOf(Float32Array);
    expect(Array.from(t.data)).toEqual([0, 0, 0, 0, 0, 0, 0]);
    t.data[3] = 2.5;
    expect(t.data[3]).toBe(2.5);
  });

  it('free: freed flag, data access throws, length kept, double free and use after free throw', () => {
    const k = createReferenceKernels();
    const t = k.alloc(4);
    k.free(t);
    expect(t.freed).toBe(true);
    expect(t.length).toBe(4);
    expect(() => t.data).toThrow(RangeError);
    expect(() => k.free(t)).toThrow(/^tensor has been freed/);
    expect(() => k.sumSquares(1, t)).toThrow(/^x has been freed/);
    const other = k.alloc(4);
    expect(() => k.gemm(false, false, 1, 1, 1, 1, t, other, 0, k.alloc(1))).toThrow(/^a has been freed/);
  });

  it('tensors belong to their instance: another reference instance rejects them', () => {
    const k1 = createReferenceKernels();
    const k2 = createReferenceKernels();
    const t = k1.alloc(4);
    expect(() => k2.free(t)).toThrow(TypeError);
    expect(() => k2.sumSquares(1, t)).toThrow(/^x must be a tensor allocated by this reference backend/);
    // A look-alike object is not a tensor either.
    const fake = { length: 4, data: new Float32Array(4), freed: false } as Tensor;
    expect(() => k1.sumSquares(1, fake)).toThrow(TypeError);
  });

  it('allocatedBytes counts live tensors (4 bytes each element) per instance', () => {
    const k = createReferenceKernels();
    const other = createReferenceKernels();
    expect(k.allocatedBytes()).toBe(0);
    const a = k.alloc(10);
    const b = k.alloc(3);
    other.alloc(100);
    expect(k.allocatedBytes()).toBe(52);
    k.free(a);
    expect(k.allocatedBytes()).toBe(12);
    expect(() => k.free(a)).toThrow(RangeError);
    expect(k.allocatedBytes()).toBe(12); // a failed double free does not subtract twice
    expect(() => k.alloc(0)).toThrow(RangeError);
    expect(() => k.alloc(2 ** 28 + 1)).toThrow(/largest tensor/);
    expect(k.allocatedBytes()).toBe(12); // failed allocations count nothing
    k.free(b);
    expect(k.allocatedBytes()).toBe(0);
    expect(other.allocatedBytes()).toBe(400);
  });

  it('keeps no tensor alive: one dropped without free() is garbage collected', () => {
    // A child with --expose-gc: the backend must hold its tensors weakly (it once kept every
    // tensor ever allocated in a Set, so an unfreed one was never collected).
    const script = `
      const { createReferenceKernels } = await import(${JSON.stringify(new URL('../dist/src/kernels/reference.js', import.meta.url).href)});
      const k = createReferenceKernels();
      let collected = false;
      const registry = new FinalizationRegistry(() => { collected = true; });
      (() => { registry.register(k.alloc(1 << 20), 'tensor'); })();
      for (let i = 0; i < 20 && !collected; i++) { globalThis.gc(); await new Promise((r) => setTimeout(r, 10)); }
      process.stdout.write(String(collected));`;
    const out = execFileSync(process.execPath, ['--expose-gc', '--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out).toBe('true');
  });

  it('info and threads: js, one thread, setThreads accepts only 1', () => {
    const k = createReferenceKernels();
    expect(k.name).toBe('reference');
    expect(k.info()).toMatchObject({ backend: 'reference', isa: 'js', threads: 1, bf16: { available: true } });
    expect(() => k.setThreads(1)).not.toThrow();
    expect(() => k.setThreads(2)).toThrow(/^threads must be between 1 and 1/);
    expect(Object.isFrozen(k)).toBe(true);
  });
});

describe('reference: conventions and edge cases', () => {
  it("derivatives at exactly z = 0 follow PyTorch: relu'(0) = 0, leaky'(0) = alpha, prelu'(0) = slope", () => {
    const k = createReferenceKernels();
    const slope = k.alloc(1);
    slope.data[0] = 0.3;
    expect(activationDerivative({ kind: 'relu' }, 0, 0)).toBe(0);
    expect(activationDerivative({ kind: 'leaky_relu', alpha: -0.5 }, 0, 0)).toBe(-0.5);
    expect(activationDerivative({ kind: 'prelu', slope }, 0, 0)).toBe(Math.fround(0.3));
    expect(activationDerivative({ kind: 'relu' }, 1e-30, 1e-30)).toBe(1);
    expect(activate({ kind: 'leaky_relu', alpha: 1.5 }, -2)).toBe(-3);
    expect(activate({ kind: 'prelu', slope }, -2)).toBe(-2 * Math.fround(0.3));
    expect(activate({ kind: 'relu' }, -0)).toBe(0);
  });

  it('zero sizes: gemm with m or n = 0 writes nothing; k = 0 gives C = beta*C (and 0 for beta = 0, NaN ignored)', () => {
    const k = createReferenceKernels();
    const [a, b, c] = [k.alloc(4), k.alloc(4), k.alloc(4)];
    c.data.set([1, 2, 3, 4]);
    k.gemm(false, false, 0, 2, 2, 1, a, b, 0, c);
    k.gemm(false, false, 2, 0, 2, 1, a, b, 0, c);
    expect(Array.from(c.data)).toEqual([1, 2, 3, 4]);
    k.gemm(false, false, 2, 2, 0, 1, a, b, 2, c);
    expect(Array.from(c.data)).toEqual([2, 4, 6, 8]);
    c.data.fill(NaN);
    k.gemm(false, false, 2, 2, 0, 1, a, b, 0, c);
    expect(Array.from(c.data)).toEqual([0, 0, 0, 0]);
    const db = k.alloc(3);
    db.data.fill(NaN);
    k.biasGrad(0, 3, k.alloc(1), db);
    expect(Array.from(db.data)).toEqual([0, 0, 0]);
  });

  it('sumSquares and the loss are float64 results, not rounded to float32', () => {
    const k = createReferenceKernels();
    const x = k.alloc(3);
    x.data.fill(0.1);
    const f = Math.fround(0.1);
    expect(k.sumSquares(3, x)).toBe(f * f + f * f + f * f);
    expect(Math.fround(k.sumSquares(3, x))).not.toBe(k.sumSquares(3, x));
    const [l, y, p] = [k.alloc(2), k.alloc(1), k.alloc(2)];
    expect(k.softmaxCrossEntropy(1, 2, l, y, p, null)).toBe(Math.log(2));
  });

  it('logits of ±1000: finite loss 2000, probs exactly 1 and 0, dlogits may alias logits', () => {
    const k = createReferenceKernels();
    const [l, y, p] = [k.alloc(4), k.alloc(2), k.alloc(4)];
    l.data.set([1000, -1000, -1000, 1000]);
    y.data.set([1, 1]);
    const loss = k.softmaxCrossEntropy(2, 2, l, y, p, l);
    expect(loss).toBe(1000); // (2000 + 0) / 2
    expect(Array.from(p.data)).toEqual([1, 0, 0, 1]);
    expect(Array.from(l.data)).toEqual([0.5, -0.5, 0, 0]); // (p - onehot) / rows, written over the logits
  });

  it('in-place forms: biasActivation with h = z, activationBackward with dz = dh', () => {
    const k = createReferenceKernels();
    const [z, bias, dh] = [k.alloc(4), k.alloc(2), k.alloc(4)];
    z.data.set([-1, 0, 1, 2]);
    bias.data.set([0.5, -1]);
    k.biasActivation(2, 2, z, bias, { kind: 'relu' }, z);
    expect(Array.from(z.data)).toEqual([0, 0, 1.5, 1]);
    const zz = k.alloc(4);
    zz.data.set([-0.5, -1, 1.5, 1]);
    dh.data.set([1, 2, 3, 4]);
    k.activationBackward(2, 2, { kind: 'leaky_relu', alpha: 0.25 }, zz, z, dh, dh, null);
    expect(Array.from(dh.data)).toEqual([0.25, 0.5, 3, 4]);
  });

  it('prelu slope gradient is written (not accumulated) as the sum over z <= 0 of dh*z', () => {
    const k = createReferenceKernels();
    const slope = k.alloc(1);
    slope.data[0] = 0.1;
    const [z, h, dh, dz, ds] = [k.alloc(4), k.alloc(4), k.alloc(4), k.alloc(4), k.alloc(1)];
    z.data.set([-2, 0, 3, -1]);
    dh.data.set([1, 5, 7, 2]);
    ds.data[0] = 99;
    k.activationBackward(1, 4, { kind: 'prelu', slope }, z, h, dh, dz, ds);
    expect(ds.data[0]).toBe(-2 * 1 + 0 * 5 + -1 * 2);
    expect(Array.from(dz.data)).toEqual([0.1, 5 * 0.1, 7, 2 * 0.1].map(Math.fround));
  });

  it('sgdStep with Nesterov and adamStep match hand-computed values', () => {
    const k = createReferenceKernels();
    const [p, g, v] = [k.alloc(1), k.alloc(1), k.alloc(1)];
    p.data[0] = 1;
    g.data[0] = 0.5;
    v.data[0] = 0.25;
    // g' = 0.5 + 0.1*1 = 0.6; v = 0.9*0.25 + 0.6 = 0.825; step = 0.6 + 0.9*0.825 = 1.3425
    k.sgdStep(1, p, g, v, 0.1, 0.9, true, 0.1);
    expect(v.data[0]).toBe(Math.fround(0.825));
    expect(p.data[0]).toBe(Math.fround(1 - 0.1 * (0.6 + 0.9 * Math.fround(0.825))));
    const [q, gg, m, vv] = [k.alloc(1), k.alloc(1), k.alloc(1), k.alloc(1)];
    q.data[0] = 1;
    gg.data[0] = 0.5;
    k.adamStep(1, q, gg, m, vv, 0.01, 0.9, 0.999, 1e-8, 0, 1);
    // Step 1: m̂ = g, sqrt(v̂) = |g|: the update is lr * g/(|g| + eps) ≈ lr.
    const f = Math.fround;
    const mq = f((1 - 0.9) * 0.5);
    const vq = f((1 - 0.999) * 0.25);
    expect(m.data[0]).toBe(mq);
    expect(vv.data[0]).toBe(vq);
    expect(q.data[0]).toBe(f(1 - ((0.01 / (1 - 0.9)) * mq) / (Math.sqrt(vq) / Math.sqrt(1 - 0.999) + 1e-8)));
    expect(q.data[0]).toBeCloseTo(0.99, 6);
  });
});
