/**
 * Small synthetic image datasets for fast training tests: each class has a random prototype
 * image; samples are the prototype plus noise (so a small MLP learns them in an epoch or two).
 * `randomLabels` makes the labels independent of the images (a model can only memorise them:
 * validation loss rises, which exercises early stopping).
 */
import { Rng } from '../../src/rng.js';
import type { Dataset, ImageSet } from '../../src/data/types.js';

export interface SyntheticOptions {
  train?: number;
  test?: number;
  side?: number;
  classes?: number;
  noise?: number;
  seed?: number;
  randomLabels?: boolean;
}

export function syntheticDataset(options: SyntheticOptions = {}): Dataset {
  const side = options.side ?? 8;
  const classes = options.classes ?? 4;
  const noise = options.noise ?? 60;
  const rng = new Rng(options.seed ?? 7);
  const features = side * side;
  const prototypes = Array.from({ length: classes }, () => Uint8Array.from({ length: features }, () => rng.int(256)));
  const make = (count: number): ImageSet => {
    const images = new Uint8Array(count * features);
    const labels = new Uint8Array(count);
    for (let i = 0; i < count; i++) {
      const c = rng.int(classes);
      const proto = prototypes[c]!;
      for (let p = 0; p < features; p++) images[i * features + p] = Math.max(0, Math.min(255, Math.round(proto[p]! + noise * rng.normal())));
      labels[i] = options.randomLabels ? rng.int(classes) : c;
    }
    return { count, height: side, width: side, features, images, labels };
  };
  return {
    name: 'synthetic',
    source: 'test/helpers/synthetic-data.ts',
    classes,
    classNames: Array.from({ length: classes }, (_, i) => `class ${i}`),
    train: make(options.train ?? 400),
    test: make(options.test ?? 100),
  };
}
