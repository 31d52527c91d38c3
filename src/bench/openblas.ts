/**
 * numpy's matmul (OpenBLAS, or whatever BLAS numpy links) on the kernels benchmark's GEMM shapes
 * and forms, in a python subprocess (bench/numpy_gemm.py), once per thread count, so a densetrain
 * row can be put next to the BLAS at the same thread count.
 *
 * Python: DENSETRAIN_PYTHON, else `python3` on PATH. Threads: OPENBLAS_NUM_THREADS,
 * OMP_NUM_THREADS and MKL_NUM_THREADS are set for the subprocess (threadpoolctl also limits the
 * pool if installed). OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE are removed from the subprocess's
 * environment (both together: a forced core type or cache size can slow a current OpenBLAS
 * down), so it runs the kernel OpenBLAS picks for this CPU; which one is reported.
 * No numpy: the comparison is skipped with one line saying how to enable it.
 */
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../kernels/paths.js';
import type { BenchRow, GemmForm } from './kernels.js';

export interface OpenBlasRow {
  shape: string;
  form: GemmForm;
  threads: number;
  medianMs: number;
  samples: number;
  gflops: number;
}

export interface OpenBlasBlasInfo {
  source: string;
  internal_api?: string | null;
  filepath?: string | null;
  /** The kernel (OpenBLAS core name, e.g. Haswell) it runs, when known. */
  architecture?: string | null;
  config?: string | null;
  version?: string | null;
  num_threads?: number | null;
}

export interface OpenBlasRun {
  python: string;
  pythonVersion: string;
  numpy: string;
  threads: number;
  env: Record<string, string | null>;
  blas: OpenBlasBlasInfo;
  rows: OpenBlasRow[];
}

export type OpenBlasResult =
  | {
      ok: true;
      /** The python command asked for (DENSETRAIN_PYTHON or python3). */
      pythonCommand: string;
      /** Variables removed from the subprocess environment, with the values they had here. */
      unsetEnv: Record<string, string>;
      runs: OpenBlasRun[];
      /** Human-readable lines: what ran, which kernel. */
      lines: string[];
    }
  | { ok: false; reason: string; lines: string[] };

export interface OpenBlasOptions {
  shapes: readonly (readonly [number, number, number])[];
  forms: readonly GemmForm[];
  /** Thread counts to time, e.g. [native threads, 1]. */
  threads: readonly number[];
  quick: boolean;
  log?: (line: string) => void;
  env?: NodeJS.ProcessEnv;
}

const ENABLE_HINT = 'pip install numpy (or apt-get install python3-numpy), or set DENSETRAIN_PYTHON to a python with numpy';

/** Runs `python script JSON(spec)` and collects its output (never rejects). */
export function runPython(python: string, script: string, spec: unknown, env: NodeJS.ProcessEnv): Promise<{ code: number; stdout: string; stderr: string; spawnError?: string }> {
  return new Promise((resolvePromise) => {
    execFile(python, [script, JSON.stringify(spec)], { env, maxBuffer: 16 << 20, timeout: 30 * 60_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      const spawnError = error && typeof error.code === 'string' ? `${error.code}: ${error.message}` : undefined;
      resolvePromise({ code, stdout, stderr, ...(spawnError ? { spawnError } : {}) });
    });
  });
}

/**
 * The environment of a BLAS subprocess: OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE removed (both
 * together; forced values can slow a current OpenBLAS), with what they were.
 */
export function blasChildEnv(env: NodeJS.ProcessEnv): { childEnv: NodeJS.ProcessEnv; unsetEnv: Record<string, string> } {
  const unsetEnv: Record<string, string> = {};
  const childEnv: NodeJS.ProcessEnv = { ...env };
  for (const key of ['OPENBLAS_CORETYPE', 'OPENBLAS_L2_SIZE']) {
    if (childEnv[key] !== undefined) unsetEnv[key] = childEnv[key]!;
    delete childEnv[key];
  }
  return { childEnv, unsetEnv };
}

