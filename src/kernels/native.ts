/**
 * The native backend: the C++ addon built from native/ (see binding.gyp), wrapped with the
 * shared argument checks. Tensor memory is allocated by the addon (64-byte aligned, outside
 * the JS heap) and exposed as a Float32Array the kernels read in place: nothing is copied
 * per call. free() detaches that Float32Array's buffer before the memory is released, so a
 * view kept by mistake reads as empty instead of reaching freed memory.
 *
 * The addon is found by native-locate.ts: the file named by DENSETRAIN_NATIVE_PATH (a Debug or
 * sanitizer build from cmake-js, for example), else an addon compiled in this package
 * (build/Release), else the prebuilt binary the npm tarball carries (prebuilds/). The addon
 * itself reads DENSETRAIN_ISA (generic | avx2 | avx512 | auto) and DENSETRAIN_THREADS.
 */
import { createRequire } from 'node:module';
import { ACTIVATION_CODES } from './activation-codes.js';
import { withChecks, type RawKernels } from './checks.js';
import { locateNativeAddon, NATIVE_REMEDY, type AddonLocation } from './native-locate.js';
import type { Activation, Bf16Support, Kernels, Tensor } from './types.js';
import { firstLine } from '../first-line.js';

/** The ABI this loader speaks; the addon reports its own in `abiVersion`. */
export const NATIVE_ABI_VERSION = 3;


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
  /** The addon's activation codes (kernel_api.h's ActKind), by name: must equal ACTIVATION_CODES. */
  readonly activationCodes: Readonly<Record<string, number>>;
  isa(): NativeIsa;
  /** ISAs this CPU and build can run, best first. */
  supportedIsas(): NativeIsa[];
  /** Switches kernels ('auto' = best); throws a RangeError for an unknown or unsupported ISA. */
  setIsa(name: NativeIsa | 'auto'): NativeIsa;
  /** bf16 GEMMs with the current ISA on this CPU: which kernels, or why there are none. */
  bf16(): ({ available: true; kernels: string } | { available: false; reason: string }) & { amxCpu: boolean };
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
    bf16?: boolean,
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
    bf16?: boolean,
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
  /** Plans a fused training step (every tensor checked here, once); the plan is an opaque handle. */
  createTrainStep(spec: NativeStepSpec): object;
  /** Runs a planned step over the first count rows (then SGD with lr, when given); returns the mean cross-entropy. */
  runTrainStep(plan: object, count: number, l2: number, lr?: number): number;
}

/** The raw form of TrainStepSpec: Float32Array views and activation codes. */
export interface NativeStepSpec {
  capacity: number;
  bf16: boolean;
  input: Float32Array;
  labels: Float32Array;
  probs: Float32Array;
  dlogits: Float32Array;
  layers: {
    inF: number;
    outF: number;
    kind: number;
    alpha: number;
    w: Float32Array;
    b: Float32Array;
    gw: Float32Array;
    gb: Float32Array;
    z: Float32Array;
    h: Float32Array;
    dhIn: Float32Array | null;
    slope: Float32Array | null;
    slopeGrad: Float32Array | null;
    vw?: Float32Array | null;
    vb?: Float32Array | null;
    vslope?: Float32Array | null;
  }[];
  sgd?: { momentum: number; nesterov: boolean; l2: number };
}

/**
 * The addon file that loadNativeAddon() loads (see native-locate.ts for the search order).
 * Throws an Error saying why when there is none.
 */
export function nativeAddonPath(): string {
  const location = locateNativeAddon();
  if (!location.ok) throw new Error(location.reason);
  return location.path;
}

let cachedAddon: { path: string; addon: NativeAddon } | undefined;
let cachedKernels: { addon: NativeAddon; kernels: Kernels } | undefined;
let loadedFrom: AddonLocation | undefined;

/** Where the loaded addon came from (for `densetrain info`), or undefined before a load. */
export function nativeAddonSource(): { path: string; source: string } | undefined {
  return loadedFrom?.ok ? { path: loadedFrom.path, source: loadedFrom.source } : undefined;
}

/**
 * Loads the raw addon (once per process). Throws an Error whose first line says why it is
 * unavailable and what a user can do about it.
 */
