/**
 * Ctrl-C (SIGINT) and SIGTERM for a command that trains: the first signal stops the run cleanly
 * after its batch, the second exits at once; the exit code says which signal it was.
 */
import { EXIT_INTERRUPTED, EXIT_TERMINATED } from './errors.js';
import type { Io } from './io.js';

/** Why a run was aborted: the signal that asked for it (named AbortError, like abort()'s default reason). */
class InterruptReason extends Error {
  override readonly name = 'AbortError';
  constructor(readonly signal: NodeJS.Signals) {
    super(`interrupted by ${signal}`);
  }
}

/** The exit code for an aborted run: 143 for SIGTERM (how process managers stop a job), else 130. */
export function interruptExitCode(signal: AbortSignal): number {
  return signal.reason instanceof InterruptReason && signal.reason.signal === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED;
}

/**
 * Ctrl-C (SIGINT) and SIGTERM handling: the first aborts (the trainer stops cleanly after the
 * batch and saves a checkpoint), the second exits at once.
 */
export function interruptHandler(io: Io, onFirst: () => void): { controller: AbortController; dispose: () => void } {
  const controller = new AbortController();
  let count = 0;
  const handler = (signal: NodeJS.Signals) => {
    count++;
    const code = signal === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED;
    if (count === 1) {
      onFirst();
      const what = signal === 'SIGTERM' ? 'terminated (SIGTERM)' : 'interrupted';
      io.err(`densetrain: ${what}; stopping after the current batch and saving a checkpoint (${signal === 'SIGTERM' ? 'a second signal' : 'Ctrl-C again'} to quit now)`);
      controller.abort(new InterruptReason(signal));
    } else {
      io.err(`densetrain: ${signal === 'SIGTERM' ? 'terminated' : 'interrupted'} again; exiting now`);
      process.exit(code);
    }
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    controller,
    dispose: () => {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
