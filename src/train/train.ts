/**
 * The training loop.
 *
 * One seeded Rng drives, in this order: weight initialisation, the validation split, then one
 * shuffle per epoch (of the split's training indices, always starting from the split's order,
 * so an epoch's order depends only on the rng state at its start). Same seed, backend and
 * data: the same numbers bit for bit, including across an interruption and resume.
 *
 * Per batch: fill the model's input buffers, forward + loss + backward, stop on a non-finite
 * loss ('diverged'), optimizer step (L2 folded in), events, then yield to the event loop
 * (setImmediate) so no more than one batch runs between macrotasks. Per epoch: validation,
 * best-weights tracking (lowest validation loss; without a validation split every epoch is
 * the best), early stopping, checkpoint. At the end the best weights are restored into the
 * returned model and the test set is evaluated once (it never influences training).
 *
 * Files in options.outDir: checkpoint.safetensors (resumable state, rewritten atomically
 * every epoch and on interruption) and model.safetensors (the best weights so far; at the
 * end, the returned model). A diverged run keeps the last good checkpoint (it is not
 * overwritten). metrics.jsonl (metrics-log.ts) follows the run line by line.
 */
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { computeScaling, fillLabels, scalingTable } from '../data/batches.js';
import { fingerprintDataset, fingerprintDifference } from '../data/fingerprint.js';
import { loadDataset } from '../data/registry.js';
import { heldOutCount, validationSplit } from '../data/split.js';
import type { Dataset, ImageSet, PixelScaling } from '../data/types.js';
import { selectKernels, type BackendInfo } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { Mlp } from '../model/mlp.js';
import { createOptimizer, type Optimizer } from '../optim/optimizer.js';
import { learningRateAt } from '../optim/schedule.js';
import { Rng } from '../rng.js';
import {
  CHECKPOINT_FILE,
  CheckpointError,
  MODEL_FILE,
  readCheckpoint,
  requireTensor,
  saveModelValues,
  writeCheckpoint,
  type CheckpointContents,
  type TrainingState,
} from './checkpoint.js';
import { DEFAULT_CONFIG } from './defaults.js';
import type { RanOn } from './metadata.js';
import { acquireRunLock, type RunLock } from './run-lock.js';
import { accuracy, argmaxRows, confusionMatrix, countCorrect } from './metrics.js';
import { resolvePrecision } from './precision.js';
import { metricsLogFor, type MetricsLogOptions } from './metrics-log.js';
import { ConfigError, checkConfigAgainstData, parseConfigPart, resolveConfig, type ConfigKey } from './schema.js';
import type { BatchRecord, EpochRecord, EvalResult, PrecisionUsed, RunRecord, StopReason, TrainConfig } from './types.js';

/** What onBatch receives after every optimizer step. */
export interface BatchEvent extends BatchRecord {
  /** Batches per epoch. */
  batches: number;
  /** Samples in this batch (the last batch of an epoch may be smaller). */
  size: number;
  /** Accuracy on this batch (before the step, like the loss). */
  accuracy: number;
  samplesPerSecond: number;
  lr: number;
}

/** What onStart receives once the data, split and backend are known. */
export interface StartEvent {
  config: TrainConfig;
  backend: BackendInfo;
  dataset: RunRecord['dataset'];
  /** The GEMM precision asked for and used (bf16 falls back to fp32, said here, without bf16 GEMMs). */
  precision: PrecisionUsed;
  /** Epoch the run starts in (1, or later when resuming). */
  startEpoch: number;
  resumedFrom: string | null;
}