export function loadNativeAddon(): NativeAddon {
  const location = locateNativeAddon();
  if (!location.ok) throw new Error(location.reason);
  const { path } = location;
  if (cachedAddon?.path === path) return cachedAddon.addon;
  let addon: NativeAddon;
  try {
    const require = createRequire(import.meta.url);
    addon = require(path) as NativeAddon;
  } catch (error) {
    const detail = firstLine(error);
    const where = detail.includes(path) ? '' : ` (${path})`;
    const remedy = location.source === 'prebuilt' ? `; ${NATIVE_REMEDY}` : '';
    throw new Error(`native addon failed to load${where}: ${detail}${remedy}`);
  }
  if (addon.abiVersion !== NATIVE_ABI_VERSION) {
    throw new Error(
      `native addon ${path} is out of date (ABI ${String(addon.abiVersion)}, expected ${NATIVE_ABI_VERSION}); run "npm rebuild densetrain"`,
    );
  }
  cachedAddon = { path, addon };
  loadedFrom = location;
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

/** The addon's bf16 report in the Kernels form. */
function bf16Support(addon: NativeAddon): Bf16Support {
  const r = addon.bf16();
  const note = `AMX-BF16: not built (no machine with AMX has run its tests; this CPU ${r.amxCpu ? 'has' : 'has no'} AMX)`;
  return r.available ? { available: true, detail: `${r.kernels} (vdpbf16ps)`, note } : { available: false, detail: r.reason, note };
}

/** Long because it is the RawKernels object: one short method per kernel, each a call into the addon. */
function createRaw(addon: NativeAddon): RawKernels {
  const all = new WeakSet<NativeTensor>();
  return {
    name: 'native',
    maxThreads: addon.maxThreads,
    maxLength: addon.maxLength,
    info: () => ({ backend: 'native', isa: addon.isa(), threads: addon.threads(), bf16: bf16Support(addon) }),
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

    gemm(transA, transB, m, n, k, alpha, a, b, beta, c, precision) {
      addon.gemm(transA, transB, m, n, k, alpha, a.data, b.data, beta, c.data, precision === 'bf16');
    },
    biasActivation(rows, cols, z, bias, act, h) {
      const [code, alpha] = activationArgs(act);
      addon.biasActivation(rows, cols, z.data, bias ? bias.data : null, code, alpha, h.data);
    },
    denseForward(rows, inF, outF, x, w, bias, act, z, h, precision) {
      const [code, alpha] = activationArgs(act);
      addon.denseForward(rows, inF, outF, x.data, w.data, bias ? bias.data : null, code, alpha, z.data, h.data, precision === 'bf16');
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
    createTrainStep(spec) {
      let plan: object | null = addon.createTrainStep({
        capacity: spec.capacity,
        bf16: spec.precision === 'bf16',
        input: spec.input.data,
        labels: spec.labels.data,
        probs: spec.probs.data,
        dlogits: spec.dlogits.data,
        layers: spec.layers.map((l) => {
          const [kind, alpha] = activationArgs(l.act);
          return {
            inF: l.inF,
            outF: l.outF,
            kind,
            alpha,
            w: l.weight.data,
            b: l.bias.data,
            gw: l.weightGrad.data,
            gb: l.biasGrad.data,
            z: l.z.data,
            h: l.h.data,
            dhIn: l.dInput ? l.dInput.data : null,
            slope: l.act.kind === 'prelu' ? l.act.slope.data : null,
            slopeGrad: l.slopeGrad ? l.slopeGrad.data : null,
            vw: l.weightVelocity ? l.weightVelocity.data : null,
            vb: l.biasVelocity ? l.biasVelocity.data : null,
            vslope: l.slopeVelocity ? l.slopeVelocity.data : null,
          };
        }),
        ...(spec.sgd ? { sgd: { ...spec.sgd } } : {}),
      });
      return {
        run: (count, l2, lr) => {
          if (plan === null) throw new Error('this training step has been disposed');
          return lr === undefined ? addon.runTrainStep(plan, count, l2) : addon.runTrainStep(plan, count, l2, lr);
        },
        dispose: () => {
          plan = null; // the addon frees it when garbage collected
        },
      };
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
