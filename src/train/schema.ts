/**
 * The one validation of a TrainConfig, shared by the command line and `--config file.json`.
 *
 * The schema is strict (unknown keys are rejected) and typed: config files must hold numbers
 * where numbers are expected; the CLI turns its option strings into numbers first (see
 * src/cli/options.ts) and then runs the same schema. Every problem becomes a ConfigError whose
 * message names the option the way the user wrote it: `--lr must be > 0, got -1` on the
 * command line, `config.json: "lr" must be > 0, got -1` in a file.
 */
import { distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { ACTIVATION_NAMES, PRECISIONS, type ActivationName, type Precision } from '../kernels/types.js';
import { footprintProblems, type FootprintConfig, type FootprintLimits } from './footprint.js';
import { InputError } from '../input-error.js';
import { showValue } from '../show-value.js';
import { INIT_NAMES } from '../model/init.js';
import { OPTIMIZER_NAMES } from '../optim/optimizer.js';
import { SCHEDULE_NAMES } from '../optim/schedule.js';
import type { InitName, OptimizerName, ScheduleName, TrainConfig } from './types.js';

export { INIT_NAMES, OPTIMIZER_NAMES, SCHEDULE_NAMES };
export const BACKEND_CHOICES = ['auto', 'native', 'wasm', 'reference'] as const;


/** The largest finite float32. */
const FLOAT32_MAX = 3.4028234663852886e38;

type Issue = { input?: unknown };
const got = (iss: Issue): string => showValue(iss.input);

function number(): z.ZodNumber {
  return z.number({
    error: (iss) =>
      typeof iss.input === 'number' ? `must be a finite number, got ${got(iss)}` : `must be a number, got ${got(iss)}`,
  });
}

function integer(): z.ZodNumber {
  return z.number({
    error: (iss) =>
      typeof iss.input === 'number' ? `must be an integer, got ${got(iss)}` : `must be an integer, got ${got(iss)}`,
  }).int({ error: (iss) => `must be an integer, got ${got(iss)}` });
}

function oneOf<const T extends readonly [string, ...string[]]>(values: T) {
  return z.enum(values, { error: (iss) => `must be one of ${values.join(', ')}; got ${got(iss)}` });
}

function boolean() {
  return z.boolean({ error: (iss) => `must be true or false, got ${got(iss)}` });
}

const unitInterval = (what: string) =>
  number()
    .min(0, { error: (iss) => `must be in [0, 1)${what}, got ${got(iss)}` })
    .lt(1, { error: (iss) => `must be in [0, 1)${what}, got ${got(iss)}` });

const shape = {
  data: z
    .string({ error: (iss) => `must be a dataset name or path (a string), got ${got(iss)}` })
    .min(1, { error: () => 'must not be empty' }),
  layers: z
    .array(
      z
        .number({ error: (iss) => `must hold positive integers, got ${got(iss)}` })
        .int({ error: (iss) => `must hold positive integers, got ${got(iss)}` })
        .min(1, { error: (iss) => `must hold positive integers, got ${got(iss)}` }),
      { error: (iss) => `must be a list of layer sizes like [784, 128, 10], got ${got(iss)}` },
    )
    .min(2, { error: (iss) => `needs at least 2 sizes (inputs and classes), got ${got(iss)}` }),
  activation: oneOf(ACTIVATION_NAMES as unknown as readonly [ActivationName, ...ActivationName[]]),
  // The kernels compute in float32: a slope beyond its range is an infinity there, and every
  // activation it touches overflows, so it is refused here rather than diagnosed as divergence.
  alpha: number().refine((x) => Number.isFinite(Math.fround(x)), {
    error: (iss) => `must fit in float32 (|alpha| <= ${FLOAT32_MAX.toPrecision(5)}; the kernels compute in float32), got ${got(iss)}`,
  }),
  init: oneOf(INIT_NAMES as unknown as readonly [InitName, ...InitName[]]),
  optimizer: oneOf(OPTIMIZER_NAMES as unknown as readonly [OptimizerName, ...OptimizerName[]]),
  lr: number().gt(0, { error: (iss) => `must be > 0, got ${got(iss)}` }),
  momentum: unitInterval(''),
  nesterov: boolean(),
  beta1: unitInterval(''),
  beta2: unitInterval(''),
  eps: number().gt(0, { error: (iss) => `must be > 0, got ${got(iss)}` }),
  schedule: oneOf(SCHEDULE_NAMES as unknown as readonly [ScheduleName, ...ScheduleName[]]),
  stepSize: integer().min(1, { error: (iss) => `must be an integer >= 1, got ${got(iss)}` }),
  gamma: number().gt(0, { error: (iss) => `must be > 0, got ${got(iss)}` }),
  l2: number().min(0, { error: (iss) => `must be >= 0, got ${got(iss)}` }),
  epochs: integer().min(1, { error: (iss) => `must be an integer >= 1, got ${got(iss)}` }),
  batchSize: integer().min(1, { error: (iss) => `must be an integer >= 1, got ${got(iss)}` }),
  valSplit: unitInterval(''),
  patience: integer().min(0, { error: (iss) => `must be an integer >= 0, got ${got(iss)}` }),
  seed: integer().refine(Number.isSafeInteger, { error: (iss) => `must be a safe integer, got ${got(iss)}` }),
  standardize: boolean(),
  backend: oneOf(BACKEND_CHOICES),
  precision: oneOf(PRECISIONS as unknown as readonly [Precision, ...Precision[]]),
  threads: integer().min(1, { error: (iss) => `must be an integer >= 1, got ${got(iss)}` }),
};

export type ConfigKey = keyof TrainConfig;
export const CONFIG_KEYS = Object.keys(shape) as ConfigKey[];

/** A complete TrainConfig (threads optional). Strict: unknown keys are rejected. */
export const trainConfigSchema = z.strictObject({ ...shape, threads: shape.threads.optional() });
/** A TrainConfig as stored in a checkpoint: those written before --precision existed trained in fp32. */
export const storedTrainConfigSchema = z.strictObject({ ...shape, threads: shape.threads.optional(), precision: shape.precision.default('fp32') });
/** Any subset of a TrainConfig (what a config file or the command line gives). Strict. */
export const partialTrainConfigSchema = z.strictObject(shape).partial();

// The schema and the TrainConfig interface must describe the same keys and types.
type Parsed = z.output<typeof trainConfigSchema>;
type Same<A, B> = [A] extends [B] ? ([B] extends [A] ? true : false) : false;
const _sameKeys: Same<keyof Parsed, keyof TrainConfig> = true;
const _assignable: Parsed extends TrainConfig ? true : false = true;
void _sameKeys;
void _assignable;

/** The command-line flag of each config key. */
export function optionFlag(key: ConfigKey): string {
  return `--${key.replace(/[A-Z0-9]+/g, (m) => `-${m.toLowerCase()}`).replace(/-(\d)/g, '$1')}`;
}

/** Where a value came from: the command line, a config file (its path as typed), or the defaults. */
export type ConfigSource = { kind: 'cli' } | { kind: 'file'; path: string } | { kind: 'default' };

/** How a key is named in a message from that source: `--batch-size`, `config.json: "batchSize"`, `batchSize (default)`. */
export function describeKey(key: string, source: ConfigSource): string {
  switch (source.kind) {
    case 'cli':
      return (CONFIG_KEYS as string[]).includes(key) ? optionFlag(key as ConfigKey) : `--${key}`;
    case 'file':
      return `${source.path}: ${JSON.stringify(key)}`;
    case 'default':
      return `${optionFlag(key as ConfigKey)} (default)`;
  }
}

/** A configuration that cannot run; the message names the option as the user wrote it. */
export class ConfigError extends InputError {
  override readonly name = 'ConfigError';
  /** Every problem found, one line each (the message joins them with '; '). */
  readonly problems: string[];
  constructor(problems: string[]) {
    super(problems.join('; '));
    this.problems = problems;
  }
}

/** The config key a mistyped one probably meant ('batch-size' -> 'batchSize', 'lrate' -> 'lr'). */
export function suggestKey(unknown: string): ConfigKey | undefined {
  const camel = unknown.replace(/[-_]+([a-z0-9])/gi, (_, c: string) => c.toUpperCase());
  const exact = CONFIG_KEYS.find((k) => k.toLowerCase() === camel.toLowerCase());
  if (exact) return exact;
  let best: ConfigKey | undefined;
  let bestDistance = Infinity;
  for (const key of CONFIG_KEYS) {
    const d = distance(camel.toLowerCase(), key.toLowerCase());
    if (d < bestDistance) {
      bestDistance = d;
      best = key;
    }
  }
  if (bestDistance <= Math.max(1, Math.floor(unknown.length / 3))) return best;
  // A longer spelling of a key ('lrate' -> 'lr', 'epochCount' -> 'epochs' is not: too far).
  const lower = camel.toLowerCase();
  return CONFIG_KEYS.filter((k) => k.length >= 2 && lower.startsWith(k.toLowerCase())).sort((a, b) => b.length - a.length)[0];
}

function formatIssue(issue: z.core.$ZodIssue, source: ConfigSource): string[] {
  if (issue.code === 'unrecognized_keys') {
    return issue.keys.map((key) => {
      const hint = suggestKey(key);
      const where = source.kind === 'file' ? `${source.path}: unknown key ${JSON.stringify(key)}` : `unknown option --${key}`;
      const suggestion = hint === undefined ? '' : source.kind === 'file' ? ` (did you mean ${JSON.stringify(hint)}?)` : ` (did you mean ${optionFlag(hint)}?)`;
      return where + suggestion;
    });
  }
  const [key, ...rest] = issue.path;
  if (key === undefined) {
    const where = source.kind === 'file' ? `${source.path}: ` : '';
    return [`${where}must be a JSON object with training options, got ${showValue((issue as Issue).input)}`];
  }
  const entry = rest.length > 0 && typeof rest[0] === 'number' ? ` entry ${rest[0] + 1}` : '';
  return [`${describeKey(String(key), source)}${entry} ${issue.message}`];
}

/**
 * Checks part of a configuration from one source (`--config` file contents or the command
 * line's values) and returns it typed. Throws a ConfigError naming every problem.
 */
export function parseConfigPart(input: unknown, source: ConfigSource): Partial<TrainConfig> {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    const where = source.kind === 'file' ? `${source.path}: ` : '';
    throw new ConfigError([`${where}must be a JSON object with training options, got ${showValue(input)}`]);
  }
  const result = partialTrainConfigSchema.safeParse(input);
  if (!result.success) throw new ConfigError(result.error.issues.flatMap((issue) => formatIssue(issue, source)));
  // Drop keys given as undefined so they do not override lower layers.
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(result.data)) if (v !== undefined) out[k] = v;
  return out as Partial<TrainConfig>;
}

