/**
 * What a coordinator (compare, sweep or tune with --queue) and `densetrain worker` processes
 * say to each other through Redis. BullMQ carries the trials (one job each: at-least-once
 * delivery, locks renewed while a worker lives, a dead worker's job handed to another) and the
 * progress events; two small Redis lists carry what BullMQ has no channel for: the
 * scheduler's answer after each epoch (ASHA) and a request to stop a trial (Ctrl-C).
 *
 * A job payload is untrusted input to the worker: it is validated here (the trial's config
 * with the same schema as a config file, the run folder inside the experiment folder) before
 * anything runs; a bad payload fails that job with a clear reason and the worker carries on.
 */
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { z } from 'zod';
import type { DataFingerprint } from '../data/fingerprint.js';
import { trainConfigSchema } from '../train/schema.js';
import type { EpochRecord, TrainConfig } from '../train/types.js';
import type { EpochDecision, TrialProgress, TrialStatus } from './executor.js';

/** The BullMQ queue every coordinator and worker uses (the key prefix keeps it apart from other apps). */
export const QUEUE_NAME = 'trials';
export const QUEUE_PREFIX = 'densetrain';
export const PAYLOAD_VERSION = 1;

/** The job id of a trial: an experiment's trial has one job per submission (resumes add one). */
export function jobId(experimentId: string, trialId: string, submission: number): string {
  return `${experimentId}.${trialId}.${submission}`;
}

/** Redis list the coordinator pushes its answer for one epoch of one job onto. */
export function decisionKey(job: string, epoch: number): string {
  return `${QUEUE_PREFIX}:decision:${job}:${epoch}`;
}
/** Redis key set when the coordinator asks a job's trial to stop after its batch. */
export function stopKey(job: string): string {
  return `${QUEUE_PREFIX}:stop:${job}`;
}
/** How long those keys live: long enough for any epoch, short enough to clean up after a dead coordinator. */
export const CONTROL_TTL_SECONDS = 24 * 3600;

// Ids become part of BullMQ job ids and Redis keys: no colon, slash, backslash or white space.
const idSchema = z.string().regex(/^[^\s:/\\]{1,128}$/, 'must be 1-128 characters without white space, ":", "/" or "\\"');

const payloadSchema = z.strictObject({
  v: z.literal(PAYLOAD_VERSION),
  experiment: z.strictObject({ id: idSchema, dir: z.string().min(1).refine(isAbsolute, 'must be an absolute path') }),
  trial: z.strictObject({
    id: idSchema,
    config: z.unknown(),
    runDir: z.string().min(1).refine(isAbsolute, 'must be an absolute path'),
  }),
  /** The coordinator's view of the data (a worker with other data refuses the trial). */
  fingerprint: z
    .strictObject({
      version: z.literal(1),
      trainCount: z.number().int().min(0),
      testCount: z.number().int().min(0),
      height: z.number().int().min(1),
      width: z.number().int().min(1),
      classes: z.number().int().min(1),
      sha256: z.string().regex(/^[0-9a-f]{64}$/),
    })
    .optional(),
  /** Ask the worker to wait this long for the scheduler's answer after each epoch, at most. */
  decisionTimeoutMs: z.number().int().min(0).max(3_600_000),
});

export interface TrialJobPayload {
  v: typeof PAYLOAD_VERSION;
  experiment: { id: string; dir: string };
  trial: { id: string; config: TrainConfig; runDir: string };
  fingerprint?: DataFingerprint;
  decisionTimeoutMs: number;
}

export class PayloadError extends Error {
  override name = 'PayloadError';
}

function issuePath(issue: z.core.$ZodIssue): string {
  return issue.path.length === 0 ? 'payload' : issue.path.map(String).join('.');
}

/** The payload, checked; throws a PayloadError naming the first problem. */
export function parsePayload(data: unknown): TrialJobPayload {
  const envelope = payloadSchema.safeParse(data);
  if (!envelope.success) {
    const issue = envelope.error.issues[0]!;
    throw new PayloadError(`bad job payload: ${issuePath(issue)} ${issue.message}`);
  }
  const config = trainConfigSchema.safeParse(envelope.data.trial.config);
  if (!config.success) {
    const issue = config.error.issues[0]!;
    throw new PayloadError(`bad job payload: trial.config.${issue.path.map(String).join('.')} ${issue.message}`);
  }
  const { experiment, trial } = envelope.data;
  // A worker never writes outside the experiment's folder: the run folder must lie inside it.
  const inside = relative(resolve(experiment.dir), resolve(trial.runDir));
  if (inside === '' || inside.startsWith(`..${sep}`) || inside === '..' || isAbsolute(inside)) {
    throw new PayloadError(`bad job payload: trial.runDir ${JSON.stringify(trial.runDir)} is not inside the experiment folder ${JSON.stringify(experiment.dir)}`);
  }
  return {
    v: PAYLOAD_VERSION,
    experiment,
    trial: { id: trial.id, config: config.data as TrainConfig, runDir: resolve(trial.runDir) },
    ...(envelope.data.fingerprint !== undefined ? { fingerprint: envelope.data.fingerprint } : {}),
    decisionTimeoutMs: envelope.data.decisionTimeoutMs,
  };
}

/** Job progress events (BullMQ's updateProgress), worker -> coordinator. */
export type TrialJobProgress =
  | { kind: 'batch'; progress: TrialProgress }
  | { kind: 'epoch'; record: EpochRecord; worker: string };

/** A job's return value: how the trial ended. The record itself is in runDir/metrics.json (shared storage). */
export interface TrialJobResult {
  status: TrialStatus;
  error?: string;
  report?: string;
  /** host:pid of the worker that finished it. */
  worker: string;
}

/** The decision as stored in its Redis list. */
export function encodeDecision(decision: EpochDecision): string {
  return JSON.stringify(decision);
}

export function decodeDecision(text: string | null): EpochDecision {
  if (text === null) return { stop: false };
  try {
    const parsed = JSON.parse(text) as { stop?: unknown; reason?: unknown };
    if (parsed.stop === true) return { stop: true, reason: typeof parsed.reason === 'string' ? parsed.reason : 'stopped by the scheduler' };
  } catch {
    /* a malformed answer is no answer: the trial continues */
  }
  return { stop: false };
}
