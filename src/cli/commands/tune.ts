/**
 * `densetrain tune --space SPACE.json --trials N --out DIR`: a hyper-parameter search over a
 * space (grid or seeded random) with ASHA pruning on validation accuracy, trials in parallel
 * worker processes, and a leaderboard (terminal table, DIR/tune.json, DIR/tune.html). Every
 * training option is the base configuration; --epochs is the most epochs a trial may run.
 * A thin layer over tune() in src/experiments/tune.ts.
 */
import { resolve } from 'node:path';
import { STRATEGY_NAMES, type StrategyName } from '../../experiments/strategies.js';
import { SCHEDULER_NAMES, type SchedulerName } from '../../experiments/asha.js';
import type { TrialSummary, TuneEvent, TuneResult } from '../../experiments/tune.js';
import { CONFIG_KEYS, optionFlag, type ConfigKey, type ConfigSource } from '../../train/schema.js';
import { EXIT_FAILURE, EXIT_OK, EXIT_TERMINATED, ExitRequest, UsageError } from '../errors.js';
import { interruptExitCode, interruptHandler } from '../interrupt.js';
import { executorFor, parallelCount, positiveInt, QUEUE_OPTION_HELP } from '../parallel.js';
import { formatLoss, formatPercent, formatSeconds, formatSetting, plural } from '../../format.js';
import { type Io } from '../io.js';
import { createTrialBars } from '../progress.js';
import { formatSpread } from '../../train/spread.js';
import { loadData } from '../deps.js';
import type { CliContext, RegisterCommand } from '../context.js';
import { addTrainConfigOptions, resolveTrainOptions } from '../options.js';
import { defaultRunDir } from '../run-folder.js';
import { firstLine } from '../../first-line.js';

interface TuneCliOptions extends Record<string, unknown> {
  space?: string;
  trials?: string;
  strategy?: string;
  scheduler?: string;
  minEpochs?: string;
  reduction?: string;
  repeats?: string;
  parallel?: string;
  queue?: string;
  out?: string;
  resume?: string;
  top?: string;
  quiet?: boolean;
  verbose?: boolean;
}

export const registerTuneCommand: RegisterCommand = (program, context) => {
  const command = program
    .command('tune')
    .description('search a space of training options: ASHA prunes weak trials early, trials run in parallel; writes tune.json and tune.html');
  command
    .option('--space <file>', 'JSON file: option names mapped to a list of choices or a range {"min", "max", "log", "int", "steps"}')
    .option('--trials <n>', 'trials to run (random: required; grid: at most this many, default the whole grid)')
    .option('--strategy <name>', `how trials are chosen: ${STRATEGY_NAMES.join(', ')} (default random, seeded by --seed)`)
    .option('--scheduler <name>', `${SCHEDULER_NAMES.join(', ')} (default asha: prune trials at rungs of --min-epochs x --reduction^k epochs)`)
    .option('--min-epochs <n>', 'ASHA: epochs at the first rung (default 1)')
    .option('--reduction <n>', 'ASHA: reduction factor; the top 1/n of a rung continues (default 3)')
    .option('--repeats <n>', 'train each trial that ASHA lets finish with n seeds (seed, seed+1, ...); ranked by the mean (default 1)')
    .option('--parallel <n|auto>', 'trials at once, each in its own process with the threads split between them (default 1; auto: one per CPU)')
    .option('--queue <url>', QUEUE_OPTION_HELP);
  addTrainConfigOptions(command, context.defaults);
  command
    .option('--out <dir>', 'folder for tune.json, tune.html and trials/<id>/ (default: runs/<timestamp>)')
    .option('--resume <dir>', 'continue the tune in this folder: unfinished trials resume their checkpoints (settings come from its tune.json)')
    .option('--top <n>', 'leaderboard rows printed (default 10)')
    .option('--quiet', 'no progress bars: one line per trial-epoch')
    .option('--verbose', 'show each trial\'s config, and stack traces on errors')
    .addHelpText(
      'after',
      `
SPACE.json maps training options (camelCase, as in config files) to choices or ranges:
  {"layers": ["784,128,10", "784,256,128,10"], "activation": ["relu", "leaky_relu"],
   "lr": {"min": 0.001, "max": 0.3, "log": true}, "l2": {"min": 1e-5, "max": 1e-2, "log": true}}
Trials are ranked and pruned on the validation split only; the test accuracy of each trial's kept
weights is reported, never used to choose. Examples:
  densetrain tune --space space.json --trials 20 --epochs 9 --parallel auto --out runs/tune
  densetrain tune --resume runs/tune`,
    )
    .action(async (options: TuneCliOptions) => {
      const code = await tuneCommand(options, context);
      if (code !== EXIT_OK) throw new ExitRequest(code);
    });
};

