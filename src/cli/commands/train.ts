/**
 * `densetrain train`: resolves the config (defaults <- --config file <- flags), picks the
 * kernels, loads and checks the data, trains with a progress display, and leaves a run folder
 * with metrics.json, model.safetensors and report.html.
 *
 * Ctrl-C once: the trainer stops after the current batch and writes its checkpoint; the report
 * so far is written and the command exits 130. Ctrl-C twice: exit 130 at once.
 */
import { join, resolve } from 'node:path';
import Table from 'cli-table3';
import type { Dataset } from '../../data/types.js';
import { heldOutCount } from '../../data/split.js';
import { formatBackendInfo, selectKernels, type BackendInfo } from '../../kernels/index.js';
import { CHECKPOINT_FILE, readCheckpoint } from '../../train/checkpoint.js';
import {
  checkConfigAgainstData,
  CONFIG_KEYS,
  ConfigError,
  describeKey,
  optionFlag,
  type ConfigKey,
  type ResolvedConfig,
} from '../../train/schema.js';
import type { EpochRecord, RunRecord, TrainConfig } from '../../train/types.js';
import type { Mlp } from '../../model/mlp.js';
import type { BatchEvent } from '../../train/train.js';
import { loadData, loadReport, loadTerminalTables, loadTrainer } from '../deps.js';
import { EXIT_FAILURE, EXIT_INTERRUPTED, EXIT_OK, ExitRequest } from '../errors.js';
import { formatCount, formatLoss, formatPercent, formatSeconds, type Io } from '../io.js';
import type { CliContext, RegisterCommand } from '../main.js';
import { addTrainConfigOptions, resolveTrainOptions } from '../options.js';
import { evaluateProbabilities, predictImageSet } from '../predict.js';
import { createTrainProgress } from '../progress.js';
import { checkRunDir, defaultRunDir, markComplete, markIncomplete, prepareRunDir, writeJsonAtomic } from '../run-folder.js';

interface TrainCommandOptions extends Record<string, unknown> {
  out?: string;
  resume?: string;
  quiet?: boolean;
  verbose?: boolean;
}

export const registerTrainCommand: RegisterCommand = (program, context) => {
  const command = program
    .command('train')
    .description('train an MLP; writes a run folder with metrics.json, model.safetensors and report.html');
  addTrainConfigOptions(command, context.defaults);
  command
    .option('--out <dir>', 'run folder (default: runs/<timestamp>)')
    .option('--resume <dir>', "continue the run in <dir> from its checkpoint (flags given override its config)")
    .option('--quiet', 'no progress bar: one line per epoch')
    .option('--verbose', 'show the resolved config, and stack traces on errors')
    .action(async (options: TrainCommandOptions) => {
      const code = await trainCommand(options, context);
      if (code !== EXIT_OK) throw new ExitRequest(code);
    });
};

/** Ctrl-C handling: the first aborts (the trainer stops cleanly), the second exits at once. */
function interruptHandler(io: Io, onFirst: () => void): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  let count = 0;
  const handler = () => {
    count++;
    if (count === 1) {
      onFirst();
      io.err('densetrain: interrupted; stopping after the current batch and saving a checkpoint (Ctrl-C again to quit now)');
      controller.abort();
    } else {
      io.err('densetrain: interrupted again; exiting now');
      process.exit(EXIT_INTERRUPTED);
    }
  };
  process.on('SIGINT', handler);
  return { controller, dispose: () => void process.off('SIGINT', handler) };
}

/**
 * What may differ from the checkpoint's config when resuming: the same list as train()'s
 * RESUME_OVERRIDABLE (src/train/train.ts), which refuses the rest. Checked here first so the
 * message names the flag or config key the user wrote.
 */
const RESUME_OVERRIDABLE: readonly ConfigKey[] = ['epochs', 'patience', 'backend', 'threads', 'data'];

async function resolveForTrain(options: TrainCommandOptions, context: CliContext): Promise<ResolvedConfig> {
  if (options.resume === undefined) return resolveTrainOptions(options, context.defaults);
  // Resuming: the checkpoint's config is the base; flags and --config may change only some keys.
  const checkpoint = await readCheckpoint(options.resume);
  const saved: TrainConfig = { ...context.defaults, ...checkpoint.config };
  const resolved = await resolveTrainOptions(options, saved);
  const conflicts: string[] = [];
  for (const key of CONFIG_KEYS) {
    const source = resolved.sources[key];
    if (source.kind === 'default' || RESUME_OVERRIDABLE.includes(key)) continue;
    if (JSON.stringify(resolved.config[key]) !== JSON.stringify(saved[key])) {
      conflicts.push(
        `${describeKey(key, source)} ${JSON.stringify(resolved.config[key])} differs from the run being resumed (${JSON.stringify(saved[key])} in ${checkpoint.file})`,
      );
    }
  }
  if (conflicts.length > 0) {
    throw new ConfigError([
      ...conflicts,
      `only ${RESUME_OVERRIDABLE.map((k) => optionFlag(k)).join(', ')} can change when resuming`,
    ]);
  }
  return resolved;
}

