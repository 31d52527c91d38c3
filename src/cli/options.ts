/**
 * Training options on the command line: declared once (train, and later compare / sweep reuse
 * them), turned from strings into typed values, checked by the same schema as config files.
 */
import { Command, Option } from 'commander';
import { ACTIVATION_NAMES } from '../kernels/types.js';
import {
  BACKEND_CHOICES,
  INIT_NAMES,
  OPTIMIZER_NAMES,
  parseConfigPart,
  resolveConfig,
  SCHEDULE_NAMES,
  type ConfigKey,
  type ResolvedConfig,
} from '../train/schema.js';
import type { TrainConfig } from '../train/types.js';
import { FileReadError, readRegularFile } from '../regular-file.js';
import { UsageError } from './errors.js';

type Kind = 'number' | 'layers' | 'string' | 'boolean';

interface TrainOptionSpec {
  key: ConfigKey;
  flags: string;
  kind: Kind;
  help: string;
  /** Also declare --no-<flag> (booleans a config file may have turned on). */
  negatable?: boolean;
  /** What --help says the default is, when not DEFAULT_CONFIG's value. */
  defaultText?: string;
}

const TRAIN_OPTIONS: TrainOptionSpec[] = [
  { key: 'data', flags: '--data <spec>', kind: 'string', help: 'dataset: mnist-sample, mnist, fashion-mnist, or a directory / file path' },
  { key: 'layers', flags: '--layers <sizes>', kind: 'layers', help: 'layer sizes, inputs first, classes last, e.g. 784,128,64,10' },
  { key: 'activation', flags: '--activation <name>', kind: 'string', help: `hidden activation: ${ACTIVATION_NAMES.join(', ')}` },
  { key: 'alpha', flags: '--alpha <x>', kind: 'number', help: 'leaky_relu slope / initial prelu slope (any finite number)' },
  { key: 'init', flags: '--init <name>', kind: 'string', help: `weight initialisation: ${INIT_NAMES.join(', ')}` },
  { key: 'optimizer', flags: '--optimizer <name>', kind: 'string', help: `optimizer: ${OPTIMIZER_NAMES.join(', ')}` },
  { key: 'lr', flags: '--lr <x>', kind: 'number', help: 'learning rate (> 0)' },
  { key: 'momentum', flags: '--momentum <x>', kind: 'number', help: 'SGD momentum in [0, 1)' },
  { key: 'nesterov', flags: '--nesterov', kind: 'boolean', help: 'Nesterov momentum (SGD)', negatable: true },
  { key: 'beta1', flags: '--beta1 <x>', kind: 'number', help: 'Adam beta1 in [0, 1)' },
  { key: 'beta2', flags: '--beta2 <x>', kind: 'number', help: 'Adam beta2 in [0, 1)' },
  { key: 'eps', flags: '--eps <x>', kind: 'number', help: 'Adam epsilon (> 0)' },
  { key: 'schedule', flags: '--schedule <name>', kind: 'string', help: `learning-rate schedule: ${SCHEDULE_NAMES.join(', ')}` },
  { key: 'stepSize', flags: '--step-size <n>', kind: 'number', help: 'step schedule: epochs between lr drops' },
  { key: 'gamma', flags: '--gamma <x>', kind: 'number', help: 'step schedule: lr multiplier at each drop (> 0)' },
  { key: 'l2', flags: '--l2 <x>', kind: 'number', help: 'L2 weight penalty (>= 0)' },
  { key: 'epochs', flags: '--epochs <n>', kind: 'number', help: 'epochs (>= 1)' },
  { key: 'batchSize', flags: '--batch-size <n>', kind: 'number', help: 'mini-batch size (>= 1)' },
  { key: 'valSplit', flags: '--val-split <x>', kind: 'number', help: 'fraction of training data held out for validation, in [0, 1)' },
  { key: 'patience', flags: '--patience <n>', kind: 'number', help: 'early stopping after n epochs without validation improvement (0 = off)' },
  { key: 'seed', flags: '--seed <n>', kind: 'number', help: 'random seed (integer)' },
  { key: 'standardize', flags: '--standardize', kind: 'boolean', help: 'standardise pixels with the training mean/std', negatable: true },
  { key: 'backend', flags: '--backend <name>', kind: 'string', help: `kernels: ${BACKEND_CHOICES.join(', ')}`, defaultText: '$DENSETRAIN_BACKEND, else auto' },
  { key: 'precision', flags: '--precision <name>', kind: 'string', help: 'GEMM precision: fp32, or bf16 mixed precision (bfloat16 operands, float32 sums; fp32 with a notice where the CPU has no bf16 instructions)' },
  { key: 'threads', flags: '--threads <n>', kind: 'number', help: 'native and wasm backend threads (>= 1)', defaultText: '$DENSETRAIN_THREADS, else the CPU count' },
];

