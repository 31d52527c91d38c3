/**
 * The multi-layer perceptron. Layer i maps layers[i] inputs to layers[i+1] outputs with
 * W_i [out, in] (nn.Linear's layout) and b_i [out]; every hidden layer applies the same
 * activation (prelu: one learned scalar slope per hidden layer); the output layer is linear
 * into softmax + cross-entropy.
 *
 *   forward:  Z_i = A_{i-1} · W_iᵀ + b_i, H_i = act(Z_i) (denseForward: gemm NT with the bias + activation fused)
 *   backward: dW_i = dZ_iᵀ · A_{i-1} (gemm TN), db_i = column sums, dA_{i-1} = dZ_i · W_i (gemm NN)
 *
 * Every backend buffer (parameters, gradients, activations and input/label buffers for
 * `capacity` rows) is allocated when the model is built. The training path (inputTensor /
 * labelTensor filled by the trainer, computeGradients, then the optimizer) allocates nothing.
 * Only lossAndGradients called with more rows than the capacity grows the activation buffers;
 * predict and logits work in chunks of the capacity and never do.
 */
import type { Activation, FusedSgd, Kernels, Precision, Tensor, TrainStep } from '../kernels/types.js';
import { ACTIVATION_NAMES } from '../kernels/types.js';
import type { PixelScaling } from '../data/types.js';
import { getKernels } from '../kernels/index.js';
import { Rng } from '../rng.js';
import { activationGain, initWeights, resolveInit, type InitName } from './init.js';
import { saveModelFile } from './save.js';
import type { ModelArchitecture, Parameter, ParameterKind } from './types.js';

export type { ModelArchitecture, Parameter, ParameterKind } from './types.js';

export interface LossAndGradients {
  /** Mean cross-entropy + 0.5 * l2 * (sum of squared weights). */
  loss: number;
  /** d loss / d parameter (L2 term included), named like checkpoint tensors. */
  gradients: Record<string, Float32Array>;
}

/** What users hold: a trained (or loaded) network. */
export interface Model {
  readonly architecture: Readonly<ModelArchitecture>;
  readonly kernels: Kernels;
  /** Input features and classes (first and last layer sizes). */
  readonly inputSize: number;
  readonly classes: number;
  /** How pixels were scaled in training (apply the same before predict), when known. */
  scaling: PixelScaling | null;
  /** Class names, when known. */
  classNames: string[] | null;
  /** Parameter names in canonical order: layers.0.weight, layers.0.bias, [layers.0.prelu_slope], ... */
  readonly parameterNames: readonly string[];
  /** Class probabilities, count x classes row-major, for count x inputSize inputs. */
  predict(x: Float32Array, count: number): Float32Array;
  /** Raw scores before softmax, count x classes row-major. */
  logits(x: Float32Array, count: number): Float32Array;
  /** Loss and gradients for one batch (labels.length rows of x). */
  lossAndGradients(x: Float32Array, labels: ArrayLike<number>, options?: { l2?: number }): LossAndGradients;
  /** Copies of the parameters, named like checkpoint tensors. */
  getParameters(): Record<string, Float32Array>;
  /** Overwrites parameters (every name must exist and match in length; missing names are left alone). */
  setParameters(values: Record<string, ArrayLike<number>>): void;
  /** Writes the weights (safetensors, nn.Linear layout) and architecture to `path`, atomically. */
  save(path: string): Promise<void>;
  /** Frees every backend buffer; the model is unusable afterwards. */
  dispose(): void;
  readonly disposed: boolean;
}

export interface BuildOptions {
  kernels: Kernels;
  /** Rows the activation buffers hold (the training batch size). Default 256. */
  capacity?: number;
  /** Initialisation; default 'auto'. Without an rng, parameters start at zero (for loading). */
  init?: InitName;
  rng?: Rng;
  /**
   * Precision of the GEMMs (forward and both backward products); default 'fp32'. 'bf16': mixed
   * precision (operands rounded to bfloat16, float32 sums; see Precision). Parameters, gradients,
   * activations, softmax and loss stay float32. Needs a backend whose info().bf16 is available.
   */
  precision?: Precision;
  /**
   * Use the backend's fused training step (Kernels.createTrainStep) where it has one (default
   * true); false composes the step from the kernels (same bits; for benchmarks and tests).
   */
  fusedStep?: boolean;
}

