/**
 * The Kernels interface: the only way model code touches numbers.
 *
 * Every backend (native C++ addon, AssemblyScript WebAssembly, plain TypeScript reference)
 * implements exactly this interface, and model code never asks which one it has.
 *
 * Conventions shared by every kernel:
 * - Matrices are row-major float32. A matrix of `rows` x `cols` occupies the first
 *   rows*cols elements of its tensor; a tensor may be longer (a buffer sized for the
 *   largest batch serves a smaller last batch).
 * - Sizes are non-negative integers. Every entry point checks its sizes against the
 *   tensors' lengths, its tensors' ownership and liveness and its scalars' types before it
 *   touches memory, and throws a TypeError (wrong type) or RangeError (wrong value) whose
 *   message names the argument. A bad call never reads or writes out of bounds.
 * - Results do not depend on the thread count: work is split over outputs, never over a
 *   reduction dimension.
 */

export type BackendName = 'native' | 'wasm' | 'reference';
export type BackendChoice = BackendName | 'auto';

/** Memory owned by a backend. */
export interface Tensor {
  /** Number of float32 elements. */
  readonly length: number;
  /**
   * A view of the tensor's memory, valid at the moment it is read. WebAssembly memory can
   * grow when another tensor is allocated, which replaces its buffer: read `data` again
   * after any alloc() instead of keeping the view.
   */
  readonly data: Float32Array;
  /** True once the tensor has been given back with Kernels.free(). */
  readonly freed: boolean;
}

export type ActivationName = 'relu' | 'leaky_relu' | 'prelu' | 'sigmoid' | 'tanh' | 'linear';

export const ACTIVATION_NAMES: readonly ActivationName[] = [
  'relu',
  'leaky_relu',
  'prelu',
  'sigmoid',
  'tanh',
  'linear',
];

/**
 * An activation as the kernels see it. leaky_relu carries its slope (any finite real,
 * negative and above 1 included); prelu reads its learned slope from slope.data[0], so the
 * optimizer can update it in place.
 */
export type Activation =
  | { readonly kind: 'relu' }
  | { readonly kind: 'leaky_relu'; readonly alpha: number }
  | { readonly kind: 'prelu'; readonly slope: Tensor }
  | { readonly kind: 'sigmoid' }
  | { readonly kind: 'tanh' }
  | { readonly kind: 'linear' };

/**
 * Precision of the GEMMs (gemm, denseForward). 'fp32': float32 operands. 'bf16': mixed precision
 * as PyTorch's autocast does it: both operands rounded to bfloat16 (round to nearest even, see
 * bf16.ts), products accumulated in float32, C stored in float32. Everything else (element-wise
 * kernels, softmax, loss, optimizer, the beta * C term) stays float32.
 */
export type Precision = 'fp32' | 'bf16';
export const PRECISIONS: readonly Precision[] = ['fp32', 'bf16'];

/** Whether a backend runs bf16 GEMMs, and how (or why not). */
export interface Bf16Support {
  available: boolean;
  /**
   * available: what runs them ('avx512-bf16 (vdpbf16ps)', 'simd128: operands rounded while packing,
   * f32 multiply-add', 'js'); otherwise why not, in words a user can act on.
   */
  detail: string;
  /** Anything else a user should know (native: AMX-BF16 is not built, and why). */
  note?: string;
}

/** One dense layer of a fused training step (see Kernels.createTrainStep). */
export interface TrainStepLayer {
  inF: number;
  outF: number;
  act: Activation;
  /** outF x inF, and its gradient (written). */
  weight: Tensor;
  weightGrad: Tensor;
  /** outF, and its gradient (written). */
  bias: Tensor;
  biasGrad: Tensor;
  /** capacity x outF pre-activations and activations (h may be z: the output layer). */
  z: Tensor;
  h: Tensor;
  /** capacity x inF: the loss gradient of this layer's input is written here (null for the first layer). */
  dInput: Tensor | null;
  /** prelu: the slope gradient (written), else null. */
  slopeGrad: Tensor | null;
  /**
   * With TrainStepSpec.sgd and momentum != 0: the SGD velocities (written) of the weight, the
   * bias and (prelu) the slope; otherwise absent or null.
   */
  weightVelocity?: Tensor | null;
  biasVelocity?: Tensor | null;
  slopeVelocity?: Tensor | null;
}

/**
 * SGD that a fused step applies itself after its backward pass (TrainStep.run with lr): per
 * parameter exactly sgdStep(size, value, grad, velocity, lr, momentum, nesterov, decay), with
 * decay = l2 for weights and 0 for biases and prelu slopes (the Sgd optimizer's update).
 */
