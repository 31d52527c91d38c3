/**
 * `densetrain view [DIR]`: a local, read-only web dashboard over every run, compare, sweep and
 * tune folder under DIR (default runs/), live while they train. Binds 127.0.0.1 unless --host
 * says otherwise; Ctrl-C stops it.
 */
import { realpath, stat } from 'node:fs/promises';
import { UsageError } from '../errors.js';
import type { RegisterCommand } from '../context.js';

interface ViewOptions {
  port: string;
  host: string;
  pollMs: string;
  verbose?: boolean;
}

function whole(value: string, flag: string, min: number, max: number): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, got ${JSON.stringify(value)}`);
  return n;
}

export const registerViewCommand: RegisterCommand = (program, { io }) => {
  program
    .command('view')
    .description('a local web dashboard of every run under DIR, updated live while runs train (read-only)')
    .argument('[dir]', 'folder of runs (searched recursively)', 'runs')
    .option('--port <n>', 'port to listen on (0: any free port)', '6006')
    .option('--host <address>', 'address to bind (another than 127.0.0.1 exposes your runs to the network)', '127.0.0.1')
    .option('--poll-ms <n>', 'how often the folder is checked for changes, in milliseconds', '1000')
    .option('--verbose', 'print stack traces on errors')
    .action(async (dir: string, options: ViewOptions) => {
      const port = whole(options.port, '--port', 0, 65535);
      const pollMs = whole(options.pollMs, '--poll-ms', 50, 60_000);
      let root: string;
      try {
        root = await realpath(dir);
        if (!(await stat(root)).isDirectory()) throw new UsageError(`${dir} is a file, not a folder of runs`);
      } catch (error) {
        if (error instanceof UsageError) throw error;
        throw new UsageError(`${dir}: no such folder (train a run into it first, e.g. densetrain train --out ${dir}/first)`);
      }
      const { startViewServer } = await import('../../view/server.js');
      let server;
      try {
        server = await startViewServer({ root, title: root, host: options.host, port, pollMs });
      } catch (error) {
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new UsageError(`--port ${port} is in use on ${options.host}; choose another (--port 0 picks a free one)`);
        if (code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND' || code === 'EACCES') throw new UsageError(`cannot listen on ${options.host}:${port} (${code})`);
        throw error;
      }
      io.out(`densetrain view: ${root} at ${server.url} (Ctrl-C to stop)`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off('SIGINT', stop);
          process.off('SIGTERM', stop);
          resolve();
        };
        process.on('SIGINT', stop);
        process.on('SIGTERM', stop);
      });
      await server.close();
      io.err('densetrain view: stopped');
    });
};
