/**
 * The wasm backend's worker threads. Each worker instantiates the same module over the shared
 * WebAssembly.Memory (wasm-worker.ts) and runs the jobs posted in its slot of a control
 * SharedArrayBuffer (wasm-protocol.ts); the calling thread runs the first part of every split
 * kernel itself and then waits with Atomics.wait (allowed on Node's main thread), so a kernel
 * call stays synchronous.
 *
 * Workers start lazily, the first time a kernel is big enough to split, and without blocking:
 * until a worker says it is running, kernels simply use fewer parts (a split never changes a
 * result, so nothing depends on when they come up). Workers are unref'd (they never keep the
 * process alive) and terminated by setThreads(lower) and dispose().
 *
 * Failures are errors, never hangs: a worker catches everything a job throws (a trap, say) and
 * reports it through its slot, so the waiting thread wakes up and throws it; a worker that
 * failed to start or exited makes the next kernel call throw, naming it. (Node reports a
 * thread's exit only on the event loop, so an exit in the middle of a job would not be seen
 * while blocked; the only code that ends a worker is ours, between jobs.)
 */
import { existsSync } from 'node:fs';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { compiledEntry } from './paths.js';
import type { WasmMemory, WasmModule } from './wasm-api.js';
import {
  ARGS_BYTE,
  DONE,
  MAX_ARGS,
  OP,
  OP_STOP,
  READY,
  RUNNING,
  SEQ,
  SLOT_BYTES,
  START_FAILED,
  STATUS,
  STATUS_FAILED,
  WORKER_OPS,
  type WasmWorkerData,
  type WorkerOp,
} from './wasm-protocol.js';

/** The compiled worker entry (beside this module in dist/, or dist/ when this runs from src/ under a test runner). */
export function wasmWorkerEntry(): string {
  return compiledEntry(import.meta.url, 'src/kernels/wasm-worker.js');
}

interface WorkerState {
  readonly index: number;
  readonly worker: Worker;
  readonly port: MessagePort;
  readonly slot: Int32Array;
  readonly args: Float64Array;
  seq: number;
  /** Why the worker is gone (set by its exit event), or null while it lives. */
  exited: string | null;
  /** True once we asked it to stop (its exit is then expected). */
  stopping: boolean;
}

/** Gives and takes back the gemm packing scratch of one worker (allocated from the main instance's heap). */
export interface ScratchAllocator {
  alloc(): [number, number, number];
  free(scratch: [number, number, number]): void;
}

export class WasmThreadPool {
  readonly #module: WasmModule;
  readonly #memory: WasmMemory;
  readonly #scratch: ScratchAllocator;
  readonly #entry: string;
  #threads: number;
  /** One scratch per worker thread (threads - 1), allocated when the thread count is set. */
  #scratchSets: [number, number, number][] = [];
  #control: SharedArrayBuffer | null = null;
  #workers: WorkerState[] = [];
  #failure: string | null = null;

  constructor(module: WasmModule, memory: WasmMemory, scratch: ScratchAllocator, threads: number, entry = wasmWorkerEntry()) {
    this.#module = module;
    this.#memory = memory;
    this.#scratch = scratch;
    this.#entry = entry;
    this.#threads = 1;
    this.setThreads(threads);
  }

  /** Threads a kernel may use, the calling thread included. */
  get threads(): number {
    return this.#threads;
  }

  /** Workers that have started and can take a job now. */
  get running(): number {
    return this.#workers.filter((w) => w.exited === null && Atomics.load(w.slot, READY) === RUNNING).length;
  }

