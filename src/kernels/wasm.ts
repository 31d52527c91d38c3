/**
 * The WebAssembly backend: AssemblyScript kernels (assembly/, SIMD128) compiled to
 * dist/wasm/densetrain.wasm, loaded synchronously. Tensors live in the module's linear memory,
 * a shared WebAssembly.Memory created here, handed out by its allocator (assembly/heap.ts);
 * kernels get byte offsets, so nothing is copied per call. Memory growth gives the memory a new,
 * longer buffer, so a tensor's `data` re-derives its view whenever the buffer has changed.
 * Large kernels are split over worker threads running the same module over the same memory
 * (wasm-pool.ts, wasm-split.ts); the allocator runs on this thread only.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ACTIVATION_CODES } from './activation-codes.js';
import { withChecks, type RawKernels } from './checks.js';
import { gatherBytesJs } from './gather.js';
import { packageRoot } from './paths.js';
import type { Activation, Bf16Support, Kernels, Tensor } from './types.js';
import { defaultThreads, MAX_THREADS } from './threads.js';
import { WA, type WasmMemory, type WasmModule } from './wasm-api.js';
import { WasmThreadPool } from './wasm-pool.js';
import type { WorkerOp } from './wasm-protocol.js';
import { elementParts, flatRanges, gemmChunks, gemmParts, rowRanges } from './wasm-split.js';

/** The module's exports (see assembly/index.ts). Pointers are byte offsets (u32, read back signed). */
export interface WasmExports {
  readonly memory: WasmMemory;
  alloc(bytes: number): number;
  free(ptr: number): void;
  heapUsed(): number;
  heapBlocks(): number;
  heapExtent(): number;
  heapCheck(): number;
  gemmInit(): number;
  gemm(
    transA: number,
    transB: number,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: number,
    b: number,
    beta: number,
    c: number,
    bf16: number,
  ): number;
  biasActivation(rows: number, cols: number, z: number, bias: number, kind: number, alpha: number, slope: number, h: number): void;
  activationBackward(
    rows: number,
    cols: number,
    kind: number,
    alpha: number,
    slope: number,
    z: number,
    h: number,
    dh: number,
    dz: number,
  ): number;
  biasGrad(rows: number, cols: number, dz: number, db: number): void;
  softmaxCrossEntropy(rows: number, cols: number, logits: number, labels: number, probs: number, dlogits: number): number;
  softmax(rows: number, cols: number, logits: number, probs: number): void;
  sgdStep(n: number, param: number, grad: number, velocity: number, lr: number, momentum: number, nesterov: number, l2: number): void;
  adamStep(
    n: number,
    param: number,
    grad: number,
    m: number,
    v: number,
    stepSize: number,
    beta1: number,
    beta2: number,
    eps: number,
    l2: number,
    sqrtBias2: number,
  ): void;
  sumSquares(n: number, x: number): number;
  /** 1 in the relaxed-SIMD build (a WebAssembly.Global). */
  readonly RELAXED_SIMD: { readonly value: number };
  gemmSetScratch(a: number, b: number, t: number): void;
  gemmStrided(...args: number[]): number;
}

export { WA } from './wasm-api.js';

/** Where the built module is expected (plain SIMD128). */
export function wasmModulePath(): string {
  return join(packageRoot(), 'dist', 'wasm', 'densetrain.wasm');
}

/** The same kernels built with relaxed SIMD (f32x4.relaxed_madd in the GEMM micro-kernel). */
export function wasmRelaxedModulePath(): string {
  return join(packageRoot(), 'dist', 'wasm', 'densetrain-relaxed.wasm');
}

/**
 * The build to load: the relaxed-SIMD one where this runtime validates it (V8 with relaxed SIMD
 * on: Node 22 and later, or Node 20 started with --experimental-wasm-relaxed-simd), else plain
 * SIMD128. Results differ between the two in the last bits (a fused multiply-add rounds once).
 */
export function preferredWasmModulePath(): string {
  const relaxed = wasmRelaxedModulePath();
  try {
    if (existsSync(relaxed) && WA.validate(readFileSync(relaxed))) return relaxed;
  } catch {
    // An unreadable relaxed build: the plain one is the fallback.
  }
  return wasmModulePath();
}

/** What to do about a missing or broken module: it ships built in the npm package. */
export const WASM_REMEDY = 'reinstall densetrain (in a git clone: npm run build:wasm)';

const compiled = new Map<string, WasmModule>();

