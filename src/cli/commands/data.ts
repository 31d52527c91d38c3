/** `densetrain data list` and `densetrain data download mnist|fashion-mnist`. */
import { UsageError } from '../errors.js';
import { loadData, type DatasetListing } from '../deps.js';
import type { Io } from '../io.js';
import type { RegisterCommand } from '../context.js';

const DOWNLOADABLE = ['mnist', 'fashion-mnist'];

/** One line per dataset (name, status, where or how to get it), then its description and where it was looked for. */
export function printListing(io: Io, listing: DatasetListing[], options: { verbose?: boolean; indent?: string } = {}): void {
  const pad = options.indent ?? '';
  for (const entry of listing) {
    const status = entry.available ? 'available' : 'not found';
    io.out(`${pad}${entry.name.padEnd(14)} ${status.padEnd(10)} ${entry.available ? (entry.location ?? '') : (entry.hint ?? '')}`.trimEnd());
    if (entry.description) io.out(`${pad}${''.padEnd(14)} ${entry.description}`);
    if (options.verbose || !entry.available) {
      for (const s of entry.searched) io.out(`${pad}${''.padEnd(14)}   looked in ${s.dir}: ${s.status}`);
    }
  }
}

export const registerDataCommand: RegisterCommand = (program, { io }) => {
  const data = program.command('data').description('list and download datasets');

  data
    .command('list')
    .description('the named datasets: available here or not, where, and how to get them')
    .option('--verbose', 'also show every place searched')
    .action(async (options: { verbose?: boolean }) => {
      const module = await loadData();
      printListing(io, await module.listDatasets(), { verbose: options.verbose ?? false });
    });

  data
    .command('download')
    .description('download mnist or fashion-mnist (the four IDX files, checksums verified) into the cache or --dir')
    .argument('<name>', DOWNLOADABLE.join(' | '))
    .option('--mirror <url>', 'base URL to download from instead of the built-in mirrors')
    .option('--dir <dir>', 'directory to put the files in (default: the densetrain cache, where --data <name> looks)')
    .option('--force', 'download again even if verified files are there')
    .option('--quiet', 'no progress display')
    .option('--verbose', 'print stack traces on errors')
    .action(async (name: string, options: { mirror?: string; dir?: string; force?: boolean; quiet?: boolean }) => {
      if (!DOWNLOADABLE.includes(name)) {
        throw new UsageError(`data download: unknown dataset ${JSON.stringify(name)}; choose ${DOWNLOADABLE.join(' or ')}`);
      }
      const module = await loadData();
      const display = options.quiet ? undefined : module.createDownloadProgress(io.stderr);
      const controller = new AbortController();
      const onSigint = () => controller.abort();
      process.once('SIGINT', onSigint);
      try {
        const result = await module.downloadDataset(name, {
          ...(options.mirror !== undefined ? { mirror: options.mirror } : {}),
          ...(options.dir !== undefined ? { dir: options.dir } : {}),
          ...(options.force ? { force: true } : {}),
          ...(display ? { onProgress: display.onProgress } : {}),
          signal: controller.signal,
        });
        display?.stop();
        const fetched = result.files.filter((f) => f.status === 'downloaded').length;
        io.out(`${name}: ${result.files.length} files in ${result.dir} (${fetched} downloaded, ${result.files.length - fetched} already there)`);
        io.out(`use it with: densetrain train --data ${options.dir ?? name}`);
      } finally {
        display?.stop();
        process.off('SIGINT', onSigint);
      }
    });
};
