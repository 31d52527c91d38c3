/**
 * The training benchmark: seconds per epoch of the real trainer, train() (the function
 * `densetrain train` runs, with the same checkpoint writes into a run folder), on
 * Fashion-MNIST's 60,000 training images with no validation split, for each backend and a few
 * model shapes.
 *
 * Epoch time is wall-clock time between consecutive onEpoch events: everything train() does
 * for an epoch (shuffle, batch filling, forward/backward, optimizer, per-batch loss and accuracy,
 * the batch events, a yield to the event loop per batch, the end-of-epoch checks, the best-weights
 * snapshot, and the atomic, fsynced checkpoint.safetensors + model.safetensors writes). The first
 * epoch is a warm-up (JIT, page faults, caches) and is not counted; the figure is the median of
 * the timed epochs. CPU seconds (all threads of the process) are measured the same way.
 *
 * Next to it: the GEMM floating-point work of an epoch and a GEMM-bound lower limit, the sum
 * of tinybench medians of every GEMM call of a batch at its exact shape on the same backend,
 * times batches per epoch. What the epoch takes beyond that limit is everything that is not
 * GEMM.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Bench } from 'tinybench';
import { loadDataset } from '../data/registry.js';
import { firstLine } from '../first-line.js';
import type { Dataset } from '../data/types.js';
import { tryLoadBackend } from '../kernels/index.js';
import type { BackendName, Kernels, Precision } from '../kernels/types.js';
import { train } from '../train/train.js';
import type { TrainConfig } from '../train/types.js';

export interface TrainModel {
  /** '784-128-64-10' */
  name: string;
  layers: number[];
  batchSize: number;
}

const model = (layers: number[], batchSize: number): TrainModel => ({ name: layers.join('-'), layers, batchSize });

/** The shapes the issue compares with PyTorch (the same layer sizes and batch sizes). */
export const TRAIN_MODELS: readonly TrainModel[] = [model([784, 128, 64, 10], 128), model([784, 500, 500, 10], 128), model([784, 1024, 512, 64, 10], 256)];

/** The recipe: DEFAULT_CONFIG (SGD, Nesterov momentum 0.9, L2 1e-3, standardised pixels, cosine lr) with these changes. */
export const TRAIN_BENCH_CONFIG = { valSplit: 0, patience: 0, seed: 1, activation: 'relu' } as const satisfies Partial<TrainConfig>;

export const WARMUP_EPOCHS = 1;

export interface GemmCall {
  /** 'forward 0', 'dW 0', 'dX 1', ... (layer index) */
  call: string;
  form: 'NT' | 'TN' | 'NN';
  /** C is m x n, inner size k. */
  m: number;
  k: number;
  n: number;
  /** Median milliseconds per call (null when not measured). */
  medianMs: number | null;
  gflops: number | null;
}

export type TrainStepMode = 'fused' | 'composed';
export const TRAIN_STEP_MODES: readonly TrainStepMode[] = ['fused', 'composed'];

export interface TrainBenchRow {
  backend: BackendName;
  /** GEMM precision of the run ('bf16': mixed precision, see --precision). */
  precision: Precision;
  /**
   * 'fused': the backend's one-call training step where it has one (native; what train() uses);
   * 'composed': the same step from single kernel calls (the backend's createTrainStep hidden).
   */
  step: TrainStepMode;
  isa: string;
  threads: number;
  model: string;
  layers: number[];
  batchSize: number;
  data: string;
  /** Images per epoch. */
  trainImages: number;
  warmupEpochs: number;
  timedEpochs: number;
  /** Wall seconds of each timed epoch (onEpoch to onEpoch). */
  epochSeconds: number[];
  /** Median of epochSeconds (null when skipped). */
  secondsPerEpoch: number | null;
  /** Fastest timed epoch: on a shared machine, the one least disturbed by other processes. */
  bestEpochSeconds: number | null;
  /** Median process CPU seconds (user + system, all threads) per timed epoch. */
  cpuSecondsPerEpoch: number | null;
  /** Median of train()'s own EpochRecord.seconds (the epoch without its checkpoint write). */
  trainerSecondsPerEpoch: number | null;
  /**
   * Median over the timed epochs of the wall time outside train()'s own epoch clock: the
   * epoch-end checkpoint.safetensors + model.safetensors writes (atomic, fsynced), the shuffle
   * and the event-loop yields between epochs.
   */
  epochEndSeconds: number | null;
  /** Median wall seconds of the warm-up epoch. */
  warmupSeconds: number | null;
  samplesPerSecond: number | null;
  /** GEMM floating-point operations per epoch (2·m·n·k summed over every GEMM call), in GFLOP. */
  gemmGflopPerEpoch: number;
  /** Sum of the GEMM calls' median times at their exact shapes x batches per epoch (null when skipped). */
  gemmBoundSeconds: number | null;
  /** gemmGflopPerEpoch / gemmBoundSeconds. */
  gemmGflops: number | null;
  /** gemmBoundSeconds / secondsPerEpoch: how much of the epoch is GEMM at benchmark speed. */
  gemmShare: number | null;
  gemmCalls: GemmCall[];
  /** Kernel calls per training batch (counted between the first and the last batch event, epoch ends included). */
  kernelCallsPerBatch: number | null;
  /** Backend tensors allocated after the first batch (0: nothing allocated per batch). */
  allocationsAfterFirstBatch: number | null;
  finalTrainLoss: number | null;
  finalTrainAccuracy: number | null;
  /** process.resourceUsage().maxRSS after this row (the process's peak so far), bytes. */
  peakRssBytes: number;
  loadAverageAtStart: number | null;
  /** --vs-torch: PyTorch's median seconds per epoch at the same model and precision, its threads, and densetrain / PyTorch. */
  torchSecondsPerEpoch?: number;
  torchThreads?: number;
  torchRatio?: number | null;
  /** --vs-tfjs (fp32 rows): TF.js wasm's median seconds per epoch for the same model, and densetrain / TF.js. */
  tfjsSecondsPerEpoch?: number;
  tfjsRatio?: number | null;
  note?: string;
}

