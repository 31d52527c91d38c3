/** `densetrain info`: what can run here — every backend, the one auto picks, versions, data. */
import { availableParallelism } from 'node:os';
import { BACKEND_NAMES, formatBackendInfo, selectKernels, tryLoadBackend } from '../../kernels/index.js';
import { nativeAddonSource } from '../../kernels/native.js';
import { loadData, type DatasetListing } from '../deps.js';
import type { RegisterCommand } from '../main.js';
import { printListing } from './data.js';
import { packageVersion } from '../version.js';

interface BackendStatus {
  name: string;
  available: boolean;
  isa?: string;
  threads?: number;
  reason?: string;
  /** native only: the addon file and where it came from (prebuilt, compiled, DENSETRAIN_NATIVE_PATH). */
  addon?: { path: string; source: string };
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
    return { name, available: true, isa: info.isa, threads: info.threads, ...(addon ? { addon } : {}) };
  });
  let auto: string;
  try {
    auto = formatBackendInfo(selectKernels().info);
  } catch (error) {
    auto = `none: ${(error as Error).message.split('\n')[0]}`;
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
    datasets = `could not list datasets: ${(error as Error).message.split('\n')[0]}`;
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

export const registerInfoCommand: RegisterCommand = (program, { io }) => {
  program
    .command('info')
    .description('show the backends (available or why not), the one auto picks, versions and data locations')
    .option('--json', 'print the same as JSON')
    .option('--verbose', 'print stack traces on errors')
    .action(async (options: { json?: boolean }) => {
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
      }
      io.out(`auto picks: ${info.auto}`);
      for (const [key, value] of Object.entries(info.env)) io.out(`${key}=${value}`);
      io.out('data:');
      if (typeof info.datasets === 'string') io.out(`  ${info.datasets}`);
      else if (info.datasets.length === 0) io.out('  none found');
      else printListing(io, info.datasets, { indent: '  ' });
    });
};
