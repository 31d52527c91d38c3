/**
 * `densetrain bench train --vs-torch`: PyTorch trains the train suite's models with the same
 * recipe, data and thread count (bench/torch_train.py, in a python subprocess after the
 * densetrain timings of the same run), and each densetrain row gets the ratio of its seconds per
 * epoch to PyTorch's at the same model and precision (fp32; bf16 = torch.autocast on the CPU).
 *
 * Python: DENSETRAIN_TORCH_PYTHON, else DENSETRAIN_PYTHON, else `python3`. OPENBLAS_CORETYPE and
 * OPENBLAS_L2_SIZE are removed from its environment (like the OpenBLAS column of the kernels
 * suite); the BLAS and oneDNN libraries it loaded are reported. No torch: skipped with one line.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ImageSet } from '../data/types.js';
import type { Precision } from '../kernels/types.js';
import { packageRoot } from '../kernels/paths.js';
import { blasChildEnv, runPython } from './openblas.js';
import type { TrainBenchRow, TrainModel } from './train.js';

export interface TorchRow {
  model: string;
  precision: Precision;
  batchSize: number;
  threads: number;
  epochSeconds: number[];
  secondsPerEpoch: number;
  bestEpochSeconds: number;
  warmupSeconds: number;
  finalTrainLoss: number;
  finalTrainAccuracy: number;
}

export interface TorchRun {
  torch: string;
  python: string;
  pythonVersion: string;
  threads: number;
  images: number;
  blasInfo: string | null;
  mkldnn: boolean;
  /** BLAS, LAPACK, oneDNN and OpenMP libraries mapped into the python process. */
  libraries: string[];
  rows: TorchRow[];
}

export type TorchResult =
  | { ok: true; pythonCommand: string; unsetEnv: Record<string, string>; run: TorchRun; lines: string[] }
  | { ok: false; reason: string; lines: string[] };

export interface TorchOptions {
  models: readonly TrainModel[];
  precisions: readonly Precision[];
  threads: number;
  /** Timed epochs after the warm-up, as for densetrain. */
  epochs: number;
  warmup: number;
  /** The training set densetrain timed on (handed to python as IDX files in a temporary directory). */
  trainSet: ImageSet;
  recipe: { lr: number; momentum: number; nesterov: boolean; l2: number };
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

const HINT =
  'install PyTorch for python3 (Debian: apt-get install python3-torch; or pip install torch), or set DENSETRAIN_TORCH_PYTHON to a python that has it';

/** Writes a set as train-images-idx3-ubyte / train-labels-idx1-ubyte (big-endian IDX headers) into dir. */
async function writeIdx(dir: string, set: ImageSet): Promise<void> {
  const header = (magic: number, dims: number[]): Buffer => {
    const b = Buffer.alloc(4 + 4 * dims.length);
    b.writeUInt32BE(magic, 0);
    dims.forEach((d, i) => b.writeUInt32BE(d, 4 + 4 * i));
    return b;
  };
  await writeFile(join(dir, 'train-images-idx3-ubyte'), Buffer.concat([header(0x803, [set.count, set.height, set.width]), set.images.subarray(0, set.count * set.features)]));
  await writeFile(join(dir, 'train-labels-idx1-ubyte'), Buffer.concat([header(0x801, [set.count]), set.labels.subarray(0, set.count)]));
}

/** Runs bench/torch_train.py. Never throws for a missing python, torch or data: says why in one line. */
export async function runTorchBench(options: TorchOptions): Promise<TorchResult> {
  const env = options.env ?? process.env;
  const python = env['DENSETRAIN_TORCH_PYTHON']?.trim() || env['DENSETRAIN_PYTHON']?.trim() || 'python3';
  const script = join(packageRoot(), 'bench', 'torch_train.py');
  if (!existsSync(script)) {
    const reason = `${script} is missing (it ships in the source tree, not the npm package)`;
    return { ok: false, reason, lines: [`PyTorch comparison skipped: ${reason}`] };
  }
  const { childEnv, unsetEnv } = blasChildEnv(env);
  const t = String(options.threads);
  const dataDir = await mkdtemp(join(tmpdir(), 'densetrain-torch-'));
  await writeIdx(dataDir, options.trainSet);
  const spec = {
    threads: options.threads,
    dataDir,
    recipe: options.recipe,
    models: options.models.map((m) => ({ name: m.name, layers: m.layers, batchSize: m.batchSize })),
    precisions: options.precisions,
    warmup: options.warmup,
    epochs: options.epochs,
  };
  options.log?.(`PyTorch (${python}), ${options.threads} thread${options.threads === 1 ? '' : 's'}: ${options.models.length} models x ${options.precisions.join(', ')}`);
  const r = await runPython(python, script, spec, { ...childEnv, OMP_NUM_THREADS: t, OPENBLAS_NUM_THREADS: t, MKL_NUM_THREADS: t }).finally(() =>
    rm(dataDir, { recursive: true, force: true }),
  );
  for (const line of r.stderr.split('\n')) if (line.startsWith('torch ')) options.log?.(line);
  if (r.spawnError) return { ok: false, reason: `cannot run ${python}`, lines: [`PyTorch comparison skipped: cannot run ${python} (${r.spawnError}); ${HINT}`] };
  if (r.code === 3) return { ok: false, reason: `${python} has no torch`, lines: [`PyTorch comparison skipped: ${python} has no torch; ${HINT}`] };
  if (r.code !== 0) {
    const reason = `${python} bench/torch_train.py exited ${r.code}: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 300)}`;
    return { ok: false, reason, lines: [`PyTorch comparison failed: ${reason}`] };
  }
  const run = JSON.parse(r.stdout) as TorchRun;
  const blas = run.libraries.filter((l) => /blas|mkl/i.test(l)).map((l) => l.split('/').pop()).join(', ') || `none mapped (BLAS_INFO ${run.blasInfo ?? '?'})`;
  const dnnl = run.libraries.some((l) => /dnnl/i.test(l)) ? 'oneDNN loaded' : 'no oneDNN';
  const unset = Object.keys(unsetEnv);
  const lines = [
    `PyTorch ${run.torch} (${run.python}, Python ${run.pythonVersion}), ${run.threads} thread${run.threads === 1 ? '' : 's'}; BLAS: ${blas}; ${dnnl} (bf16 = torch.autocast('cpu', torch.bfloat16)); ` +
      `OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for the subprocess${unset.length ? ` (were ${unset.map((k) => `${k}=${unsetEnv[k]}`).join(', ')})` : ' (neither was set)'}; ` +
      'torch converts the images to floats once before timing and writes nothing; ratio = densetrain s/epoch (checkpoint writes included) / PyTorch s/epoch',
  ];
  return { ok: true, pythonCommand: python, unsetEnv, run, lines };
}

/** Adds torchSecondsPerEpoch and torchRatio to the densetrain rows of the same model and precision. */
export function attachTorch(rows: TrainBenchRow[], result: TorchResult): void {
  if (!result.ok) return;
  for (const row of rows) {
    const t = result.run.rows.find((r) => r.model === row.model && r.precision === row.precision);
    if (!t) continue;
    row.torchSecondsPerEpoch = t.secondsPerEpoch;
    row.torchThreads = t.threads;
    row.torchRatio = row.secondsPerEpoch === null ? null : row.secondsPerEpoch / t.secondsPerEpoch;
  }
}
