/**
 * Several runs for `compare` and `sweep`: every planned configuration, each trained `repeats`
 * times (seeds seed, seed+1, ...), as trials on an executor (this process, or --parallel N
 * worker processes). Every plan is checked first (shared settings, folders, data shape); the
 * dataset is loaded once. A run that diverges or fails does not stop the series; Ctrl-C or
 * SIGTERM stops the running trials after their batch (checkpoints kept) and the series.
 *
 * Folders: <outDir>/<plan.folder> for one repeat (as before repeats existed), else
 * <outDir>/<plan.folder>/seed-<seed> per repeat.
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import type { Dataset } from '../data/types.js';
import { CONTINUE, type Executor, type TrialOutcome } from '../experiments/executor.js';
import { formatBackendInfo, type BackendInfo } from '../kernels/index.js';
import type { ComparedRun } from '../report/compare.js';
import { DEFAULT_CONFIG } from '../train/defaults.js';
import { ConfigError, describeKey, parseConfigPart, resolveConfig, type ConfigKey, type ResolvedConfig } from '../train/schema.js';
import type { RunRecord, StopReason, TrainConfig } from '../train/types.js';
import { loadData } from './deps.js';
import { EXIT_FAILURE, EXIT_OK, UsageError } from './errors.js';
import { interruptExitCode, interruptHandler } from './interrupt.js';
import { checkDataFor, dataLine, selectBackend } from './run-checks.js';
import { firstLine } from '../first-line.js';
import { formatLoss, formatPercent, formatSeconds, plural } from '../format.js';
import { type Io } from './io.js';
import { executorFor, parallelCount } from './parallel.js';
import { createTrainProgress, createTrialBars, formatEpochLine, type TrainProgress, type TrialBars } from './progress.js';
import { checkRunDir } from './run-folder.js';
import { INCOMPLETE_FILE, writeJsonAtomic } from '../train/run-folder.js';

/** One configuration to train in a series. */
export interface RunPlan {
  /** Shown in tables, legends and progress ('relu', 'lr=0.01', 'a.json'). */
  label: string;
  /** Subfolder of the series folder (a plain name). */
  folder: string;
  resolved: ResolvedConfig;
  /** What names this plan's settings in messages ('--config a.json', '--activation relu'). */
  origin: string;
}

/** How one planned run ended. 'failed': an error stopped it; 'not run': the series was interrupted first. */
export type SeriesStatus = StopReason | 'failed' | 'not run';

/** One training of a plan with one seed. */
export interface RepeatRun {
  seed: number;
  /** Its run folder, and the same relative to the series folder. */
  outDir: string;
  folder: string;
  status: SeriesStatus;
  record: RunRecord | null;
  reportPath?: string | undefined;
  error?: string | undefined;
}

export interface SeriesRun {
  plan: RunPlan;
  /** The plan's folder (its run folder with one repeat; the parent of seed-<n>/ with several). */
  outDir: string;
  /** The plan's status: its one run's, or with repeats the worst of them (failed, interrupted, not run, diverged, early-stopping, completed). */
  status: SeriesStatus;
  /** The first repeat's record and report (curves and per-class charts show it). */
  record: RunRecord | null;
  reportPath?: string | undefined;
  error?: string | undefined;
  repeats: RepeatRun[];
}

export interface SeriesResult {
  runs: SeriesRun[];
  interrupted: boolean;
  /** 130 or 143 when interrupted. */
  interruptCode: number;
  /** Some run failed or its report could not be written. */
  failed: boolean;
  dataset: Dataset;
  info: BackendInfo;
  repeats: number;
}

/** Settings every run of a series must share: the same data, split, seed and kernels. */
const SHARED_KEYS: readonly ConfigKey[] = ['data', 'seed', 'valSplit', 'backend', 'threads'];

export interface SeriesOptions {
  io: Io;
  plans: RunPlan[];
  /** The series folder. */
  outDir: string;
  quiet?: boolean | undefined;
  verbose?: boolean | undefined;
  /** Seeds per plan (default 1). */
  repeats?: number;
  /** --parallel as given (a count or 'auto'; default 1). */
  parallel?: string | undefined;
  /** --queue as given: the runs go to `densetrain worker` processes through Redis. */
  queue?: string | undefined;
  /** Checked before anything is trained (e.g. the series' own files in outDir). */
  checkOutDir?: (outDir: string) => Promise<void>;
  /** What the command needs to finish its page after a resume (saved in series.json). */
  command: { name: 'compare' | 'sweep'; meta: Record<string, unknown> };
  /** Continue the series in outDir: finished runs are kept, unfinished ones resume their checkpoints. */
  resume?: boolean;
}

