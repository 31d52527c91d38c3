/**
 * `densetrain compare`: trains several configurations on the same dataset, split and seed and
 * writes one comparison. The configurations are either a comma list in one training option
 * (`--activation relu,tanh,sigmoid`; `--layers` takes ';' between layer lists) with every other
 * option shared, or several `--config` files (flags apply on top of each). Each run gets its own
 * subfolder with its full run folder (metrics.json, model.safetensors, report.html); the parent
 * folder gets compare.html and compare.json.
 */
import { basename, extname, join } from 'node:path';
import { existsSync } from 'node:fs';
import type { Option } from 'commander';
import { CONFIG_KEYS, optionFlag, type ConfigKey } from '../../train/schema.js';
import { EXIT_OK, ExitRequest, UsageError } from '../errors.js';
import { comparedRun, folderName, readSeriesFile, refuseWithResume, runJson, finishSeriesPage, runSeries, seriesFlags, type RunPlan, type SeriesResult } from '../series.js';
import { addSeriesOptions, positiveInt } from '../parallel.js';
import type { CliContext, RegisterCommand } from '../context.js';
import { addTrainConfigOptions, resolveTrainOptions } from '../options.js';
import { defaultRunDir } from '../run-folder.js';
import { writeJsonAtomic } from '../../train/run-folder.js';

interface CompareOptions extends Record<string, unknown> {
  config?: string[];
  repeats?: string;
  parallel?: string;
  queue?: string;
  resume?: string;
  out?: string;
  quiet?: boolean;
  verbose?: boolean;
}

/** Options every run of a comparison shares (a list in one of them is refused). */
const SHARED: readonly ConfigKey[] = ['data', 'seed', 'valSplit', 'backend', 'threads'];

export const registerCompareCommand: RegisterCommand = (program, context) => {
  const command = program
    .command('compare')
    .description('train several configurations on the same data, split and seed; writes compare.html with every run side by side');
  addTrainConfigOptions(command, context.defaults);
  // Here --config may repeat: one run per file.
  const config = command.options.find((o: Option) => o.long === '--config');
  if (config) {
    config.argParser((value: string, previous: string[] | undefined) => [...(previous ?? []), value]);
    config.description = 'JSON file of training options; repeat it for one run per file (flags given apply to every run)';
  }
  addSeriesOptions(command);
  command
    .option('--out <dir>', 'folder for compare.html and one subfolder per run (default: runs/<timestamp>)')
    .option('--resume <dir>', 'continue an interrupted comparison: finished runs are kept, unfinished ones resume their checkpoints')
    .option('--quiet', 'no progress bars: one line per epoch')
    .option('--verbose', 'show each resolved config, and stack traces on errors')
    .addHelpText(
      'after',
      `
One option given as a comma list makes one run per value; the other options apply to every run:
  densetrain compare --activation relu,leaky_relu,tanh --epochs 5 --out runs/act
  densetrain compare --layers '784,128,10;784,512,10;784,256,256,10' --out runs/depth
Or one run per config file:
  densetrain compare --config a.json --config b.json --epochs 5 --out runs/ab
Each configuration 5 times (seeds 1-5), 2 runs at once, tables with mean ± std:
  densetrain compare --activation relu,prelu --repeats 5 --parallel auto --out runs/act5
--data, --seed, --val-split, --backend and --threads are shared by every run.`,
    )
    .action(async (options: CompareOptions) => {
      const code = await compareCommand(options, context);
      if (code !== EXIT_OK) throw new ExitRequest(code);
    });
};

/** The value of a list option split into its items (layers: ';' between lists, others ','). */
function listItems(key: ConfigKey, raw: string): string[] {
  const sep = key === 'layers' ? ';' : ',';
  const items = raw.split(sep).map((s) => s.trim());
  if (items.some((s) => s === '')) {
    const example = key === 'layers' ? "'784,128,10;784,256,10'" : key === 'activation' ? 'relu,tanh' : '0.01,0.1';
    throw new UsageError(`${optionFlag(key)} must be a list of values separated by '${sep}' like ${example}, got ${JSON.stringify(raw)}`);
  }
  const seen = new Set<string>();
  for (const item of items) {
    if (seen.has(item)) throw new UsageError(`${optionFlag(key)} lists ${JSON.stringify(item)} twice`);
    seen.add(item);
  }
  return items;
}

