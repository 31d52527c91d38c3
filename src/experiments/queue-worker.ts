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
import type { Redis } from 'ioredis';
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
  type TrialJobPayload,
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

/** What the job handler needs from the worker around it. */
interface WorkerContext {
  me: string;
  log(line: string): void;
  /** Redacts the queue's password from a line. */
  safe(text: string): string;
  /** The control connection: stop requests (decisions are awaited on duplicates of it). */
  control: Redis;
  pool: ProcessPoolExecutor;
  /** Running trials by job id, so stop() can interrupt them. */
  running: Map<string, AbortController>;
  dataFingerprint(config: TrainConfig): Promise<DataFingerprint>;
  /** True once stop() has begun: interrupted trials go back to the queue. */
  stopping(): boolean;
  errors: Pick<typeof import('bullmq'), 'UnrecoverableError' | 'WaitingError'>;
}

/**
 * Each dataset is loaded and hashed once per worker process (the trials themselves load it in
 * their own process); the fingerprint is what the coordinator saw. A failed load is forgotten so
 * a later job tries again (the data may have been installed meanwhile).
 */
function fingerprintCache(): (config: TrainConfig) => Promise<DataFingerprint> {
  const fingerprints = new Map<string, Promise<DataFingerprint>>();
  return (config) => {
    let p = fingerprints.get(config.data);
    if (!p) {
      p = import('../data/registry.js').then(async (m) => fingerprintDataset(await m.loadDataset(config.data, { seed: config.seed })));
      p.catch(() => fingerprints.delete(config.data));
      fingerprints.set(config.data, p);
    }
    return p;
  };
}

/** The job's payload, validated; a bad one fails the job for good (no retry). */
function acceptPayload(ctx: WorkerContext, job: Job): TrialJobPayload {
  try {
    return parsePayload(job.data);
  } catch (error) {
    const message = error instanceof PayloadError ? error.message : `bad job payload: ${String(error)}`;
    ctx.log(`job ${job.id}: refused: ${message}`);
    throw new ctx.errors.UnrecoverableError(`${message} (worker ${ctx.me})`);
  }
}

/** Refuses the trial when this worker's data differs from the coordinator's. */
async function checkSameData(ctx: WorkerContext, payload: TrialJobPayload): Promise<void> {
  if (payload.fingerprint === undefined) return;
  const { trial, experiment } = payload;
  let here: DataFingerprint;
  try {
    here = await ctx.dataFingerprint(trial.config);
  } catch (error) {
    // Not final: another worker (or this one, once the data is installed) may have it.
    const why = firstLine(error);
    ctx.log(`trial ${experiment.id}/${trial.id}: the data "${trial.config.data}" cannot be loaded here: ${why}`);
    throw new Error(`the data "${trial.config.data}" cannot be loaded on worker ${ctx.me}: ${why}`);
  }
  const difference = fingerprintDifference(payload.fingerprint, here);
  if (difference !== null) {
    const message = `trial ${experiment.id}/${trial.id}: the data "${trial.config.data}" on worker ${ctx.me} differs from the coordinator's: ${difference}`;
    ctx.log(`${message}; refused`);
    throw new ctx.errors.UnrecoverableError(message);
  }
}

/** Aborts the trial when the coordinator asks (its stop key appears). */
function pollStopRequests(ctx: WorkerContext, jobId: string, controller: AbortController): ReturnType<typeof setInterval> {
  return setInterval(() => {
    ctx.control.get(stopKey(jobId)).then(
      (value) => {
        if (value !== null) controller.abort();
      },
      () => {},
    );
  }, STOP_POLL_MS);
}

/**
 * The trial's progress as job progress (batches at most once a second, every epoch), and after
 * each epoch the coordinator's answer when the trial waits for one (`waiter`, ASHA).
 */
