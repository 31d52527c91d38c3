/**
 * What the wasm backend's main thread (wasm-pool.ts) and its worker threads (wasm-worker.ts)
 * agree on: the kernels a worker may run and the layout of the control SharedArrayBuffer.
 *
 * A job is one kernel cut into chunks (argument lists). The main thread writes the job, sets
 * CLAIM to (job sequence << 32 | 0), bumps WAKE and notifies; then it and every worker that is
 * awake claim chunks one at a time by compare-and-swap on CLAIM and count them in DONE. A chunk
 * is claimed only while CLAIM still carries the job's sequence, so a worker that wakes up late
 * cannot take a chunk of a later job with an earlier job's arguments; and nobody waits for a
 * thread that never claimed anything (a descheduled worker costs nothing but its share).
 */
import type { MessagePort } from 'node:worker_threads';

/**
 * The module exports a worker runs, by op code. None of them allocates: a worker's instance
 * must never touch the heap (assembly/heap.ts keeps its free lists in the main instance's
 * globals), and gemmStrided uses the scratch the main thread gave it.
 */
export const WORKER_OPS = ['gemmStrided', 'biasActivation', 'activationBackward', 'sgdStep', 'adamStep'] as const;
export type WorkerOp = (typeof WORKER_OPS)[number];

/** Int32 fields of the job header. */
export const WAKE = 0; // the job sequence workers wait on (0: no job yet)
export const STOP = 1; // 1: workers leave their loop
export const OP = 2;
export const CHUNKS = 3;
export const ARG_COUNT = 4;
export const DONE = 5; // chunks finished (successfully or not) of the current job
export const FAILED = 6; // 1 when a chunk of the current job failed
/** Byte offset of the BigInt64 CLAIM word: (job sequence << 32) | next chunk. */
export const CLAIM_BYTE = 64;
/** Byte offset of the chunks' float64 arguments (every kernel argument is a number; pointers are < 2^32). */
export const ARGS_BYTE = 128;
/** Per-worker start status words (Int32), one 64-byte line each, after the arguments. */
export const READY_STRIDE = 16;

export const STARTING = 0;
export const RUNNING = 1;
export const START_FAILED = 2;

/** Bytes of the control buffer for `workers` workers and at most `maxArgs` float64 arguments per job. */
export function controlBytes(workers: number, maxArgs: number): number {
  return ARGS_BYTE + Math.ceil((maxArgs * 8) / 64) * 64 + workers * READY_STRIDE * 4;
}

/** Int32 index of worker `index`'s READY word. */
export function readyIndex(maxArgs: number, index: number): number {
  return (ARGS_BYTE + Math.ceil((maxArgs * 8) / 64) * 64) / 4 + index * READY_STRIDE;
}

/** workerData of a wasm worker. */
export interface WasmWorkerData {
  /** The compiled module (a WebAssembly.Module; structured-cloned to the worker). */
  module: object;
  /** The shared WebAssembly.Memory the main thread's instance uses. */
  memory: object;
  control: SharedArrayBuffer;
  /** Float64 arguments the control buffer holds (all chunks of a job together). */
  maxArgs: number;
  index: number;
  /** Packing scratch for gemmStrided: [packA, packB, tile] byte offsets. */
  scratch: [number, number, number];
  /** Error messages go here (read with receiveMessageOnPort: the main thread may be blocked). */
  port: MessagePort;
}

/** The control buffer's views, as both ends use them. */
export interface ControlViews {
  i32: Int32Array;
  claim: BigInt64Array;
  args: Float64Array;
}

export function controlViews(control: SharedArrayBuffer, maxArgs: number): ControlViews {
  return {
    i32: new Int32Array(control),
    claim: new BigInt64Array(control, CLAIM_BYTE, 1),
    args: new Float64Array(control, ARGS_BYTE, maxArgs),
  };
}

/**
 * Claims the next chunk of job `seq`: its index, or -1 when the job has no chunk left or is no
 * longer the current one.
 */
export function claimChunk(views: ControlViews, seq: number): number {
  for (;;) {
    const word = Atomics.load(views.claim, 0);
    if (Number(word >> 32n) !== seq) return -1;
    const next = Number(word & 0xffffffffn);
    if (next >= Atomics.load(views.i32, CHUNKS)) return -1;
    if (Atomics.compareExchange(views.claim, 0, word, word + 1n) === word) return next;
  }
}

/** Counts a finished chunk; the thread that finishes the last one wakes the waiting main thread. */
export function finishChunk(views: ControlViews, failed: boolean): void {
  if (failed) Atomics.store(views.i32, FAILED, 1);
  if (Atomics.add(views.i32, DONE, 1) + 1 === Atomics.load(views.i32, CHUNKS)) Atomics.notify(views.i32, DONE);
}

/** The arguments of chunk `index` (a view into the control buffer). */
export function chunkArgs(views: ControlViews, index: number): Float64Array {
  const count = Atomics.load(views.i32, ARG_COUNT);
  return views.args.subarray(index * count, (index + 1) * count);
}