/**
 * The kernels: --backend / --threads (or the config file) when given, else DENSETRAIN_BACKEND /
 * DENSETRAIN_THREADS, else auto. A thread count the backend refuses names the option.
 */
export function selectBackend(resolved: ResolvedConfig): ReturnType<typeof selectKernels> {
  const { config, sources } = resolved;
  const backend = sources.backend.kind === 'default' ? undefined : config.backend;
  try {
    return selectKernels({ backend, threads: config.threads });
  } catch (error) {
    if (error instanceof RangeError && config.threads !== undefined && /thread/i.test(error.message)) {
      throw new ConfigError([`${describeKey('threads', sources.threads)} ${config.threads}: ${error.message}`]);
    }
    throw error;
  }
}

/** The training split's size for the configured validation fraction, the way the trainer splits. */
function trainSplitCount(dataset: Dataset, config: TrainConfig, resolved: ResolvedConfig): number {
  try {
    return dataset.train.count - heldOutCount(dataset.train.count, config.valSplit);
  } catch (error) {
    throw new ConfigError([`${describeKey('valSplit', resolved.sources.valSplit)} ${config.valSplit}: ${(error as Error).message}`]);
  }
}

export async function trainCommand(options: TrainCommandOptions, context: CliContext): Promise<number> {
  const { io } = context;
  let progress: ReturnType<typeof createTrainProgress> | undefined;
  const interrupt = interruptHandler(io, () => progress?.stop());
  try {
    const resolved = await resolveForTrain(options, context);
    const { config } = resolved;
    const { kernels, info } = selectBackend(resolved);
    io.out(`backend: ${formatBackendInfo(info)}`);
    if (options.verbose) io.out(`config: ${JSON.stringify(config)}`);

    const outDir = options.out ?? options.resume ?? defaultRunDir();
    const outFlag = options.out !== undefined ? '--out' : '--resume';
    const resumingHere = options.resume !== undefined && resolve(outDir) === resolve(options.resume);
    await checkRunDir(outDir, outFlag, resumingHere);

    const dataset = await (await loadData()).loadDataset(config.data, { seed: config.seed });
    const trainCount = trainSplitCount(dataset, config, resolved);
    checkConfigAgainstData(
      config,
      { features: dataset.train.features, height: dataset.train.height, width: dataset.train.width, classes: dataset.classes, trainCount },
      resolved.sources,
    );
    io.out(
      `data: ${dataset.name}: ${formatCount(trainCount)} train, ${formatCount(dataset.train.count - trainCount)} validation, ` +
        `${formatCount(dataset.test.count)} test images, ${dataset.train.height}x${dataset.train.width}, ${dataset.classes} classes`,
    );
    if (interrupt.controller.signal.aborted) {
      io.err('densetrain: interrupted before training started; nothing was written');
      return EXIT_INTERRUPTED;
    }

    await prepareRunDir(outDir, outFlag, resumingHere);
    await markIncomplete(outDir, `training started at ${new Date().toISOString()} (process ${process.pid}) and has not finished`);
    io.out(`run folder: ${outDir}`);

    const bars = io.tty && !options.quiet;
    progress = createTrainProgress(io, { bars, epochNumber: (r) => r.epoch });
    const trainer = await loadTrainer();
    let record: RunRecord;
    let model: Mlp;
    try {
      ({ record, model } = await trainer.train(config, {
        outDir,
        dataset,
        kernels,
        signal: interrupt.controller.signal,
        ...(options.resume !== undefined ? { resumeFrom: options.resume } : {}),
        onBatch: (event: BatchEvent) => {
          const samples = Math.min(config.batchSize, trainCount - (event.batch - 1) * config.batchSize);
          progress?.batch(event.epoch, event.batch, event.batches, event.loss, samples);
        },
        onEpoch: (epoch: EpochRecord) => progress?.epoch(epoch, config.epochs),
      }));
    } catch (error) {
      progress.stop();
      const aborted = interrupt.controller.signal.aborted;
      await markIncomplete(outDir, aborted ? 'interrupted before a record was written' : `failed: ${(error as Error).message}`).catch(() => {});
      if (aborted && (error as Error).name === 'AbortError') {
        io.err(`densetrain: interrupted; run folder: ${outDir}`);
        return EXIT_INTERRUPTED;
      }
      throw error;
    }
    progress.stop();
    try {
      return await finishRun({ io, outDir, record, model, dataset, info });
    } catch (error) {
      await markIncomplete(outDir, `training ended (${record.stopReason}) but finishing the run failed: ${(error as Error).message}`).catch(() => {});
      throw error;
    }
  } finally {
    progress?.stop();
    interrupt.dispose();
  }
}

