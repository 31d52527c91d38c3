/**
 * densetrain's library API.
 *
 *   import { train, loadModel, backendInfo } from 'densetrain';
 *   const { record, model } = await train({ epochs: 5 }, { outDir: 'runs/first' });
 *   const probs = model.predict(x, count); // count x classes
 *   model.dispose();
 *
 *   import { tune } from 'densetrain';
 *   const { leaderboard } = await tune({ lr: { min: 0.001, max: 0.3, log: true } }, { outDir: 'runs/tune', trials: 20, base: { epochs: 9 } });
 */
export { train } from './train/train.js';
export type { BatchEvent, StartEvent, TrainOptions, TrainResult } from './train/train.js';
export { DEFAULT_CONFIG } from './train/defaults.js';
export { loadModel, MODEL_FILE } from './model/load.js';
export { CheckpointError } from './model/safetensors.js';
export { CHECKPOINT_FILE } from './train/checkpoint.js';
export type { LoadModelOptions } from './model/load.js';
export { createModel, DisposedError } from './model/mlp.js';
export type { CreateModelOptions, LossAndGradients, Model, ModelArchitecture } from './model/mlp.js';
export { backendInfo, formatBackendInfo, getKernels, selectKernels } from './kernels/index.js';
export type { BackendChoice, BackendInfo, BackendName, Kernels, KernelsInfo, KernelsOptions, Tensor } from './kernels/index.js';
export type { ActivationName } from './kernels/types.js';
export { tune, readTuneFile, rankTrials } from './experiments/tune.js';
export type { TrialState, TrialSummary, TuneEvent, TuneFile, TuneHooks, TuneOptions, TuneResult, TuneSettings } from './experiments/tune.js';
export { parseSpace, readSpace } from './experiments/space.js';
export type { Space, SpaceParam } from './experiments/space.js';
export { AshaScheduler, rungEpochs } from './experiments/asha.js';
export type { AshaOptions, RungEntry, SchedulerName } from './experiments/asha.js';
export { InProcessExecutor } from './experiments/in-process.js';
export { ProcessPoolExecutor } from './experiments/pool.js';
export type { EpochDecision, Executor, TrialHandle, TrialHooks, TrialOutcome, TrialProgress, TrialSpec, TrialStatus } from './experiments/executor.js';
export { spread } from './train/spread.js';
export type { Spread } from './train/spread.js';
export { loadDataset } from './data/registry.js';
export { fingerprintDataset, fingerprintDifference } from './data/fingerprint.js';
export type { DataFingerprint } from './data/fingerprint.js';
export { acquireRunLock, assertNotLocked, readRunLock, staleReason, RunLockedError, LOCK_FILE } from './train/run-lock.js';
export type { LockOptions, LockRecord, RunLock } from './train/run-lock.js';
export type { LoadOptions } from './data/registry.js';
export type { Dataset, ImageSet, PixelScaling } from './data/types.js';
export type {
  BatchRecord,
  EpochRecord,
  EvalResult,
  InitName,
  OptimizerName,
  RunRecord,
  ScheduleName,
  StopReason,
  TrainConfig,
} from './train/types.js';
