/**
 * Model files and resumable checkpoints, both safetensors (see safetensors.ts).
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
 * loadModel reads either, and plain PyTorch state dicts saved with safetensors
 * (`layers.{i}.weight` / `layers.{i}.bias`, F32): the architecture comes from the shapes and the
 * activation from the options.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { ActivationName, Kernels } from '../kernels/types.js';
import { ACTIVATION_NAMES } from '../kernels/types.js';
import { getKernels } from '../kernels/index.js';
import type { PixelScaling } from '../data/types.js';
import { Mlp, type Model, type ModelArchitecture } from '../model/mlp.js';
import type { Optimizer } from '../optim/optimizer.js';
import { CheckpointError, readSafetensors, writeSafetensors, type SafetensorsContents, type TensorEntry } from './safetensors.js';
import type { BatchRecord, EpochRecord, StopReason, TrainConfig } from './types.js';
import type { DataFingerprint } from '../data/fingerprint.js';
import { FORMAT_VERSION, parseCheckpointMetadata, parseModelMetadata, type RanOn } from './metadata.js';

export { CheckpointError } from './safetensors.js';

export const MODEL_FILE = 'model.safetensors';
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

function architectureOf(model: Mlp): ModelArchitecture {
  const a = model.architecture;
  return { layers: [...a.layers], activation: a.activation, alpha: a.alpha };
}

function parameterEntries(model: Mlp, prefix = ''): [string, TensorEntry][] {
  return model.parameters.map((p) => [prefix + p.name, { shape: [...p.shape], data: p.value.data.subarray(0, p.size) }]);
}

function modelMetadata(model: Model, format: string): Record<string, string> {
  return {
    format,
    version: FORMAT_VERSION,
    architecture: JSON.stringify(model.architecture),
    scaling: JSON.stringify(model.scaling),
    classNames: JSON.stringify(model.classNames),
  };
}

/** Writes a model's weights (and architecture) to `path` atomically. */
export async function saveModelFile(path: string, model: Mlp): Promise<void> {
  await writeSafetensors(path, parameterEntries(model), modelMetadata(model, 'densetrain-model'));
}

