/**
 * Resumable checkpoints (safetensors, see model/safetensors.ts); model files are written by
 * model/save.ts and read by model/load.ts.
 *
 * A run directory holds:
 * - model.safetensors: the weights a user wants (the best epoch's by validation loss so far;
 *   at the end of a run, the final model returned by train()). Tensors `layers.{i}.weight`
 *   [out, in], `layers.{i}.bias` [out], `layers.{i}.prelu_slope` [1] (prelu only).
 *   __metadata__: format 'densetrain-model', version, architecture, scaling, classNames, sha256 (tensor data) and header_sha256 (header), both checked on load.
 * - checkpoint.safetensors: everything needed to continue the run bit for bit: the current
 *   weights (same names), the optimizer state (`optim.layers.{i}.weight.m` / `.v` for Adam,
 *   `.velocity` for SGD with momentum), the best weights so far (`best.layers.{i}.weight`, ...),
 *   and in __metadata__ (JSON strings) the config, the training state (position, rng state,
 *   history, best epoch) and the scaling. format 'densetrain-checkpoint'.
 *
 * loadModel (model/load.ts) reads either, and plain PyTorch state dicts saved with safetensors
 * (`layers.{i}.weight` / `layers.{i}.bias`, F32): the architecture comes from the shapes and the
 * activation from the options.
 */
import type { PixelScaling } from '../data/types.js';
import type { DataFingerprint } from '../data/fingerprint.js';
import { requireFinite, resolveFile } from '../model/load.js';
import type { Mlp } from '../model/mlp.js';
import { CheckpointError, readSafetensors, writeSafetensors, type TensorEntry } from '../model/safetensors.js';
import { modelMetadata, parameterEntries } from '../model/save.js';
import type { ModelArchitecture } from '../model/types.js';
import type { Optimizer } from '../optim/optimizer.js';
import type { BatchRecord, EpochRecord, StopReason, TrainConfig } from './types.js';
import { parseCheckpointMetadata, type RanOn } from './metadata.js';
export const CHECKPOINT_FILE = 'checkpoint.safetensors';

/** Where a run stands, saved in checkpoint.safetensors. */
export interface TrainingState {
  /** Epochs completed. */
  epoch: number;
  /** Batches completed in the epoch in progress (epoch + 1); 0 at an epoch boundary. */
  batch: number;
  /** Rng state at the start of the epoch in progress, before its shuffle. */
  rngEpochStart: number[];
  optimizerSteps: number;
  /** Epoch whose weights are the best so far (0: none completed yet, initial weights). */
  bestEpoch: number;
  bestValLoss: number | null;
  epochsWithoutImprovement: number;
  epochs: EpochRecord[];
  batches: BatchRecord[];
  /** Running sums of the epoch in progress (for its EpochRecord after a mid-epoch resume). */
  partial: { lossSum: number; correct: number; seen: number; seconds: number };
  startedAt: string;
  /** Training seconds spent before this checkpoint. */
  seconds: number;
  /** Split sizes, checked on resume (the same seed and data give the same split). */
  dataset: { trainCount: number; valCount: number; testCount: number };
  /** Why the run that wrote this checkpoint stopped, if it did. */
  stopReason?: StopReason;
  /** The backend, ISA and threads that actually ran (absent in older checkpoints). */
  ranOn?: RanOn;
  /** The training data's fingerprint (absent in older checkpoints). */
  data?: DataFingerprint;
}

export interface CheckpointContents {
  file: string;
  architecture: ModelArchitecture;
  config: TrainConfig;
  state: TrainingState;
  scaling: PixelScaling | null;
  classNames: string[] | null;
  tensors: Map<string, TensorEntry>;
}

