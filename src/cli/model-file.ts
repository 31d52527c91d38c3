/**
 * --model FILE for the commands that read a trained model (info, export, predict): loads it
 * (a run folder means its model.safetensors), with --activation / --alpha for safetensors files
 * that lack densetrain's metadata, and says where it came from: the file, its kind, and the run
 * folder's record (metrics.json, or metrics.jsonl while the run is going) when it sits in one.
 */
import { readFile, stat } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import type { Command } from 'commander';
import { createReferenceKernels } from '../kernels/reference.js';
import type { ActivationName, Kernels } from '../kernels/types.js';
import type { Model } from '../model/mlp.js';
import { loadModel, MODEL_FILE } from '../model/load.js';
import { METRICS_LOG_FILE, parseMetricsLog } from '../train/metrics-log.js';
import { readSafetensors } from '../model/safetensors.js';
import { parseConfigPart } from '../train/schema.js';
import type { RunRecord } from '../train/types.js';
import { numberOrText } from './options.js';

export interface ModelFileOptions {
  model: string;
  activation?: string;
  alpha?: string;
}

/** The options every --model command takes. */
export function addModelOptions(command: Command, { required = true } = {}): Command {
  const help = 'model.safetensors (or a run folder), or a PyTorch-style safetensors state dict';
  return (required ? command.requiredOption('--model <file>', help) : command.option('--model <file>', help))
    .option('--activation <name>', 'hidden activation (needed for files without densetrain metadata)')
    .option('--alpha <x>', 'leaky_relu slope for files without densetrain metadata');
}

export interface RunOrigin {
  folder: string;
  data: string;
  /** 'completed', 'early-stopping', ..., or 'in progress' / 'incomplete' when the folder has no final record. */
  status: string;
  epochs: number;
  bestEpoch: number | null;
  testAccuracy: number | null;
  backend: string | null;
  finishedAt: string | null;
  /** The training images' shape (what predict resizes to). */
  image: { height: number; width: number };
}

export interface ModelOrigin {
  file: string;
  kind: 'densetrain model' | 'densetrain checkpoint' | 'safetensors state dict without densetrain metadata';
  bytes: number;
  modified: string;
  run: RunOrigin | null;
}

export interface LoadedModelFile {
  model: Model;
  origin: ModelOrigin;
}

async function modelFilePath(path: string): Promise<string> {
  try {
    if ((await stat(path)).isDirectory()) return join(path, MODEL_FILE);
  } catch {
    // Missing: loadModel names the path.
  }
  return path;
}

async function runOrigin(folder: string): Promise<RunOrigin | null> {
  try {
    const record = JSON.parse(await readFile(join(folder, 'metrics.json'), 'utf8')) as RunRecord;
    return {
      folder,
      data: record.dataset.name,
      status: record.stopReason,
      epochs: record.epochs.length,
      bestEpoch: record.bestEpoch,
      testAccuracy: record.test?.accuracy ?? null,
      backend: `${record.backend.backend} (${record.backend.isa})`,
      finishedAt: record.finishedAt,
      image: { height: record.dataset.height, width: record.dataset.width },
    };
  } catch {
    // No final record: the live one, if any.
  }
  try {
    const log = parseMetricsLog(await readFile(join(folder, METRICS_LOG_FILE), 'utf8'));
    if (!log.start) return null;
    return {
      folder,
      data: log.start.dataset.name,
      status: log.end ? log.end.stopReason : 'in progress (or stopped without a record)',
      epochs: log.epochs.length,
      bestEpoch: log.end?.bestEpoch ?? null,
      testAccuracy: log.end?.test?.accuracy ?? null,
      backend: `${log.start.backend.backend} (${log.start.backend.isa})`,
      finishedAt: log.end?.time ?? null,
      image: { height: log.start.dataset.height, width: log.start.dataset.width },
    };
  } catch {
    return null;
  }
}

/** Loads --model with --activation / --alpha checked like train's options. `kernels`: default the reference backend (enough for a summary or an export). */
export async function loadModelFile(options: ModelFileOptions, kernels?: Kernels): Promise<LoadedModelFile> {
  const checked = parseConfigPart(
    {
      ...(options.activation !== undefined ? { activation: options.activation } : {}),
      ...(options.alpha !== undefined ? { alpha: numberOrText(options.alpha) } : {}),
    },
    { kind: 'cli' },
  );
  const model = await loadModel(options.model, {
    kernels: kernels ?? createReferenceKernels(),
    capacity: 64,
    ...(checked.activation !== undefined ? { activation: checked.activation as ActivationName } : {}),
    ...(checked.alpha !== undefined ? { alpha: checked.alpha } : {}),
  });
  try {
    const file = await modelFilePath(options.model);
    const [{ metadata }, info] = await Promise.all([readSafetensors(file), stat(file)]);
    const kind =
      metadata['format'] === 'densetrain-model'
        ? 'densetrain model'
        : metadata['format'] === 'densetrain-checkpoint'
          ? 'densetrain checkpoint'
          : 'safetensors state dict without densetrain metadata';
    const origin: ModelOrigin = { file: resolve(file), kind, bytes: info.size, modified: info.mtime.toISOString(), run: await runOrigin(dirname(resolve(file))) };
    return { model, origin };
  } catch (error) {
    model.dispose();
    throw error;
  }
}
