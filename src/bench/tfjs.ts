/**
 * `densetrain bench train --vs-tfjs`: TensorFlow.js on its WebAssembly backend trains the train
 * suite's models with the same recipe and data in the same process, after densetrain's timings,
 * and each fp32 densetrain row gets the ratio of its seconds per epoch to TF.js's.
 *
 * TF.js is written with tfjs-core ops and its own momentum optimizer (no tfjs-layers): dense
 * layers x·W + b with ReLU, softmax cross-entropy, the backward pass written out in ops (the
 * same GEMMs densetrain runs: dW = hᵀ·dz + l2·W, db = column sums, dh = dz·Wᵀ, none for the
 * input; tfjs-core's node build registers no gradients, its autodiff needs the whole tfjs
 * bundle), SGD with Nesterov momentum (tf.train.momentum, applyGradients), the lr set per epoch
 * on the cosine schedule, standardised pixels, shuffled batches of the whole training set, and
 * the loss and accuracy of every batch read back, as bench/torch_train.py does. Like PyTorch,
 * the images are converted to one float tensor before timing and nothing is written to disk.
 *
 * @tensorflow/tfjs-core and @tensorflow/tfjs-backend-wasm are devDependencies (pinned 4.22.0):
 * a git clone has them, the installed package does not, and then the comparison is skipped with
 * one line. TF.js's wasm backend runs one thread under Node (its multithreaded build is disabled
 * there: WASM_HAS_MULTITHREAD_SUPPORT is false when IS_NODE), so its figure is one thread.
 */
import type { ImageSet } from '../data/types.js';
import type { TorchRow } from './torch.js';
import type { TrainBenchRow, TrainModel } from './train.js';

/** A TF.js row: the fields of a PyTorch row (fp32 only, so no precision). */
export type TfjsRow = Omit<TorchRow, 'precision'>;

export type TfjsResult = { ok: true; version: string; backend: string; simd: boolean; threads: number; rows: TfjsRow[]; lines: string[] } | { ok: false; reason: string; lines: string[] };

export interface TfjsOptions {
  models: readonly TrainModel[];
  /** Timed epochs after the warm-up, as for densetrain. */
  epochs: number;
  warmup: number;
  trainSet: ImageSet;
  recipe: { lr: number; momentum: number; nesterov: boolean; l2: number };
  log?: (line: string) => void;
  /** How the TF.js packages are imported (tests stand in a failing one). */
  importModule?: (name: string) => Promise<unknown>;
}

const PACKAGES = ['@tensorflow/tfjs-core', '@tensorflow/tfjs-backend-wasm'] as const;
const HINT = `${PACKAGES.join(' and ')} 4.22.0 are devDependencies: run npm install in a densetrain clone (the installed package does not carry them)`;

// The slice of tfjs-core this file uses, typed here so that densetrain's build does not need
// TF.js's types (the package is optional at run time).
interface TfTensor {
  dataSync(): Float32Array | Int32Array;
  dispose(): void;
  shape: number[];
}
interface TfVariable extends TfTensor {
  assign(value: TfTensor): void;
}
interface TfOptimizer {
  setLearningRate(lr: number): void;
  applyGradients(grads: Record<string, TfTensor>): void;
  dispose(): void;
}
interface Tf {
  version_core: string;
  setBackend(name: string): Promise<boolean>;
  ready(): Promise<void>;
  getBackend(): string;
  env(): { getAsync(flag: string): Promise<boolean> };
  tidy<T>(f: () => T): T;
  keep<T extends TfTensor>(t: T): T;
  tensor2d(values: Float32Array, shape: [number, number]): TfTensor;
  tensor1d(values: Int32Array, dtype: 'int32'): TfTensor;
  variable(t: TfTensor, trainable: boolean, name: string): TfVariable;
  randomUniform(shape: number[], min: number, max: number, dtype: 'float32', seed: number): TfTensor;
  gather(x: TfTensor, indices: TfTensor): TfTensor;
  oneHot(indices: TfTensor, depth: number): TfTensor;
  matMul(a: TfTensor, b: TfTensor, transposeA?: boolean, transposeB?: boolean): TfTensor;
  add(a: TfTensor, b: TfTensor): TfTensor;
  sub(a: TfTensor, b: TfTensor): TfTensor;
  relu(x: TfTensor): TfTensor;
  step(x: TfTensor): TfTensor;
  softmax(x: TfTensor): TfTensor;
  logSoftmax(x: TfTensor): TfTensor;
  sum(x: TfTensor, axis?: number): TfTensor;
  mul(a: TfTensor, b: TfTensor | number): TfTensor;
  argMax(x: TfTensor, axis: number): TfTensor;
  equal(a: TfTensor, b: TfTensor): TfTensor;
  cast(x: TfTensor, dtype: 'float32' | 'int32'): TfTensor;
  scalar(x: number): TfTensor;
  train: { momentum(lr: number, momentum: number, useNesterov: boolean): TfOptimizer };
}

