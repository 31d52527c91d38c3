// Quick GEMM throughput check for the native addon (not a test, no assertions).
//   node native/bench/gemm-bench.mjs [--threads N] [--isa avx2] [--bf16] [m,n,k ...] [--trans NN|NT|TN|TT]
// --bf16: bf16 mixed precision (operands rounded to bfloat16, vdpbf16ps; needs AVX512-BF16).
// Loads build/Release/densetrain.node, or DENSETRAIN_NATIVE_PATH.
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';
import { dirname, join, resolve } from 'node:path';

const root = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const addonPath = process.env.DENSETRAIN_NATIVE_PATH || join(root, 'build', 'Release', 'densetrain.node');
const addon = createRequire(import.meta.url)(addonPath);

const args = process.argv.slice(2);
let threads = 1;
let trans = ['NN'];
let bf16 = false;
const shapes = [];
for (let i = 0; i < args.length; i++) {
  if (args[i] === '--threads') threads = Number(args[++i]);
  else if (args[i] === '--isa') addon.setIsa(args[++i]);
  else if (args[i] === '--trans') trans = args[++i].split(',');
  else if (args[i] === '--bf16') bf16 = true;
  else shapes.push(args[i].split(',').map(Number));
}
if (shapes.length === 0) shapes.push([512, 512, 512], [256, 1024, 784]);
addon.setThreads(threads);

function fill(a) {
  for (let i = 0; i < a.length; i++) a[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
}

for (const [m, n, k] of shapes) {
  for (const t of trans) {
    const ta = t[0] === 'T';
    const tb = t[1] === 'T';
    const a = addon.alloc(m * k);
    const b = addon.alloc(k * n);
    const c = addon.alloc(m * n);
    fill(a);
    fill(b);
    const flops = 2 * m * n * k;
    // Warm up, then time single calls for ~1.5 s and keep the fastest. On a shared machine the
    // wall-clock minimum is the run that had the core to itself; with one thread, the process
    // CPU time of a call (user + system) is also reported, which other processes cannot inflate.
    addon.gemm(ta, tb, m, n, k, 1, a, b, 0, c, bf16);
    let best = Infinity;
    let bestCpu = Infinity;
    const until = Date.now() + Number(process.env.BENCH_MS || 1500);
    while (Date.now() < until) {
      const c0 = process.cpuUsage();
      const t0 = process.hrtime.bigint();
      addon.gemm(ta, tb, m, n, k, 1, a, b, 0, c, bf16);
      best = Math.min(best, Number(process.hrtime.bigint() - t0) / 1e9);
      const used = process.cpuUsage(c0);
      bestCpu = Math.min(bestCpu, (used.user + used.system) / 1e6);
    }
    console.log(
      `gemm ${bf16 ? 'bf16 ' : ''}${t} m=${m} n=${n} k=${k} isa=${addon.isa()} threads=${addon.threads()}: ${(flops / best / 1e9).toFixed(1)} GFLOP/s wall (${(best * 1e3).toFixed(3)} ms)` +
        (addon.threads() === 1 ? `, ${(flops / bestCpu / 1e9).toFixed(1)} GFLOP/s per CPU second` : ''),
    );
    addon.free(a);
    addon.free(b);
    addon.free(c);
  }
}
