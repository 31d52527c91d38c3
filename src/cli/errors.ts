/**
 * How the command ends: exit codes and the one-line error messages.
 *
 *   0   success
 *   1   runtime failure (an unexpected error, a backend that cannot load, a disk error)
 *   2   usage: a bad option, config file or dataset (the user can fix the command line)
 *   130 interrupted with Ctrl-C (SIGINT)
 *   143 stopped with SIGTERM (like Ctrl-C: checkpoint written, run folder INCOMPLETE)
 */
import { CommanderError } from 'commander';
import { InputError } from '../input-error.js';

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
export const EXIT_INTERRUPTED = 130;
export const EXIT_TERMINATED = 143;

/** A mistake in how the command was called (exit 2). */
export class UsageError extends Error {
  override readonly name = 'UsageError';
}

/** Ends the command with a code after its output is written (no message). */
export class ExitRequest extends Error {
  override readonly name = 'ExitRequest';
  constructor(readonly code: number) {
    super(`exit ${code}`);
  }
}

function isNamed(error: unknown, name: string): boolean {
  return error instanceof Error && error.name === name;
}

/** Errors the user can fix by changing the command line, the config file or the data. */
export function isUsageError(error: unknown): boolean {
  return (
    error instanceof UsageError ||
    // Options, config and space files, environment variables, queue URLs (ConfigError is one);
    // not every RangeError: a wasm memory that cannot grow is a failure, not a usage error.
    error instanceof InputError ||
    isNamed(error, 'DataError') ||
    // A --model / --resume file that is missing, not safetensors, or not ours.
    isNamed(error, 'CheckpointError') ||
    // The run folder is being written by another process.
    isNamed(error, 'RunLockedError') ||
    (error instanceof CommanderError && !isCommanderExit(error))
  );
}

/** Commander's normal exits: --help, --version. */
export function isCommanderExit(error: CommanderError): boolean {
  return error.code === 'commander.helpDisplayed' || error.code === 'commander.version' || error.code === 'commander.help';
}

/** Commander's messages in one line, without its 'error: ' prefix. */
export function commanderMessage(error: CommanderError): string {
  return error.message
    .replace(/^error:\s*/i, '')
    .split('\n')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .join(' ');
}

/**
 * Control characters (a UTF-16 file read as UTF-8 puts NULs in a JSON parser's message, say)
 * shown as escapes, so an error line can neither break a terminal nor hide text.
 */
export function visibleText(text: string): string {
  // eslint-disable-next-line no-control-regex
  return text.replace(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/** The one line printed for an error (without the 'densetrain: ' prefix). */
export function errorLine(error: unknown): string {
  if (error instanceof CommanderError) return visibleText(commanderMessage(error));
  const text = error instanceof Error ? error.message : String(error);
  const first = text.split(/\r?\n/).map((s) => s.trim()).filter((s) => s !== '');
  return visibleText(first.length <= 1 ? (first[0] ?? String(error)) : first.join('; '));
}