/** 'fp32' or 'bf16', the latter only on kernels that have bf16 GEMMs (else a RangeError saying why). */
function checkModelPrecision(precision: unknown, kernels: Kernels): Precision {
  if (precision === undefined || precision === 'fp32') return 'fp32';
  if (precision !== 'bf16') throw new RangeError(`precision must be 'fp32' or 'bf16', got ${JSON.stringify(precision)}`);
  const bf16 = kernels.info().bf16;
  if (!bf16?.available) throw new RangeError(`precision 'bf16' is not available on the ${kernels.name} backend: ${bf16?.detail ?? 'no bf16 GEMMs'}`);
  return 'bf16';
}

export function validateArchitecture(arch: ModelArchitecture): void {
  const { layers, activation, alpha } = arch;
  if (!Array.isArray(layers) || layers.length < 2) {
    throw new RangeError(`layers must list at least an input size and a class count, got ${JSON.stringify(layers)}`);
  }
  layers.forEach((n, i) => {
    if (!Number.isInteger(n) || n < 1) throw new RangeError(`layers[${i}] must be a positive integer, got ${n}`);
  });
  if (layers[layers.length - 1]! < 2) throw new RangeError('the last layer (classes) must have at least 2 units');
  if (!ACTIVATION_NAMES.includes(activation)) {
    throw new RangeError(`activation must be one of ${ACTIVATION_NAMES.join(', ')}; got ${JSON.stringify(activation)}`);
  }
  if (typeof alpha !== 'number' || !Number.isFinite(alpha)) throw new RangeError(`alpha must be a finite number, got ${alpha}`);
}

/** A method was called on a model after dispose(): its memory is gone. */
export class DisposedError extends Error {
  override readonly name = 'DisposedError';
  constructor() {
    super('this model has been disposed; it cannot be used any more (load or create it again)');
  }
}

interface LayerBuffers {
  readonly inSize: number;
  readonly outSize: number;
  readonly weight: Parameter;
  readonly bias: Parameter;
  readonly slope: Parameter | null;
  readonly act: Activation;
}

export class Mlp implements Model {
  readonly architecture: Readonly<ModelArchitecture>;
  readonly kernels: Kernels;
  readonly inputSize: number;
  readonly classes: number;
  scaling: PixelScaling | null = null;
  classNames: string[] | null = null;
  readonly parameters: readonly Parameter[];
  readonly parameterNames: readonly string[];
  readonly precision: Precision;

  #layers: LayerBuffers[];
  #capacity = 0;
  // Activation buffers, sized for #capacity rows (see #allocateActivations).
  #input!: Tensor;
  #labels!: Tensor;
  #z: Tensor[] = [];
  #h: Tensor[] = [];
  #dh: Tensor[] = [];
  #probs!: Tensor;
  #dlogits!: Tensor;
  #disposed = false;
  #fusedStep: boolean;
  #step: TrainStep | null = null;
  /** SGD the fused step applies itself (fuseSgd), or null. */
  #sgd: FusedSgd | null = null;

