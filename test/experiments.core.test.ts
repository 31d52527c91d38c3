/**
 * The experiment core without real training: space validation (every bad-space case names
 * the file and key), grid and random determinism, ASHA rung decisions on a scripted fake
 * trainer (through tune() and the in-process executor), repeat statistics.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { AshaScheduler, rungEpochs } from '../src/experiments/asha.js';
import type { TrialHooks, TrialOutcome, TrialSpec } from '../src/experiments/executor.js';
import { InProcessExecutor } from '../src/experiments/in-process.js';
import { parseSpace } from '../src/experiments/space.js';
import { formatSpread, spread, spreadPerIndex } from '../src/train/spread.js';
import { gridSize, gridTrials, randomTrials } from '../src/experiments/strategies.js';
import { rankTrials, tune, type TuneFile } from '../src/experiments/tune.js';
import { ConfigError } from '../src/train/schema.js';
import type { EpochRecord, RunRecord } from '../src/train/types.js';

const tmp = mkdtempSync(join(tmpdir(), 'densetrain-experiments-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function spaceError(input: unknown): string {
  try {
    parseSpace(input, 'space.json');
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('expected a ConfigError');
}

describe('space validation', () => {
  it('accepts choices and ranges, layers as text or arrays', () => {
    const space = parseSpace(
      { activation: ['relu', 'tanh'], layers: ['784,128,10', [784, 64, 10]], lr: { min: 0.001, max: 0.3, log: true }, batchSize: { min: 32, max: 256, int: true } },
      'space.json',
    );
    expect(space.params.map((p) => p.key)).toEqual(['activation', 'layers', 'lr', 'batchSize']);
    expect(space.params[1]).toEqual({ key: 'layers', kind: 'choice', values: [[784, 128, 10], [784, 64, 10]] });
    expect(space.params[2]).toMatchObject({ kind: 'range', min: 0.001, max: 0.3, log: true, int: false, steps: null });
  });

  it.each([
    [[], /space\.json: must be a JSON object/],
    [{}, /space\.json: the space is empty/],
    [{ lrate: [0.1] }, /space\.json: unknown key "lrate" \(did you mean "lr"\?\)/],
    [{ lr: [] }, /space\.json: "lr" is an empty list/],
    [{ lr: { min: 0.3, max: 0.001 } }, /space\.json: "lr" has min 0\.3 > max 0\.001/],
    [{ lr: [0.1, -1] }, /space\.json: "lr" choice 2 must be > 0, got -1/],
    [{ lr: [0.1, 0.1] }, /space\.json: "lr" lists 0\.1 twice/],
    [{ activation: ['relu', 'swish'] }, /space\.json: "activation" choice 2 must be one of/],
    [{ layers: ['784,abc,10'] }, /space\.json: "layers" choice 1/],
    [{ batchSize: { min: 0, max: 64, int: true } }, /space\.json: "batchSize" min must be an integer >= 1, got 0/],
    [{ momentum: { min: 0.5, max: 1 } }, /space\.json: "momentum" max must be in \[0, 1\)/],
    [{ lr: { min: 0, max: 0.1, log: true } }, /space\.json: "lr" is a log range, so min must be > 0/],
    [{ batchSize: { min: 32.5, max: 64, int: true } }, /space\.json: "batchSize" is an int range, so min and max must be integers/],
    [{ activation: { min: 0, max: 1 } }, /space\.json: "activation" is not numeric and cannot be a range/],
    [{ lr: { min: 0.1 } }, /space\.json: "lr" needs "max", a finite number/],
    [{ lr: { min: 0.1, max: 0.2, step: 3 } }, /space\.json: "lr" has an unknown range field "step"/],
    [{ lr: { min: 0.1, max: 0.2, steps: 0 } }, /space\.json: "lr" "steps" must be an integer >= 1/],
    [{ lr: 0.1 }, /space\.json: "lr" must be a list of choices or a range/],
    [{ seed: [1, 2] }, /space\.json: "seed" cannot be searched/],
    [{ data: ['mnist'] }, /space\.json: "data" cannot be searched/],
  ])('refuses %j', (input, message) => {
    expect(spaceError(input)).toMatch(message);
  });
});

describe('strategies', () => {
  const space = parseSpace({ activation: ['relu', 'tanh'], lr: { min: 0.001, max: 0.1, log: true, steps: 3 }, l2: [0, 0.001] }, 'space.json');

  it('grid enumerates every combination, last key fastest, log steps exact at the ends', () => {
    expect(gridSize(space, 'space.json')).toBe(12);
    const trials = gridTrials(space, 'space.json');
    expect(trials).toHaveLength(12);
    expect(trials[0]).toEqual({ activation: 'relu', lr: 0.001, l2: 0 });
    expect(trials[1]).toEqual({ activation: 'relu', lr: 0.001, l2: 0.001 });
    expect(trials[2]).toEqual({ activation: 'relu', lr: 0.01, l2: 0 });
    expect(trials[11]).toEqual({ activation: 'tanh', lr: 0.1, l2: 0.001 });
    expect(new Set(trials.map((t) => JSON.stringify(t))).size).toBe(12);
    expect(gridTrials(space, 'space.json', 5)).toEqual(trials.slice(0, 5));
  });

  it('grid needs steps for ranges', () => {
    const noSteps = parseSpace({ lr: { min: 0.001, max: 0.1 } }, 'space.json');
    expect(() => gridTrials(noSteps, 'space.json')).toThrow(/space\.json: "lr" is a range: the grid strategy needs its "steps"/);
  });

  it('random: the same seed gives the same trials, another seed others; values inside the ranges', () => {
    const ranged = parseSpace({ lr: { min: 0.001, max: 0.3, log: true }, batchSize: { min: 32, max: 256, int: true }, activation: ['relu', 'tanh', 'sigmoid'] }, 'space.json');
    const a = randomTrials(ranged, 30, 7);
    const b = randomTrials(ranged, 30, 7);
    const c = randomTrials(ranged, 30, 8);
    expect(a).toEqual(b);
    expect(a).not.toEqual(c);
    for (const t of a) {
      expect(t.lr!).toBeGreaterThanOrEqual(0.001);
      expect(t.lr!).toBeLessThanOrEqual(0.3);
      expect(Number.isInteger(t.batchSize)).toBe(true);
      expect(t.batchSize!).toBeGreaterThanOrEqual(32);
      expect(t.batchSize!).toBeLessThanOrEqual(256);
    }
    // Log sampling: about as many below the geometric middle (~0.0173) as above.
    const below = a.filter((t) => t.lr! < Math.sqrt(0.001 * 0.3)).length;
    expect(below).toBeGreaterThan(5);
    expect(below).toBeLessThan(25);
  });

  it('random stops once a finite space is exhausted, without duplicates', () => {
    const small = parseSpace({ activation: ['relu', 'tanh'], l2: [0, 0.001] }, 'space.json');
    const trials = randomTrials(small, 10, 1);
    expect(trials).toHaveLength(4);
    expect(new Set(trials.map((t) => JSON.stringify(t))).size).toBe(4);
  });
});

describe('ASHA', () => {
  it('places rungs at minEpochs * reduction^k below the budget', () => {
    expect(rungEpochs({ minEpochs: 1, reduction: 3, maxEpochs: 20 })).toEqual([1, 3, 9]);
    expect(rungEpochs({ minEpochs: 2, reduction: 2, maxEpochs: 16 })).toEqual([2, 4, 8]);
    expect(rungEpochs({ minEpochs: 5, reduction: 3, maxEpochs: 5 })).toEqual([]);
    expect(() => rungEpochs({ minEpochs: 1, reduction: 1, maxEpochs: 5 })).toThrow(/reduction/);
  });

  it('keeps the top max(1, floor(n / reduction)) of the scores so far at a rung, never waiting', () => {
    const asha = new AshaScheduler({ minEpochs: 1, reduction: 3, maxEpochs: 20 });
    expect(asha.rungs).toEqual([1, 3, 9]);
    expect(asha.report('a', 2, 0.5)).toBeNull(); // not a rung
    const at = (trial: string, epoch: number, score: number) => {
      const e = asha.report(trial, epoch, score)!;
      return [e.decision, e.rank, e.of, e.keep];
    };
    expect(at('a', 1, 0.5)).toEqual(['continue', 1, 1, 1]); // the first at a rung always continues
    expect(at('b', 1, 0.6)).toEqual(['continue', 1, 2, 1]);
    expect(at('c', 1, 0.4)).toEqual(['prune', 3, 3, 1]);
    expect(at('d', 1, 0.55)).toEqual(['prune', 2, 4, 1]);
    expect(at('e', 1, 0.7)).toEqual(['continue', 1, 5, 1]);
    expect(at('f', 1, 0.6)).toEqual(['continue', 2, 6, 2]); // ties rank together; 6 / 3 = 2 continue
    expect(at('a', 3, 0.8)).toEqual(['continue', 1, 1, 1]); // rungs are separate
    expect(at('g', 1, Number.NaN)).toEqual(['prune', 7, 7, 2]); // no validation score ranks last
    expect(() => asha.report('a', 3, 0.9)).toThrow(/twice/);
  });

  it('restored from its history decides as if never stopped', () => {
    const options = { minEpochs: 1, reduction: 2, maxEpochs: 8 };
    const scores: [string, number, number][] = [['a', 1, 0.3], ['b', 1, 0.5], ['c', 1, 0.4], ['a', 2, 0.6], ['d', 1, 0.45]];
    const whole = new AshaScheduler(options);
    const first = new AshaScheduler(options);
    for (const [t, e, s] of scores.slice(0, 3)) {
      whole.report(t, e, s);
      first.report(t, e, s);
    }
    const restored = new AshaScheduler(options, JSON.parse(JSON.stringify(first.history())));
    for (const [t, e, s] of scores.slice(3)) expect(restored.report(t, e, s)).toEqual(whole.report(t, e, s));
    expect(restored.history()).toEqual(whole.history());
  });
});

describe('repeat statistics', () => {
  it('mean, sample std, min, max, n; non-finite values counted apart', () => {
    const s = spread([0.9, 0.92, 0.94, null, Number.NaN]);
    expect(s.n).toBe(3);
    expect(s.mean).toBeCloseTo(0.92, 12);
    expect(s.std).toBeCloseTo(0.02, 12);
    expect([s.min, s.max]).toEqual([0.9, 0.94]);
    expect(spread([0.5])).toEqual({ n: 1, mean: 0.5, std: null, min: 0.5, max: 0.5 });
    expect(spread([])).toEqual({ n: 0, mean: null, std: null, min: null, max: null });
    expect(formatSpread(s, { percent: true })).toBe('92.00 ± 2.00%');
    expect(formatSpread(spread([0.25]))).toBe('0.2500');
    const layers = spreadPerIndex([[0.1, -0.2], [0.3, -0.4]]);
    expect(layers.map((l) => l.mean)).toEqual([0.2, -0.30000000000000004]);
    expect(layers[0]!.std).toBeCloseTo(Math.SQRT2 * 0.1, 12);
  });
});

// ---------------------------------------------------------------------------------------------
// tune() on a scripted fake trainer: each trial's validation accuracy at epoch e is
// quality * e / (e + 1), with quality from its lr; its "test accuracy" is deliberately
// 1 - quality, so a ranking that looked at the test set would come out reversed.

const quality = (lr: number) => 0.5 + lr; // lr in [0.01, 0.4]

function fakeRecord(spec: TrialSpec, epochs: EpochRecord[], stopReason: RunRecord['stopReason']): RunRecord {
  const q = quality(spec.config.lr);
  return {
    version: 1,
    config: spec.config,
    dataset: { name: 'fake', source: 'fake', classNames: [], trainCount: 90, valCount: 10, testCount: 10, height: 1, width: 1 },
    backend: { backend: 'reference', isa: 'none', threads: 1, skipped: [] } as unknown as RunRecord['backend'],
    startedAt: '',
    finishedAt: '',
    stopReason,
    bestEpoch: epochs.length,
    epochs,
    batches: [],
    test: epochs.length ? { loss: q, accuracy: 1 - q, count: 10, confusion: [] } : null,
    seconds: epochs.length,
  };
}

/** The fake trainer; its "checkpoint" is the epoch count in a map keyed by run folder. */
function fakeTrainer(checkpoints: Map<string, number>, log: string[]) {
  return async (spec: TrialSpec, hooks: TrialHooks, signal: AbortSignal): Promise<TrialOutcome> => {
    const q = quality(spec.config.lr);
    const start = spec.resume ? (checkpoints.get(spec.runDir) ?? 0) : 0;
    const epochs: EpochRecord[] = [];
    for (let e = 1; e <= start; e++) epochs.push(epochRecord(e, q));
    for (let e = start + 1; e <= spec.config.epochs; e++) {
      await new Promise((r) => setImmediate(r));
      if (signal.aborted) return { status: 'interrupted', record: fakeRecord(spec, epochs, 'interrupted') };
      const record = epochRecord(e, q);
      epochs.push(record);
      checkpoints.set(spec.runDir, e);
      log.push(`${spec.id}@${e}`);
      const decision = await hooks.epoch(record);
      if (decision.stop) return { status: 'pruned', record: fakeRecord(spec, epochs, 'early-stopping') };
    }
    return { status: 'completed', record: fakeRecord(spec, epochs, 'completed') };
  };
}

