/**
 * `densetrain sweep --param NAME --values LIST`: one run per value of one parameter (same data,
 * split and seed; every other training option shared), each in its own run folder, then
 * sweep.html (test loss and accuracy against the value; a diverged value stays in the table and
 * is marked on the charts) and sweep.json.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { CONFIG_KEYS, ConfigError, type ConfigKey, optionFlag } from '../../train/schema.js';
import { EXIT_OK, ExitRequest, UsageError } from '../errors.js';
import { comparedRun, folderName, readSeriesFile, refuseWithResume, runJson, finishSeriesPage, runSeries, seriesFlags, type RunPlan } from '../series.js';
import { addSeriesOptions, positiveInt } from '../parallel.js';
import type { CliContext, RegisterCommand } from '../context.js';
import { addTrainConfigOptions, numberOrText, resolveTrainOptions } from '../options.js';
import { defaultRunDir } from '../run-folder.js';
import { writeJsonAtomic } from '../../train/run-folder.js';

interface SweepOptions extends Record<string, unknown> {
  param?: string;
  values?: string;
  repeats?: string;
  parallel?: string;
  queue?: string;
  resume?: string;
  layerIndex?: string;
  out?: string;
  quiet?: boolean;
  verbose?: boolean;
}

interface SweepParam {
  /** The config key the value goes into ('layers' for width). */
  key: ConfigKey;
  /** Plot against a log x axis when the values span a decade or more. */
  log: boolean;
}

export const SWEEP_PARAMS: Record<string, SweepParam> = {
  lr: { key: 'lr', log: true },
  l2: { key: 'l2', log: true },
  alpha: { key: 'alpha', log: false },
  momentum: { key: 'momentum', log: false },
  'batch-size': { key: 'batchSize', log: true },
  width: { key: 'layers', log: true },
};
const PARAM_NAMES = Object.keys(SWEEP_PARAMS);

export const registerSweepCommand: RegisterCommand = (program, context) => {
  const command = program
    .command('sweep')
    .description('train one model per value of one parameter (same data, split and seed); writes sweep.html and sweep.json');
  command
    .option('--param <name>', `the parameter to sweep: ${PARAM_NAMES.join(', ')} (required)`)
    .option('--values <list>', 'comma-separated values, e.g. 0.001,0.01,0.1 (required)')
    .option('--layer-index <i>', 'for --param width: which hidden layer, 0 = the first', '0');
  addTrainConfigOptions(command, context.defaults);
  addSeriesOptions(command);
  command
    .option('--resume <dir>', 'continue an interrupted sweep: finished runs are kept, unfinished ones resume their checkpoints')
    .option('--out <dir>', 'folder for sweep.html, sweep.json and one subfolder per value (default: runs/<timestamp>)')
    .option('--quiet', 'no progress bars: one line per epoch')
    .option('--verbose', 'show each resolved config, and stack traces on errors')
    .addHelpText(
      'after',
      `
Every other training option applies to every run. A value whose training diverges stays in the
table and is marked on the charts; the sweep carries on. Examples:
  densetrain sweep --param lr --values 0.001,0.01,0.1,1 --epochs 3 --out runs/lr
  densetrain sweep --param alpha --values -0.5,0,0.5,1,2,3 --activation leaky_relu --out runs/slope
  densetrain sweep --param width --layer-index 1 --values 16,64,256 --layers 784,256,128,10`,
    )
    .action(async (options: SweepOptions) => {
      const code = await sweepCommand(options, context);
      if (code !== EXIT_OK) throw new ExitRequest(code);
    });
};

/** "0.1, 1e-3" -> 0.1, 0.001 (in the given order, with the text as typed); anything else is a UsageError naming --values. */
export function parseValues(raw: string): { value: number; text: string }[] {
  const items = raw.split(',').map((s) => s.trim());
  if (items.some((s) => s === '')) {
    throw new UsageError(`--values must be a comma-separated list of numbers like 0.001,0.01,0.1, got ${JSON.stringify(raw)}`);
  }
  const values = items.map((item) => {
    const v = numberOrText(item);
    if (typeof v !== 'number' || !Number.isFinite(v)) throw new UsageError(`--values: ${JSON.stringify(item)} is not a finite number`);
    return v;
  });
  const seen = new Set<number>();
  for (const [i, v] of values.entries()) {
    if (seen.has(v)) throw new UsageError(`--values lists ${items[i]} twice`);
    seen.add(v);
  }
  return values.map((value, i) => ({ value, text: items[i]! }));
}

function paramOf(name: string): SweepParam {
  const param = SWEEP_PARAMS[name];
  if (!param) throw new UsageError(`--param must be one of ${PARAM_NAMES.join(', ')}; got ${JSON.stringify(name)}`);
  return param;
}

