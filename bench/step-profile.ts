/**
 * Where one training step of a small model spends its time (not a test, no assertions):
 *   node dist/bench/step-profile.js [--threads N] [--precision fp32|bf16] [--layers 784,128,64,10] [--batch 128]
 * Runs an epoch's worth of steps (batch filling, Mlp.computeGradients composed from single kernel
 * calls, SGD with Nesterov momentum and L2) on the native backend, on synthetic bytes, twice, and
 * prints the wall time of every kernel call of the second pass, summed per kernel and shape, and
 * what is left outside the kernels (TypeScript, argument checks). Then the same steps with the
 * backend's fused step (one call for forward + loss + backward, then the optimizer), and with the
 * SGD update fused into that call too (Mlp.fuseSgd + trainStep, as train() runs), for comparison.
 */
import { parseArgs } from 'node:util';
import { loadNativeKernels } from '../src/kernels/native.js';
import type { Kernels, Precision } from '../src/kernels/types.js';
import { Mlp } from '../src/model/mlp.js';
import { createOptimizer } from '../src/optim/optimizer.js';
import { Rng } from '../src/rng.js';
import { DEFAULT_CONFIG } from '../src/train/defaults.js';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '2' },
    precision: { type: 'string', default: 'fp32' },
    layers: { type: 'string', default: '784,128,64,10' },
    batch: { type: 'string', default: '128' },
  },
});
const threads = Number(values.threads);
const precision = values.precision as Precision;
const layers = values.layers.split(',').map(Number);
const batch = Number(values.batch);
const features = layers[0]!;
const classes = layers[layers.length - 1]!;

const base = loadNativeKernels();
base.setThreads(threads);

/** The kernels with a wall-clock timer around every call, summed by kernel (and GEMM shape). */
function timed(k: Kernels, totals: Map<string, number>): Kernels {
  const wrapped: Record<string, unknown> = {};
  for (const key of Object.keys(k) as (keyof Kernels)[]) {
    const fn = k[key];
    if (typeof fn !== 'function' || key === 'createTrainStep') continue;
    if (['alloc', 'free', 'allocatedBytes', 'info', 'setThreads'].includes(key)) {
      wrapped[key] = (fn as (...a: unknown[]) => unknown).bind(k);
      continue;
    }
    wrapped[key] = (...args: unknown[]) => {
      const t0 = performance.now();
      const result = (fn as (...a: unknown[]) => unknown).apply(k, args);
      const ms = performance.now() - t0;
      const name =
        key === 'gemm' ? `gemm ${args[0] ? 'T' : 'N'}${args[1] ? 'T' : 'N'} ${String(args[2])}x${String(args[4])}x${String(args[3])}` : key === 'denseForward' ? `denseForward ${String(args[0])}x${String(args[1])}x${String(args[2])}` : key;
      totals.set(name, (totals.get(name) ?? 0) + ms);
      return result;
    };
  }
  return wrapped as unknown as Kernels;
}

const images = new Uint8Array(60000 * features);
for (let i = 0; i < images.length; i++) images[i] = (i * 2654435761) >>> 24;
const order = new Uint32Array(60000);
for (let i = 0; i < order.length; i++) order[i] = (i * 7919) % 60000;
const table = Float32Array.from({ length: 256 }, (_, i) => i / 255);
const steps = Math.floor(60000 / batch);

type Mode = 'composed' | 'fused' | 'fused+sgd';

function run(kernels: Kernels, mode: Mode): number {
  const model = new Mlp({ layers, activation: 'relu', alpha: 0 }, { kernels, capacity: batch, init: 'auto', rng: new Rng(1), precision, fusedStep: mode !== 'composed' });
  const optimizer = createOptimizer(kernels, model.parameters, { ...DEFAULT_CONFIG, l2: 1e-3 });
  const fusedSgd = mode === 'fused+sgd' && model.fuseSgd(optimizer.fusedSgd());
  const labels = model.labelTensor.data;
  for (let i = 0; i < batch; i++) labels[i] = i % classes;
  const t0 = performance.now();
  for (let s = 0; s < steps; s++) {
    kernels.gatherRows(batch, features, images, order, s * batch, table, model.inputTensor);
    if (fusedSgd) {
      model.trainStep(batch, 0.01);
      optimizer.countFusedStep();
    } else {
      model.computeGradients(batch, 0);
      optimizer.step(0.01);
    }
  }
  const ms = performance.now() - t0;
  model.fuseSgd(null);
  optimizer.dispose();
  model.dispose();
  return ms;
}

const us = (ms: number): string => `${((ms / steps) * 1000).toFixed(1)} us/step`;
const totals = new Map<string, number>();
const k = timed(base, totals);
run(k, 'composed');
totals.clear();
const composedMs = run(k, 'composed');
let inKernels = 0;
console.log(`${layers.join('-')} batch ${batch}, ${precision}, native ${base.info().isa} ${threads} thread(s): ${steps} steps, composed ${us(composedMs)} (per-kernel wall times below)`);
for (const [name, ms] of [...totals].sort((a, b) => b[1] - a[1])) {
  inKernels += ms;
  console.log(`  ${name.padEnd(30)} ${us(ms).padStart(16)}`);
}
console.log(`  ${'outside the kernels'.padEnd(30)} ${us(composedMs - inKernels).padStart(16)}`);
const modes: Mode[] = ['composed', 'fused', 'fused+sgd'];
const times = new Map<Mode, number[]>(modes.map((m) => [m, []]));
for (let rep = 0; rep < 5; rep++) for (const m of modes) times.get(m)!.push(run(base, m));
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;
console.log(`untimed, median of 5 interleaved epochs: ${modes.map((m) => `${m} ${us(median(times.get(m)!))}`).join(', ')}`);
