/**
 * The kernels benchmark: GEMM GFLOP/s per backend, shape and transpose form, and the throughput
 * (elements/s) of fused bias + activation and softmax cross-entropy. Timings are tinybench
 * medians (latency p50), never means.
 *
 * GEMM FORMS, with our sgemm semantics (row-major, C = op(A)·op(B), C is M x N, inner size K):
 *   NT  A stored [M,K], B stored [N,K]   forward  Z = X·Wᵀ    (X [batch,in], W [out,in])
 *   NN  A stored [M,K], B stored [K,N]   backward dX = dZ·W   (dZ [batch,out], W [out,in])
 *   TN  A stored [K,M], B stored [K,N]   backward dW = dZᵀ·X  (dZ [batch,out], X [batch,in])
 * One GEMM is 2·M·N·K floating-point operations.
 *
 * Each GEMM row also carries the peak its backend is compared with (bench/peak.ts: cores x
 * flops per cycle for the reported ISA x clock; wasm: the SIMD128 mul+add ceiling; reference:
 * none) and, filled in by bench/openblas.ts, numpy/OpenBLAS at the row's thread count.
 */
import { Bench } from 'tinybench';
import { tryLoadBackend } from '../kernels/index.js';
import type { Activation, BackendName, Kernels, Tensor } from '../kernels/types.js';
import { type PeakModel, peakFor } from './peak.js';

export type GemmForm = 'NN' | 'NT' | 'TN';

export const GEMM_FORMS: Record<GemmForm, { transA: boolean; transB: boolean; storage: string; use: string }> = {
  NT: { transA: false, transB: true, storage: 'A [M,K], B [N,K]', use: 'forward Z = X·Wᵀ' },
  NN: { transA: false, transB: false, storage: 'A [M,K], B [K,N]', use: 'backward dX = dZ·W' },
  TN: { transA: true, transB: false, storage: 'A [K,M], B [K,N]', use: 'backward dW = dZᵀ·X' },
};

/** (M, K, N): C is M x N, inner size K. */
export const GEMM_SHAPES: readonly [number, number, number][] = [
  [128, 784, 128],
  [128, 128, 64],
  [128, 64, 10],
  [256, 784, 1024],
  [256, 1024, 512],
  [512, 512, 512],
  [1024, 1024, 1024],
];

/** The reference backend (plain loops, ~0.1-1 GFLOP/s) is timed only up to this many flops per call. */
export const REFERENCE_MAX_FLOPS = 64e6;

export interface BenchRow {
  backend: BackendName;
  isa: string;
  threads: number;
  kernel: string;
  /** GEMM form, or the activation / variant. */
  variant: string;
  /** 'MxKxN' for GEMM, 'rows x cols' otherwise. */
  shape: string;
  /** Median time per call in milliseconds (null when skipped). */
  medianMs: number | null;
  samples: number;
  gflops: number | null;
  elementsPerSec: number | null;
  note?: string;
  /** GEMM: the peak this backend is compared with, GFLOP/s (null: none, e.g. reference). */
  peakGflops?: number | null;
  /** GEMM: gflops / peakGflops. */
  fractionOfPeak?: number | null;
  /** GEMM: numpy matmul (OpenBLAS) GFLOP/s at this row's thread count (bench/openblas.ts). */
  openblasGflops?: number | null;
  /** GEMM: gflops / openblasGflops. */
  openblasRatio?: number | null;
}

export interface KernelBenchOptions {
  backends: BackendName[];
  quick: boolean;
  /** GEMM shapes (M, K, N) to time instead of GEMM_SHAPES. */
  shapes?: readonly (readonly [number, number, number])[];
  /** Progress lines (one per task). */
  log?: (line: string) => void;
  /** Peaks per backend (bench/peak.ts), for each GEMM row's fraction of peak. */
  peak?: PeakModel;
}

function fill(t: Tensor, n: number, seed: number): void {
  // A cheap deterministic pattern in [-1, 1): content does not affect the timing of these kernels
  // except through denormals, which this avoids.
  const d = t.data;
  let x = seed >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    d[i] = x / 2 ** 31 - 1;
  }
}

function timing(quick: boolean, flops: number): { time: number; iterations: number; warmupTime: number; warmupIterations: number } {
  // Big calls: fewer iterations (the median of 3-10 long calls is stable); small calls: by time.
  const big = flops > 1e9;
  return quick
    ? { time: 60, iterations: big ? 3 : 5, warmupTime: 20, warmupIterations: 1 }
    : { time: 400, iterations: big ? 7 : 15, warmupTime: 100, warmupIterations: big ? 2 : 5 };
}

