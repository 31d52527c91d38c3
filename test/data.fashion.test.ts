import { existsSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { loadDataset } from '../src/data/registry.js';

const SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';
const installed = existsSync(`${SYSTEM_DIR}/train-images-idx3-ubyte.gz`);
const reason = installed
  ? ''
  : ` (SKIPPED: ${SYSTEM_DIR} not found; apt-get install dataset-fashion-mnist to run this test)`;

describe(`Fashion-MNIST from the Debian package dataset-fashion-mnist${reason}`, () => {
  it.skipIf(!installed)('loads 60000 / 10000 28x28 images with the ten Fashion class names', async () => {
    // Only the system directory: no DENSETRAIN_DATA, an empty home.
    const d = await loadDataset('fashion-mnist', { env: {}, homeDir: '/nonexistent-home' });
    expect(d.source).toBe(SYSTEM_DIR);
    expect(d.train).toMatchObject({ count: 60000, height: 28, width: 28, features: 784 });
    expect(d.test).toMatchObject({ count: 10000, height: 28, width: 28, features: 784 });
    expect(d.classNames).toEqual([
      'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
    ]);
    // Fashion-MNIST is balanced: 6000 per class in train, 1000 in test.
    const counts = (labels: Uint8Array) => {
      const c = new Array<number>(10).fill(0);
      for (const l of labels) c[l]!++;
      return c;
    };
    expect(counts(d.train.labels)).toEqual(new Array(10).fill(6000));
    expect(counts(d.test.labels)).toEqual(new Array(10).fill(1000));
  });
});
