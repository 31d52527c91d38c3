/**
 * The one check of what densetrain reads from a model or checkpoint file's __metadata__: the
 * format version, architecture, scaling, class names, and for checkpoints the config (through
 * the config's own schema) and the training state. The sha256 checksums prove a file is the one
 * written, not that what was written makes sense (a file can be written by anyone, with valid
 * checksums): every field goes through a zod schema here, and a file that fails is refused with
 * a CheckpointError naming the file and the field (`training.epoch must be an integer >= 0, got -3`).
 */
import { z } from 'zod';
import { ACTIVATION_NAMES, type ActivationName } from '../kernels/types.js';
import type { DataFingerprint } from '../data/fingerprint.js';
import type { PixelScaling } from '../data/types.js';
import type { ModelArchitecture } from '../model/mlp.js';
import { CheckpointError } from './safetensors.js';
import { showValue, storedTrainConfigSchema } from './schema.js';
import type { TrainConfig } from './types.js';

/** The only metadata version densetrain reads and writes. */
export const FORMAT_VERSION = '1';

const count = z.number().int().min(0);
const finite = z.number();
const uint32 = z.number().int().min(0).max(0xffffffff);

const architectureSchema = z.object({
  layers: z.array(z.number().int().min(1)).min(2),
  activation: z.enum(ACTIVATION_NAMES as unknown as readonly [ActivationName, ...ActivationName[]]),
  alpha: finite,
});

const scalingSchema = z.union([
  z.object({ kind: z.literal('unit') }),
  z.object({ kind: z.literal('standardize'), mean: finite, std: finite.gt(0) }),
  z.null(),
]);

const classNamesSchema = z.array(z.string()).nullable();

const epochRecordSchema = z.object({
  epoch: z.number().int().min(1),
  trainLoss: finite,
  trainAccuracy: finite.min(0).max(1),
  valLoss: finite.nullable(),
  valAccuracy: finite.min(0).max(1).nullable(),
  lr: finite,
  seconds: finite.min(0),
  samplesPerSecond: finite.min(0),
  preluSlopes: z.array(finite).optional(),
});

const batchRecordSchema = z.object({ epoch: count, batch: count, loss: finite });

