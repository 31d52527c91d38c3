/**
 * Reliability, the raw JS-to-native boundary: fast-check fuzzes of the layers BELOW the checked
 * Kernels wrapper (test/kernels.safety.test.ts fuzzes that one):
 * - the native addon's own exports (src/kernels/native.ts NativeAddon), which must check every
 *   argument themselves: random shapes, buffers that are too short, detached or shrunk
 *   ArrayBuffers, other typed arrays, non-typed-array values, NaN/Infinity and non-number
 *   scalars, missing and extra arguments. Every call returns or throws a TypeError/RangeError;
 *   the process survives; and a call never writes outside the Float32Array it was given (each JS
 *   buffer is a view into a larger array whose guard bytes are checked after every call).
 * - the WebAssembly module's exports (raw byte offsets into its memory), on a fresh instance:
 *   every call returns or throws a JS error (a trap is a WebAssembly.RuntimeError), never takes
 *   the process down.
 */
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadNativeAddon, type NativeAddon } from '../src/kernels/native.js';
import { instantiateWasm, type WasmExports } from '../src/kernels/wasm.js';
import { registerMissingBackends } from './helpers/backends.js';

registerMissingBackends('raw boundary');

let addon: NativeAddon | null = null;
let nativeReason = '';
try {
  addon = loadNativeAddon();
} catch (error) {
  nativeReason = (error as Error).message;
}

const GUARD = 16;
const SENTINEL = 0x7fc0dead; // a NaN payload no kernel produces
interface Guarded {
  backing: Uint32Array;
  view: Float32Array;
}
const guarded: Guarded[] = [];

/** A Float32Array of `length` elements inside a larger buffer whose surrounding words are sentinels. */
function guardedView(length: number, offset = 0): Float32Array {
  const backing = new Uint32Array(GUARD + offset + length + GUARD).fill(SENTINEL);
  const view = new Float32Array(backing.buffer, (GUARD + offset) * 4, length);
  for (let i = 0; i < length; i++) view[i] = (i % 7) - 3;
  guarded.push({ backing, view });
  return view;
}

function guardsIntact(): string | null {
  for (const { backing, view } of guarded) {
    const start = view.byteOffset / 4;
    const end = start + view.length;
    for (let i = 0; i < backing.length; i++) {
      if ((i < start || i >= end) && backing[i] !== SENTINEL) return `word ${i} outside a ${view.length}-element view was written`;
    }
  }
  return null;
}

function detachedView(): Float32Array {
  const buffer = new ArrayBuffer(64);
  const view = new Float32Array(buffer);
  structuredClone(buffer, { transfer: [buffer] });
  return view;
}

/** Views on a resizable buffer after it shrank: a length-tracking one, and a fixed one now out of bounds. */
function shrunkViews(): Float32Array[] {
  try {
    const Resizable = ArrayBuffer as unknown as new (n: number, o: { maxByteLength: number }) => ArrayBuffer & { resize(n: number): void };
    const rab = new Resizable(400, { maxByteLength: 800 });
    const tracking = new Float32Array(rab);
    const fixed = new Float32Array(rab, 0, 100);
    rab.resize(40);
    return [tracking, fixed];
  } catch {
    return []; // resizable ArrayBuffers unavailable
  }
}

const specialNumbers = [-1, -0, 0.5, 1.5, 2 ** 31 - 1, 2 ** 31, 2 ** 32 + 3, 2 ** 53, Number.MAX_VALUE, NaN, Infinity, -Infinity];
const nonNumbers: unknown[] = ['7', '', null, undefined, true, {}, [], [3], 10n, Symbol('s'), () => 1, new Date(0), { valueOf: () => 4 }];

