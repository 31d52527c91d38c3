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
import { computeScaling } from '../data/batches.js';
import { fingerprintDataset, fingerprintDifference, type DataFingerprint } from '../data/fingerprint.js';
import { loadDataset } from '../data/registry.js';
import { heldOutCount, validationSplit } from '../data/split.js';
import type { Dataset } from '../data/types.js';
import { selectKernels, type BackendInfo } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { Mlp } from '../model/mlp.js';
import { createOptimizer, type Optimizer } from '../optim/optimizer.js';
import { learningRateAt } from '../optim/schedule.js';
import { Rng } from '../rng.js';
import { MODEL_FILE, requireTensor } from '../model/load.js';
import { CheckpointError } from '../model/safetensors.js';
import { saveModelValues } from '../model/save.js';
import { CHECKPOINT_FILE, readCheckpoint, writeCheckpoint, type CheckpointContents, type TrainingState } from './checkpoint.js';
import { DEFAULT_CONFIG } from './defaults.js';
import type { RanOn } from './metadata.js';
import { acquireRunLock, type RunLock } from './run-lock.js';
import { countCorrect } from './metrics.js';
import { evaluateIndices, evaluateTestSet, loadBatch, nextMacrotask } from './evaluate.js';
import { resolvePrecision } from './precision.js';
import { divergedStop, type Stop } from './stop.js';
import { metricsLogFor, type MetricsLogOptions } from './metrics-log.js';
import { ConfigError, checkConfigAgainstData, parseConfigPart, resolveConfig, type ConfigKey } from './schema.js';
import type { BatchRecord, EpochRecord, RunRecord, TrainConfig } from './types.js';
import type { BatchEvent, StartEvent, TrainHooks } from './events.js';

export type { BatchEvent, StartEvent, TrainHooks };