export interface ResolvedConfig {
  config: TrainConfig;
  /** Where each key's value came from, to name it in later messages. */
  sources: Record<ConfigKey, ConfigSource>;
}

/**
 * Merges defaults <- config file <- command line (later layers win), each layer already
 * checked by parseConfigPart, and checks the result as a whole.
 */
export function resolveConfig(
  defaults: TrainConfig,
  layers: { values: Partial<TrainConfig>; source: ConfigSource }[],
): ResolvedConfig {
  const merged: Record<string, unknown> = { ...defaults };
  const sources = {} as Record<ConfigKey, ConfigSource>;
  for (const key of CONFIG_KEYS) sources[key] = { kind: 'default' };
  for (const layer of layers) {
    for (const [key, value] of Object.entries(layer.values)) {
      if (value === undefined) continue;
      merged[key] = value;
      sources[key as ConfigKey] = layer.source;
    }
  }
  const result = trainConfigSchema.safeParse(merged);
  if (!result.success) {
    throw new ConfigError(
      result.error.issues.flatMap((issue) => {
        const key = issue.path[0];
        const source = typeof key === 'string' && key in sources ? sources[key as ConfigKey] : ({ kind: 'default' } as const);
        return formatIssue(issue, source);
      }),
    );
  }
  return { config: result.data as TrainConfig, sources };
}

