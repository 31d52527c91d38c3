/**
 * The modules the CLI drives, loaded when a command needs them (so `densetrain info` does not
 * pay for the report's chart libraries).
 *
 * TEMPORARY: the trainer, data and report modules are being written concurrently. Until they
 * land, they are imported through non-literal specifiers and typed by the interfaces below (the
 * names the CLI was briefed with). Each loader is replaced by a literal `import()` of the real
 * module once it exists.
 */
import type { Dataset } from '../data/types.js';
import type { Kernels } from '../kernels/types.js';
import type { EpochRecord, RunRecord, TrainConfig } from '../train/types.js';

async function optionalImport<T>(specifier: string): Promise<T | undefined> {
  try {
    return (await import(specifier)) as T;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ERR_MODULE_NOT_FOUND' && String((error as Error).message).includes(specifier.replace('../', ''))) return undefined;
    throw error;
  }
}

async function requiredImport<T>(specifier: string, what: string): Promise<T> {
  const module = await optionalImport<T>(specifier);
  if (module === undefined) throw new Error(`${what} is not available in this build (${specifier} is missing)`);
  return module;
}

// ---- trainer -------------------------------------------------------------------------------

export interface BatchEvent {
  epoch: number;
  batch: number;
  batches?: number;
  loss: number;
  [key: string]: unknown;
}

export interface TrainOptions {
  onBatch?: (event: BatchEvent) => void;
  onEpoch?: (event: EpochRecord) => void;
  signal?: AbortSignal;
  outDir?: string;
  dataset?: Dataset;
  kernels?: Kernels;
  resumeFrom?: string;
}

export interface LoadedModel {
  readonly inputSize: number;
  readonly classes: number;
  scaling: import('../data/types.js').PixelScaling | null;
  classNames: string[] | null;
  predict(x: Float32Array, count: number): Float32Array;
  dispose(): void;
}

export interface TrainerModule {
  train(config: Partial<TrainConfig>, options: TrainOptions): Promise<{ record: RunRecord; model: unknown }>;
}
export interface DefaultsModule {
  DEFAULT_CONFIG: TrainConfig;
}
export interface CheckpointModule {
  loadModel(path: string, options: { activation?: string; alpha?: number; kernels?: Kernels }): Promise<LoadedModel>;
}

export const loadTrainer = () => requiredImport<TrainerModule>('../train/train.js', 'the trainer');

/** Used until src/train/defaults.ts lands; mirrors the documented defaults. */
const FALLBACK_DEFAULTS: TrainConfig = {
  data: 'mnist-sample',
  layers: [784, 128, 64, 10],
  activation: 'relu',
  alpha: 0.01,
  init: 'auto',
  optimizer: 'sgd',
  lr: 0.05,
  momentum: 0.9,
  nesterov: false,
  beta1: 0.9,
  beta2: 0.999,
  eps: 1e-8,
  schedule: 'constant',
  stepSize: 10,
  gamma: 0.5,
  l2: 0,
  epochs: 10,
  batchSize: 64,
  valSplit: 0.1,
  patience: 0,
  seed: 1,
  standardize: false,
  backend: 'auto',
};

export async function loadDefaults(): Promise<TrainConfig> {
  const module = await optionalImport<DefaultsModule>('../train/defaults.js');
  return module?.DEFAULT_CONFIG ?? FALLBACK_DEFAULTS;
}

export async function loadModelLoader(): Promise<CheckpointModule['loadModel']> {
  for (const specifier of ['../train/checkpoint.js', '../model/checkpoint.js', '../train/train.js', '../model/mlp.js']) {
    const module = await optionalImport<Partial<CheckpointModule>>(specifier);
    if (module?.loadModel) return module.loadModel;
  }
  throw new Error('loading models is not available in this build (no loadModel export found)');
}

// ---- data and report (landed: literal imports, loaded when a command needs them) ------------

export type { DatasetListing } from '../data/registry.js';
export const loadData = () => import('../data/index.js');
export const loadDataOptional = () => import('../data/index.js');
export const loadReport = () => import('../report/index.js');
