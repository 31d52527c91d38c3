/**
 * tune(): a hyper-parameter search. Trials come from a space (grid or seeded random), each a
 * complete training config with its own run folder under <outDir>/trials/<id>; an executor
 * runs them (in this process, or a pool of worker processes); ASHA prunes the hopeless ones at
 * its rungs from validation accuracy only. <outDir>/tune.json is rewritten after every epoch
 * of every trial: it holds the settings, every trial and the scheduler's decisions, so a
 * stopped tune resumes (`resume: true`): unfinished trials continue their checkpoints, the
 * remaining ones start, and decisions already made stand.
 *
 * Ranking: by the validation accuracy of each trial's kept weights (the epoch with the lowest
 * validation loss, as train() keeps), then lower validation loss, then trial id. The test
 * accuracy is that of the same kept weights; it is reported, never used to choose. (Ranking by
 * the highest validation accuracy of any epoch instead would put first a trial whose kept model
 * is an early epoch's, weaker on validation than its rank says.)
 */
import { existsSync } from 'node:fs';
import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { writeJsonAtomic } from '../train/run-folder.js';
import { heldOutCount } from '../data/split.js';
import type { Dataset } from '../data/types.js';
import { DEFAULT_CONFIG } from '../train/defaults.js';
import { checkConfigAgainstData, ConfigError, parseConfigPart, resolveConfig, type ConfigKey, type ConfigSource } from '../train/schema.js';
import type { EpochRecord, RunRecord, TrainConfig } from '../train/types.js';
import { AshaScheduler, rungEpochs, type RungEntry, type SchedulerName } from './asha.js';
import { CONTINUE, type EpochDecision, type Executor, type TrialHooks, type TrialProgress, type TrialSpec, type TrialStatus } from './executor.js';
import { InProcessExecutor } from './in-process.js';
import { parseSpace, type Space } from './space.js';
import { spread, spreadPerIndex, type Spread } from '../train/spread.js';
import { gridTrials, randomTrials, type StrategyName } from './strategies.js';
import { formatPercent } from '../format.js';

export const TUNE_FILE = 'tune.json';
export { SCHEDULER_NAMES, type SchedulerName } from './asha.js';

/** Everything that defines a tune (saved in tune.json; a resume reads it back). */
export interface TuneSettings {
  /** The space file as given (for messages) and its contents. */
  spaceFile: string;
  space: unknown;
  base: TrainConfig;
  strategy: StrategyName;
  /** Trials asked for (null: the whole grid). */
  trials: number | null;
  scheduler: SchedulerName;
  minEpochs: number;
  reduction: number;
  /** Seeds per trial that ASHA lets finish (seed, seed+1, ...); 1 = none repeated. */
  repeats: number;
}

export type TrialState = 'pending' | 'running' | TrialStatus;

/** How one run of a trial (one seed) went, as tune.json records it. */
export interface RunResult {
  status: TrialState;
  /** Epochs finished. */
  epochs: number;
  /** The highest validation accuracy of any epoch. */
  bestValAccuracy: number | null;
  /** The lowest validation loss: its epoch's weights are the ones the run keeps. */
  bestValLoss: number | null;
  /**
   * Validation accuracy of the kept weights (the epoch with the lowest validation loss): the
   * model whose test accuracy is reported. The leaderboard ranks by it, so the 1st trial is the
   * one whose kept model is best on the validation split.
   */
  keptValAccuracy: number | null;
  /** The kept weights (lowest validation loss) on the test set: reported, never used to choose. */
  testAccuracy: number | null;
  testLoss: number | null;
  /** Learned PReLU slopes per hidden layer at the last epoch (prelu only). */
  preluSlopes: number[] | null;
  seconds: number | null;
  /** The run folder, relative to the tune folder. */
  runDir: string;
  /** report.html relative to the tune folder, once written. */
  report: string | null;
  error?: string;
}

