/**
 * The wasm backend's worker threads. Each worker instantiates the same module over the shared
 * WebAssembly.Memory (wasm-worker.ts). A kernel is cut into chunks (wasm-split.ts); the calling
 * thread posts them in the control SharedArrayBuffer (wasm-protocol.ts), wakes the workers,
 * claims and runs chunks itself alongside them, and then waits with Atomics.wait (allowed on
 * Node's main thread) for the chunks the workers claimed, so a kernel call stays synchronous.
 * Chunks are claimed, not assigned: a worker the OS has not scheduled yet takes nothing, and
 * the calling thread does its share instead of waiting for it (on a busy machine a split kernel
 * costs about what one thread costs, not the slowest thread's delay).
 *
 * Workers start lazily, the first time a kernel is big enough to split, and without blocking:
 * a worker that is not running yet simply claims nothing (a split never changes a result, so
 * nothing depends on who computes what). Workers are unref'd (they never keep the process
 * alive) and terminated by setThreads(other count) and dispose().
 *
 * Failures are errors, never hangs: a worker catches everything a chunk throws (a trap, say),
 * counts the chunk as done and posts the message, so the waiting thread wakes up and throws it;
 * a worker that failed to start or exited makes the next kernel call throw, naming it. (Node
 * reports a thread's exit only on the event loop, so an exit in the middle of a chunk would not
 * be seen while blocked; the only code that ends a worker is ours, between jobs.)
 */
import { existsSync } from 'node:fs';
import { MessageChannel, Worker, receiveMessageOnPort, type MessagePort } from 'node:worker_threads';
import { compiledEntry } from './paths.js';
import type { WasmMemory, WasmModule } from './wasm-api.js';
import * as P from './wasm-protocol.js';

/** The compiled worker entry (beside this module in dist/, or dist/ when this runs from src/ under a test runner). */
export function wasmWorkerEntry(): string {
  return compiledEntry(import.meta.url, 'src/kernels/wasm-worker.js');
}

/** Chunks a kernel may be cut into per thread (more chunks balance better, each costs a little). */
export const CHUNKS_PER_THREAD = 4;
/** Arguments of the largest kernel a worker runs (gemmStrided: 14). */
const ARGS_PER_CHUNK = 16;

interface WorkerState {
  readonly index: number;
  readonly worker: Worker;
  readonly port: MessagePort;
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
  #maxArgs = 0;
  #views: P.ControlViews | null = null;
  #seq = 0;
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

