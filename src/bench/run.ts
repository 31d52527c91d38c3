/**
 * The benchmark suites behind one call, runBench(options) (`densetrain bench` passes the options
 * commander parsed), and the developers' entry point that parses its own argv (compiled to
 * dist/src/bench/run.js; `npm run bench`):
 *
 *   node dist/src/bench/run.js [kernels|train|all] [--backend all|auto|native|wasm|reference] [--json FILE] [--quick]
 *                          [--shapes MxKxN,...] [--models 784-128-64-10,...] [--epochs N] [--data NAME|DIR]
 *
 * Prints an aligned table and writes the machine description and every row as JSON, to FILE or
 * by default to bench/results/<YYYY-MM-DD>.json (<YYYY-MM-DD>-quick.json with --quick). The
 * kernels and train suites share one record: running one suite into a file that holds the other
 * suite's results keeps them (top-level `rows` are the kernels rows, `train` the training rows).
 * Exit codes: 0 done, 1 a benchmark or backend failed, 2 usage error.
 */
import { existsSync, mkdirSync, readFileSync, realpathSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import Table from 'cli-table3';
import { InputError } from '../input-error.js';
import { BACKEND_NAMES, parseBackendChoice, selectKernels, tryLoadBackend } from '../kernels/index.js';
import { packageRoot } from '../kernels/paths.js';
import type { BackendName } from '../kernels/types.js';
import { type BenchRow, GEMM_FORMS, GEMM_SHAPES, type GemmForm, REFERENCE_MAX_FLOPS, runKernelBench } from './kernels.js';
import { attachOpenBlas, runOpenBlasBench } from './openblas.js';
import { parsePeakGflops, resolvePeak } from './peak.js';
import { attachTfjs, runTfjsBench } from './tfjs.js';
import { attachTorch, runTorchBench } from './torch.js';
import { loadDataset } from '../data/registry.js';
import { runTrainBench, TRAIN_MODELS, TRAIN_STEP_MODES, WARMUP_EPOCHS, type TrainBenchResult, type TrainStepMode } from './train.js';
import { DEFAULT_CONFIG } from '../train/defaults.js';
import { PRECISIONS, type Precision } from '../kernels/types.js';

const OPTIONS_USAGE =
  '[kernels|train|all] [--backend all|auto|native|wasm|reference] [--json FILE] [--quick] [--shapes MxKxN,...] [--peak GFLOPS] [--no-openblas] [--models ' +
  `${TRAIN_MODELS.map((m) => m.name).join(',')}] [--epochs N] [--data NAME|DIR] [--precision fp32,bf16] [--step fused,composed] [--vs-torch] [--vs-tfjs]`;
const USAGE = `usage: node dist/src/bench/run.js ${OPTIONS_USAGE}`;

/** Where the benchmark prints: results to out, progress to err. */
export interface BenchIo {
  out(line?: string): void;
  err(line?: string): void;
}

const consoleIo: BenchIo = {
  out: (line = '') => void process.stdout.write(`${line}\n`),
  err: (line = '') => void process.stderr.write(`${line}\n`),
};

/**
 * What to run, as the command line gives it (strings are checked here, once, for both callers:
 * a bad value is a BenchUsageError naming the option).
 */
export interface BenchOptions {
  /** kernels (default), train or all. */
  suite?: string;
  /** all (default), auto, native, wasm or reference. */
  backend?: string;
  json?: string;
  quick?: boolean;
  shapes?: string;
  peak?: string;
  /** false: skip the numpy/OpenBLAS comparison. */
  openblas?: boolean;
  models?: string;
  epochs?: string;
  data?: string;
  precision?: string;
  step?: string;
  vsTorch?: boolean;
  /** TF.js (wasm backend) trains the same models in the same run (train suite). */
  vsTfjs?: boolean;
}

export interface RunBenchSettings {
  /** Without --json: write to bench/results/<date>.json (true, the default) or write no file (false). */
  defaultJsonFile?: boolean;
}

/** A bad benchmark option: the caller prints it with its usage line (exit 2). */
export class BenchUsageError extends InputError {
  override readonly name = 'BenchUsageError';
}

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
    /** The clock the OS reports (os.cpus().speed, MHz); under a hypervisor often the nominal one. */
    cpuMHz: list[0]?.speed ?? null,
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
    throw new BenchUsageError(`${(e as Error).message.replace('auto, native', 'all, auto, native')}`);
  }
  // 'auto' benchmarks what auto selection picks; a forced backend that cannot load is an error.
  return { names: [selectKernels({ backend: parsed }).kernels.name], notes: [] };
}

