/**
 * Boundary safety of every loaded backend: every kind of bad argument to every kernel throws a
 * TypeError (wrong type) or RangeError (wrong value) whose message names the argument, touches no
 * memory (all tensors of the call are bit-for-bit unchanged) and leaves the backend working (a
 * canary computation afterwards gives exact results). fast-check then throws random garbage at
 * random argument positions. A crash of the process fails the whole file.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Activation, Kernels, Tensor } from '../src/kernels/types.js';
import { loadedBackends, registerMissingBackends } from './helpers/backends.js';
import { createF32EmuKernels } from './helpers/f32emu.js';

registerMissingBackends('safety');

type ArgKind =
  | { kind: 'size' }
  | { kind: 'bool' }
  | { kind: 'scalar' }
  | { kind: 'tensor'; need: number; optional?: boolean }
  | { kind: 'act' }
  | { kind: 'ignored' };

interface Spec {
  label: string;
  kernel: 'gemm' | 'biasActivation' | 'denseForward' | 'activationBackward' | 'biasGrad' | 'softmaxCrossEntropy' | 'softmax' | 'sgdStep' | 'adamStep' | 'sumSquares';
  args: [string, ArgKind][];
  /** Valid arguments, tensors allocated through `alloc` (filled with small values). */
  build(alloc: (n: number) => Tensor): unknown[];
}

const size = { kind: 'size' } as const;
const bool = { kind: 'bool' } as const;
const scalar = { kind: 'scalar' } as const;
const tensor = (need: number, optional = false): ArgKind => ({ kind: 'tensor', need, optional });
const act = { kind: 'act' } as const;

const preluWith = (alloc: (n: number) => Tensor): Activation => {
  const slope = alloc(1);
  slope.data[0] = 0.25;
  return { kind: 'prelu', slope };
};
const labelsFor = (alloc: (n: number) => Tensor, rows: number, cols: number): Tensor => {
  const t = alloc(rows);
  for (let i = 0; i < rows; i++) t.data[i] = i % cols;
  return t;
};

