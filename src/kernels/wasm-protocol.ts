/**
 * What the wasm backend's main thread (wasm-pool.ts) and its worker threads (wasm-worker.ts)
 * agree on: the kernels a worker may run and the layout of a worker's slot in the control
 * SharedArrayBuffer. A job is posted by writing its op and arguments, then bumping SEQ; the
 * worker answers by setting STATUS and DONE = SEQ. Both ends wait with Atomics.wait.
 */
import type { MessagePort } from 'node:worker_threads';

/**
 * The module exports a worker runs, by op code. None of them allocates: a worker's instance
 * must never touch the heap (assembly/heap.ts keeps its free lists in the main instance's
 * globals), and gemmStrided uses the scratch the main thread gave it.
 */
export const WORKER_OPS = ['gemmStrided', 'biasActivation', 'activationBackward', 'sgdStep', 'adamStep'] as const;
export type WorkerOp = (typeof WORKER_OPS)[number];

/** Bytes per worker slot (a multiple of 64: slots never share a cache line). */
export const SLOT_BYTES = 256;
/** Int32 fields of a slot. */
export const SEQ = 0;
export const DONE = 1;
export const OP = 2;
export const STATUS = 3;
export const READY = 4;
/** The arguments, float64 (every kernel argument is a number; pointers are < 2^32). */
export const ARGS_BYTE = 64;
export const MAX_ARGS = (SLOT_BYTES - ARGS_BYTE) / 8;

/** OP value that ends the worker's loop. */
export const OP_STOP = -1;
/** STATUS after a job. */
export const STATUS_OK = 0;
export const STATUS_FAILED = 1;
/** READY values. */
export const STARTING = 0;
export const RUNNING = 1;
export const START_FAILED = 2;

/** workerData of a wasm worker. */
export interface WasmWorkerData {
  /** The compiled module (a WebAssembly.Module; structured-cloned to the worker). */
  module: object;
  /** The shared WebAssembly.Memory the main thread's instance uses. */
  memory: object;
  control: SharedArrayBuffer;
  slot: number;
  /** Packing scratch for gemmStrided: [packA, packB, tile] byte offsets. */
  scratch: [number, number, number];
  /** Error messages go here (read with receiveMessageOnPort: the main thread may be blocked). */
  port: MessagePort;
}