function oneOfNames<T extends string>(raw: string | undefined, flag: string, names: readonly T[]): T | undefined {
  if (raw === undefined) return undefined;
  if (!(names as readonly string[]).includes(raw)) throw new UsageError(`${flag} must be one of ${names.join(', ')}; got ${JSON.stringify(raw)}`);
  return raw as T;
}

/** The options that only a new tune takes (with --resume, tune.json decides). */
const NEW_TUNE_ONLY = ['space', 'trials', 'strategy', 'scheduler', 'minEpochs', 'reduction', 'repeats', 'out', 'config'] as const;

type TuneModule = typeof import('../../experiments/tune.js');

/** The tune to run: a new one planned from the options, or the one --resume names (its tune.json decides). */
async function tuneToRun(options: TuneCliOptions, context: CliContext, experiments: TuneModule) {
  if (options.resume !== undefined) {
    const given = [...NEW_TUNE_ONLY.filter((k) => options[k] !== undefined).map((k) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`), ...CONFIG_KEYS.filter((k) => options[k] !== undefined).map(optionFlag)];
    if (given.length > 0) throw new UsageError(`--resume continues with the settings in its tune.json; leave out ${given.join(', ')}`);
    const outDir = options.resume;
    const saved = await experiments.readTuneFile(outDir);
    const trialCount = saved.trials.filter((t) => !['completed', 'pruned', 'diverged', 'failed'].includes(t.status)).length;
    return { outDir, settings: saved.settings, trialCount, baseSources: {} as Partial<Record<ConfigKey, ConfigSource>> };
  }
  if (options.space === undefined) throw new UsageError('tune needs --space SPACE.json (or --resume DIR to continue a tune)');
  const resolved = await resolveTrainOptions(options, context.defaults);
  const { readSpace } = await import('../../experiments/space.js');
  const space = await readSpace(options.space);
  const outDir = options.out ?? defaultRunDir();
  const trials = positiveInt(options.trials, '--trials');
  const planned = experiments.planTune(space, {
    outDir,
    base: resolved.config,
    baseSources: resolved.sources,
    spaceFile: options.space,
    strategy: oneOfNames<StrategyName>(options.strategy, '--strategy', STRATEGY_NAMES) ?? 'random',
    ...(trials !== undefined ? { trials } : {}),
    scheduler: oneOfNames<SchedulerName>(options.scheduler, '--scheduler', SCHEDULER_NAMES) ?? 'asha',
    minEpochs: positiveInt(options.minEpochs, '--min-epochs') ?? 1,
    reduction: positiveInt(options.reduction, '--reduction', 2) ?? 3,
    repeats: positiveInt(options.repeats, '--repeats') ?? 1,
  });
  return { outDir, settings: planned.settings, trialCount: planned.trials.length, baseSources: resolved.sources };
}

export async function tuneCommand(options: TuneCliOptions, context: CliContext): Promise<number> {
  const { io } = context;
  const experiments = await import('../../experiments/tune.js');
  const { outDir, settings, trialCount, baseSources } = await tuneToRun(options, context, experiments);
  const top = positiveInt(options.top, '--top') ?? 10;
  const base = settings.base;
  const parallel = parallelCount(options.parallel, trialCount);

  const dataset = await (await loadData()).loadDataset(base.data, { seed: base.seed });
  const { executor, describe } = await executorFor(parallel, base, dataset, undefined, options.queue !== undefined ? { url: options.queue, outDir, decisions: settings.scheduler === 'asha' } : undefined);
  io.out(`tune folder: ${outDir}`);
  io.out(`data: ${dataset.name}; trials ${describe}`);

  const progress = tuneProgress(io, Boolean(options.quiet), Boolean(options.verbose));
  const interrupt = interruptHandler(io, () => progress.stop());
  let result: TuneResult;
  try {
    result = await experiments.tune(
      settings.space,
      {
        outDir,
        base,
        baseSources,
        spaceFile: settings.spaceFile,
        strategy: settings.strategy,
        ...(settings.trials !== null ? { trials: settings.trials } : {}),
        scheduler: settings.scheduler,
        minEpochs: settings.minEpochs,
        reduction: settings.reduction,
        repeats: settings.repeats ?? 1,
        executor,
        dataset,
        resume: options.resume !== undefined,
      },
      { signal: interrupt.controller.signal, onTrial: (event) => progress.event(event) },
    );
  } finally {
    progress.stop();
    interrupt.dispose();
    await executor.close();
  }
  const code = await reportTune(io, result, outDir, top, experiments);
  if (!result.interrupted) return code;
  const interruptCode = interruptExitCode(interrupt.controller.signal);
  io.err(`densetrain: ${interruptCode === EXIT_TERMINATED ? 'terminated' : 'interrupted'}; continue with: densetrain tune --resume ${outDir}`);
  return interruptCode;
}

/** The leaderboard, the counts, tune.html and the failed trials; exit 1 when the page or a trial failed. */
async function reportTune(io: Io, result: TuneResult, outDir: string, top: number, experiments: TuneModule): Promise<number> {
  io.out(leaderboardTable(result, top));
  const pruned = result.trials.filter((t) => t.status === 'pruned').length;
  const failed = result.trials.filter((t) => t.status === 'failed');
  io.out(`${result.trials.length} trials: ${countBy(result.trials)}${result.rungs.length ? `; ASHA rungs at epochs ${result.rungs.join(', ')} pruned ${pruned}` : ''}`);
  let code = EXIT_OK;
  try {
    const { writeTuneReport } = await import('../../experiments/tune-page.js');
    const page = await writeTuneReport(outDir, await experiments.readTuneFile(outDir));
    io.out(`tune: ${resolve(page)}`);
  } catch (error) {
    io.err(`densetrain: could not write tune.html: ${firstLine(error)}`);
    code = EXIT_FAILURE;
  }
  io.out(`results: ${resolve(result.file)}`);
  for (const t of failed) io.err(`densetrain: trial ${t.id} failed: ${t.error ?? 'unknown error'}`);
  if (failed.length > 0) code = EXIT_FAILURE;
  return code;
}

function countBy(trials: readonly TrialSummary[]): string {
  const counts = new Map<string, number>();
  for (const t of trials) counts.set(t.status, (counts.get(t.status) ?? 0) + 1);
  return [...counts].map(([s, n]) => `${n} ${s}`).join(', ');
}

/** The top of the leaderboard: rank, trial, the searched settings, epochs, best val acc, test acc, seconds, status. */
export function leaderboardTable(result: Pick<TuneResult, 'leaderboard' | 'trials'>, top: number): string {
  const keys = [...new Set(result.trials.flatMap((t) => Object.keys(t.settings)))];
  // Imported lazily by the caller's module graph (cli-table3 is small).
  const rows = result.leaderboard.slice(0, top).map((t, i) => [
    String(i + 1),
    t.id,
    ...keys.map((k) => formatSetting(t.settings[k])),
    `${t.epochs}/${t.config.epochs}`,
    t.stats ? formatSpread(t.stats.keptValAccuracy, { percent: true }) : formatPercent(t.keptValAccuracy),
    formatPercent(t.bestValAccuracy),
    t.stats ? formatSpread(t.stats.testAccuracy, { percent: true }) : formatPercent(t.testAccuracy),
    formatSeconds(t.seconds),
    t.status,
  ]);
  const seeds = result.trials.some((t) => t.stats);
  const head = ['#', 'trial', ...keys, 'epochs', seeds ? 'val acc (mean ± std)' : 'val acc', 'best val acc', seeds ? 'test acc (mean ± std)' : 'test acc', 'time', 'status'];
  const widths = head.map((h, c) => Math.max(h.length, ...rows.map((r) => r[c]!.length)));
  const line = (cells: string[]) => cells.map((cell, c) => (c >= 2 + keys.length && c < head.length - 1 ? cell.padStart(widths[c]!) : cell.padEnd(widths[c]!))).join('  ').trimEnd();
  const shown = result.leaderboard.length > top ? ` (top ${top} of ${result.leaderboard.length})` : '';
  return [
    `leaderboard by the validation accuracy of each trial's kept weights (its epoch with the lowest validation loss)${shown}:`,
    line(head),
    ...rows.map(line),
    'val acc and test acc: the kept weights; best val acc: the highest of any epoch.',
  ].join('\n');
}

interface TuneProgress {
  event(e: TuneEvent): void;
  stop(): void;
}

/** One bar per running trial on a terminal; else one line per trial-epoch. Start and end lines either way. */
function tuneProgress(io: Io, quiet: boolean, verbose: boolean): TuneProgress {
  const bars = createTrialBars(io, io.tty && !quiet);
  const settingsText = (t: TrialSummary) => Object.entries(t.settings).map(([k, v]) => `${k}=${formatSetting(v)}`).join(' ');
  return {
    event(e) {
      const t = e.trial;
      if (e.type === 'start') {
        bars.log(`${t.id} ${t.epochs > 0 ? `resumes after epoch ${t.epochs}` : 'starts'}: ${settingsText(t)}`);
        if (verbose) bars.log(`${t.id} config: ${JSON.stringify(t.config)}`);
        bars.add(t.id, t.epochs + 1, t.config.epochs);
      } else if (e.type === 'repeat') {
        const r = e.entry;
        if (r.status === 'running') bars.log(`${t.id} seed ${r.seed} starts (repeat of a completed trial)`);
        else bars.log(`${t.id} seed ${r.seed} ${r.status} after ${r.epochs} epochs${r.error ? `: ${r.error}` : `, best val acc ${formatPercent(r.bestValAccuracy)}, test acc ${formatPercent(r.testAccuracy)}`}`);
      } else if (e.type === 'batch') {
        bars.batch(t.id, e.progress.epoch, e.progress.batch, e.progress.batches);
      } else if (e.type === 'epoch') {
        const r = e.record;
        const rung = e.rung ? `  rung ${e.rung.epoch}: ${e.rung.decision} (rank ${e.rung.rank} of ${e.rung.of}, top ${e.rung.keep} continue)` : '';
        bars.note(t.id, `val acc ${formatPercent(r.valAccuracy)}`);
        if (!bars.drawing || e.rung) {
          bars.log(`${t.id} epoch ${r.epoch}/${t.config.epochs}  val acc ${formatPercent(r.valAccuracy)}  val loss ${formatLoss(r.valLoss)}  ${formatSeconds(r.seconds)}${rung}`);
        }
      } else {
        bars.remove(t.id);
        const detail = t.status === 'failed' ? `: ${t.error ?? ''}` : `, best val acc ${formatPercent(t.bestValAccuracy)}, test acc ${formatPercent(t.testAccuracy)}`;
        bars.log(`${t.id} ${t.status} after ${plural(t.epochs, 'epoch')}${detail}`);
      }
    },
    stop: () => bars.stop(),
  };
}