export interface TrainOptions {
  onStart?: (event: StartEvent) => void;
  onBatch?: (event: BatchEvent) => void;
  /**
   * After every epoch's checkpoint. A returned promise is awaited before the next epoch (a
   * scheduler's decision; aborting `signal` in it stops the run at this epoch boundary).
   */
  onEpoch?: (record: EpochRecord) => void | Promise<void>;
  /** Aborting stops after the current batch ('interrupted') and writes a checkpoint. */
  signal?: AbortSignal;
  /** Run directory for checkpoint.safetensors and model.safetensors (created if missing). */
  outDir?: string;
  /**
   * The lock on outDir, when the caller already holds it (the CLI does, from before the folder's
   * first file until its last). Without one, train() takes outDir's lock itself for the run.
   */
  runLock?: RunLock;
  /** Use this dataset instead of loading config.data. */
  dataset?: Dataset;
  /** Use these kernels instead of selecting by config.backend / config.threads. */
  kernels?: Kernels;
  /** A run directory (or its checkpoint.safetensors) to continue from. */
  resumeFrom?: string;
  /**
   * Resuming: accept a backend or ISA other than the one the checkpoint was trained on (the
   * result then differs from an uninterrupted run). Default: true when `config.backend` names a
   * backend, else false (the run continues on its recorded backend, or is refused).
   */
  allowBackendChange?: boolean;
  /** metrics.jsonl in outDir (see metrics-log.ts): on by default; false turns it off. */
  metricsLog?: boolean | MetricsLogOptions;
}

export interface TrainResult {
  record: RunRecord;
  /** The final model (best weights), owned by the caller: dispose() it when done. */
  model: Mlp;
}

/** Keys that may differ from the checkpoint's config when resuming; the others must match. */
export const RESUME_OVERRIDABLE: readonly ConfigKey[] = ['epochs', 'patience', 'backend', 'threads', 'data'];

const SOURCE = { kind: 'file', path: 'train() config' } as const;

function resolveTrainConfig(partial: Partial<TrainConfig>, checkpoint: CheckpointContents | null): TrainConfig {
  const given = parseConfigPart(partial ?? {}, SOURCE);
  if (!checkpoint) return resolveConfig(DEFAULT_CONFIG as TrainConfig, [{ values: given, source: SOURCE }]).config;
  const saved = checkpoint.config;
  const conflicts: string[] = [];
  for (const [key, value] of Object.entries(given) as [ConfigKey, unknown][]) {
    if (RESUME_OVERRIDABLE.includes(key)) continue;
    if (JSON.stringify(value) !== JSON.stringify(saved[key])) {
      conflicts.push(`${key} is ${JSON.stringify(saved[key])} in ${checkpoint.file}, cannot resume with ${JSON.stringify(value)}`);
    }
  }
  if (conflicts.length > 0) throw new ConfigError(conflicts);
  return resolveConfig(saved, [{ values: given, source: SOURCE }]).config;
}

const nextMacrotask = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/**
 * Loads images indices[start .. start+rows) of a set into the model's input and label tensors.
 * The pixels go through the backend (native converts bytes to floats in C++; see
 * Kernels.gatherRows); the labels, `rows` bytes, are copied here.
 */
function loadBatch(model: Mlp, set: ImageSet, indices: Uint32Array, start: number, rows: number, scaling: PixelScaling): void {
  model.kernels.gatherRows(rows, set.features, set.images, indices, start, scalingTable(scaling), model.inputTensor);
  fillLabels(set, indices, start, rows, model.labelTensor.data);
}

/**
 * Mean loss, accuracy and predictions over `indices` of a set; predictions written into
 * `preds`. Yields to the event loop between chunks (a chunk costs about one training batch).
 */
async function evaluateIndices(model: Mlp, set: ImageSet, indices: Uint32Array, scaling: PixelScaling, preds: Int32Array, labels: Uint8Array): Promise<{ loss: number; accuracy: number }> {
  const cap = model.capacity;
  const classes = model.classes;
  let lossSum = 0;
  for (let start = 0; start < indices.length; start += cap) {
    if (start > 0) await nextMacrotask();
    const rows = Math.min(cap, indices.length - start);
    loadBatch(model, set, indices, start, rows, scaling);
    lossSum += model.evaluateBatch(rows) * rows;
    preds.set(argmaxRows(model.probsTensor.data.subarray(0, rows * classes), rows, classes), start);
    for (let k = 0; k < rows; k++) labels[start + k] = set.labels[indices[start + k]!]!;
  }
  return { loss: lossSum / indices.length, accuracy: accuracy(labels.subarray(0, indices.length), preds.subarray(0, indices.length)) };
}

