// Kernels.gatherRows (batch filling: bytes -> floats through a 256-entry table) on every
// backend: the same floats as the reference bit for bit, on random image sizes, indices,
// offsets and unaligned byte arrays; everything beyond the batch untouched; every bad argument
// refused with an error naming it, before anything is written.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fillBatch, scalingTable } from '../src/data/batches.js';
import { loadNativeAddon } from '../src/kernels/native.js';
import { createReferenceKernels } from '../src/kernels/reference.js';
import type { Kernels } from '../src/kernels/types.js';
import { loadedBackends, nonReferenceBackends, registerMissingBackends } from './helpers/backends.js';
import { GUARD, TestRng, guardIntact, sameBits } from './helpers/random.js';

registerMissingBackends('gatherRows');

const reference = createReferenceKernels();

/** `images` random images of `features` bytes, starting at byte `offset` of their buffer (unaligned when odd). */
function randomBytes(rng: TestRng, images: number, features: number, offset: number): Uint8Array {
  const buffer = new ArrayBuffer(offset + images * features);
  const bytes = new Uint8Array(buffer, offset, images * features);
  for (let i = 0; i < bytes.length; i++) bytes[i] = rng.int(256);
  return bytes;
}

function gathered(k: Kernels, count: number, features: number, bytes: Uint8Array, indices: Uint32Array, start: number, table: Float32Array): Float32Array {
  const out = k.alloc(count * features + 3);
  out.data.fill(GUARD);
  k.gatherRows(count, features, bytes, indices, start, table, out);
  if (!guardIntact(out, count * features)) throw new Error(`${k.name}: wrote past count*features`);
  const copy = Float32Array.from(out.data.subarray(0, count * features));
  k.free(out);
  return copy;
}

describe('gatherRows: the reference is the definition', () => {
  it('out[k*f + p] = table[bytes[indices[start+k]*f + p]], as fillBatch computes it', () => {
    const bytes = Uint8Array.of(0, 1, 2, 3, 10, 11, 12, 13, 250, 251, 252, 255);
    const table = scalingTable({ kind: 'standardize', mean: 0.25, std: 0.5 });
    const indices = Uint32Array.of(9, 2, 0, 2);
    const out = gathered(reference, 3, 4, bytes, indices, 1, table);
    const want = [250, 251, 252, 255, 0, 1, 2, 3, 250, 251, 252, 255].map((b) => Math.fround((b / 255 - 0.25) / 0.5));
    expect(Array.from(out)).toEqual(want);
    const x = new Float32Array(12);
    const y = new Float32Array(3);
    const set = { images: bytes, labels: Uint8Array.of(0, 1, 2), count: 3, features: 4, height: 2, width: 2, classes: 3 };
    fillBatch(set as never, indices, 1, 3, x, y, { kind: 'standardize', mean: 0.25, std: 0.5 });
    expect(Array.from(x)).toEqual(want);
  });
});

for (const { name, kernels: k } of nonReferenceBackends()) {
  describe(`gatherRows (${name}) = reference, bit for bit`, () => {
    it('random image sizes (1, primes, 784, not multiples of 4), indices, starts and unaligned bytes', () => {
      fc.assert(
        fc.property(
          fc.record({
            features: fc.oneof(fc.constantFrom(1, 3, 4, 7, 13, 784), fc.integer({ min: 1, max: 300 })),
            images: fc.integer({ min: 1, max: 40 }),
            count: fc.integer({ min: 0, max: 70 }),
            start: fc.integer({ min: 0, max: 5 }),
            offset: fc.integer({ min: 0, max: 7 }),
            standardize: fc.boolean(),
            seed: fc.integer(),
          }),
          ({ features, images, count, start, offset, standardize, seed }) => {
            const rng = new TestRng(seed);
            const bytes = randomBytes(rng, images, features, offset);
            const indices = new Uint32Array(start + count + rng.int(3));
            for (let i = 0; i < indices.length; i++) indices[i] = rng.int(images);
            const table = scalingTable(standardize ? { kind: 'standardize', mean: rng.next(), std: 0.1 + rng.next() } : { kind: 'unit' });
            const want = gathered(reference, count, features, bytes, indices, start, table);
            const got = gathered(k, count, features, bytes, indices, start, table);
            return sameBits(got, want, count * features);
          },
        ),
        { numRuns: 150 },
      );
    });

    it('a full Fashion-MNIST-sized batch (256 x 784, split over threads on native)', () => {
      const rng = new TestRng(7);
      const bytes = randomBytes(rng, 1000, 784, 0);
      const indices = new Uint32Array(300);
      for (let i = 0; i < indices.length; i++) indices[i] = rng.int(1000);
      const table = scalingTable({ kind: 'standardize', mean: 0.286, std: 0.353 });
      expect(sameBits(gathered(k, 256, 784, bytes, indices, 44, table), gathered(reference, 256, 784, bytes, indices, 44, table), 256 * 784)).toBe(true);
    });
  });
}

