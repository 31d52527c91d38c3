/**
 * A search space: training option names (camelCase, as in config files) mapped to a list of
 * choices or a numeric range. Validated with the config schema, so a space can never produce a
 * trial that could not run: every choice and both ends of every range are checked as that
 * option's value, and every problem names the file and the key.
 *
 *   { "activation": ["relu", "tanh"],
 *     "layers": ["784,128,10", [784, 256, 128, 10]],
 *     "lr": { "min": 0.001, "max": 0.3, "log": true },
 *     "batchSize": { "min": 32, "max": 256, "int": true, "steps": 4 } }
 */
import { readFile } from 'node:fs/promises';
import { showValue } from '../show-value.js';
import { CONFIG_KEYS, ConfigError, parseConfigPart, suggestKey, type ConfigKey } from '../train/schema.js';
import type { TrainConfig } from '../train/types.js';

/** Keys every trial must share: the same data, validation split and seed make trials comparable. */
export const UNSEARCHABLE: readonly ConfigKey[] = ['data', 'seed', 'valSplit', 'backend', 'threads'];

export interface ChoiceParam {
  key: ConfigKey;
  kind: 'choice';
  /** Each a valid value of the key (layers as number arrays). */
  values: unknown[];
}

export interface RangeParam {
  key: ConfigKey;
  kind: 'range';
  min: number;
  max: number;
  /** Sample (and space grid steps) uniformly in log(value). */
  log: boolean;
  /** Integer values only (min and max are integers). */
  int: boolean;
  /** Grid points for the grid strategy (>= 1); random ignores it. */
  steps: number | null;
}

export type SpaceParam = ChoiceParam | RangeParam;

export interface Space {
  /** In the file's key order (the grid varies the last key fastest). */
  params: SpaceParam[];
}

const RANGE_FIELDS = ['min', 'max', 'log', 'int', 'steps'];
const NUMERIC_KEYS: ReadonlySet<ConfigKey> = new Set(
  CONFIG_KEYS.filter((k) => !['data', 'layers', 'activation', 'init', 'optimizer', 'schedule', 'nesterov', 'standardize', 'backend'].includes(k)),
);

/** "784,128,10" (as on the command line) or [784, 128, 10] -> [784, 128, 10]; anything else unchanged (the schema names it). */
function layersValue(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const parts = value.split(',').map((s) => s.trim());
  const numbers = parts.map((p) => (p === '' ? Number.NaN : Number(p)));
  return numbers.some((n) => Number.isNaN(n)) ? value : numbers;
}

/**
 * Checks one value as a trial's setting of `key`; returns it typed. The problem names the
 * file, the key and which choice: `space.json: "lr" choice 2 must be > 0, got -1`.
 */
function checkValue(key: ConfigKey, value: unknown, file: string, what: string): unknown {
  const input = key === 'layers' ? layersValue(value) : value;
  try {
    return parseConfigPart({ [key]: input }, { kind: 'file', path: file })[key];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    throw new ConfigError(error.problems.map((p) => p.replace(`${file}: ${JSON.stringify(key)}`, `${file}: ${JSON.stringify(key)} ${what}`)));
  }
}