export interface TrainBenchOptions {
  backends: BackendName[];
  /** Fewer timed epochs (1), for smoke runs. */
  quick: boolean;
  /** Timed epochs after the warm-up (default 3, quick 1). */
  epochs?: number;
  /** Step modes to time (default ['fused']); 'composed' rows hide the backend's fused step. */
  steps?: TrainStepMode[];
  /** GEMM precisions to time (default ['fp32']); bf16 rows are skipped, with the reason, where a backend has none. */
  precisions?: Precision[];
  /** Model names to run (default: all of TRAIN_MODELS). */
  models?: string[];
  /** Dataset name or path to time on (default fashion-mnist, else mnist-sample with a note). */
  data?: string;
  log?: (line: string) => void;
}

export interface TrainBenchResult {
  data: { name: string; source: string; trainImages: number };
  config: Partial<TrainConfig>;
  warmupEpochs: number;
  timedEpochs: number;
  method: string;
  notes: string[];
  rows: TrainBenchRow[];
  peakRssBytes: number;
}

const median = (xs: number[]): number | null => {
  if (xs.length === 0) return null;
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
};

export const peakRssBytes = (): number => process.resourceUsage().maxRSS * 1024;

/** Every GEMM of one training batch, in the order the model runs them (forward, then dW and dX per layer; no dX for the input). */
export function gemmCallsOf(layers: number[], batch: number): GemmCall[] {
  const calls: GemmCall[] = [];
  for (let i = 0; i < layers.length - 1; i++) {
    calls.push({ call: `forward ${i}`, form: 'NT', m: batch, k: layers[i]!, n: layers[i + 1]!, medianMs: null, gflops: null });
  }
  for (let i = layers.length - 2; i >= 0; i--) {
    calls.push({ call: `dW ${i}`, form: 'TN', m: layers[i + 1]!, k: batch, n: layers[i]!, medianMs: null, gflops: null });
    if (i > 0) calls.push({ call: `dX ${i}`, form: 'NN', m: batch, k: layers[i + 1]!, n: layers[i]!, medianMs: null, gflops: null });
  }
  return calls;
}

/** GEMM flops of one epoch of `images` images (the last, smaller batch included). */
export function gemmFlopsPerEpoch(layers: number[], images: number): number {
  let perImage = 0;
  for (let i = 0; i < layers.length - 1; i++) {
    const w = layers[i]! * layers[i + 1]!;
    perImage += 2 * w * (i > 0 ? 3 : 2); // forward + dW, and dX except for the input layer
  }
  return perImage * images;
}

