// The wasm backend's memory: tensors in linear memory stay valid across memory.grow (views are
// re-derived), freed blocks are reused (no growth over many alloc/free cycles), allocation is
// zero-filled and 64-byte aligned, and freed tensors cannot be used.
import { describe, expect, it } from 'vitest';
import type { Kernels, Tensor } from '../src/kernels/types.js';
import { createWasmBackend, type WasmExports } from '../src/kernels/wasm.js';

const PAGE = 65536;

function fresh(): { kernels: Kernels; wasm: WasmExports } {
  const { kernels, exports } = createWasmBackend();
  return { kernels, wasm: exports };
}

/** The buffers an MLP 784-256-128-10 with Adam and a 128-row batch allocates. */
function modelSizes(): number[] {
  const layers = [784, 256, 128, 10];
  const batch = 128;
  const sizes: number[] = [batch * 784, batch]; // input batch, labels
  for (let i = 0; i + 1 < layers.length; i++) {
    const [fanIn, fanOut] = [layers[i]!, layers[i + 1]!];
    for (let copy = 0; copy < 4; copy++) sizes.push(fanIn * fanOut, fanOut); // param, grad, m, v
    sizes.push(batch * fanOut, batch * fanOut, batch * fanOut, 1, 1); // z, h, dz, prelu slope + grad
  }
  return sizes;
}

describe('wasm tensors across memory growth', () => {
  it('a tensor keeps its values and stays usable after memory.grow replaces the buffer', () => {
    const { kernels, wasm } = fresh();
    const t = kernels.alloc(1000);
    for (let i = 0; i < 1000; i++) t.data[i] = i * 0.5 - 100;
    const oldView = t.data;
    const before = wasm.memory.buffer.byteLength;

    // Force growth: a block larger than everything there is.
    const big = kernels.alloc(before / 4 + 4 * PAGE);
    const after = wasm.memory.buffer.byteLength;
    expect(after).toBeGreaterThan(before);
    // The memory is shared (worker threads use it): growth gives it a new, longer buffer and the
    // old view keeps covering the old one, so `data` must hand out a view of the new buffer.
    expect(oldView.buffer.byteLength).toBe(before);
    expect(t.data.buffer.byteLength).toBe(after);
    expect(t.data.length).toBe(1000);
    for (let i = 0; i < 1000; i++) expect(t.data[i]).toBe(i * 0.5 - 100);

    // Writes through the new view land in the same memory the kernels read.
    t.data[999] = 3;
    expect(kernels.sumSquares(1, kernels.alloc(1))).toBe(0);
    let expected = 0;
    for (let i = 0; i < 1000; i++) expected += t.data[i]! * t.data[i]!;
    expect(kernels.sumSquares(1000, t)).toBe(expected);

    // Kernels write into the old tensor and into the big one; both views see it.
    const a = kernels.alloc(4);
    a.data.set([1, 2, 3, 4]);
    kernels.gemm(false, false, 2, 2, 2, 1, a, a, 0, t);
    expect(Array.from(t.data.subarray(0, 4))).toEqual([7, 10, 15, 22]);
    big.data[big.length - 1] = 42;
    kernels.gemm(false, false, 2, 2, 2, 1, a, a, 0, big);
    expect(Array.from(big.data.subarray(0, 4))).toEqual([7, 10, 15, 22]);
    expect(big.data[big.length - 1]).toBe(42);
    expect(wasm.heapCheck()).toBe(0);
  });

  it('tensors allocated before several growths all keep their contents', () => {
    const { kernels, wasm } = fresh();
    const held: Tensor[] = [];
    let grows = 0;
    let size = wasm.memory.buffer.byteLength;
    for (let i = 0; i < 12; i++) {
      const t = kernels.alloc(50_000 * (i + 1));
      t.data.fill(i + 1);
      held.push(t);
      if (wasm.memory.buffer.byteLength !== size) {
        grows++;
        size = wasm.memory.buffer.byteLength;
      }
    }
    expect(grows).toBeGreaterThan(2);
    held.forEach((t, i) => {
      expect(t.data[0]).toBe(i + 1);
      expect(t.data[t.length - 1]).toBe(i + 1);
      expect(kernels.sumSquares(t.length, t)).toBe((i + 1) * (i + 1) * t.length);
    });
  });
});

