/**
 * A TEST-ONLY backend that does every operation in float32 (Math.fround after each one), with
 * the accumulation patterns of real SIMD kernels: gemm sums in 8 interleaved lanes (like AVX
 * registers) combined pairwise at the end, softmax/exp argument and sums in float32, optimizer
 * arithmetic in float32 with float32-rounded hyper-parameters. It is not a product backend; it
 * exists so the tolerances of the golden and property suites are exercised against a genuinely
 * float32 implementation even on a machine where native and wasm do not load (they must accept
 * it: it is a correct float32 implementation), and so the suites have a non-reference backend
 * to run against before those land.
 */
import { withChecks, type RawKernels } from '../../src/kernels/checks.js';
import { gatherBytesJs } from '../../src/kernels/gather.js';
import { JsTensor } from '../../src/kernels/reference.js';
import type { Activation, BackendName, Kernels, Tensor } from '../../src/kernels/types.js';

const f = Math.fround;

function act32(act: Activation, z: number): number {
  switch (act.kind) {
    case 'relu':
      return z > 0 ? z : 0;
    case 'leaky_relu':
      return z > 0 ? z : f(f(act.alpha) * z);
    case 'prelu':
      return z > 0 ? z : f(act.slope.data[0]! * z);
    case 'sigmoid':
      return f(1 / f(1 + f(Math.exp(-z))));
    case 'tanh':
      return f(Math.tanh(z));
    case 'linear':
      return z;
  }
}

function deriv32(act: Activation, z: number, h: number): number {
  switch (act.kind) {
    case 'relu':
      return z > 0 ? 1 : 0;
    case 'leaky_relu':
      return z > 0 ? 1 : f(act.alpha);
    case 'prelu':
      return z > 0 ? 1 : act.slope.data[0]!;
    case 'sigmoid':
      return f(h * f(1 - h));
    case 'tanh':
      return f(1 - f(h * h));
    case 'linear':
      return 1;
  }
}

/** Float32 sum of 8 interleaved lanes, lanes combined pairwise. */
function laneSum(k: number, term: (p: number) => number): number {
  const lanes = new Float64Array(8);
  for (let p = 0; p < k; p++) lanes[p & 7] = f(lanes[p & 7]! + f(term(p)));
  let w = 8;
  while (w > 1) {
    w >>= 1;
    for (let i = 0; i < w; i++) lanes[i] = f(lanes[i]! + lanes[i + w]!);
  }
  return lanes[0]!;
}

