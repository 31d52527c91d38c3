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

/** 1234567 -> "1,234,567". */
export function formatCount(n: number): string {
  return Math.round(n).toLocaleString('en-US');
}

export function formatPercent(fraction: number | null | undefined, digits = 2): string {
  return fraction === null || fraction === undefined || !Number.isFinite(fraction) ? '-' : `${(fraction * 100).toFixed(digits)}%`;
}

export function formatLoss(loss: number | null | undefined): string {
  return loss === null || loss === undefined ? '-' : Number.isFinite(loss) ? loss.toFixed(4) : String(loss);
}

export function formatSeconds(seconds: number): string {
  if (!Number.isFinite(seconds)) return '-';
  if (seconds < 10) return `${seconds.toFixed(2)} s`;
  if (seconds < 120) return `${seconds.toFixed(1)} s`;
  const m = Math.floor(seconds / 60);
  return `${m} min ${Math.round(seconds - m * 60)} s`;
}