const SPECS: Spec[] = [
  {
    label: 'gemm',
    kernel: 'gemm',
    args: [['transA', bool], ['transB', bool], ['m', size], ['n', size], ['k', size], ['alpha', scalar], ['a', tensor(15)], ['b', tensor(20)], ['beta', scalar], ['c', tensor(12)]],
    build: (al) => [false, false, 3, 4, 5, 1, al(15), al(20), 0.5, al(12)],
  },
  {
    label: 'gemm (transposed)',
    kernel: 'gemm',
    args: [['transA', bool], ['transB', bool], ['m', size], ['n', size], ['k', size], ['alpha', scalar], ['a', tensor(15)], ['b', tensor(20)], ['beta', scalar], ['c', tensor(12)]],
    build: (al) => [true, true, 3, 4, 5, -2, al(15), al(20), 0, al(12)],
  },
  {
    label: 'biasActivation (leaky_relu)',
    kernel: 'biasActivation',
    args: [['rows', size], ['cols', size], ['z', tensor(12)], ['bias', tensor(4, true)], ['act', act], ['h', tensor(12)]],
    build: (al) => [3, 4, al(12), al(4), { kind: 'leaky_relu', alpha: 0.1 }, al(12)],
  },
  {
    label: 'biasActivation (prelu)',
    kernel: 'biasActivation',
    args: [['rows', size], ['cols', size], ['z', tensor(12)], ['bias', tensor(4, true)], ['act', act], ['h', tensor(12)]],
    build: (al) => [3, 4, al(12), al(4), preluWith(al), al(12)],
  },
  {
    label: 'denseForward (leaky_relu)',
    kernel: 'denseForward',
    args: [['rows', size], ['inF', size], ['outF', size], ['x', tensor(15)], ['w', tensor(20)], ['bias', tensor(4, true)], ['act', act], ['z', tensor(12)], ['h', tensor(12)]],
    build: (al) => [3, 5, 4, al(15), al(20), al(4), { kind: 'leaky_relu', alpha: 0.1 }, al(12), al(12)],
  },
  {
    label: 'denseForward (prelu)',
    kernel: 'denseForward',
    args: [['rows', size], ['inF', size], ['outF', size], ['x', tensor(15)], ['w', tensor(20)], ['bias', tensor(4, true)], ['act', act], ['z', tensor(12)], ['h', tensor(12)]],
    build: (al) => [3, 5, 4, al(15), al(20), al(4), preluWith(al), al(12), al(12)],
  },
  {
    label: 'activationBackward (prelu)',
    kernel: 'activationBackward',
    args: [['rows', size], ['cols', size], ['act', act], ['z', tensor(12)], ['h', tensor(12)], ['dh', tensor(12)], ['dz', tensor(12)], ['dSlope', tensor(1)]],
    build: (al) => [3, 4, preluWith(al), al(12), al(12), al(12), al(12), al(1)],
  },
  {
    label: 'activationBackward (sigmoid)',
    kernel: 'activationBackward',
    args: [['rows', size], ['cols', size], ['act', act], ['z', tensor(12)], ['h', tensor(12)], ['dh', tensor(12)], ['dz', tensor(12)], ['dSlope', { kind: 'ignored' }]],
    build: (al) => [3, 4, { kind: 'sigmoid' }, al(12), al(12), al(12), al(12), null],
  },
  {
    label: 'biasGrad',
    kernel: 'biasGrad',
    args: [['rows', size], ['cols', size], ['dz', tensor(12)], ['db', tensor(4)]],
    build: (al) => [3, 4, al(12), al(4)],
  },
  {
    label: 'softmaxCrossEntropy',
    kernel: 'softmaxCrossEntropy',
    args: [['rows', size], ['cols', size], ['logits', tensor(12)], ['labels', tensor(3)], ['probs', tensor(12)], ['dlogits', tensor(12, true)]],
    build: (al) => [3, 4, al(12), labelsFor(al, 3, 4), al(12), al(12)],
  },
  {
    label: 'softmax',
    kernel: 'softmax',
    args: [['rows', size], ['cols', size], ['logits', tensor(12)], ['probs', tensor(12)]],
    build: (al) => [3, 4, al(12), al(12)],
  },
  {
    label: 'sgdStep (momentum)',
    kernel: 'sgdStep',
    args: [['n', size], ['param', tensor(6)], ['grad', tensor(6)], ['velocity', tensor(6)], ['lr', scalar], ['momentum', scalar], ['nesterov', bool], ['l2', scalar]],
    build: (al) => [6, al(6), al(6), al(6), 0.1, 0.9, true, 1e-3],
  },
  {
    label: 'sgdStep (no momentum)',
    kernel: 'sgdStep',
    args: [['n', size], ['param', tensor(6)], ['grad', tensor(6)], ['velocity', tensor(6, true)], ['lr', scalar], ['momentum', scalar], ['nesterov', bool], ['l2', scalar]],
    build: (al) => [6, al(6), al(6), null, 0.1, 0, false, 0],
  },
  {
    label: 'adamStep',
    kernel: 'adamStep',
    args: [['n', size], ['param', tensor(6)], ['grad', tensor(6)], ['m', tensor(6)], ['v', tensor(6)], ['lr', scalar], ['beta1', scalar], ['beta2', scalar], ['eps', scalar], ['l2', scalar], ['step', size]],
    build: (al) => [6, al(6), al(6), al(6), al(6), 1e-3, 0.9, 0.999, 1e-8, 0, 3],
  },
  {
    label: 'sumSquares',
    kernel: 'sumSquares',
    args: [['n', size], ['x', tensor(6)]],
    build: (al) => [6, al(6)],
  },
];

/** Does the message name the argument? (It must start with it, as `checks.ts` writes them, or quote it.) */
function namesArgument(message: string, name: string): boolean {
  const esc = name.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  return new RegExp(`^${esc}(?![\\w])`).test(message) || new RegExp(`['"\`]${esc}['"\`]`).test(message);
}

/** Calls a kernel with arbitrary arguments. */
function call(k: Kernels, kernel: Spec['kernel'], args: unknown[]): unknown {
  return (k[kernel] as (...a: unknown[]) => unknown).apply(k, args);
}

