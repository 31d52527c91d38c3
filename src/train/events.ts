/** What train() tells its listeners: the event shapes and the hooks that receive them. */
import type { BackendInfo } from '../kernels/index.js';
import type { BatchRecord, EpochRecord, PrecisionUsed, RunRecord, TrainConfig } from './types.js';

/** What onBatch receives after every optimizer step. */
export interface BatchEvent extends BatchRecord {
  /** Batches per epoch. */
  batches: number;
  /** Samples in this batch (the last batch of an epoch may be smaller). */
  size: number;
  /** Accuracy on this batch (before the step, like the loss). */
  accuracy: number;
  samplesPerSecond: number;
  lr: number;
}

/** What onStart receives once the data, split and backend are known. */
export interface StartEvent {
  config: TrainConfig;
  backend: BackendInfo;
  dataset: RunRecord['dataset'];
  /** The GEMM precision asked for and used (bf16 falls back to fp32, said here, without bf16 GEMMs). */
  precision: PrecisionUsed;
  /** Epoch the run starts in (1, or later when resuming). */
  startEpoch: number;
  resumedFrom: string | null;
}

/** The listener part of train()'s options. */
export interface TrainHooks {
  onStart?: (event: StartEvent) => void;
  onBatch?: (event: BatchEvent) => void;
  /**
   * After every epoch's checkpoint. A returned promise is awaited before the next epoch (a
   * scheduler's decision; aborting `signal` in it stops the run at this epoch boundary).
   */
  onEpoch?: (record: EpochRecord) => void | Promise<void>;
}
