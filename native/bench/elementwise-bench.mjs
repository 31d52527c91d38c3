// Quick timing of the native element-wise kernels (not a test, no assertions).
//   node native/bench/elementwise-bench.mjs [--threads N]
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const addon = createRequire(import.meta.url)(process.env.DENSETRAIN_NATIVE_PATH || join(root, 'build', 'Release', 'densetrain.node'));
const args = process.argv.slice(2);
addon.setThreads(args[0] === '--threads' ? Number(args[1]) : 1);

function time(name, elements, fn) {
  fn();
  let best = Infinity;
  const until = Date.now() + 600;
  while (Date.now() < until) {
    const t0 = process.hrtime.bigint();
    fn();
    best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
  }
  console.log(`${name.padEnd(44)} ${(best * 1e6).toFixed(1).padStart(9)} us  ${(elements / best / 1e9).toFixed(2)} G elements/s`);
}

const rows = 256;
const cols = 1024;
const n = rows * cols;
const z = addon.alloc(n);
const h = addon.alloc(n);
const dh = addon.alloc(n);
const dz = addon.alloc(n);
const bias = addon.alloc(cols);
for (let i = 0; i < n; i++) {
  z[i] = Math.sin(i) * 3;
  dh[i] = Math.cos(i);
}
const names = ['relu', 'leaky_relu', 'prelu', 'sigmoid', 'tanh', 'linear'];
for (let kind = 0; kind < 6; kind++) {
  time(`biasActivation ${names[kind]} ${rows}x${cols}`, n, () => addon.biasActivation(rows, cols, z, bias, kind, 0.1, h));
  time(`activationBackward ${names[kind]} ${rows}x${cols}`, n, () => addon.activationBackward(rows, cols, kind, 0.1, z, h, dh, dz));
}
time(`biasGrad ${rows}x${cols}`, n, () => addon.biasGrad(rows, cols, dz, bias));
const labels = addon.alloc(256);
for (let i = 0; i < 256; i++) labels[i] = i % 10;
const probs = addon.alloc(2560);
const dlog = addon.alloc(2560);
time('softmaxCrossEntropy 256x10', 2560, () => addon.softmaxCrossEntropy(256, 10, z, labels, probs, dlog));
const P = 1 << 20;
const p = addon.alloc(P);
const g = addon.alloc(P);
const m = addon.alloc(P);
const v = addon.alloc(P);
time('sgdStep momentum nesterov 1M', P, () => addon.sgdStep(P, p, g, m, 0.01, 0.9, true, 1e-4));
time('adamStep 1M', P, () => addon.adamStep(P, p, g, m, v, 1e-3, 0.9, 0.999, 1e-8, 1e-4, 3));
time('sumSquares 1M', P, () => addon.sumSquares(P, p));