/** tfjs-core with its wasm backend ready, or why not. */
async function loadTfjs(importModule: (name: string) => Promise<unknown>): Promise<{ tf: Tf; backend: { getThreadsCount(): number } } | { reason: string }> {
  let tf: Tf;
  let backend: { getThreadsCount(): number };
  try {
    tf = (await importModule(PACKAGES[0])) as Tf;
    backend = (await importModule(PACKAGES[1])) as { getThreadsCount(): number };
  } catch (error) {
    const code = (error as { code?: string }).code;
    if (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') return { reason: 'TF.js is not installed' };
    return { reason: `TF.js does not load: ${error instanceof Error ? error.message.split('\n')[0] : String(error)}` };
  }
  if (!(await tf.setBackend('wasm'))) return { reason: 'TF.js could not start its wasm backend' };
  await tf.ready();
  return { tf, backend };
}

/** Standardised pixels of the whole set, as torch_train.py computes them (float32 mean and std of x / 255). */
function standardise(set: ImageSet): Float32Array {
  const n = set.count * set.features;
  const x = new Float32Array(n);
  let sum = 0;
  for (let i = 0; i < n; i++) sum += (x[i] = set.images[i]! / 255);
  const mean = sum / n;
  let ss = 0;
  for (let i = 0; i < n; i++) ss += (x[i]! - mean) ** 2;
  const std = Math.sqrt(ss / (n - 1));
  for (let i = 0; i < n; i++) x[i] = (x[i]! - mean) / std;
  return x;
}

/** A shuffled 0..n-1 (xorshift32: the order only has to be random-looking and repeatable). */
function permutation(n: number, seed: number): Int32Array {
  const p = Int32Array.from({ length: n }, (_, i) => i);
  let s = seed >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    const j = (s >>> 0) % (i + 1);
    [p[i], p[j]] = [p[j]!, p[i]!];
  }
  return p;
}

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

function trainModel(tf: Tf, model: TrainModel, x: TfTensor, y: TfTensor, options: TfjsOptions): TfjsRow {
  const { recipe } = options;
  const n = options.trainSet.count;
  const layers = model.layers;
  // PyTorch's default init bounds (U(-1/sqrt(fan_in), 1/sqrt(fan_in))); the speed does not depend on it.
  const weights: TfVariable[] = [];
  const biases: TfVariable[] = [];
  for (let i = 0; i + 1 < layers.length; i++) {
    const bound = 1 / Math.sqrt(layers[i]!);
    weights.push(tf.variable(tf.randomUniform([layers[i]!, layers[i + 1]!], -bound, bound, 'float32', 2 * i + 1), true, `${model.name}/w${i}`));
    biases.push(tf.variable(tf.randomUniform([layers[i + 1]!], -bound, bound, 'float32', 2 * i + 2), true, `${model.name}/b${i}`));
  }
  const optimizer = tf.train.momentum(recipe.lr, recipe.momentum, recipe.nesterov);
  const total = options.warmup + options.epochs;
  const times: number[] = [];
  let lossAvg = Number.NaN;
  let accuracy = Number.NaN;
  for (let epoch = 0; epoch < total; epoch++) {
    const t0 = performance.now();
    // CosineAnnealingLR over the run, stepped once per epoch (as torch_train.py).
    optimizer.setLearningRate((recipe.lr * (1 + Math.cos((Math.PI * epoch) / total))) / 2);
    const perm = permutation(n, epoch + 1);
    let lossSum = 0;
    let correct = 0;
    for (let s = 0; s < n; s += model.batchSize) {
      const rows = Math.min(model.batchSize, n - s);
      const [cost, hits] = tf.tidy(() => {
        const idx = tf.tensor1d(perm.subarray(s, s + rows), 'int32');
        const yb = tf.gather(y, idx);
        // Forward, keeping every layer's input and pre-activation for the backward pass.
        const inputs = [tf.gather(x, idx)];
        const pre: TfTensor[] = [];
        for (let i = 0; i < weights.length; i++) {
          const z = tf.add(tf.matMul(inputs[i]!, weights[i]!), biases[i]!);
          pre.push(z);
          if (i + 1 < weights.length) inputs.push(tf.relu(z));
        }
        const logits = pre[pre.length - 1]!;
        const onehot = tf.oneHot(yb, layers[layers.length - 1]!);
        const loss = tf.mul(tf.sum(tf.mul(tf.logSoftmax(logits), onehot)), -1 / rows);
        const correct = tf.sum(tf.cast(tf.equal(tf.argMax(logits, 1), yb), 'int32'));
        // Backward: dz of the mean cross-entropy, then layer by layer.
        const grads: Record<string, TfTensor> = {};
        let dz = tf.mul(tf.sub(tf.softmax(logits), onehot), 1 / rows);
        for (let i = weights.length - 1; i >= 0; i--) {
          const w = weights[i]!;
          grads[`${model.name}/w${i}`] = tf.add(tf.matMul(inputs[i]!, dz, true, false), tf.mul(w, recipe.l2));
          grads[`${model.name}/b${i}`] = tf.sum(dz, 0);
          if (i > 0) dz = tf.mul(tf.matMul(dz, w, false, true), tf.step(pre[i - 1]!));
        }
        optimizer.applyGradients(grads);
        return [loss, correct] as const;
      });
      lossSum += cost.dataSync()[0]! * rows;
      correct += hits.dataSync()[0]!;
      cost.dispose();
      hits.dispose();
    }
    times.push((performance.now() - t0) / 1000);
    lossAvg = lossSum / n;
    accuracy = correct / n;
    options.log?.(`TF.js ${model.name} epoch ${epoch + 1}: ${times[times.length - 1]!.toFixed(3)} s`);
  }
  optimizer.dispose();
  for (const v of [...weights, ...biases]) v.dispose();
  const timed = times.slice(options.warmup);
  return {
    model: model.name,
    batchSize: model.batchSize,
    threads: 1,
    epochSeconds: timed,
    secondsPerEpoch: median(timed),
    bestEpochSeconds: Math.min(...timed),
    warmupSeconds: times[0]!,
    finalTrainLoss: lossAvg,
    finalTrainAccuracy: accuracy,
  };
}