async function evaluateSet(model: Mlp, set: ImageSet, indices: Uint32Array, scaling: PixelScaling): Promise<EvalResult> {
  const preds = new Int32Array(indices.length);
  const labels = new Uint8Array(indices.length);
  const r = await evaluateIndices(model, set, indices, scaling, preds, labels);
  return { loss: r.loss, accuracy: r.accuracy, count: indices.length, confusion: confusionMatrix(labels, preds, model.classes) };
}

function snapshot(model: Mlp, into: Map<string, Float32Array>): void {
  for (const p of model.parameters) {
    let buf = into.get(p.name);
    if (!buf) {
      buf = new Float32Array(p.size);
      into.set(p.name, buf);
    }
    buf.set(p.value.data.subarray(0, p.size));
  }
}

/**
 * The first parameter holding a NaN or an infinity, or null. A step can overflow the weights
 * while its own loss was finite; checked before anything is saved so that a checkpoint (and the
 * best weights) never hold non-finite values.
 */
function nonFiniteParameter(model: Mlp): string | null {
  for (const p of model.parameters) {
    const d = p.value.data;
    for (let i = 0; i < p.size; i++) if (!Number.isFinite(d[i]!)) return p.name;
  }
  return null;
}

function overflowMessage(parameter: string, epoch: number, batch: number, lr: number, cfg: TrainConfig): string {
  return `the weights (${parameter}) became non-finite in epoch ${epoch}, batch ${batch} (lr ${lr}); ${advice(cfg)}`;
}

/** A leaky_relu / prelu slope above 1 in size, which multiplies activations layer by layer. */
function growingSlope(cfg: TrainConfig): boolean {
  return (cfg.activation === 'leaky_relu' || cfg.activation === 'prelu') && Math.abs(cfg.alpha) > 1;
}

/** The end of a divergence message: the likely cause, and what to try. */
function advice(cfg: TrainConfig): string {
  const lower = `a lower learning rate (e.g. lr ${cfg.lr / 10})`;
  return growingSlope(cfg) ? `${slopeCause(cfg)}: try a slope of at most 1 in size, or ${lower}` : `try ${lower}`;
}

function slopeCause(cfg: TrainConfig): string {
  return `the ${cfg.activation} slope alpha ${cfg.alpha} multiplies activations by up to ${Math.abs(cfg.alpha)} per hidden layer, which can overflow whatever the learning rate`;
}

/**
 * The loss of the very first batch, before any optimizer step, is not finite: the learning rate
 * played no part. The initial network's activations overflowed float32.
 */
function firstBatchOverflowMessage(loss: number, cfg: TrainConfig): string {
  const head = `the loss was ${loss} on the first batch, before any step (so not because of the learning rate): the initial network's activations overflow float32`;
  return growingSlope(cfg) ? `${head}; ${slopeCause(cfg)}: use a slope of at most 1 in size` : `${head}; try fewer or smaller layers${cfg.standardize ? '' : ', or --standardize'}`;
}

function restore(model: Mlp, from: Map<string, Float32Array>): void {
  for (const p of model.parameters) p.value.data.set(from.get(p.name)!);
}

/**
 * Trains an MLP. `config` fills in DEFAULT_CONFIG (or, with resumeFrom, the checkpoint's
 * config; only epochs, patience, backend, threads and data may change on resume).
 */
