/**
 * Turning a space into trial settings. `grid` enumerates every combination (ranges need
 * `steps`); `random` samples from the seeded PRNG, so the same seed and space give the same
 * trials in the same order.
 */
import { ConfigError } from '../train/schema.js';
import { Rng } from '../rng.js';
import type { RangeParam, Space, SpaceParam, TrialSettings } from './space.js';

export type StrategyName = 'random' | 'grid';
export const STRATEGY_NAMES: readonly StrategyName[] = ['random', 'grid'];

/** Sampled floats keep 4 significant digits: readable configs, and still dense in the range. */
function tidy(v: number, p: RangeParam): number {
  if (p.int) return Math.round(v);
  const t = Number(v.toPrecision(4));
  return Math.min(p.max, Math.max(p.min, t));
}

/** The grid points of a range: `steps` points from min to max, evenly spaced (in log space for log ranges). */
export function rangeGrid(p: RangeParam, file: string): number[] {
  if (p.steps === null) {
    throw new ConfigError([`${file}: ${JSON.stringify(p.key)} is a range: the grid strategy needs its "steps" (how many values from min to max)`]);
  }
  const n = p.steps;
  const out: number[] = [];
  for (let i = 0; i < n; i++) {
    const t = n === 1 ? 0 : i / (n - 1);
    const v = p.log ? Math.exp(Math.log(p.min) + t * (Math.log(p.max) - Math.log(p.min))) : p.min + t * (p.max - p.min);
    const value = i === n - 1 && n > 1 ? p.max : i === 0 ? p.min : tidy(v, p);
    if (!out.includes(value)) out.push(value);
  }
  return out;
}

function choicesOf(p: SpaceParam, file: string): unknown[] {
  return p.kind === 'choice' ? p.values : rangeGrid(p, file);
}

/** How many trials the grid has. */
export function gridSize(space: Space, file: string): number {
  return space.params.reduce((n, p) => n * choicesOf(p, file).length, 1);
}

/** Every combination, the last key varying fastest; at most `limit`. */
export function gridTrials(space: Space, file: string, limit = Infinity): TrialSettings[] {
  const axes = space.params.map((p) => ({ key: p.key, values: choicesOf(p, file) }));
  const total = axes.reduce((n, a) => n * a.values.length, 1);
  const count = Math.min(total, limit);
  const trials: TrialSettings[] = [];
  for (let index = 0; index < count; index++) {
    const settings: Record<string, unknown> = {};
    let rest = index;
    for (let a = axes.length - 1; a >= 0; a--) {
      const axis = axes[a]!;
      settings[axis.key] = axis.values[rest % axis.values.length];
      rest = Math.floor(rest / axis.values.length);
    }
    // Keep the file's key order in each trial's settings.
    trials.push(Object.fromEntries(axes.map((a) => [a.key, settings[a.key]])) as TrialSettings);
  }
  return trials;
}

function sample(p: SpaceParam, rng: Rng): unknown {
  if (p.kind === 'choice') return p.values[rng.int(p.values.length)];
  if (p.int && !p.log) return p.min + rng.int(p.max - p.min + 1);
  const v = p.log ? Math.exp(rng.uniform(Math.log(p.min), Math.log(p.max))) : rng.uniform(p.min, p.max);
  return tidy(v, p);
}

/**
 * `count` trials sampled with a PRNG seeded by `seed`. A repeat of an earlier trial is drawn
 * again (up to 100 times) so a small space is not wasted on duplicates; once the space is
 * exhausted, trials stop (fewer than `count`).
 */
export function randomTrials(space: Space, count: number, seed: number): TrialSettings[] {
  const rng = new Rng(seed);
  const seen = new Set<string>();
  const trials: TrialSettings[] = [];
  while (trials.length < count) {
    let settings: TrialSettings | null = null;
    for (let attempt = 0; attempt < 100 && settings === null; attempt++) {
      const candidate = Object.fromEntries(space.params.map((p) => [p.key, sample(p, rng)])) as TrialSettings;
      const text = JSON.stringify(candidate);
      if (!seen.has(text)) {
        seen.add(text);
        settings = candidate;
      }
    }
    if (settings === null) break;
    trials.push(settings);
  }
  return trials;
}
