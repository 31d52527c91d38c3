/**
 * Loading a model: a densetrain model file or checkpoint (a run folder means its
 * model.safetensors), or a PyTorch-style state dict saved with safetensors, every tensor and
 * metadata field checked before a model is built from it.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { InputError } from '../input-error.js';
import { getKernels } from '../kernels/index.js';
import { ACTIVATION_NAMES, type ActivationName, type Kernels } from '../kernels/types.js';
import { parseModelMetadata } from './metadata.js';
import { Mlp, type Model } from './mlp.js';
import { CheckpointError, readSafetensors, type SafetensorsContents, type TensorEntry } from './safetensors.js';
import type { ModelArchitecture } from './types.js';

export const MODEL_FILE = 'model.safetensors';

/** A run directory or a file: the file inside the directory, else the path itself. */
export async function resolveFile(path: string, fileInDir: string): Promise<string> {
  try {
    if ((await stat(path)).isDirectory()) return join(path, fileInDir);
  } catch {
    // Not there: readSafetensors reports it with the path.
  }
  return path;
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
    throw new InputError(`activation must be one of ${ACTIVATION_NAMES.join(', ')}; got ${JSON.stringify(options.activation)}`);
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