/** Every live tensor reachable from the arguments (prelu slopes included). */
function tensorsIn(k: Kernels, args: unknown[], owned: Set<Tensor>): Tensor[] {
  const out: Tensor[] = [];
  for (const a of args) {
    if (owned.has(a as Tensor)) out.push(a as Tensor);
    const slope = (a as { slope?: unknown } | null)?.slope;
    if (slope && owned.has(slope as Tensor)) out.push(slope as Tensor);
  }
  return out.filter((t) => !t.freed);
}

interface Harness {
  k: Kernels;
  /** Allocates a tensor filled with small deterministic values, tracked for freeing. */
  alloc(n: number): Tensor;
  owned: Set<Tensor>;
  foreign: Tensor[];
  freeAll(): void;
}

function harness(k: Kernels, foreignBackends: Kernels[]): Harness {
  const owned = new Set<Tensor>();
  let counter = 0;
  const h: Harness = {
    k,
    owned,
    foreign: foreignBackends.map((f) => f.alloc(64)),
    alloc(n) {
      const t = k.alloc(n);
      for (let i = 0; i < n; i++) t.data[i] = ((counter++ % 7) - 3) / 4;
      owned.add(t);
      return t;
    },
    freeAll() {
      for (const t of owned) if (!t.freed) k.free(t);
      owned.clear();
      foreignBackends.forEach((f, i) => f.free(h.foreign[i]!));
    },
  };
  return h;
}

/** The backend still computes: exact small gemm and softmax cross-entropy. */
function canary(k: Kernels): void {
  const [a, b, c, l, y, p, d] = [k.alloc(4), k.alloc(4), k.alloc(4), k.alloc(2), k.alloc(1), k.alloc(2), k.alloc(2)];
  try {
    a.data.set([1, 2, 3, 4]);
    b.data.set([5, 6, 7, 8]);
    c.data.fill(NaN);
    k.gemm(false, false, 2, 2, 2, 1, a, b, 0, c);
    expect(Array.from(c.data)).toEqual([19, 22, 43, 50]);
    k.gemm(true, true, 2, 2, 2, 1, a, b, 1, c);
    expect(Array.from(c.data)).toEqual([19 + 23, 22 + 31, 43 + 34, 50 + 46]);
    l.data.set([0, 0]);
    y.data[0] = 1;
    const loss = k.softmaxCrossEntropy(1, 2, l, y, p, d);
    expect(loss).toBeCloseTo(Math.LN2, 6);
    expect(Array.from(p.data)).toEqual([0.5, 0.5]);
    expect(Array.from(d.data)).toEqual([0.5, -0.5]);
  } finally {
    for (const t of [a, b, c, l, y, p, d]) k.free(t);
  }
}

/**
 * Runs one bad call: it must throw `type` (TypeError/RangeError, or either when null) naming
 * `name` (when given), leave every tensor of the call unchanged, and leave the backend working.
 */
function expectRejected(
  h: Harness,
  spec: Spec,
  args: unknown[],
  what: string,
  type: typeof TypeError | typeof RangeError | null,
  name: string | null,
): void {
  const tensors = tensorsIn(h.k, args, h.owned);
  const before = tensors.map((t) => Float32Array.from(t.data));
  let error: unknown = undefined;
  try {
    call(h.k, spec.kernel, args);
  } catch (e) {
    error = e;
  }
  const context = `${spec.label}: ${what}`;
  expect(error, `${context} did not throw`).toBeDefined();
  if (type) expect(error, `${context}: ${String(error)}`).toBeInstanceOf(type);
  else expect(error instanceof TypeError || error instanceof RangeError, `${context}: ${String(error)}`).toBe(true);
  const message = (error as Error).message;
  if (name !== null) expect(namesArgument(message, name), `${context}: message "${message}" does not name ${name}`).toBe(true);
  tensors.forEach((t, i) => {
    expect(t.freed, `${context} freed a tensor`).toBe(false);
    expect(Array.from(t.data), `${context} wrote to a tensor before failing`).toEqual(Array.from(before[i]!));
  });
}