/** Writes a model file from stored parameter values (the best weights) without touching the live model. */
export async function saveModelValues(path: string, model: Mlp, values: Map<string, Float32Array>): Promise<void> {
  const entries: [string, TensorEntry][] = model.parameters.map((p) => [p.name, { shape: [...p.shape], data: values.get(p.name)! }]);
  await writeSafetensors(path, entries, modelMetadata(model, 'densetrain-model'));
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

/** A run directory or a file: the file inside the directory, else the path itself. */
async function resolveFile(path: string, fileInDir: string): Promise<string> {
  try {
    if ((await stat(path)).isDirectory()) return join(path, fileInDir);
  } catch {
    // Not there: readSafetensors reports it with the path.
  }
  return path;
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

/**
 * Refuses a file holding a NaN or an infinity in any tensor: densetrain never writes one (a run
 * that produces one is stopped before saving), so such a file is damaged or from elsewhere, and
 * a model built from it would only predict NaN.
 */
export function requireFinite(file: string, tensors: Map<string, TensorEntry>): void {
  for (const [name, t] of tensors) {
    const d = t.data;
    for (let i = 0; i < d.length; i++) {
      if (!Number.isFinite(d[i]!)) throw new CheckpointError(`${file}: tensor ${name} holds ${d[i]} at index ${i}; a model or checkpoint must hold finite numbers only`);
    }
  }
}

/** The tensor `name` from a file, checked against the expected element count. */
export function requireTensor(file: string, tensors: Map<string, TensorEntry>, name: string, size: number): Float32Array {
  const t = tensors.get(name);
  if (!t) throw new CheckpointError(`${file}: tensor ${name} is missing`);
  if (t.data.length !== size) throw new CheckpointError(`${file}: tensor ${name} has ${t.data.length} values, expected ${size}`);
  return t.data;
}

export interface LoadModelOptions {
  /** Hidden activation. Required for files without densetrain metadata; must agree with it otherwise. */
  activation?: ActivationName;
  /** leaky_relu slope (default 0.01 for foreign files). */
  alpha?: number;
  kernels?: Kernels;
  /** Rows per forward pass (predict works in chunks of this many). Default 256. */
  capacity?: number;
}

/** Architecture from tensor shapes: `layers.{k}.weight` 2-D [out, in], sorted by k (gaps allowed, as in nn.Sequential). */
function architectureFromShapes(file: string, contents: SafetensorsContents, activation: ActivationName, alpha: number): { arch: ModelArchitecture; names: Map<string, string> } {
  const found = new Map<number, { weight?: TensorEntry; bias?: TensorEntry; slope?: TensorEntry }>();
  const unexpected: string[] = [];
  for (const [name, t] of contents.tensors) {
    const m = /^layers\.(\d+)\.(weight|bias|prelu_slope)$/.exec(name);
    if (!m) {
      unexpected.push(name);
      continue;
    }
    const k = Number(m[1]);
    const slot = found.get(k) ?? {};
    if (m[2] === 'weight') slot.weight = t;
    else if (m[2] === 'bias') slot.bias = t;
    else slot.slope = t;
    found.set(k, slot);
  }
  if (unexpected.length > 0) {
    throw new CheckpointError(`${file}: unexpected tensors ${unexpected.slice(0, 5).join(', ')}${unexpected.length > 5 ? ', ...' : ''}; expected layers.{i}.weight [out, in] and layers.{i}.bias [out]`);
  }
  const indices = [...found.keys()].sort((a, b) => a - b);
  if (indices.length === 0) throw new CheckpointError(`${file}: no layers.{i}.weight tensors found`);
  const layers: number[] = [];
  const names = new Map<string, string>();
  const hiddenCount = indices.length - 1;
  indices.forEach((k, i) => {
    const slot = found.get(k)!;
    if (!slot.weight) throw new CheckpointError(`${file}: layers.${k}.bias has no matching layers.${k}.weight`);
    if (slot.weight.shape.length !== 2) throw new CheckpointError(`${file}: layers.${k}.weight must be 2-D [out, in], has shape [${slot.weight.shape.join(', ')}]`);
    const [out, inp] = slot.weight.shape as [number, number];
    if (i === 0) layers.push(inp);
    else if (inp !== layers[layers.length - 1]) {
      throw new CheckpointError(`${file}: layers.${k}.weight takes ${inp} inputs but the previous layer has ${layers[layers.length - 1]} outputs`);
    }
    layers.push(out);
    if (!slot.bias) throw new CheckpointError(`${file}: layers.${k}.bias is missing`);
    if (slot.bias.shape.length !== 1 || slot.bias.shape[0] !== out) {
      throw new CheckpointError(`${file}: layers.${k}.bias must have shape [${out}], has [${slot.bias.shape.join(', ')}]`);
    }
    names.set(`layers.${i}.weight`, `layers.${k}.weight`);
    names.set(`layers.${i}.bias`, `layers.${k}.bias`);
    if (slot.slope) {
      if (activation !== 'prelu') throw new CheckpointError(`${file}: has layers.${k}.prelu_slope but the activation is ${activation}`);
      if (i >= hiddenCount) throw new CheckpointError(`${file}: the output layer layers.${k} cannot have a prelu_slope`);
      names.set(`layers.${i}.prelu_slope`, `layers.${k}.prelu_slope`);
    } else if (activation === 'prelu' && i < hiddenCount) {
      throw new CheckpointError(`${file}: activation prelu needs layers.${k}.prelu_slope [1]`);
    }
  });
  return { arch: { layers, activation, alpha }, names };
}

/**
 * Loads a model: a densetrain model file or checkpoint (a run directory means its
 * model.safetensors), or a PyTorch-style state dict saved with safetensors.
 */
export async function loadModel(path: string, options: LoadModelOptions = {}): Promise<Model> {
  const file = await resolveFile(path, MODEL_FILE);
  const contents = await readSafetensors(file);
  const meta = contents.metadata;
  const ours = meta['format'] === 'densetrain-model' || meta['format'] === 'densetrain-checkpoint';
  if (options.activation !== undefined && !ACTIVATION_NAMES.includes(options.activation)) {
    throw new RangeError(`activation must be one of ${ACTIVATION_NAMES.join(', ')}; got ${JSON.stringify(options.activation)}`);
  }
  let arch: ModelArchitecture;
  let names: Map<string, string>;
  const checkedMeta = ours ? parseModelMetadata(file, meta) : null;
  if (checkedMeta) {
    arch = checkedMeta.architecture;
    if (options.activation !== undefined && options.activation !== arch.activation) {
      throw new CheckpointError(`${file}: the model was trained with activation ${arch.activation}, not ${options.activation}`);
    }
    // Weights keep their own names; the shapes must agree with the recorded architecture.
    const checked = architectureFromShapes(
      file,
      { tensors: new Map([...contents.tensors].filter(([n]) => n.startsWith('layers.'))), metadata: meta },
      arch.activation,
      arch.alpha,
    );
    if (checked.arch.layers.join(',') !== arch.layers.join(',')) {
      throw new CheckpointError(`${file}: tensor shapes give layers [${checked.arch.layers.join(', ')}] but the metadata says [${arch.layers.join(', ')}]`);
    }
    names = checked.names;
  } else {
    if (options.activation === undefined) {
      throw new CheckpointError(`${file}: has no densetrain metadata, so the hidden activation is unknown; pass { activation: 'relu' } (or the one the network was trained with)`);
    }
    const alpha = options.alpha ?? (options.activation === 'prelu' ? 0.25 : 0.01);
    ({ arch, names } = architectureFromShapes(file, contents, options.activation, alpha));
  }
  requireFinite(file, contents.tensors);
  const kernels = options.kernels ?? getKernels();
  const model = new Mlp(arch, { kernels, capacity: options.capacity ?? 256 });
  try {
    const values: Record<string, Float32Array> = {};
    for (const p of model.parameters) values[p.name] = requireTensor(file, contents.tensors, names.get(p.name) ?? p.name, p.size);
    model.setParameters(values);
    if (checkedMeta) {
      model.scaling = checkedMeta.scaling;
      model.classNames = checkedMeta.classNames;
    }
  } catch (error) {
    model.dispose();
    throw error;
  }
  return model;
}
