/**
 * The queue executor: compare, sweep and tune with --queue become coordinators. Each trial is
 * one BullMQ job (at-least-once; a dead worker's job is handed to another, which resumes the
 * trial's checkpoint); progress and per-epoch results arrive as job progress events; the
 * scheduler's per-epoch answer goes back through a Redis list the worker waits on; the outcome
 * is the job's return value and the record is read from the run folder (shared storage).
 *
 * Job ids are <experiment>.<trial>.<submission>: a restarted coordinator (--resume) finds the
 * jobs of its trials and reattaches to those still waiting or running, takes the outcome of
 * those that finished, and submits a new job only for a trial that was interrupted or failed.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import type { Job, Queue, QueueEvents } from 'bullmq';
import type { Redis } from 'ioredis';
import { writeJsonAtomic } from '../train/run-folder.js';
import type { DataFingerprint } from '../data/fingerprint.js';
import type { RunRecord } from '../train/types.js';
import type { EpochDecision, Executor, TrialHandle, TrialHooks, TrialOutcome, TrialSpec } from './executor.js';
import {
  CONTROL_TTL_SECONDS,
  PAYLOAD_VERSION,
  QUEUE_NAME,
  QUEUE_PREFIX,
  decisionKey,
  encodeDecision,
  jobId,
  stopKey,
  type TrialJobPayload,
  type TrialJobProgress,
  type TrialJobResult,
} from './queue-protocol.js';
import { redactSecrets, type QueueTarget } from './queue-url.js';

/** The experiment's queue identity, kept in its folder so a restarted coordinator finds its jobs. */
export const QUEUE_EXPERIMENT_FILE = 'queue-experiment.json';

export async function experimentQueueId(outDir: string, queueDisplay: string): Promise<string> {
  const file = join(outDir, QUEUE_EXPERIMENT_FILE);
  if (existsSync(file)) {
    try {
      const saved = JSON.parse(await readFile(file, 'utf8')) as { id?: unknown };
      if (typeof saved.id === 'string' && /^[A-Za-z0-9_-]{1,64}$/.test(saved.id)) return saved.id;
    } catch {
      /* rewritten below */
    }
  }
  const id = `x${randomBytes(6).toString('hex')}`;
  // queueDisplay is the redacted URL: the password is never written to the folder.
  await writeJsonAtomic(file, { id, queue: queueDisplay, createdAt: new Date().toISOString() });
  return id;
}

export interface QueueExecutorOptions {
  target: QueueTarget;
  experimentId: string;
  /** The experiment folder (every run folder lies inside it; workers must reach it). */
  experimentDir: string;
  /** The coordinator's data fingerprint, checked by each worker. */
  fingerprint?: DataFingerprint;
  /** How long a worker waits for the answer after an epoch (default 30 s; 0: the scheduler never answers). */
  decisionTimeoutMs?: number;
  /** Attempts of a trial whose worker failed or found its folder busy (hand-overs of stalled jobs do not count). */
  attempts?: number;
}

interface Tracked {
  hooks: TrialHooks;
  trial: TrialSpec;
  settle(outcome: TrialOutcome): void;
  settled: boolean;
}

const ACTIVE_STATES = new Set(['waiting', 'active', 'delayed', 'prioritized', 'waiting-children', 'wait']);

export class QueueExecutor implements Executor {
  /** Every trial can be queued at once: workers pull them as they have room. */
  readonly slots = 100_000;
  readonly #options: QueueExecutorOptions;
  readonly #queue: Queue;
  readonly #events: QueueEvents;
  readonly #control: Redis;
  readonly #tracked = new Map<string, Tracked>();
  readonly #ready: Promise<void>;

