/**
 * The shapes that flow between the trainer, the CLI, checkpoints and reports. metrics.json
 * in a run folder is a RunRecord.
 */
import type { ActivationName, BackendChoice, Precision } from '../kernels/types.js';
import type { BackendInfo } from '../kernels/index.js';
import type { DataFingerprint } from '../data/fingerprint.js';

import type { InitName } from '../model/init.js';
import type { OptimizerName } from '../optim/optimizer.js';
import type { ScheduleName } from '../optim/schedule.js';

// Each name list lives where it is implemented; the config and the public API take them from here too.
export type { InitName, OptimizerName, ScheduleName };

/** Everything that defines a training run. The CLI and config files produce exactly this. */
export interface TrainConfig {
  /** Dataset name ('mnist-sample', 'fashion-mnist', 'mnist') or a directory / file path. */
  data: string;
  /** Layer sizes, input first, classes last: [784, 128, 64, 10]. */
  layers: number[];
  /** Activation of every hidden layer (the output layer is linear into softmax). */
  activation: ActivationName;
  /** leaky_relu slope (any finite real); for prelu, the initial slope. */
  alpha: number;
  init: InitName;
  optimizer: OptimizerName;
  lr: number;
  /** SGD momentum (0 = plain SGD). */
  momentum: number;
  nesterov: boolean;
  beta1: number;
  beta2: number;
  eps: number;
  schedule: ScheduleName;
  /** step schedule: multiply lr by gamma every stepSize epochs. */
  stepSize: number;
  gamma: number;
  /** L2 coefficient lambda: loss += 0.5 * lambda * sum of squared weights (not biases, not slopes). */
  l2: number;
  epochs: number;
  batchSize: number;
  /** Fraction of the training set held out for validation (0 = none). */
  valSplit: number;
  /** Early stopping: epochs without validation-loss improvement before stopping (0 = off). */
  patience: number;
  seed: number;
  /** Standardise pixels with the training split's mean and std instead of scaling to [0, 1]. */
  standardize: boolean;
  backend: BackendChoice;
  /**
   * GEMM precision: 'fp32', or 'bf16' mixed precision (operands rounded to bfloat16, float32
   * sums; weights, gradients, optimizer, softmax and loss in float32). Where the backend has no
   * bf16 GEMMs the run says so and trains in fp32 (RunRecord.precision says what ran).
   */
  precision: Precision;
  /** Native threads (undefined: DENSETRAIN_THREADS or the CPU count). */
  threads?: number | undefined;
}

/** The GEMM precision a run asked for, the one it used, and what ran it (or why bf16 did not). */
export interface PrecisionUsed {
  requested: Precision;
  used: Precision;
  /** bf16: the kernels ('avx512-bf16 (vdpbf16ps)'); a fallback: why bf16 was not available. */
  detail: string;
}

export interface BatchRecord {
  epoch: number;
  batch: number;
  /**
   * Mean loss of the batch, rounded to float32: the history is kept for every batch of a run and
   * stored in each checkpoint as a float32 tensor (exact), not as a growing JSON string.
   */
  loss: number;
}

export interface EpochRecord {
  epoch: number;
  trainLoss: number;
  trainAccuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  lr: number;
  seconds: number;
  samplesPerSecond: number;
  /** Learned PReLU slope of each hidden layer at the end of the epoch (prelu only). */
  preluSlopes?: number[];
}

export interface EvalResult {
  loss: number;
  accuracy: number;
  count: number;
  /** confusion[true][predicted] counts. */
  confusion: number[][];
}

export type StopReason = 'completed' | 'early-stopping' | 'diverged' | 'interrupted';

export interface RunRecord {
  version: 1;
  config: TrainConfig;
  dataset: {
    name: string;
    source: string;
    classNames: string[];
    trainCount: number;
    valCount: number;
    testCount: number;
    height: number;
    width: number;
    /** What the training data was, to tell it from other data of the same size (absent in older records). */
    fingerprint?: DataFingerprint;
  };
  backend: BackendInfo;
  /** GEMM precision the run used (config.precision unless the backend had no bf16), and how. */
  precision: PrecisionUsed;
  startedAt: string;
  finishedAt: string;
  stopReason: StopReason;
  /** For 'diverged' and 'interrupted': what happened, where. */
  stopMessage?: string;
  /** Epoch (1-based) whose weights were kept as the final model (the best validation loss). */
  bestEpoch: number;
  epochs: EpochRecord[];
  batches: BatchRecord[];
  test: EvalResult | null;
  seconds: number;
}
