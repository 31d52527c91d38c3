/** Where the CLI writes: results to stdout, progress and problems to stderr. */
export interface Io {
  out(line?: string): void;
  err(line?: string): void;
  /** stderr is a terminal (progress bars are drawn only then). */
  readonly tty: boolean;
  readonly stderr: NodeJS.WriteStream;
}

let stdoutClosed = false;
let watchingStdout = false;

/**
 * process.stdout and stderr. When stdout's reader goes away (`densetrain train | head`), later
 * results are dropped instead of crashing the run with EPIPE.
 */
export function processIo(): Io {
  if (!watchingStdout) {
    watchingStdout = true;
    process.stdout.on('error', (error: NodeJS.ErrnoException) => {
      if (error.code === 'EPIPE') stdoutClosed = true;
      else throw error;
    });
  }
  return {
    out: (line = '') => {
      if (!stdoutClosed) process.stdout.write(`${line}\n`);
    },
    err: (line = '') => void process.stderr.write(`${line}\n`),
    tty: Boolean(process.stderr.isTTY) && process.env['TERM'] !== 'dumb',
    stderr: process.stderr,
  };
}
