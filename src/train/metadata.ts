/**
 * The one check of what densetrain reads from a checkpoint's __metadata__: the model's part
 * (format version, architecture, scaling, class names: model/metadata.ts), then the config
 * (through the config's own schema) and the training state. The sha256 checksums prove a file is the one
 * written, not that what was written makes sense (a file can be written by anyone, with valid
 * checksums): every field goes through a zod schema here, and a file that fails is refused with
 * a CheckpointError naming the file and the field (`training.epoch must be an integer >= 0, got -3`).
 */
import { z } from 'zod';
import type { DataFingerprint } from '../data/fingerprint.js';
import { parseField, parseModelMetadata, type ModelMetadata } from '../model/metadata.js';
import { CheckpointError } from '../model/safetensors.js';
import { storedTrainConfigSchema } from './schema.js';
import type { TrainConfig } from './types.js';

const count = z.number().int().min(0);
const finite = z.number();
const uint32 = z.number().int().min(0).max(0xffffffff);

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

/** The training state as stored (the per-batch history lives in a tensor, see checkpoint.ts). */
export type StoredTrainingState = z.output<typeof trainingSchema>;

export interface CheckpointMetadata extends ModelMetadata {
  config: TrainConfig;
  training: StoredTrainingState;
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
