/**
 * A wasm backend worker thread: instantiates the same module over the shared memory, then, for
 * every job the main thread posts (wasm-protocol.ts), claims and runs chunks until none is left,
 * until told to stop. Every failure (an instantiation error, a trap in a kernel) is reported
 * through the control buffer and the port, so the main thread, which may be blocked in
 * Atomics.wait, gets an error instead of a hang.
 */
import { workerData } from 'node:worker_threads';
import * as P from './wasm-protocol.js';
import { WA } from './wasm-api.js';

const data = workerData as P.WasmWorkerData;
const views = P.controlViews(data.control, data.maxArgs);
const ready = P.readyIndex(data.maxArgs, data.index);

type Kernel = (...args: number[]) => unknown;

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function start(): Kernel[] | null {
  try {
    const instance = new WA.Instance(data.module, { env: { memory: data.memory } });
    const exports = instance.exports as Record<string, unknown>;
    const kernels = P.WORKER_OPS.map((name) => {
      const fn = exports[name];
      if (typeof fn !== 'function') throw new Error(`the module does not export ${name}`);
      return fn as Kernel;
    });
    (exports['gemmSetScratch'] as Kernel)(...data.scratch);
    Atomics.store(views.i32, ready, P.RUNNING);
    return kernels;
  } catch (error) {
    data.port.postMessage(`cannot instantiate the module: ${describe(error)}`);
    Atomics.store(views.i32, ready, P.START_FAILED);
    return null;
  } finally {
    Atomics.notify(views.i32, ready);
  }
}

function serve(kernels: Kernel[]): void {
  let seen = 0;
  for (;;) {
    Atomics.wait(views.i32, P.WAKE, seen);
    const seq = Atomics.load(views.i32, P.WAKE);
    if (Atomics.load(views.i32, P.STOP) === 1) break;
    if (seq === seen) continue;
    seen = seq;
    for (let chunk = P.claimChunk(views, seq); chunk >= 0; chunk = P.claimChunk(views, seq)) {
      // The job cannot change before this chunk is counted: the main thread waits for it.
      const op = Atomics.load(views.i32, P.OP);
      let failed = false;
      try {
        kernels[op]!(...P.chunkArgs(views, chunk));
      } catch (error) {
        failed = true;
        data.port.postMessage(`${P.WORKER_OPS[op] ?? `op ${op}`} failed: ${describe(error)}`);
      }
      P.finishChunk(views, failed);
    }
  }
  data.port.close();
}

const kernels = start();
if (kernels) serve(kernels);
