/**
 * `densetrain worker`: takes trials from the BullMQ queue and runs them one at a time, each in
 * a process-pool child (runTrial, the same code as a local trial). It binds nothing and listens on no port: it only
 * connects out to Redis.
 *
 * - Every job payload is validated first (queue-protocol.ts); a bad one fails that job
 *   (UnrecoverableError: no retry) and the worker carries on.
 * - A trial always resumes its run folder's checkpoint if there is one, so a trial handed over
 *   from a dead worker (BullMQ's stalled-job check) continues where it was; results are
 *   bit-identical to an uninterrupted run. A trial whose folder already holds its finished
 *   outcome (a completion that was never acknowledged) is not trained again.
 * - After each epoch the worker reports the epoch as job progress and waits (bounded) for the
 *   coordinator's answer (ASHA); a stop request from the coordinator ends the trial after its
 *   batch with a checkpoint.
 * - stop() (SIGINT/SIGTERM): every running trial checkpoints after its batch and its job goes
 *   back to the queue for another worker; then the worker exits.
 */
import { hostname } from 'node:os';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Job } from 'bullmq';
import { INCOMPLETE_FILE, writeJsonAtomic } from '../train/run-folder.js';
import { fingerprintDataset, fingerprintDifference, type DataFingerprint } from '../data/fingerprint.js';
import type { TrainConfig } from '../train/types.js';
import type { TrialHooks, TrialOutcome } from './executor.js';
import { ProcessPoolExecutor } from './pool.js';
import {
  QUEUE_NAME,
  QUEUE_PREFIX,
  decisionKey,
  decodeDecision,
  parsePayload,
  PayloadError,
  stopKey,
  type TrialJobProgress,
  type TrialJobResult,
} from './queue-protocol.js';
import { redactSecrets, type QueueTarget } from './queue-url.js';
import { firstLine } from '../first-line.js';

/** A finished trial's outcome, kept in its run folder so a repeated delivery returns it instead of training again. */
export const OUTCOME_FILE = 'trial-outcome.json';

export interface QueueWorkerOptions {
  target: QueueTarget;
  /** Native threads of each trial. */
  threads: number;
  /** One line per event (job taken, finished, failed), for the terminal. */
  log(line: string): void;
  /** BullMQ lock duration (ms): how soon a dead worker's trial is handed to another. */
  lockMs?: number;
  /** How often the stalled-job check runs (ms). */
  stalledMs?: number;
}

export interface RunningWorker {
  /** Checkpoints the running trials, hands them back to the queue, closes the connections. */
  stop(): Promise<void>;
  /** Resolves when the worker has closed (after stop(), or a fatal error). */
  readonly closed: Promise<void>;
}

const BATCH_PROGRESS_MS = 1000;
const STOP_POLL_MS = 500;

/** The identity a worker shows in messages and results. */
export function workerName(): string {
  return `${hostname()}:${process.pid}`;
}

async function finishedOutcome(runDir: string): Promise<TrialJobResult | null> {
  const file = join(runDir, OUTCOME_FILE);
  if (!existsSync(file) || existsSync(join(runDir, INCOMPLETE_FILE))) return null;
  try {
    return JSON.parse(await readFile(file, 'utf8')) as TrialJobResult;
  } catch {
    return null;
  }
}