export const SERIES_FILE = 'series.json';

/** <outDir>/series.json: the plans of a series, so that `--resume` can continue it. */
export interface SeriesFile {
  version: 1;
  command: 'compare' | 'sweep';
  repeats: number;
  meta: Record<string, unknown>;
  plans: { label: string; folder: string; origin: string; config: TrainConfig }[];
}

/** Reads a series folder's series.json for `compare|sweep --resume DIR`; the plans come back checked. */
export async function readSeriesFile(dir: string, command: 'compare' | 'sweep'): Promise<{ file: SeriesFile; plans: RunPlan[] }> {
  const path = join(dir, SERIES_FILE);
  let file: SeriesFile;
  try {
    file = JSON.parse(await readFile(path, 'utf8')) as SeriesFile;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new UsageError(`--resume ${dir}: ${code === 'ENOENT' ? `no ${SERIES_FILE} there (not a ${command} folder)` : `${path}: ${(error as Error).message}`}`);
  }
  if (file.version !== 1 || file.command !== command || !Array.isArray(file.plans)) {
    throw new UsageError(`--resume ${dir}: ${path} is not a densetrain ${command} (it is ${JSON.stringify(file.command ?? null)})`);
  }
  const source = { kind: 'file', path } as const;
  const plans = file.plans.map((p) => ({
    label: p.label,
    folder: p.folder,
    origin: p.origin,
    resolved: resolveConfig(DEFAULT_CONFIG as TrainConfig, [{ values: parseConfigPart(p.config, source), source }]),
  }));
  return { file, plans };
}

/** A finished run in a folder (metrics.json and no INCOMPLETE): its record, for a resumed series. */
async function finishedRun(dir: string): Promise<RunRecord | null> {
  if (existsSync(join(dir, INCOMPLETE_FILE)) || !existsSync(join(dir, 'metrics.json'))) return null;
  return JSON.parse(await readFile(join(dir, 'metrics.json'), 'utf8')) as RunRecord;
}

const STATUS_ORDER: SeriesStatus[] = ['failed', 'interrupted', 'not run', 'diverged', 'early-stopping', 'completed'];

function planStatus(repeats: RepeatRun[]): SeriesStatus {
  return STATUS_ORDER.find((s) => repeats.some((r) => r.status === s)) ?? 'not run';
}

function repeatStatus(outcome: TrialOutcome): SeriesStatus {
  if (outcome.status === 'failed') return 'failed';
  if (outcome.status === 'interrupted') return 'interrupted';
  return outcome.record?.stopReason ?? 'failed';
}

function checkPlans(plans: RunPlan[], outDir: string): void {
  const first = plans[0]!;
  for (const plan of plans.slice(1)) {
    for (const key of SHARED_KEYS) {
      const a = first.resolved.config[key];
      const b = plan.resolved.config[key];
      if (JSON.stringify(a) !== JSON.stringify(b)) {
        throw new UsageError(
          `every run must use the same data, split, seed and kernels, but ${describeKey(key, plan.resolved.sources[key])} is ${JSON.stringify(b)} ` +
            `for ${plan.origin} and ${JSON.stringify(a)} for ${first.origin}`,
        );
      }
    }
  }
  const folders = new Set<string>();
  for (const plan of plans) {
    if (folders.has(plan.folder)) throw new UsageError(`two runs would share the folder ${join(outDir, plan.folder)} (${plan.origin})`);
    folders.add(plan.folder);
  }
}

/** The runs of a series: each plan, and its seeds with their folders (not run yet). */
function seriesRuns(plans: RunPlan[], outDir: string, repeats: number): SeriesRun[] {
  const runs: SeriesRun[] = plans.map((plan) => {
    const seeds = Array.from({ length: repeats }, (_, r) => plan.resolved.config.seed + r);
    return {
      plan,
      outDir: join(outDir, plan.folder),
      status: 'not run',
      record: null,
      repeats: seeds.map((seed) => {
        const folder = repeats === 1 ? plan.folder : join(plan.folder, `seed-${seed}`);
        return { seed, folder, outDir: join(outDir, folder), status: 'not run' as SeriesStatus, record: null };
      }),
    };
  });
  for (const r of runs) if (!Number.isSafeInteger(r.repeats.at(-1)!.seed)) throw new UsageError(`--repeats ${repeats} takes the seed past the safe integers`);
  return runs;
}

