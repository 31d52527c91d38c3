/**
 * `densetrain info`: what can run here — every backend, the one auto picks, versions, data.
 * `densetrain info --model FILE`: what a trained model is — layers, parameters, multiply-adds,
 * input scaling, where it came from.
 */
import { availableParallelism } from 'node:os';
import Table from 'cli-table3';
import type { PixelScaling } from '../../data/types.js';
import { summarizeArchitecture, type ModelSummary } from '../../model/summary.js';
import { withoutRowRules } from '../../report/terminal.js';
import { BACKEND_NAMES, formatBackendInfo, selectKernels, tryLoadBackend } from '../../kernels/index.js';
import { nativeAddonSource } from '../../kernels/native.js';
import type { Bf16Support } from '../../kernels/types.js';
import { loadData, type DatasetListing } from '../deps.js';
import { formatCount, formatPercent, plural } from '../../format.js';
import { type Io } from '../io.js';
import { addModelOptions, loadModelFile, type ModelFileOptions, type ModelOrigin } from '../model-file.js';
import type { RegisterCommand } from '../context.js';
import { printListing } from './data.js';
import { packageVersion } from '../version.js';
import { firstLine } from '../../first-line.js';

interface BackendStatus {
  name: string;
  available: boolean;
  isa?: string;
  threads?: number;
  reason?: string;
  /** native only: the addon file and where it came from (prebuilt, compiled, DENSETRAIN_NATIVE_PATH). */
  addon?: { path: string; source: string };
  /** bf16 mixed-precision GEMMs: available or why not (see Bf16Support). */
  bf16?: Bf16Support;
}

export interface InfoReport {
  densetrain: string;
  node: string;
  platform: string;
  cpus: number;
  env: Record<string, string>;
  backends: BackendStatus[];
  auto: string;
  datasets: DatasetListing[] | string;
}

export async function collectInfo(): Promise<InfoReport> {
  const backends: BackendStatus[] = BACKEND_NAMES.map((name) => {
    const result = tryLoadBackend(name);
    if (!result.ok) return { name, available: false, reason: result.reason };
    const info = result.kernels.info();
    const addon = name === 'native' ? nativeAddonSource() : undefined;
    return { name, available: true, isa: info.isa, threads: info.threads, ...(addon ? { addon } : {}), ...(info.bf16 ? { bf16: info.bf16 } : {}) };
  });
  let auto: string;
  try {
    auto = formatBackendInfo(selectKernels().info);
  } catch (error) {
    auto = `none: ${firstLine(error)}`;
  }
  const env: Record<string, string> = {};
  for (const key of ['DENSETRAIN_BACKEND', 'DENSETRAIN_THREADS']) {
    const value = process.env[key];
    if (value !== undefined && value !== '') env[key] = value;
  }
  let datasets: DatasetListing[] | string;
  try {
    datasets = await (await loadData()).listDatasets();
  } catch (error) {
    datasets = `could not list datasets: ${firstLine(error)}`;
  }
  return {
    densetrain: packageVersion(),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    cpus: availableParallelism(),
    env,
    backends,
    auto,
    datasets,
  };
}

export interface ModelReport {
  architecture: { layers: number[]; activation: string; alpha: number };
  summary: ModelSummary;
  scaling: PixelScaling | null;
  classNames: string[] | null;
  origin: ModelOrigin;
}

export async function collectModelInfo(options: ModelFileOptions): Promise<ModelReport> {
  const { model, origin } = await loadModelFile(options);
  try {
    const params = model.getParameters();
    const slopes = model.parameterNames.filter((n) => n.endsWith('.prelu_slope')).map((n) => params[n]![0]!);
    const a = model.architecture;
    return {
      architecture: { layers: [...a.layers], activation: a.activation, alpha: a.alpha },
      summary: summarizeArchitecture(a, slopes),
      scaling: model.scaling,
      classNames: model.classNames,
      origin,
    };
  } finally {
    model.dispose();
  }
}

/** "x / 255, then (x - 0.1307) / 0.3081" */
export function describeScaling(scaling: PixelScaling | null): string {
  if (scaling === null) return 'unknown (no densetrain metadata): feed the pixels the way the network was trained';
  if (scaling.kind === 'unit') return 'pixel / 255 (0-255 -> 0-1)';
  return `(pixel / 255 - ${Number(scaling.mean.toPrecision(6))}) / ${Number(scaling.std.toPrecision(6))} (standardised with the training split's mean and std)`;
}

