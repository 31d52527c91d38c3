/**
 * The executor contract: how a scheduler (tune, compare, sweep) runs trials without knowing
 * where they run. An executor starts a trial, relays its progress and per-epoch results, lets
 * the scheduler answer each epoch (continue or stop: ASHA pruning), reports how it ended, and
 * stops it on request (Ctrl-C: after its batch, with a checkpoint).
 *
 * Implementations: in-process (src/experiments/in-process.ts: tests, and --parallel 1) and a
 * local pool of worker processes (src/experiments/pool.ts). A queue executor (a coordinator
 * enqueueing trials for `densetrain worker` processes on other machines) fits the same
 * contract: a trial is only data (its validated config and run folder), and running it again
 * with `resume` continues its checkpoint wherever it runs.
 */
import type { EpochRecord, RunRecord, TrainConfig } from '../train/types.js';

/** A trial: a validated, complete training config and the run folder it trains into. */
export interface TrialSpec {
  /** Unique in an experiment: 't001', 'relu-s2'. */
  id: string;
  config: TrainConfig;
  /** The run folder (checkpoint, model, metrics.json, report.html). */
  runDir: string;
  /** Continue the checkpoint in runDir, if there is one (else start fresh). */
  resume: boolean;
}

/** Where a running trial is (for progress bars). */
export interface TrialProgress {
  epoch: number;
  batch: number;
  batches: number;
  loss: number;
}

/** The scheduler's answer after an epoch. */
export type EpochDecision = { stop: false } | { stop: true; reason: string };
export const CONTINUE: EpochDecision = Object.freeze({ stop: false });

export interface TrialHooks {
  /** Progress within an epoch (may be throttled by the executor). */
  batch?(progress: TrialProgress): void;
  /**
   * After each epoch (its checkpoint written). The trial waits for the answer (the scheduler
   * answers from what it has: it never waits for other trials).
   */
  epoch(record: EpochRecord): EpochDecision | Promise<EpochDecision>;
}

/**
 * How a trial ended. 'pruned': the scheduler stopped it; 'interrupted': stop() (or the
 * process's interrupt) stopped it, its checkpoint resumes it; 'failed': an error or a crashed
 * process (record null unless the run got as far as a record).
 */
export type TrialStatus = 'completed' | 'pruned' | 'diverged' | 'interrupted' | 'failed';

export interface TrialOutcome {
  status: TrialStatus;
  record: RunRecord | null;
  /** Why it failed (one line). */
  error?: string;
  /** report.html in runDir, if it was written. */
  report?: string;
}

export interface TrialHandle {
  /** Resolves when the trial has ended (never rejects: failures are outcomes). */
  readonly done: Promise<TrialOutcome>;
  /** Stop after the current batch with a checkpoint (outcome 'interrupted'). */
  stop(): void;
}

export interface Executor {
  /** Trials it runs at once; the scheduler starts no more than this many. */
  readonly slots: number;
  start(trial: TrialSpec, hooks: TrialHooks): TrialHandle;
  /** Releases workers (after every trial has ended). */
  close(): Promise<void>;
}