function formatDefault(value: unknown): string {
  if (typeof value === 'boolean') return value ? 'on' : 'off';
  return Array.isArray(value) ? value.join(',') : String(value);
}

/**
 * Declares every TrainConfig option, and --config, on a command. Defaults show in --help only;
 * a switch that can be turned off shows its --no- form beside it (--nesterov is on by default).
 */
export function addTrainConfigOptions(command: Command, defaults: Readonly<TrainConfig>): Command {
  for (const spec of TRAIN_OPTIONS) {
    const value = defaults[spec.key];
    const shown = spec.defaultText ?? (value === undefined ? undefined : formatDefault(value));
    const help = shown === undefined ? spec.help : `${spec.help} (default: ${shown})`;
    command.addOption(new Option(spec.flags, help));
    if (spec.negatable) command.addOption(new Option(`--no-${spec.flags.slice(2)}`, `turn ${spec.flags} off`));
  }
  command.option('--config <file>', 'JSON file of training options, camelCase keys like {"lr": 0.01, "batchSize": 32}; flags override it');
  return command;
}

/** A number if the text is one, else the text itself (so the schema reports "must be a number, got "abc""). */
export function numberOrText(raw: string): number | string {
  const text = raw.trim();
  if (text === '') return raw;
  if (text === 'NaN') return Number.NaN;
  const n = Number(text);
  return Number.isNaN(n) ? raw : n;
}

/** "784,128,10" -> [784, 128, 10]; a malformed list is a UsageError naming --layers. */
export function parseLayers(raw: string): number[] {
  const parts = raw.split(',').map((s) => s.trim());
  const values = parts.map(numberOrText);
  if (parts.some((p) => p === '') || values.some((v) => typeof v !== 'number')) {
    throw new UsageError(`--layers must be comma-separated layer sizes like 784,128,10, got ${JSON.stringify(raw)}`);
  }
  return values as number[];
}

/** The TrainConfig values given as flags, typed and checked (a ConfigError names the flag). */
export function configFromFlags(options: Record<string, unknown>): Partial<TrainConfig> {
  const values: Record<string, unknown> = {};
  for (const spec of TRAIN_OPTIONS) {
    const raw = options[spec.key];
    if (raw === undefined) continue;
    if (spec.kind === 'boolean') values[spec.key] = raw;
    else if (spec.kind === 'layers') values[spec.key] = parseLayers(String(raw));
    else if (spec.kind === 'number') values[spec.key] = numberOrText(String(raw));
    else values[spec.key] = raw;
  }
  return parseConfigPart(values, { kind: 'cli' });
}

/** A config file is a few hundred bytes; anything beyond this is not one. */
export const MAX_CONFIG_BYTES = 1 << 20;
/** Deepest nesting of arrays and objects a config file may have (a real one has 2). */
const MAX_CONFIG_DEPTH = 32;

/** The deepest nesting of [ and { outside strings (JSON text). */
function jsonDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (c === 0x5d || c === 0x7d) depth--;
  }
  return deepest;
}

/** Reads and checks a --config file; every problem names the file and key. */
export async function configFromFile(path: string): Promise<Partial<TrainConfig>> {
  let bytes: Buffer;
  try {
    bytes = await readRegularFile(path, { maxBytes: MAX_CONFIG_BYTES, what: 'a config file' });
  } catch (error) {
    if (error instanceof FileReadError) throw new UsageError(`--config ${path}: ${error.problem}`);
    throw error;
  }
  if ((bytes[0] === 0xff && bytes[1] === 0xfe) || (bytes[0] === 0xfe && bytes[1] === 0xff)) {
    throw new UsageError(`${path}: is UTF-16 text; save it as UTF-8 (JSON config files are UTF-8)`);
  }
  // A UTF-8 byte-order mark (Windows editors write one) is not part of the JSON.
  const text = bytes.toString('utf8').replace(/^\uFEFF/, '');
  if (jsonDepth(text) > MAX_CONFIG_DEPTH) {
    throw new UsageError(`${path}: nested more than ${MAX_CONFIG_DEPTH} levels deep; a config file is one JSON object of options`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new UsageError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  return parseConfigPart(json, { kind: 'file', path });
}

/** defaults <- --config file <- flags, checked; the sources name options in later messages. */
export async function resolveTrainOptions(options: Record<string, unknown>, defaults: Readonly<TrainConfig>): Promise<ResolvedConfig> {
  const fromFlags = configFromFlags(options);
  const layers: Parameters<typeof resolveConfig>[1] = [];
  if (typeof options['config'] === 'string') {
    layers.push({ values: await configFromFile(options['config']), source: { kind: 'file', path: options['config'] } });
  }
  layers.push({ values: fromFlags, source: { kind: 'cli' } });
  return resolveConfig(defaults, layers);
}
