/**
 * Argument checks shared by every backend. Each backend implements the raw kernels (which
 * trust their arguments) and wraps them with `withChecks`, so the rules for what a valid call
 * is live in one place. Native code checks sizes again on its side of the boundary (defence in
 * depth against callers that reach the addon directly), but this layer is what users meet.
 */
import type { Activation, Kernels, KernelsInfo, Precision, Tensor, TrainStep, TrainStepSpec } from './types.js';

/** The raw kernels a backend provides: the Kernels methods, called only with checked arguments. */
export interface RawKernels extends Omit<Kernels, 'setThreads' | 'alloc' | 'free'> {
  /** True if the tensor was allocated by this backend instance (alive or freed). */
  owns(tensor: unknown): tensor is Tensor;
  alloc(length: number): Tensor;
  free(tensor: Tensor): void;
  setThreads(threads: number): void;
  /** Largest thread count setThreads accepts. */
  readonly maxThreads: number;
  /** Largest tensor length alloc accepts. */
  readonly maxLength: number;
}

export function checkSize(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (!Number.isInteger(value) || value < 0 || value > 0x7fffffff) {
    throw new RangeError(`${name} must be a non-negative integer (at most 2^31-1), got ${value}`);
  }
  return value;
}

export function checkFinite(name: string, value: unknown): number {
  if (typeof value !== 'number') throw new TypeError(`${name} must be a number, got ${describe(value)}`);
  if (!Number.isFinite(value)) throw new RangeError(`${name} must be finite, got ${value}`);
  return value;
}