function relayHooks(ctx: WorkerContext, job: Job, payload: TrialJobPayload, controller: AbortController, waiter: Redis | null): TrialHooks {
  let lastBatch = 0;
  const report = (progress: TrialJobProgress) => job.updateProgress(progress as unknown as object).catch(() => {});
  return {
    batch(progress) {
      const now = Date.now();
      if (now - lastBatch < BATCH_PROGRESS_MS && progress.batch < progress.batches) return;
      lastBatch = now;
      void report({ kind: 'batch', progress });
    },
    async epoch(record) {
      await report({ kind: 'epoch', record, worker: ctx.me });
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
}

/** Trains the trial in the pool's child process, relaying progress and stop requests. */
async function trainTrial(ctx: WorkerContext, job: Job, payload: TrialJobPayload): Promise<TrialOutcome> {
  const { trial } = payload;
  const jobId = String(job.id);
  const controller = new AbortController();
  ctx.running.set(jobId, controller);
  // BLPOP blocks its connection, so each trial that waits for answers gets its own; compare and
  // sweep send none (decisionTimeoutMs 0) and open none.
  const waiter = payload.decisionTimeoutMs > 0 ? ctx.control.duplicate() : null;
  waiter?.on('error', () => {});
  const stopPoll = pollStopRequests(ctx, jobId, controller);
  try {
    // The worker's own thread count, not the coordinator's: threads never change results.
    const { threads: _coordinatorThreads, ...config } = trial.config;
    const hooks = relayHooks(ctx, job, payload, controller, waiter);
    const handle = ctx.pool.start({ id: trial.id, config, runDir: trial.runDir, resume: true }, hooks);
    const stop = () => handle.stop();
    if (controller.signal.aborted) stop();
    else controller.signal.addEventListener('abort', stop, { once: true });
    return await handle.done;
  } finally {
    clearInterval(stopPoll);
    ctx.running.delete(jobId);
    waiter?.disconnect();
  }
}

/** What becomes of the job: its result, or handed back / retried (thrown). */
async function settleJob(ctx: WorkerContext, job: Job, token: string | undefined, payload: TrialJobPayload, outcome: TrialOutcome): Promise<TrialJobResult> {
  const { trial, experiment } = payload;
  if (outcome.status === 'interrupted' && ctx.stopping()) {
    // This worker is going away, not the coordinator asking: the trial goes back to the queue
    // (its checkpoint is written) and another worker continues it.
    ctx.log(`trial ${experiment.id}/${trial.id}: checkpointed and handed back to the queue`);
    await job.moveToWait(token);
    throw new ctx.errors.WaitingError();
  }
  if (outcome.status === 'failed' && outcome.record === null && /is in use by process \d+ on /.test(outcome.error ?? '')) {
    // Another process still writes this run folder (a killed worker's trial process finishing
    // its batch, or a worker whose lease has not expired yet): not a failure of the trial.
    // BullMQ retries the job after its backoff; by then the holder has let go or gone stale.
    ctx.log(`trial ${experiment.id}/${trial.id}: its folder is still held (${ctx.safe(outcome.error ?? '')}); retrying later`);
    throw new Error(`run folder busy: ${ctx.safe(outcome.error ?? '')}`);
  }
  const result: TrialJobResult = {
    status: outcome.status,
    worker: ctx.me,
    ...(outcome.error !== undefined ? { error: ctx.safe(outcome.error) } : {}),
    ...(outcome.report !== undefined ? { report: outcome.report } : {}),
  };
  if (outcome.status !== 'interrupted') await writeJsonAtomic(join(trial.runDir, OUTCOME_FILE), result);
  ctx.log(`trial ${experiment.id}/${trial.id}: ${outcome.status}${outcome.error ? `: ${ctx.safe(outcome.error)}` : ''}`);
  return result;
}

/** One job: validate, check the data, skip if already finished, train, settle. */
async function processJob(ctx: WorkerContext, job: Job, token?: string): Promise<TrialJobResult> {
  const payload = acceptPayload(ctx, job);
  const { trial, experiment } = payload;
  await checkSameData(ctx, payload);
  const done = await finishedOutcome(trial.runDir);
  if (done) {
    ctx.log(`trial ${experiment.id}/${trial.id}: already finished (${done.status}) by ${done.worker}; not trained again`);
    return done;
  }
  ctx.log(`trial ${experiment.id}/${trial.id}: started (job ${job.id})`);
  const outcome = await trainTrial(ctx, job, payload);
  return settleJob(ctx, job, token, payload, outcome);
}

export async function startQueueWorker(options: QueueWorkerOptions): Promise<RunningWorker> {
  const { Worker, UnrecoverableError, WaitingError } = await import('bullmq');
  const { Redis } = await import('ioredis');
  const { target, log } = options;
  let stopping = false;
  // One connection for the control keys (stop requests; decisions are awaited on a duplicate).
  const control = new Redis({ ...target.connection, maxRetriesPerRequest: null, lazyConnect: false });
  control.on('error', () => {
    /* ioredis reconnects by itself; BullMQ reports the outage below */
  });
  const ctx: WorkerContext = {
    me: workerName(),
    log,
    safe: (text) => redactSecrets(text, target.secrets),
    control,
    // The trial trains in a child process (the process pool's trial worker): this process's event
    // loop stays free to renew the job's lock, however long a batch, an epoch or a report takes.
    pool: new ProcessPoolExecutor({ slots: 1, threadsPerTrial: options.threads }),
    running: new Map(),
    dataFingerprint: fingerprintCache(),
    stopping: () => stopping,
    errors: { UnrecoverableError, WaitingError },
  };

  const worker = new Worker(QUEUE_NAME, (job: Job, token?: string) => processJob(ctx, job, token), {
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
    const line = ctx.safe(error instanceof Error ? error.message : String(error));
    if (line !== lastError) log(`queue ${target.display}: ${line}; retrying`);
    lastError = line;
  });
  const closed = worker.run().then(
    () => {},
    (error: unknown) => log(`worker stopped: ${ctx.safe(String(error))}`),
  );
  await worker.waitUntilReady();
  log(`worker ${ctx.me} waiting for trials on ${target.display}`);

  return {
    closed,
    async stop() {
      if (stopping) return;
      stopping = true;
      for (const controller of ctx.running.values()) controller.abort();
      await worker.close();
      await ctx.pool.close();
      control.disconnect();
      await closed;
    },
  };
}
