/** Class probabilities for a whole image set, and the test metrics the CLI prints from them. */
import { fillBatch } from '../data/batches.js';
import type { ImageSet, PixelScaling } from '../data/types.js';
import { argmaxRows, confusionMatrix } from './metrics.js';
import type { EvalResult } from './types.js';

export interface Predictor {
  predict(x: Float32Array, count: number): Float32Array;
  readonly classes: number;
}

const CHUNK = 1024;

/** count x classes probabilities, row-major, predicted in chunks so memory stays bounded. */
export function predictImageSet(model: Predictor, set: ImageSet, scaling: PixelScaling | null): Float32Array {
  const classes = model.classes;
  const probs = new Float32Array(set.count * classes);
  const rows = Math.min(CHUNK, Math.max(1, set.count));
  const x = new Float32Array(rows * set.features);
  const y = new Float32Array(rows);
  const order = new Uint32Array(set.count).map((_, i) => i);
  for (let start = 0; start < set.count; start += rows) {
    const count = Math.min(rows, set.count - start);
    fillBatch(set, order, start, count, x, y, scaling ?? { kind: 'unit' });
    const p = model.predict(x.subarray(0, count * set.features), count);
    probs.set(p.subarray(0, count * classes), start * classes);
  }
  return probs;
}

/** Mean cross-entropy, accuracy and confusion of probabilities against labels. */
export function evaluateProbabilities(probs: Float32Array, labels: Uint8Array, classes: number): EvalResult & { predictions: Int32Array } {
  const count = labels.length;
  const predictions = argmaxRows(probs, count, classes);
  let loss = 0;
  let correct = 0;
  for (let i = 0; i < count; i++) {
    const label = labels[i]!;
    // A probability of exactly 0 (float32 underflow) would make the loss infinite; clamp like the kernels' log-softmax would not need to.
    loss -= Math.log(Math.max(probs[i * classes + label]!, 1e-38));
    if (predictions[i] === label) correct++;
  }
  return {
    loss: count === 0 ? Number.NaN : loss / count,
    accuracy: count === 0 ? 0 : correct / count,
    count,
    confusion: confusionMatrix(labels, predictions, classes),
    predictions,
  };
}
