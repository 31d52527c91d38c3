/**
 * The native backend: the C++ addon built from native/ (see binding.gyp), wrapped with the
 * shared argument checks. Tensor memory is allocated by the addon (64-byte aligned, outside
 * the JS heap) and exposed as a Float32Array the kernels read in place: nothing is copied
 * per call. free() detaches that Float32Array's buffer before the memory is released, so a
 * view kept by mistake reads as empty instead of reaching freed memory.
 *
 * The addon is loaded from build/Release/densetrain.node, or from the file named by
 * DENSETRAIN_NATIVE_PATH (a Debug or sanitizer build from cmake-js, for example). The addon
 * itself reads DENSETRAIN_ISA (generic | avx2 | avx512 | auto) and DENSETRAIN_THREADS.
 */
import { existsSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join, resolve } from 'node:path';
import { withChecks, type RawKernels } from './checks.js';
import { packageRoot } from './paths.js';
import type { Activation, ActivationName, Kernels, Tensor } from './types.js';

/** The ABI this loader speaks; the addon reports its own in `abiVersion`. */
export const NATIVE_ABI_VERSION = 2;

/** Activation codes of the raw addon. */
export const ACTIVATION_CODES: Readonly<Record<ActivationName, number>> = Object.freeze({
  relu: 0,
  leaky_relu: 1,
  prelu: 2,
  sigmoid: 3,
  tanh: 4,
  linear: 5,
});

export type NativeIsa = 'avx512' | 'avx2' | 'generic';

/**
 * The raw addon. Every function checks its own arguments again (sizes against buffer lengths,
 * types, finiteness) and throws a TypeError or RangeError rather than touching memory it
 * should not; but only the checked Kernels wrapper enforces tensor ownership and liveness.
 */
export interface NativeAddon {
  readonly abiVersion: number;
  readonly maxThreads: number;
  readonly maxLength: number;
  isa(): NativeIsa;
  /** ISAs this CPU and build can run, best first. */
  supportedIsas(): NativeIsa[];
  /** Switches kernels ('auto' = best); throws a RangeError for an unknown or unsupported ISA. */
  setIsa(name: NativeIsa | 'auto'): NativeIsa;
  threads(): number;
  setThreads(threads: number): void;
  /** GEMM blocking of the current ISA. */
  blocking(): { mr: number; nr: number; mc: number; kc: number; nc: number };
  alloc(length: number): Float32Array;
  free(view: Float32Array): void;
  isAllocated(view: unknown): boolean;
  allocatedBytes(): number;
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Float32Array,
    b: Float32Array,
    beta: number,
    c: Float32Array,
  ): void;
  biasActivation(
    rows: number,
    cols: number,
    z: Float32Array,
    bias: Float32Array | null,
    kind: number,
    alpha: number,
    h: Float32Array,
  ): void;
  /** z = x · wᵀ + bias, h = act(z), with bias + activation applied inside the GEMM (h may be z). */
  denseForward(
    rows: number,
    inF: number,
    outF: number,
    x: Float32Array,
    w: Float32Array,
    bias: Float32Array | null,
    kind: number,
    alpha: number,
    z: Float32Array,
    h: Float32Array,
  ): void;
  /** Returns the PReLU slope gradient (0 for other activations). */
  activationBackward(
    rows: number,
    cols: number,
    kind: number,
    alpha: number,
    z: Float32Array,
    h: Float32Array,
    dh: Float32Array,
    dz: Float32Array,
  ): number;
  biasGrad(rows: number, cols: number, dz: Float32Array, db: Float32Array): void;
  softmaxCrossEntropy(
    rows: number,
    cols: number,
    logits: Float32Array,
    labels: Float32Array,
    probs: Float32Array,
    dlogits: Float32Array | null,
  ): number;
  softmax(rows: number, cols: number, logits: Float32Array, probs: Float32Array): void;
  sgdStep(
    n: number,
    param: Float32Array,
    grad: Float32Array,
    velocity: Float32Array | null,
    lr: number,
    momentum: number,
    nesterov: boolean,
    l2: number,
  ): void;
  adamStep(
    n: number,
    param: Float32Array,
    grad: Float32Array,
    m: Float32Array,
    v: Float32Array,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    l2: number,
    step: number,
  ): void;
  sumSquares(n: number, x: Float32Array): number;
  gatherRows(count: number, features: number, bytes: Uint8Array, indices: Uint32Array, start: number, table: Float32Array, out: Float32Array): void;
}

/** Where the addon is loaded from: DENSETRAIN_NATIVE_PATH, else build/Release/densetrain.node. */
export function nativeAddonPath(): string {
  const fromEnv = process.env['DENSETRAIN_NATIVE_PATH'];
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return join(packageRoot(), 'build', 'Release', 'densetrain.node');
}

/** The log scripts/install-native.mjs writes; its first line says how the last build ended. */
export function nativeBuildLogPath(): string {
  return join(packageRoot(), 'native-build.log');
}

/** The reason recorded by the last failed install-time build, or null. */
function recordedBuildFailure(): string | null {
  const log = nativeBuildLogPath();
  if (!existsSync(log)) return null;
  try {
    const first = readFileSync(log, 'utf8').split('\n', 1)[0] ?? '';
    const match = /^densetrain native build failed: (.*)$/.exec(first.trim());
    return match ? match[1]! : null;
  } catch {
    return null;
  }
}

function firstLine(error: unknown): string {
  const text = error instanceof Error ? error.message : String(error);
  return (text.split('\n')[0] ?? text).trim();
}

let cachedAddon: { path: string; addon: NativeAddon } | undefined;
let cachedKernels: { addon: NativeAddon; kernels: Kernels } | undefined;

