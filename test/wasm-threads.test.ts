/**
 * The wasm backend's worker threads (src/kernels/wasm-pool.ts):
 * - split GEMMs (every transpose, row and column splits, awkward shapes, beta != 0, bf16) and
 *   split element-wise kernels give the same bits at 1, 2, 3 and 5 threads, and a model's
 *   gradients too; the GEMM stays within the float32 error bound of a float64 product;
 * - a worker that traps, fails to start or exits gives a clear error, never a hang;
 * - dispose() ends the workers, idle workers do not keep the process alive, and
 *   DENSETRAIN_THREADS sets the thread count.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { packageRoot } from '../src/kernels/paths.js';
import type { Activation, Kernels, Precision, Tensor } from '../src/kernels/types.js';
import { WA } from '../src/kernels/wasm-api.js';
import { CHUNKS_PER_THREAD, WasmThreadPool } from '../src/kernels/wasm-pool.js';
import { createWasmBackend, wasmModulePath, type WasmBackend, type WasmTensor } from '../src/kernels/wasm.js';
import { Mlp } from '../src/model/mlp.js';
import { Rng } from '../src/rng.js';
import { TestRng } from './helpers/random.js';

const THREADS = [1, 2, 3, 5] as const;
const backends = new Map<number, WasmBackend>();

/** Waits until the pool's workers have all started (they start without blocking the caller). */
async function started(backend: WasmBackend): Promise<void> {
  const wanted = backend.pool.threads - 1;
  backend.pool.parts();
  while (backend.pool.running < wanted) {
    await new Promise((resolve) => setTimeout(resolve, 20));
    backend.pool.parts(); // throws if a worker failed to start
  }
}

function exited(worker: Worker): Promise<number> {
  return new Promise((resolve) => worker.once('exit', resolve));
}

beforeAll(async () => {
  for (const t of THREADS) {
    const backend = createWasmBackend(wasmModulePath(), t);
    backends.set(t, backend);
    await started(backend);
  }
});

afterAll(() => {
  for (const backend of backends.values()) backend.dispose();
});

const bits = (a: Float32Array, n = a.length): number[] => Array.from(new Uint32Array(a.buffer, a.byteOffset, n));

function upload(k: Kernels, values: Float32Array): Tensor {
  const t = k.alloc(values.length);
  t.data.set(values);
  return t;
}

interface GemmCase {
  m: number;
  n: number;
  k: number;
  ta: boolean;
  tb: boolean;
  alpha: number;
  beta: number;
  precision: Precision;
}

/** C after the GEMM on `kernels`, with the same A, B and starting C for every backend. */
function runGemm(kernels: Kernels, g: GemmCase, seed: number): { c: Float32Array; a: Float32Array; b: Float32Array } {
  const rng = new TestRng(seed);
  const a = rng.floats(g.m * g.k);
  const b = rng.floats(g.k * g.n);
  const c0 = rng.floats(g.m * g.n);
  const [ta, tb, tc] = [upload(kernels, a), upload(kernels, b), upload(kernels, c0)];
  kernels.gemm(g.ta, g.tb, g.m, g.n, g.k, g.alpha, ta, tb, g.beta, tc, g.precision);
  const c = tc.data.slice();
  for (const t of [ta, tb, tc]) kernels.free(t);
  return { c, a, b };
}

const GEMMS: GemmCase[] = [
  // The training shapes (forward NT, backward NN and TN) of 784-1024-512-64-10 at batch 256.
  { m: 256, n: 1024, k: 784, ta: false, tb: true, alpha: 1, beta: 0, precision: 'fp32' },
  { m: 256, n: 784, k: 1024, ta: false, tb: false, alpha: 1, beta: 0, precision: 'fp32' },
  { m: 1024, n: 784, k: 256, ta: true, tb: false, alpha: 1, beta: 0, precision: 'fp32' },
  // Row splits (m > n), awkward sizes, every transpose, alpha and beta, bf16.
  { m: 2003, n: 8, k: 300, ta: true, tb: true, alpha: 1.5, beta: 0.5, precision: 'fp32' },
  { m: 517, n: 61, k: 131, ta: false, tb: false, alpha: -0.75, beta: 1, precision: 'fp32' },
  { m: 129, n: 131, k: 257, ta: true, tb: false, alpha: 1, beta: 2, precision: 'fp32' },
  { m: 3, n: 4099, k: 700, ta: false, tb: true, alpha: 1, beta: 0, precision: 'fp32' },
  { m: 300, n: 301, k: 129, ta: true, tb: true, alpha: 0.5, beta: 0, precision: 'bf16' },
];