/** One trial in tune.json: its first seed's run (the one ASHA judges), the searched settings, the decisions. */
export interface TrialSummary extends RunResult {
  id: string;
  /** The values the space chose. */
  settings: Record<string, unknown>;
  config: TrainConfig;
  /** ASHA decisions at this trial's rungs; the last says where a pruned trial stopped. */
  rungs: RungEntry[];
  /**
   * With repeats: every seed's run, the first being the trial's own (the one ASHA judges);
   * the other seeds run once the first has completed (a pruned trial is not repeated).
   */
  repeats?: RepeatEntry[];
  /** With repeats: mean, std, min, max, n over the seeds that completed (diverged ones counted apart). */
  stats?: TrialStats;
}

export interface RepeatEntry extends RunResult {
  seed: number;
}

export interface TrialStats {
  repeats: number;
  diverged: number;
  testAccuracy: Spread;
  bestValAccuracy: Spread;
  keptValAccuracy: Spread;
  testLoss: Spread;
  preluSlopes: Spread[] | null;
}

export interface TuneFile {
  version: 1;
  settings: TuneSettings;
  /** ASHA's rung epochs (empty without ASHA). */
  rungs: number[];
  interrupted: boolean;
  trials: TrialSummary[];
  /** Trial ids, best first. */
  leaderboard: string[];
  /** Every score ASHA recorded, in arrival order (restored on resume). */
  asha: RungEntry[];
}

export type TuneEvent =
  | { type: 'start'; trial: TrialSummary }
  | { type: 'batch'; trial: TrialSummary; progress: TrialProgress }
  | { type: 'epoch'; trial: TrialSummary; record: EpochRecord; rung: RungEntry | null }
  | { type: 'end'; trial: TrialSummary }
  /** Another seed of a completed trial starts (status 'running') or ends. */
  | { type: 'repeat'; trial: TrialSummary; entry: RepeatEntry };

export interface TuneOptions {
  /** The tune folder: tune.json and trials/<id>/. */
  outDir: string;
  /** Base configuration (every option the space does not choose). Default: DEFAULT_CONFIG. */
  base?: Partial<TrainConfig>;
  /** Where each base value came from, for messages (default: as if given as flags). */
  baseSources?: Partial<Record<ConfigKey, ConfigSource>>;
  /** The space's file name in messages (default 'space'). */
  spaceFile?: string;
  strategy?: StrategyName;
  /** How many trials (required for random; grid: at most this many, default all). */
  trials?: number;
  scheduler?: SchedulerName;
  /** ASHA: epochs at the first rung (default 1). */
  minEpochs?: number;
  /** ASHA: reduction factor (default 3). */
  reduction?: number;
  /** Seeds for each trial that completes (default 1: no repeats). */
  repeats?: number;
  /** Runs the trials (default: in this process, one at a time). */
  executor?: Executor;
  /** Continue the tune in outDir (its tune.json decides everything else). */
  resume?: boolean;
  /** The dataset, when the caller has loaded it (checks; shared by in-process trials). */
  dataset?: Dataset;
}

export interface TuneHooks {
  onTrial?: (event: TuneEvent) => void;
  /** Aborting stops every running trial after its batch (checkpointed); tune.json says where to resume. */
  signal?: AbortSignal;
}

export interface TuneResult {
  /** Trials with a validation score, best first. */
  leaderboard: TrialSummary[];
  trials: TrialSummary[];
  /** Stopped by the signal: some trials are unfinished (resume with `resume: true`). */
  interrupted: boolean;
  file: string;
  settings: TuneSettings;
  rungs: number[];
}

const FINAL: ReadonlySet<TrialState> = new Set(['completed', 'pruned', 'diverged', 'failed']);

/**
 * What a trial is ranked by: the validation accuracy of its kept weights (with repeats, the mean
 * over its completed seeds). Runs from before this field fall back to the best validation accuracy.
 */