async function median(name: string, fn: () => void, t: ReturnType<typeof timing>): Promise<{ ms: number; samples: number }> {
  const bench = new Bench({ name, ...t, throws: true });
  bench.add(name, fn);
  const [task] = await bench.run();
  const result = task?.result;
  if (!result || (result.state !== 'completed' && result.state !== 'aborted-with-statistics')) {
    throw new Error(`benchmark ${name} did not complete (${result?.state ?? 'no result'})`);
  }
  return { ms: result.latency.p50, samples: task.runs };
}

/** A spot check that the timed kernel computes something sensible (a broken kernel is not benchmarked). */
function checkGemm(k: Kernels, form: GemmForm, M: number, K: number, N: number, a: Tensor, b: Tensor, c: Tensor): void {
  const { transA, transB } = GEMM_FORMS[form];
  k.gemm(transA, transB, M, N, K, 1, a, b, 0, c);
  const A = a.data;
  const B = b.data;
  const C = c.data;
  for (const [i, j] of [
    [0, 0],
    [M - 1, N - 1],
    [M >> 1, N >> 1],
  ] as const) {
    let s = 0;
    let mag = 0;
    for (let p = 0; p < K; p++) {
      const x = (transA ? A[p * M + i] : A[i * K + p])! * (transB ? B[j * K + p] : B[p * N + j])!;
      s += x;
      mag += Math.abs(x);
    }
    const got = C[i * N + j]!;
    if (!(Math.abs(got - s) <= 1e-5 * mag + 1e-30)) {
      throw new Error(`${k.name} gemm ${form} ${M}x${K}x${N}: C[${i},${j}] = ${got}, expected ${s}; not benchmarking a wrong kernel`);
    }
  }
}