function parseRange(key: ConfigKey, spec: Record<string, unknown>, file: string): RangeParam {
  const name = `${file}: ${JSON.stringify(key)}`;
  const problems: string[] = [];
  for (const field of Object.keys(spec)) {
    if (!RANGE_FIELDS.includes(field)) problems.push(`${name} has an unknown range field ${JSON.stringify(field)} (a range has min, max, and optionally log, int, steps)`);
  }
  if (!NUMERIC_KEYS.has(key)) problems.push(`${name} is not numeric and cannot be a range; give a list of choices`);
  const { min, max, log = false, int = false, steps } = spec;
  if (typeof min !== 'number' || !Number.isFinite(min)) problems.push(`${name} needs "min", a finite number, got ${showValue(min)}`);
  if (typeof max !== 'number' || !Number.isFinite(max)) problems.push(`${name} needs "max", a finite number, got ${showValue(max)}`);
  if (typeof log !== 'boolean') problems.push(`${name} "log" must be true or false, got ${showValue(log)}`);
  if (typeof int !== 'boolean') problems.push(`${name} "int" must be true or false, got ${showValue(int)}`);
  if (steps !== undefined && (typeof steps !== 'number' || !Number.isInteger(steps) || steps < 1)) {
    problems.push(`${name} "steps" must be an integer >= 1, got ${showValue(steps)}`);
  }
  if (problems.length > 0) throw new ConfigError(problems);
  const lo = min as number;
  const hi = max as number;
  if (lo > hi) throw new ConfigError([`${name} has min ${lo} > max ${hi}`]);
  if (log && lo <= 0) throw new ConfigError([`${name} is a log range, so min must be > 0, got ${lo}`]);
  if (int && (!Number.isInteger(lo) || !Number.isInteger(hi))) throw new ConfigError([`${name} is an int range, so min and max must be integers, got ${lo} and ${hi}`]);
  checkValue(key, lo, file, 'min');
  checkValue(key, hi, file, 'max');
  return { key, kind: 'range', min: lo, max: hi, log: log as boolean, int: int as boolean, steps: (steps as number | undefined) ?? null };
}

function parseChoices(key: ConfigKey, list: unknown[], file: string): ChoiceParam {
  const name = `${file}: ${JSON.stringify(key)}`;
  if (list.length === 0) throw new ConfigError([`${name} is an empty list; give at least one choice`]);
  const values = list.map((v, i) => checkValue(key, v, file, `choice ${i + 1}`));
  const seen = new Set<string>();
  for (const [i, v] of values.entries()) {
    const text = JSON.stringify(v);
    if (seen.has(text)) throw new ConfigError([`${name} lists ${showValue(v)} twice (choice ${i + 1})`]);
    seen.add(text);
  }
  return { key, kind: 'choice', values };
}

/** Validates a parsed space file; every problem names `file` and the key. Throws a ConfigError. */
export function parseSpace(input: unknown, file: string): Space {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw new ConfigError([`${file}: must be a JSON object mapping training options to choices or ranges, got ${showValue(input)}`]);
  }
  const entries = Object.entries(input as Record<string, unknown>);
  if (entries.length === 0) throw new ConfigError([`${file}: the space is empty; name at least one option to search`]);
  const params: SpaceParam[] = [];
  for (const [name, spec] of entries) {
    if (!(CONFIG_KEYS as string[]).includes(name)) {
      const hint = suggestKey(name);
      throw new ConfigError([`${file}: unknown key ${JSON.stringify(name)}${hint === undefined ? '' : ` (did you mean ${JSON.stringify(hint)}?)`}`]);
    }
    const key = name as ConfigKey;
    if (UNSEARCHABLE.includes(key)) {
      throw new ConfigError([`${file}: ${JSON.stringify(key)} cannot be searched: every trial uses the same data, validation split, seed and kernels (set it as a base option)`]);
    }
    if (Array.isArray(spec)) params.push(parseChoices(key, spec, file));
    else if (typeof spec === 'object' && spec !== null) params.push(parseRange(key, spec as Record<string, unknown>, file));
    else throw new ConfigError([`${file}: ${JSON.stringify(key)} must be a list of choices or a range {"min": .., "max": ..}, got ${showValue(spec)}`]);
  }
  return { params };
}

/** Reads and validates a space file (a missing file or bad JSON is a ConfigError naming it). */
export async function readSpace(path: string): Promise<Space> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    throw new ConfigError([`--space ${path}: ${code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory' : (error as Error).message}`]);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ConfigError([`${path}: not valid JSON (${(error as Error).message})`]);
  }
  return parseSpace(json, path);
}

/** The settings a trial takes from the space, as a partial config. */
export type TrialSettings = Partial<TrainConfig>;
