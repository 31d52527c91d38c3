/**
 * What a command that trains checks before it starts, for one run (train) or a series (compare,
 * sweep): the backend its options ask for, the config against the loaded data, and the data line
 * it prints.
 */
import type { Dataset } from '../data/types.js';
import { heldOutCount } from '../data/split.js';
import { selectKernels } from '../kernels/index.js';
import { formatCount } from '../format.js';
import { checkConfigAgainstData, ConfigError, describeKey, type ResolvedConfig } from '../train/schema.js';
import type { TrainConfig } from '../train/types.js';

/**
 * The kernels: --backend / --threads (or the config file) when given, else DENSETRAIN_BACKEND /
 * DENSETRAIN_THREADS, else auto. A thread count the backend refuses names the option.
 */
export function selectBackend(resolved: ResolvedConfig): ReturnType<typeof selectKernels> {
  const { config, sources } = resolved;
  const backend = sources.backend.kind === 'default' ? undefined : config.backend;
  try {
    return selectKernels({ backend, threads: config.threads });
  } catch (error) {
    if (error instanceof RangeError && config.threads !== undefined && /thread/i.test(error.message) && !/^DENSETRAIN_/.test(error.message)) {
      throw new ConfigError([`${describeKey('threads', sources.threads)} ${config.threads}: ${error.message}`]);
    }
    throw error;
  }
}

/** The training split's size for the configured validation fraction, the way the trainer splits. */
function trainSplitCount(dataset: Dataset, config: TrainConfig, resolved: ResolvedConfig): number {
  try {
    return dataset.train.count - heldOutCount(dataset.train.count, config.valSplit);
  } catch (error) {
    throw new ConfigError([`${describeKey('valSplit', resolved.sources.valSplit)} ${config.valSplit}: ${(error as Error).message}`]);
  }
}

/** The checks that need the data (layer sizes, batch size, split); returns the training-split size. */
export function checkDataFor(dataset: Dataset, resolved: ResolvedConfig): number {
  const { config } = resolved;
  const trainCount = trainSplitCount(dataset, config, resolved);
  checkConfigAgainstData(
    config,
    { features: dataset.train.features, height: dataset.train.height, width: dataset.train.width, classes: dataset.classes, trainCount },
    resolved.sources,
  );
  return trainCount;
}

/** "data: mnist-sample: 7,200 train, 800 validation, 2,000 test images, 28x28, 10 classes" */
export function dataLine(dataset: Dataset, trainCount: number): string {
  return (
    `data: ${dataset.name}: ${formatCount(trainCount)} train, ${formatCount(dataset.train.count - trainCount)} validation, ` +
    `${formatCount(dataset.test.count)} test images, ${dataset.train.height}x${dataset.train.width}, ${dataset.classes} classes`
  );
}