export async function startQueueWorker(options: QueueWorkerOptions): Promise<RunningWorker> {
  const { Worker, UnrecoverableError, WaitingError } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const { target, log } = options;
  const me = workerName();
  // The trial trains in a child process (the process pool's trial worker): this process's event
  // loop stays free to renew the job's lock, however long a batch, an epoch or a report takes.
  const pool = new ProcessPoolExecutor({ slots: 1, threadsPerTrial: options.threads });
  const safe = (text: string) => redactSecrets(text, target.secrets);
  const running = new Map<string, AbortController>();
  // Each dataset is loaded and hashed once per worker process (the trials themselves load it in
  // their own process); the fingerprint is what the coordinator saw.
  const fingerprints = new Map<string, Promise<DataFingerprint>>();
  const dataFingerprint = (config: TrainConfig): Promise<DataFingerprint> => {
    let p = fingerprints.get(config.data);
    if (!p) {
      p = import('../data/registry.js').then(async (m) => fingerprintDataset(await m.loadDataset(config.data, { seed: config.seed })));
      p.catch(() => fingerprints.delete(config.data));
      fingerprints.set(config.data, p);
    }
    return p;
  };
  let stopping = false;

  // One connection for the control keys (stop requests; decisions are awaited on a duplicate).
  const control = new Redis({ ...target.connection, maxRetriesPerRequest: null, lazyConnect: false });
  control.on('error', () => {
    /* ioredis reconnects by itself; BullMQ reports the outage below */
  });

  async function processJob(job: Job, token?: string): Promise<TrialJobResult> {
    let payload;
    try {
      payload = parsePayload(job.data);
    } catch (error) {
      const message = error instanceof PayloadError ? error.message : `bad job payload: ${String(error)}`;
      log(`job ${job.id}: refused: ${message}`);
      throw new UnrecoverableError(`${message} (worker ${me})`);
    }
    const { trial, experiment } = payload;
    if (payload.fingerprint !== undefined) {
      let here: DataFingerprint;
      try {
        here = await dataFingerprint(trial.config);
      } catch (error) {
        // Not final: another worker (or this one, once the data is installed) may have it.
        const why = firstLine(error);
        log(`trial ${experiment.id}/${trial.id}: the data "${trial.config.data}" cannot be loaded here: ${why}`);
        throw new Error(`the data "${trial.config.data}" cannot be loaded on worker ${me}: ${why}`);
      }
      const difference = fingerprintDifference(payload.fingerprint, here);
      if (difference !== null) {
        const message = `trial ${experiment.id}/${trial.id}: the data "${trial.config.data}" on worker ${me} differs from the coordinator's: ${difference}`;
        log(`${message}; refused`);
        throw new UnrecoverableError(message);
      }
    }
    const done = await finishedOutcome(trial.runDir);
    if (done) {
      log(`trial ${experiment.id}/${trial.id}: already finished (${done.status}) by ${done.worker}; not trained again`);
      return done;
    }
    log(`trial ${experiment.id}/${trial.id}: started (job ${job.id})`);
    const controller = new AbortController();
    running.set(String(job.id), controller);
    // BLPOP blocks its connection, so each trial that waits for answers gets its own; compare and
    // sweep send none (decisionTimeoutMs 0) and open none.
    const waiter = payload.decisionTimeoutMs > 0 ? control.duplicate() : null;
    waiter?.on('error', () => {});
    let lastBatch = 0;
    const stopPoll = setInterval(() => {
      control.get(stopKey(String(job.id))).then(
        (value) => {
          if (value !== null) controller.abort();
        },
        () => {},
      );
    }, STOP_POLL_MS);
    const report = (progress: TrialJobProgress) => job.updateProgress(progress as unknown as object).catch(() => {});
    const hooks: TrialHooks = {
      batch(progress) {
        const now = Date.now();
        if (now - lastBatch < BATCH_PROGRESS_MS && progress.batch < progress.batches) return;
        lastBatch = now;
        void report({ kind: 'batch', progress });
      },
      async epoch(record) {
        await report({ kind: 'epoch', record, worker: me });
        // No scheduler answers (compare, sweep) or the trial is stopping anyway: go on at once.
        if (controller.signal.aborted || waiter === null) return { stop: false };
        try {
          const answer = await waiter.blpop(decisionKey(String(job.id), record.epoch), payload.decisionTimeoutMs / 1000);
          return decodeDecision(answer ? answer[1] : null);
        } catch {
          return { stop: false }; // Redis away: the trial goes on; ASHA never waits on it.
        }
      },
    };
    let outcome: TrialOutcome;
    try {
      // The worker's own thread count, not the coordinator's: threads never change results.
      const { threads: _coordinatorThreads, ...config } = trial.config;
      const handle = pool.start({ id: trial.id, config, runDir: trial.runDir, resume: true }, hooks);
      const stop = () => handle.stop();
      if (controller.signal.aborted) stop();
      else controller.signal.addEventListener('abort', stop, { once: true });
      outcome = await handle.done;
    } finally {
      clearInterval(stopPoll);
      running.delete(String(job.id));
      waiter?.disconnect();
    }
    if (outcome.status === 'interrupted' && stopping) {
      // This worker is going away, not the coordinator asking: the trial goes back to the queue
      // (its checkpoint is written) and another worker continues it.
      log(`trial ${experiment.id}/${trial.id}: checkpointed and handed back to the queue`);
      await job.moveToWait(token);
      throw new WaitingError();
    }
    if (outcome.status === 'failed' && outcome.record === null && /is in use by process \d+ on /.test(outcome.error ?? '')) {
      // Another process still writes this run folder (a killed worker's trial process finishing
      // its batch, or a worker whose lease has not expired yet): not a failure of the trial.
      // BullMQ retries the job after its backoff; by then the holder has let go or gone stale.
      log(`trial ${experiment.id}/${trial.id}: its folder is still held (${safe(outcome.error ?? '')}); retrying later`);
      throw new Error(`run folder busy: ${safe(outcome.error ?? '')}`);
    }
    const result: TrialJobResult = {
      status: outcome.status,
      worker: me,
      ...(outcome.error !== undefined ? { error: safe(outcome.error) } : {}),
      ...(outcome.report !== undefined ? { report: outcome.report } : {}),
    };
    if (outcome.status !== 'interrupted') await writeJsonAtomic(join(trial.runDir, OUTCOME_FILE), result);
    log(`trial ${experiment.id}/${trial.id}: ${outcome.status}${outcome.error ? `: ${safe(outcome.error)}` : ''}`);
    return result;
  }

  const worker = new Worker(QUEUE_NAME, processJob, {
    prefix: QUEUE_PREFIX,
    connection: { ...target.connection, maxRetriesPerRequest: null },
    concurrency: 1,
    lockDuration: options.lockMs ?? 30_000,
    stalledInterval: options.stalledMs ?? 15_000,
    // A trial handed over several times (workers killed again and again) still finishes.
    maxStalledCount: 10,
    autorun: false,
  });
  let lastError = '';
  worker.on('error', (error) => {
    const line = safe(error instanceof Error ? error.message : String(error));
    if (line !== lastError) log(`queue ${target.display}: ${line}; retrying`);
    lastError = line;
  });
  const closed = worker.run().then(
    () => {},
    (error: unknown) => log(`worker stopped: ${safe(String(error))}`),
  );
  await worker.waitUntilReady();
  log(`worker ${me} waiting for trials on ${target.display}`);

  return {
    closed,
    async stop() {
      if (stopping) return;
      stopping = true;
      for (const controller of running.values()) controller.abort();
      await worker.close();
      await pool.close();
      control.disconnect();
      await closed;
    },
  };
}