/** The runs to train, from a list option or from several --config files. */
export async function comparePlans(options: CompareOptions, context: CliContext): Promise<{ plans: RunPlan[]; varied: string }> {
  const configs = options.config ?? [];
  const lists = CONFIG_KEYS.filter((key) => {
    const raw = options[key];
    return typeof raw === 'string' && raw.includes(key === 'layers' ? ';' : ',');
  });
  if (lists.length > 1) {
    throw new UsageError(
      `compare varies one option at a time, got lists in ${lists.map(optionFlag).join(' and ')} (write a --config file per run for other combinations)`,
    );
  }
  const key = lists[0];
  if (key !== undefined) {
    if (SHARED.includes(key)) {
      throw new UsageError(`${optionFlag(key)} cannot be a list: every run of a comparison uses the same data, split, seed and kernels`);
    }
    if (configs.length > 1) throw new UsageError(`give either a list in ${optionFlag(key)} or several --config files, not both`);
    const plans: RunPlan[] = [];
    for (const item of listItems(key, options[key] as string)) {
      const resolved = await resolveTrainOptions({ ...options, [key]: item, config: configs[0] }, context.defaults);
      const label = key === 'layers' ? resolved.config.layers.join('-') : item;
      plans.push({ label, folder: folderName(`${optionFlag(key).slice(2)}-${label}`), resolved, origin: `${optionFlag(key)} ${item}` });
    }
    return { plans, varied: optionFlag(key) };
  }
  if (configs.length >= 2) {
    const stems = configs.map((file) => basename(file, extname(file)));
    const plans: RunPlan[] = [];
    for (const [i, file] of configs.entries()) {
      const resolved = await resolveTrainOptions({ ...options, config: file }, context.defaults);
      const stem = stems[i]!;
      const label = stems.filter((s) => s === stem).length > 1 ? file : stem;
      plans.push({ label, folder: folderName(stems.filter((s) => s === stem).length > 1 ? `${i + 1}-${stem}` : stem), resolved, origin: `--config ${file}` });
    }
    return { plans, varied: '--config files' };
  }
  if ((positiveInt(options.repeats as string | undefined, '--repeats') ?? 1) > 1) {
    // One configuration over several seeds (e.g. the PReLU study: --activation prelu --repeats 5).
    const resolved = await resolveTrainOptions({ ...options, config: configs[0] }, context.defaults);
    const given = CONFIG_KEYS.filter((k) => options[k] !== undefined && !['data', 'seed', 'backend', 'threads', 'epochs'].includes(k));
    const label = given.length ? given.map((k) => `${optionFlag(k).slice(2)}=${String(options[k])}`).join(' ') : configs[0] !== undefined ? basename(configs[0], extname(configs[0])) : 'defaults';
    return { plans: [{ label, folder: folderName(label), resolved, origin: 'the options given' }], varied: '--repeats (one configuration)' };
  }
  throw new UsageError(
    'compare needs several configurations: a comma list in one option (e.g. --activation relu,tanh), two or more --config files, or --repeats N for one configuration',
  );
}

export async function compareCommand(options: CompareOptions, context: CliContext): Promise<number> {
  const { io } = context;
  let plans: RunPlan[];
  let varied: string;
  let outDir: string;
  let repeats: number;
  if (options.resume !== undefined) {
    refuseWithResume(options, [...CONFIG_KEYS, 'config', 'out', 'repeats']);
    const saved = await readSeriesFile(options.resume, 'compare');
    ({ plans } = saved);
    varied = String(saved.file.meta['varied']);
    outDir = options.resume;
    repeats = saved.file.repeats;
  } else {
    ({ plans, varied } = await comparePlans(options, context));
    outDir = options.out ?? defaultRunDir();
    repeats = positiveInt(options.repeats, '--repeats') ?? 1;
  }
  const result = await runSeries({
    io,
    plans,
    outDir,
    repeats,
    ...seriesFlags(options),
    command: { name: 'compare', meta: { varied } },
    checkOutDir: async (dir) => {
      if (existsSync(join(dir, 'compare.html'))) throw new UsageError(`--out ${dir} already holds a comparison (compare.html); choose another folder`);
    },
  });
  return finishComparison(context, result, outDir, varied);
}

async function finishComparison({ io }: CliContext, result: SeriesResult, outDir: string, varied: string): Promise<number> {
  const report = await import('../../report/compare.js');
  const runs = result.runs.map((run) => comparedRun(run, outDir));
  await writeJsonAtomic(join(outDir, 'compare.json'), {
    version: 1,
    varied,
    dataset: result.dataset.name,
    repeats: result.repeats,
    interrupted: result.interrupted,
    runs: result.runs.map((run, i) => runJson(run, runs[i]!, report)),
  });
  io.out(report.runsTable(runs));
  return finishSeriesPage(io, result, {
    command: 'compare',
    noun: 'comparison',
    outDir,
    diverged: result.runs.filter((r) => r.status === 'diverged').map((r) => r.plan.label),
    write: () => report.writeComparisonReport(outDir, { varied, runs, settingName: optionFlag }),
  });
}