/** A new series: every folder free. Resuming: finished runs keep their results (the rest resume or start). */
async function checkSeriesFolders(runs: SeriesRun[], options: SeriesOptions): Promise<void> {
  const { outDir } = options;
  if (!options.resume) {
    await checkRunDir(outDir, '--out', false);
    await options.checkOutDir?.(outDir);
    for (const run of runs) for (const rep of run.repeats) await checkRunDir(rep.outDir, '--out', false);
    return;
  }
  for (const run of runs) {
    for (const rep of run.repeats) {
      // Refused at once if another process trains there; with --queue a worker may (that is resuming).
      await checkRunDir(rep.outDir, '--resume', true, options.queue !== undefined);
      const record = await finishedRun(rep.outDir);
      if (record) {
        rep.record = record;
        rep.status = record.stopReason;
        if (existsSync(join(rep.outDir, 'report.html'))) rep.reportPath = join(rep.outDir, 'report.html');
      }
    }
  }
}

/** Each plan checked against the loaded data (its training-split size); with several plans, problems name the plan. */
function trainCountsFor(plans: RunPlan[], dataset: Dataset): number[] {
  return plans.map((plan) => {
    try {
      return checkDataFor(dataset, plan.resolved);
    } catch (error) {
      if (error instanceof ConfigError && plans.length > 1) throw new ConfigError(error.problems.map((p) => `${plan.origin}: ${p}`));
      throw error;
    }
  });
}

/** series.json: what --resume continues (written once everything is checked). */
async function writeSeriesFile(options: SeriesOptions, repeats: number): Promise<void> {
  const { outDir, plans } = options;
  await mkdir(outDir, { recursive: true });
  const file: SeriesFile = {
    version: 1,
    command: options.command.name,
    repeats,
    meta: options.command.meta,
    plans: plans.map((p) => ({ label: p.label, folder: p.folder, origin: p.origin, config: p.resolved.config })),
  };
  await writeJsonAtomic(join(outDir, SERIES_FILE), file);
}

/** One trial of a series: what its run needs, and where its progress goes. */
interface TrialContext {
  io: Io;
  options: SeriesOptions;
  executor: Executor;
  trialBars: TrialBars;
  /** Several trials at once: a line (or a bar) per trial instead of the one progress display. */
  lines: boolean;
  total: number;
  repeats: number;
  trainCounts: number[];
  handles: Set<{ stop(): void }>;
  /** The progress display of the one running trial (lines false), for Ctrl-C to stop. */
  showing(progress: TrainProgress): void;
}

/** Runs one trial on the executor with its progress; false when it failed. */
async function runSeriesTrial(ctx: TrialContext, { run, rep }: { run: SeriesRun; rep: RepeatRun }, index: number): Promise<boolean> {
  const { io, options, trialBars, lines } = ctx;
  const { plan } = run;
  const name = ctx.repeats > 1 ? `${plan.label} seed ${rep.seed}` : plan.label;
  const trainCount = ctx.trainCounts[options.plans.indexOf(plan)]!;
  const config: TrainConfig = { ...plan.resolved.config, seed: rep.seed };
  const head = `[${index + 1}/${ctx.total}] ${name}: ${rep.outDir}`;
  if (trialBars.drawing) trialBars.log(head);
  else io.out(head);
  if (options.verbose) io.out(`config: ${JSON.stringify(config)}`);
  const bars = createTrainProgress(io, { bars: io.tty && !options.quiet && !lines, epochNumber: (r) => r.epoch });
  if (!lines) ctx.showing(bars);
  else trialBars.add(name, 1, config.epochs);
  const handle = ctx.executor.start(
    { id: name, config, runDir: rep.outDir, resume: Boolean(options.resume) },
    {
      batch: (p) => {
        if (lines) trialBars.batch(name, p.epoch, p.batch, p.batches);
        else bars.batch(p.epoch, p.batch, p.batches, p.loss, Math.min(config.batchSize, trainCount - (p.batch - 1) * config.batchSize));
      },
      epoch: (record) => {
        if (!lines) bars.epoch(record, config.epochs);
        else if (trialBars.drawing) trialBars.note(name, `val acc ${formatPercent(record.valAccuracy)}`);
        else trialBars.log(`${name}: ${formatEpochLine(record, config.epochs, record.epoch)}`);
        return CONTINUE;
      },
    },
  );
  ctx.handles.add(handle);
  const outcome = await handle.done;
  ctx.handles.delete(handle);
  bars.stop();
  trialBars.remove(name);
  rep.record = outcome.record;
  rep.reportPath = outcome.report;
  rep.status = repeatStatus(outcome);
  if (outcome.error !== undefined) {
    rep.error = outcome.error;
    io.err(`densetrain: ${name} failed: ${outcome.error}`);
  }
  const line = `    ${lines ? `${name}: ` : ''}${runLine(rep)}`;
  if (trialBars.drawing) trialBars.log(line);
  else io.out(line);
  return outcome.error === undefined;
}

