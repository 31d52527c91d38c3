/**
 * One run of `densetrain train` into its run folder: runIntoFolder() prepares the folder
 * (INCOMPLETE marker), trains with progress, writes metrics.json and report.html, prints the
 * summary and decides the exit code. A series of runs (compare, sweep) is series.ts: trials on
 * an executor (src/experiments); what both check first is run-checks.ts, signals interrupt.ts.
 */
import { join, resolve } from 'node:path';
import Table from 'cli-table3';
import type { Dataset } from '../data/types.js';
import type { BackendInfo } from '../kernels/index.js';
import type { Kernels } from '../kernels/types.js';
import { CHECKPOINT_FILE } from '../train/checkpoint.js';
import { withoutRowRules } from '../report/terminal.js';
import { formatPrecision, resolvePrecision } from '../train/precision.js';
import { acquireRunLock, type RunLock } from '../train/run-lock.js';
import type { BatchEvent, TrainResult } from '../train/train.js';
import type { EpochRecord, EvalResult, RunRecord, TrainConfig } from '../train/types.js';
import { loadReport, loadTerminalTables, loadTrainer } from './deps.js';
import { EXIT_FAILURE, EXIT_OK } from './errors.js';
import { formatBackend, formatCount, formatLoss, formatPercent, formatSeconds } from '../format.js';
import { type Io } from './io.js';
import { interruptExitCode } from './interrupt.js';
import type { TrainProgress } from './progress.js';
import { prepareRunDir } from './run-folder.js';
import { markComplete, markIncomplete, writeJsonAtomic } from '../train/run-folder.js';
import { firstLine } from '../first-line.js';

export type RunDetail = 'full' | 'summary';

export interface RunIntoFolderInput {
  io: Io;
  config: TrainConfig;
  outDir: string;
  /** The option that named the folder, for messages: '--out' or '--resume'. */
  outFlag: string;
  /** Continuing the run already in outDir. */
  resumingHere: boolean;
  resumeFrom?: string | undefined;
  /** Resuming: a backend other than the checkpoint's was chosen explicitly. */
  allowBackendChange?: boolean | undefined;
  dataset: Dataset;
  trainCount: number;
  kernels: Kernels;
  info: BackendInfo;
  signal: AbortSignal;
  progress: TrainProgress;
  /**
   * 'full' (train): the summary, confusion and per-class tables and where everything went.
   * 'summary' (train --quiet): the summary tables and the report's path only.
   */
  detail: RunDetail;
}

export interface RunOutcome {
  /** The exit code `densetrain train` would give: 0, 1 (diverged or report failed), 130. */
  code: number;
  /** null when interrupted before the trainer returned a record. */
  record: RunRecord | null;
  test: EvalResult | null;
  reportPath?: string | undefined;
  reportError?: string | undefined;
}

/**
 * Trains one configuration into outDir: prepares the folder (INCOMPLETE until everything is
 * written), trains with progress, writes metrics.json and report.html. Errors other than an
 * interruption are thrown (the folder keeps INCOMPLETE saying why).
 */
export async function runIntoFolder(input: RunIntoFolderInput): Promise<RunOutcome> {
  const { outDir, outFlag, resumingHere } = input;
  await prepareRunDir(outDir, outFlag, resumingHere);
  // One writer per run folder, from before INCOMPLETE is written until the last file is.
  const lock = await acquireRunLock(outDir, { purpose: input.resumeFrom !== undefined ? 'train --resume' : 'train' });
  try {
    return await trainIntoLockedFolder(input, lock);
  } finally {
    await lock.release();
  }
}

async function trainIntoLockedFolder(input: RunIntoFolderInput, lock: RunLock): Promise<RunOutcome> {
  const { io, config, outDir, dataset, trainCount, kernels, info, signal, progress, detail } = input;
  await markIncomplete(outDir, `training started at ${new Date().toISOString()} (process ${process.pid}) and has not finished`);
  if (detail === 'full') io.out(`run folder: ${outDir}`);
  const precision = resolvePrecision(config.precision, kernels);
  if (detail === 'full') io.out(`precision: ${formatPrecision(precision)}`);
  if (precision.used !== precision.requested) io.err(`densetrain: --precision ${precision.requested}: ${precision.detail}`);

  const trainer = await loadTrainer();
  let result: TrainResult;
  try {
    result = await trainer.train(config, {
      outDir,
      dataset,
      kernels,
      signal,
      runLock: lock,
      ...(input.resumeFrom !== undefined ? { resumeFrom: input.resumeFrom, allowBackendChange: input.allowBackendChange ?? false } : {}),
      onBatch: (event: BatchEvent) => {
        const samples = Math.min(config.batchSize, trainCount - (event.batch - 1) * config.batchSize);
        progress.batch(event.epoch, event.batch, event.batches, event.loss, samples);
      },
      onEpoch: (epoch: EpochRecord) => progress.epoch(epoch, config.epochs),
    });
  } catch (error) {
    progress.stop();
    const aborted = signal.aborted;
    await markIncomplete(outDir, aborted ? 'interrupted before a record was written' : `failed: ${(error as Error).message}`).catch(() => {});
    if (aborted && (error as Error).name === 'AbortError') {
      io.err(`densetrain: interrupted; run folder: ${outDir}`);
      return { code: interruptExitCode(signal), record: null, test: null };
    }
    throw error;
  }
  progress.stop();
  // The trainer evaluated the test set once (record.test and its probabilities); the model is not needed after it.
  result.model.dispose();
  const { record } = result;
  try {
    return await finishRun({ io, outDir, record, testProbabilities: result.testProbabilities, dataset, info, detail, interruptCode: interruptExitCode(signal) });
  } catch (error) {
    await markIncomplete(outDir, `training ended (${record.stopReason}) but finishing the run failed: ${(error as Error).message}`).catch(() => {});
    throw error;
  }
}