const NON_TENSORS: [string, (need: number) => unknown][] = [
  ['a Float32Array', (n) => new Float32Array(n)],
  ['a plain array', (n) => Array.from({ length: n }, () => 0)],
  ['null', () => null],
  ['undefined', () => undefined],
  ['a number', () => 3],
  ['a string', () => 'tensor'],
  ['an empty object', () => ({})],
  ['a duck-typed tensor', (n) => ({ length: n, data: new Float32Array(n), freed: false })],
];
const BAD_SIZES: [unknown, typeof TypeError | typeof RangeError][] = [
  [-1, RangeError],
  [1.5, RangeError],
  [NaN, RangeError],
  [Infinity, RangeError],
  [-Infinity, RangeError],
  [2 ** 31, RangeError],
  ['3', TypeError],
  [null, TypeError],
  [undefined, TypeError],
  [3n, TypeError],
  [true, TypeError],
];
const BAD_BOOLS: unknown[] = [0, 1, 'true', null, undefined, {}, [true]];
const BAD_SCALARS: [unknown, typeof TypeError | typeof RangeError][] = [
  [NaN, RangeError],
  [Infinity, RangeError],
  [-Infinity, RangeError],
  ['1', TypeError],
  [null, TypeError],
  [undefined, TypeError],
  [{}, TypeError],
  [1n, TypeError],
];

const backends = loadedBackends();
const allForeign = (self: Kernels): Kernels[] => [
  createReferenceKernels(), // another instance of the same backend type
  createF32EmuKernels(),
  ...backends.map((b) => b.kernels).filter((k) => k !== self),
];