/** Trains every model with TF.js wasm. Never throws for a missing TF.js: says so in one line. */
export async function runTfjsBench(options: TfjsOptions): Promise<TfjsResult> {
  const loaded = await loadTfjs(options.importModule ?? ((name) => import(name)));
  if ('reason' in loaded) return { ok: false, reason: loaded.reason, lines: [`TF.js comparison skipped: ${loaded.reason}; ${HINT}`] };
  const { tf, backend } = loaded;
  const simd = await tf.env().getAsync('WASM_HAS_SIMD_SUPPORT');
  const threads = backend.getThreadsCount();
  options.log?.(`TF.js ${tf.version_core} (${tf.getBackend()}, ${simd ? 'SIMD' : 'no SIMD'}, ${threads} thread${threads === 1 ? '' : 's'}): ${options.models.length} models`);
  const x = tf.tensor2d(standardise(options.trainSet), [options.trainSet.count, options.trainSet.features]);
  const y = tf.tensor1d(Int32Array.from(options.trainSet.labels.subarray(0, options.trainSet.count)), 'int32');
  const rows: TfjsRow[] = [];
  try {
    for (const model of options.models) rows.push({ ...trainModel(tf, model, x, y, options), threads });
  } finally {
    x.dispose();
    y.dispose();
  }
  const lines = [
    `TF.js ${tf.version_core}, ${tf.getBackend()} backend (${simd ? 'SIMD128' : 'no SIMD'}), ${threads} thread${threads === 1 ? '' : 's'} (its only mode under Node), fp32; ` +
      'images converted to one float tensor before timing, nothing written; tfjs ratio = densetrain s/epoch (checkpoint writes included) / TF.js s/epoch',
  ];
  return { ok: true, version: tf.version_core, backend: tf.getBackend(), simd, threads, rows, lines };
}

/** Adds tfjsSecondsPerEpoch and tfjsRatio to the fp32 densetrain rows of the same model. */
export function attachTfjs(rows: TrainBenchRow[], result: TfjsResult): void {
  if (!result.ok) return;
  for (const row of rows) {
    const t = result.rows.find((r) => r.model === row.model);
    if (!t || row.precision !== 'fp32') continue;
    row.tfjsSecondsPerEpoch = t.secondsPerEpoch;
    row.tfjsRatio = row.secondsPerEpoch === null ? null : row.secondsPerEpoch / t.secondsPerEpoch;
  }
}