export interface TrainStepSgd {
  momentum: number;
  nesterov: boolean;
  l2: number;
}

/**
 * An SGD optimizer's update in the form a model's fused step can apply itself
 * (Optimizer.fusedSgd -> Mlp.fuseSgd): its settings, the parameters it updates (their value
 * tensors, in order) and each one's velocity (null without momentum).
 */
export interface FusedSgd {
  settings: TrainStepSgd;
  values: readonly Tensor[];
  velocity: readonly (Tensor | null)[];
}

/** The tensors of a model's training step; every tensor is checked once, when the step is created. */
export interface TrainStepSpec {
  /** Rows the activation tensors hold; run(count) accepts 1..capacity. */
  capacity: number;
  precision: Precision;
  /** capacity x layers[0].inF inputs and capacity class indices (as floats). */
  input: Tensor;
  labels: Tensor;
  /** capacity x classes each. */
  probs: Tensor;
  dlogits: Tensor;
  layers: readonly TrainStepLayer[];
  /** Also update the parameters with SGD when run() is given a learning rate. */
  sgd?: TrainStepSgd;
}

/** A planned training step: forward, softmax cross-entropy and backward in one call. */
export interface TrainStep {
  /**
   * Over the first `count` rows: the same kernel calls, in the same order, as the composed step
   * (denseForward per layer, softmaxCrossEntropy, then per layer from the last: activationBackward,
   * dW = dZᵀ·X + l2·W, biasGrad, dX = dZ·W), so the same bits. Returns the mean cross-entropy.
   * With `lr` (the spec must have `sgd`): then, unless that loss is not finite, one SGD update of
   * every parameter, each layer's as soon as its backward pass is done (while its gradients are
   * still in cache), with the same bits as sgdStep over every parameter after the step.
   */
  run(count: number, l2: number, lr?: number): number;
  /** Forgets the plan (run throws afterwards). */
  dispose(): void;
}

/** What ran, reported in one line by `densetrain info`, every `train` and backendInfo(). */
export interface KernelsInfo {
  backend: BackendName;
  /** e.g. 'avx512', 'avx2-fma', 'generic' (native), 'simd128' or 'simd128-relaxed' (wasm), 'js' (reference). */
  isa: string;
  threads: number;
  /** bf16 mixed-precision GEMMs (absent: not available). */
  bf16?: Bf16Support;
}

export interface Kernels {
  readonly name: BackendName;
  info(): KernelsInfo;

  /** Threads used by later calls (>= 1). Backends without threads accept only 1. */
  setThreads(threads: number): void;

  /** A zero-filled tensor of `length` float32 elements (length >= 1). */
  alloc(length: number): Tensor;
  /** Gives the memory back. Using a freed tensor in any kernel throws. Freeing twice throws. */
  free(tensor: Tensor): void;
  /** Bytes currently held by live tensors of this backend instance (for leak tests). */
  allocatedBytes(): number;

  /**
   * C = alpha * op(A) * op(B) + beta * C, sgemm semantics, row-major, no leading dimensions.
   * op(A) is m x k: A is stored m x k, or k x m when transA. op(B) is k x n: B is stored
   * k x n, or n x k when transB. C is m x n and must not be A or B. With beta = 0, C is
   * written without being read (NaN in C does not propagate).
   * precision 'bf16' (default 'fp32') rounds every element of A and B to bfloat16 before the
   * products (accumulated in float32); alpha, beta and C stay float32. A backend without bf16
   * GEMMs (info().bf16.available false) throws a RangeError saying why.
   */
  gemm(
    transA: boolean,
    transB: boolean,
    m: number,
    n: number,
    k: number,
    alpha: number,
    a: Tensor,
    b: Tensor,
    beta: number,
    c: Tensor,
    precision?: Precision,
  ): void;

  /**
   * Fused bias + activation forward over a rows x cols matrix:
   * z[i,j] += bias[j] (skipped when bias is null), then h[i,j] = act(z[i,j]).
   * h may be the same tensor as z (then z is overwritten by the activation).
   */
  biasActivation(rows: number, cols: number, z: Tensor, bias: Tensor | null, act: Activation, h: Tensor): void;