function epochRecord(epoch: number, q: number): EpochRecord {
  return { epoch, trainLoss: 1, trainAccuracy: 0.5, valLoss: 1 - q, valAccuracy: (q * epoch) / (epoch + 1), lr: 0.1, seconds: 1, samplesPerSecond: 1 };
}

const SPACE = { lr: { min: 0.01, max: 0.4 } };
const BASE = { epochs: 9, data: 'fake' };

describe('tune on a fake trainer', () => {
  it('prunes at the rungs from validation accuracy, ranks by it, and writes tune.json', async () => {
    const outDir = join(tmp, 'tune-a');
    const log: string[] = [];
    const executor = new InProcessExecutor({ run: fakeTrainer(new Map(), log) });
    const result = await tune(SPACE, { outDir, base: BASE, spaceFile: 'space.json', trials: 12, strategy: 'random', minEpochs: 1, reduction: 3, executor });
    expect(result.rungs).toEqual([1, 3]);
    expect(result.interrupted).toBe(false);
    const file = JSON.parse(readFileSync(join(outDir, 'tune.json'), 'utf8')) as TuneFile;
    expect(file.trials).toHaveLength(12);
    // Replay the decisions: each trial at each rung against the scores that arrived before it.
    const seen = new Map<number, number[]>();
    for (const t of file.trials) {
      const q = quality(t.config.lr);
      let expected: 'completed' | 'pruned' = 'completed';
      let stoppedAt = 9;
      for (const rung of [1, 3]) {
        const score = (q * rung) / (rung + 1);
        const before = seen.get(rung) ?? [];
        const rank = 1 + before.filter((s) => s > score).length;
        seen.set(rung, [...before, score]);
        if (rank > Math.max(1, Math.floor((before.length + 1) / 3))) {
          expected = 'pruned';
          stoppedAt = rung;
          break;
        }
      }
      expect(t.status, t.id).toBe(expected);
      expect(t.epochs, t.id).toBe(stoppedAt);
      expect(t.runDir).toBe(join('trials', t.id));
    }
    const pruned = file.trials.filter((t) => t.status === 'pruned');
    expect(pruned.length).toBeGreaterThan(3);
    for (const t of pruned) expect(t.rungs.at(-1)!.decision).toBe('prune');
    // Leaderboard by the kept weights' validation accuracy (here the last epoch's): the reverse of the (fake) test accuracy order would be wrong.
    const vals = file.leaderboard.map((id) => file.trials.find((t) => t.id === id)!.keptValAccuracy!);
    expect(vals).toEqual([...vals].sort((a, b) => b - a));
    expect(result.leaderboard.map((t) => t.id)).toEqual(file.leaderboard);
    const best = file.trials.find((t) => t.id === file.leaderboard[0])!;
    expect(best.status).toBe('completed');
    expect(best.config.lr).toBe(Math.max(...file.trials.map((t) => t.config.lr)));
    // Trials ran one at a time, each to its end before the next.
    expect(log.filter((l) => l.endsWith('@9')).length).toBe(file.trials.filter((t) => t.status === 'completed').length);
  });

  it('interrupted, then resumed: the same trials, decisions and leaderboard as uninterrupted', async () => {
    const whole = await tune(SPACE, { outDir: join(tmp, 'tune-whole'), base: BASE, trials: 10, executor: new InProcessExecutor({ run: fakeTrainer(new Map(), []) }) });
    const outDir = join(tmp, 'tune-cut');
    const checkpoints = new Map<string, number>();
    const log: string[] = [];
    const controller = new AbortController();
    // Stop in the middle of the second trial that gets past every rung (epoch 5 of 9).
    const survivors: string[] = [];
    const first = await tune(
      SPACE,
      { outDir, base: BASE, trials: 10, executor: new InProcessExecutor({ run: fakeTrainer(checkpoints, log) }) },
      {
        signal: controller.signal,
        onTrial: (event) => {
          if (event.type === 'epoch' && event.record.epoch === 5 && survivors.push(event.trial.id) === 2) controller.abort();
        },
      },
    );
    expect(first.interrupted).toBe(true);
    const cut = JSON.parse(readFileSync(join(outDir, 'tune.json'), 'utf8')) as TuneFile;
    expect(cut.interrupted).toBe(true);
    const stopped = survivors[1]!;
    const index = cut.trials.findIndex((t) => t.id === stopped);
    expect(cut.trials[index]!.status).toBe('interrupted');
    expect(cut.trials[index]!.epochs).toBe(5);
    expect(cut.trials.slice(index + 1).every((t) => t.status === 'pending')).toBe(true);
    expect(index).toBeLessThan(9);
    const resumedLog: string[] = [];
    const second = await tune(null, { outDir, resume: true, executor: new InProcessExecutor({ run: fakeTrainer(checkpoints, resumedLog) }) });
    expect(second.interrupted).toBe(false);
    // The stopped trial continued from its checkpoint (epoch 6 next); nothing finished was rerun.
    expect(resumedLog[0]).toBe(`${stopped}@6`);
    expect(resumedLog.some((l) => cut.trials.slice(0, index).some((t) => l.startsWith(`${t.id}@`)))).toBe(false);
    const strip = (r: typeof whole) => r.trials.map(({ id, status, epochs, bestValAccuracy, rungs, config }) => ({ id, status, epochs, bestValAccuracy, rungs, config }));
    expect(strip(second)).toEqual(strip(whole));
    expect(second.leaderboard.map((t) => t.id)).toEqual(whole.leaderboard.map((t) => t.id));
  });

  it('--repeats: a completed trial is trained with its other seeds right after it, ranked by the mean; pruned trials are not repeated', async () => {
    const log: string[] = [];
    // Seed-dependent scores: the fake trainer's quality gains 0.001 per seed above the base seed.
    const trainer = fakeTrainer(new Map(), log);
    const seeded = async (spec: TrialSpec, hooks: TrialHooks, signal: AbortSignal) => {
      const shifted = { ...spec, config: { ...spec.config, lr: spec.config.lr + 0.001 * (spec.config.seed - 1) } };
      const outcome = await trainer(shifted, hooks, signal);
      return outcome.record ? { ...outcome, record: { ...outcome.record, config: spec.config } } : outcome;
    };
    const result = await tune(SPACE, { outDir: join(tmp, 'tune-rep'), base: BASE, trials: 8, repeats: 3, executor: new InProcessExecutor({ run: seeded }) });
    const file = JSON.parse(readFileSync(join(tmp, 'tune-rep', 'tune.json'), 'utf8')) as TuneFile;
    expect(file.settings.repeats).toBe(3);
    for (const t of file.trials) {
      if (t.status === 'completed') {
        expect(t.repeats!.map((r) => [r.seed, r.status])).toEqual([[1, 'completed'], [2, 'completed'], [3, 'completed']]);
        expect(t.repeats!.map((r) => r.runDir)).toEqual([1, 2, 3].map((seed) => join('trials', t.id, `seed-${seed}`)));
        const vals = t.repeats!.map((r) => r.bestValAccuracy!);
        expect(t.stats!.bestValAccuracy.n).toBe(3);
        expect(t.stats!.bestValAccuracy.mean).toBeCloseTo((vals[0]! + vals[1]! + vals[2]!) / 3, 12);
        expect(t.stats!.bestValAccuracy.std).toBeGreaterThan(0);
        // The other seeds ran right after the first (one at a time): t@9, then its seeds.
        const end = log.indexOf(`${t.id}@9`);
        expect(log.slice(end + 1, end + 1 + 18).every((l) => l.startsWith(`${t.id} seed `))).toBe(true);
      } else {
        expect(t.status).toBe('pruned');
        expect(t.repeats).toBeUndefined();
        expect(log.some((l) => l.startsWith(`${t.id} seed `))).toBe(false);
      }
    }
    const scores = result.leaderboard.map((t) => t.stats?.keptValAccuracy.mean ?? t.keptValAccuracy!);
    expect(scores).toEqual([...scores].sort((a, b) => b - a));
  });

  it('refuses a bad space, a missing validation split, a folder already tuned, and ASHA without rungs', async () => {
    const executor = new InProcessExecutor({ run: fakeTrainer(new Map(), []) });
    await expect(tune({ lr: [] }, { outDir: join(tmp, 'x1'), base: BASE, trials: 2, spaceFile: 's.json', executor })).rejects.toThrow(/s\.json: "lr" is an empty list/);
    await expect(tune(SPACE, { outDir: join(tmp, 'x2'), base: { ...BASE, valSplit: 0 }, trials: 2, executor })).rejects.toThrow(/validation split/);
    await expect(tune(SPACE, { outDir: join(tmp, 'x3'), base: BASE, executor })).rejects.toThrow(/--trials is needed/);
    await expect(tune(SPACE, { outDir: join(tmp, 'x4'), base: { ...BASE, epochs: 2 }, trials: 2, minEpochs: 2, executor })).rejects.toThrow(/no rung below 2 epochs/);
    await expect(tune(SPACE, { outDir: join(tmp, 'tune-a'), base: BASE, trials: 2, executor })).rejects.toThrow(/already holds a tune/);
    expect(rankTrials([])).toEqual([]);
  });
});
