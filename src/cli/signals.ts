/**
 * Ctrl-C (SIGINT) and SIGTERM for commands that run several trials: the first stops every
 * trial after its batch (checkpointed) through an AbortSignal; a second of either exits at
 * once. The exit code says which: 130 for SIGINT, 143 for SIGTERM.
 */
import { EXIT_INTERRUPTED } from './errors.js';
import type { Io } from './io.js';

export const EXIT_TERMINATED = 143;

export interface StopSignals {
  readonly signal: AbortSignal;
  /** The signal that stopped the command, or null. */
  received(): NodeJS.Signals | null;
  /** 143 after SIGTERM, else 130. */
  exitCode(): number;
  dispose(): void;
}

export function onStopSignals(io: Io, onFirst: () => void): StopSignals {
  const controller = new AbortController();
  let received: NodeJS.Signals | null = null;
  const code = () => (received === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED);
  const handler = (name: NodeJS.Signals) => {
    if (received !== null) {
      io.err('densetrain: stopped again; exiting now');
      process.exit(name === 'SIGTERM' ? EXIT_TERMINATED : EXIT_INTERRUPTED);
    }
    received = name;
    onFirst();
    const what = name === 'SIGTERM' ? 'terminated' : 'interrupted';
    io.err(`densetrain: ${what}; stopping every run after its batch and saving checkpoints (${name === 'SIGTERM' ? 'SIGTERM' : 'Ctrl-C'} again to quit now)`);
    controller.abort();
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  return {
    signal: controller.signal,
    received: () => received,
    exitCode: code,
    dispose() {
      process.off('SIGINT', handler);
      process.off('SIGTERM', handler);
    },
  };
}