  /**
   * A dense layer's forward pass, GEMM with the bias + activation epilogue fused:
   * z = x · wᵀ + bias, then h = act(z), where x is rows x inF, w is outF x inF (the layout of
   * PyTorch's nn.Linear weight), bias has outF elements (or is null: no bias), and z and h are
   * rows x outF. The same results as gemm(false, true, rows, outF, inF, 1, x, w, 0, z) followed
   * by biasActivation(rows, outF, z, bias, act, h), with the same activation semantics (prelu
   * reads its slope from act.slope.data[0]). z is written without being read. h may be the same
   * tensor as z (then z holds act(z) afterwards). z and h must not be x, w or bias.
   * precision: as for gemm (bf16 rounds x and w; the bias and activation stay float32).
   */
  denseForward(
    rows: number,
    inF: number,
    outF: number,
    x: Tensor,
    w: Tensor,
    bias: Tensor | null,
    act: Activation,
    z: Tensor,
    h: Tensor,
    precision?: Precision,
  ): void;

  /**
   * Activation backward: dz[i,j] = dh[i,j] * act'(z[i,j]), using h = act(z) where that is
   * cheaper (sigmoid, tanh). PyTorch's convention at exactly z = 0: relu'(0) = 0,
   * leaky_relu'(0) = alpha, prelu'(0) = slope. For prelu, dSlope.data[0] is *written* with
   * sum over z <= 0 of dh * z (the slope gradient); dSlope is required for prelu and ignored
   * otherwise. dz may be the same tensor as dh.
   */
  activationBackward(
    rows: number,
    cols: number,
    act: Activation,
    z: Tensor,
    h: Tensor,
    dh: Tensor,
    dz: Tensor,
    dSlope: Tensor | null,
  ): void;

  /** Bias gradient: db[j] = sum_i dz[i,j] (column sums of a rows x cols matrix), written. */
  biasGrad(rows: number, cols: number, dz: Tensor, db: Tensor): void;

  /**
   * Fused, numerically stable softmax + cross-entropy over a rows x cols logit matrix.
   * labels.data[i] holds the class index of row i (an integer in [0, cols), stored as a
   * float). Writes probs = softmax(logits) and dlogits = (probs - onehot(labels)) / rows,
   * and returns the mean cross-entropy (computed in float64). Exact for logits of +-1000:
   * no overflow, no -Infinity. dlogits may be null when only the loss is wanted.
   */
  softmaxCrossEntropy(
    rows: number,
    cols: number,
    logits: Tensor,
    labels: Tensor,
    probs: Tensor,
    dlogits: Tensor | null,
  ): number;

  /** probs = softmax(logits) row by row (prediction without labels). */
  softmax(rows: number, cols: number, logits: Tensor, probs: Tensor): void;

  /**
   * SGD with momentum (PyTorch's formulation) and L2 folded in, over the first n elements:
   * g = grad + l2 * param; v = momentum * v + g; param -= lr * (nesterov ? g + momentum * v : v).
   * With momentum = 0 the velocity tensor may be null and param -= lr * g.
   */
  sgdStep(
    n: number,
    param: Tensor,
    grad: Tensor,
    velocity: Tensor | null,
    lr: number,
    momentum: number,
    nesterov: boolean,
    l2: number,
  ): void;

  /**
   * Adam (PyTorch's formulation, amsgrad off) with L2 folded in, step t >= 1:
   * g = grad + l2 * param; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g^2;
   * param -= (lr / (1 - b1^t)) * m / (sqrt(v) / sqrt(1 - b2^t) + eps).
   */
  adamStep(
    n: number,
    param: Tensor,
    grad: Tensor,
    m: Tensor,
    v: Tensor,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    l2: number,
    step: number,
  ): void;

  /**
   * Optional: plans a fused training step over a model's tensors (arguments checked once per
   * model instead of once per kernel; one call per batch). Backends without it leave it
   * undefined and the model composes the step from the kernels above.
   */
  createTrainStep?(spec: TrainStepSpec): TrainStep;

  /** Sum of squares of the first n elements, accumulated in float64 (for the L2 term). */
  sumSquares(n: number, x: Tensor): number;

  /**
   * Batch filling: bytes -> floats through a 256-entry table. For k < count and p < features,
   * out[k*features + p] = table[bytes[indices[start + k]*features + p]]. `bytes` holds images of
   * `features` bytes each (a dataset stays bytes in JavaScript memory; nothing is copied), and
   * `table` maps each byte value to its scaled float (data/batches.ts scalingTable), so every
   * backend writes the same floats bit for bit. Every index is checked against the number of
   * whole images in `bytes` before anything is written.
   */
  gatherRows(
    count: number,
    features: number,
    bytes: Uint8Array,
    indices: Uint32Array,
    start: number,
    table: Float32Array,
    out: Tensor,
  ): void;
}