export async function runSeries(options: SeriesOptions): Promise<SeriesResult> {
  const { io, plans, outDir } = options;
  const repeats = options.repeats ?? 1;
  const first = plans[0];
  if (!first) throw new UsageError('nothing to train');
  checkPlans(plans, outDir);
  const runs = seriesRuns(plans, outDir, repeats);
  await checkSeriesFolders(runs, options);
  const trials = runs.flatMap((run) => run.repeats.filter((rep) => rep.status === 'not run').map((rep) => ({ run, rep })));
  const parallel = parallelCount(options.parallel, trials.length);

  const { kernels, info } = selectBackend(first.resolved);
  io.out(`backend: ${formatBackendInfo(info)}`);
  const { config: firstConfig } = first.resolved;
  const dataset = await (await loadData()).loadDataset(firstConfig.data, { seed: firstConfig.seed });
  const { executor, describe } = await executorFor(
    parallel,
    firstConfig,
    dataset,
    kernels,
    options.queue !== undefined ? { url: options.queue, outDir, decisions: false } : undefined,
  );
  let progress: TrainProgress | undefined;
  let stopBars = (): void => {};
  const interrupt = interruptHandler(io, () => {
    progress?.stop();
    stopBars();
  });
  const stopSignal = interrupt.controller.signal;
  let failed = false;
  try {
    const trainCounts = trainCountsFor(plans, dataset);
    io.out(dataLine(dataset, trainCounts[0]!));
    // Everything checked: from here on the folder is a series that --resume can continue.
    if (!options.resume) await writeSeriesFile(options, repeats);
    io.out(`series folder: ${outDir}`);
    if (repeats > 1 || parallel > 1 || options.queue !== undefined) io.out(`runs: ${trials.length}${repeats > 1 ? ` (${plans.length} configurations x ${repeats} seeds)` : ''}, ${describe}`);

    // One bar for the one running trial on a terminal; with several at once, a bar per trial (terminal) or one line per trial-epoch.
    const lines = parallel > 1;
    const trialBars = createTrialBars(io, lines && io.tty && !options.quiet);
    stopBars = () => trialBars.stop();
    const handles = new Set<{ stop(): void }>();
    stopSignal.addEventListener('abort', () => handles.forEach((h) => h.stop()));
    const ctx: TrialContext = { io, options, executor, trialBars, lines, total: trials.length, repeats, trainCounts, handles, showing: (p) => (progress = p) };
    const active = new Set<Promise<void>>();
    for (const [i, trial] of trials.entries()) {
      while (active.size >= executor.slots) await Promise.race(active);
      if (stopSignal.aborted) break;
      const p: Promise<void> = runSeriesTrial(ctx, trial, i)
        .then((ok) => void (failed ||= !ok))
        .finally(() => active.delete(p));
      active.add(p);
    }
    await Promise.all(active);
  } finally {
    progress?.stop();
    stopBars();
    interrupt.dispose();
    await executor.close();
  }
  for (const run of runs) {
    run.status = planStatus(run.repeats);
    const firstRep = run.repeats[0]!;
    run.record = firstRep.record;
    run.reportPath = firstRep.reportPath;
    run.error = run.repeats.find((r) => r.error !== undefined)?.error;
  }
  const interrupted = stopSignal.aborted && runs.some((r) => r.repeats.some((rep) => rep.status === 'interrupted' || rep.status === 'not run'));
  return { runs, interrupted, interruptCode: interruptExitCode(stopSignal), failed, dataset, info, repeats };
}

/** "test 91.20% (loss 0.3121), 2 epochs, 3.10 s, completed" */
export function runLine(run: Pick<RepeatRun, 'record' | 'status' | 'error'>): string {
  const r = run.record;
  if (!r) return run.status === 'failed' ? `failed: ${run.error ?? ''}` : run.status;
  // The kept model's test result (none when no epoch finished).
  const test = r.test ? `test ${formatPercent(r.test.accuracy)} (loss ${formatLoss(r.test.loss)})` : 'no test evaluation';
  const status = r.stopReason === 'diverged' ? `diverged: ${r.stopMessage ?? 'the loss is not finite'}` : run.status === 'failed' ? `failed: ${run.error ?? ''}` : r.stopReason;
  return `${test}, ${plural(r.epochs.length, 'epoch')}, ${formatSeconds(r.seconds)}, ${status}`;
}

