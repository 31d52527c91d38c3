/** Messages between the process pool (parent) and a trial worker process (child), over fork's IPC channel. */
import type { EpochRecord } from '../train/types.js';
import type { EpochDecision, TrialOutcome, TrialProgress, TrialSpec } from './executor.js';

export type ToWorker =
  | { type: 'run'; trial: TrialSpec }
  | { type: 'decision'; epoch: number; decision: EpochDecision }
  | { type: 'stop' };

export type FromWorker =
  | { type: 'ready' }
  | { type: 'batch'; progress: TrialProgress }
  | { type: 'epoch'; record: EpochRecord }
  | { type: 'done'; outcome: TrialOutcome };