const fmt = (x: number | null, digits: number): string => (x === null ? '-' : x.toFixed(digits));
const fmtRate = (x: number | null): string => (x === null ? '-' : x >= 1e9 ? `${(x / 1e9).toFixed(2)} G` : `${(x / 1e6).toFixed(1)} M`);

function printTable(rows: BenchRow[], io: BenchIo): void {
  const table = new Table({
    head: ['backend', 'isa', 'thr', 'kernel', 'form', 'shape', 'median ms', 'GFLOP/s', '% peak', 'OpenBLAS', 'ratio', 'elem/s', 'n'],
    colAligns: ['left', 'left', 'right', 'left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of rows) {
    table.push([r.backend, r.isa, String(r.threads), r.kernel, r.variant, r.shape, r.note ? 'skipped' : fmt(r.medianMs, 3), fmt(r.gflops, 2), fmtPct(r.fractionOfPeak ?? null), fmt(r.openblasGflops ?? null, 2), fmt(r.openblasRatio ?? null, 2), fmtRate(r.elementsPerSec), String(r.samples)]);
  }
  io.out(table.toString());
}

const fmtPct = (x: number | null): string => (x === null ? '-' : `${(x * 100).toFixed(0)}%`);

function printTrainTable(result: TrainBenchResult, io: BenchIo): void {
  const table = new Table({
    head: ['backend', 'isa', 'thr', 'model', 'prec', 'step', 'batch', 's/epoch', 'torch s', 'ratio', 'tfjs s', 'tfjs ratio', 'best s', 'cpu s', 'ckpt s', 'samples/s', 'GFLOP', 'GEMM-bound s', 'GEMM share', 'calls/batch', 'peak RSS'],
    colAligns: ['left', 'left', 'right', 'left', 'left', 'left', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right', 'right'],
    style: { head: [], border: [] },
    chars: { mid: '', 'left-mid': '', 'mid-mid': '', 'right-mid': '' },
  });
  for (const r of result.rows) {
    table.push([
      r.backend,
      r.isa,
      String(r.threads),
      r.model,
      r.precision,
      r.step,
      String(r.batchSize),
      r.note ? 'skipped' : fmt(r.secondsPerEpoch, 3),
      fmt(r.torchSecondsPerEpoch ?? null, 3),
      fmt(r.torchRatio ?? null, 2),
      fmt(r.tfjsSecondsPerEpoch ?? null, 3),
      fmt(r.tfjsRatio ?? null, 2),
      fmt(r.bestEpochSeconds, 3),
      fmt(r.cpuSecondsPerEpoch, 3),
      fmt(r.epochEndSeconds, 3),
      r.samplesPerSecond === null ? '-' : String(Math.round(r.samplesPerSecond)),
      r.gemmGflopPerEpoch.toFixed(1),
      fmt(r.gemmBoundSeconds, 3),
      fmtPct(r.gemmShare),
      fmt(r.kernelCallsPerBatch, 0),
      `${(r.peakRssBytes / 2 ** 20).toFixed(0)} MB`,
    ]);
  }
  io.out(table.toString());
}

/** mnist-shaped GEMM shapes: "128x784x128,256x1024x512" as (M, K, N) triples. */
function parseShapes(text: string): [number, number, number][] {
  return text.split(',').map((part) => {
    const m = /^(\d+)x(\d+)x(\d+)$/.exec(part.trim());
    const dims = m ? [Number(m[1]), Number(m[2]), Number(m[3])] : [];
    if (dims.length !== 3 || dims.some((d) => !Number.isInteger(d) || d < 1 || d > 8192)) {
      throw new BenchUsageError(`--shapes: ${JSON.stringify(part)} is not MxKxN with sizes 1-8192 (e.g. 128x784x128)`);
    }
    return dims as [number, number, number];
  });
}

/** The record in `file`, if it is a benchmark record, so one suite's run keeps the other's results. */
function previousRecord(file: string): Record<string, unknown> | null {
  if (!existsSync(file)) return null;
  try {
    const old = JSON.parse(readFileSync(file, 'utf8')) as unknown;
    return typeof old === 'object' && old !== null && !Array.isArray(old) ? (old as Record<string, unknown>) : null;
  } catch {
    return null;
  }
}

/**
 * Runs the suites `options` name and returns the exit code: 0 done, 1 a benchmark or backend
 * failed. A bad option throws a BenchUsageError before anything runs.
 */
export async function runBench(options: BenchOptions, io: BenchIo = consoleIo, settings: RunBenchSettings = {}): Promise<number> {
  try {
    return await runSuites(planBench(options), io, settings.defaultJsonFile ?? true);
  } catch (error) {
    if (error instanceof BenchUsageError) throw error;
    io.err(`benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  }
}

type BenchPlan = ReturnType<typeof planBench>;

/** The options checked and turned into what the suites take. */
function planBench(values: BenchOptions) {
  const suite = values.suite ?? 'kernels';
  if (suite !== 'kernels' && suite !== 'train' && suite !== 'all') throw new BenchUsageError(`unknown suite ${JSON.stringify(suite)} (kernels, train or all)`);
  const runKernels = suite !== 'train';
  const runTrain = suite !== 'kernels';
  const shapes = values.shapes !== undefined ? parseShapes(values.shapes) : undefined;
  if (shapes && !runKernels) throw new BenchUsageError('--shapes applies to the kernels suite');
  const peakOverride = values.peak !== undefined ? parsePeakGflops(values.peak) : undefined;
  if (peakOverride === null) throw new BenchUsageError(`--peak must be a positive number of GFLOP/s (single-core peak of the native ISA), got ${values.peak}`);
  let models: string[] | undefined;
  if (values.models !== undefined) {
    if (!runTrain) throw new BenchUsageError('--models applies to the train suite');
    models = values.models.split(',').map((m) => m.trim());
    const unknown = models.filter((n) => !TRAIN_MODELS.some((m) => m.name === n));
    if (unknown.length > 0) throw new BenchUsageError(`--models: unknown model ${unknown.join(', ')} (one of ${TRAIN_MODELS.map((m) => m.name).join(', ')})`);
  }
  if (values.data !== undefined && !runTrain) throw new BenchUsageError('--data applies to the train suite');
  let epochs: number | undefined;
  if (values.epochs !== undefined) {
    if (!runTrain) throw new BenchUsageError('--epochs applies to the train suite');
    epochs = Number(values.epochs);
    if (!Number.isInteger(epochs) || epochs < 1 || epochs > 100) throw new BenchUsageError(`--epochs must be an integer from 1 to 100 (timed epochs after the warm-up), got ${values.epochs}`);
  }

  let precisions: Precision[] = ['fp32'];
  if (values.precision !== undefined) {
    if (!runTrain) throw new BenchUsageError('--precision applies to the train suite');
    precisions = [...new Set(values.precision.split(',').map((p) => p.trim()))] as Precision[];
    const bad = precisions.filter((p) => !PRECISIONS.includes(p));
    if (bad.length > 0 || precisions.length === 0) throw new BenchUsageError(`--precision: ${JSON.stringify(values.precision)} is not a list of ${PRECISIONS.join(', ')}`);
  }
  let steps: TrainStepMode[] = ['fused'];
  if (values.step !== undefined) {
    if (!runTrain) throw new BenchUsageError('--step applies to the train suite');
    steps = [...new Set(values.step.split(',').map((p) => p.trim()))] as TrainStepMode[];
    if (steps.some((p) => !TRAIN_STEP_MODES.includes(p))) throw new BenchUsageError(`--step: ${JSON.stringify(values.step)} is not a list of ${TRAIN_STEP_MODES.join(', ')}`);
  }
  if (values.vsTorch && !runTrain) throw new BenchUsageError('--vs-torch applies to the train suite');
  if (values.vsTfjs && !runTrain) throw new BenchUsageError('--vs-tfjs applies to the train suite');
  const backends = backendsFor(values.backend ?? 'all');
  return { suite, runKernels, runTrain, shapes, peakOverride, models, epochs, precisions, steps, backends, values: { ...values, quick: values.quick ?? false } };
}

async function runSuites(plan: BenchPlan, io: BenchIo, defaultJsonFile: boolean): Promise<number> {
  const { suite, runKernels, runTrain, values } = plan;
  const { names, notes } = plan.backends;
  for (const n of notes) io.out(n);
  const started = new Date();
  const host = machine();
  if (host.loadAverageAtStart !== null && host.loadAverageAtStart > host.logicalCpus) {
    io.out(`note: load average ${host.loadAverageAtStart.toFixed(1)} on ${host.logicalCpus} CPUs: the machine is busy, timings will be noisy`);
  }
  const progress = (l: string): void => io.err(`  ${l}`);

  const record: Record<string, unknown> = {
    suite,
    date: started.toISOString(),
    quick: values.quick,
    machine: host,
    backends: names.map((n) => {
      const r = tryLoadBackend(n);
      return r.ok ? r.kernels.info() : { backend: n };
    }),
    notes,
  };

  if (runKernels) Object.assign(record, await kernelsSuite(plan, host, io, progress));
  if (runTrain) Object.assign(record, await trainSuite(plan, host, io, progress));
  record['loadAverageAtEnd'] = loadavg()[0] ?? null;
  const file = values.json !== undefined ? resolve(values.json) : defaultJsonFile ? join(packageRoot(), 'bench', 'results', `${started.toISOString().slice(0, 10)}${values.quick ? '-quick' : ''}.json`) : null;
  if (file !== null) writeRecord(file, record, plan, io);
  return 0;
}

type Host = ReturnType<typeof machine>;
type Progress = (line: string) => void;

/** The kernels suite: GEMM and the other kernels timed per backend, % of peak, numpy/OpenBLAS beside them. */
async function kernelsSuite(plan: BenchPlan, host: Host, io: BenchIo, progress: Progress): Promise<Record<string, unknown>> {
  const { shapes, peakOverride, values } = plan;
  const { names } = plan.backends;
  io.out(
    'GEMM forms (row-major, C is M x N, inner K): ' +
      Object.entries(GEMM_FORMS)
        .map(([f, d]) => `${f} = ${d.storage} (${d.use})`)
        .join('; '),
  );
  if (names.includes('reference')) {
    io.out(`reference: GEMM shapes above ${REFERENCE_MAX_FLOPS / 1e6} MFLOP per call are skipped (plain loops would take seconds per call); its timings use quick settings`);
  }
  const infos = names.flatMap((n) => {
    const r = tryLoadBackend(n);
    return r.ok ? [r.kernels.info()] : [];
  });
  const peak = resolvePeak(infos, host.cpuFlags, peakOverride !== undefined ? { override: peakOverride } : {});
  for (const l of peak.lines) io.out(l);
  const rows = await runKernelBench({ backends: names, quick: values.quick, ...(shapes ? { shapes } : {}), log: progress, peak });
  // numpy/OpenBLAS at each benchmarked thread count (native's and 1), after the densetrain timings.
  const openblas = values.openblas === false
    ? null
    : await runOpenBlasBench({ shapes: shapes ?? GEMM_SHAPES, forms: Object.keys(GEMM_FORMS) as GemmForm[], threads: [...new Set([...infos.map((i) => i.threads), 1])], quick: values.quick, log: progress });
  if (openblas) attachOpenBlas(rows, openblas);
  for (const l of openblas?.lines ?? []) io.out(l);
  printTable(rows, io);
  return { gemmForms: GEMM_FORMS, statistic: 'median (tinybench latency.p50)', peak, openblas, rows };
}

/** The train suite: seconds per epoch of train() per backend and model, PyTorch beside them with --vs-torch. */
async function trainSuite(plan: BenchPlan, host: Host, io: BenchIo, progress: Progress): Promise<Record<string, unknown>> {
  const { models, epochs, precisions, steps, values } = plan;
  const { names } = plan.backends;
  const record: Record<string, unknown> = {};
  io.out(
    'train: seconds per epoch of train() (the CLI trainer, checkpoint and model written every epoch) with val-split 0, ' +
      'median of the timed epochs after 1 warm-up epoch; GEMM-bound = the batch GEMMs at their exact shapes (tinybench medians) x batches',
  );
  const train = await runTrainBench({ backends: names, quick: values.quick, precisions, steps, ...(models ? { models } : {}), ...(epochs ? { epochs } : {}), ...(values.data !== undefined ? { data: values.data } : {}), log: progress });
  for (const n of train.notes) io.out(`note: ${n}`);
  if (values.vsTorch) {
    // PyTorch at native's thread count (1 when native did not run), after the densetrain timings.
    const threads = train.rows.find((r) => r.backend === 'native')?.threads ?? 1;
    const trainSet = (await loadDataset(values.data ?? train.data.name, { seed: 1 })).train;
    const torch = await runTorchBench({
          models: TRAIN_MODELS.filter((m) => train.rows.some((r) => r.model === m.name)),
          precisions,
          threads,
          epochs: train.timedEpochs,
          warmup: WARMUP_EPOCHS,
          trainSet,
          recipe: { lr: DEFAULT_CONFIG.lr, momentum: DEFAULT_CONFIG.momentum, nesterov: DEFAULT_CONFIG.nesterov, l2: DEFAULT_CONFIG.l2 },
          log: progress,
        });
    attachTorch(train.rows, torch);
    for (const l of torch.lines) io.out(l);
    record['torch'] = torch;
  }
  if (values.vsTfjs) {
    // TF.js wasm in this process, after the densetrain timings (and PyTorch's, when asked for).
    const tfjs = await runTfjsBench({
      models: TRAIN_MODELS.filter((m) => train.rows.some((r) => r.model === m.name)),
      epochs: train.timedEpochs,
      warmup: WARMUP_EPOCHS,
      trainSet: (await loadDataset(values.data ?? train.data.name, { seed: 1 })).train,
      recipe: { lr: DEFAULT_CONFIG.lr, momentum: DEFAULT_CONFIG.momentum, nesterov: DEFAULT_CONFIG.nesterov, l2: DEFAULT_CONFIG.l2 },
      log: progress,
    });
    attachTfjs(train.rows, tfjs);
    for (const l of tfjs.lines) io.out(l);
    record['tfjs'] = tfjs;
  }
  for (const r of train.rows) if (r.note) io.out(`${r.backend} ${r.model}: ${r.note}`);
  printTrainTable(train, io);
  io.out(`peak RSS of this process: ${(train.peakRssBytes / 2 ** 20).toFixed(0)} MB (process.resourceUsage().maxRSS)`);
  record['train'] = { date: new Date().toISOString(), quick: values.quick, loadAverageAtStart: host.loadAverageAtStart, loadAverageAtEnd: loadavg()[0] ?? null, ...train };
  return record;
}

/** Writes the record to `file`, keeping the other suite's results a previous run left there. */
function writeRecord(file: string, record: Record<string, unknown>, plan: BenchPlan, io: BenchIo): void {
  const { runKernels, runTrain } = plan;
  const old = previousRecord(file);
  if (old) {
    // Keep the other suite's results from the same file.
    if (!runKernels && Array.isArray(old['rows'])) {
      for (const key of ['gemmForms', 'statistic', 'peak', 'openblas', 'rows']) record[key] = old[key];
      record['kernelsRun'] = old['kernelsRun'] ?? { date: old['date'], quick: old['quick'], machine: old['machine'], backends: old['backends'] };
    }
    if (!runTrain && old['train'] !== undefined) record['train'] = old['train'];
    record['suite'] = [record['rows'] !== undefined ? 'kernels' : null, record['train'] !== undefined ? 'train' : null].filter(Boolean).join('+');
  }
  mkdirSync(dirname(file), { recursive: true });
  writeFileSync(file, `${JSON.stringify(record, null, 2)}\n`);
  io.out(`results written to ${file}`);
}

/** The developers' command line (argv without the program name) as BenchOptions; throws BenchUsageError. */
export function parseBenchArgs(argv: string[]): BenchOptions & { help: boolean } {
  let parsed;
  try {
    parsed = parseArgs({
      args: argv,
      allowPositionals: true,
      options: {
        backend: { type: 'string' },
        json: { type: 'string' },
        quick: { type: 'boolean', default: false },
        shapes: { type: 'string' },
        models: { type: 'string' },
        epochs: { type: 'string' },
        data: { type: 'string' },
        peak: { type: 'string' },
        'no-openblas': { type: 'boolean', default: false },
        precision: { type: 'string' },
        step: { type: 'string' },
        'vs-torch': { type: 'boolean', default: false },
        'vs-tfjs': { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    });
  } catch (error) {
    throw new BenchUsageError((error as Error).message);
  }
  const { values, positionals } = parsed;
  if (positionals.length > 1) throw new BenchUsageError(`expected at most one suite, got ${positionals.join(' ')}`);
  const { 'no-openblas': noOpenblas, 'vs-torch': vsTorch, 'vs-tfjs': vsTfjs, ...rest } = values;
  return { ...rest, ...(positionals[0] !== undefined ? { suite: positionals[0] } : {}), openblas: !noOpenblas, vsTorch, vsTfjs };
}

/** `node dist/src/bench/run.js ...`: exit 2 with the usage line on a bad option. */
async function benchMain(argv: string[]): Promise<number> {
  try {
    const options = parseBenchArgs(argv);
    if (options.help) {
      consoleIo.out(USAGE);
      return 0;
    }
    return await runBench(options);
  } catch (error) {
    if (!(error instanceof BenchUsageError)) throw error;
    consoleIo.err(`${error.message}\n${USAGE}`);
    return 2;
  }
}

/** True when this file is the program node runs (node dist/src/bench/run.js), not an import. */
function isEntryPoint(): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return realpathSync(script) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (isEntryPoint()) {
  benchMain(process.argv.slice(2)).then(
    (code) => {
      process.exitCode = code;
    },
    (error: unknown) => {
      console.error(`benchmark failed: ${error instanceof Error ? error.message : String(error)}`);
      process.exitCode = 1;
    },
  );
}