describe('wasm worker threads: same bits at any thread count', () => {
  it('every backend runs its worker threads', () => {
    for (const t of THREADS) {
      const backend = backends.get(t)!;
      expect(backend.kernels.info().threads).toBe(t);
      expect(backend.pool.parts()).toBe(t === 1 ? 1 : t * CHUNKS_PER_THREAD);
      expect(backend.pool.running).toBe(t - 1);
    }
  });

  it('split GEMMs are bit-identical at 1, 2, 3 and 5 threads and within the float32 bound of float64', () => {
    GEMMS.forEach((g, i) => {
      const one = runGemm(backends.get(1)!.kernels, g, 100 + i);
      for (const t of THREADS.slice(1)) {
        const { c } = runGemm(backends.get(t)!.kernels, g, 100 + i);
        expect(bits(c), `${JSON.stringify(g)} at ${t} threads`).toEqual(bits(one.c));
      }
      if (g.precision !== 'fp32') return;
      // A few entries against float64: |error| <= gamma(k + 2) * (|alpha| sum |a||b| + |beta c|).
      const rng = new TestRng(100 + i);
      rng.floats(g.m * g.k);
      rng.floats(g.k * g.n);
      const c0 = rng.floats(g.m * g.n);
      const u = 2 ** -24;
      const gamma = ((g.k + 2) * u) / (1 - (g.k + 2) * u);
      for (const [r, col] of [[0, 0], [g.m - 1, g.n - 1], [g.m >> 1, g.n >> 1]] as const) {
        let exact = 0;
        let size = 0;
        for (let p = 0; p < g.k; p++) {
          const av = one.a[g.ta ? p * g.m + r : r * g.k + p]!;
          const bv = one.b[g.tb ? col * g.k + p : p * g.n + col]!;
          exact += av * bv;
          size += Math.abs(av * bv);
        }
        const cv = c0[r * g.n + col]!;
        const want = g.alpha * exact + g.beta * cv;
        const bound = gamma * (Math.abs(g.alpha) * size + Math.abs(g.beta * cv)) + 1e-30;
        expect(Math.abs(one.c[r * g.n + col]! - want), `${JSON.stringify(g)} (${r}, ${col})`).toBeLessThanOrEqual(bound);
      }
    });
  });

  it('split element-wise kernels (bias + activation, backward, SGD, Adam) are bit-identical at every thread count', () => {
    const rows = 514;
    const cols = 257; // odd: part starts fall inside a SIMD row only if the split is wrong
    const n = rows * cols;
    const activations = (k: Kernels): Activation[] => {
      const slope = k.alloc(1);
      slope.data[0] = 0.25;
      return [{ kind: 'relu' }, { kind: 'leaky_relu', alpha: 0.1 }, { kind: 'prelu', slope }, { kind: 'sigmoid' }, { kind: 'tanh' }, { kind: 'linear' }];
    };
    const results = THREADS.map((t) => {
      const k = backends.get(t)!.kernels;
      const rng = new TestRng(7);
      const out: number[][] = [];
      for (const act of activations(k)) {
        for (const withBias of [true, false]) {
          const z = upload(k, rng.floats(n, 3));
          const bias = withBias ? upload(k, rng.floats(cols)) : null;
          const h = k.alloc(n);
          k.biasActivation(rows, cols, z, bias, act, h);
          const dh = upload(k, rng.floats(n));
          const dz = k.alloc(n);
          const dSlope = k.alloc(1);
          k.activationBackward(rows, cols, act, z, h, dh, dz, act.kind === 'prelu' ? dSlope : null);
          out.push(bits(z.data), bits(h.data), bits(dz.data), bits(dSlope.data));
        }
      }
      const size = 300_001;
      const [param, grad, m, v, velocity] = [rng.floats(size), rng.floats(size), rng.floats(size, 0.1), rng.floats(size, 0.01).map(Math.abs), rng.floats(size)].map((x) => upload(k, x)) as [Tensor, Tensor, Tensor, Tensor, Tensor];
      k.adamStep(size, param, grad, m, v, 1e-3, 0.9, 0.999, 1e-8, 1e-4, 3);
      k.sgdStep(size, param, grad, velocity, 0.05, 0.9, true, 1e-4);
      out.push(bits(param.data), bits(m.data), bits(v.data), bits(velocity.data));
      return out;
    });
    for (let i = 1; i < THREADS.length; i++) {
      results[i]!.forEach((r, j) => expect(r, `array ${j} at ${THREADS[i]} threads`).toEqual(results[0]![j]));
    }
  });

  it("a model's loss and gradients (784-128-64-10, batch 256) are bit-identical at 1 and 3 threads", () => {
    const grads = [1, 3].map((t) => {
      const kernels = backends.get(t)!.kernels;
      const model = new Mlp({ layers: [784, 128, 64, 10], activation: 'tanh', alpha: 0.01 }, { kernels, capacity: 256, init: 'auto', rng: new Rng(9) });
      try {
        const rng = new TestRng(11);
        model.inputTensor.data.set(rng.floats(256 * 784, 1));
        for (let i = 0; i < 256; i++) model.labelTensor.data[i] = i % 10;
        const loss = model.computeGradients(256, 1e-4);
        return [[loss], ...model.parameters.map((p) => bits(p.grad.data, p.size))];
      } finally {
        model.dispose();
      }
    });
    expect(grads[1]).toEqual(grads[0]);
  });
});