/** What the post-load checks need to know about the data. */
export interface DataShape {
  /** Pixels (features) per image. */
  features: number;
  height: number;
  width: number;
  classes: number;
  /** Images left for training after the validation split. */
  trainCount: number;
}

/**
 * The checks that need the data: the first layer must match the pixel count, the last the
 * class count, a batch must fit in the training split, and the whole run in this machine's
 * memory and its checkpoint in a file that can be read back (see footprint.ts). Throws a ConfigError.
 */
export function checkConfigAgainstData(
  config: FootprintConfig,
  data: DataShape,
  sources: Partial<Record<ConfigKey, ConfigSource>> = {},
  limits?: FootprintLimits,
): void {
  const name = (key: ConfigKey) => describeKey(key, sources[key] ?? { kind: 'cli' });
  const problems: string[] = [];
  const first = config.layers[0]!;
  const last = config.layers[config.layers.length - 1]!;
  const size = data.height * data.width === data.features && data.height > 1 ? ` (${data.height}x${data.width})` : '';
  if (first !== data.features) {
    problems.push(`${name('layers')} starts with ${first} inputs but the data has ${data.features} pixels per image${size}`);
  }
  if (last !== data.classes) {
    problems.push(`${name('layers')} ends with ${last} outputs but the data has ${data.classes} classes`);
  }
  if (config.batchSize > data.trainCount) {
    problems.push(`${name('batchSize')} ${config.batchSize} is larger than the training split (${data.trainCount} images)`);
  }
  // Too large to train or save here: refused before anything is allocated or written.
  if (problems.length === 0) problems.push(...footprintProblems(config, name, limits));
  if (problems.length > 0) throw new ConfigError(problems);
}