const size = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0, max: 40 }) },
  { weight: 1, arbitrary: fc.constantFrom(...specialNumbers) },
  { weight: 1, arbitrary: fc.constantFrom(...nonNumbers) },
);
const scalar = fc.oneof(
  { weight: 6, arbitrary: fc.double({ min: -10, max: 10, noNaN: true }) },
  { weight: 2, arbitrary: fc.double() }, // NaN, +-Infinity, subnormals, huge
  { weight: 1, arbitrary: fc.constantFrom(...nonNumbers) },
);
const bool = fc.oneof({ weight: 6, arbitrary: fc.boolean() }, { weight: 1, arbitrary: fc.constantFrom(0, 1, 'true', null, undefined, {}) });
const kind = fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 0, max: 5 }) }, { weight: 1, arbitrary: fc.constantFrom(-1, 6, 255, 2 ** 31, NaN, 0.5, '1', null) });

describe.skipIf(!addon)(`native addon exports under fuzz${addon ? '' : ` (skipped: ${nativeReason})`}`, () => {
  const pool: Float32Array[] = [];
  let threadsBefore = 1;
  let isaBefore = 'auto';
  beforeAll(() => {
    threadsBefore = addon!.threads();
    isaBefore = addon!.isa();
    for (const n of [1, 7, 64, 300, 2000]) pool.push(addon!.alloc(n));
    const freed = addon!.alloc(16);
    addon!.free(freed);
    pool.push(freed);
  });
  afterAll(() => {
    for (const v of pool) if (addon!.isAllocated(v)) addon!.free(v);
    addon!.setThreads(threadsBefore);
    addon!.setIsa(isaBefore as 'auto');
  });

  const array = (): fc.Arbitrary<unknown> =>
    fc.oneof(
      { weight: 8, arbitrary: fc.tuple(fc.integer({ min: 0, max: 900 }), fc.integer({ min: 0, max: 3 })).map(([n, o]) => guardedView(n, o)) },
      { weight: 3, arbitrary: fc.integer({ min: 0, max: pool.length - 1 }).map((i) => pool[i]) },
      { weight: 1, arbitrary: fc.constant(null).map(() => detachedView()) },
      { weight: 1, arbitrary: fc.constant(null).map(() => shrunkViews()[0] ?? detachedView()) },
      { weight: 1, arbitrary: fc.constant(null).map(() => shrunkViews()[1] ?? detachedView()) },
      {
        weight: 2,
        arbitrary: fc.constantFrom<() => unknown>(
          () => new Float64Array(64),
          () => new Int32Array(64),
          () => new Uint8Array(256),
          () => new DataView(new ArrayBuffer(256)),
          () => new ArrayBuffer(256),
          () => new Float32Array(new SharedArrayBuffer(256)),
          () => Array.from({ length: 64 }, () => 1),
          () => null,
          () => undefined,
          () => 42,
          () => 'buffer',
          () => ({ length: 64, 0: 1 }),
        ).map((make) => make()),
      },
    );

  /** Argument lists shaped like each export's, every position free to be wrong. */
  const calls = (): fc.Arbitrary<[string, unknown[]]> => {
    const A = array();
    const shapes: Record<string, fc.Arbitrary<unknown>[]> = {
      gemm: [bool, bool, size, size, size, scalar, A, A, scalar, A],
      biasActivation: [size, size, A, fc.oneof(A, fc.constant(null)), kind, scalar, A],
      denseForward: [size, size, size, A, A, fc.oneof(A, fc.constant(null)), kind, scalar, A, A],
      activationBackward: [size, size, kind, scalar, A, A, A, A],
      biasGrad: [size, size, A, A],
      softmaxCrossEntropy: [size, size, A, A, A, fc.oneof(A, fc.constant(null))],
      softmax: [size, size, A, A],
      sgdStep: [size, A, A, fc.oneof(A, fc.constant(null)), scalar, scalar, bool, scalar],
      adamStep: [size, A, A, A, A, scalar, scalar, scalar, scalar, scalar, size],
      sumSquares: [size, A],
      isAllocated: [fc.oneof(A, fc.constantFrom(...nonNumbers))],
      setThreads: [size],
      setIsa: [fc.constantFrom('auto', 'generic', 'avx2', 'avx512', 'neon', '', 7, null)],
      allocatedBytes: [],
    };
    return fc.constantFrom(...Object.keys(shapes)).chain((name) =>
      fc.tuple(fc.constant(name), fc.tuple(...shapes[name]!), fc.integer({ min: -2, max: 2 })).map(([n, args, arity]): [string, unknown[]] => {
        // Sometimes drop trailing arguments, sometimes add extra ones.
        const list = [...(args as unknown[])];
        if (arity < 0) list.length = Math.max(0, list.length + arity);
        if (arity > 0) list.push(...Array.from({ length: arity }, () => guardedView(3)));
        return [n, list];
      }),
    );
  };

  it('random calls to every raw export: return or throw TypeError/RangeError, never write outside their buffers', () => {
    let threw = 0;
    let returned = 0;
    fc.assert(
      fc.property(calls(), ([name, args]) => {
        guarded.length = 0;
        const fn = (addon as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!;
        try {
          fn.apply(addon, args);
          returned++;
        } catch (error) {
          threw++;
          if (!(error instanceof TypeError || error instanceof RangeError)) throw new Error(`${name} threw ${String(error)}`);
        }
        const broken = guardsIntact();
        if (broken !== null) throw new Error(`${name}: ${broken}`);
      }),
      { numRuns: 3000 },
    );
    // Both outcomes happened (the generators are not so wild that nothing ever runs).
    expect(returned).toBeGreaterThan(50);
    expect(threw).toBeGreaterThan(50);
    // The addon is still healthy.
    const a = addon!.alloc(4);
    a.set([1, 2, 3, 4]);
    expect(addon!.sumSquares(4, a)).toBe(30);
    addon!.free(a);
  });

  it('alloc/free with random and hostile values: RangeError/TypeError or a zero-filled view, freed once', () => {
    const lengths = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 1, max: 5000 }) },
      { weight: 1, arbitrary: fc.constantFrom(0, -1, 1.5, NaN, Infinity, addon ? addon.maxLength + 1 : 1, 2 ** 53, '8', null, {}) },
    );
    fc.assert(
      fc.property(lengths, fc.boolean(), (length, twice) => {
        let view: Float32Array;
        try {
          view = addon!.alloc(length as number);
        } catch (error) {
          if (!(error instanceof TypeError || error instanceof RangeError)) throw error;
          return;
        }
        if (view.length !== length || !view.every((v) => v === 0)) throw new Error(`alloc(${String(length)}) gave a bad view`);
        addon!.free(view);
        if (view.length !== 0) throw new Error('free did not detach the view');
        if (twice) expect(() => addon!.free(view)).toThrow(RangeError);
      }),
      { numRuns: 300 },
    );
  });

  it('valid shapes with buffers exactly long enough or a little short: work, or a RangeError before any write', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 24 }),
        fc.boolean(),
        fc.boolean(),
        fc.constantFrom(0, 0, 0, -1, -3),
        fc.integer({ min: 0, max: 2 }),
        (m, n, k, ta, tb, short, which) => {
          guarded.length = 0;
          const lens = [m * k, k * n, m * n].map((len, i) => (i === which ? Math.max(0, len + short) : len));
          const [a, b, c] = lens.map((len) => guardedView(len, len % 3));
          const before = Buffer.from(new Uint8Array(c!.buffer, c!.byteOffset, c!.byteLength));
          try {
            addon!.gemm(ta, tb, m, n, k, 1, a!, b!, 0, c!);
            if (short !== 0) throw new Error(`gemm accepted a buffer ${-short} element(s) short`);
          } catch (error) {
            if (!(error instanceof RangeError) || short === 0) throw error;
            // Refused: nothing was written.
            if (!before.equals(Buffer.from(new Uint8Array(c!.buffer, c!.byteOffset, c!.byteLength)))) throw new Error('c written before the refusal');
          }
          const broken = guardsIntact();
          if (broken !== null) throw new Error(broken);
        },
      ),
      { numRuns: 400 },
    );
  });
});