describe('wasm worker threads: failures are errors, never hangs', () => {
  it('a trap in a worker is thrown by the calling thread, naming the worker, and the backend keeps working', () => {
    const backend = backends.get(2)!;
    const k = backend.kernels;
    const [a, b, c] = [k.alloc(64 * 64), k.alloc(64 * 64), k.alloc(64 * 64)] as WasmTensor[];
    const whole = [0, 0, 64, 64, 64, 1, a.ptr, 64, b.ptr, 64, 0, c.ptr, 64, 0];
    const outOfBounds = [...whole];
    outOfBounds[11] = 0xfff00000; // C far beyond the memory's current end: the store traps
    // Every chunk traps in a worker; the calling thread sleeps 50 ms on each chunk it claims
    // (running none), so the worker claims some of the eight.
    const nap = new Int32Array(new SharedArrayBuffer(4));
    const chunks = Array.from({ length: 2 * CHUNKS_PER_THREAD }, () => outOfBounds);
    expect(() => backend.pool.run('gemmStrided', chunks, () => void Atomics.wait(nap, 0, 0, 50))).toThrow(/wasm worker thread 0: gemmStrided failed: RuntimeError/);
    // The next job sees no stale failure.
    backend.pool.run('gemmStrided', [whole, whole], (args) => expect(backend.exports.gemmStrided(...args)).toBe(1));
    const g = GEMMS[0]!;
    expect(bits(runGemm(k, g, 1).c)).toEqual(bits(runGemm(backends.get(1)!.kernels, g, 1).c));
    for (const t of [a, b, c]) k.free(t);
  });

  it('a worker that exits makes the next split kernel throw; setThreads starts fresh workers', async () => {
    const backend = createWasmBackend(wasmModulePath(), 2);
    try {
      await started(backend);
      const [worker] = backend.pool.workersForTest;
      const exit = exited(worker!);
      await worker!.terminate();
      await exit;
      expect(() => runGemm(backend.kernels, GEMMS[0]!, 1)).toThrow(/wasm worker thread 0 exited unexpectedly \(exit code 1\)/);
      backend.kernels.setThreads(1);
      expect(bits(runGemm(backend.kernels, GEMMS[0]!, 1).c)).toEqual(bits(runGemm(backends.get(1)!.kernels, GEMMS[0]!, 1).c));
      backend.kernels.setThreads(2);
      await started(backend);
      expect(bits(runGemm(backend.kernels, GEMMS[0]!, 1).c)).toEqual(bits(runGemm(backends.get(1)!.kernels, GEMMS[0]!, 1).c));
    } finally {
      backend.dispose();
    }
  });

  it('a worker that cannot instantiate the module says why', async () => {
    const module = new WA.Module(readFileSync(wasmModulePath()));
    const tooSmall = new WA.Memory({ initial: 1, maximum: 1, shared: true }); // the module needs 2 pages
    const pool = new WasmThreadPool(module, tooSmall, { alloc: () => [0, 0, 0], free: () => undefined }, 2);
    try {
      let error: unknown = null;
      for (let i = 0; i < 3000 && error === null; i++) {
        try {
          pool.parts();
        } catch (e) {
          error = e;
        }
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      expect(String(error)).toMatch(/wasm worker thread 0 could not start: cannot instantiate the module: LinkError/);
    } finally {
      pool.dispose();
    }
  });

  it('a missing worker script is a clear error', () => {
    const module = new WA.Module(readFileSync(wasmModulePath()));
    const memory = new WA.Memory({ initial: 2, maximum: 65536, shared: true });
    const pool = new WasmThreadPool(module, memory, { alloc: () => [0, 0, 0], free: () => undefined }, 2, '/nonexistent/wasm-worker.js');
    expect(() => pool.parts()).toThrow('the wasm worker script /nonexistent/wasm-worker.js is missing');
  });
});

describe('wasm worker threads: lifetime', () => {
  it('kernels run right after the workers are asked to start, before any can claim a chunk: same bits', () => {
    const backend = createWasmBackend(wasmModulePath(), 3);
    try {
      // Synchronous from creation to result: the calling thread claims whatever the booting workers do not.
      for (const [i, g] of GEMMS.entries()) {
        expect(bits(runGemm(backend.kernels, g, 200 + i).c)).toEqual(bits(runGemm(backends.get(1)!.kernels, g, 200 + i).c));
      }
    } finally {
      backend.dispose();
    }
  });

  it('dispose() ends the workers and the backend goes on in one thread', async () => {
    const backend = createWasmBackend(wasmModulePath(), 3);
    await started(backend);
    const exits = backend.pool.workersForTest.map(exited);
    backend.dispose();
    expect(await Promise.all(exits)).toHaveLength(2);
    expect(backend.kernels.info().threads).toBe(1);
    expect(bits(runGemm(backend.kernels, GEMMS[0]!, 1).c)).toEqual(bits(runGemm(backends.get(1)!.kernels, GEMMS[0]!, 1).c));
  });

  const script = (body: string): string => `
    const { selectKernels } = await import(${JSON.stringify(join(packageRoot(), 'dist', 'src', 'kernels', 'index.js'))});
    ${body}`;
  const node = (code: string, env: Record<string, string> = {}) =>
    spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, ...env } });

  it('idle workers do not keep the process alive, and DENSETRAIN_THREADS sets the count', () => {
    const result = node(
      script(`
        const { kernels, info } = selectKernels({ backend: 'wasm' });
        const [a, b, c] = [kernels.alloc(256 * 784), kernels.alloc(784 * 256), kernels.alloc(256 * 256)];
        kernels.gemm(false, false, 256, 256, 784, 1, a, b, 0, c);
        await new Promise((resolve) => setTimeout(resolve, 500));
        kernels.gemm(false, false, 256, 256, 784, 1, a, b, 0, c);
        console.log('threads', info.threads);`),
      { DENSETRAIN_THREADS: '3' },
    );
    expect(result.stderr).toBe('');
    expect(result.status).toBe(0); // a hang would be killed by the timeout: status null
    expect(result.stdout.trim()).toBe('threads 3');
  });
});