export function trialScore(t: TrialSummary): { acc: number | null; loss: number | null } {
  if (t.stats && (t.stats.keptValAccuracy?.mean ?? null) !== null) {
    const losses = (t.repeats ?? []).filter((r) => r.status === 'completed').map((r) => r.bestValLoss);
    return { acc: t.stats.keptValAccuracy.mean, loss: spread(losses).mean };
  }
  return { acc: t.keptValAccuracy ?? t.bestValAccuracy, loss: t.bestValLoss };
}

/** Best first: higher validation accuracy of the kept weights (mean over seeds with repeats), then lower validation loss, then id. */
export function rankTrials(trials: readonly TrialSummary[]): TrialSummary[] {
  return trials
    .map((t) => ({ t, score: trialScore(t) }))
    .filter(({ score }) => score.acc !== null)
    .sort(
      (a, b) =>
        b.score.acc! - a.score.acc! ||
        (a.score.loss ?? Infinity) - (b.score.loss ?? Infinity) ||
        (a.t.id < b.t.id ? -1 : a.t.id > b.t.id ? 1 : 0),
    )
    .map(({ t }) => t);
}

function statsOf(repeats: readonly RepeatEntry[]): TrialStats {
  const done = repeats.filter((r) => r.status === 'completed');
  const slopes = done.map((r) => r.preluSlopes).filter((v): v is number[] => v !== null);
  return {
    repeats: repeats.length,
    diverged: repeats.filter((r) => r.status === 'diverged').length,
    testAccuracy: spread(done.map((r) => r.testAccuracy)),
    bestValAccuracy: spread(done.map((r) => r.bestValAccuracy)),
    keptValAccuracy: spread(done.map((r) => r.keptValAccuracy)),
    testLoss: spread(done.map((r) => r.testLoss)),
    preluSlopes: slopes.length ? spreadPerIndex(slopes) : null,
  };
}

function trialIds(n: number): string[] {
  const width = Math.max(3, String(n).length);
  return Array.from({ length: n }, (_, i) => `t${String(i + 1).padStart(width, '0')}`);
}

function scoresOf(epochs: readonly EpochRecord[]): { acc: number | null; loss: number | null } {
  const accs = epochs.map((e) => e.valAccuracy).filter((v): v is number => v !== null && Number.isFinite(v));
  const losses = epochs.map((e) => e.valLoss).filter((v): v is number => v !== null && Number.isFinite(v));
  return { acc: accs.length ? Math.max(...accs) : null, loss: losses.length ? Math.min(...losses) : null };
}

