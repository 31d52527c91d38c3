/**
 * The process-pool executor: each trial runs in a worker process (forked from
 * dist/src/experiments/trial-worker.js), at most `slots` at once, with the native threads split
 * between them (DENSETRAIN_THREADS in each worker's environment; thread counts do not change
 * results, so a trial's numbers are the same as run alone). Workers are reused from trial to
 * trial (the dataset is loaded once per worker). A worker that crashes or is killed (out of
 * memory) fails its trial alone, with the exit code or signal and its last stderr line; the
 * next trial gets a fresh worker.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { compiledEntry } from '../kernels/paths.js';
import type { Executor, TrialHandle, TrialHooks, TrialOutcome, TrialSpec } from './executor.js';
import type { FromWorker, ToWorker } from './worker-protocol.js';

/** The compiled worker entry (beside this module in dist/, or dist/ when this runs from src/ under a test runner). */
export function workerEntry(): string {
  return compiledEntry(import.meta.url, 'src/experiments/trial-worker.js');
}

interface Worker {
  child: ChildProcess;
  busy: boolean;
  /** The last lines the worker wrote to stderr (for a crash message). */
  stderrTail: string;
  /** Set while a trial runs: ends it when the worker exits. */
  onExit?: (code: number | null, signal: NodeJS.Signals | null) => void;
  onMessage?: (message: FromWorker) => void;
}

export interface PoolOptions {
  slots: number;
  /** Native threads of each trial (DENSETRAIN_THREADS in the workers). */
  threadsPerTrial: number;
  /** Extra environment for the workers. */
  /** (A plain record: the public types must not need @types/node.) */
  env?: Record<string, string | undefined>;
}

export class ProcessPoolExecutor implements Executor {
  readonly slots: number;
  readonly threadsPerTrial: number;
  readonly #env: NodeJS.ProcessEnv;
  readonly #workers = new Set<Worker>();
  readonly #entry = workerEntry();

  constructor(options: PoolOptions) {
    this.slots = options.slots;
    this.threadsPerTrial = options.threadsPerTrial;
    this.#env = { ...process.env, ...options.env, DENSETRAIN_THREADS: String(options.threadsPerTrial) };
    if (!existsSync(this.#entry)) throw new Error(`the trial worker ${this.#entry} is missing (run npm run build:ts)`);
  }

  #spawn(): Worker {
    const child = fork(this.#entry, [], { serialization: 'advanced', env: this.#env, stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    const worker: Worker = { child, busy: false, stderrTail: '' };
    child.stderr?.on('data', (chunk: Buffer) => {
      worker.stderrTail = (worker.stderrTail + chunk.toString()).slice(-2000);
    });
    child.on('message', (message: FromWorker) => worker.onMessage?.(message));
    child.on('exit', (code, signal) => {
      this.#workers.delete(worker);
      worker.onExit?.(code, signal);
    });
    child.on('error', () => {
      /* 'exit' follows and fails the trial */
    });
    this.#workers.add(worker);
    return worker;
  }

  start(trial: TrialSpec, hooks: TrialHooks): TrialHandle {
    const worker = [...this.#workers].find((w) => !w.busy && w.child.connected) ?? this.#spawn();
    worker.busy = true;
    worker.stderrTail = '';
    const send = (message: ToWorker): void => {
      if (!worker.child.connected) return;
      try {
        worker.child.send(message);
      } catch {
        /* the worker is gone; its exit fails the trial */
      }
    };
    const done = new Promise<TrialOutcome>((resolve) => {
      const finish = (outcome: TrialOutcome) => {
        worker.onExit = undefined;
        worker.onMessage = undefined;
        worker.busy = false;
        resolve(outcome);
      };
      worker.onExit = (code, signal) => {
        const how = signal !== null ? `was killed by ${signal}` : `exited with code ${code}`;
        const tail = worker.stderrTail.trim().split('\n').filter(Boolean).pop();
        finish({ status: 'failed', record: null, error: `the trial's process ${how}${tail ? `: ${tail}` : ''}` });
      };
      worker.onMessage = (message) => {
        if (message.type === 'batch') hooks.batch?.(message.progress);
        else if (message.type === 'epoch') {
          Promise.resolve()
            .then(() => hooks.epoch(message.record))
            .then(
              (decision) => send({ type: 'decision', epoch: message.record.epoch, decision }),
              () => send({ type: 'decision', epoch: message.record.epoch, decision: { stop: false } }),
            );
        } else if (message.type === 'done') finish(message.outcome);
      };
    });
    send({ type: 'run', trial });
    return { done, stop: () => send({ type: 'stop' }) };
  }

  /** Ends the workers (idle ones exit when their channel closes). */
  async close(): Promise<void> {
    const exits = [...this.#workers].map(
      (w) =>
        new Promise<void>((resolve) => {
          if (w.child.exitCode !== null || w.child.signalCode !== null) return resolve();
          w.child.once('exit', () => resolve());
          if (w.child.connected) w.child.disconnect();
          else w.child.kill();
        }),
    );
    await Promise.all(exits);
  }
}