  private constructor(options: QueueExecutorOptions, queue: Queue, events: QueueEvents, control: Redis) {
    this.#options = options;
    this.#queue = queue;
    this.#events = events;
    this.#control = control;
    events.on('progress', ({ jobId: id, data }) => this.#onProgress(id, data as unknown as TrialJobProgress));
    events.on('completed', ({ jobId: id, returnvalue }) => void this.#onCompleted(id, returnvalue as unknown));
    events.on('failed', ({ jobId: id, failedReason }) => void this.#onFailed(id, failedReason));
    this.#ready = events.waitUntilReady().then(() => {});
  }

  /** Connects to Redis (throws, with the password redacted, if it cannot). */
  static async open(options: QueueExecutorOptions): Promise<QueueExecutor> {
    const { Queue, QueueEvents } = await import('bullmq');
    const { Redis } = await import('ioredis');
    const connection = { ...options.target.connection, maxRetriesPerRequest: null };
    const queue = new Queue(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection });
    const events = new QueueEvents(QUEUE_NAME, { prefix: QUEUE_PREFIX, connection });
    const control = new Redis(connection);
    // Connection errors are retried by ioredis; a refused login is final, and reported at once.
    let refused: (error: Error) => void = () => {};
    const loginRefused = new Promise<never>((_, reject) => (refused = reject));
    loginRefused.catch(() => {});
    const onError = (error: Error) => {
      if (/WRONGPASS|NOAUTH|invalid password|invalid username-password/i.test(error.message)) refused(error);
    };
    queue.on('error', onError);
    events.on('error', onError);
    control.on('error', onError);
    const executor = new QueueExecutor(options, queue, events, control);
    try {
      await Promise.race([
        Promise.all([queue.waitUntilReady(), executor.#ready, control.ping()]),
        loginRefused,
        new Promise((_, reject) => setTimeout(() => reject(new Error('no answer within 10 s')), 10_000).unref()),
      ]);
    } catch (error) {
      executor.#disconnect();
      const why = redactSecrets(error instanceof Error ? error.message : String(error), options.target.secrets);
      throw new Error(`cannot reach the queue ${options.target.display}: ${why}`);
    }
    return executor;
  }

  start(trial: TrialSpec, hooks: TrialHooks): TrialHandle {
    let settle!: (outcome: TrialOutcome) => void;
    const done = new Promise<TrialOutcome>((resolve) => (settle = resolve));
    let currentJob: string | null = null;
    let stopRequested = false;
    const requestStop = (id: string) => {
      this.#control.set(stopKey(id), '1', 'EX', CONTROL_TTL_SECONDS).catch(() => {});
    };
    this.#submit(trial, hooks, settle)
      .then((id) => {
        currentJob = id;
        if (stopRequested) requestStop(id);
      })
      .catch((error: unknown) => {
        const why = redactSecrets(error instanceof Error ? error.message : String(error), this.#options.target.secrets);
        settle({ status: 'failed', record: null, error: `could not queue the trial: ${why}` });
      });
    return {
      done,
      stop: () => {
        stopRequested = true;
        if (currentJob !== null) requestStop(currentJob);
      },
    };
  }

  /** Finds the trial's latest job, reattaches to it or takes its outcome, or submits a new one. */
  async #submit(trial: TrialSpec, hooks: TrialHooks, settle: (o: TrialOutcome) => void): Promise<string> {
    await this.#ready;
    const { experimentId } = this.#options;
    let submission = 1;
    let latest: Job | undefined;
    for (;;) {
      const job = await this.#queue.getJob(jobId(experimentId, trial.id, submission));
      if (!job) break;
      latest = job;
      submission++;
    }
    if (latest) {
      const state = await latest.getState();
      const result = latest.returnvalue as TrialJobResult | null | undefined;
      const reusable = ACTIVE_STATES.has(state) || (state === 'completed' && result && result.status !== 'interrupted');
      if (reusable || (state === 'completed' && !trial.resume)) {
        const id = String(latest.id);
        this.#track(id, trial, hooks, settle);
        // It may have finished before we listened: settle from its state now.
        if (state === 'completed') await this.#onCompleted(id, result);
        return id;
      }
    }
    const id = jobId(experimentId, trial.id, submission);
    this.#track(id, trial, hooks, settle);
    const payload: TrialJobPayload = {
      v: PAYLOAD_VERSION,
      experiment: { id: experimentId, dir: resolve(this.#options.experimentDir) },
      trial: { id: trial.id, config: trial.config, runDir: resolve(trial.runDir) },
      ...(this.#options.fingerprint !== undefined ? { fingerprint: this.#options.fingerprint } : {}),
      decisionTimeoutMs: this.#options.decisionTimeoutMs ?? 30_000,
    };
    await this.#queue.add(trial.id, payload, {
      jobId: id,
      attempts: this.#options.attempts ?? 6,
      // A folder still held by a dying process frees up within seconds; a lease, within 30 s.
      backoff: { type: 'exponential', delay: 1000 },
      removeOnComplete: false,
      removeOnFail: false,
    });
    return id;
  }

  #track(id: string, trial: TrialSpec, hooks: TrialHooks, settle: (o: TrialOutcome) => void): void {
    this.#tracked.set(id, { trial, hooks, settled: false, settle });
  }

  #onProgress(id: string, data: TrialJobProgress): void {
    const tracked = this.#tracked.get(id);
    if (!tracked || typeof data !== 'object' || data === null) return;
    if (data.kind === 'batch') tracked.hooks.batch?.(data.progress);
    else if (data.kind === 'epoch') {
      const epoch = data.record.epoch;
      if (this.#options.decisionTimeoutMs === 0) {
        // Nobody waits for an answer: the hook still sees the epoch (progress, tables).
        void Promise.resolve()
          .then(() => tracked.hooks.epoch(data.record))
          .catch(() => {});
        return;
      }
      Promise.resolve()
        .then(() => tracked.hooks.epoch(data.record))
        .catch((): EpochDecision => ({ stop: false }))
        .then(async (decision) => {
          const key = decisionKey(id, epoch);
          await this.#control.multi().rpush(key, encodeDecision(decision)).expire(key, CONTROL_TTL_SECONDS).exec();
        })
        .catch(() => {
          /* the worker waits out its timeout and continues */
        });
    }
  }

  async #onCompleted(id: string, value: unknown): Promise<void> {
    const tracked = this.#tracked.get(id);
    if (!tracked || tracked.settled) return;
    const result = (typeof value === 'string' ? JSON.parse(value) : value) as TrialJobResult | null;
    let record: RunRecord | null = null;
    try {
      record = JSON.parse(await readFile(join(tracked.trial.runDir, 'metrics.json'), 'utf8')) as RunRecord;
    } catch {
      record = null;
    }
    this.#settle(id, {
      status: result?.status ?? 'failed',
      record,
      ...(result?.error !== undefined ? { error: result.error } : {}),
      ...(result?.report !== undefined ? { report: result.report } : {}),
    });
  }

  async #onFailed(id: string, reason: string): Promise<void> {
    const tracked = this.#tracked.get(id);
    if (!tracked || tracked.settled) return;
    // Failed attempts with retries left go back to waiting: only the final failure ends the trial.
    const job = await this.#queue.getJob(id);
    const state = job ? await job.getState() : 'failed';
    if (state !== 'failed') return;
    this.#settle(id, { status: 'failed', record: null, error: redactSecrets(reason, this.#options.target.secrets) });
  }

  #settle(id: string, outcome: TrialOutcome): void {
    const tracked = this.#tracked.get(id);
    if (!tracked || tracked.settled) return;
    tracked.settled = true;
    this.#tracked.delete(id);
    tracked.settle(outcome);
  }

  /** Drops the connections without waiting for Redis (which may be unreachable). */
  #disconnect(): void {
    void this.#events.disconnect().catch(() => {});
    void this.#queue.disconnect().catch(() => {});
    this.#control.disconnect();
  }

  async close(): Promise<void> {
    await Promise.allSettled([this.#events.close(), this.#queue.close()]);
    this.#control.disconnect();
  }
}