/** The settings and trials of a new tune, every trial checked (a ConfigError names the space file and key). */
export function planTune(space: Space | unknown, options: TuneOptions): { settings: TuneSettings; trials: TrialSummary[] } {
  const spaceFile = options.spaceFile ?? 'space';
  const raw = isSpace(space) ? spaceToJson(space) : space;
  const parsed = isSpace(space) ? space : parseSpace(space, spaceFile);
  const sources: Partial<Record<ConfigKey, ConfigSource>> = options.baseSources ?? {};
  const given = parseConfigPart(options.base ?? {}, { kind: 'cli' });
  const base = resolveConfig(DEFAULT_CONFIG as TrainConfig, [{ values: given, source: { kind: 'cli' } }]).config;
  const baseName = (key: ConfigKey) => (sources[key]?.kind === 'file' ? `${(sources[key] as { path: string }).path}: ${JSON.stringify(key)}` : `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`);
  if (base.valSplit <= 0) {
    throw new ConfigError([`${baseName('valSplit')} is 0: tune ranks and prunes trials on the validation split only, so it needs one (e.g. --val-split 0.1)`]);
  }
  const strategy = options.strategy ?? 'random';
  const scheduler = options.scheduler ?? 'asha';
  const minEpochs = options.minEpochs ?? 1;
  const reduction = options.reduction ?? 3;
  if (options.trials !== undefined && (!Number.isInteger(options.trials) || options.trials < 1)) {
    throw new ConfigError([`--trials must be an integer >= 1, got ${options.trials}`]);
  }
  const repeats = options.repeats ?? 1;
  if (!Number.isInteger(repeats) || repeats < 1) throw new ConfigError([`--repeats must be an integer >= 1, got ${repeats}`]);
  if (!Number.isInteger(minEpochs) || minEpochs < 1) throw new ConfigError([`--min-epochs must be an integer >= 1, got ${minEpochs}`]);
  if (!Number.isInteger(reduction) || reduction < 2) throw new ConfigError([`--reduction must be an integer >= 2, got ${reduction}`]);
  let chosen;
  if (strategy === 'grid') chosen = gridTrials(parsed, spaceFile, options.trials ?? Infinity);
  else {
    if (options.trials === undefined) throw new ConfigError(['--trials is needed with --strategy random (how many configurations to sample)']);
    chosen = randomTrials(parsed, options.trials, base.seed);
  }
  const ids = trialIds(chosen.length);
  const trials = chosen.map((values, i): TrialSummary => {
    let config: TrainConfig;
    try {
      config = resolveConfig(base, [{ values, source: { kind: 'file', path: spaceFile } }]).config;
    } catch (error) {
      if (error instanceof ConfigError) throw new ConfigError(error.problems.map((p) => `trial ${ids[i]}: ${p}`));
      throw error;
    }
    return {
      id: ids[i]!,
      settings: values as Record<string, unknown>,
      config,
      ...EMPTY_ENTRY,
      runDir: repeats > 1 ? join('trials', ids[i]!, `seed-${config.seed}`) : join('trials', ids[i]!),
      rungs: [],
    };
  });
  const settings: TuneSettings = { spaceFile, space: raw, base, strategy, trials: options.trials ?? null, scheduler, minEpochs, reduction, repeats };
  if (scheduler === 'asha') {
    const maxEpochs = Math.max(...trials.map((t) => t.config.epochs));
    if (rungEpochs({ minEpochs, reduction, maxEpochs }).length === 0) {
      throw new ConfigError([`--min-epochs ${minEpochs} leaves ASHA no rung below ${maxEpochs} epochs (lower --min-epochs, raise --epochs, or use --scheduler none)`]);
    }
  }
  return { settings, trials };
}

function isSpace(value: unknown): value is Space {
  return typeof value === 'object' && value !== null && Array.isArray((value as Space).params);
}

/** A parsed space back to its file form (tune.json keeps the file form). */
function spaceToJson(space: Space): Record<string, unknown> {
  return Object.fromEntries(
    space.params.map((p) => [
      p.key,
      p.kind === 'choice' ? p.values : { min: p.min, max: p.max, log: p.log, int: p.int, ...(p.steps !== null ? { steps: p.steps } : {}) },
    ]),
  );
}