export async function train(config: Partial<TrainConfig> = {}, options: TrainOptions = {}): Promise<TrainResult> {
  // metrics.jsonl listens to the run's events; the loop below does not know about it.
  const log = metricsLogFor(options);
  if (log === null) return trainRun(config, options);
  try {
    const result = await trainRun(config, log.listen(options));
    log.end(result.record);
    return result;
  } catch (error) {
    log.fail(error);
    throw error;
  } finally {
    log.close();
  }
}

async function trainRun(config: Partial<TrainConfig>, options: TrainOptions): Promise<TrainResult> {
  const wallStart = performance.now();
  const checkpoint = options.resumeFrom !== undefined ? await readCheckpoint(options.resumeFrom) : null;
  const cfg = resolveTrainConfig(config, checkpoint);

  const ranBefore = checkpoint?.state.ranOn;
  const allowBackendChange = options.allowBackendChange ?? ('backend' in config && config.backend !== undefined && config.backend !== 'auto');
  if (checkpoint && cfg.epochs < checkpoint.state.epoch) {
    throw new ConfigError([`epochs ${cfg.epochs} is fewer than the ${checkpoint.state.epoch} epochs already completed in ${checkpoint.file}`]);
  }
  let kernels: Kernels;
  let backend: BackendInfo;
  if (options.kernels) {
    kernels = options.kernels;
    if (cfg.threads !== undefined) kernels.setThreads(cfg.threads);
    backend = { ...kernels.info(), skipped: [] };
  } else {
    // 'auto' leaves the choice to DENSETRAIN_BACKEND when it is set, as everywhere else; a
    // resumed run continues on the backend it ran on unless told otherwise.
    const chosen = cfg.backend !== 'auto' ? cfg.backend : !allowBackendChange && ranBefore ? ranBefore.backend : undefined;
    ({ kernels, info: backend } = selectKernels({ backend: chosen, threads: cfg.threads }));
  }
  if (checkpoint && ranBefore && !allowBackendChange) checkSameBackend(checkpoint.file, ranBefore, backend);

  const dataset = options.dataset ?? (await loadDataset(cfg.data, { seed: cfg.seed }));
  const fingerprint = fingerprintDataset(dataset);
  if (checkpoint?.state.data) {
    const difference = fingerprintDifference(checkpoint.state.data, fingerprint);
    if (difference !== null) {
      throw new CheckpointError(`${checkpoint.file}: was trained on different data than ${cfg.data} (${difference}); resume with the data it was trained on`);
    }
  }
  const valCount = heldOutCount(dataset.train.count, cfg.valSplit);
  checkConfigAgainstData(
    cfg,
    { features: dataset.train.features, height: dataset.train.height, width: dataset.train.width, classes: dataset.classes, trainCount: dataset.train.count - valCount },
    { layers: SOURCE, batchSize: SOURCE },
  );

  // The one rng: initialisation, then the split, then the shuffles.
  const rng = new Rng(cfg.seed);
  const precision = resolvePrecision(cfg.precision, kernels);
  const model = new Mlp(
    { layers: cfg.layers, activation: cfg.activation, alpha: cfg.alpha },
    { kernels, capacity: Math.max(cfg.batchSize, 256), init: cfg.init, rng, precision: precision.used },
  );
  let optimizer: Optimizer | null = null;
  let ownLock: RunLock | null = null;
  try {
    const split = validationSplit(dataset.train, rng, cfg.valSplit);
    const scaling = computeScaling(dataset.train, split.train, cfg.standardize);
    model.scaling = scaling;
    model.classNames = [...dataset.classNames];
    optimizer = createOptimizer(kernels, model.parameters, cfg);
    // SGD runs inside the backend's fused step where it can (native): one call per batch.
    const fusedSgd = model.fuseSgd(optimizer.fusedSgd());

    const datasetInfo: RunRecord['dataset'] = {
      name: dataset.name,
      source: dataset.source,
      classNames: [...dataset.classNames],
      trainCount: split.train.length,
      valCount: split.val.length,
      testCount: dataset.test.count,
      height: dataset.train.height,
      width: dataset.train.width,
      fingerprint,
    };
    const ranOn = { backend: backend.backend, isa: backend.isa, threads: backend.threads };

    const best = new Map<string, Float32Array>();
    snapshot(model, best);
    let state: TrainingState = {
      epoch: 0,
      batch: 0,
      rngEpochStart: rng.getState(),
      optimizerSteps: 0,
      bestEpoch: 0,
      bestValLoss: null,
      epochsWithoutImprovement: 0,
      epochs: [],
      batches: [],
      partial: { lossSum: 0, correct: 0, seen: 0, seconds: 0 },
      startedAt: new Date().toISOString(),
      seconds: 0,
      dataset: { trainCount: datasetInfo.trainCount, valCount: datasetInfo.valCount, testCount: datasetInfo.testCount },
      ranOn,
      data: fingerprint,
    };
    // The checkpoint then records what this process runs on, and the data it checked.
    if (checkpoint) state = { ...restoreFromCheckpoint(checkpoint, model, optimizer, best, rng, datasetInfo), ranOn, data: fingerprint };
    const secondsBefore = state.seconds;
    const elapsed = (): number => secondsBefore + (performance.now() - wallStart) / 1000;

    const outDir = options.outDir;
    if (outDir !== undefined) {
      await mkdir(outDir, { recursive: true });
      // One writer per run folder (see run-lock.ts).
      if (!options.runLock) ownLock = await acquireRunLock(outDir, { purpose: checkpoint ? 'train() resuming' : 'train()' });
    }
    const lock = options.runLock ?? ownLock;
    const checkLock = (): void => {
      if (lock?.lost) throw new Error(`${outDir}: another process took over this run folder's lock (this one stalled past its lease); stopping without writing`);
    };
    const save = async (s: TrainingState): Promise<void> => {
      if (outDir === undefined) return;
      checkLock();
      await writeCheckpoint(join(outDir, CHECKPOINT_FILE), { model, optimizer: optimizer!, best, config: cfg, state: { ...s, seconds: elapsed() } });
      await saveModelValues(join(outDir, MODEL_FILE), model, best);
    };

    options.onStart?.({ config: cfg, backend, precision, dataset: datasetInfo, startEpoch: state.epoch + 1, resumedFrom: checkpoint?.file ?? null });

    const trainSet = dataset.train;
    const n = split.train.length;
    const batchesPerEpoch = Math.ceil(n / cfg.batchSize);
    const order = new Uint32Array(n);
    const valPreds = new Int32Array(split.val.length);
    const valLabels = new Uint8Array(split.val.length);
    const classes = model.classes;
    let stopReason: StopReason = 'completed';
    let stopMessage: string | undefined;

    epochs: for (let epoch = state.epoch + 1; epoch <= cfg.epochs; epoch++) {
      // The epoch's order depends only on the rng state at its start (saved in checkpoints).
      rng.setState(state.rngEpochStart);
      order.set(split.train);
      rng.shuffle(order);
      const lr = learningRateAt(cfg, epoch - 1);
      const partial = { ...state.partial };
      const epochStart = performance.now() - partial.seconds * 1000;

      for (let b = state.batch; b < batchesPerEpoch; b++) {
        const t0 = performance.now();
        const start = b * cfg.batchSize;
        const rows = Math.min(cfg.batchSize, n - start);
        loadBatch(model, trainSet, order, start, rows, scaling);
        // With fusedSgd the step also updates the parameters, unless the loss is not finite.
        const loss = fusedSgd ? model.trainStep(rows, lr) : model.computeGradients(rows, 0);
        if (!Number.isFinite(loss)) {
          stopReason = 'diverged';
          stopMessage =
            state.optimizerSteps === 0
              ? firstBatchOverflowMessage(loss, cfg)
              : `the loss became ${loss} in epoch ${epoch}, batch ${b + 1} (lr ${lr}); ${advice(cfg)}`;
          break epochs;
        }
        if (fusedSgd) optimizer.countFusedStep();
        else optimizer.step(lr);
        state.optimizerSteps = optimizer.stepCount;
        // The label buffer holds this batch's labels (loadBatch wrote them): no per-batch arrays.
        const correct = countCorrect(model.probsTensor.data, model.labelTensor.data, rows, classes);
        partial.lossSum += loss * rows;
        partial.correct += correct;
        partial.seen += rows;
        const record: BatchRecord = { epoch, batch: b + 1, loss: Math.fround(loss) };
        state.batches.push(record);
        const seconds = (performance.now() - t0) / 1000;
        options.onBatch?.({ ...record, batches: batchesPerEpoch, size: rows, accuracy: correct / rows, samplesPerSecond: rows / Math.max(seconds, 1e-9), lr });

        if (options.signal?.aborted) {
          const overflowed = nonFiniteParameter(model);
          if (overflowed !== null) {
            // This step overflowed the weights (its loss was still finite): a diverged run, not saved.
            stopReason = 'diverged';
            stopMessage = overflowMessage(overflowed, epoch, b + 1, lr, cfg);
            break epochs;
          }
          stopReason = 'interrupted';
          stopMessage = `interrupted in epoch ${epoch} after batch ${b + 1} of ${batchesPerEpoch}`;
          partial.seconds = (performance.now() - epochStart) / 1000;
          state = { ...state, epoch: epoch - 1, batch: b + 1, partial, stopReason };
          await save(state);
          break epochs;
        }
        await nextMacrotask();
      }

      // End of the epoch: validation, best weights, early stopping, checkpoint.
      // Every loss was finite, but the last step may have overflowed the weights: never save those.
      const overflowed = nonFiniteParameter(model);
      if (overflowed !== null) {
        stopReason = 'diverged';
        stopMessage = overflowMessage(overflowed, epoch, batchesPerEpoch, lr, cfg);
        break;
      }
      const trainSeconds = (performance.now() - epochStart) / 1000;
      let valLoss: number | null = null;
      let valAccuracy: number | null = null;
      if (split.val.length > 0) {
        const v = await evaluateIndices(model, trainSet, split.val, scaling, valPreds, valLabels);
        valLoss = v.loss;
        valAccuracy = v.accuracy;
      }
      const epochRecord: EpochRecord = {
        epoch,
        trainLoss: partial.lossSum / partial.seen,
        trainAccuracy: partial.correct / partial.seen,
        valLoss,
        valAccuracy,
        lr,
        seconds: (performance.now() - epochStart) / 1000,
        samplesPerSecond: partial.seen / Math.max(trainSeconds, 1e-9),
      };
      if (cfg.activation === 'prelu') epochRecord.preluSlopes = model.preluSlopes();
      state.epochs.push(epochRecord);

      if (valLoss !== null && !Number.isFinite(valLoss)) {
        stopReason = 'diverged';
        stopMessage = `the validation loss became ${valLoss} after epoch ${epoch} (lr ${lr}); ${advice(cfg)}`;
        options.onEpoch?.(epochRecord);
        break;
      }
      if (valLoss === null || state.bestValLoss === null || valLoss < state.bestValLoss) {
        state.bestValLoss = valLoss;
        state.bestEpoch = epoch;
        state.epochsWithoutImprovement = 0;
        snapshot(model, best);
      } else {
        state.epochsWithoutImprovement++;
      }
      state.epoch = epoch;
      state.batch = 0;
      state.partial = { lossSum: 0, correct: 0, seen: 0, seconds: 0 };
      state.rngEpochStart = rng.getState();
      const earlyStop = cfg.patience > 0 && valLoss !== null && state.epochsWithoutImprovement >= cfg.patience;
      if (earlyStop) {
        stopReason = 'early-stopping';
        stopMessage = `validation loss did not improve for ${cfg.patience} epochs; best epoch ${state.bestEpoch}`;
      }
      await save({ ...state, ...(earlyStop ? { stopReason } : {}) });
      await options.onEpoch?.(epochRecord);
      if (earlyStop) break;
      if (options.signal?.aborted && epoch < cfg.epochs) {
        // Aborted during validation or the checkpoint write: the epoch-end checkpoint is saved.
        stopReason = 'interrupted';
        stopMessage = `interrupted after epoch ${epoch}`;
        break;
      }
      await nextMacrotask();
    }

    // The final model: the best weights (for a run stopped before any epoch ended, the initial weights).
    restore(model, best);
    if (outDir !== undefined) {
      checkLock();
      await saveModelValues(join(outDir, MODEL_FILE), model, best);
    }
    let test: EvalResult | null = null;
    if (state.bestEpoch >= 1 && dataset.test.count > 0) {
      const all = new Uint32Array(dataset.test.count);
      for (let i = 0; i < all.length; i++) all[i] = i;
      test = await evaluateSet(model, dataset.test, all, scaling);
    }
    const record: RunRecord = {
      version: 1,
      config: cfg,
      dataset: datasetInfo,
      backend,
      precision,
      startedAt: state.startedAt,
      finishedAt: new Date().toISOString(),
      stopReason,
      ...(stopMessage !== undefined ? { stopMessage } : {}),
      bestEpoch: state.bestEpoch,
      epochs: state.epochs,
      batches: state.batches,
      test,
      seconds: elapsed(),
    };
    return { record, model };
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    model.fuseSgd(null); // the step must not keep the optimizer's velocities, freed next
    optimizer?.dispose();
    await ownLock?.release();
  }
}