/**
 * Loads the raw addon (once per process). Throws an Error whose first line says why it is
 * unavailable, e.g. "native addon not built: no C++ compiler found; see native-build.log".
 */
export function loadNativeAddon(): NativeAddon {
  const path = nativeAddonPath();
  if (cachedAddon?.path === path) return cachedAddon.addon;
  const fromEnv = process.env['DENSETRAIN_NATIVE_PATH'];
  if (!existsSync(path)) {
    if (fromEnv !== undefined && fromEnv !== '') {
      throw new Error(`native addon not found: DENSETRAIN_NATIVE_PATH=${fromEnv} does not exist`);
    }
    const failure = recordedBuildFailure();
    if (failure !== null) throw new Error(`native addon not built: ${failure}; see native-build.log`);
    const hint = existsSync(nativeBuildLogPath()) ? '; see native-build.log' : '; run "npm run build:native"';
    throw new Error(`native addon not built: build/Release/densetrain.node is missing${hint}`);
  }
  let addon: NativeAddon;
  try {
    const require = createRequire(import.meta.url);
    addon = require(path) as NativeAddon;
  } catch (error) {
    throw new Error(`native addon failed to load: ${firstLine(error)}`);
  }
  if (addon.abiVersion !== NATIVE_ABI_VERSION) {
    throw new Error(
      `native addon is out of date (ABI ${String(addon.abiVersion)}, expected ${NATIVE_ABI_VERSION}); run "npm run build:native"`,
    );
  }
  cachedAddon = { path, addon };
  return addon;
}

class NativeTensor implements Tensor {
  #view: Float32Array | null;
  readonly length: number;
  constructor(view: Float32Array) {
    this.#view = view;
    this.length = view.length;
  }
  get data(): Float32Array {
    if (this.#view === null) throw new RangeError('tensor has been freed');
    return this.#view;
  }
  get freed(): boolean {
    return this.#view === null;
  }
  /** Forgets the view; the addon has already detached its buffer. */
  release(): void {
    this.#view = null;
  }
}

function activationArgs(act: Activation): [code: number, alpha: number] {
  switch (act.kind) {
    case 'leaky_relu':
      return [ACTIVATION_CODES.leaky_relu, act.alpha];
    case 'prelu':
      return [ACTIVATION_CODES.prelu, act.slope.data[0]!];
    default:
      return [ACTIVATION_CODES[act.kind], 0];
  }
}

function createRaw(addon: NativeAddon): RawKernels {
  const all = new WeakSet<NativeTensor>();
  return {
    name: 'native',
    maxThreads: addon.maxThreads,
    maxLength: addon.maxLength,
    info: () => ({ backend: 'native', isa: addon.isa(), threads: addon.threads() }),
    setThreads: (threads) => addon.setThreads(threads),
    owns: (t: unknown): t is Tensor => t instanceof NativeTensor && all.has(t),
    alloc(length) {
      const t = new NativeTensor(addon.alloc(length));
      all.add(t);
      return t;
    },
    free(t) {
      addon.free(t.data);
      (t as NativeTensor).release();
    },
    allocatedBytes: () => addon.allocatedBytes(),

    gemm(transA, transB, m, n, k, alpha, a, b, beta, c) {
      addon.gemm(transA, transB, m, n, k, alpha, a.data, b.data, beta, c.data);
    },
    biasActivation(rows, cols, z, bias, act, h) {
      const [code, alpha] = activationArgs(act);
      addon.biasActivation(rows, cols, z.data, bias ? bias.data : null, code, alpha, h.data);
    },
    denseForward(rows, inF, outF, x, w, bias, act, z, h) {
      const [code, alpha] = activationArgs(act);
      addon.denseForward(rows, inF, outF, x.data, w.data, bias ? bias.data : null, code, alpha, z.data, h.data);
    },
    activationBackward(rows, cols, act, z, h, dh, dz, dSlope) {
      const [code, alpha] = activationArgs(act);
      const slopeGrad = addon.activationBackward(rows, cols, code, alpha, z.data, h.data, dh.data, dz.data);
      if (act.kind === 'prelu' && dSlope) dSlope.data[0] = slopeGrad;
    },
    biasGrad(rows, cols, dz, db) {
      addon.biasGrad(rows, cols, dz.data, db.data);
    },
    softmaxCrossEntropy(rows, cols, logits, labels, probs, dlogits) {
      return addon.softmaxCrossEntropy(rows, cols, logits.data, labels.data, probs.data, dlogits ? dlogits.data : null);
    },
    softmax(rows, cols, logits, probs) {
      addon.softmax(rows, cols, logits.data, probs.data);
    },
    sgdStep(n, param, grad, velocity, lr, momentum, nesterov, l2) {
      addon.sgdStep(n, param.data, grad.data, velocity ? velocity.data : null, lr, momentum, nesterov, l2);
    },
    adamStep(n, param, grad, m, v, lr, beta1, beta2, eps, l2, step) {
      addon.adamStep(n, param.data, grad.data, m.data, v.data, lr, beta1, beta2, eps, l2, step);
    },
    sumSquares(n, x) {
      return addon.sumSquares(n, x.data);
    },
    gatherRows(count, features, bytes, indices, start, table, out) {
      addon.gatherRows(count, features, bytes, indices, start, table, out.data);
    },
  };
}

/**
 * The native backend (one instance per process: the addon's allocator, thread pool and ISA
 * are process-wide). Throws an Error whose first line says why when the addon is unavailable.
 */
export function loadNativeKernels(): Kernels {
  const addon = loadNativeAddon();
  if (cachedKernels?.addon !== addon) cachedKernels = { addon, kernels: withChecks(createRaw(addon)) };
  return cachedKernels.kernels;
}