const fingerprintSchema = z.object({
  version: z.literal(1),
  trainCount: count,
  testCount: count,
  height: count,
  width: count,
  classes: count,
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

/** The backend a run actually ran on (not 'auto'). */
export const ranOnSchema = z.object({
  backend: z.enum(['native', 'wasm', 'reference']),
  isa: z.string().min(1),
  threads: z.number().int().min(1),
});
export type RanOn = z.output<typeof ranOnSchema>;

const trainingSchema = z
  .object({
    epoch: count,
    batch: count,
    rngEpochStart: z.array(uint32).length(4).refine((s) => s.some((v) => v !== 0), 'must not be all zero'),
    optimizerSteps: count,
    bestEpoch: count,
    bestValLoss: finite.nullable(),
    epochsWithoutImprovement: count,
    epochs: z.array(epochRecordSchema),
    /** Checkpoints written before the history became a tensor keep it here. */
    batches: z.array(batchRecordSchema).optional(),
    partial: z.object({ lossSum: finite, correct: count, seen: count, seconds: finite.min(0) }),
    startedAt: z.string(),
    seconds: finite.min(0),
    dataset: z.object({ trainCount: count, valCount: count, testCount: count }),
    stopReason: z.enum(['completed', 'early-stopping', 'diverged', 'interrupted']).optional(),
    /** Absent in checkpoints written before it was recorded. */
    ranOn: ranOnSchema.optional(),
    data: fingerprintSchema.optional(),
  })
  .superRefine((s, ctx) => {
    if (s.epochs.length !== s.epoch) ctx.addIssue({ code: 'custom', path: ['epochs'], message: `holds ${s.epochs.length} epoch records for ${s.epoch} completed epochs` });
    if (s.bestEpoch > s.epoch) ctx.addIssue({ code: 'custom', path: ['bestEpoch'], message: `is ${s.bestEpoch}, after the ${s.epoch} completed epochs` });
    if (s.epochsWithoutImprovement > s.epoch) ctx.addIssue({ code: 'custom', path: ['epochsWithoutImprovement'], message: `is ${s.epochsWithoutImprovement}, more than the ${s.epoch} completed epochs` });
  });

/** A message for zod's built-in checks, in the words the config's messages use. */
function issueMessage(iss: z.core.$ZodRawIssue): string {
  const got = `got ${showValue(iss.input)}`;
  switch (iss.code) {
    case 'invalid_type':
      return `must be ${iss.expected === 'int' ? 'an integer' : iss.expected === 'number' ? 'a finite number' : `${/^[aeiou]/.test(String(iss.expected)) ? 'an' : 'a'} ${iss.expected}`}, ${got}`;
    case 'too_small':
      return iss.origin === 'array' ? `must hold at least ${String(iss.minimum)} entries` : `must be ${iss.inclusive ? '>=' : '>'} ${String(iss.minimum)}, ${got}`;
    case 'too_big':
      return iss.origin === 'array' ? `must hold at most ${String(iss.maximum)} entries` : `must be ${iss.inclusive ? '<=' : '<'} ${String(iss.maximum)}, ${got}`;
    case 'invalid_value':
      return `must be ${iss.values.map((v) => showValue(v)).join(' or ')}, ${got}`;
    case 'invalid_union':
      return `is not a valid value, ${got}`;
    default:
      return `is not valid (${iss.message ?? iss.code}), ${got}`;
  }
}

function parseField<T>(file: string, key: string, text: string | undefined, schema: z.ZodType<T>): T {
  if (text === undefined) throw new CheckpointError(`${file}: metadata has no ${JSON.stringify(key)} entry`);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    throw new CheckpointError(`${file}: metadata ${JSON.stringify(key)} is not valid JSON`);
  }
  const result = schema.safeParse(json, { error: issueMessage });
  if (!result.success) {
    const issue = result.error.issues[0]!;
    const field = [key, ...issue.path.map(String)].join('.');
    throw new CheckpointError(`${file}: metadata field ${field} ${issue.message}`);
  }
  return result.data;
}

export interface ModelMetadata {
  architecture: ModelArchitecture;
  scaling: PixelScaling | null;
  classNames: string[] | null;
}

/** The training state as stored (the per-batch history lives in a tensor, see checkpoint.ts). */
export type StoredTrainingState = z.output<typeof trainingSchema>;

export interface CheckpointMetadata extends ModelMetadata {
  config: TrainConfig;
  training: StoredTrainingState;
}

function checkVersion(file: string, meta: Record<string, string>, kind: string): void {
  if (meta['version'] !== FORMAT_VERSION) {
    throw new CheckpointError(`${file}: metadata field version: ${kind} version ${showValue(meta['version'] ?? null)} is not supported (this densetrain reads version ${FORMAT_VERSION})`);
  }
}

/** The metadata of a densetrain model file (or the model part of a checkpoint), checked. */
export function parseModelMetadata(file: string, meta: Record<string, string>): ModelMetadata {
  checkVersion(file, meta, meta['format'] === 'densetrain-checkpoint' ? 'checkpoint' : 'model file');
  const architecture = parseField(file, 'architecture', meta['architecture'], architectureSchema);
  // Files written before scaling / class names were recorded have neither.
  const scaling = meta['scaling'] === undefined ? null : parseField(file, 'scaling', meta['scaling'], scalingSchema);
  const classNames = meta['classNames'] === undefined ? null : parseField(file, 'classNames', meta['classNames'], classNamesSchema);
  const classes = architecture.layers[architecture.layers.length - 1]!;
  if (classNames !== null && classNames.length !== classes) {
    throw new CheckpointError(`${file}: metadata field classNames holds ${classNames.length} names for ${classes} classes`);
  }
  return { architecture, scaling, classNames };
}

/** The metadata of a checkpoint, checked (config through the config schema). */
export function parseCheckpointMetadata(file: string, meta: Record<string, string>): CheckpointMetadata {
  const model = parseModelMetadata(file, meta);
  const config = parseField(file, 'config', meta['config'], storedTrainConfigSchema) as TrainConfig;
  const training = parseField(file, 'training', meta['training'], trainingSchema);
  if (config.layers.join(',') !== model.architecture.layers.join(',')) {
    throw new CheckpointError(`${file}: metadata field config.layers [${config.layers.join(', ')}] differs from architecture.layers [${model.architecture.layers.join(', ')}]`);
  }
  return { ...model, config, training };
}

export type { DataFingerprint };
