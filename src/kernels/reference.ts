/**
 * The reference backend: plain TypeScript, written to be read, not to be fast. It is the
 * oracle every other backend is tested against, so it favours accuracy: sums are carried in
 * float64 (JS numbers) and rounded to float32 once, when stored.
 */
import { withChecks, type RawKernels } from './checks.js';
import { roundedBf16Copy } from './bf16.js';
import type { Activation, Kernels, Tensor } from './types.js';

/**
 * A tensor in ordinary JS memory, freeable. Ownership is not a property of the class: each
 * backend instance keeps its own set of the tensors it allocated.
 */
export class JsTensor implements Tensor {
  #data: Float32Array | null;
  readonly length: number;
  constructor(length: number) {
    this.#data = new Float32Array(length);
    this.length = length;
  }
  get data(): Float32Array {
    if (this.#data === null) throw new RangeError('tensor has been freed');
    return this.#data;
  }
  get freed(): boolean {
    return this.#data === null;
  }
  release(): void {
    this.#data = null;
  }
}

/** The activation applied to one pre-activation value. */
export function activate(act: Activation, z: number): number {
  switch (act.kind) {
    case 'relu':
      return z > 0 ? z : 0;
    case 'leaky_relu':
      return z > 0 ? z : act.alpha * z;
    case 'prelu':
      return z > 0 ? z : act.slope.data[0]! * z;
    case 'sigmoid':
      return 1 / (1 + Math.exp(-z));
    case 'tanh':
      return Math.tanh(z);
    case 'linear':
      return z;
  }
}

/** d act / d z at z, given h = act(z). The z <= 0 branch is PyTorch's convention at exactly 0. */
export function activationDerivative(act: Activation, z: number, h: number): number {
  switch (act.kind) {
    case 'relu':
      return z > 0 ? 1 : 0;
    case 'leaky_relu':
      return z > 0 ? 1 : act.alpha;
    case 'prelu':
      return z > 0 ? 1 : act.slope.data[0]!;
    case 'sigmoid':
      return h * (1 - h);
    case 'tanh':
      return 1 - h * h;
    case 'linear':
      return 1;
  }
}

/**
 * log(sum_j exp(l[row + j])) over one row, shifted by the row's maximum so that logits of
 * +-1000 neither overflow nor turn into -Infinity.
 */
function rowLogSumExp(logits: Float32Array, row: number, cols: number): number {
  let max = -Infinity;
  for (let j = 0; j < cols; j++) max = Math.max(max, logits[row + j]!);
  let sumExp = 0;
  for (let j = 0; j < cols; j++) sumExp += Math.exp(logits[row + j]! - max);
  return max + Math.log(sumExp);
}

/** Long because it is the RawKernels object: one plain-loop method per kernel (the oracle the others are tested against). */
function createRaw(): RawKernels {
  // Weak: the backend recognises its tensors without keeping an unfreed one alive.
  const all = new WeakSet<JsTensor>();
  let bytes = 0;

  return {
    name: 'reference',
    maxThreads: 1,
    maxLength: 2 ** 28,
    info: () => ({ backend: 'reference', isa: 'js', threads: 1, bf16: { available: true, detail: 'js: operands rounded to bfloat16, sums in float64' } }),
    setThreads: () => undefined,
    owns: (t: unknown): t is Tensor => t instanceof JsTensor && all.has(t),
    alloc(length) {
      const t = new JsTensor(length);
      all.add(t);
      bytes += length * 4;
      return t;
    },
    free(t) {
      const tensor = t as JsTensor;
      tensor.release();
      bytes -= tensor.length * 4;
    },
    allocatedBytes: () => bytes,

    gemm(transA, transB, m, n, k, alpha, a, b, beta, c, precision) {
      // bf16: the operands rounded to bfloat16 first; the sums are still carried in float64.
      const A = precision === 'bf16' ? roundedBf16Copy(a.data, m * k) : a.data;
      const B = precision === 'bf16' ? roundedBf16Copy(b.data, k * n) : b.data;
      const C = c.data;
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          let sum = 0;
          for (let p = 0; p < k; p++) {
            const aip = transA ? A[p * m + i]! : A[i * k + p]!;
            const bpj = transB ? B[j * k + p]! : B[p * n + j]!;
            sum += aip * bpj;
          }
          // beta = 0 means "overwrite": C's old value (maybe NaN) is not read.
          C[i * n + j] = beta === 0 ? alpha * sum : alpha * sum + beta * C[i * n + j]!;
        }
      }
    },