/** Refuses to continue a run on another backend or ISA than it ran on (the numbers would differ). */
function checkSameBackend(file: string, before: RanOn, now: BackendInfo): void {
  if (before.backend === now.backend && before.isa === now.isa) return;
  const was = `${before.backend} (${before.isa})`;
  const is = `${now.backend} (${now.isa})`;
  const hint =
    before.backend === now.backend
      ? `this CPU or DENSETRAIN_ISA gives ${now.isa}; unset DENSETRAIN_ISA, or resume on the machine it ran on`
      : `continue on ${before.backend} (check DENSETRAIN_BACKEND), or pass --backend ${now.backend} to accept the difference`;
  throw new CheckpointError(`${file}: the run was trained on ${was} and would continue on ${is}, so it would not match an uninterrupted run; ${hint}`);
}

function restoreFromCheckpoint(
  ckpt: CheckpointContents,
  model: Mlp,
  optimizer: Optimizer,
  best: Map<string, Float32Array>,
  rng: Rng,
  dataset: RunRecord['dataset'],
): TrainingState {
  const { file, tensors, state } = ckpt;
  const saved = state.dataset;
  if (saved.trainCount !== dataset.trainCount || saved.valCount !== dataset.valCount) {
    throw new CheckpointError(`${file}: was trained on ${saved.trainCount} training / ${saved.valCount} validation images, the data now gives ${dataset.trainCount} / ${dataset.valCount}`);
  }
  const values: Record<string, Float32Array> = {};
  for (const p of model.parameters) {
    values[p.name] = requireTensor(file, tensors, p.name, p.size);
    best.get(p.name)!.set(requireTensor(file, tensors, `best.${p.name}`, p.size));
  }
  model.setParameters(values);
  for (const [name, t] of optimizer.stateTensors()) t.data.set(requireTensor(file, tensors, name, t.length));
  optimizer.setStepCount(state.optimizerSteps);
  rng.setState(state.rngEpochStart);
  const { stopReason: _previous, ...rest } = state;
  void _previous;
  return { ...rest, epochs: [...state.epochs], batches: [...state.batches], partial: { ...state.partial } };
}