function compileModule(path: string): WasmModule {
  const cached = compiled.get(path);
  if (cached) return cached;
  if (!existsSync(path)) throw new Error(`wasm module missing: ${path}; ${WASM_REMEDY}`);
  let bytes: Buffer;
  try {
    bytes = readFileSync(path);
  } catch (error) {
    throw new Error(`wasm module unreadable: ${path}: ${error instanceof Error ? error.message : String(error)}`);
  }
  let module: WasmModule;
  try {
    module = new WA.Module(bytes);
  } catch (error) {
    throw new Error(
      `wasm module failed to compile (${path}; needs WebAssembly SIMD128, Node >= 16.4): ${error instanceof Error ? error.message : String(error)}; ${WASM_REMEDY}`,
    );
  }
  compiled.set(path, module);
  return module;
}

/** The module's memory limits (asconfig.json: initialMemory, maximumMemory = 4 GiB). */
const INITIAL_PAGES = 2;
const MAX_PAGES = 65536;

/** A fresh instance of the module at `path` (own shared memory and heap). Exposed for tests. */
export function instantiateWasm(path: string = wasmModulePath()): WasmExports {
  let memory: WasmMemory;
  try {
    memory = new WA.Memory({ initial: INITIAL_PAGES, maximum: MAX_PAGES, shared: true });
  } catch (error) {
    throw new Error(`wasm backend: cannot create a shared WebAssembly.Memory (needs Node >= 16.4 with SharedArrayBuffer): ${error instanceof Error ? error.message : String(error)}`);
  }
  const instance = new WA.Instance(compileModule(path), { env: { memory } });
  const exports = instance.exports as unknown as WasmExports;
  if (!(exports.memory instanceof WA.Memory) || typeof exports.gemm !== 'function') {
    throw new Error(`wasm module ${path} does not export densetrain's kernels; ${WASM_REMEDY}`);
  }
  return exports;
}

const u32 = (x: number): number => x >>> 0;

/** A tensor in the module's linear memory. */
export class WasmTensor implements Tensor {
  readonly length: number;
  readonly #memory: WasmMemory;
  #ptr: number;
  #view: Float32Array;

  constructor(memory: WasmMemory, ptr: number, length: number) {
    this.#memory = memory;
    this.#ptr = ptr;
    this.length = length;
    this.#view = new Float32Array(memory.buffer, ptr, length);
  }

  /** Byte offset in the module's memory (0 once freed). */
  get ptr(): number {
    return this.#ptr;
  }

  get freed(): boolean {
    return this.#ptr === 0;
  }