    biasActivation(rows, cols, z, bias, act, h) {
      const Z = z.data;
      const H = h.data;
      const b = bias?.data;
      for (let i = 0; i < rows; i++) {
        for (let j = 0; j < cols; j++) {
          const idx = i * cols + j;
          const zij = b ? Z[idx]! + b[j]! : Z[idx]!;
          Z[idx] = zij;
          // Activate the stored float32 value, as every backend does.
          H[idx] = activate(act, Z[idx]!);
        }
      }
    },

    // The oracle for the fused kernels of the other backends: literally gemm, then bias + activation.
    denseForward(rows, inF, outF, x, w, bias, act, z, h, precision) {
      this.gemm(false, true, rows, outF, inF, 1, x, w, 0, z, precision);
      this.biasActivation(rows, outF, z, bias, act, h);
    },

    activationBackward(rows, cols, act, z, h, dh, dz, dSlope) {
      const Z = z.data;
      const H = h.data;
      const dH = dh.data;
      const dZ = dz.data;
      let slopeGrad = 0;
      for (let idx = 0; idx < rows * cols; idx++) {
        const zv = Z[idx]!;
        const g = dH[idx]!;
        if (act.kind === 'prelu' && zv <= 0) slopeGrad += g * zv;
        dZ[idx] = g * activationDerivative(act, zv, H[idx]!);
      }
      if (act.kind === 'prelu' && dSlope) dSlope.data[0] = slopeGrad;
    },

    biasGrad(rows, cols, dz, db) {
      const dZ = dz.data;
      const dB = db.data;
      for (let j = 0; j < cols; j++) {
        let sum = 0;
        for (let i = 0; i < rows; i++) sum += dZ[i * cols + j]!;
        dB[j] = sum;
      }
    },

    softmaxCrossEntropy(rows, cols, logits, labels, probs, dlogits) {
      const L = logits.data;
      const Y = labels.data;
      const P = probs.data;
      const D = dlogits?.data;
      let totalLoss = 0;
      for (let i = 0; i < rows; i++) {
        const row = i * cols;
        const logSumExp = rowLogSumExp(L, row, cols);
        const y = Y[i]!;
        // -log p_y = logsumexp - l_y, finite even when p_y underflows to 0.
        totalLoss += logSumExp - L[row + y]!;
        for (let j = 0; j < cols; j++) {
          const p = Math.exp(L[row + j]! - logSumExp);
          P[row + j] = p;
          if (D) D[row + j] = (p - (j === y ? 1 : 0)) / rows;
        }
      }
      return totalLoss / rows;
    },

    softmax(rows, cols, logits, probs) {
      const L = logits.data;
      const P = probs.data;
      for (let i = 0; i < rows; i++) {
        const row = i * cols;
        const logSumExp = rowLogSumExp(L, row, cols);
        for (let j = 0; j < cols; j++) P[row + j] = Math.exp(L[row + j]! - logSumExp);
      }
    },

    sgdStep(n, param, grad, velocity, lr, momentum, nesterov, l2) {
      const p = param.data;
      const g = grad.data;
      const v = velocity?.data;
      for (let i = 0; i < n; i++) {
        const gi = g[i]! + l2 * p[i]!;
        if (momentum !== 0 && v) {
          v[i] = momentum * v[i]! + gi;
          const step = nesterov ? gi + momentum * v[i]! : v[i]!;
          p[i] = p[i]! - lr * step;
        } else {
          p[i] = p[i]! - lr * gi;
        }
      }
    },

    adamStep(n, param, grad, m, v, lr, beta1, beta2, eps, l2, step) {
      const p = param.data;
      const g = grad.data;
      const M = m.data;
      const V = v.data;
      const stepSize = lr / (1 - beta1 ** step);
      const sqrtBias2 = Math.sqrt(1 - beta2 ** step);
      for (let i = 0; i < n; i++) {
        const gi = g[i]! + l2 * p[i]!;
        M[i] = beta1 * M[i]! + (1 - beta1) * gi;
        V[i] = beta2 * V[i]! + (1 - beta2) * gi * gi;
        p[i] = p[i]! - (stepSize * M[i]!) / (Math.sqrt(V[i]!) / sqrtBias2 + eps);
      }
    },

    sumSquares(n, x) {
      const X = x.data;
      let sum = 0;
      for (let i = 0; i < n; i++) sum += X[i]! * X[i]!;
      return sum;
    },

    gatherRows(count, features, bytes, indices, start, table, out) {
      const o = out.data;
      for (let k = 0; k < count; k++) {
        const src = indices[start + k]! * features;
        for (let p = 0; p < features; p++) o[k * features + p] = table[bytes[src + p]!]!;
      }
    },
  };
}

export function createReferenceKernels(): Kernels {
  return withChecks(createRaw());
}