describe('wasm module exports under fuzz (raw byte offsets, fresh instance)', () => {
  let wasm: WasmExports;
  let live: number[] = [];
  let wasmReason = '';
  try {
    wasm = instantiateWasm();
  } catch (error) {
    wasmReason = (error as Error).message;
  }

  it.skipIf(wasmReason !== '')(`random calls return or throw a JS error, never crash${wasmReason ? ` (skipped: ${wasmReason})` : ''}`, () => {
    expect(wasm.gemmInit()).toBeTruthy();
    live = [64, 1024, 4096, 40000].map((bytes) => wasm.alloc(bytes));
    const memoryBytes = (): number => wasm.memory.buffer.byteLength;
    const pointer = fc.oneof(
      { weight: 4, arbitrary: fc.integer({ min: 0, max: live.length - 1 }).map((i) => live[i]!) },
      { weight: 2, arbitrary: fc.integer({ min: 0, max: 2 ** 32 - 1 }) },
      { weight: 1, arbitrary: fc.constant(0).map(() => memoryBytes() - 4) },
      { weight: 1, arbitrary: fc.constantFrom(0, -4, 2 ** 31, 2 ** 32, NaN, Infinity, 0.5, '64', null, undefined) },
    );
    const wsize = fc.oneof(
      { weight: 8, arbitrary: fc.integer({ min: 0, max: 64 }) },
      { weight: 1, arbitrary: fc.constantFrom(-1, -(2 ** 31), 2 ** 31, 2 ** 32 + 3, 100_000, NaN, Infinity, 1.5, '9', null, undefined, {}) },
    );
    const wscalar = fc.oneof({ weight: 4, arbitrary: fc.double({ min: -10, max: 10, noNaN: true }) }, { weight: 1, arbitrary: fc.double() });
    const flag = fc.constantFrom(0, 1, 2, -1, true, false);
    const shapes: Record<string, fc.Arbitrary<unknown>[]> = {
      gemm: [flag, flag, wsize, wsize, wsize, wscalar, pointer, pointer, wscalar, pointer],
      biasActivation: [wsize, wsize, pointer, pointer, kind, wscalar, pointer, pointer],
      activationBackward: [wsize, wsize, kind, wscalar, pointer, pointer, pointer, pointer, pointer],
      biasGrad: [wsize, wsize, pointer, pointer],
      softmaxCrossEntropy: [wsize, wsize, pointer, pointer, pointer, pointer],
      softmax: [wsize, wsize, pointer, pointer],
      sgdStep: [wsize, pointer, pointer, pointer, wscalar, wscalar, flag, wscalar],
      adamStep: [wsize, pointer, pointer, pointer, pointer, wscalar, wscalar, wscalar, wscalar, wscalar, wscalar],
      sumSquares: [wsize, pointer],
      alloc: [fc.oneof(fc.integer({ min: 0, max: 100_000 }), fc.constantFrom(-1, 2 ** 32 - 1, NaN))],
      free: [pointer],
      heapCheck: [],
    };
    let trapped = 0;
    let returned = 0;
    fc.assert(
      fc.property(
        fc.constantFrom(...Object.keys(shapes)).chain((name) => fc.tuple(fc.constant(name), fc.tuple(...shapes[name]!))),
        ([name, args]) => {
          const fn = (wasm as unknown as Record<string, (...a: unknown[]) => unknown>)[name]!;
          try {
            fn(...(args as unknown[]));
            returned++;
          } catch (error) {
            trapped++;
            if (!(error instanceof Error)) throw new Error(`${name} threw a non-Error ${String(error)}`);
          }
        },
      ),
      { numRuns: 1500 },
    );
    expect(returned).toBeGreaterThan(50);
    expect(trapped).toBeGreaterThan(5);
    // The process and the JS side are fine; a brand-new instance still computes.
    const fresh = instantiateWasm();
    expect(fresh.gemmInit()).toBeTruthy();
    const x = fresh.alloc(16);
    new Float32Array(fresh.memory.buffer, x, 4).set([1, 2, 3, 4]);
    expect(fresh.sumSquares(4, x)).toBe(30);
  });
});