export async function writeCheckpoint(
  path: string,
  run: { model: Mlp; optimizer: Optimizer; best: Map<string, Float32Array>; config: TrainConfig; state: TrainingState },
): Promise<void> {
  const { model, optimizer, best, config, state } = run;
  const entries = parameterEntries(model);
  for (const [name, t] of optimizer.stateTensors()) {
    const paramName = name.slice('optim.'.length, name.lastIndexOf('.'));
    const shape = model.parameters.find((p) => p.name === paramName)?.shape ?? [t.length];
    entries.push([name, { shape: [...shape], data: t.data.subarray(0, t.length) }]);
  }
  for (const p of model.parameters) entries.push([`best.${p.name}`, { shape: [...p.shape], data: best.get(p.name)! }]);
  entries.push([BATCHES_TENSOR, { shape: [state.batches.length, 3], data: encodeBatches(state.batches) }]);
  const { batches: _inTensor, ...rest } = state;
  await writeSafetensors(path, entries, {
    ...modelMetadata(model, 'densetrain-checkpoint'),
    config: JSON.stringify(config),
    training: JSON.stringify(rest),
    optimizer: optimizer.name,
  });
}

/**
 * The per-batch history (epoch, batch, loss) is a float32 tensor [batches, 3] in the checkpoint,
 * not part of the JSON training state: written after every epoch, a JSON copy of it grows with
 * the run and made V8's heap (and RSS) grow by ~0.1 MB per epoch (21 MB over 200 epochs of
 * mnist-sample; 6 MB with the tensor). Losses are float32 in the record, epoch and batch numbers
 * are integers below 2^24: all exact in float32.
 */
const BATCHES_TENSOR = 'training.batches';
const F32_EXACT_INT = 2 ** 24;

function encodeBatches(batches: readonly BatchRecord[]): Float32Array {
  const out = new Float32Array(batches.length * 3);
  for (let i = 0; i < batches.length; i++) {
    const b = batches[i]!;
    if (!(b.epoch < F32_EXACT_INT && b.batch < F32_EXACT_INT)) throw new RangeError(`batch record ${i}: epoch ${b.epoch} / batch ${b.batch} too large to store exactly`);
    out[3 * i] = b.epoch;
    out[3 * i + 1] = b.batch;
    out[3 * i + 2] = b.loss;
  }
  return out;
}

function decodeBatches(file: string, t: TensorEntry | undefined, state: Partial<TrainingState>): BatchRecord[] {
  if (t === undefined) {
    // Checkpoints written before the tensor existed keep the history in the JSON state (checked by metadata.ts).
    if (Array.isArray(state.batches)) return state.batches;
    throw new CheckpointError(`${file}: tensor ${BATCHES_TENSOR} is missing`);
  }
  if (t.shape.length !== 2 || t.shape[1] !== 3) throw new CheckpointError(`${file}: tensor ${BATCHES_TENSOR} has shape [${t.shape.join(', ')}], expected [batches, 3]`);
  const out: BatchRecord[] = new Array(t.shape[0]!);
  for (let i = 0; i < out.length; i++) out[i] = { epoch: t.data[3 * i]!, batch: t.data[3 * i + 1]!, loss: t.data[3 * i + 2]! };
  return out;
}

function withBatches(file: string, t: TensorEntry | undefined, state: TrainingState): TrainingState {
  return { ...state, batches: decodeBatches(file, t, state) };
}

/** Reads a resumable checkpoint (a run directory or a checkpoint.safetensors path). */
export async function readCheckpoint(path: string): Promise<CheckpointContents> {
  const file = await resolveFile(path, CHECKPOINT_FILE);
  const contents = await readSafetensors(file);
  const meta = contents.metadata;
  if (meta['format'] !== 'densetrain-checkpoint') {
    throw new CheckpointError(`${file}: not a resumable densetrain checkpoint (format ${JSON.stringify(meta['format'] ?? null)}); resume from a run directory's ${CHECKPOINT_FILE}`);
  }
  const checked = parseCheckpointMetadata(file, meta);
  requireFinite(file, contents.tensors);
  return {
    file,
    architecture: checked.architecture,
    config: checked.config,
    state: withBatches(file, contents.tensors.get(BATCHES_TENSOR), checked.training as TrainingState),
    scaling: checked.scaling,
    classNames: checked.classNames,
    tensors: contents.tensors,
  };
}