export async function runKernelBench(options: KernelBenchOptions): Promise<BenchRow[]> {
  const rows: BenchRow[] = [];
  const log = options.log ?? (() => undefined);
  for (const name of options.backends) {
    const loaded = tryLoadBackend(name);
    if (!loaded.ok) throw new Error(`the ${name} backend cannot load: ${loaded.reason}`);
    const k = loaded.kernels;
    const info = k.info();
    const base = { backend: name, isa: info.isa, threads: info.threads };
    const peakGflops = peakFor(options.peak, name);

    for (const [M, K, N] of options.shapes ?? GEMM_SHAPES) {
      const flops = 2 * M * N * K;
      const shape = `${M}x${K}x${N}`;
      for (const form of ['NT', 'NN', 'TN'] as GemmForm[]) {
        if (name === 'reference' && flops > REFERENCE_MAX_FLOPS) {
          rows.push({ ...base, kernel: 'gemm', variant: form, shape, medianMs: null, samples: 0, gflops: null, elementsPerSec: null, note: `skipped: reference is timed only up to ${REFERENCE_MAX_FLOPS / 1e6} MFLOP per call` });
          continue;
        }
        const [a, b, c] = [k.alloc(M * K), k.alloc(K * N), k.alloc(M * N)];
        try {
          fill(a, M * K, 1);
          fill(b, K * N, 2);
          checkGemm(k, form, M, K, N, a, b, c);
          const { transA, transB } = GEMM_FORMS[form];
          const t = timing(options.quick || name === 'reference', flops);
          const r = await median(`${name} gemm ${form} ${shape}`, () => k.gemm(transA, transB, M, N, K, 1, a, b, 0, c), t);
          const gflops = flops / (r.ms * 1e-3) / 1e9;
          const fractionOfPeak = peakGflops === null ? null : gflops / peakGflops;
          rows.push({ ...base, kernel: 'gemm', variant: form, shape, medianMs: r.ms, samples: r.samples, gflops, elementsPerSec: null, peakGflops, fractionOfPeak });
          log(`${name} gemm ${form} ${shape}: ${r.ms.toFixed(3)} ms, ${gflops.toFixed(2)} GFLOP/s${fractionOfPeak === null ? '' : ` (${(fractionOfPeak * 100).toFixed(0)}% of peak)`}`);
        } finally {
          for (const t of [a, b, c]) k.free(t);
        }
      }
    }

    // Fused bias + activation on a hidden layer's activations (batch 256, 1024 units).
    const [R, C] = [256, 1024];
    for (const kind of ['relu', 'sigmoid', 'tanh'] as const) {
      const [z, bias, h] = [k.alloc(R * C), k.alloc(C), k.alloc(R * C)];
      try {
        fill(z, R * C, 3);
        const act: Activation = { kind };
        // Every call adds the bias to z in place; a tiny bias keeps z in [-1, 1] over thousands of
        // calls, so repeated calls time the same work.
        bias.data.fill(1e-7);
        const r = await median(`${name} biasActivation ${kind}`, () => k.biasActivation(R, C, z, bias, act, h), timing(options.quick, 0));
        rows.push({ ...base, kernel: 'biasActivation', variant: kind, shape: `${R}x${C}`, medianMs: r.ms, samples: r.samples, gflops: null, elementsPerSec: (R * C) / (r.ms * 1e-3) });
        log(`${name} biasActivation ${kind}: ${r.ms.toFixed(3)} ms`);
      } finally {
        for (const t of [z, bias, h]) k.free(t);
      }
    }

    // A dense layer's forward pass (the first hidden layer of 784-1024-..., batch 256): denseForward
    // (GEMM with the bias + activation epilogue fused) next to gemm NT + biasActivation.
    {
      const [DR, DI, DO] = [256, 784, 1024];
      const flops = 2 * DR * DI * DO;
      const shape = `${DR}x${DI}->${DO}`;
      if (name === 'reference' && flops > REFERENCE_MAX_FLOPS) {
        rows.push({ ...base, kernel: 'denseForward', variant: 'relu', shape, medianMs: null, samples: 0, gflops: null, elementsPerSec: null, note: `skipped: reference is timed only up to ${REFERENCE_MAX_FLOPS / 1e6} MFLOP per call` });
      } else {
        const [x, w, bias, z, h] = [k.alloc(DR * DI), k.alloc(DO * DI), k.alloc(DO), k.alloc(DR * DO), k.alloc(DR * DO)];
        try {
          fill(x, DR * DI, 5);
          fill(w, DO * DI, 6);
          fill(bias, DO, 7);
          for (const kind of ['relu', 'tanh'] as const) {
            const act: Activation = { kind };
            for (const fused of [true, false]) {
              const variant = fused ? kind : `${kind}, gemm + biasActivation`;
              const fn = fused
                ? () => k.denseForward(DR, DI, DO, x, w, bias, act, z, h)
                : () => {
                    k.gemm(false, true, DR, DO, DI, 1, x, w, 0, z);
                    k.biasActivation(DR, DO, z, bias, act, h);
                  };
              const r = await median(`${name} denseForward ${variant}`, fn, timing(options.quick, flops));
              const gflops = flops / (r.ms * 1e-3) / 1e9;
              rows.push({ ...base, kernel: 'denseForward', variant, shape, medianMs: r.ms, samples: r.samples, gflops, elementsPerSec: null });
              log(`${name} denseForward ${variant} ${shape}: ${r.ms.toFixed(3)} ms, ${gflops.toFixed(2)} GFLOP/s`);
            }
          }
        } finally {
          for (const t of [x, w, bias, z, h]) k.free(t);
        }
      }
    }

    // Softmax cross-entropy: MNIST's 10 classes at batch 256, and a wide 1024 x 1000 case.
    for (const [rs, cs] of [
      [256, 10],
      [1024, 1000],
    ] as const) {
      const [logits, labels, probs, dl] = [k.alloc(rs * cs), k.alloc(rs), k.alloc(rs * cs), k.alloc(rs * cs)];
      try {
        fill(logits, rs * cs, 5);
        for (let i = 0; i < rs; i++) labels.data[i] = i % cs;
        const loss = k.softmaxCrossEntropy(rs, cs, logits, labels, probs, dl);
        if (!Number.isFinite(loss)) throw new Error(`${name} softmaxCrossEntropy returned ${loss}`);
        const r = await median(`${name} softmaxCrossEntropy ${rs}x${cs}`, () => k.softmaxCrossEntropy(rs, cs, logits, labels, probs, dl), timing(options.quick, 0));
        rows.push({ ...base, kernel: 'softmaxCrossEntropy', variant: 'with dlogits', shape: `${rs}x${cs}`, medianMs: r.ms, samples: r.samples, gflops: null, elementsPerSec: (rs * cs) / (r.ms * 1e-3) });
        log(`${name} softmaxCrossEntropy ${rs}x${cs}: ${r.ms.toFixed(3)} ms`);
      } finally {
        for (const t of [logits, labels, probs, dl]) k.free(t);
      }
    }
  }
  return rows;
}
