/**
 * Writing a model file: the parameters as safetensors tensors named like nn.Linear's state
 * dict (layers.{i}.weight [out, in], layers.{i}.bias, layers.{i}.prelu_slope) and the
 * architecture, pixel scaling and class names in its metadata. The checkpoint writer
 * (train/checkpoint.ts) adds its own tensors and fields to the same two parts.
 */
import type { PixelScaling } from '../data/types.js';
import { FORMAT_VERSION } from './metadata.js';
import { writeSafetensors, type TensorEntry } from './safetensors.js';
import type { ModelArchitecture, Parameter } from './types.js';

/** What a model file holds, read from a model (the class need not be known here). */
export interface SavableModel {
  readonly architecture: Readonly<ModelArchitecture>;
  readonly parameters: readonly Parameter[];
  readonly scaling: PixelScaling | null;
  readonly classNames: string[] | null;
}

export function parameterEntries(model: SavableModel, prefix = ''): [string, TensorEntry][] {
  return model.parameters.map((p) => [prefix + p.name, { shape: [...p.shape], data: p.value.data.subarray(0, p.size) }]);
}

export function modelMetadata(model: SavableModel, format: string): Record<string, string> {
  return {
    format,
    version: FORMAT_VERSION,
    architecture: JSON.stringify(model.architecture),
    scaling: JSON.stringify(model.scaling),
    classNames: JSON.stringify(model.classNames),
  };
}

/** Writes a model's weights (and architecture) to `path` atomically. */
export async function saveModelFile(path: string, model: SavableModel): Promise<void> {
  await writeSafetensors(path, parameterEntries(model), modelMetadata(model, 'densetrain-model'));
}

/** Writes a model file from stored parameter values (the best weights) without touching the live model. */
export async function saveModelValues(path: string, model: SavableModel, values: Map<string, Float32Array>): Promise<void> {
  const entries: [string, TensorEntry][] = model.parameters.map((p) => [p.name, { shape: [...p.shape], data: values.get(p.name)! }]);
  await writeSafetensors(path, entries, modelMetadata(model, 'densetrain-model'));
}