describe('wasm allocator', () => {
  it('zero-fills, aligns to 64 bytes, and counts live tensor bytes', () => {
    const { kernels } = fresh();
    expect(kernels.allocatedBytes()).toBe(0);
    const a = kernels.alloc(37);
    a.data.fill(5);
    expect(kernels.allocatedBytes()).toBe(37 * 4);
    kernels.free(a);
    expect(kernels.allocatedBytes()).toBe(0);
    const b = kernels.alloc(37); // reuses a's block
    expect(Array.from(b.data)).toEqual(new Array(37).fill(0));
    for (const n of [1, 2, 3, 15, 16, 17, 1000]) {
      const t = kernels.alloc(n);
      expect(t.data.byteOffset % 64).toBe(0);
      expect(t.length).toBe(n);
      expect(t.data.length).toBe(n);
    }
  });

  it('a freed tensor is marked, unreadable and refused by every kernel; freeing twice throws', () => {
    const { kernels } = fresh();
    const t = kernels.alloc(8);
    const other = kernels.alloc(8);
    expect(t.freed).toBe(false);
    kernels.free(t);
    expect(t.freed).toBe(true);
    expect(() => t.data).toThrow(RangeError);
    expect(() => kernels.free(t)).toThrow(RangeError);
    expect(() => kernels.sumSquares(1, t)).toThrow(/freed/);
    expect(() => kernels.gemm(false, false, 1, 1, 1, 1, t, other, 0, other)).toThrow(/freed/);
    expect(() => kernels.biasActivation(1, 1, other, null, { kind: 'prelu', slope: t }, other)).toThrow(/freed/);
  });

  it('does not accept tensors of another wasm instance', () => {
    const one = fresh().kernels;
    const two = fresh().kernels;
    const t = one.alloc(4);
    expect(() => two.sumSquares(4, t)).toThrow(TypeError);
    expect(() => two.free(t)).toThrow(TypeError);
  });

  it('reuses freed memory: 1000 model-sized alloc/free cycles do not grow the memory', () => {
    const { kernels, wasm } = fresh();
    const sizes = modelSizes();
    const baseBytes = kernels.allocatedBytes();
    const baseHeap = wasm.heapUsed();
    const build = (): Tensor[] => sizes.map((n) => kernels.alloc(n));

    // One model to reach the steady state.
    let model = build();
    const modelBytes = sizes.reduce((s, n) => s + n * 4, 0);
    expect(kernels.allocatedBytes()).toBe(baseBytes + modelBytes);
    model.forEach((t) => kernels.free(t));
    const steady = wasm.memory.buffer.byteLength;
    const extent = wasm.heapExtent();

    for (let cycle = 0; cycle < 1000; cycle++) {
      model = build();
      // A long-lived neighbour now and then, freed in a different order, to mix the heap up.
      const extra = cycle % 7 === 0 ? kernels.alloc(1 + ((cycle * 7919) % 50_000)) : null;
      if (cycle % 2 === 0) model.reverse();
      model.forEach((t) => kernels.free(t));
      if (extra) kernels.free(extra);
    }
    expect(kernels.allocatedBytes()).toBe(baseBytes);
    expect(wasm.heapUsed()).toBe(baseHeap);
    expect(wasm.heapCheck()).toBe(0);
    expect(wasm.heapExtent()).toBeLessThanOrEqual(extent);
    // Bounded: at most one model (plus the odd extra block) above the steady state.
    expect(wasm.memory.buffer.byteLength).toBeLessThanOrEqual(steady + 2 * PAGE * 4);
  });

  it('coalesces free neighbours so a large block fits where small ones were', () => {
    const { kernels, wasm } = fresh();
    const small = Array.from({ length: 64 }, () => kernels.alloc(4096));
    const guard = kernels.alloc(1); // keeps the freed run away from the top of the heap
    const size = wasm.memory.buffer.byteLength;
    const extent = wasm.heapExtent();
    small.forEach((t, i) => i % 2 === 0 && kernels.free(t));
    small.forEach((t, i) => i % 2 === 1 && kernels.free(t));
    expect(wasm.heapCheck()).toBe(0);
    const big = kernels.alloc(60 * 4096);
    expect(wasm.heapExtent()).toBe(extent);
    expect(wasm.memory.buffer.byteLength).toBe(size);
    kernels.free(big);
    kernels.free(guard);
    expect(wasm.heapCheck()).toBe(0);
  });

  it('random alloc/free keeps the heap consistent and returns it to its start', () => {
    const { kernels, wasm } = fresh();
    const baseHeap = wasm.heapUsed();
    const baseExtent = wasm.heapExtent();
    let seed = 99;
    const random = (): number => {
      seed = (seed * 1103515245 + 12345) >>> 0;
      return seed / 4294967296;
    };
    const live: Tensor[] = [];
    for (let i = 0; i < 5000; i++) {
      if (live.length > 0 && random() < 0.45) {
        const j = Math.floor(random() * live.length);
        const t = live[j]!;
        // The contents survive until free.
        expect(t.data[0]).toBe(t.length);
        kernels.free(t);
        live.splice(j, 1);
      } else {
        const n = 1 + Math.floor(random() ** 3 * 100_000);
        const t = kernels.alloc(n);
        t.data[0] = n;
        live.push(t);
      }
      if (i % 500 === 0) expect(wasm.heapCheck()).toBe(0);
    }
    live.forEach((t) => kernels.free(t));
    expect(wasm.heapCheck()).toBe(0);
    expect(wasm.heapUsed()).toBe(baseHeap);
    expect(wasm.heapExtent()).toBe(baseExtent);
    expect(kernels.allocatedBytes()).toBe(0);
  });

  it('reports allocation failure as a RangeError, not a crash', () => {
    const { kernels, wasm } = fresh();
    expect(wasm.alloc(0xffff_fff0) >>> 0).toBe(0); // more than 4 GiB with the header
    expect(() => kernels.alloc(2 ** 28 + 1)).toThrow(RangeError);
    expect(() => kernels.alloc(0)).toThrow(RangeError);
    expect(wasm.heapCheck()).toBe(0);
  });

  // The raw exports take byte offsets, so a raw caller (not the JS backend) can hand free() a
  // wrong pointer or let a kernel overwrite a block header. That must trap, never loop: a
  // free-list cycle used to make alloc() spin forever (found by the boundary fuzz test).
  it('raw misuse traps instead of corrupting or hanging: bad pointers, double free, overwritten links', () => {
    const { wasm } = fresh();
    const a = wasm.alloc(256);
    const b = wasm.alloc(256);
    const c = wasm.alloc(256);
    expect(() => wasm.free(a + 4)).toThrow(WebAssembly.RuntimeError); // not a block start
    expect(() => wasm.free(8)).toThrow(WebAssembly.RuntimeError); // below the heap
    expect(() => wasm.free(c + 1 << 20)).toThrow(WebAssembly.RuntimeError); // above the top
    expect(wasm.heapCheck()).toBe(0);
    wasm.free(b);
    expect(() => wasm.free(b)).toThrow(WebAssembly.RuntimeError); // double free
    expect(wasm.heapCheck()).toBe(0);

    // Overwrite the free block's "next" link with its own address: a one-block cycle.
    const words = () => new Uint32Array(wasm.memory.buffer);
    const header = b - 16;
    words()[(header + 8) / 4] = header;
    expect(wasm.heapCheck()).not.toBe(0);
    expect(() => wasm.alloc(8192)).not.toThrow(); // a larger class never walks that list
    expect(() => wasm.alloc(200)).toThrow(WebAssembly.RuntimeError); // walks it: trap, not a hang
    expect(() => wasm.free(a)).toThrow(WebAssembly.RuntimeError); // coalescing would follow the link
  });
});
