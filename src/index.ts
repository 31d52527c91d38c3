/**
 * densetrain's library API.
 *
 *   import { train, loadModel, backendInfo } from 'densetrain';
 *   const { record, model } = await train({ epochs: 5 }, { outDir: 'runs/first' });
 *   const probs = model.predict(x, count); // count x classes
 *   model.dispose();
 */
export { train } from './train/train.js';
export type { BatchEvent, StartEvent, TrainOptions, TrainResult } from './train/train.js';
export { DEFAULT_CONFIG } from './train/defaults.js';
export { loadModel, CheckpointError, MODEL_FILE, CHECKPOINT_FILE } from './train/checkpoint.js';
export type { LoadModelOptions } from './train/checkpoint.js';
export { createModel, DisposedError } from './model/mlp.js';
export type { CreateModelOptions, LossAndGradients, Model, ModelArchitecture } from './model/mlp.js';
export { backendInfo, formatBackendInfo, getKernels, selectKernels } from './kernels/index.js';
export type { BackendChoice, BackendInfo, BackendName, Kernels, KernelsInfo, KernelsOptions, Tensor } from './kernels/index.js';
export type { ActivationName } from './kernels/types.js';
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