export interface TrainOptions extends TrainHooks {
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
  /**
   * The final model's class probabilities on the test set (test count x classes, row-major),
   * from the same single evaluation as record.test; null when record.test is.
   */
  testProbabilities: Float32Array | null;
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

/** The steps of a run: set up, epochs (each: its batches, then its end), finish. */
async function trainRun(config: Partial<TrainConfig>, options: TrainOptions): Promise<TrainResult> {
  const wallStart = performance.now();
  const plan = await planRun(config, options);
  const { cfg, kernels, precision } = plan;
  // The one rng: initialisation, then the split, then the shuffles.
  const rng = new Rng(cfg.seed);
  const model = new Mlp(
    { layers: cfg.layers, activation: cfg.activation, alpha: cfg.alpha },
    { kernels, capacity: Math.max(cfg.batchSize, 256), init: cfg.init, rng, precision: precision.used },
  );
  const held: Held = { optimizer: null, lock: null };
  try {
    const run = await setUpRun(plan, model, rng, held, wallStart);
    const { state, checkpoint } = { state: run.state, checkpoint: plan.checkpoint };
    options.onStart?.({ config: cfg, backend: plan.backend, precision, dataset: run.datasetInfo, startEpoch: state.epoch + 1, resumedFrom: checkpoint?.file ?? null });
    let stop: Stop = { reason: 'completed' };
    for (let epoch = state.epoch + 1; epoch <= cfg.epochs; epoch++) {
      const progress = startEpoch(run, epoch);
      const ended = (await trainBatches(run, progress)) ?? (await endEpoch(run, progress));
      if (ended !== null) {
        stop = ended;
        break;
      }
      await nextMacrotask();
    }
    return await finishRun(run, stop);
  } catch (error) {
    model.dispose();
    throw error;
  } finally {
    model.fuseSgd(null); // the step must not keep the optimizer's velocities, freed next
    held.optimizer?.dispose();
    await held.lock?.release();
  }
}

/** Set-up, first part: the config, the backend, the data and the checks between them (nothing allocated yet). */
async function planRun(config: Partial<TrainConfig>, options: TrainOptions) {
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
  const precision = resolvePrecision(cfg.precision, kernels);
  return { options, checkpoint, cfg, kernels, backend, precision, dataset, fingerprint };
}

type RunPlan = Awaited<ReturnType<typeof planRun>>;

/** What the run holds that its end must let go of, failed or not. */
interface Held {
  optimizer: Optimizer | null;
  lock: RunLock | null;
}

/** Set-up, second part: the split, scaling, optimizer, training state (fresh or restored), the folder's lock. */
async function setUpRun(plan: RunPlan, model: Mlp, rng: Rng, held: Held, wallStart: number) {
  const { options, checkpoint, cfg, kernels, backend, dataset, fingerprint } = plan;
  const split = validationSplit(dataset.train, rng, cfg.valSplit);
  const scaling = computeScaling(dataset.train, split.train, cfg.standardize);
  model.scaling = scaling;
  model.classNames = [...dataset.classNames];
  const optimizer = createOptimizer(kernels, model.parameters, cfg);
  held.optimizer = optimizer;
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
  let state = freshState(rng, datasetInfo, ranOn, fingerprint);
  // The checkpoint then records what this process runs on, and the data it checked.
  if (checkpoint) state = { ...restoreFromCheckpoint(checkpoint, model, optimizer, best, rng, datasetInfo), ranOn, data: fingerprint };
  const secondsBefore = state.seconds;
  const elapsed = (): number => secondsBefore + (performance.now() - wallStart) / 1000;

  const outDir = options.outDir;
  if (outDir !== undefined) {
    await mkdir(outDir, { recursive: true });
    // One writer per run folder (see run-lock.ts).
    if (!options.runLock) held.lock = await acquireRunLock(outDir, { purpose: checkpoint ? 'train() resuming' : 'train()' });
  }
  const lock = options.runLock ?? held.lock;
  const checkLock = (): void => {
    if (lock?.lost) throw new Error(`${outDir}: another process took over this run folder's lock (this one stalled past its lease); stopping without writing`);
  };
  const save = async (s: TrainingState): Promise<void> => {
    if (outDir === undefined) return;
    checkLock();
    await writeCheckpoint(join(outDir, CHECKPOINT_FILE), { model, optimizer, best, config: cfg, state: { ...s, seconds: elapsed() } });
    await saveModelValues(join(outDir, MODEL_FILE), model, best);
  };
  return {
    plan,
    cfg,
    options,
    model,
    optimizer,
    fusedSgd,
    rng,
    split,
    scaling,
    datasetInfo,
    best,
    state,
    elapsed,
    checkLock,
    save,
    batchesPerEpoch: Math.ceil(split.train.length / cfg.batchSize),
    order: new Uint32Array(split.train.length),
    valPreds: new Int32Array(split.val.length),
    valLabels: new Uint8Array(split.val.length),
  };
}

type Run = Awaited<ReturnType<typeof setUpRun>>;

/** The state of a run that starts at its beginning. */
function freshState(rng: Rng, datasetInfo: RunRecord['dataset'], ranOn: RanOn, data: DataFingerprint): TrainingState {
  return {
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
    data,
  };
}

/** An epoch in progress: its learning rate, running sums (restored mid-epoch on resume) and start time. */
interface EpochProgress {
  epoch: number;
  lr: number;
  partial: TrainingState['partial'];
  started: number;
}

function startEpoch(run: Run, epoch: number): EpochProgress {
  const { rng, state, order, split, cfg } = run;
  // The epoch's order depends only on the rng state at its start (saved in checkpoints).
  rng.setState(state.rngEpochStart);
  order.set(split.train);
  rng.shuffle(order);
  const partial = { ...state.partial };
  return { epoch, lr: learningRateAt(cfg, epoch - 1), partial, started: performance.now() - partial.seconds * 1000 };
}

/** One epoch's batches; a Stop when the run ends inside it (diverged, or interrupted: then checkpointed). */
async function trainBatches(run: Run, progress: EpochProgress): Promise<Stop | null> {
  const { model, optimizer, fusedSgd, cfg, options, state, order, scaling, batchesPerEpoch } = run;
  const { epoch, lr, partial } = progress;
  const n = run.split.train.length;
  for (let b = state.batch; b < batchesPerEpoch; b++) {
    const t0 = performance.now();
    const start = b * cfg.batchSize;
    const rows = Math.min(cfg.batchSize, n - start);
    loadBatch(model, run.plan.dataset.train, order, start, rows, scaling);
    // With fusedSgd the step also updates the parameters, unless the loss is not finite.
    const loss = fusedSgd ? model.trainStep(rows, lr) : model.computeGradients(rows, 0);
    if (!Number.isFinite(loss)) return divergedStop({ kind: 'loss', loss, beforeAnyStep: state.optimizerSteps === 0 }, { epoch, batch: b + 1, lr }, cfg);
    if (fusedSgd) optimizer.countFusedStep();
    else optimizer.step(lr);
    state.optimizerSteps = optimizer.stepCount;
    // The label buffer holds this batch's labels (loadBatch wrote them): no per-batch arrays.
    const correct = countCorrect(model.probsTensor.data, model.labelTensor.data, rows, model.classes);
    partial.lossSum += loss * rows;
    partial.correct += correct;
    partial.seen += rows;
    const record: BatchRecord = { epoch, batch: b + 1, loss: Math.fround(loss) };
    state.batches.push(record);
    const seconds = (performance.now() - t0) / 1000;
    options.onBatch?.({ ...record, batches: batchesPerEpoch, size: rows, accuracy: correct / rows, samplesPerSecond: rows / Math.max(seconds, 1e-9), lr });
    if (options.signal?.aborted) return interruptMidEpoch(run, progress, b + 1);
    await nextMacrotask();
  }
  return null;
}

/** Aborted after batch `batch` of the epoch: a checkpoint to resume from, unless this step overflowed the weights. */
async function interruptMidEpoch(run: Run, progress: EpochProgress, batch: number): Promise<Stop> {
  const { epoch, lr, partial } = progress;
  const overflowed = nonFiniteParameter(run.model);
  // This step overflowed the weights (its loss was still finite): a diverged run, not saved.
  if (overflowed !== null) return divergedStop({ kind: 'weights', parameter: overflowed }, { epoch, batch, lr }, run.cfg);
  const stop: Stop = { reason: 'interrupted', message: `interrupted in epoch ${epoch} after batch ${batch} of ${run.batchesPerEpoch}` };
  partial.seconds = (performance.now() - progress.started) / 1000;
  run.state = { ...run.state, epoch: epoch - 1, batch, partial, stopReason: stop.reason };
  await run.save(run.state);
  return stop;
}

/** End of an epoch: validation, its record, best weights, early stopping, checkpoint, onEpoch; a Stop when the run ends here. */
async function endEpoch(run: Run, progress: EpochProgress): Promise<Stop | null> {
  const { model, cfg, options, split, state } = run;
  const { epoch, lr, partial } = progress;
  // Every loss was finite, but the last step may have overflowed the weights: never save those.
  const overflowed = nonFiniteParameter(model);
  if (overflowed !== null) return divergedStop({ kind: 'weights', parameter: overflowed }, { epoch, batch: run.batchesPerEpoch, lr }, cfg);
  const trainSeconds = (performance.now() - progress.started) / 1000;
  const v = split.val.length > 0 ? await evaluateIndices(model, run.plan.dataset.train, split.val, run.scaling, run.valPreds, run.valLabels) : null;
  const valLoss = v?.loss ?? null;
  const epochRecord: EpochRecord = {
    epoch,
    trainLoss: partial.lossSum / partial.seen,
    trainAccuracy: partial.correct / partial.seen,
    valLoss,
    valAccuracy: v?.accuracy ?? null,
    lr,
    seconds: (performance.now() - progress.started) / 1000,
    samplesPerSecond: partial.seen / Math.max(trainSeconds, 1e-9),
  };
  if (cfg.activation === 'prelu') epochRecord.preluSlopes = model.preluSlopes();
  state.epochs.push(epochRecord);

  if (valLoss !== null && !Number.isFinite(valLoss)) {
    options.onEpoch?.(epochRecord);
    return divergedStop({ kind: 'validation', valLoss }, { epoch, batch: run.batchesPerEpoch, lr }, cfg);
  }
  if (valLoss === null || state.bestValLoss === null || valLoss < state.bestValLoss) {
    state.bestValLoss = valLoss;
    state.bestEpoch = epoch;
    state.epochsWithoutImprovement = 0;
    snapshot(model, run.best);
  } else {
    state.epochsWithoutImprovement++;
  }
  state.epoch = epoch;
  state.batch = 0;
  state.partial = { lossSum: 0, correct: 0, seen: 0, seconds: 0 };
  state.rngEpochStart = run.rng.getState();
  const earlyStop: Stop | null =
    cfg.patience > 0 && valLoss !== null && state.epochsWithoutImprovement >= cfg.patience
      ? { reason: 'early-stopping', message: `validation loss did not improve for ${cfg.patience} epochs; best epoch ${state.bestEpoch}` }
      : null;
  await run.save({ ...state, ...(earlyStop ? { stopReason: earlyStop.reason } : {}) });
  await options.onEpoch?.(epochRecord);
  if (earlyStop) return earlyStop;
  // Aborted during validation or the checkpoint write: the epoch-end checkpoint is saved.
  if (options.signal?.aborted && epoch < cfg.epochs) return { reason: 'interrupted', message: `interrupted after epoch ${epoch}` };
  return null;
}

/** Finish: the best weights into the model and model.safetensors, the test set evaluated once, the record. */
async function finishRun(run: Run, stop: Stop): Promise<TrainResult> {
  const { model, best, state, plan } = run;
  // The final model: the best weights (for a run stopped before any epoch ended, the initial weights).
  restore(model, best);
  if (run.options.outDir !== undefined) {
    run.checkLock();
    await saveModelValues(join(run.options.outDir, MODEL_FILE), model, best);
  }
  // The test set, once: the kept weights, when an epoch ended (before that there is no trained model).
  const testSet = plan.dataset.test;
  const evaluated = testSet.count > 0 && state.bestEpoch >= 1 ? await evaluateTestSet(model, testSet, run.scaling) : null;
  const record: RunRecord = {
    version: 1,
    config: run.cfg,
    dataset: run.datasetInfo,
    backend: plan.backend,
    precision: plan.precision,
    startedAt: state.startedAt,
    finishedAt: new Date().toISOString(),
    stopReason: stop.reason,
    ...(stop.message !== undefined ? { stopMessage: stop.message } : {}),
    bestEpoch: state.bestEpoch,
    epochs: state.epochs,
    batches: state.batches,
    test: evaluated?.test ?? null,
    seconds: run.elapsed(),
  };
  return { record, model, testProbabilities: evaluated?.probs ?? null };
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