async function timeGemm(k: Kernels, c: GemmCall, quick: boolean, precision: Precision): Promise<number> {
  const transA = c.form === 'TN';
  const transB = c.form === 'NT';
  const [a, b, out] = [k.alloc(c.m * c.k), k.alloc(c.k * c.n), k.alloc(c.m * c.n)];
  try {
    const da = a.data;
    for (let i = 0; i < da.length; i++) da[i] = ((i * 7919) % 2001) / 1000 - 1;
    const db = b.data;
    for (let i = 0; i < db.length; i++) db[i] = ((i * 104729) % 2003) / 1000 - 1;
    const bench = new Bench({ name: c.call, time: quick ? 50 : 250, iterations: 10, warmupTime: quick ? 10 : 50, warmupIterations: 3, throws: true });
    bench.add(c.call, () => k.gemm(transA, transB, c.m, c.n, c.k, 1, a, b, 0, out, precision));
    const [task] = await bench.run();
    const r = task?.result;
    if (!r || (r.state !== 'completed' && r.state !== 'aborted-with-statistics')) throw new Error(`GEMM timing ${c.call} did not complete`);
    return r.latency.p50;
  } finally {
    for (const t of [a, b, out]) k.free(t);
  }
}

/** Kernels that count calls and allocations and otherwise delegate (a few ns per call). */
function counting(k: Kernels, step: TrainStepMode): { kernels: Kernels; calls: () => number; allocs: () => number } {
  let calls = 0;
  let allocs = 0;
  const wrapped = Object.create(null) as Record<string, unknown>;
  for (const key of Object.keys(k) as (keyof Kernels)[]) {
    if (key === 'createTrainStep' && step === 'composed') continue;
    const v = k[key];
    if (typeof v !== 'function') {
      wrapped[key] = v;
      continue;
    }
    const fn = v as (...args: unknown[]) => unknown;
    if (key === 'alloc') {
      wrapped[key] = (...args: unknown[]) => {
        allocs++;
        return fn.apply(k, args);
      };
    } else if (key === 'info' || key === 'setThreads' || key === 'allocatedBytes' || key === 'free') {
      wrapped[key] = (...args: unknown[]) => fn.apply(k, args);
    } else {
      wrapped[key] = (...args: unknown[]) => {
        calls++;
        return fn.apply(k, args);
      };
    }
  }
  return { kernels: wrapped as unknown as Kernels, calls: () => calls, allocs: () => allocs };
}

async function loadBenchData(name: string | undefined, notes: string[]): Promise<Dataset> {
  if (name !== undefined) {
    const dataset = await loadDataset(name, { seed: 1 });
    if (dataset.name !== 'fashion-mnist') notes.push(`timed on ${dataset.name} (${dataset.train.count} training images per epoch), not Fashion-MNIST's 60,000`);
    return dataset;
  }
  try {
    return await loadDataset('fashion-mnist', { seed: 1 });
  } catch (error) {
    const why = firstLine(error);
    notes.push(
      `Fashion-MNIST is not available (${why}); timed on mnist-sample instead (8,000 training images per epoch, not 60,000): ` +
        'these epoch times are NOT comparable with the 60,000-image figures (run `densetrain data download fashion-mnist`)',
    );
    return loadDataset('mnist-sample', { seed: 1 });
  }
}

/** What every row of one benchmark run shares. */
interface TrainBenchRun {
  options: TrainBenchOptions;
  dataset: Dataset;
  images: number;
  timed: number;
  outRoot: string;
  log: (line: string) => void;
}

/** What a row says about what was timed (the rest are the timings). */
type RowSetting = Pick<TrainBenchRow, 'backend' | 'precision' | 'step' | 'isa' | 'threads' | 'model' | 'layers' | 'batchSize' | 'data' | 'trainImages' | 'warmupEpochs' | 'timedEpochs' | 'gemmGflopPerEpoch' | 'loadAverageAtStart'>;

/** A row that was not timed, with the reason. */
function skippedRow(base: RowSetting, calls: GemmCall[], note: string): TrainBenchRow {
  return {
    ...base,
    epochSeconds: [],
    secondsPerEpoch: null,
    bestEpochSeconds: null,
    cpuSecondsPerEpoch: null,
    trainerSecondsPerEpoch: null,
    epochEndSeconds: null,
    warmupSeconds: null,
    samplesPerSecond: null,
    gemmBoundSeconds: null,
    gemmGflops: null,
    gemmShare: null,
    gemmCalls: calls,
    kernelCallsPerBatch: null,
    allocationsAfterFirstBatch: null,
    finalTrainLoss: null,
    finalTrainAccuracy: null,
    peakRssBytes: peakRssBytes(),
    note,
  };
}

type LoadedBackend = Extract<ReturnType<typeof tryLoadBackend>, { ok: true }>;

/**
 * train() of one model for the warm-up and timed epochs through a counting wrapper of the
 * kernels: wall and CPU seconds between epochs, kernel calls per batch, allocations after the
 * first batch. Refuses a run that did not complete in the precision asked for.
 */
