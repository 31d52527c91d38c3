/**
 * A synthetic but realistic run for report tests: a RunRecord with per-batch and per-epoch
 * numbers shaped like a real MNIST run, and a test ImageSet of seven-segment "digits" (jittered,
 * slanted, anti-aliased strokes) with probabilities that are mostly right and sometimes
 * confidently wrong.
 */
import type { ImageSet } from '../../src/data/types.js';
import { argmaxRows, confusionMatrix, accuracy } from '../../src/train/metrics.js';
import type { RunRecord, StopReason } from '../../src/train/types.js';
import { Rng } from '../../src/rng.js';

// Seven segments: a top, b upper right, c lower right, d bottom, e lower left, f upper left, g middle.
const SEGMENTS: Record<string, [number, number, number, number]> = {
  a: [9, 6, 19, 6],
  b: [19, 6, 19, 14],
  c: [19, 14, 19, 22],
  d: [9, 22, 19, 22],
  e: [9, 14, 9, 22],
  f: [9, 6, 9, 14],
  g: [9, 14, 19, 14],
};
const DIGITS = ['abcdef', 'bc', 'abged', 'abgcd', 'fgbc', 'afgcd', 'afgedc', 'abc', 'abcdefg', 'abcdfg'];

function distanceToSegment(px: number, py: number, [x1, y1, x2, y2]: [number, number, number, number]): number {
  const dx = x2 - x1;
  const dy = y2 - y1;
  const t = Math.max(0, Math.min(1, ((px - x1) * dx + (py - y1) * dy) / (dx * dx + dy * dy)));
  return Math.hypot(px - (x1 + t * dx), py - (y1 + t * dy));
}

export function syntheticImages(count: number, classes: number, seed = 7): ImageSet {
  const rng = new Rng(seed);
  const height = 28;
  const width = 28;
  const features = height * width;
  const images = new Uint8Array(count * features);
  const labels = new Uint8Array(count);
  for (let i = 0; i < count; i++) {
    const label = i % classes;
    labels[i] = label;
    const segs = (DIGITS[label % 10] ?? '').split('').map((s) => SEGMENTS[s]!);
    const slant = rng.uniform(-0.25, 0.25);
    const shiftX = rng.uniform(-2, 2);
    const shiftY = rng.uniform(-2, 2);
    const thick = rng.uniform(1.2, 2.2);
    const scale = rng.uniform(0.85, 1.1);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < width; x++) {
        // Inverse transform of the pixel into glyph space.
        const gy = (y - shiftY - 14) / scale + 14;
        const gx = (x - shiftX - 14 + slant * (y - 14)) / scale + 14;
        let d = Infinity;
        for (const s of segs) d = Math.min(d, distanceToSegment(gx, gy, s));
        const v = Math.max(0, Math.min(1, thick + 0.5 - d));
        images[i * features + y * width + x] = Math.round(255 * v * v * (3 - 2 * v));
      }
    }
  }
  return { count, height, width, features, images, labels };
}

/** Softmax outputs, right about 90% of the time, with some confident mistakes. */
export function syntheticProbs(labels: Uint8Array, classes: number, seed = 11): Float32Array {
  const rng = new Rng(seed);
  const probs = new Float32Array(labels.length * classes);
  const logits = new Float64Array(classes);
  for (let i = 0; i < labels.length; i++) {
    for (let c = 0; c < classes; c++) logits[c] = rng.normal() * 1.2;
    const y = labels[i]!;
    const r = rng.next();
    if (r < 0.93) logits[y]! += 3 + rng.uniform(0, 5);
    else logits[(y + 1 + rng.int(classes - 1)) % classes]! += 2 + rng.uniform(0, 5);
    const max = Math.max(...logits);
    let sum = 0;
    for (let c = 0; c < classes; c++) sum += Math.exp(logits[c]! - max);
    for (let c = 0; c < classes; c++) probs[i * classes + c] = Math.exp(logits[c]! - max) / sum;
  }
  return probs;
}

export interface SyntheticRunOptions {
  classNames?: string[];
  epochs?: number;
  stopReason?: StopReason;
  stopMessage?: string;
  prelu?: boolean;
  testCount?: number;
}

