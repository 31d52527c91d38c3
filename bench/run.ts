/**
 * Benchmark entry point (compiled to dist/bench/run.js):
 *
 *   node dist/bench/run.js [kernels|train] [--backend all|auto|native|wasm|reference] [--json FILE] [--quick]
 *
 * Prints an aligned table and writes the machine description and every row as JSON, to FILE or
 * by default to bench/results/<YYYY-MM-DD>.json (<YYYY-MM-DD>-quick.json with --quick).
 * Exit codes: 0 done, 1 a benchmark or backend failed, 2 usage error / suite not available.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { BACKEND_NAMES, parseBackendChoice, selectKernels, tryLoadBackend } from '../src/kernels/index.js';
import { packageRoot } from '../src/kernels/paths.js';
import type { BackendName } from '../src/kernels/types.js';
import { type BenchRow, GEMM_FORMS, REFERENCE_MAX_FLOPS, runKernelBench } from './kernels.js';

const USAGE = 'usage: node dist/bench/run.js [kernels|train] [--backend all|auto|native|wasm|reference] [--json FILE] [--quick]';

class UsageError extends Error {}

/** CPU flags relevant to the kernels, from /proc/cpuinfo (Linux); empty elsewhere. */
function cpuFlags(): string[] {
  try {
    const info = readFileSync('/proc/cpuinfo', 'utf8');
    const line = info.split('\n').find((l) => l.startsWith('flags') || l.startsWith('Features'));
    const flags = new Set((line?.split(':')[1] ?? '').trim().split(/\s+/));
    return ['sse4_2', 'avx', 'avx2', 'fma', 'avx512f', 'avx512bw', 'avx512vl', 'asimd'].filter((f) => flags.has(f));
  } catch {
    return [];
  }
}

function machine() {
  const list = cpus();
  return {
    cpuModel: list[0]?.model ?? 'unknown',
    logicalCpus: list.length,
    cpuFlags: cpuFlags(),
    totalMemoryBytes: totalmem(),
    /** 1-minute load average when the run started: above the CPU count, the numbers are noisy. */
    loadAverageAtStart: loadavg()[0] ?? null,
    node: process.version,
    v8: process.versions.v8,
    platform: process.platform,
    arch: process.arch,
    env: {
      DENSETRAIN_THREADS: process.env['DENSETRAIN_THREADS'] ?? null,
      DENSETRAIN_ISA: process.env['DENSETRAIN_ISA'] ?? null,
    },
  };
}

function backendsFor(choice: string): { names: BackendName[]; notes: string[] } {
  if (choice === 'all') {
    const names: BackendName[] = [];
    const notes: string[] = [];
    for (const name of BACKEND_NAMES) {
      const r = tryLoadBackend(name);
      if (r.ok) names.push(name);
      else notes.push(`${name} not benchmarked: ${r.reason}`);
    }
    return { names, notes };
  }
  let parsed;
  try {
    parsed = parseBackendChoice(choice, '--backend');
  } catch (e) {
    throw new UsageError(`${(e as Error).message.replace('auto, native', 'all, auto, native')}`);
  }
  // 'auto' benchmarks what auto selection picks; a forced backend that cannot load is an error.
  return { names: [selectKernels({ backend: parsed }).kernels.name], notes: [] };
}

const fmt = (x: number | null, digits: number): string => (x === null ? '-' : x.toFixed(digits));
const fmtRate = (x: number | null): string => (x === null ? '-' : x >= 1e9 ? `${(x / 1e9).toFixed(2)} G` : `${(x / 1e6).toFixed(1)} M`);

function printTable(rows: BenchRow[]): void {
  const table = new Table({
    head: ['backend', 'isa', 'thr', 'kernel', 'form', 'shape', 'median ms', 'GFLOP/s', 'elem/s', 'n'],
    colAligns: ['left', 'left', 'right', 'left', 'left', 'left', 'right', 'right', 'right', 'right'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of rows) {
    table.push([r.backend, r.isa, String(r.threads), r.kernel, r.variant, r.shape, r.note ? 'skipped' : fmt(r.medianMs, 3), fmt(r.gflops, 2), fmtRate(r.elementsPerSec), String(r.samples)]);
  }
  console.log(table.toString());
}

async function main(argv: string[]): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    allowPositionals: true,
    options: {
      backend: { type: 'string', default: 'all' },
      json: { type: 'string' },
      quick: { type: 'boolean', default: false },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  if (positionals.length > 1) throw new UsageError(`expected at most one suite, got ${positionals.join(' ')}`);
  const suite = positionals[0] ?? 'kernels';
  if (suite === 'train') {
    console.error('the train benchmark suite (epoch time per backend) is not written yet; run the kernels suite: node dist/bench/run.js kernels');
    return 2;
  }
  if (suite !== 'kernels') throw new UsageError(`unknown suite ${JSON.stringify(suite)} (kernels or train)`);

  const { names, notes } = backendsFor(values.backend);
  for (const n of notes) console.log(n);
  console.log(
    'GEMM forms (row-major, C is M x N, inner K): ' +
      Object.entries(GEMM_FORMS)
        .map(([f, d]) => `${f} = ${d.storage} (${d.use})`)
        .join('; '),
  );
  if (names.includes('reference')) {
    console.log(`reference: GEMM shapes above ${REFERENCE_MAX_FLOPS / 1e6} MFLOP per call are skipped (plain loops would take seconds per call); its timings use quick settings`);
  }
  const started = new Date();
  const host = machine();
  if (host.loadAverageAtStart !== null && host.loadAverageAtStart > host.logicalCpus) {
    console.log(`note: load average ${host.loadAverageAtStart.toFixed(1)} on ${host.logicalCpus} CPUs: the machine is busy, timings will be noisy`);
  }
  const rows = await runKernelBench({ backends: names, quick: values.quick, log: (l) => process.stderr.write(`  ${l}\n`) });
  printTable(rows);

  const record = {
    suite,
    date: started.toISOString(),
    quick: values.quick,
    machine: host,
    backends: names.map((n) => {
      const r = tryLoadBackend(n);
      return r.ok ? r.kernels.info() : { backend: n };
    }),
    notes,
    gemmForms: GEMM_FORMS,
    statistic: 'median (tinybench latency.p50)',
    rows,
  };
  const day = started.toISOString().slice(0, 10);
  const file = values.json ? resolve(values.json) : join(packageRoot(), 'bench', 'results', `${day}${values.quick ? '-quick' : ''}.json`);
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  console.log(`results written to ${file}`);
  return 0;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (error: unknown) => {
    if (error instanceof UsageError || String((error as { code?: unknown }).code).startsWith('ERR_PARSE_ARGS')) {
      console.error(`${(error as Error).message}\n${USAGE}`);
      process.exitCode = 2;
    } else {
      console.error(`benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    }
  },
);