/** Checks every trial's layers and batch size against the data; problems name the trial and where the value came from. */
export function checkTrialsAgainstData(trials: readonly TrialSummary[], dataset: Dataset, settings: TuneSettings, baseSources: Partial<Record<ConfigKey, ConfigSource>> = {}): void {
  const problems: string[] = [];
  const seen = new Set<string>();
  for (const trial of trials) {
    const { config } = trial;
    const valCount = heldOutCount(dataset.train.count, config.valSplit);
    const key = `${config.layers.join(',')}/${config.batchSize}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const sources: Partial<Record<ConfigKey, ConfigSource>> = { ...baseSources };
    for (const k of Object.keys(trial.settings)) sources[k as ConfigKey] = { kind: 'file', path: settings.spaceFile };
    try {
      checkConfigAgainstData(
        config,
        { features: dataset.train.features, height: dataset.train.height, width: dataset.train.width, classes: dataset.classes, trainCount: dataset.train.count - valCount },
        sources,
      );
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      for (const p of error.problems) if (!problems.includes(p)) problems.push(p);
    }
  }
  if (problems.length > 0) throw new ConfigError(problems);
}

/** Reads a tune folder's tune.json (for --resume and reports). */
export async function readTuneFile(outDir: string): Promise<TuneFile> {
  const path = join(outDir, TUNE_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError([`--resume ${outDir}: ${code === 'ENOENT' ? `no ${TUNE_FILE} there (not a tune folder)` : (error as Error).message}`]);
  }
  let json: TuneFile;
  try {
    json = JSON.parse(text) as TuneFile;
  } catch (error) {
    throw new ConfigError([`${path}: not valid JSON (${(error as Error).message})`]);
  }
  if (json.version !== 1 || !Array.isArray(json.trials) || typeof json.settings !== 'object') {
    throw new ConfigError([`${path}: not a densetrain tune file (version 1 with settings and trials)`]);
  }
  return json;
}

/**
 * Runs a tune and returns its leaderboard. `space` is a parsed Space or a space file's JSON
 * (validated here). With `resume`, everything comes from <outDir>/tune.json and `space` is ignored.
 */
export async function tune(space: Space | unknown, options: TuneOptions, hooks: TuneHooks = {}): Promise<TuneResult> {
  const { outDir } = options;
  const file = join(outDir, TUNE_FILE);
  let settings: TuneSettings;
  let trials: TrialSummary[];
  let history: RungEntry[] = [];
  if (options.resume) {
    const saved = await readTuneFile(outDir);
    ({ settings, trials } = saved);
    history = saved.asha ?? [];
  } else {
    if (existsSync(file) || existsSync(join(outDir, 'trials'))) {
      throw new ConfigError([`--out ${outDir} already holds a tune (${TUNE_FILE} or trials/); choose another folder, or continue it with --resume ${outDir}`]);
    }
    ({ settings, trials } = planTune(space, options));
  }
  if (options.dataset) checkTrialsAgainstData(trials, options.dataset, settings, options.baseSources);

  const maxEpochs = Math.max(...trials.map((t) => t.config.epochs));
  const asha =
    settings.scheduler === 'asha' ? new AshaScheduler({ minEpochs: settings.minEpochs, reduction: settings.reduction, maxEpochs }, history) : null;
  const executor = options.executor ?? new InProcessExecutor(options.dataset ? { dataset: options.dataset } : {});
  const session = new TuneSession(file, settings, trials, asha, executor, hooks);
  await mkdir(outDir, { recursive: true });
  await session.persist();
  const signal = hooks.signal;
  const onAbort = () => session.stopAll();
  signal?.addEventListener('abort', onAbort);
  try {
    await session.runAll();
  } finally {
    signal?.removeEventListener('abort', onAbort);
    if (!options.executor) await executor.close();
  }
  session.markInterrupted();
  await session.persist();
  return { leaderboard: rankTrials(trials), trials, interrupted: session.interrupted, file, settings, rungs: session.rungs };
}

/** A trial's first seed, or one of its other seeds. */
type Job = { trial: TrialSummary; entry?: RepeatEntry };

/** One tune while it runs: its trials on the executor, ASHA's answers, tune.json rewritten after every change. */
class TuneSession {
  interrupted = false;
  readonly rungs: number[];
  readonly #outDir: string;
  readonly #running = new Set<{ stop(): void }>();
  #writing: Promise<void> = Promise.resolve();

  constructor(
    readonly file: string,
    readonly settings: TuneSettings,
    readonly trials: TrialSummary[],
    readonly asha: AshaScheduler | null,
    readonly executor: Executor,
    readonly hooks: TuneHooks,
  ) {
    this.rungs = asha ? [...asha.rungs] : [];
    this.#outDir = dirname(file);
  }

  snapshot(): TuneFile {
    const { settings, rungs, interrupted, trials } = this;
    return { version: 1, settings, rungs, interrupted, trials, leaderboard: rankTrials(trials).map((t) => t.id), asha: this.asha?.history() ?? [] };
  }

  /** tune.json rewritten, one write at a time. */
  persist(): Promise<void> {
    return (this.#writing = this.#writing.then(() => writeJsonAtomic(this.file, this.snapshot())));
  }

  stopAll(): void {
    for (const handle of this.#running) handle.stop();
  }

  /** Every trial not yet final (and every completed trial's other seeds), at most executor.slots at a time. */
  async runAll(): Promise<void> {
    const signal = this.hooks.signal;
    const queue: Job[] = [];
    for (const trial of this.trials) {
      if (!FINAL.has(trial.status)) queue.push({ trial });
      else queue.push(...this.repeatJobs(trial));
    }
    const active = new Set<Promise<void>>();
    // A running first seed may add its repeats to the queue: wait for it while the queue is empty.
    while ((queue.length > 0 || active.size > 0) && !signal?.aborted) {
      if (active.size >= this.executor.slots || queue.length === 0) {
        await Promise.race(active);
        continue;
      }
      const job = queue.shift()!;
      const p: Promise<void> = (job.entry ? this.runRepeat(job.trial, job.entry) : this.runOne(job.trial).then(() => void queue.unshift(...this.repeatJobs(job.trial)))).finally(() =>
        active.delete(p),
      );
      active.add(p);
    }
    await Promise.all(active);
  }

  /** After the run: anything not final was interrupted (running ones say so). */
  markInterrupted(): void {
    this.interrupted = this.trials.some((t) => !FINAL.has(t.status) || (t.repeats ?? []).some((r) => !FINAL.has(r.status)));
    if (!this.interrupted) return;
    for (const t of this.trials) {
      if (t.status === 'running') t.status = 'interrupted';
      for (const r of t.repeats ?? []) if (r.status === 'running') r.status = 'interrupted';
    }
  }

  /** Starts a trial's run on the executor and waits for its outcome. */
  async #start(spec: TrialSpec, hooks: TrialHooks) {
    const handle = this.executor.start(spec, hooks);
    this.#running.add(handle);
    if (this.hooks.signal?.aborted) handle.stop();
    const outcome = await handle.done;
    this.#running.delete(handle);
    return outcome;
  }

  async runOne(trial: TrialSummary): Promise<void> {
    // Pruned before an interruption stopped it: the decision stands.
    if (trial.rungs.some((r) => r.decision === 'prune')) {
      trial.status = 'pruned';
      return;
    }
    trial.status = 'running';
    this.hooks.onTrial?.({ type: 'start', trial });
    await this.persist();
    const outcome = await this.#start(
      { id: trial.id, config: trial.config, runDir: join(this.#outDir, trial.runDir), resume: true },
      {
        batch: (progress) => this.hooks.onTrial?.({ type: 'batch', trial, progress }),
        epoch: (record) => this.#epochDecision(trial, record),
      },
    );
    applyOutcome(trial, outcome.status, outcome.record, outcome.report ? outcome.report : null, this.#outDir);
    if (outcome.error !== undefined) trial.error = outcome.error;
    this.hooks.onTrial?.({ type: 'end', trial });
    await this.persist();
  }

  /** After each epoch of a first seed: its bests so far, ASHA's decision at a rung. */
  async #epochDecision(trial: TrialSummary, record: EpochRecord): Promise<EpochDecision> {
    trial.epochs = record.epoch;
    if (record.valAccuracy !== null && Number.isFinite(record.valAccuracy)) trial.bestValAccuracy = Math.max(trial.bestValAccuracy ?? -Infinity, record.valAccuracy);
    if (record.valLoss !== null && Number.isFinite(record.valLoss) && (trial.bestValLoss === null || record.valLoss < trial.bestValLoss)) {
      // A new lowest validation loss: the run keeps this epoch's weights (as train() does).
      trial.bestValLoss = record.valLoss;
      trial.keptValAccuracy = record.valAccuracy;
    }
    const rung = this.asha ? this.asha.report(trial.id, record.epoch, trial.bestValAccuracy ?? -Infinity) : null;
    if (rung) trial.rungs.push(rung);
    this.hooks.onTrial?.({ type: 'epoch', trial, record, rung });
    await this.persist();
    if (rung?.decision === 'prune') {
      return {
        stop: true,
        reason: `pruned by ASHA after epoch ${rung.epoch}: best validation accuracy ${formatPercent(rung.score)} ranked ${rung.rank} of ${rung.of} trials at this rung (the top ${rung.keep} continue)`,
      };
    }
    return CONTINUE;
  }

  /** A completed trial's other seeds: run after it (decisions are made on the first seed only). */
  repeatJobs(trial: TrialSummary): Job[] {
    const repeats = this.settings.repeats ?? 1;
    if (repeats <= 1 || trial.status !== 'completed') return [];
    trial.repeats ??= [primaryEntry(trial)];
    for (let k = trial.repeats.length; k < repeats; k++) {
      const seed = trial.config.seed + k;
      trial.repeats.push({ ...EMPTY_ENTRY, seed, runDir: join('trials', trial.id, `seed-${seed}`) });
    }
    trial.stats = statsOf(trial.repeats);
    return trial.repeats.filter((r, k) => k > 0 && !FINAL.has(r.status)).map((entry) => ({ trial, entry }));
  }

  async runRepeat(trial: TrialSummary, entry: RepeatEntry): Promise<void> {
    entry.status = 'running';
    this.hooks.onTrial?.({ type: 'repeat', trial, entry });
    await this.persist();
    const outcome = await this.#start(
      { id: `${trial.id} seed ${entry.seed}`, config: { ...trial.config, seed: entry.seed }, runDir: join(this.#outDir, entry.runDir), resume: true },
      { epoch: (record) => ((entry.epochs = record.epoch), CONTINUE) },
    );
    Object.assign(entry, resultFrom(outcome.status, outcome.record, outcome.report ?? null, this.#outDir));
    if (outcome.error !== undefined) entry.error = outcome.error;
    trial.stats = statsOf(trial.repeats!);
    this.hooks.onTrial?.({ type: 'repeat', trial, entry });
    await this.persist();
  }
}

/** A trial's (and a repeat's) results before it has run. */
const EMPTY_ENTRY: Omit<RepeatEntry, 'seed' | 'runDir'> = {
  status: 'pending',
  epochs: 0,
  bestValAccuracy: null,
  bestValLoss: null,
  keptValAccuracy: null,
  testAccuracy: null,
  testLoss: null,
  preluSlopes: null,
  seconds: null,
  report: null,
};

/** The trial's own run as its first repeat. */
function primaryEntry(t: TrialSummary): RepeatEntry {
  const { status, runDir, epochs, bestValAccuracy, bestValLoss, keptValAccuracy, testAccuracy, testLoss, preluSlopes, seconds, report } = t;
  return { seed: t.config.seed, status, runDir, epochs, bestValAccuracy, bestValLoss, keptValAccuracy, testAccuracy, testLoss, preluSlopes, seconds, report };
}

/** A run's result from its record (a pruned run keeps its status; without a record only the status changes). */
function resultFrom(status: TrialStatus, record: RunRecord | null, report: string | null, outDir: string): Partial<RunResult> {
  if (!record) return { status };
  const { acc, loss } = scoresOf(record.epochs);
  return {
    status,
    epochs: record.epochs.length,
    bestValAccuracy: acc,
    bestValLoss: loss,
    keptValAccuracy: record.epochs.find((e) => e.epoch === record.bestEpoch)?.valAccuracy ?? null,
    testAccuracy: record.test?.accuracy ?? null,
    testLoss: record.test?.loss ?? null,
    preluSlopes: record.epochs[record.epochs.length - 1]?.preluSlopes ?? null,
    seconds: record.seconds,
    report: report ? relative(outDir, report) : null,
  };
}

function applyOutcome(trial: TrialSummary, status: TrialStatus, record: RunRecord | null, report: string | null, outDir: string): void {
  // Interrupted right after a prune decision: the decision stands.
  const final = status === 'interrupted' && trial.rungs.some((r) => r.decision === 'prune') ? 'pruned' : status;
  Object.assign(trial, resultFrom(final, record, report, outDir));
}