  setThreads(threads: number): void {
    if (threads === this.#threads) return;
    this.#stopWorkers();
    while (this.#scratchSets.length > threads - 1) this.#scratch.free(this.#scratchSets.pop()!);
    while (this.#scratchSets.length < threads - 1) this.#scratchSets.push(this.#scratch.alloc());
    this.#threads = threads;
    this.#failure = null;
  }

  /** Terminates the workers and frees their scratch; the pool runs on the calling thread alone afterwards. */
  dispose(): void {
    this.setThreads(1);
  }

  /**
   * How many parts a kernel may be split into now: 1 + the running workers. Starts the workers
   * on first use. Throws if a worker failed to start or exited.
   */
  parts(): number {
    if (this.#threads === 1) return 1;
    if (this.#workers.length === 0) this.#startWorkers();
    this.#checkWorkers();
    return 1 + this.running;
  }

  /**
   * Runs `op` with argument lists parts[1..] on running workers and `local(parts[0])` on the
   * calling thread, and returns when all are done. parts.length must be at most parts().
   */
  run(op: WorkerOp, parts: readonly (readonly number[])[], local: (args: readonly number[]) => void): void {
    const code = WORKER_OPS.indexOf(op);
    const ready = this.#workers.filter((w) => w.exited === null && Atomics.load(w.slot, READY) === RUNNING);
    if (parts.length - 1 > ready.length) throw new Error(`wasm thread pool: ${parts.length} parts for ${ready.length + 1} threads`);
    const posted: WorkerState[] = [];
    for (let i = 1; i < parts.length; i++) {
      const w = ready[i - 1]!;
      const args = parts[i]!;
      if (args.length > MAX_ARGS) throw new Error(`wasm thread pool: ${op} has more than ${MAX_ARGS} arguments`);
      w.args.set(args);
      Atomics.store(w.slot, OP, code);
      w.seq = (w.seq + 1) | 0;
      Atomics.store(w.slot, SEQ, w.seq);
      Atomics.notify(w.slot, SEQ);
      posted.push(w);
    }
    let localError: unknown = null;
    try {
      local(parts[0]!);
    } catch (error) {
      localError = error;
    }
    const failures: string[] = [];
    for (const w of posted) {
      // Wait for DONE to reach this job's sequence number (it only ever moves up to it).
      for (let done = Atomics.load(w.slot, DONE); done !== w.seq; done = Atomics.load(w.slot, DONE)) {
        Atomics.wait(w.slot, DONE, done);
      }
      if (Atomics.load(w.slot, STATUS) === STATUS_FAILED) failures.push(`wasm worker thread ${w.index}: ${this.#message(w)}`);
    }
    if (localError !== null) throw localError;
    if (failures.length > 0) throw new Error(failures.join('; '));
  }

  #message(w: WorkerState): string {
    const received = receiveMessageOnPort(w.port);
    return received ? String(received.message) : 'failed without a message';
  }

  #startWorkers(): void {
    if (!existsSync(this.#entry)) {
      throw new Error(`the wasm worker script ${this.#entry} is missing; reinstall densetrain (in a git clone: npm run build:ts)`);
    }
    const count = this.#threads - 1;
    this.#control = new SharedArrayBuffer(count * SLOT_BYTES);
    for (let index = 0; index < count; index++) {
      const { port1, port2 } = new MessageChannel();
      const data: WasmWorkerData = {
        module: this.#module,
        memory: this.#memory,
        control: this.#control,
        slot: index,
        scratch: this.#scratchSets[index]!,
        port: port2,
      };
      // execArgv [] : the parent's (say --input-type=module with -e) can stop a worker from
      // starting, and V8's flags (a wasm feature flag) are process-wide anyway.
      const worker = new Worker(this.#entry, { workerData: data, transferList: [port2], execArgv: [] });
      const state: WorkerState = {
        index,
        worker,
        port: port1,
        slot: new Int32Array(this.#control, index * SLOT_BYTES, SLOT_BYTES / 4),
        args: new Float64Array(this.#control, index * SLOT_BYTES + ARGS_BYTE, MAX_ARGS),
        seq: 0,
        exited: null,
        stopping: false,
      };
      worker.on('error', (error) => {
        if (state.exited === null) state.exited = `error: ${error.message}`;
      });
      worker.on('exit', (code) => {
        if (state.exited === null) state.exited = `exit code ${code}`;
      });
      worker.unref();
      port1.unref();
      this.#workers.push(state);
    }
  }

  #checkWorkers(): void {
    if (this.#failure !== null) throw new Error(this.#failure);
    for (const w of this.#workers) {
      let reason: string | null = null;
      if (Atomics.load(w.slot, READY) === START_FAILED) reason = `could not start: ${this.#message(w)}`;
      else if (w.exited !== null && !w.stopping) reason = `exited unexpectedly (${w.exited})`;
      if (reason !== null) {
        this.#failure = `wasm worker thread ${w.index} ${reason}; setThreads() starts fresh workers (or use DENSETRAIN_THREADS=1)`;
        throw new Error(this.#failure);
      }
    }
  }

  #stopWorkers(): void {
    for (const w of this.#workers) {
      w.stopping = true;
      Atomics.store(w.slot, OP, OP_STOP);
      Atomics.store(w.slot, SEQ, (w.seq + 1) | 0);
      Atomics.notify(w.slot, SEQ);
      void w.worker.terminate();
      w.port.close();
    }
    this.#workers = [];
    this.#control = null;
  }

  /** @internal Tests: the worker objects (to observe or end them). */
  get workersForTest(): readonly Worker[] {
    return this.#workers.map((w) => w.worker);
  }
}
