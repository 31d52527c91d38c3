/**
 * `densetrain predict --model FILE IMAGE...`: the top classes of each image. IMAGE is a PNG (any
 * colour type and bit depth; resized to the model's input), an IDX image file (raw or .gz) or a
 * CSV file in densetrain's `label,pixel...` layout (every image in it). A bad file gets one line
 * on stderr and the others are still predicted; the exit code is then 2.
 */
import { basename } from 'node:path';
import { readImageForModel, isPng } from '../../data/image-file.js';
import { DataError } from '../../data/errors.js';
import { describeLeadingBytes, isGzip, openDataFile, readExactly } from '../../data/files.js';
import type { ImageSet } from '../../data/types.js';
import { selectKernels } from '../../kernels/index.js';
import type { Model } from '../../model/mlp.js';
import { errorLine, EXIT_USAGE, ExitRequest, isUsageError, UsageError } from '../errors.js';
import { formatProbability } from '../../format.js';
import { type Io } from '../io.js';
import type { RegisterCommand } from '../context.js';
import { addModelOptions, loadModelFile, type ModelFileOptions, type ModelOrigin } from '../model-file.js';
import { predictImageSet } from '../../train/predict.js';

interface PredictOptions extends ModelFileOptions {
  invert?: boolean;
  json?: boolean;
  top: string;
  verbose?: boolean;
}

export interface Prediction {
  file: string;
  /** Position in an IDX or CSV file (absent for a PNG). */
  index?: number;
  /** The label an IDX/CSV file gives (CSV always has one). */
  label?: number;
  /** rest: the sum of the other classes' probabilities (1 - probability, exact where it rounds to 1). */
  top: { class: number; name: string; probability: number; rest: number }[];
  /** PNG only: the image looks like a dark digit on a light background after the --invert setting. */
  looksInverted?: boolean;
}

/** The image shape the model was trained on: from its run folder, else the square its input count makes. */
function modelImageShape(model: Model, origin: ModelOrigin): { height: number; width: number } | null {
  const image = origin.run?.image;
  if (image && image.height * image.width === model.inputSize) return image;
  const side = Math.round(Math.sqrt(model.inputSize));
  return side * side === model.inputSize ? { height: side, width: side } : null;
}

type FileKind = 'png' | 'idx' | 'csv';

async function sniff(file: string): Promise<FileKind> {
  const opened = await openDataFile(file);
  const head = new Uint8Array(Math.min(8, opened.size));
  try {
    if (opened.size === 0) throw new DataError(file, 'empty file (0 bytes): not an image');
    await readExactly(opened, file, head, 0, head.length, 0);
  } finally {
    await opened.handle.close().catch(() => undefined);
  }
  if (isPng(head)) return 'png';
  const csvName = /\.csv(\.gz)?$/i.test(file);
  if (isGzip(head)) return csvName ? 'csv' : 'idx';
  if (head.length >= 4 && head[0] === 0 && head[1] === 0 && head[2] === 0x08) return 'idx';
  if (csvName) return 'csv';
  throw new DataError(file, `not an image densetrain reads (PNG, IDX or CSV): it starts with ${describeLeadingBytes(head)}`);
}

function topOf(probs: Float32Array, row: number, classes: number, names: string[], k: number): Prediction['top'] {
  const order = Array.from({ length: classes }, (_, c) => c).sort((a, b) => probs[row * classes + b]! - probs[row * classes + a]! || a - b);
  const base = row * classes;
  const restOf = (c: number) => order.reduce((sum, j) => (j === c ? sum : sum + probs[base + j]!), 0);
  return order.slice(0, k).map((c) => ({ class: c, name: names[c] ?? String(c), probability: probs[base + c]!, rest: restOf(c) }));
}

async function readSet(file: string, kind: 'idx' | 'csv', classes: number): Promise<ImageSet> {
  const data = await import('../../data/index.js');
  if (kind === 'csv') return data.readCsvFile(file, { classes });
  const idx = await data.readIdxImages(file);
  return { count: idx.count, height: idx.height, width: idx.width, features: idx.height * idx.width, images: idx.images, labels: new Uint8Array(idx.count) };
}

