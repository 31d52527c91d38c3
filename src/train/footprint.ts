/**
 * What a training run will need, worked out from the configuration before anything is
 * allocated or any folder created: the memory for parameters, gradients, optimizer state, the
 * best weights and the activations of a batch; the size of its checkpoint file (which must fit in
 * one Node Buffer to be written and read back); and its largest single tensor (which a backend
 * allocates in one piece of at most 2^31 - 1 float32 values).
 */
import { totalmem } from 'node:os';
import { formatCount } from '../format.js';
import { maxSafetensorsBytes } from '../model/safetensors.js';
import type { TrainConfig } from './types.js';

/** The largest tensor any backend allocates (elements; the kernels' length limit). */
export const MAX_TENSOR_ELEMENTS = 2 ** 31 - 1;
const F32 = 4;

export interface Footprint {
  /** Parameters (weights, biases, prelu slopes). */
  parameters: number;
  /** Bytes of memory the run needs at its peak (the checkpoint write). */
  memoryBytes: number;
  /** Bytes of checkpoint.safetensors (tensors only; the header is small). */
  checkpointBytes: number;
  /**
   * The largest single tensor, and the option that makes it so large: the largest weight matrix
   * (--layers) if one is too large for a tensor, else the largest batch buffer (--batch-size).
   */
  largest: { elements: number; what: string; key: 'layers' | 'batchSize' };
}

export type FootprintConfig = Pick<TrainConfig, 'layers' | 'batchSize'> & Partial<Pick<TrainConfig, 'optimizer' | 'momentum' | 'activation'>>;

/** The rows a model is built for in training (the trainer's Mlp capacity). */
export function trainingCapacity(batchSize: number): number {
  return Math.max(batchSize, 256);
}

export function trainingFootprint(config: FootprintConfig): Footprint {
  const { layers } = config;
  const rows = trainingCapacity(config.batchSize);
  let parameters = 0;
  let activations = layers[0]! + 1 + 2 * layers[layers.length - 1]!; // input, labels, probabilities, logit gradients
  let weight: Footprint['largest'] = { elements: 0, what: '', key: 'layers' };
  let batch: Footprint['largest'] = { elements: rows * layers[0]!, what: `the input batch (${rows} rows of ${layers[0]})`, key: 'batchSize' };
  const consider = (elements: number, what: string, key: Footprint['largest']['key']) => {
    if (key === 'layers' && elements > weight.elements) weight = { elements, what, key };
    if (key === 'batchSize' && elements > batch.elements) batch = { elements, what, key };
  };
  for (let i = 0; i + 1 < layers.length; i++) {
    const inSize = layers[i]!;
    const out = layers[i + 1]!;
    const hidden = i + 2 < layers.length;
    parameters += inSize * out + out + (hidden && config.activation === 'prelu' ? 1 : 0);
    consider(inSize * out, `layer ${i}'s weight matrix (${out} x ${inSize})`, 'layers');
    activations += out * (hidden ? 3 : 1); // z, and for hidden layers h and its gradient
    consider(rows * out, `layer ${i}'s activations for a batch (${rows} rows of ${out})`, 'batchSize');
  }
  // Optimizer state per parameter: Adam m and v; SGD a velocity when there is momentum. Unknown: the most.
  const optimizerState = config.optimizer === 'sgd' ? (config.momentum === 0 ? 0 : 1) : 2;
  const checkpointFloats = parameters * (2 + optimizerState); // weights, best weights, optimizer state
  const live = parameters * (3 + optimizerState) + rows * activations; // + gradients
  // Writing a checkpoint builds its bytes in memory (the tensor data, then header + data).
  const memoryBytes = (live + 2 * checkpointFloats) * F32;
  const largest = weight.elements > MAX_TENSOR_ELEMENTS || weight.elements >= batch.elements ? weight : batch;
  return { parameters, memoryBytes, checkpointBytes: checkpointFloats * F32, largest };
}

/** What this machine allows: its memory, and the largest safetensors file that can be read back. */
export interface FootprintLimits {
  memoryBytes: number;
  fileBytes: number;
}

export function machineLimits(): FootprintLimits {
  return { memoryBytes: totalmem(), fileBytes: maxSafetensorsBytes() };
}

/** 1536 -> "1.5 KB", 3.2e9 -> "3.2 GB" (powers of 1024). */
export function formatBytes(bytes: number): string {
  const units = ['bytes', 'KB', 'MB', 'GB', 'TB', 'PB'];
  let value = bytes;
  let unit = 0;
  while (value >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit++;
  }
  return unit === 0 ? `${bytes} bytes` : `${value.toFixed(1)} ${units[unit]}`;
}

/**
 * The problems that stop a configuration from training here, each naming the option through
 * `name` ('--layers', 'config.json: "batchSize"'); empty if it fits.
 */
export function footprintProblems(config: FootprintConfig, name: (key: 'layers' | 'batchSize') => string, limits: FootprintLimits = machineLimits()): string[] {
  const f = trainingFootprint(config);
  const shape = `${name('layers')} ${config.layers.join(',')} with ${name('batchSize')} ${config.batchSize}`;
  if (f.largest.elements > MAX_TENSOR_ELEMENTS) {
    return [`${name(f.largest.key)}: ${f.largest.what} would hold ${formatCount(f.largest.elements)} values; a tensor holds at most ${formatCount(MAX_TENSOR_ELEMENTS)}`];
  }
  const problems: string[] = [];
  if (f.memoryBytes > limits.memoryBytes) {
    problems.push(`${shape} needs about ${formatBytes(f.memoryBytes)} of memory (${formatCount(f.parameters)} parameters, optimizer state, activations, checkpoint), but this machine has ${formatBytes(limits.memoryBytes)}`);
  }
  if (f.checkpointBytes > limits.fileBytes) {
    problems.push(`${name('layers')} ${config.layers.join(',')}: its checkpoint would be ${formatBytes(f.checkpointBytes)}, more than the ${formatBytes(limits.fileBytes)} a checkpoint can be here (Node's Buffer limit, or half the memory)`);
  }
  return problems;
}