for (const { name, kernels: k } of loadedBackends()) {
  describe(`gatherRows (${name}) refuses bad arguments before writing`, () => {
    const bytes = Uint8Array.from({ length: 40 }, (_, i) => i);
    const indices = Uint32Array.of(0, 1, 2, 3, 4);
    const table = scalingTable({ kind: 'unit' });
    const cases: [string, unknown[], ErrorConstructor, RegExp][] = [
      ['count not an integer', [1.5, 8, bytes, indices, 0, table], RangeError, /^count/],
      ['features 0', [1, 0, bytes, indices, 0, table], RangeError, /^features/],
      ['bytes a Float32Array', [1, 8, new Float32Array(40), indices, 0, table], TypeError, /^bytes must be a Uint8Array/],
      ['bytes a plain array', [1, 8, [1, 2, 3], indices, 0, table], TypeError, /^bytes/],
      ['indices an Int32Array', [1, 8, bytes, Int32Array.of(0), 0, table], TypeError, /^indices must be a Uint32Array/],
      ['start negative', [1, 8, bytes, indices, -1, table], RangeError, /^start/],
      ['table too short', [1, 8, bytes, indices, 0, new Float32Array(255)], RangeError, /^table holds 255/],
      ['table not floats', [1, 8, bytes, indices, 0, new Uint8Array(256)], TypeError, /^table/],
      ['start + count past indices', [3, 8, bytes, indices, 3, table], RangeError, /exceeds indices\.length \(5\)/],
      ['an index past the last whole image', [2, 8, bytes, Uint32Array.of(4, 5), 0, table], RangeError, /^indices\[1\] = 5 is out of range for 5 images of 8 bytes/],
      ['an index past a partial image', [1, 16, bytes, Uint32Array.of(2), 0, table], RangeError, /^indices\[0\] = 2 is out of range for 2 images/],
    ];
    for (const [label, args, type, message] of cases) {
      it(label, () => {
        const out = k.alloc(64);
        out.data.fill(GUARD);
        let error: unknown;
        try {
          (k.gatherRows as (...a: unknown[]) => void)(...args, out);
        } catch (e) {
          error = e;
        }
        expect(error).toBeInstanceOf(type);
        expect((error as Error).message).toMatch(message);
        expect(guardIntact(out, 0)).toBe(true);
        k.free(out);
      });
    }
    it('out too short, not a tensor of this backend, or freed', () => {
      const short = k.alloc(15);
      expect(() => k.gatherRows(2, 8, bytes, indices, 0, table, short)).toThrow(/^out holds 15 elements but the call needs 16/);
      expect(() => k.gatherRows(1, 8, bytes, indices, 0, table, { length: 8, data: new Float32Array(8), freed: false })).toThrow(TypeError);
      k.free(short);
      expect(() => k.gatherRows(1, 8, bytes, indices, 0, table, short)).toThrow(/^out has been freed/);
    });
  });
}

// The addon checks again on its side of the boundary: a direct call can never read past the bytes.
let addonError = '';
let addon: ReturnType<typeof loadNativeAddon> | null = null;
try {
  addon = loadNativeAddon();
} catch (e) {
  addonError = (e as Error).message;
}
describe.skipIf(addon === null)(`native addon gatherRows, called directly${addonError ? ` (skipped: ${addonError})` : ''}`, () => {
  it('refuses out-of-range indices, short buffers and overlapping memory with a RangeError', () => {
    const bytes = new Uint8Array(32);
    const table = new Float32Array(256);
    const out = new Float32Array(16);
    expect(() => addon!.gatherRows(2, 8, bytes, Uint32Array.of(3, 4), 0, table, out)).toThrow(/indices\[1\] = 4 is out of range for 4 images/);
    expect(() => addon!.gatherRows(3, 8, bytes, Uint32Array.of(0, 1, 2), 0, table, out)).toThrow(/out holds 16 elements but the call needs 24/);
    expect(() => addon!.gatherRows(2, 8, bytes, Uint32Array.of(0), 0, table, out)).toThrow(/exceeds indices\.length/);
    expect(() => addon!.gatherRows(1, 8, bytes, Uint32Array.of(0), 0, new Float32Array(255), out)).toThrow(/table holds 255/);
    const shared = new Float32Array(300);
    expect(() => addon!.gatherRows(1, 8, bytes, Uint32Array.of(0), 0, shared, shared.subarray(250))).toThrow(/must not share memory/);
    expect(out.every((v) => v === 0)).toBe(true);
  });
});
