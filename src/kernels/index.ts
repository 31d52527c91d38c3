/**
 * Backend loading and selection. `auto` prefers native, then wasm, then reference; a forced
 * backend that cannot load is an error that says why. Each backend is loaded at most once per
 * process and shared: tensors belong to the caller, so sharing is safe.
 */
import { InputError } from '../input-error.js';
import { loadNativeKernels } from './native.js';
import { createReferenceKernels } from './reference.js';
import type { BackendChoice, BackendName, Kernels, KernelsInfo } from './types.js';
import { threadsFromEnvironment } from './threads.js';
import { loadWasmKernels } from './wasm.js';
import { firstLine } from '../first-line.js';
import { formatBackend } from '../format.js';

export type { Activation, ActivationName, BackendChoice, BackendName, Kernels, KernelsInfo, Tensor } from './types.js';
export { ACTIVATION_NAMES } from './types.js';

export const BACKEND_NAMES: readonly BackendName[] = ['native', 'wasm', 'reference'];
const PREFERENCE: readonly BackendName[] = ['native', 'wasm', 'reference'];

const loaders: Record<BackendName, () => Kernels> = {
  native: loadNativeKernels,
  wasm: loadWasmKernels,
  reference: createReferenceKernels,
};

type LoadResult = { ok: true; kernels: Kernels } | { ok: false; reason: string };
const loaded = new Map<BackendName, LoadResult>();

/** Loads one backend (once per process); never throws. */
export function tryLoadBackend(name: BackendName): LoadResult {
  let result = loaded.get(name);
  if (!result) {
    try {
      result = { ok: true, kernels: loaders[name]() };
    } catch (error) {
      result = { ok: false, reason: firstLine(error) };
    }
    loaded.set(name, result);
  }
  return result;
}

export interface BackendInfo extends KernelsInfo {
  /** Why each preferred backend was skipped, in preference order ('native: ...'). */
  skipped: string[];
}

export interface KernelsOptions {
  /** 'auto' (default), or a backend to force. The environment variable DENSETRAIN_BACKEND sets the default. */
  backend?: BackendChoice | undefined;
  /** Threads for the native and wasm backends; DENSETRAIN_THREADS sets the default. */
  threads?: number | undefined;
}

export function parseBackendChoice(value: string, source: string): BackendChoice {
  if (value === 'auto' || (BACKEND_NAMES as readonly string[]).includes(value)) return value as BackendChoice;
  throw new InputError(`${source} must be one of auto, native, wasm, reference; got ${JSON.stringify(value)}`);
}

function requestedBackend(options: KernelsOptions): BackendChoice {
  if (options.backend !== undefined) return parseBackendChoice(options.backend, 'backend');
  const fromEnv = process.env['DENSETRAIN_BACKEND'];
  if (fromEnv !== undefined && fromEnv !== '') return parseBackendChoice(fromEnv, 'DENSETRAIN_BACKEND');
  return 'auto';
}

/** ISAs DENSETRAIN_ISA may name (the native addon reads it; 'auto' = the best this CPU runs). */
export const ISA_CHOICES = ['auto', 'avx512', 'avx2', 'generic'] as const;

/**
 * DENSETRAIN_THREADS and DENSETRAIN_ISA are options too: a malformed value is an InputError naming
 * the variable (exit 2 in the CLI), whatever backend is chosen. Without this check the native
 * addon refused to load and 'auto' fell back to wasm, 3-4x slower, without a word.
 */
// env is a plain record, not NodeJS.ProcessEnv: the public types must not need @types/node.
export function checkKernelEnvironment(env: Record<string, string | undefined> = process.env): void {
  threadsFromEnvironment(env);
  const isa = env['DENSETRAIN_ISA'];
  if (isa !== undefined && isa !== '' && !(ISA_CHOICES as readonly string[]).includes(isa)) {
    throw new InputError(`DENSETRAIN_ISA must be one of ${ISA_CHOICES.join(', ')}, got ${JSON.stringify(isa)}`);
  }
}

/**
 * A native load failure caused by the environment (an ISA this CPU cannot run, say): the user
 * asked for something specific, so it is an error, not a reason to fall back to another backend.
 */
function environmentFailure(reason: string): string | null {
  const m = /(DENSETRAIN_(?:ISA|THREADS)\b.*)$/.exec(reason);
  return m ? m[1]! : null;
}

/** The kernels to use, and what was skipped to get them. Throws if a forced backend cannot load. */
export function selectKernels(options: KernelsOptions = {}): { kernels: Kernels; info: BackendInfo } {
  checkKernelEnvironment();
  const requested = requestedBackend(options);
  const skipped: string[] = [];
  let kernels: Kernels | undefined;
  if (requested === 'auto') {
    for (const name of PREFERENCE) {
      const result = tryLoadBackend(name);
      if (result.ok) {
        kernels = result.kernels;
        break;
      }
      const fromEnvironment = environmentFailure(result.reason);
      if (fromEnvironment !== null) throw new InputError(fromEnvironment);
      skipped.push(`${name}: ${result.reason}`);
    }
    if (!kernels) throw new Error(`no densetrain backend could load:\n  ${skipped.join('\n  ')}`);
  } else {
    const result = tryLoadBackend(requested);
    const fromEnvironment = result.ok ? null : environmentFailure(result.reason);
    if (fromEnvironment !== null) throw new InputError(fromEnvironment);
    if (!result.ok) throw new Error(`the ${requested} backend was requested but cannot load: ${result.reason}`);
    kernels = result.kernels;
  }
  if (options.threads !== undefined) kernels.setThreads(options.threads);
  return { kernels, info: { ...kernels.info(), skipped } };
}

/** The kernels for the options (see selectKernels). */
export function getKernels(options: KernelsOptions = {}): Kernels {
  return selectKernels(options).kernels;
}

/** What backend `getKernels(options)` runs, its ISA and threads, and why preferred ones were skipped. */
export function backendInfo(options: KernelsOptions = {}): BackendInfo {
  return selectKernels(options).info;
}

/** One line for humans: "native (avx512, 2 threads)" or "wasm (simd128, 1 thread); native skipped: ...". */
export function formatBackendInfo(info: BackendInfo): string {
  const head = formatBackend(info);
  return info.skipped.length === 0 ? head : `${head}; skipped ${info.skipped.join('; ')}`;
}
