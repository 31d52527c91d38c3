/** DENSETRAIN_THREADS, shared by the backend selection's check and the wasm backend's default. */
import { availableParallelism } from 'node:os';
import { InputError } from '../input-error.js';

/** The native addon's thread limit (kMaxThreads in native/src/addon.cc); the wasm backend's too. */
export const MAX_THREADS = 256;

/** The thread count DENSETRAIN_THREADS asks for (undefined when unset), or an InputError naming it. */
export function threadsFromEnvironment(env: Record<string, string | undefined> = process.env): number | undefined {
  const threads = env['DENSETRAIN_THREADS'];
  if (threads === undefined || threads === '') return undefined;
  const n = /^\s*\d+\s*$/.test(threads) ? Number(threads) : Number.NaN;
  if (!(Number.isSafeInteger(n) && n >= 1 && n <= MAX_THREADS)) {
    throw new InputError(`DENSETRAIN_THREADS must be an integer from 1 to ${MAX_THREADS}, got ${JSON.stringify(threads)}`);
  }
  return n;
}

/** DENSETRAIN_THREADS, else every CPU this process may run on (as the native addon counts them). */
export function defaultThreads(env: Record<string, string | undefined> = process.env): number {
  return threadsFromEnvironment(env) ?? Math.min(MAX_THREADS, availableParallelism());
}
