/**
 * A wasm backend worker thread: instantiates the same module over the shared memory, then runs
 * the jobs the main thread posts in its slot (wasm-protocol.ts) until told to stop. Every
 * failure (an instantiation error, a trap in a kernel) is reported through the slot and the
 * port, so the main thread, which may be blocked in Atomics.wait, gets an error instead of a hang.
 */
import { workerData } from 'node:worker_threads';
import * as L from './wasm-protocol.js';
import { WA } from './wasm-api.js';

const data = workerData as L.WasmWorkerData;
const slot = new Int32Array(data.control, data.slot * L.SLOT_BYTES, L.SLOT_BYTES / 4);
const args = new Float64Array(data.control, data.slot * L.SLOT_BYTES + L.ARGS_BYTE, L.MAX_ARGS);

type Kernel = (...args: number[]) => unknown;

function describe(error: unknown): string {
  return error instanceof Error ? `${error.name}: ${error.message}` : String(error);
}

function start(): Kernel[] | null {
  try {
    const instance = new WA.Instance(data.module, { env: { memory: data.memory } });
    const exports = instance.exports as Record<string, unknown>;
    const kernels = L.WORKER_OPS.map((name) => {
      const fn = exports[name];
      if (typeof fn !== 'function') throw new Error(`the module does not export ${name}`);
      return fn as Kernel;
    });
    (exports['gemmSetScratch'] as Kernel)(...data.scratch);
    Atomics.store(slot, L.READY, L.RUNNING);
    return kernels;
  } catch (error) {
    data.port.postMessage(`cannot instantiate the module: ${describe(error)}`);
    Atomics.store(slot, L.READY, L.START_FAILED);
    return null;
  } finally {
    Atomics.notify(slot, L.READY);
  }
}

function serve(kernels: Kernel[]): void {
  let seen = Atomics.load(slot, L.SEQ);
  for (;;) {
    Atomics.wait(slot, L.SEQ, seen);
    const seq = Atomics.load(slot, L.SEQ);
    if (seq === seen) continue;
    seen = seq;
    const op = Atomics.load(slot, L.OP);
    if (op === L.OP_STOP) break;
    let status = L.STATUS_OK;
    try {
      const kernel = kernels[op];
      if (!kernel) throw new Error(`unknown op ${op}`);
      kernel(...args);
    } catch (error) {
      status = L.STATUS_FAILED;
      data.port.postMessage(`${L.WORKER_OPS[op] ?? `op ${op}`} failed: ${describe(error)}`);
    }
    Atomics.store(slot, L.STATUS, status);
    Atomics.store(slot, L.DONE, seq);
    Atomics.notify(slot, L.DONE);
  }
  data.port.close();
}

const kernels = start();
if (kernels) serve(kernels);