/** Times numpy matmul for every shape x form at each thread count. Never throws for a missing python or numpy. */
export async function runOpenBlasBench(options: OpenBlasOptions): Promise<OpenBlasResult> {
  const env = options.env ?? process.env;
  const python = env['DENSETRAIN_PYTHON']?.trim() || 'python3';
  const script = join(packageRoot(), 'bench', 'numpy_gemm.py');
  if (!existsSync(script)) {
    const reason = `${script} is missing (it ships in the source tree, not the npm package)`;
    return { ok: false, reason, lines: [`OpenBLAS comparison skipped: ${reason}`] };
  }
  const { childEnv, unsetEnv } = blasChildEnv(env);
  const runs: OpenBlasRun[] = [];
  for (const threads of [...new Set(options.threads)]) {
    const t = String(threads);
    options.log?.(`numpy matmul (${python}), ${threads} thread${threads === 1 ? '' : 's'}, ${options.shapes.length} shapes x ${options.forms.length} forms`);
    const r = await runPython(python, script, { shapes: options.shapes, forms: options.forms, threads, quick: options.quick }, { ...childEnv, OPENBLAS_NUM_THREADS: t, OMP_NUM_THREADS: t, MKL_NUM_THREADS: t });
    if (r.spawnError) {
      const reason = `cannot run ${python} (${r.spawnError})`;
      return { ok: false, reason, lines: [`OpenBLAS comparison skipped: ${reason}; ${ENABLE_HINT}`] };
    }
    if (r.code === 3) {
      const reason = `${python} has no numpy`;
      return { ok: false, reason, lines: [`OpenBLAS comparison skipped: ${reason}; ${ENABLE_HINT}`] };
    }
    if (r.code !== 0) {
      const reason = `${python} bench/numpy_gemm.py exited ${r.code}: ${(r.stderr.trim().split('\n').pop() ?? '').slice(0, 300)}`;
      return { ok: false, reason, lines: [`OpenBLAS comparison failed: ${reason}`] };
    }
    const run = JSON.parse(r.stdout) as OpenBlasRun;
    for (const row of run.rows) options.log?.(`numpy ${row.form} ${row.shape} ${row.threads}t: ${row.medianMs.toFixed(3)} ms, ${row.gflops.toFixed(2)} GFLOP/s`);
    runs.push(run);
  }
  const first = runs[0];
  const lines: string[] = [];
  if (first) {
    const b = first.blas;
    const what = [b.internal_api ?? 'BLAS', b.version ?? /OpenBLAS ([\d.]+)/.exec(b.config ?? '')?.[1], b.architecture ? `kernel ${b.architecture}` : 'kernel unknown'].filter(Boolean).join(' ');
    const unset = Object.keys(unsetEnv);
    lines.push(
      `OpenBLAS: numpy ${first.numpy} matmul (${first.python}, Python ${first.pythonVersion}) -> ${what} (from ${b.source}); threads ${runs.map((x) => `${x.threads} (reported ${x.blas.num_threads ?? '?'})`).join(', ')}; ` +
        `OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset for the subprocess${unset.length ? ` (were ${unset.map((k) => `${k}=${unsetEnv[k]}`).join(', ')})` : ' (neither was set)'}; ratio = densetrain / OpenBLAS at the row's thread count`,
    );
  }
  return { ok: true, pythonCommand: python, unsetEnv, runs, lines };
}

/** Adds openblasGflops and openblasRatio to every GEMM row whose thread count numpy was timed at. */
export function attachOpenBlas(rows: BenchRow[], result: OpenBlasResult): void {
  if (!result.ok) return;
  const byKey = new Map<string, OpenBlasRow>();
  for (const run of result.runs) for (const r of run.rows) byKey.set(`${r.form} ${r.shape} ${r.threads}`, r);
  for (const row of rows) {
    if (row.kernel !== 'gemm') continue;
    const o = byKey.get(`${row.variant} ${row.shape} ${row.threads}`);
    if (!o) continue;
    row.openblasGflops = o.gflops;
    row.openblasRatio = row.gflops === null ? null : row.gflops / o.gflops;
  }
}