interface FinishInput {
  io: Io;
  outDir: string;
  record: RunRecord;
  model: Mlp;
  dataset: Dataset;
  info: BackendInfo;
}

async function finishRun({ io, outDir, record, model, dataset, info }: FinishInput): Promise<number> {
  const interrupted = record.stopReason === 'interrupted';
  let probs: Float32Array | undefined;
  try {
    if (!interrupted) probs = predictImageSet(model, dataset.test, model.scaling);
  } finally {
    model.dispose();
  }
  const test = record.test ?? (probs ? evaluateProbabilities(probs, dataset.test.labels, dataset.classes) : null);
  // metrics.json is the RunRecord; INCOMPLETE (kept unless everything below succeeds) says if it is final.
  await writeJsonAtomic(join(outDir, 'metrics.json'), record);

  let reportPath: string | undefined;
  let reportError: string | undefined;
  try {
    const report = await loadReport();
    reportPath = await report.writeReport(outDir, { record, ...(probs ? { test: { images: dataset.test, probs } } : {}) });
  } catch (error) {
    reportError = (error as Error).message.split('\n')[0];
  }

  io.out(summaryTable(record, test, info));
  if (test && !interrupted) {
    const { confusionTable, perClassTable } = await loadTerminalTables();
    io.out('confusion matrix on the test set (rows: true class, columns: predicted)');
    io.out(confusionTable(test.confusion, record.dataset.classNames));
    io.out(perClassTable(test.confusion, record.dataset.classNames));
  }

  const where = resolve(outDir);
  if (interrupted) {
    await markIncomplete(outDir, `interrupted (${record.stopMessage ?? 'Ctrl-C'}); continue with: densetrain train --resume ${outDir}`);
    io.out(`interrupted: checkpoint ${join(where, CHECKPOINT_FILE)}`);
    if (reportPath) io.out(`report so far: ${resolve(reportPath)}`);
    io.out(`continue with: densetrain train --resume ${outDir}`);
    return EXIT_INTERRUPTED;
  }
  if (reportError !== undefined) {
    await markIncomplete(outDir, `report.html could not be written: ${reportError}`);
    io.err(`densetrain: could not write the report: ${reportError}`);
    io.out(`run folder: ${where}`);
    return EXIT_FAILURE;
  }
  await markComplete(outDir);
  io.out(`run folder: ${where}`);
  if (reportPath) io.out(`report: ${resolve(reportPath)}`);
  if (record.stopReason === 'diverged') {
    io.err(`densetrain: training diverged: ${record.stopMessage ?? 'the loss is not finite'}; the kept model is from epoch ${record.bestEpoch}`);
    return EXIT_FAILURE;
  }
  return EXIT_OK;
}

const COMPACT = { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' };

/** Loss and accuracy of the kept model (train, validation, test), then how the run went. */
function summaryTable(record: RunRecord, test: { loss: number; accuracy: number } | null, info: BackendInfo): string {
  const epochs = record.epochs;
  const kept = epochs.find((e) => e.epoch === record.bestEpoch) ?? epochs[epochs.length - 1];
  const scores = new Table({
    head: ['', 'loss', 'accuracy'],
    style: { head: [], border: [] },
    colAligns: ['left', 'right', 'right'],
    chars: COMPACT,
  });
  const keptNote = kept && epochs.length > 1 ? ` (epoch ${kept.epoch})` : '';
  scores.push(
    [`train${keptNote}`, formatLoss(kept?.trainLoss), formatPercent(kept?.trainAccuracy)],
    [`validation${keptNote}`, formatLoss(kept?.valLoss), formatPercent(kept?.valAccuracy)],
    ['test', formatLoss(test?.loss), formatPercent(test?.accuracy)],
  );
  const mean = (f: (e: EpochRecord) => number) => (epochs.length ? epochs.reduce((a, e) => a + f(e), 0) / epochs.length : Number.NaN);
  const run = new Table({ style: { head: [], border: [] }, chars: COMPACT });
  run.push(
    ['seconds per epoch', formatSeconds(mean((e) => e.seconds))],
    ['samples/s', epochs.length ? formatCount(mean((e) => e.samplesPerSecond)) : '-'],
    ['epochs run', String(epochs.length)],
    ['backend', `${info.backend} (${info.isa}, ${info.threads} thread${info.threads === 1 ? '' : 's'})`],
    ['stop reason', record.stopMessage ? `${record.stopReason}: ${record.stopMessage}` : record.stopReason],
  );
  return `${scores.toString()}\n${run.toString()}`;
}
