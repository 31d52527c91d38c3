#!/usr/bin/env node
// Quick single-thread GFLOP/s of the wasm GEMM (not a test; timings on a shared machine vary).
//   node assembly/bench/gemm-gflops.mjs [M,K,N ...] [--trans NN|NT|TN|TT] [--ms 1500] [--wasm path]
// Shapes are (M, K, N) as in bench/README.md: C [M,N] = op(A) [M,K] * op(B) [K,N]. Default:
// (512,512,512), (128,784,128), (256,784,1024).
// Reports the best of several timed runs after a warm-up (V8 tiers the module up to TurboFan),
// by wall clock and by this process's CPU time (which discounts time other processes took the
// core; on a busy shared machine the CPU-time figure is the closer one to the kernel's speed).
import { readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const argv = process.argv.slice(2);
const opt = (name, dflt) => {
  const i = argv.indexOf(name);
  if (i < 0) return dflt;
  const v = argv[i + 1];
  argv.splice(i, 2);
  return v;
};
const wasmPath = resolve(opt('--wasm', join(root, 'dist', 'wasm', 'densetrain.wasm')));
const trans = opt('--trans', 'NN');
const budgetMs = Number(opt('--ms', '1500'));
const shapes = argv.length > 0 ? argv.map((s) => s.split(',').map(Number)) : [[512, 512, 512], [128, 784, 128], [256, 784, 1024]];
// (M, K, N) -> m, n, k below.

const e = new WebAssembly.Instance(new WebAssembly.Module(readFileSync(wasmPath)), {}).exports;
if (!e.gemmInit()) throw new Error('gemm scratch');
const alloc = (n) => {
  const p = e.alloc(n * 4) >>> 0;
  const v = new Float32Array(e.memory.buffer, p, n);
  for (let i = 0; i < n; i++) v[i] = Math.random() - 0.5;
  return p;
};
const [tA, tB] = [trans[0] === 'T' ? 1 : 0, trans[1] === 'T' ? 1 : 0];
for (const [m, k, n] of shapes) {
  const a = alloc(m * k), b = alloc(k * n), c = alloc(m * n);
  const run = () => e.gemm(tA, tB, m, n, k, 1, a, b, 0, c);
  const warm = performance.now();
  while (performance.now() - warm < 300) run();
  let best = Infinity;
  let bestCpu = Infinity;
  const start = performance.now();
  while (performance.now() - start < budgetMs) {
    const t0 = performance.now();
    const c0 = process.cpuUsage();
    let reps = 0;
    do { run(); reps++; } while (performance.now() - t0 < 20);
    const cpu = process.cpuUsage(c0);
    best = Math.min(best, (performance.now() - t0) / reps);
    bestCpu = Math.min(bestCpu, (cpu.user + cpu.system) / 1000 / reps);
  }
  const flop = 2 * m * n * k;
  const gf = (ms) => (flop / (ms / 1000) / 1e9).toFixed(1);
  console.log(`gemm ${trans} (M,K,N)=(${m},${k},${n}): ${gf(best)} GFLOP/s wall (${best.toFixed(3)} ms), ${gf(bestCpu)} GFLOP/s cpu-time`);
  e.free(a); e.free(b); e.free(c);
}