interface FinishInput {
  io: Io;
  outDir: string;
  record: RunRecord;
  /** The kept model's probabilities on the test set, from the trainer's one evaluation. */
  testProbabilities: Float32Array | null;
  dataset: Dataset;
  info: BackendInfo;
  detail: RunDetail;
  /** The exit code if the run was interrupted (130 SIGINT, 143 SIGTERM). */
  interruptCode: number;
}

async function finishRun({ io, outDir, record, testProbabilities, dataset, info, detail, interruptCode }: FinishInput): Promise<RunOutcome> {
  const full = detail === 'full';
  const interrupted = record.stopReason === 'interrupted';
  // The report's per-image sections are for a finished run, not for one interrupted.
  const probs = interrupted ? null : testProbabilities;
  const test = record.test;
  // metrics.json is the RunRecord; INCOMPLETE (kept unless everything below succeeds) says if it is final.
  await writeJsonAtomic(join(outDir, 'metrics.json'), record);

  let reportPath: string | undefined;
  let reportError: string | undefined;
  try {
    const report = await loadReport();
    reportPath = await report.writeReport(outDir, { record, ...(probs ? { test: { images: dataset.test, probs } } : {}) });
  } catch (error) {
    reportError = firstLine(error);
  }
  const outcome = (code: number): RunOutcome => ({ code, record, test, reportPath, reportError });

  io.out(summaryTable(record, test, info));
  if (full) {
    if (test && !interrupted) {
      const { confusionTable, perClassTable } = await loadTerminalTables();
      io.out('confusion matrix on the test set (rows: true class, columns: predicted)');
      io.out(confusionTable(test.confusion, record.dataset.classNames));
      io.out(perClassTable(test.confusion, record.dataset.classNames));
    }
  }

  const where = resolve(outDir);
  if (interrupted) {
    await markIncomplete(outDir, `interrupted (${record.stopMessage ?? 'Ctrl-C'}); continue with: densetrain train --resume ${outDir}`);
    io.out(`interrupted: checkpoint ${join(where, CHECKPOINT_FILE)}`);
    if (reportPath) io.out(`report so far: ${resolve(reportPath)}`);
    io.out(`continue with: densetrain train --resume ${outDir}`);
    return outcome(interruptCode);
  }
  if (reportError !== undefined) {
    await markIncomplete(outDir, `report.html could not be written: ${reportError}`);
    io.err(`densetrain: could not write the report: ${reportError}`);
    io.out(`run folder: ${where}`);
    return outcome(EXIT_FAILURE);
  }
  await markComplete(outDir);
  if (full) io.out(`run folder: ${where}`);
  if (reportPath) io.out(`report: ${resolve(reportPath)}`);
  if (record.stopReason === 'diverged') {
    io.err(`densetrain: training diverged: ${record.stopMessage ?? 'the loss is not finite'}; the kept model is from epoch ${record.bestEpoch}`);
    return outcome(EXIT_FAILURE);
  }
  return outcome(EXIT_OK);
}

/** Loss and accuracy of the kept model (train, validation, test), then how the run went. */
function summaryTable(record: RunRecord, test: { loss: number; accuracy: number } | null, info: BackendInfo): string {
  const epochs = record.epochs;
  const kept = epochs.find((e) => e.epoch === record.bestEpoch) ?? epochs[epochs.length - 1];
  const scores = new Table({
    head: ['', 'loss', 'accuracy'],
    style: { head: [], border: [] },
    colAligns: ['left', 'right', 'right'],
  });
  const keptNote = kept && epochs.length > 1 ? ` (epoch ${kept.epoch})` : '';
  scores.push(
    [`train${keptNote}`, formatLoss(kept?.trainLoss), formatPercent(kept?.trainAccuracy)],
    [`validation${keptNote}`, formatLoss(kept?.valLoss), formatPercent(kept?.valAccuracy)],
    ['test', formatLoss(test?.loss), formatPercent(test?.accuracy)],
  );
  const mean = (f: (e: EpochRecord) => number) => (epochs.length ? epochs.reduce((a, e) => a + f(e), 0) / epochs.length : Number.NaN);
  const run = new Table({ style: { head: [], border: [] } });
  run.push(
    ['seconds per epoch', formatSeconds(mean((e) => e.seconds))],
    ['samples/s', formatCount(mean((e) => e.samplesPerSecond))],
    ['epochs run', String(epochs.length)],
    ['backend', formatBackend(info)],
    ['precision', record.precision.used === record.precision.requested ? formatPrecision(record.precision) : `${record.precision.used} (${record.precision.requested} not available here, see above)`],
    ['stop reason', record.stopMessage ? `${record.stopReason}: ${record.stopMessage}` : record.stopReason],
  );
  return `${withoutRowRules(scores.toString())}\n${withoutRowRules(run.toString(), { header: false })}`;
}