async function trainCounted(run: TrainBenchRun, loaded: LoadedBackend, name: BackendName, m: TrainModel, precision: Precision, step: TrainStepMode, shownStep: string) {
  const { dataset, timed, outRoot, log } = run;
  const k = counting(loaded.kernels, step);
  const wall: number[] = [];
  const cpu: number[] = [];
  let t = 0;
  let c = 0;
  let batches = 0;
  let allocsAtFirstBatch = -1;
  let callsAtFirstBatch = 0;
  let callsAtLastBatch = 0;
  const mark = (): void => {
    const now = performance.now();
    const u = process.cpuUsage();
    const cpuNow = (u.user + u.system) / 1e6;
    if (t !== 0) {
      wall.push((now - t) / 1000);
      cpu.push(cpuNow - c);
    }
    t = now;
    c = cpuNow;
  };
  const outDir = join(outRoot, `${name}-${m.name}-${precision}-${step}`);
  const { record, model: trained } = await train(
    { ...TRAIN_BENCH_CONFIG, data: dataset.name, layers: [...m.layers], batchSize: m.batchSize, epochs: WARMUP_EPOCHS + timed, backend: name, precision },
    {
      dataset,
      kernels: k.kernels,
      outDir,
      onStart: mark,
      onBatch: () => {
        batches++;
        callsAtLastBatch = k.calls();
        if (allocsAtFirstBatch < 0) {
          allocsAtFirstBatch = k.allocs();
          callsAtFirstBatch = callsAtLastBatch;
        }
      },
      onEpoch: (r) => {
        mark();
        log(`${name} ${m.name} ${precision} ${shownStep} epoch ${r.epoch}: ${wall[wall.length - 1]!.toFixed(3)} s (train() ${r.seconds.toFixed(3)} s)`);
      },
    },
  );
  trained.dispose();
  await rm(outDir, { recursive: true, force: true });
  if (record.precision.used !== precision) throw new Error(`${name} ${m.name}: trained in ${record.precision.used}, not ${precision}: ${record.precision.detail}`);
  if (record.stopReason !== 'completed') throw new Error(`${name} ${m.name}: training stopped (${record.stopReason}: ${record.stopMessage ?? ''})`);
  return { record, wall, cpu, batches, kernelCallsPerBatch: batches > 1 ? (callsAtLastBatch - callsAtFirstBatch) / (batches - 1) : null, allocationsAfterFirstBatch: allocsAtFirstBatch < 0 ? null : k.allocs() - allocsAtFirstBatch };
}

/** One row: a model on a backend at a precision and step, timed over train()'s epochs (or skipped, saying why). */
async function timeModel(run: TrainBenchRun, loaded: LoadedBackend, name: BackendName, m: TrainModel, precision: Precision, step: TrainStepMode): Promise<TrainBenchRow> {
  const { options, dataset, images, timed, log } = run;
  const info = loaded.kernels.info();
  const calls = gemmCallsOf(m.layers, m.batchSize);
  const base = {
    backend: name,
    precision,
    step: loaded.kernels.createTrainStep ? step : ('composed' as const),
    isa: info.isa,
    threads: info.threads,
    model: m.name,
    layers: [...m.layers],
    batchSize: m.batchSize,
    data: dataset.name,
    trainImages: images,
    warmupEpochs: WARMUP_EPOCHS,
    timedEpochs: timed,
    gemmGflopPerEpoch: gemmFlopsPerEpoch(m.layers, images) / 1e9,
    loadAverageAtStart: loadavg()[0] ?? null,
  };
  const noBf16 = precision === 'bf16' && !info.bf16?.available ? `skipped: no bf16 GEMMs on ${name} (${info.bf16?.detail ?? 'not offered'})` : null;
  if (name === 'reference' || noBf16 !== null) {
    const note = noBf16 ?? 'skipped: the reference backend (plain TypeScript loops, about 1 GFLOP/s) would take minutes per epoch; it is the oracle in tests, not a training backend';
    return skippedRow(base, calls, note);
  }

  const { record, wall, cpu, kernelCallsPerBatch, allocationsAfterFirstBatch } = await trainCounted(run, loaded, name, m, precision, step, base.step);

  for (const call of calls) {
    call.medianMs = await timeGemm(loaded.kernels, call, options.quick, precision);
    call.gflops = (2 * call.m * call.n * call.k) / (call.medianMs * 1e-3) / 1e9;
  }
  const perBatchMs = calls.reduce((s, x) => s + x.medianMs!, 0);
  const gemmBoundSeconds = (perBatchMs / 1000) * (images / m.batchSize);
  const timedWall = wall.slice(WARMUP_EPOCHS);
  const secondsPerEpoch = median(timedWall);
  const last = record.epochs[record.epochs.length - 1];
  const row: TrainBenchRow = {
    ...base,
    epochSeconds: timedWall,
    secondsPerEpoch,
    bestEpochSeconds: timedWall.length > 0 ? Math.min(...timedWall) : null,
    cpuSecondsPerEpoch: median(cpu.slice(WARMUP_EPOCHS)),
    trainerSecondsPerEpoch: median(record.epochs.slice(WARMUP_EPOCHS).map((e) => e.seconds)),
    epochEndSeconds: median(timedWall.map((w, i) => w - record.epochs[WARMUP_EPOCHS + i]!.seconds)),
    warmupSeconds: median(wall.slice(0, WARMUP_EPOCHS)),
    samplesPerSecond: secondsPerEpoch === null ? null : images / secondsPerEpoch,
    gemmBoundSeconds,
    gemmGflops: base.gemmGflopPerEpoch / gemmBoundSeconds,
    gemmShare: secondsPerEpoch === null ? null : gemmBoundSeconds / secondsPerEpoch,
    gemmCalls: calls,
    kernelCallsPerBatch,
    allocationsAfterFirstBatch,
    finalTrainLoss: last?.trainLoss ?? null,
    finalTrainAccuracy: last?.trainAccuracy ?? null,
    peakRssBytes: peakRssBytes(),
  };
  log(
    `${name} ${m.name} ${precision} ${base.step} b${m.batchSize}: median ${secondsPerEpoch?.toFixed(3)} s/epoch over ${timed}; ` +
      `GEMM-bound ${gemmBoundSeconds.toFixed(3)} s (${(base.gemmGflopPerEpoch / gemmBoundSeconds).toFixed(1)} GFLOP/s)`,
  );
  return row;
}