/** The runs of a sweep, every value checked against the schema first. */
export async function sweepPlans(options: SweepOptions, context: CliContext): Promise<{ plans: (RunPlan & { value: number })[]; axis: string; param: SweepParam; layerIndex: number | null }> {
  const name = options.param!;
  const param = paramOf(name);
  const values = parseValues(options.values!);
  const base = await resolveTrainOptions(options, context.defaults);
  if (param.key !== 'layers' && options[param.key] !== undefined) {
    throw new UsageError(`${optionFlag(param.key)} is what --param ${name} sweeps; leave it out (the values come from --values)`);
  }
  if (name === 'alpha' && base.config.activation !== 'leaky_relu' && base.config.activation !== 'prelu') {
    throw new UsageError(`--param alpha has no effect with --activation ${base.config.activation}; add --activation leaky_relu or --activation prelu`);
  }
  if (name === 'momentum' && base.config.optimizer !== 'sgd') {
    throw new UsageError(`--param momentum has no effect with --optimizer ${base.config.optimizer}; it applies to sgd`);
  }
  let layerIndex: number | null = null;
  if (name === 'width') {
    const hidden = base.config.layers.length - 2;
    if (hidden < 1) throw new UsageError(`--param width needs a hidden layer, but --layers ${base.config.layers.join(',')} has none`);
    const index = numberOrText(options.layerIndex ?? '0');
    if (typeof index !== 'number' || !Number.isInteger(index) || index < 0 || index >= hidden) {
      throw new UsageError(`--layer-index must be an integer from 0 to ${hidden - 1} (the hidden layers of ${base.config.layers.join(',')}), got ${JSON.stringify(options.layerIndex)}`);
    }
    layerIndex = index;
  } else if (options.layerIndex !== undefined && options.layerIndex !== '0') {
    throw new UsageError(`--layer-index applies only to --param width`);
  }

  const plans: (RunPlan & { value: number })[] = [];
  for (const { value, text: shown } of values) {
    let override: Record<string, unknown>;
    if (layerIndex !== null) {
      if (!Number.isInteger(value) || value < 1) throw new UsageError(`--values ${shown}: a width (units in a hidden layer) must be a positive integer`);
      const layers = [...base.config.layers];
      layers[layerIndex + 1] = value;
      override = { layers: layers.join(',') };
    } else {
      override = { [param.key]: shown };
    }
    let resolved;
    try {
      resolved = await resolveTrainOptions({ ...options, ...override }, context.defaults);
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const why = error.problems.map((p) => p.replace(`${optionFlag(param.key)} `, '')).join('; ');
      throw new UsageError(`--values ${shown} is not a valid ${name}: ${why}`);
    }
    const label = `${name}=${shown}`;
    plans.push({ label, folder: folderName(`${name}-${shown}`), resolved, origin: `--values ${shown} (--param ${name})`, value });
  }
  const axis = layerIndex !== null ? `width of hidden layer ${layerIndex + 1}` : name;
  return { plans, axis, param, layerIndex };
}

/** A resumed sweep's plans and axis, from its series.json. */
async function resumedSweep(dir: string): Promise<{ plans: (RunPlan & { value: number })[]; axis: string; param: SweepParam; name: string; layerIndex: number | null; repeats: number }> {
  const { file, plans } = await readSeriesFile(dir, 'sweep');
  const meta = file.meta as { param: string; axis: string; layerIndex: number | null; values: number[] };
  return { plans: plans.map((p, i) => ({ ...p, value: meta.values[i]! })), axis: meta.axis, param: paramOf(meta.param), name: meta.param, layerIndex: meta.layerIndex, repeats: file.repeats };
}

export async function sweepCommand(options: SweepOptions, context: CliContext): Promise<number> {
  const { io } = context;
  let planned: Awaited<ReturnType<typeof resumedSweep>>;
  let outDir: string;
  if (options.resume !== undefined) {
    refuseWithResume(options, [...CONFIG_KEYS, 'config', 'out', 'repeats', 'param', 'values']);
    if (options.layerIndex !== undefined && options.layerIndex !== '0') refuseWithResume(options, ['layerIndex']);
    planned = await resumedSweep(options.resume);
    outDir = options.resume;
  } else {
    if (options.param === undefined) throw new UsageError(`sweep needs --param (one of ${PARAM_NAMES.join(', ')}), or --resume DIR`);
    if (options.values === undefined) throw new UsageError('sweep needs --values, e.g. --values 0.001,0.01,0.1');
    planned = { ...(await sweepPlans(options, context)), name: options.param, repeats: positiveInt(options.repeats, '--repeats') ?? 1 };
    outDir = options.out ?? defaultRunDir();
  }
  const { plans, axis, param, layerIndex, repeats } = planned;
  const result = await runSeries({
    io,
    plans,
    outDir,
    repeats,
    ...seriesFlags(options),
    command: { name: 'sweep', meta: { param: planned.name, axis, layerIndex, values: plans.map((p) => p.value) } },
    checkOutDir: async (dir) => {
      for (const f of ['sweep.html', 'sweep.json']) {
        if (existsSync(join(dir, f))) throw new UsageError(`--out ${dir} already holds a sweep (${f}); choose another folder`);
      }
    },
  });

  const report = await import('../../report/compare.js');
  // Trained in the order given; shown in order of value.
  const order = result.runs.map((run, i) => ({ run, value: plans[i]!.value })).sort((a, b) => a.value - b.value);
  const runs = order.map(({ run, value }) => ({ ...comparedRun(run, outDir), value }));
  const scale = report.sweepScale(plans.map((p) => p.value), param.log);
  await writeJsonAtomic(join(outDir, 'sweep.json'), {
    version: 1,
    param: planned.name,
    key: param.key,
    layerIndex,
    axis,
    scale,
    values: order.map((o) => o.value),
    dataset: result.dataset.name,
    repeats: result.repeats,
    interrupted: result.interrupted,
    runs: runs.map((run, i) => ({ value: run.value, ...runJson(order[i]!.run, run, report) })),
  });
  io.out(report.runsTable(runs, { valueTitle: axis }));
  return finishSeriesPage(io, result, {
    command: 'sweep',
    noun: 'sweep',
    outDir,
    diverged: runs.filter((r) => r.status === 'diverged').map((r) => r.label),
    write: () => report.writeSweepReport(outDir, { param: axis, scale, runs }),
  });
}
