/**
 * Feeding a model from an image set through its own buffers (the training batches, the
 * validation split, the test set), and the evaluations train() runs.
 */
import { fillLabels, scalingTable } from '../data/batches.js';
import type { ImageSet, PixelScaling } from '../data/types.js';
import type { Mlp } from '../model/mlp.js';
import { accuracy, argmaxRows, confusionMatrix } from './metrics.js';
import type { EvalResult } from './types.js';

/** Lets the event loop run between chunks of work (a chunk costs about one training batch). */
export const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Loads images indices[start .. start+rows) of a set into the model's input and label tensors.
 * The pixels go through the backend (native converts bytes to floats in C++; see
 * Kernels.gatherRows); the labels, `rows` bytes, are copied here.
 */
export function loadBatch(model: Mlp, set: ImageSet, indices: Uint32Array, start: number, rows: number, scaling: PixelScaling): void {
  model.kernels.gatherRows(rows, set.features, set.images, indices, start, scalingTable(scaling), model.inputTensor);
  fillLabels(set, indices, start, rows, model.labelTensor.data);
}

/**
 * Mean loss, accuracy and predictions over `indices` of a set; predictions written into
 * `preds`, and with `probs` (indices.length x classes) the probabilities too. Yields to the
 * event loop between chunks (a chunk costs about one training batch).
 */
export async function evaluateIndices(
  model: Mlp,
  set: ImageSet,
  indices: Uint32Array,
  scaling: PixelScaling,
  preds: Int32Array,
  labels: Uint8Array,
  probs?: Float32Array,
): Promise<{ loss: number; accuracy: number }> {
  const cap = model.capacity;
  const classes = model.classes;
  let lossSum = 0;
  for (let start = 0; start < indices.length; start += cap) {
    if (start > 0) await nextMacrotask();
    const rows = Math.min(cap, indices.length - start);
    loadBatch(model, set, indices, start, rows, scaling);
    lossSum += model.evaluateBatch(rows) * rows;
    const p = model.probsTensor.data.subarray(0, rows * classes);
    preds.set(argmaxRows(p, rows, classes), start);
    probs?.set(p, start * classes);
    for (let k = 0; k < rows; k++) labels[start + k] = set.labels[indices[start + k]!]!;
  }
  return { loss: lossSum / indices.length, accuracy: accuracy(labels.subarray(0, indices.length), preds.subarray(0, indices.length)) };
}

/** The kept model on the whole test set, in one pass: the metrics and every image's probabilities. */
export async function evaluateTestSet(model: Mlp, set: ImageSet, scaling: PixelScaling): Promise<{ test: EvalResult; probs: Float32Array }> {
  const all = new Uint32Array(set.count).map((_, i) => i);
  const preds = new Int32Array(set.count);
  const labels = new Uint8Array(set.count);
  const probs = new Float32Array(set.count * model.classes);
  const r = await evaluateIndices(model, set, all, scaling, preds, labels, probs);
  return { test: { loss: r.loss, accuracy: r.accuracy, count: set.count, confusion: confusionMatrix(labels, preds, model.classes) }, probs };
}