function printModelReport(io: Io, r: ModelReport): void {
  const { summary, origin } = r;
  io.out(`model: ${origin.file}`);
  io.out(`kind: ${origin.kind}, ${formatCount(origin.bytes)} bytes, modified ${origin.modified}`);
  io.out(`layers: ${r.architecture.layers.join(' -> ')}${summary.layers.length > 1 ? `, hidden activation ${r.architecture.activation}` : ''}`);
  const table = new Table({
    head: ['layer', 'shape (out x in)', 'activation', 'parameters', 'multiply-adds'],
    colAligns: ['left', 'right', 'left', 'right', 'right'],
    style: { head: [], border: [] },
  });
  for (const l of summary.layers) {
    table.push([`layers.${l.index}`, `${l.outputs} x ${l.inputs}`, l.activation, formatCount(l.parameters), formatCount(l.multiplyAdds)]);
  }
  table.push(['total', '', '', formatCount(summary.parameters), formatCount(summary.multiplyAdds)]);
  io.out(withoutRowRules(table.toString(), { beforeLast: true }));
  io.out(`multiply-adds per image: ${formatCount(summary.multiplyAdds)}; parameters: ${formatCount(summary.parameters)} (${formatCount(summary.parameters * 4)} bytes as float32)`);
  io.out(`input scaling: ${describeScaling(r.scaling)}`);
  io.out(`classes: ${r.classNames ? r.classNames.join(', ') : `${r.architecture.layers[r.architecture.layers.length - 1]} (no names recorded)`}`);
  const run = origin.run;
  if (run) {
    const test = run.testAccuracy !== null ? `, test accuracy ${formatPercent(run.testAccuracy)}` : '';
    const best = run.bestEpoch !== null ? ` (kept epoch ${run.bestEpoch})` : '';
    io.out(`from run: ${run.folder}: data ${run.data}, ${plural(run.epochs, 'epoch')}${best}, ${run.status}${test}${run.backend ? `, backend ${run.backend}` : ''}${run.finishedAt ? `, finished ${run.finishedAt}` : ''}`);
  } else {
    io.out('from run: unknown (no metrics.json or metrics.jsonl beside the file)');
  }
}

export const registerInfoCommand: RegisterCommand = (program, { io }) => {
  const command = program
    .command('info')
    .description('show the backends (available or why not), the one auto picks, versions and data locations; with --model, summarise a model');
  addModelOptions(command, { required: false });
  command
    .option('--json', 'print the same as JSON')
    .option('--verbose', 'print stack traces on errors')
    .action(async (options: { json?: boolean } & Partial<ModelFileOptions>) => {
      if (options.model !== undefined) {
        const report = await collectModelInfo(options as ModelFileOptions);
        if (options.json) io.out(JSON.stringify(report, null, 2));
        else printModelReport(io, report);
        return;
      }
      const info = await collectInfo();
      if (options.json) {
        io.out(JSON.stringify(info, null, 2));
        return;
      }
      io.out(`densetrain ${info.densetrain}, Node ${info.node}, ${info.platform}, ${info.cpus} CPUs`);
      io.out('backends:');
      for (const b of info.backends) {
        const status = b.available
          ? `available  ${b.isa}, ${b.threads} thread${b.threads === 1 ? '' : 's'}${b.addon ? ` (${b.addon.source} addon: ${b.addon.path})` : ''}`
          : `unavailable: ${b.reason}`;
        io.out(`  ${b.name.padEnd(10)} ${status}`);
        if (b.bf16) {
          io.out(`  ${''.padEnd(10)} bf16: ${b.bf16.available ? `yes, ${b.bf16.detail}` : `no (fp32 only): ${b.bf16.detail}`}`);
          if (b.bf16.note) io.out(`  ${''.padEnd(10)} ${b.bf16.note}`);
        }
      }
      io.out(`auto picks: ${info.auto}`);
      for (const [key, value] of Object.entries(info.env)) io.out(`${key}=${value}`);
      io.out('data:');
      if (typeof info.datasets === 'string') io.out(`  ${info.datasets}`);
      else if (info.datasets.length === 0) io.out('  none found');
      else printListing(io, info.datasets, { indent: '  ' });
    });
};