  /** Workers that have started (and not exited). */
  get running(): number {
    const views = this.#views;
    if (!views) return 0;
    return this.#workers.filter((w) => w.exited === null && Atomics.load(views.i32, P.readyIndex(this.#maxArgs, w.index)) === P.RUNNING).length;
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
   * The most chunks a kernel may be cut into now (1 with one thread). Starts the workers on
   * first use. Throws if a worker failed to start or exited.
   */
  parts(): number {
    if (this.#threads === 1) return 1;
    if (this.#workers.length === 0) this.#startWorkers();
    this.#checkWorkers();
    return this.#threads * CHUNKS_PER_THREAD;
  }

  /**
   * Runs `op` on every argument list of `chunks` (at most parts() of them): the calling thread
   * runs the chunks it claims with `local`, the workers the others. Returns when all are done;
   * throws the first failure (the calling thread's own error as it was thrown).
   */
  run(op: P.WorkerOp, chunks: readonly (readonly number[])[], local: (args: readonly number[]) => void): void {
    const views = this.#views;
    if (!views || chunks.length > this.#threads * CHUNKS_PER_THREAD) throw new Error(`wasm thread pool: ${chunks.length} chunks with ${this.#threads} threads (call parts() first)`);
    const argCount = Math.max(...chunks.map((c) => c.length));
    if (argCount > ARGS_PER_CHUNK) throw new Error(`wasm thread pool: ${op} has more than ${ARGS_PER_CHUNK} arguments`);
    chunks.forEach((c, i) => views.args.set(c, i * argCount));
    const seq = (this.#seq = this.#seq >= 0x7fffffff ? 1 : this.#seq + 1);
    Atomics.store(views.i32, P.OP, P.WORKER_OPS.indexOf(op));
    Atomics.store(views.i32, P.CHUNKS, chunks.length);
    Atomics.store(views.i32, P.ARG_COUNT, argCount);
    Atomics.store(views.i32, P.DONE, 0);
    Atomics.store(views.i32, P.FAILED, 0);
    Atomics.store(views.claim, 0, BigInt(seq) << 32n);
    Atomics.store(views.i32, P.WAKE, seq);
    Atomics.notify(views.i32, P.WAKE);
    let localError: unknown = null;
    for (let chunk = P.claimChunk(views, seq); chunk >= 0; chunk = P.claimChunk(views, seq)) {
      try {
        local(chunks[chunk]!);
      } catch (error) {
        localError ??= error;
      }
      P.finishChunk(views, false);
    }
    for (let done = Atomics.load(views.i32, P.DONE); done < chunks.length; done = Atomics.load(views.i32, P.DONE)) {
      Atomics.wait(views.i32, P.DONE, done);
    }
    const failed = Atomics.load(views.i32, P.FAILED) === 1;
    // Read every failure message now, so none is left over for a later job.
    const messages = failed
      ? this.#workers.flatMap((w) => {
          const texts: string[] = [];
          for (let m = receiveMessageOnPort(w.port); m; m = receiveMessageOnPort(w.port)) texts.push(`wasm worker thread ${w.index}: ${String(m.message)}`);
          return texts;
        })
      : [];
    if (localError !== null) throw localError;
    if (failed) throw new Error(messages.join('; ') || 'a wasm worker thread failed without a message');
  }

  #startWorkers(): void {
    if (!existsSync(this.#entry)) {
      throw new Error(`the wasm worker script ${this.#entry} is missing; reinstall densetrain (in a git clone: npm run build:ts)`);
    }
    const count = this.#threads - 1;
    this.#maxArgs = this.#threads * CHUNKS_PER_THREAD * ARGS_PER_CHUNK;
    const control = new SharedArrayBuffer(P.controlBytes(count, this.#maxArgs));
    this.#views = P.controlViews(control, this.#maxArgs);
    this.#seq = 0;
    for (let index = 0; index < count; index++) {
      const { port1, port2 } = new MessageChannel();
      const data: P.WasmWorkerData = {
        module: this.#module,
        memory: this.#memory,
        control,
        maxArgs: this.#maxArgs,
        index,
        scratch: this.#scratchSets[index]!,
        port: port2,
      };
      // execArgv [] : the parent's (say --input-type=module with -e) can stop a worker from
      // starting, and V8's flags (a wasm feature flag) are process-wide anyway.
      const worker = new Worker(this.#entry, { workerData: data, transferList: [port2], execArgv: [] });
      const state: WorkerState = { index, worker, port: port1, exited: null, stopping: false };
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
    const views = this.#views!;
    for (const w of this.#workers) {
      let reason: string | null = null;
      if (Atomics.load(views.i32, P.readyIndex(this.#maxArgs, w.index)) === P.START_FAILED) {
        const m = receiveMessageOnPort(w.port);
        reason = `could not start: ${m ? String(m.message) : 'no message'}`;
      } else if (w.exited !== null && !w.stopping) reason = `exited unexpectedly (${w.exited})`;
      if (reason !== null) {
        this.#failure = `wasm worker thread ${w.index} ${reason}; setThreads() starts fresh workers (or use DENSETRAIN_THREADS=1)`;
        throw new Error(this.#failure);
      }
    }
  }

  #stopWorkers(): void {
    const views = this.#views;
    if (views) {
      Atomics.store(views.i32, P.STOP, 1);
      Atomics.add(views.i32, P.WAKE, 1);
      Atomics.notify(views.i32, P.WAKE);
    }
    for (const w of this.#workers) {
      w.stopping = true;
      void w.worker.terminate();
      w.port.close();
    }
    this.#workers = [];
    this.#views = null;
  }

  /** @internal Tests: the worker objects (to observe or end them). */
  get workersForTest(): readonly Worker[] {
    return this.#workers.map((w) => w.worker);
  }
}
