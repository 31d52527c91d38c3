/**
 * ASHA: asynchronous successive halving (Li et al., "A System for Massively Parallel
 * Hyperparameter Tuning"), in its stopping form (as Ray Tune's and Optuna's pruners use it).
 *
 * Rungs sit at minEpochs * reduction^k epochs (below the trials' epoch budget). When a trial
 * finishes a rung's epoch, its score (the best validation accuracy so far: the validation split
 * only, never the test set) is recorded at that rung and compared with every score recorded
 * there so far, its own included: it continues only if it ranks in the top
 * max(1, floor(n / reduction)) of those n. Nothing waits for other trials: a decision uses only
 * what has arrived, so the first trial at a rung always continues, and the order in which trials
 * arrive (deterministic when trials run one at a time) shapes the decisions.
 *
 * The state (every recorded score, in order) is plain data: tune.json keeps it, and a resumed
 * tune restores it so decisions already made stand.
 */

export type SchedulerName = 'asha' | 'none';
export const SCHEDULER_NAMES: readonly SchedulerName[] = ['asha', 'none'];

export interface AshaOptions {
  /** Epochs at the first rung (>= 1). */
  minEpochs: number;
  /** Reduction factor (>= 2): the top 1/reduction of a rung continues. */
  reduction: number;
  /** The epoch budget of a trial: no rung at or above it. */
  maxEpochs: number;
}

/** One score recorded at a rung, and what it decided. */
export interface RungEntry {
  trial: string;
  /** The rung's epoch. */
  epoch: number;
  score: number;
  /** 1 = best of the scores at this rung when it arrived. */
  rank: number;
  /** Scores at the rung when it arrived (its own included). */
  of: number;
  /** How many of those `of` continue. */
  keep: number;
  decision: 'continue' | 'prune';
}

/** The epochs at which a trial may be pruned. */
export function rungEpochs(options: AshaOptions): number[] {
  const { minEpochs, reduction, maxEpochs } = options;
  if (!Number.isInteger(minEpochs) || minEpochs < 1) throw new RangeError(`minEpochs must be an integer >= 1, got ${minEpochs}`);
  if (!Number.isInteger(reduction) || reduction < 2) throw new RangeError(`reduction must be an integer >= 2, got ${reduction}`);
  const rungs: number[] = [];
  for (let e = minEpochs; e < maxEpochs; e *= reduction) rungs.push(e);
  return rungs;
}

export class AshaScheduler {
  readonly rungs: readonly number[];
  readonly options: AshaOptions;
  readonly #entries: RungEntry[] = [];
  readonly #scores = new Map<number, number[]>();

  constructor(options: AshaOptions, history: readonly RungEntry[] = []) {
    this.options = { ...options };
    this.rungs = rungEpochs(options);
    for (const entry of history) this.#record(entry);
  }

  #record(entry: RungEntry): void {
    this.#entries.push(entry);
    const list = this.#scores.get(entry.epoch) ?? [];
    list.push(entry.score);
    this.#scores.set(entry.epoch, list);
  }

  /**
   * A trial finished `epoch` with `score` (higher is better). At a rung: records it and says
   * whether the trial goes on; elsewhere: null (nothing to decide). A trial reports a rung once.
   */
  report(trial: string, epoch: number, score: number): RungEntry | null {
    if (!this.rungs.includes(epoch)) return null;
    if (this.#entries.some((e) => e.trial === trial && e.epoch === epoch)) {
      throw new Error(`trial ${trial} reported rung ${epoch} twice`);
    }
    const others = this.#scores.get(epoch) ?? [];
    const of = others.length + 1;
    // A non-finite score (no validation accuracy) ranks last.
    const value = Number.isFinite(score) ? score : -Infinity;
    const rank = 1 + others.filter((s) => s > value).length;
    const keep = Math.max(1, Math.floor(of / this.options.reduction));
    const entry: RungEntry = { trial, epoch, score: value, rank, of, keep, decision: rank <= keep ? 'continue' : 'prune' };
    this.#record(entry);
    return entry;
  }

  /** Every recorded score in arrival order (for tune.json and resuming). */
  history(): RungEntry[] {
    return this.#entries.map((e) => ({ ...e }));
  }
}