export function checkBoolean(name: string, value: unknown): boolean {
  if (typeof value !== 'boolean') throw new TypeError(`${name} must be a boolean, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'object') return `an object (${(value as object).constructor?.name ?? 'Object'})`;
  if (typeof value === 'string') return `the string ${JSON.stringify(value.slice(0, 20))}`;
  return `${typeof value} ${String(value)}`;
}

/** Multiplies two sizes, refusing products that exceed what any tensor can hold. */
function product(names: string, a: number, b: number): number {
  const p = a * b;
  if (p > 0x7fffffff) throw new RangeError(`${names} = ${p} elements is larger than any tensor can be`);
  return p;
}

/** A GEMM precision argument: undefined means 'fp32'; 'bf16' only where the backend has bf16 GEMMs. */
function checkPrecision(raw: RawKernels, value: unknown): Precision {
  if (value === undefined || value === 'fp32') return 'fp32';
  if (value !== 'bf16') throw new RangeError(`precision must be 'fp32' or 'bf16', got ${describe(value)}`);
  const bf16 = raw.info().bf16;
  if (!bf16?.available) {
    throw new RangeError(`precision 'bf16' is not available on the ${raw.name} backend: ${bf16?.detail ?? 'no bf16 GEMMs'}`);
  }
  return 'bf16';
}

/** Long because it is the Kernels object: one short checking method per kernel, each calling the raw one. */
export function withChecks(raw: RawKernels): Kernels {
  const tensor = (name: string, t: unknown, needed: number): Tensor => {
    if (!raw.owns(t)) {
      throw new TypeError(`${name} must be a tensor allocated by this ${raw.name} backend, got ${describe(t)}`);
    }
    if (t.freed) throw new RangeError(`${name} has been freed`);
    if (t.length < needed) {
      throw new RangeError(`${name} holds ${t.length} elements but the call needs ${needed}`);
    }
    return t;
  };
  const optionalTensor = (name: string, t: unknown, needed: number): Tensor | null =>
    t === null || t === undefined ? null : tensor(name, t, needed);

  const activation = (act: unknown, needSlopeGrad: boolean, dSlope?: unknown): Activation => {
    if (typeof act !== 'object' || act === null) throw new TypeError(`act must be an activation object, got ${describe(act)}`);
    const kind = (act as { kind?: unknown }).kind;
    switch (kind) {
      case 'relu':
      case 'sigmoid':
      case 'tanh':
      case 'linear':
        return act as Activation;
      case 'leaky_relu':
        checkFinite('act.alpha', (act as { alpha?: unknown }).alpha);
        return act as Activation;
      case 'prelu':
        tensor('act.slope', (act as { slope?: unknown }).slope, 1);
        if (needSlopeGrad) tensor('dSlope', dSlope, 1);
        return act as Activation;
      default:
        throw new RangeError(`act.kind must be one of relu, leaky_relu, prelu, sigmoid, tanh, linear; got ${describe(kind)}`);
    }
  };

  const checked: Kernels = {
    name: raw.name,
    info: (): KernelsInfo => raw.info(),
    setThreads(threads: number): void {
      checkSize('threads', threads);
      if (threads < 1 || threads > raw.maxThreads) {
        throw new RangeError(`threads must be between 1 and ${raw.maxThreads} on the ${raw.name} backend, got ${threads}`);
      }
      raw.setThreads(threads);
    },
    alloc(length: number): Tensor {
      checkSize('length', length);
      if (length < 1) throw new RangeError('length must be at least 1');
      if (length > raw.maxLength) {
        throw new RangeError(`length ${length} exceeds the ${raw.name} backend's largest tensor (${raw.maxLength} elements)`);
      }
      return raw.alloc(length);
    },
    free(t: Tensor): void {
      raw.free(tensor('tensor', t, 0));
    },
    allocatedBytes: () => raw.allocatedBytes(),

    gemm(transA, transB, m, n, k, alpha, a, b, beta, c, precision): void {
      checkBoolean('transA', transA);
      checkBoolean('transB', transB);
      checkSize('m', m);
      checkSize('n', n);
      checkSize('k', k);
      checkFinite('alpha', alpha);
      checkFinite('beta', beta);
      tensor('a', a, product('m*k', m, k));
      tensor('b', b, product('k*n', k, n));
      tensor('c', c, product('m*n', m, n));
      if (c === a || c === b) throw new RangeError('c must not be the same tensor as a or b');
      raw.gemm(transA, transB, m, n, k, alpha, a, b, beta, c, checkPrecision(raw, precision));
    },

    biasActivation(rows, cols, z, bias, act, h): void {
      checkSize('rows', rows);
      checkSize('cols', cols);
      const size = product('rows*cols', rows, cols);
      tensor('z', z, size);
      optionalTensor('bias', bias, cols);
      tensor('h', h, size);
      raw.biasActivation(rows, cols, z, bias ?? null, activation(act, false), h);
    },

    denseForward(rows, inF, outF, x, w, bias, act, z, h, precision): void {
      checkSize('rows', rows);
      checkSize('inF', inF);
      checkSize('outF', outF);
      tensor('x', x, product('rows*inF', rows, inF));
      tensor('w', w, product('outF*inF', outF, inF));
      optionalTensor('bias', bias, outF);
      const size = product('rows*outF', rows, outF);
      tensor('z', z, size);
      tensor('h', h, size);
      const a = activation(act, false);
      if (z === x || z === w) throw new RangeError('z must not be the same tensor as x or w');
      if (h === x || h === w) throw new RangeError('h must not be the same tensor as x or w');
      if (bias !== null && bias !== undefined && (bias === z || bias === h)) {
        throw new RangeError('bias must not be the same tensor as z or h');
      }
      raw.denseForward(rows, inF, outF, x, w, bias ?? null, a, z, h, checkPrecision(raw, precision));
    },

    activationBackward(rows, cols, act, z, h, dh, dz, dSlope): void {
      checkSize('rows', rows);
      checkSize('cols', cols);
      const size = product('rows*cols', rows, cols);
      const a = activation(act, true, dSlope);
      tensor('z', z, size);
      tensor('h', h, size);
      tensor('dh', dh, size);
      tensor('dz', dz, size);
      if (a.kind === 'prelu' && dSlope === a.slope) throw new RangeError('dSlope must not be the slope tensor itself');
      raw.activationBackward(rows, cols, a, z, h, dh, dz, a.kind === 'prelu' ? dSlope : null);
    },

    biasGrad(rows, cols, dz, db): void {
      checkSize('rows', rows);
      checkSize('cols', cols);
      tensor('dz', dz, product('rows*cols', rows, cols));
      tensor('db', db, cols);
      if (db === dz) throw new RangeError('db must not be the same tensor as dz');
      raw.biasGrad(rows, cols, dz, db);
    },

    softmaxCrossEntropy(rows, cols, logits, labels, probs, dlogits): number {
      checkSize('rows', rows);
      checkSize('cols', cols);
      if (rows < 1) throw new RangeError('rows must be at least 1 (the loss is a mean over rows)');
      if (cols < 1) throw new RangeError('cols must be at least 1');
      const size = product('rows*cols', rows, cols);
      tensor('logits', logits, size);
      tensor('labels', labels, rows);
      tensor('probs', probs, size);
      optionalTensor('dlogits', dlogits, size);
      if (probs === logits || probs === labels || dlogits === labels || (dlogits !== null && dlogits === probs)) {
        throw new RangeError('probs and dlogits must be distinct tensors, different from labels (dlogits may be logits)');
      }
      // Labels are validated here, once, so that every backend reports a bad label the same way.
      const labelView = labels.data;
      for (let i = 0; i < rows; i++) {
        const y = labelView[i]!;
        if (!Number.isInteger(y) || y < 0 || y >= cols) {
          throw new RangeError(`labels[${i}] = ${y} is not a class index in [0, ${cols})`);
        }
      }
      return raw.softmaxCrossEntropy(rows, cols, logits, labels, probs, dlogits ?? null);
    },

    softmax(rows, cols, logits, probs): void {
      checkSize('rows', rows);
      checkSize('cols', cols);
      const size = product('rows*cols', rows, cols);
      tensor('logits', logits, size);
      tensor('probs', probs, size);
      raw.softmax(rows, cols, logits, probs);
    },

    sgdStep(n, param, grad, velocity, lr, momentum, nesterov, l2): void {
      checkSize('n', n);
      tensor('param', param, n);
      tensor('grad', grad, n);
      checkFinite('lr', lr);
      checkFinite('momentum', momentum);
      checkBoolean('nesterov', nesterov);
      checkFinite('l2', l2);
      if (momentum !== 0) tensor('velocity', velocity, n);
      else optionalTensor('velocity', velocity, n);
      if (velocity === param || velocity === grad || grad === param) {
        throw new RangeError('param, grad and velocity must be distinct tensors');
      }
      raw.sgdStep(n, param, grad, velocity ?? null, lr, momentum, nesterov, l2);
    },

    adamStep(n, param, grad, m, v, lr, beta1, beta2, eps, l2, step): void {
      checkSize('n', n);
      tensor('param', param, n);
      tensor('grad', grad, n);
      tensor('m', m, n);
      tensor('v', v, n);
      if (new Set([param, grad, m, v]).size !== 4) throw new RangeError('param, grad, m and v must be distinct tensors');
      checkFinite('lr', lr);
      checkFinite('beta1', beta1);
      checkFinite('beta2', beta2);
      checkFinite('eps', eps);
      checkFinite('l2', l2);
      if (!(beta1 >= 0 && beta1 < 1)) throw new RangeError(`beta1 must be in [0, 1), got ${beta1}`);
      if (!(beta2 >= 0 && beta2 < 1)) throw new RangeError(`beta2 must be in [0, 1), got ${beta2}`);
      checkSize('step', step);
      if (step < 1) throw new RangeError('step must be at least 1');
      raw.adamStep(n, param, grad, m, v, lr, beta1, beta2, eps, l2, step);
    },

    sumSquares(n, x): number {
      checkSize('n', n);
      tensor('x', x, n);
      return raw.sumSquares(n, x);
    },

    gatherRows(count, features, bytes, indices, start, table, out) {
      checkSize('count', count);
      checkSize('features', features);
      if (features < 1) throw new RangeError('features must be at least 1');
      if (!(bytes instanceof Uint8Array)) throw new TypeError(`bytes must be a Uint8Array, got ${describe(bytes)}`);
      if (!(indices instanceof Uint32Array)) throw new TypeError(`indices must be a Uint32Array, got ${describe(indices)}`);
      checkSize('start', start);
      if (!(table instanceof Float32Array)) throw new TypeError(`table must be a Float32Array, got ${describe(table)}`);
      if (table.length < 256) throw new RangeError(`table holds ${table.length} floats, one per byte value needs 256`);
      if (start + count > indices.length) {
        throw new RangeError(`start + count (${start + count}) exceeds indices.length (${indices.length})`);
      }
      tensor('out', out, product('count*features', count, features));
      const images = Math.floor(bytes.length / features);
      for (let k = start; k < start + count; k++) {
        if (indices[k]! >= images) {
          throw new RangeError(`indices[${k}] = ${indices[k]} is out of range for ${images} images of ${features} bytes`);
        }
      }
      raw.gatherRows(count, features, bytes, indices, start, table, out);
    },
  };
  const createRawStep = raw.createTrainStep?.bind(raw);
  if (createRawStep) {
    checked.createTrainStep = (spec: TrainStepSpec): TrainStep => {
      const capacity = checkSize('capacity', spec.capacity);
      if (capacity < 1) throw new RangeError('capacity must be at least 1');
      const precision = checkPrecision(raw, spec.precision);
      if (!Array.isArray(spec.layers) || spec.layers.length < 1) throw new RangeError('layers must list at least one layer');
      spec.layers.forEach((l, i) => {
        const at = `layers[${i}].`;
        checkSize(`${at}inF`, l.inF);
        checkSize(`${at}outF`, l.outF);
        if (i > 0 && l.inF !== spec.layers[i - 1]!.outF) throw new RangeError(`${at}inF must equal the previous layer's outF`);
        const a = activation(l.act, l.act?.kind === 'prelu', l.slopeGrad);
        const w = product(`${at}outF*inF`, l.outF, l.inF);
        tensor(`${at}weight`, l.weight, w);
        tensor(`${at}weightGrad`, l.weightGrad, w);
        tensor(`${at}bias`, l.bias, l.outF);
        tensor(`${at}biasGrad`, l.biasGrad, l.outF);
        tensor(`${at}z`, l.z, product('capacity*outF', capacity, l.outF));
        tensor(`${at}h`, l.h, product('capacity*outF', capacity, l.outF));
        if (i > 0) tensor(`${at}dInput`, l.dInput, product('capacity*inF', capacity, l.inF));
        if (a.kind === 'prelu' && l.slopeGrad === a.slope) throw new RangeError(`${at}slopeGrad must not be the slope tensor itself`);
        if (spec.sgd && spec.sgd.momentum !== 0) {
          tensor(`${at}weightVelocity`, l.weightVelocity, w);
          tensor(`${at}biasVelocity`, l.biasVelocity, l.outF);
          if (a.kind === 'prelu') tensor(`${at}slopeVelocity`, l.slopeVelocity, 1);
        }
      });
      if (spec.sgd) {
        const { momentum, nesterov, l2 } = spec.sgd;
        checkFinite('sgd.momentum', momentum);
        if (momentum < 0 || momentum >= 1) throw new RangeError(`sgd.momentum must be in [0, 1), got ${momentum}`);
        if (typeof nesterov !== 'boolean') throw new TypeError('sgd.nesterov must be a boolean');
        checkFinite('sgd.l2', l2);
      }
      const classes = spec.layers[spec.layers.length - 1]!.outF;
      tensor('input', spec.input, product('capacity*inF', capacity, spec.layers[0]!.inF));
      tensor('labels', spec.labels, capacity);
      tensor('probs', spec.probs, product('capacity*classes', capacity, classes));
      tensor('dlogits', spec.dlogits, product('capacity*classes', capacity, classes));
      const step = createRawStep({ ...spec, precision });
      let disposed = false;
      return {
        run(count: number, l2: number, lr?: number): number {
          if (disposed) throw new Error('this training step has been disposed');
          checkSize('count', count);
          if (count < 1 || count > capacity) throw new RangeError(`count must be an integer in [1, ${capacity}], got ${count}`);
          checkFinite('l2', l2);
          if (lr === undefined) return step.run(count, l2);
          if (!spec.sgd) throw new TypeError('this training step was planned without sgd: it cannot take a learning rate');
          checkFinite('lr', lr);
          return step.run(count, l2, lr);
        },
        dispose(): void {
          disposed = true;
          step.dispose();
        },
      };
    };
  }
  return Object.freeze(checked);
}