for (const { name: backend, kernels: k } of backends) {
  describe(`safety: ${backend}`, () => {
    for (const spec of SPECS) {
      it(`${spec.label}: every bad argument is rejected, named, and harmless`, () => {
        const bytes = k.allocatedBytes();
        const h = harness(k, allForeign(k));
        try {
          // The valid call works (so the rejections below are about the one bad argument).
          call(k, spec.kernel, spec.build(h.alloc));
          spec.args.forEach(([name, kind], idx) => {
            const mutate = (value: unknown): unknown[] => {
              const args = spec.build(h.alloc);
              args[idx] = value;
              return args;
            };
            switch (kind.kind) {
              case 'size':
                for (const [v, type] of BAD_SIZES) expectRejected(h, spec, mutate(v), `${name} = ${String(v)}`, type, name);
                break;
              case 'bool':
                for (const v of BAD_BOOLS) expectRejected(h, spec, mutate(v), `${name} = ${String(v)}`, TypeError, name);
                break;
              case 'scalar':
                for (const [v, type] of BAD_SCALARS) expectRejected(h, spec, mutate(v), `${name} = ${String(v)}`, type, name);
                break;
              case 'tensor': {
                if (kind.need >= 1) {
                  // Too short by one (a tensor of length 0 cannot exist, so need = 1 has no such case).
                  if (kind.need >= 2) expectRejected(h, spec, mutate(h.alloc(kind.need - 1)), `${name} too short by 1`, RangeError, name);
                  const freed = h.alloc(kind.need);
                  k.free(freed);
                  expectRejected(h, spec, mutate(freed), `${name} freed`, RangeError, name);
                  for (const f of h.foreign) expectRejected(h, spec, mutate(f), `${name} from another backend`, TypeError, name);
                }
                for (const [desc, make] of NON_TENSORS) {
                  const v = make(kind.need);
                  if (kind.optional && (v === null || v === undefined)) continue;
                  expectRejected(h, spec, mutate(v), `${name} = ${desc}`, TypeError, name);
                }
                break;
              }
              case 'act': {
                const isBackward = spec.kernel === 'activationBackward';
                expectRejected(h, spec, mutate(null), 'act = null', TypeError, 'act');
                expectRejected(h, spec, mutate('relu'), 'act = "relu"', TypeError, 'act');
                expectRejected(h, spec, mutate({ kind: 'gelu' }), 'act.kind = gelu', RangeError, 'act.kind');
                expectRejected(h, spec, mutate({}), 'act without kind', RangeError, 'act.kind');
                expectRejected(h, spec, mutate({ kind: 'leaky_relu' }), 'leaky_relu without alpha', TypeError, 'act.alpha');
                for (const [v, type] of BAD_SCALARS) {
                  expectRejected(h, spec, mutate({ kind: 'leaky_relu', alpha: v }), `act.alpha = ${String(v)}`, type, 'act.alpha');
                }
                for (const [desc, make] of NON_TENSORS) {
                  expectRejected(h, spec, mutate({ kind: 'prelu', slope: make(1) }), `act.slope = ${desc}`, TypeError, 'act.slope');
                }
                const freed = h.alloc(1);
                k.free(freed);
                expectRejected(h, spec, mutate({ kind: 'prelu', slope: freed }), 'act.slope freed', RangeError, 'act.slope');
                for (const f of h.foreign) {
                  expectRejected(h, spec, mutate({ kind: 'prelu', slope: f }), 'act.slope from another backend', TypeError, 'act.slope');
                }
                if (isBackward) {
                  // prelu needs dSlope; it must not be the slope itself.
                  const args = spec.build(h.alloc);
                  args[idx] = preluWith(h.alloc);
                  args[7] = null;
                  expectRejected(h, spec, args, 'prelu with dSlope = null', TypeError, 'dSlope');
                  const same = spec.build(h.alloc);
                  const slopeAct = preluWith(h.alloc);
                  same[idx] = slopeAct;
                  same[7] = (slopeAct as { slope: Tensor }).slope;
                  expectRejected(h, spec, same, 'dSlope is the slope tensor', RangeError, 'dSlope');
                }
                break;
              }
              case 'ignored':
                break;
            }
          });
          canary(k);
        } finally {
          h.freeAll();
        }
        expect(k.allocatedBytes()).toBe(bytes);
      });
    }

    it('bad labels: -1, cols, 1.5, NaN, Infinity are rejected by softmaxCrossEntropy, naming labels', () => {
      const spec = SPECS.find((s) => s.kernel === 'softmaxCrossEntropy')!;
      const h = harness(k, []);
      try {
        for (const bad of [-1, 4, 1.5, NaN, Infinity, -0.5, 1e9]) {
          for (const row of [0, 2]) {
            const args = spec.build(h.alloc);
            (args[3] as Tensor).data[row] = bad;
            expectRejected(h, spec, args, `labels[${row}] = ${bad}`, RangeError, 'labels');
          }
        }
        canary(k);
      } finally {
        h.freeAll();
      }
    });

    it('aliasing and range rules: c is a or b, dz/db the same, Adam betas and step, probs/labels overlap', () => {
      const h = harness(k, []);
      const g = SPECS[0]!;
      try {
        const a = h.alloc(64);
        expectRejected(h, g, [false, false, 2, 2, 2, 1, a, h.alloc(4), 0, a], 'c is a', RangeError, 'c');
        const b = h.alloc(64);
        expectRejected(h, g, [false, false, 2, 2, 2, 1, h.alloc(4), b, 0, b], 'c is b', RangeError, 'c');
        const df = SPECS.find((s) => s.kernel === 'denseForward')!;
        const big = h.alloc(64);
        const dfWith = (i: number, t: Tensor, j?: number): unknown[] => {
          const args = df.build(h.alloc);
          args[i] = t;
          if (j !== undefined) args[j] = t;
          return args;
        };
        expectRejected(h, df, dfWith(3, big, 7), 'denseForward z is x', RangeError, 'z');
        expectRejected(h, df, dfWith(4, big, 7), 'denseForward z is w', RangeError, 'z');
        expectRejected(h, df, dfWith(3, big, 8), 'denseForward h is x', RangeError, 'h');
        expectRejected(h, df, dfWith(4, big, 8), 'denseForward h is w', RangeError, 'h');
        expectRejected(h, df, dfWith(5, big, 7), 'denseForward bias is z', RangeError, 'bias');
        expectRejected(h, df, dfWith(5, big, 8), 'denseForward bias is h', RangeError, 'bias');
        const bg = SPECS.find((s) => s.kernel === 'biasGrad')!;
        const dz = h.alloc(12);
        expectRejected(h, bg, [3, 4, dz, dz], 'db is dz', RangeError, 'db');
        const adam = SPECS.find((s) => s.kernel === 'adamStep')!;
        const withArg = (i: number, v: unknown): unknown[] => {
          const args = adam.build(h.alloc);
          args[i] = v;
          return args;
        };
        expectRejected(h, adam, withArg(6, 1), 'beta1 = 1', RangeError, 'beta1');
        expectRejected(h, adam, withArg(6, -0.1), 'beta1 = -0.1', RangeError, 'beta1');
        expectRejected(h, adam, withArg(7, 1.5), 'beta2 = 1.5', RangeError, 'beta2');
        expectRejected(h, adam, withArg(10, 0), 'step = 0', RangeError, 'step');
        const shared = adam.build(h.alloc);
        shared[3] = shared[1];
        expectRejected(h, adam, shared, 'm is param', RangeError, null);
        const sce = SPECS.find((s) => s.kernel === 'softmaxCrossEntropy')!;
        const overlap = sce.build(h.alloc);
        overlap[4] = overlap[2];
        expectRejected(h, sce, overlap, 'probs is logits', RangeError, null);
        const sce0 = sce.build(h.alloc);
        sce0[0] = 0;
        expectRejected(h, sce, sce0, 'rows = 0', RangeError, 'rows');
        canary(k);
      } finally {
        h.freeAll();
      }
    });

    it('huge sizes are refused before any memory is touched', () => {
      const h = harness(k, []);
      try {
        const g = SPECS[0]!;
        for (const [m, n, kk] of [
          [2 ** 31 - 1, 2, 1],
          [65536, 65536, 1],
          [1, 1, 2 ** 31 - 1],
          [2 ** 20, 2 ** 20, 2 ** 20],
        ] as const) {
          expectRejected(h, g, [false, false, m, n, kk, 1, h.alloc(4), h.alloc(4), 0, h.alloc(4)], `gemm ${m}x${n}x${kk}`, RangeError, null);
        }
        const sq = SPECS.find((s) => s.kernel === 'sumSquares')!;
        expectRejected(h, sq, [2 ** 31 - 1, h.alloc(4)], 'sumSquares n = 2^31-1', RangeError, 'x');
        canary(k);
      } finally {
        h.freeAll();
      }
    });

    it('alloc, free and setThreads reject bad values; freed tensors throw on use; double free throws', () => {
      for (const v of [0, -1, 1.5, NaN, Infinity, 2 ** 53]) expect(() => k.alloc(v), `alloc(${v})`).toThrow(RangeError);
      for (const v of ['3', null, undefined, {}]) expect(() => k.alloc(v as number), `alloc(${String(v)})`).toThrow(TypeError);
      for (const v of [0, -1, 1.5, NaN, 1e6]) expect(() => k.setThreads(v), `setThreads(${v})`).toThrow(RangeError);
      for (const v of [null, new Float32Array(4), {}, 3]) expect(() => k.free(v as Tensor), `free(${String(v)})`).toThrow(TypeError);
      const other = createReferenceKernels().alloc(4);
      expect(() => k.free(other)).toThrow(TypeError);
      const t = k.alloc(8);
      expect(t.freed).toBe(false);
      expect(t.length).toBe(8);
      k.free(t);
      expect(t.freed).toBe(true);
      expect(() => k.free(t)).toThrow(RangeError);
      expect(() => k.sumSquares(1, t)).toThrow(RangeError);
      canary(k);
    });

    it('tensor contents survive later allocations (wasm memory growth must not detach them)', () => {
      const bytes = k.allocatedBytes();
      const keep = k.alloc(1000);
      for (let i = 0; i < 1000; i++) keep.data[i] = i * 0.5;
      const big: Tensor[] = [];
      try {
        for (let i = 0; i < 3; i++) {
          big.push(k.alloc(2 ** 21));
          big[i]!.data[2 ** 21 - 1] = i + 1;
        }
        // Read the view again after the allocations (the documented rule) and compute with it.
        expect(keep.data.length).toBe(1000);
        for (let i = 0; i < 1000; i += 37) expect(keep.data[i]).toBe(i * 0.5);
        const expected = Array.from({ length: 1000 }, (_, i) => (i * 0.5) ** 2).reduce((x, y) => x + y, 0);
        expect(k.sumSquares(1000, keep)).toBe(expected);
        big.forEach((t, i) => expect(t.data[2 ** 21 - 1]).toBe(i + 1));
        expect(k.allocatedBytes()).toBeGreaterThanOrEqual(bytes + 4 * (1000 + 3 * 2 ** 21));
      } finally {
        for (const t of big) k.free(t);
        k.free(keep);
      }
      expect(k.allocatedBytes()).toBe(bytes);
      canary(k);
    });

    it('kernel calls leave JavaScript floating point alone (no FTZ/DAZ or rounding-mode leak)', () => {
      // Runtime values (not literals) so the checks are not constant-folded.
      const one = Number(process.argv.length > 0);
      const jsFloatsIntact = (): boolean =>
        one * 2 ** -1060 > 0 && (one * 2 ** -1022) / 2 > 0 && one + 3 * 2 ** -54 === 1 + 2 ** -52 && one - 2 ** -55 === 1 && -one - 3 * 2 ** -54 === -1 - 2 ** -52;
      expect(jsFloatsIntact()).toBe(true);
      const n = 64;
      const [a, b, c, z, h] = [k.alloc(n * n), k.alloc(n * n), k.alloc(n * n), k.alloc(n), k.alloc(n)];
      try {
        a.data.fill(1e-39); // subnormal float32 inputs
        b.data.fill(0.5);
        k.gemm(false, false, n, n, n, 1, a, b, 0, c);
        z.data.fill(-100);
        k.biasActivation(8, 8, z, null, { kind: 'sigmoid' }, h);
        expect(jsFloatsIntact()).toBe(true);
        expect(Math.fround(one * 2 ** -140)).toBeGreaterThan(0);
      } finally {
        for (const t of [a, b, c, z, h]) k.free(t);
      }
    });

    it('fuzz: random garbage in random argument positions throws TypeError/RangeError or works; never corrupts', () => {
      const foreign = allForeign(k);
      const token = fc.constantFrom('short', 'freed', 'foreign', 'long', 'zero');
      const garbage = fc.oneof(
        fc.anything(),
        fc.constantFrom<unknown>(NaN, Infinity, -Infinity, -1, 1.5, 2 ** 31, 2 ** 53, -0, 0, 1, true, false, null, undefined, '', 'relu', [], {}),
        fc.double(),
        fc.integer({ min: -5, max: 40 }),
        token.map((t) => ({ __token: t })),
        fc.record({ kind: fc.constantFrom('relu', 'leaky_relu', 'prelu', 'gelu'), alpha: fc.double(), slope: fc.anything() }),
      );
      fc.assert(
        fc.property(
          fc.constantFrom(...SPECS),
          fc.array(fc.record({ pos: fc.nat(), value: garbage }), { minLength: 1, maxLength: 3 }),
          (spec, mutations) => {
            const h = harness(k, foreign);
            const bytes = k.allocatedBytes();
            try {
              const args = spec.build(h.alloc);
              for (const { pos, value } of mutations) {
                let v: unknown = value;
                const tok = (value as { __token?: string } | null)?.__token;
                if (tok) {
                  if (tok === 'short') v = h.alloc(1);
                  else if (tok === 'long') v = h.alloc(200);
                  else if (tok === 'zero') v = h.alloc(1);
                  else if (tok === 'foreign') v = h.foreign[pos % h.foreign.length];
                  else {
                    const f = h.alloc(16);
                    k.free(f);
                    v = f;
                  }
                }
                args[pos % args.length] = v;
              }
              const tensors = tensorsIn(k, args, h.owned);
              const before = tensors.map((t) => Float32Array.from(t.data));
              try {
                call(k, spec.kernel, args);
              } catch (e) {
                if (!(e instanceof TypeError || e instanceof RangeError)) throw new Error(`${spec.label} threw ${String(e)}`);
                tensors.forEach((t, i) => expect(Array.from(t.data)).toEqual(Array.from(before[i]!)));
              }
            } finally {
              h.freeAll();
            }
            expect(k.allocatedBytes()).toBe(bytes);
            canary(k);
          },
        ),
        { numRuns: 400 },
      );
    });
  });
}
