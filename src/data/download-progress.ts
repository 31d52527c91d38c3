/**
 * A terminal progress display for downloadDataset: one cli-progress bar per file on a TTY,
 * one plain line per finished file otherwise (CI logs, pipes).
 */
import cliProgress from 'cli-progress';
import type { DownloadProgress } from './download.js';

export interface DownloadProgressDisplay {
  onProgress: (p: DownloadProgress) => void;
  /** Stops any bar still running (call in finally). */
  stop: () => void;
}

function mb(bytes: number): string {
  return (bytes / 1e6).toFixed(bytes < 1e6 ? 2 : 1);
}

export function createDownloadProgress(
  stream: NodeJS.WriteStream = process.stderr,
): DownloadProgressDisplay {
  const tty = stream.isTTY === true;
  let bar: cliProgress.SingleBar | undefined;
  const stop = (): void => {
    bar?.stop();
    bar = undefined;
  };
  const line = (s: string): void => {
    stream.write(`${s}\n`);
  };
  const onProgress = (p: DownloadProgress): void => {
    const tag = `[${p.index + 1}/${p.files}] ${p.file}`;
    switch (p.state) {
      case 'present':
        line(`${tag}: already here, checksum ok`);
        return;
      case 'start':
        if (!tty) return;
        stop();
        bar = new cliProgress.SingleBar(
          {
            stream,
            format: `${tag} [{bar}] {percentage}% | {got}/{all} MB | ETA {eta_formatted}`,
            hideCursor: true,
            clearOnComplete: false,
          },
          cliProgress.Presets.shades_classic,
        );
        bar.start(p.total ?? 0, 0, { got: mb(0), all: p.total !== undefined ? mb(p.total) : '?' });
        return;
      case 'progress':
        if (bar) {
          if (p.total === undefined) bar.setTotal(p.received);
          bar.update(p.received, { got: mb(p.received) });
        }
        return;
      case 'done':
        if (bar) {
          bar.update(p.received, { got: mb(p.received) });
          stop();
        }
        line(`${tag}: ${mb(p.received)} MB, checksum ok${p.url ? ` (${p.url})` : ''}`);
        return;
      case 'failed':
        stop();
        line(`${tag}: ${p.url ?? ''} failed: ${p.error ?? 'unknown error'}`);
        return;
    }
  };
  return { onProgress, stop };
}
