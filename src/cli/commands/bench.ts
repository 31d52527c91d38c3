/**
 * `densetrain bench [kernels|train|all]`: the benchmark suites of src/bench/, run from the
 * installed command with the options commander parsed. The same code as `npm run bench`
 * (src/bench/run.ts runBench); the difference is that JSON is written only with --json (an
 * installed package is not the place for results files).
 */
import type { BenchOptions } from '../../bench/run.js';
import { EXIT_OK, ExitRequest, UsageError } from '../errors.js';
import type { RegisterCommand } from '../context.js';

/** commander's options: BenchOptions without the suite (an argument), plus --verbose. */
type BenchCommandOptions = Omit<BenchOptions, 'suite'> & { verbose?: boolean };

export const BENCH_USAGE =
  'usage: densetrain bench [kernels|train|all] [--backend all|auto|native|wasm|reference] [--json FILE] [--quick] ' +
  '[--shapes MxKxN,...] [--peak GFLOPS] [--no-openblas] [--models 784-128-64-10,784-500-500-10,784-1024-512-64-10] [--epochs N] [--data NAME|DIR]';

export const registerBenchCommand: RegisterCommand = (program, { io }) => {
  program
    .command('bench')
    .description('benchmark the kernels (GEMM GFLOP/s per backend and shape) or training (seconds per epoch on Fashion-MNIST)')
    .argument('[suite]', 'kernels, train or all', 'kernels')
    .option('--backend <name>', 'all (every backend that loads), auto, native, wasm or reference', 'all')
    .option('--json <file>', 'also write the machine description and every row as JSON to <file>')
    .option('--quick', 'shorter timings (a smoke run; train: 1 timed epoch)')
    .option('--shapes <list>', 'kernels: GEMM shapes MxKxN,... (C is M x N, inner size K) instead of the standard set')
    .option('--peak <gflops>', 'kernels: single-core FP32 peak of the native ISA in GFLOP/s for the % peak column (default: estimated)')
    .option('--no-openblas', 'kernels: skip the numpy/OpenBLAS comparison')
    .option('--models <list>', 'train: models to time (784-128-64-10, 784-500-500-10, 784-1024-512-64-10; default all)')
    .option('--epochs <n>', 'train: timed epochs after the warm-up epoch (default 3, 1 with --quick)')
    .option('--data <name|dir>', 'train: time on this dataset instead of fashion-mnist (28x28 images; noted in the results)')
    .option('--precision <list>', 'train: GEMM precisions to time, fp32,bf16 (default fp32)')
    .option('--step <list>', 'train: fused (one native call per batch, what train() uses), composed (single kernel calls), or both')
    .option('--vs-torch', 'train: PyTorch trains the same models, recipe, data and threads in the same run (bench/torch_train.py); ratio per model and precision')
    .option('--vs-tfjs', 'train: TF.js (wasm backend) trains the same models, recipe and data in the same run; ratio per model (needs the devDependencies of a densetrain clone)')
    .option('--verbose', 'print stack traces on errors')
    .action(async (suite: string, options: BenchCommandOptions) => {
      const { runBench, BenchUsageError } = await import('../../bench/run.js');
      let code: number;
      try {
        code = await runBench({ ...options, suite }, io, { defaultJsonFile: false });
      } catch (error) {
        if (error instanceof BenchUsageError) throw new UsageError(`bench: ${error.message}; ${BENCH_USAGE}`);
        throw error;
      }
      if (code !== EXIT_OK) throw new ExitRequest(code);
    });
};