async function predictFile(file: string, model: Model, origin: ModelOrigin, options: PredictOptions, k: number): Promise<Prediction[]> {
  const names = model.classNames ?? [];
  const kind = await sniff(file);
  if (kind === 'png') {
    const shape = modelImageShape(model, origin);
    if (shape === null) throw new DataError(file, `the model takes ${model.inputSize} inputs, which is not a square image, and no run folder says its shape; give the images as IDX or CSV`);
    const image = await readImageForModel(file, shape, { invert: options.invert === true });
    const set: ImageSet = { count: 1, height: shape.height, width: shape.width, features: model.inputSize, images: image.pixels, labels: new Uint8Array(1) };
    const probs = predictImageSet(model, set, model.scaling);
    return [{ file, top: topOf(probs, 0, model.classes, names, k), looksInverted: image.looksInverted }];
  }
  const set = await readSet(file, kind, model.classes);
  if (set.features !== model.inputSize) {
    throw new DataError(file, `holds images of ${set.features} pixels (${set.height}x${set.width}) but the model takes ${model.inputSize} inputs`);
  }
  const probs = predictImageSet(model, set, model.scaling);
  const out: Prediction[] = [];
  for (let i = 0; i < set.count; i++) {
    out.push({ file, index: i, ...(kind === 'csv' ? { label: set.labels[i]! } : {}), top: topOf(probs, i, model.classes, names, k) });
  }
  return out;
}

/** "img.png: 7 (1 − 2.1e-10), 1 (1.9e-10), 9 (2.0e-11)": each class with its probability in parentheses, which keep a class named 0 apart from a probability near 1. */
function printPrediction(io: Io, p: Prediction): void {
  const where = p.index === undefined ? p.file : `${p.file}#${p.index}`;
  const label = p.label === undefined ? '' : ` (label ${p.label})`;
  io.out(`${where}${label}: ${p.top.map((t) => `${t.name} (${formatProbability(t.probability, t.rest)})`).join(', ')}`);
}

export const registerPredictCommand: RegisterCommand = (program, { io }) => {
  const command = program
    .command('predict')
    .description('print the most likely classes of each image: PNG files (resized to the model input), IDX image files, CSV files')
    .argument('<images...>', 'PNG, IDX (raw or .gz) or CSV files');
  addModelOptions(command)
    .option('--invert', 'invert the pixels (for dark digits on a light background; MNIST digits are light on dark)')
    .option('--top <k>', 'classes shown per image', '3')
    .option('--json', 'print a JSON array: [{file, index?, label?, top: [{class, name, probability, rest}], looksInverted?}] (rest: the other classes\' probabilities summed)')
    .option('--verbose', 'print stack traces on errors')
    .action(async (images: string[], options: PredictOptions) => {
      const k = Number(options.top);
      if (!Number.isInteger(k) || k < 1) throw new UsageError(`--top must be a whole number >= 1, got ${JSON.stringify(options.top)}`);
      const { kernels } = selectKernels();
      const { model, origin } = await loadModelFile(options, kernels);
      const results: Prediction[] = [];
      let failed = false;
      try {
        for (const file of images) {
          let predictions: Prediction[];
          try {
            predictions = await predictFile(file, model, origin, options, Math.min(k, model.classes));
          } catch (error) {
            if (!isUsageError(error)) throw error;
            io.err(`densetrain: ${errorLine(error)}`);
            failed = true;
            continue;
          }
          for (const p of predictions) {
            if (options.json) results.push(p);
            else printPrediction(io, p);
            if (p.looksInverted) {
              io.err(
                options.invert
                  ? `densetrain: hint: ${basename(file)} still has a light background after --invert; MNIST digits are light on dark: try without --invert`
                  : `densetrain: hint: ${basename(file)} looks like a dark digit on a light background; MNIST digits are light on dark: try --invert`,
              );
            }
          }
        }
      } finally {
        model.dispose();
      }
      if (options.json) io.out(JSON.stringify(results, null, 2));
      if (failed) throw new ExitRequest(EXIT_USAGE);
    });
};