/** The exit code of a series: 130/143 interrupted, 1 a run failed (diverging is a result, not a failure), else 0. */
export function seriesExitCode(result: Pick<SeriesResult, 'interrupted' | 'failed' | 'interruptCode'>): number {
  if (result.interrupted) return result.interruptCode;
  return result.failed ? EXIT_FAILURE : EXIT_OK;
}

/** The command-line flags compare and sweep hand to runSeries as they are. */
export function seriesFlags(options: { quiet?: boolean; verbose?: boolean; parallel?: string; queue?: string; resume?: string }): Pick<SeriesOptions, 'quiet' | 'verbose' | 'parallel' | 'queue' | 'resume'> {
  return { quiet: options.quiet, verbose: options.verbose, parallel: options.parallel, queue: options.queue, resume: options.resume !== undefined };
}

/**
 * The end of compare and sweep: writes the series' page and says where, then which runs
 * diverged and how to continue an interrupted series. Returns the exit code.
 */
export async function finishSeriesPage(
  io: Io,
  result: Pick<SeriesResult, 'interrupted' | 'failed' | 'interruptCode'>,
  page: { command: 'compare' | 'sweep'; noun: string; outDir: string; diverged: readonly string[]; write: () => Promise<string> },
): Promise<number> {
  let code = seriesExitCode(result);
  const file = `${page.command}.html`;
  try {
    io.out(`${page.noun}: ${resolve(await page.write())}`);
  } catch (error) {
    io.err(`densetrain: could not write ${file}: ${firstLine(error)}`);
    if (code === EXIT_OK) code = EXIT_FAILURE;
  }
  if (page.diverged.length) io.err(`densetrain: ${page.diverged.join(', ')} diverged (kept in the ${page.noun})`);
  if (result.interrupted) io.err(`densetrain: interrupted; the ${page.noun} shows the runs so far; continue with: densetrain ${page.command} --resume ${page.outDir}`);
  return code;
}

/** A folder name from a label: letters, digits, '.', '_', '-' kept, the rest '-'. */
export function folderName(label: string): string {
  const name = label.replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^-+|-+$/g, '').replace(/^\.+/, '');
  return name === '' ? 'run' : name.slice(0, 80);
}

/** A report path relative to the series folder, with '/' separators (an href). */
function href(seriesDir: string, reportPath: string | undefined): string | null {
  return reportPath ? relative(seriesDir, reportPath).split(sep).join('/') : null;
}

/** A series run as the comparison reports see it (every seed's run with --repeats). */
export function comparedRun(run: SeriesRun, seriesDir: string): ComparedRun {
  return {
    label: run.plan.label,
    status: run.status,
    record: run.record,
    reportHref: href(seriesDir, run.reportPath),
    error: run.error,
    repeats: run.repeats.map((r) => ({ seed: r.seed, status: r.status, record: r.record, reportHref: href(seriesDir, r.reportPath) })),
  };
}

/** The compare.json / sweep.json entry of a run: its first seed's summary, and with every seed, the statistics. */
export function runJson(run: SeriesRun, compared: ComparedRun, report: typeof import('../report/compare.js')): Record<string, unknown> {
  return {
    ...report.summarizeRun(compared),
    folder: run.plan.folder,
    report: compared.reportHref,
    bestEpoch: run.record?.bestEpoch ?? null,
    config: run.plan.resolved.config,
    stats: report.repeatStats(compared.repeats ?? []),
    repeats: run.repeats.map((r, i) => ({
      seed: r.seed,
      folder: r.folder.split(sep).join('/'),
      ...report.summarizeRun({ label: `${run.plan.label} seed ${r.seed}`, status: r.status, record: r.record, reportHref: compared.repeats![i]!.reportHref, error: r.error }),
      preluSlopes: r.record?.epochs.at(-1)?.preluSlopes ?? null,
      report: compared.repeats![i]!.reportHref,
    })),
  };
}

/** With --resume, the other options come from series.json: refuse any given (naming them). */
export function refuseWithResume(options: Record<string, unknown>, names: readonly string[]): void {
  const given = names.filter((k) => options[k] !== undefined).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (given.length > 0) throw new UsageError(`--resume continues with the settings in its ${SERIES_FILE}; leave out ${given.join(', ')}`);
}