  get data(): Float32Array {
    if (this.#ptr === 0) throw new RangeError('tensor has been freed');
    const buffer = this.#memory.buffer;
    // Growth gives the shared memory a new, longer buffer; views of the old one stop short of it.
    if (this.#view.buffer !== buffer) this.#view = new Float32Array(buffer, this.#ptr, this.length);
    return this.#view;
  }

  /** @internal Marks the tensor freed and returns its pointer. */
  release(): number {
    const ptr = this.#ptr;
    this.#ptr = 0;
    this.#view = new Float32Array(0);
    return ptr;
  }
}

/** Largest tensor: 2^28 float32 elements (1 GiB), within the 4 GiB memory. */
const MAX_LENGTH = 2 ** 28;

export interface WasmBackend {
  kernels: Kernels;
  exports: WasmExports;
  /** The worker threads (tests observe them; dispose() ends them). */
  pool: WasmThreadPool;
  /** Terminates the worker threads: the backend then runs on the calling thread alone. */
  dispose(): void;
}

/**
 * bf16 on wasm: the same rounding as the reference, applied to the packed operands; no speed-up
 * (SIMD128 has no bf16 arithmetic), only the same numerics as the native bf16 kernels.
 */
const WASM_BF16: Bf16Support = Object.freeze({ available: true, detail: 'simd128: operands rounded to bfloat16 while packing, f32 multiply-add (no speed-up)' });

/** The gemm packing scratch of one thread, in floats (assembly/gemm.ts: MC*KC, KC*NC, MR*NR). */
const SCRATCH_FLOATS = [64 * 512, 512 * 512, 4 * 8] as const;

/**
 * A wasm backend with its own module instance (tests use this to observe memory). threads:
 * DENSETRAIN_THREADS, else every CPU this process may use (setThreads changes it). Long because
 * it is the RawKernels object: one short method per kernel, each passing its tensors' pointers.
 */
export function createWasmBackend(path: string = preferredWasmModulePath(), threads: number = defaultThreads()): WasmBackend {
  const wasm = instantiateWasm(path);
  const memory = wasm.memory;
  const all = new WeakSet<WasmTensor>();
  let bytes = 0;

  if (!wasm.gemmInit()) throw new Error('wasm backend: cannot allocate GEMM scratch memory');
  const isa = wasm.RELAXED_SIMD?.value === 1 ? 'simd128-relaxed' : 'simd128';
  const pool = new WasmThreadPool(
    compileModule(path),
    memory,
    {
      alloc() {
        const ptrs = SCRATCH_FLOATS.map((floats) => u32(wasm.alloc(floats * 4)));
        if (ptrs.includes(0)) throw new RangeError('wasm backend out of memory for a worker thread\'s GEMM scratch');
        return ptrs as [number, number, number];
      },
      free: (scratch) => scratch.forEach((p) => wasm.free(p)),
    },
    threads,
  );

  /**
   * Calls the export `op` with `whole`, or, when `parts` > 1, with each argument list cut(parts)
   * gives, shared between this thread and the workers. Returns the one call's result, or the
   * smallest result of the chunks this thread ran (gemmStrided: 0 = no scratch memory; the
   * kernels that return a sum are never split).
   */
  const dispatch = (op: WorkerOp, parts: number, whole: readonly number[], cut: (parts: number) => number[][]): number => {
    const fn = wasm[op] as unknown as (...args: readonly number[]) => number;
    if (parts <= 1) return fn(...whole);
    let result = Number.POSITIVE_INFINITY;
    pool.run(op, cut(parts), (args) => {
      result = Math.min(result, fn(...args));
    });
    return result;
  };
  /** Parts for an element-wise kernel over `elements` elements (1 below the size where threads pay). */
  const elementSplit = (elements: number): number => (elementParts(elements, pool.threads) > 1 ? elementParts(elements, pool.parts()) : 1);

  /** gemmStrided over the whole of C, split over the threads when it is big enough. */
  const gemm = (transA: boolean, transB: boolean, m: number, n: number, k: number, alpha: number, a: number, b: number, beta: number, c: number, bf16: boolean): void => {
    if (m === 0 || n === 0) return; // C is empty: nothing to write
    const parts = gemmChunks(2 * m * n * k, pool.threads, () => pool.parts());
    const [whole] = gemmParts(1, transA, transB, m, n, k, alpha, a, b, beta, c, bf16);
    const ok = dispatch('gemmStrided', parts, whole!, (p) => gemmParts(p, transA, transB, m, n, k, alpha, a, b, beta, c, bf16));
    if (!ok) throw new RangeError('wasm backend out of memory for GEMM scratch');
  };

  /** biasActivation split by rows. */
  const biasActivation = (rows: number, cols: number, z: number, bias: number, act: Activation, h: number): void => {
    const [kind, alpha, slope] = actArgs(act);
    dispatch('biasActivation', elementSplit(rows * cols), [rows, cols, z, bias, kind, alpha, slope, h], (p) =>
      rowRanges(rows, p).map(([lo, hi]) => [hi - lo, cols, z + lo * cols * 4, bias, kind, alpha, slope, h + lo * cols * 4]),
    );
  };

  const ptr = (t: Tensor): number => (t as WasmTensor).ptr;
  const optPtr = (t: Tensor | null): number => (t === null ? 0 : (t as WasmTensor).ptr);
  const actArgs = (act: Activation): [kind: number, alpha: number, slope: number] => {
    switch (act.kind) {
      case 'leaky_relu':
        return [ACTIVATION_CODES.leaky_relu, act.alpha, 0];
      case 'prelu':
        return [ACTIVATION_CODES.prelu, 0, ptr(act.slope)];
      default:
        return [ACTIVATION_CODES[act.kind], 0, 0];
    }
  };

  const raw: RawKernels = {
    name: 'wasm',
    maxThreads: MAX_THREADS,
    maxLength: MAX_LENGTH,
    info: () => ({ backend: 'wasm', isa, threads: pool.threads, bf16: WASM_BF16 }),
    setThreads: (n) => pool.setThreads(n),
    owns: (t: unknown): t is Tensor => t instanceof WasmTensor && all.has(t),

    alloc(length) {
      const p = u32(wasm.alloc(length * 4));
      if (p === 0) {
        throw new RangeError(
          `wasm backend out of memory: cannot allocate ${length} elements (${memory.buffer.byteLength} bytes of wasm memory in use, 4 GiB maximum)`,
        );
      }
      const t = new WasmTensor(memory, p, length);
      all.add(t);
      bytes += length * 4;
      return t;
    },
    free(t) {
      const tensor = t as WasmTensor;
      wasm.free(tensor.release());
      bytes -= tensor.length * 4;
    },
    allocatedBytes: () => bytes,

    gemm(transA, transB, m, n, k, alpha, a, b, beta, c, precision) {
      gemm(transA, transB, m, n, k, alpha, ptr(a), ptr(b), beta, ptr(c), precision === 'bf16');
    },

    biasActivation(rows, cols, z, bias, act, h) {
      biasActivation(rows, cols, ptr(z), optPtr(bias), act, ptr(h));
    },

    // Composed from the module's gemm and biasActivation (two passes over z, no wasm export of
    // its own): at these sizes the GEMM dominates and a fused SIMD128 epilogue is not yet written.
    denseForward(rows, inF, outF, x, w, bias, act, z, h, precision) {
      gemm(false, true, rows, outF, inF, 1, ptr(x), ptr(w), 0, ptr(z), precision === 'bf16');
      biasActivation(rows, outF, ptr(z), optPtr(bias), act, ptr(h));
    },

    activationBackward(rows, cols, act, z, h, dh, dz, dSlope) {
      const [kind, alpha, slope] = actArgs(act);
      // prelu also sums its slope gradient over every element: one thread, one summation order.
      const parts = act.kind === 'prelu' ? 1 : elementSplit(rows * cols);
      const [zp, hp, dhp, dzp] = [ptr(z), ptr(h), ptr(dh), ptr(dz)];
      const slopeGrad = dispatch('activationBackward', parts, [rows, cols, kind, alpha, slope, zp, hp, dhp, dzp], (p) =>
        rowRanges(rows, p).map(([lo, hi]) => {
          const at = lo * cols * 4;
          return [hi - lo, cols, kind, alpha, slope, zp + at, hp + at, dhp + at, dzp + at];
        }),
      );
      if (act.kind === 'prelu' && dSlope) dSlope.data[0] = slopeGrad;
    },

    biasGrad(rows, cols, dz, db) {
      wasm.biasGrad(rows, cols, ptr(dz), ptr(db));
    },

    softmaxCrossEntropy(rows, cols, logits, labels, probs, dlogits) {
      return wasm.softmaxCrossEntropy(rows, cols, ptr(logits), ptr(labels), ptr(probs), optPtr(dlogits));
    },

    softmax(rows, cols, logits, probs) {
      wasm.softmax(rows, cols, ptr(logits), ptr(probs));
    },

    sgdStep(n, param, grad, velocity, lr, momentum, nesterov, l2) {
      const [pp, gp, vp] = [ptr(param), ptr(grad), optPtr(velocity)];
      dispatch('sgdStep', elementSplit(n), [n, pp, gp, vp, lr, momentum, nesterov ? 1 : 0, l2], (parts) =>
        flatRanges(n, parts).map(([lo, hi]) => [hi - lo, pp + lo * 4, gp + lo * 4, vp === 0 ? 0 : vp + lo * 4, lr, momentum, nesterov ? 1 : 0, l2]),
      );
    },

    adamStep(n, param, grad, m, v, lr, beta1, beta2, eps, l2, step) {
      // The bias corrections exactly as the reference computes them (float64).
      const stepSize = lr / (1 - beta1 ** step);
      const sqrtBias2 = Math.sqrt(1 - beta2 ** step);
      const [pp, gp, mp, vp] = [ptr(param), ptr(grad), ptr(m), ptr(v)];
      dispatch('adamStep', elementSplit(n), [n, pp, gp, mp, vp, stepSize, beta1, beta2, eps, l2, sqrtBias2], (parts) =>
        flatRanges(n, parts).map(([lo, hi]) => [hi - lo, pp + lo * 4, gp + lo * 4, mp + lo * 4, vp + lo * 4, stepSize, beta1, beta2, eps, l2, sqrtBias2]),
      );
    },

    sumSquares(n, x) {
      return wasm.sumSquares(n, ptr(x));
    },

    // The dataset's bytes live in JavaScript memory, not in the module's linear memory, and
    // copying 47 MB of Fashion-MNIST in would cost more memory than the loop costs time: the
    // tensor's view is filled from JavaScript, by the same word-at-a-time loop fillBatch uses.
    gatherRows(count, features, bytes, indices, start, table, out) {
      gatherBytesJs(count, features, bytes, indices, start, table, out.data);
    },
  };
  return { kernels: withChecks(raw), exports: wasm, pool, dispose: () => pool.dispose() };
}

/** The wasm backend (index.ts loads it once per process). Throws, first line saying why, if it cannot load. */
export function loadWasmKernels(): Kernels {
  return createWasmBackend().kernels;
}