export async function runTrainBench(options: TrainBenchOptions): Promise<TrainBenchResult> {
  const log = options.log ?? (() => undefined);
  const notes: string[] = [];
  const timed = options.epochs ?? (options.quick ? 1 : 3);
  if (!Number.isInteger(timed) || timed < 1) throw new RangeError(`timed epochs must be a positive integer, got ${timed}`);
  const models = options.models ? TRAIN_MODELS.filter((m) => options.models!.includes(m.name)) : [...TRAIN_MODELS];
  if (options.models) {
    const unknown = options.models.filter((n) => !TRAIN_MODELS.some((m) => m.name === n));
    if (unknown.length > 0) throw new RangeError(`unknown model ${unknown.join(', ')} (one of ${TRAIN_MODELS.map((m) => m.name).join(', ')})`);
  }
  const dataset = await loadBenchData(options.data, notes);
  const images = dataset.train.count;
  if (images < 1) throw new RangeError(`${dataset.name} has no training images`);
  const rows: TrainBenchRow[] = [];
  const outRoot = await mkdtemp(join(tmpdir(), 'densetrain-bench-train-'));
  const run: TrainBenchRun = { options, dataset, images, timed, outRoot, log };
  try {
    for (const name of options.backends) {
      const loaded = tryLoadBackend(name);
      if (!loaded.ok) throw new Error(`the ${name} backend cannot load: ${loaded.reason}`);
      for (const m of models) for (const precision of options.precisions ?? ['fp32']) for (const step of options.steps ?? ['fused']) {
        // A backend without a fused step composes it anyway: one row, labelled composed.
        if (step === 'composed' && !loaded.kernels.createTrainStep && (options.steps ?? ['fused']).includes('fused')) continue;
        rows.push(await timeModel(run, loaded, name, m, precision, step));
      }
    }
  } finally {
    await rm(outRoot, { recursive: true, force: true });
  }
  return {
    data: { name: dataset.name, source: dataset.source, trainImages: images },
    config: { ...TRAIN_BENCH_CONFIG },
    warmupEpochs: WARMUP_EPOCHS,
    timedEpochs: timed,
    method:
      'train() (the CLI trainer) with DEFAULT_CONFIG plus config, writing its checkpoint and model into a temporary run folder every epoch; ' +
      'epoch = wall time between consecutive onEpoch events; median over the timed epochs after the warm-up; ' +
      'GEMM bound = sum of tinybench medians of the batch GEMMs at their exact shapes x images / batch size; ' +
      'kernel calls are counted by a delegating wrapper',
    notes,
    rows,
    peakRssBytes: peakRssBytes(),
  };
}