  constructor(architecture: ModelArchitecture, options: BuildOptions) {
    validateArchitecture(architecture);
    this.architecture = Object.freeze({ ...architecture, layers: [...architecture.layers] });
    this.kernels = options.kernels;
    const sizes = this.architecture.layers;
    this.inputSize = sizes[0]!;
    this.classes = sizes[sizes.length - 1]!;
    const capacity = options.capacity ?? 256;
    if (!Number.isInteger(capacity) || capacity < 1) throw new RangeError(`capacity must be a positive integer, got ${capacity}`);
    this.precision = checkModelPrecision(options.precision, this.kernels);
    this.#fusedStep = options.fusedStep ?? true;

    const k = this.kernels;
    const params: Parameter[] = [];
    const param = (layer: number, kind: ParameterKind, shape: number[]): Parameter => {
      const size = shape.reduce((a, b) => a * b, 1);
      const p: Parameter = { name: `layers.${layer}.${kind}`, kind, layer, shape, size, value: k.alloc(size), grad: k.alloc(size) };
      params.push(p);
      return p;
    };
    const hiddenCount = sizes.length - 2;
    this.#layers = [];
    for (let i = 0; i < sizes.length - 1; i++) {
      const inSize = sizes[i]!;
      const outSize = sizes[i + 1]!;
      const weight = param(i, 'weight', [outSize, inSize]);
      const bias = param(i, 'bias', [outSize]);
      const hidden = i < hiddenCount;
      const slope = hidden && architecture.activation === 'prelu' ? param(i, 'prelu_slope', [1]) : null;
      let act: Activation;
      if (!hidden) act = { kind: 'linear' };
      else if (slope) act = { kind: 'prelu', slope: slope.value };
      else if (architecture.activation === 'leaky_relu') act = { kind: 'leaky_relu', alpha: architecture.alpha };
      else act = { kind: architecture.activation } as Activation;
      this.#layers.push({ inSize, outSize, weight, bias, slope, act });
    }
    this.parameters = params;
    this.parameterNames = params.map((p) => p.name);
    this.#allocateActivations(capacity);

    // Initial values: prelu slopes start at alpha; weights from the rng (zero without one).
    for (const layer of this.#layers) if (layer.slope) layer.slope.value.data[0] = architecture.alpha;
    if (options.rng) {
      const init = resolveInit(options.init ?? 'auto', architecture.activation);
      const hiddenGain = activationGain(architecture.activation, architecture.alpha);
      this.#layers.forEach((layer, i) => {
        const gain = i < hiddenCount ? hiddenGain : 1;
        initWeights(layer.weight.value.data, layer.inSize, layer.outSize, init, gain, options.rng!);
      });
    }
  }

  get capacity(): number {
    return this.#capacity;
  }

  get disposed(): boolean {
    return this.#disposed;
  }

  /** The input buffer (capacity x inputSize); the trainer fills it in place. Re-read `.data` after any alloc. */
  get inputTensor(): Tensor {
    return this.#input;
  }

  /** The label buffer (capacity class indices stored as floats). */
  get labelTensor(): Tensor {
    return this.#labels;
  }

  /** Probabilities of the last forward pass (capacity x classes). */
  get probsTensor(): Tensor {
    return this.#probs;
  }

  /**
   * (Re)allocates the activation buffers for `capacity` rows. Every new buffer is allocated
   * before any old one is freed: if an allocation fails (too many rows for the backend's memory),
   * the new ones are freed again and the model keeps its old buffers, still usable.
   */
  #allocateActivations(capacity: number): void {
    const k = this.kernels;
    const sizes = this.architecture.layers;
    const fresh: Tensor[] = [];
    const alloc = (length: number): Tensor => {
      const t = k.alloc(length);
      fresh.push(t);
      return t;
    };
    let next: { input: Tensor; labels: Tensor; z: Tensor[]; h: Tensor[]; dh: Tensor[]; probs: Tensor; dlogits: Tensor };
    try {
      next = { input: alloc(capacity * this.inputSize), labels: alloc(capacity), z: [], h: [], dh: [], probs: alloc(capacity * this.classes), dlogits: alloc(capacity * this.classes) };
      for (let i = 0; i < sizes.length - 1; i++) {
        const out = sizes[i + 1]!;
        next.z.push(alloc(capacity * out));
        if (i < sizes.length - 2) {
          next.h.push(alloc(capacity * out));
          next.dh.push(alloc(capacity * out));
        }
      }
    } catch (error) {
      for (const t of fresh) if (!t.freed) k.free(t);
      throw error;
    }
    const old = [this.#input, this.#labels, this.#probs, this.#dlogits, ...this.#z, ...this.#h, ...this.#dh];
    for (const t of old) if (t && !t.freed) k.free(t);
    this.#input = next.input;
    this.#labels = next.labels;
    this.#z = next.z;
    this.#h = next.h;
    this.#dh = next.dh;
    this.#probs = next.probs;
    this.#dlogits = next.dlogits;
    this.#capacity = capacity;
    this.#planStep();
  }

  /** (Re)plans the fused training step over the current buffers, when the backend has one. */
  #planStep(): void {
    this.#step?.dispose();
    this.#step = null;
    if (!this.#fusedStep || !this.kernels.createTrainStep) return;
    const last = this.#layers.length - 1;
    const sgd = this.#sgd;
    const velocityOf = (p: Parameter | null): Tensor | null => (p && sgd ? (sgd.velocity[sgd.values.indexOf(p.value)] ?? null) : null);
    this.#step = this.kernels.createTrainStep({
      capacity: this.#capacity,
      precision: this.precision,
      input: this.#input,
      labels: this.#labels,
      probs: this.#probs,
      dlogits: this.#dlogits,
      layers: this.#layers.map((layer, i) => ({
        inF: layer.inSize,
        outF: layer.outSize,
        act: layer.act,
        weight: layer.weight.value,
        weightGrad: layer.weight.grad,
        bias: layer.bias.value,
        biasGrad: layer.bias.grad,
        z: this.#z[i]!,
        h: i < last ? this.#h[i]! : this.#z[i]!,
        dInput: i > 0 ? this.#dh[i - 1]! : null,
        slopeGrad: layer.slope ? layer.slope.grad : null,
        weightVelocity: velocityOf(layer.weight),
        biasVelocity: velocityOf(layer.bias),
        slopeVelocity: velocityOf(layer.slope),
      })),
      ...(sgd ? { sgd: sgd.settings } : {}),
    });
  }

  /**
   * Lets the fused training step apply an SGD optimizer's update itself (trainStep), each layer's
   * right after its backward pass, with the same bits as computeGradients + Sgd.step. True when
   * it will: the backend has a fused step and `sgd` updates exactly this model's parameters, in
   * order. null (or false returned) leaves the step without it. The optimizer's velocity tensors
   * must stay allocated while fused: call fuseSgd(null) before disposing the optimizer.
   */
  fuseSgd(sgd: FusedSgd | null): boolean {
    if (sgd === null && this.#disposed) return false;
    this.#alive();
    const ours = sgd !== null && sgd.values.length === this.parameters.length && sgd.values.every((v, i) => v === this.parameters[i]!.value);
    this.#sgd = ours ? sgd : null;
    this.#planStep();
    if (this.#step === null) this.#sgd = null;
    return this.#sgd !== null;
  }

  /**
   * computeGradients(count, 0), then, unless the loss is not finite, the SGD update given to
   * fuseSgd with learning rate lr, in the same native call. Returns the mean cross-entropy.
   */
  trainStep(count: number, lr: number): number {
    this.#alive();
    this.#checkRows(count);
    if (!this.#step || !this.#sgd) throw new Error('trainStep needs an SGD update fused with fuseSgd() first');
    return this.#step.run(count, 0, lr);
  }

  #alive(): void {
    if (this.#disposed) throw new DisposedError();
  }

  #checkRows(count: number): void {
    if (!Number.isInteger(count) || count < 1 || count > this.#capacity) {
      throw new RangeError(`row count must be an integer in [1, ${this.#capacity}], got ${count}`);
    }
  }

  /** Forward pass over the first `count` rows of the input buffer, up to the logits (z of the last layer). */
  forward(count: number): void {
    this.#alive();
    this.#checkRows(count);
    const k = this.kernels;
    let a = this.#input;
    const last = this.#layers.length - 1;
    this.#layers.forEach((layer, i) => {
      const z = this.#z[i]!;
      const h = i < last ? this.#h[i]! : z;
      k.denseForward(count, layer.inSize, layer.outSize, a, layer.weight.value, layer.bias.value, layer.act, z, h, this.precision);
      a = h;
    });
  }

  /** Forward + softmax cross-entropy against the label buffer; probabilities land in probsTensor. Returns the mean CE. */
  evaluateBatch(count: number): number {
    this.forward(count);
    return this.kernels.softmaxCrossEntropy(count, this.classes, this.#z[this.#z.length - 1]!, this.#labels, this.#probs, null);
  }

  /** Forward + softmax into probsTensor (no labels). */
  predictBatch(count: number): void {
    this.forward(count);
    this.kernels.softmax(count, this.classes, this.#z[this.#z.length - 1]!, this.#probs);
  }

  /**
   * Forward, loss and backward over the first `count` rows of the input and label buffers.
   * Writes every parameter's gradient. With l2 != 0 the weight gradients include l2 * W (the
   * trainer passes 0 and folds L2 into the optimizer step instead). Returns the mean
   * cross-entropy (without the L2 term).
   */
  computeGradients(count: number, l2 = 0): number {
    if (this.#step) {
      this.#alive();
      this.#checkRows(count);
      return this.#step.run(count, l2);
    }
    this.forward(count);
    const k = this.kernels;
    const last = this.#layers.length - 1;
    const loss = k.softmaxCrossEntropy(count, this.classes, this.#z[last]!, this.#labels, this.#probs, this.#dlogits);
    for (let i = last; i >= 0; i--) {
      const layer = this.#layers[i]!;
      let dz: Tensor;
      if (i === last) {
        dz = this.#dlogits;
      } else {
        dz = this.#dh[i]!;
        k.activationBackward(count, layer.outSize, layer.act, this.#z[i]!, this.#h[i]!, dz, dz, layer.slope ? layer.slope.grad : null);
      }
      const a = i === 0 ? this.#input : this.#h[i - 1]!;
      const gw = layer.weight.grad;
      if (l2 !== 0) {
        // dW = dZᵀ·A + l2·W in one gemm: start from a copy of W and let beta = l2 scale it.
        gw.data.set(layer.weight.value.data.subarray(0, layer.weight.size));
      }
      k.gemm(true, false, layer.outSize, layer.inSize, count, 1, dz, a, l2, gw, this.precision);
      k.biasGrad(count, layer.outSize, dz, layer.bias.grad);
      if (i > 0) k.gemm(false, false, count, layer.inSize, layer.outSize, 1, dz, layer.weight.value, 0, this.#dh[i - 1]!, this.precision);
    }
    return loss;
  }

  /** 0.5 * l2 * sum over weight matrices of ||W||² (0 when l2 = 0). */
  l2Penalty(l2: number): number {
    this.#alive();
    if (l2 === 0) return 0;
    let sum = 0;
    for (const layer of this.#layers) sum += this.kernels.sumSquares(layer.weight.size, layer.weight.value);
    return 0.5 * l2 * sum;
  }

  /** The learned prelu slope of each hidden layer (empty unless prelu). */
  preluSlopes(): number[] {
    this.#alive();
    return this.#layers.filter((l) => l.slope).map((l) => l.slope!.value.data[0]!);
  }

  #copyInput(x: Float32Array, offset: number, count: number): void {
    const n = count * this.inputSize;
    this.#input.data.set(x.subarray(offset * this.inputSize, offset * this.inputSize + n));
  }

  #checkInput(x: unknown, count: number): void {
    if (!(x instanceof Float32Array)) throw new TypeError('x must be a Float32Array of count x inputSize values');
    if (!Number.isInteger(count) || count < 0) throw new RangeError(`count must be a non-negative integer, got ${count}`);
    if (x.length < count * this.inputSize) {
      throw new RangeError(`x holds ${x.length} values but ${count} rows of ${this.inputSize} features need ${count * this.inputSize}`);
    }
  }

  predict(x: Float32Array, count: number): Float32Array {
    this.#alive();
    this.#checkInput(x, count);
    const out = new Float32Array(count * this.classes);
    for (let start = 0; start < count; start += this.#capacity) {
      const rows = Math.min(this.#capacity, count - start);
      this.#copyInput(x, start, rows);
      this.predictBatch(rows);
      out.set(this.#probs.data.subarray(0, rows * this.classes), start * this.classes);
    }
    return out;
  }

  logits(x: Float32Array, count: number): Float32Array {
    this.#alive();
    this.#checkInput(x, count);
    const out = new Float32Array(count * this.classes);
    const z = this.#z[this.#z.length - 1]!;
    for (let start = 0; start < count; start += this.#capacity) {
      const rows = Math.min(this.#capacity, count - start);
      this.#copyInput(x, start, rows);
      this.forward(rows);
      out.set(z.data.subarray(0, rows * this.classes), start * this.classes);
    }
    return out;
  }

  lossAndGradients(x: Float32Array, labels: ArrayLike<number>, options: { l2?: number } = {}): LossAndGradients {
    this.#alive();
    const count = labels.length;
    if (count < 1) throw new RangeError('labels must hold at least one label');
    this.#checkInput(x, count);
    const l2 = options.l2 ?? 0;
    if (typeof l2 !== 'number' || !Number.isFinite(l2) || l2 < 0) throw new RangeError(`l2 must be a finite number >= 0, got ${l2}`);
    for (let i = 0; i < count; i++) {
      const y = labels[i]!;
      if (!Number.isInteger(y) || y < 0 || y >= this.classes) throw new RangeError(`labels[${i}] = ${y} is not a class index in [0, ${this.classes})`);
    }
    if (count > this.#capacity) this.#allocateActivations(count);
    this.#copyInput(x, 0, count);
    const labelView = this.#labels.data;
    for (let i = 0; i < count; i++) labelView[i] = labels[i]!;
    const ce = this.computeGradients(count, l2);
    const loss = ce + this.l2Penalty(l2);
    const gradients: Record<string, Float32Array> = {};
    for (const p of this.parameters) gradients[p.name] = p.grad.data.slice(0, p.size);
    return { loss, gradients };
  }

  getParameters(): Record<string, Float32Array> {
    this.#alive();
    const out: Record<string, Float32Array> = {};
    for (const p of this.parameters) out[p.name] = p.value.data.slice(0, p.size);
    return out;
  }

  setParameters(values: Record<string, ArrayLike<number>>): void {
    this.#alive();
    const known = new Set(this.parameterNames);
    for (const name of Object.keys(values)) {
      if (!known.has(name)) throw new RangeError(`unknown parameter ${JSON.stringify(name)}; this model has ${this.parameterNames.join(', ')}`);
    }
    for (const p of this.parameters) {
      const v = values[p.name];
      if (v === undefined) continue;
      if (v.length !== p.size) throw new RangeError(`${p.name} needs ${p.size} values (shape [${p.shape.join(', ')}]), got ${v.length}`);
      p.value.data.set(v);
    }
  }

  async save(path: string): Promise<void> {
    this.#alive();
    await saveModelFile(path, this);
  }

  dispose(): void {
    if (this.#disposed) return;
    this.#step?.dispose();
    this.#step = null;
    const k = this.kernels;
    const tensors = [this.#input, this.#labels, this.#probs, this.#dlogits, ...this.#z, ...this.#h, ...this.#dh];
    for (const p of this.parameters) tensors.push(p.value, p.grad);
    for (const t of tensors) if (!t.freed) k.free(t);
    this.#disposed = true;
  }
}

export interface CreateModelOptions {
  /** Default: getKernels() (DENSETRAIN_BACKEND, else the best backend that loads). */
  kernels?: Kernels;
  /** Rows per forward pass; default 256. */
  capacity?: number;
  /** Default 'auto'. */
  init?: InitName;
  /** Seed of the initialisation; default 1. */
  seed?: number;
  /** GEMM precision, 'fp32' (default) or 'bf16' (mixed precision; see BuildOptions.precision). */
  precision?: Precision;
}

/** Builds a freshly initialised model (every buffer allocated now). */
export function createModel(architecture: ModelArchitecture, options: CreateModelOptions = {}): Model {
  return new Mlp(architecture, {
    kernels: options.kernels ?? getKernels(),
    capacity: options.capacity ?? 256,
    init: options.init ?? 'auto',
    rng: new Rng(options.seed ?? 1),
    ...(options.precision !== undefined ? { precision: options.precision } : {}),
  });
}