export function syntheticRun(options: SyntheticRunOptions = {}): {
  record: RunRecord;
  test: { images: ImageSet; probs: Float32Array };
} {
  const classNames = options.classNames ?? ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];
  const classes = classNames.length;
  const epochs = options.epochs ?? 8;
  const prelu = options.prelu ?? true;
  const trainCount = 5400;
  const batchSize = 64;
  const perEpoch = Math.ceil(trainCount / batchSize);
  const rng = new Rng(3);
  const batches: RunRecord['batches'] = [];
  const epochRecords: RunRecord['epochs'] = [];
  for (let e = 1; e <= epochs; e++) {
    let sum = 0;
    for (let b = 0; b < perEpoch; b++) {
      const t = e - 1 + (b + 1) / perEpoch;
      const loss = Math.max(0.01, 0.08 + 2.2 * Math.exp(-2.2 * t) + 0.12 * Math.exp(-0.3 * t) * rng.normal() * 0.8);
      batches.push({ epoch: e, batch: b, loss });
      sum += loss;
    }
    const trainLoss = sum / perEpoch;
    const valLoss = 0.16 + 1.6 * Math.exp(-2 * e) + 0.004 * (e - 5) ** 2 * (e > 5 ? 1 : 0);
    epochRecords.push({
      epoch: e,
      trainLoss,
      trainAccuracy: Math.min(0.995, 0.985 - 0.3 * trainLoss),
      valLoss,
      valAccuracy: Math.min(0.99, 0.97 - valLoss / 6),
      lr: 0.001 * Math.cos((Math.PI * (e - 1)) / (2 * epochs)),
      seconds: 1.8 + rng.uniform(-0.2, 0.2),
      samplesPerSecond: 3000 + rng.uniform(-150, 150),
      ...(prelu ? { preluSlopes: [0.25 - 0.02 * Math.log1p(e), 0.25 + 0.03 * Math.sqrt(e)] } : {}),
    });
  }
  const bestEpoch = epochRecords.reduce((best, e) => (e.valLoss! < best.valLoss! ? e : best)).epoch;
  const images = syntheticImages(options.testCount ?? 400, classes);
  const probs = syntheticProbs(images.labels, classes);
  const predictions = argmaxRows(probs, images.count, classes);
  const confusion = confusionMatrix(images.labels, predictions, classes);
  const record: RunRecord = {
    version: 1,
    config: {
      data: 'mnist-sample',
      layers: [784, 128, 64, classes],
      activation: prelu ? 'prelu' : 'relu',
      alpha: 0.25,
      init: 'auto',
      optimizer: 'adam',
      lr: 0.001,
      momentum: 0.9,
      nesterov: false,
      beta1: 0.9,
      beta2: 0.999,
      eps: 1e-8,
      schedule: 'cosine',
      stepSize: 10,
      gamma: 0.1,
      l2: 1e-4,
      epochs: options.epochs ?? 8,
      batchSize,
      valSplit: 0.1,
      patience: 3,
      seed: 42,
      standardize: false,
      backend: 'auto',
      precision: 'fp32',
    },
    dataset: {
      name: 'mnist-sample',
      source: 'bundled sample (mnist package)',
      classNames,
      trainCount,
      valCount: 600,
      testCount: images.count,
      height: 28,
      width: 28,
    },
    backend: { backend: 'native', isa: 'avx2-fma', threads: 2, skipped: [] },
    precision: { requested: 'fp32', used: 'fp32', detail: 'float32 GEMMs' },
    startedAt: '2025-01-01T10:00:00.000Z',
    finishedAt: '2025-01-01T10:00:15.000Z',
    stopReason: options.stopReason ?? 'completed',
    ...(options.stopMessage ? { stopMessage: options.stopMessage } : {}),
    bestEpoch,
    epochs: epochRecords,
    batches,
    test: { loss: 0.31, accuracy: accuracy(confusion), count: images.count, confusion },
    seconds: epochRecords.reduce((a, e) => a + e.seconds, 0) + 0.7,
  };
  return { record, test: { images, probs } };
}