export function createF32EmuKernels(): Kernels {
  const live = new Set<JsTensor>();
  const all = new WeakSet<JsTensor>();
  let bytes = 0;
  const raw: RawKernels = {
    name: 'f32emu' as BackendName,
    maxThreads: 1,
    maxLength: 2 ** 26,
    info: () => ({ backend: 'f32emu' as BackendName, isa: 'f32-emulated', threads: 1 }),
    setThreads: () => undefined,
    owns: (t: unknown): t is Tensor => t instanceof JsTensor && all.has(t),
    alloc(length) {
      const t = new JsTensor(length);
      live.add(t);
      all.add(t);
      bytes += length * 4;
      return t;
    },
    free(t) {
      (t as JsTensor).release();
      live.delete(t as JsTensor);
      bytes -= t.length * 4;
    },
    allocatedBytes: () => bytes,
    gemm(transA, transB, m, n, k, alpha, a, b, beta, c) {
      const A = a.data;
      const B = b.data;
      const C = c.data;
      const al = f(alpha);
      const be = f(beta);
      for (let i = 0; i < m; i++) {
        for (let j = 0; j < n; j++) {
          const s = laneSum(k, (p) => (transA ? A[p * m + i]! : A[i * k + p]!) * (transB ? B[j * k + p]! : B[p * n + j]!));
          const idx = i * n + j;
          C[idx] = beta === 0 ? f(al * s) : f(f(al * s) + f(be * C[idx]!));
        }
      }
    },
    biasActivation(rows, cols, z, bias, act, h) {
      const Z = z.data;
      const H = h.data;
      const bb = bias?.data;
      for (let i = 0; i < rows * cols; i++) {
        if (bb) Z[i] = f(Z[i]! + bb[i % cols]!);
        H[i] = act32(act, Z[i]!);
      }
    },
    denseForward(rows, inF, outF, x, w, bias, act, z, h) {
      this.gemm(false, true, rows, outF, inF, 1, x, w, 0, z);
      this.biasActivation(rows, outF, z, bias, act, h);
    },
    activationBackward(rows, cols, act, z, h, dh, dz, dSlope) {
      const Z = z.data;
      const H = h.data;
      const dH = dh.data;
      const dZ = dz.data;
      const slope = laneSum(rows * cols, (i) => (act.kind === 'prelu' && Z[i]! <= 0 ? dH[i]! * Z[i]! : 0));
      for (let i = 0; i < rows * cols; i++) dZ[i] = f(dH[i]! * deriv32(act, Z[i]!, H[i]!));
      if (act.kind === 'prelu' && dSlope) dSlope.data[0] = slope;
    },
    biasGrad(rows, cols, dz, db) {
      const dZ = dz.data;
      const dB = db.data;
      for (let j = 0; j < cols; j++) {
        let s = 0;
        for (let i = 0; i < rows; i++) s = f(s + dZ[i * cols + j]!);
        dB[j] = s;
      }
    },
    softmaxCrossEntropy(rows, cols, logits, labels, probs, dlogits) {
      const L = logits.data;
      const Y = labels.data;
      const P = probs.data;
      const D = dlogits?.data;
      let total = 0;
      const inv = f(1 / rows);
      for (let i = 0; i < rows; i++) {
        const r = i * cols;
        let mx = -Infinity;
        for (let j = 0; j < cols; j++) mx = Math.max(mx, L[r + j]!);
        let s = 0;
        for (let j = 0; j < cols; j++) s = f(s + f(Math.exp(f(L[r + j]! - mx))));
        const y = Y[i]!;
        total += mx + Math.log(s) - L[r + y]!;
        const invS = f(1 / s);
        for (let j = 0; j < cols; j++) {
          const p = f(f(Math.exp(f(L[r + j]! - mx))) * invS);
          P[r + j] = p;
          if (D) D[r + j] = f(f(p - (j === y ? 1 : 0)) * inv);
        }
      }
      return total / rows;
    },
    softmax(rows, cols, logits, probs) {
      const L = logits.data;
      const P = probs.data;
      for (let i = 0; i < rows; i++) {
        const r = i * cols;
        let mx = -Infinity;
        for (let j = 0; j < cols; j++) mx = Math.max(mx, L[r + j]!);
        let s = 0;
        for (let j = 0; j < cols; j++) s = f(s + f(Math.exp(f(L[r + j]! - mx))));
        const invS = f(1 / s);
        for (let j = 0; j < cols; j++) P[r + j] = f(f(Math.exp(f(L[r + j]! - mx))) * invS);
      }
    },
    sgdStep(n, param, grad, velocity, lr, momentum, nesterov, l2) {
      const p = param.data;
      const g = grad.data;
      const v = velocity?.data;
      const [lr32, mu, l232] = [f(lr), f(momentum), f(l2)];
      for (let i = 0; i < n; i++) {
        const gi = f(g[i]! + f(l232 * p[i]!));
        let step = gi;
        if (momentum !== 0 && v) {
          v[i] = f(f(mu * v[i]!) + gi);
          step = nesterov ? f(gi + f(mu * v[i]!)) : v[i]!;
        }
        p[i] = f(p[i]! - f(lr32 * step));
      }
    },
    adamStep(n, param, grad, m, v, lr, beta1, beta2, eps, l2, step) {
      const p = param.data;
      const g = grad.data;
      const M = m.data;
      const V = v.data;
      const [b1, b2, c1, c2, l232, eps32] = [f(beta1), f(beta2), f(1 - beta1), f(1 - beta2), f(l2), f(eps)];
      const stepSize = f(lr / (1 - beta1 ** step));
      const invSqrtBias2 = f(1 / Math.sqrt(1 - beta2 ** step));
      for (let i = 0; i < n; i++) {
        const gi = f(g[i]! + f(l232 * p[i]!));
        M[i] = f(f(b1 * M[i]!) + f(c1 * gi));
        V[i] = f(f(b2 * V[i]!) + f(c2 * f(gi * gi)));
        const denom = f(f(f(Math.sqrt(V[i]!)) * invSqrtBias2) + eps32);
        p[i] = f(p[i]! - f(f(stepSize * M[i]!) / denom));
      }
    },
    sumSquares(n, x) {
      const X = x.data;
      let s = 0;
      for (let i = 0; i < n; i++) s += X[i]! * X[i]!;
      return s;
    },
    // A table lookup: exact in any precision, so the shared JavaScript loop serves.
    gatherRows(count, features, bytes, indices, start, table, out) {
      gatherBytesJs(count, features, bytes, indices, start, table, out.data);
    },
  };
  return withChecks(raw);
}
