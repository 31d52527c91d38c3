/**
 * Running error bounds: every quantity of the MLP is computed here in float64 (the "exact"
 * value, which reproduces the PyTorch fixtures to ~1e-15) TOGETHER WITH a first-order bound on
 * how far ANY correctly working float32 implementation of the same kernel sequence may be from
 * it. The golden tests compare a backend's float32 results against the exact values with that
 * per-element bound as the tolerance, so each tolerance is derived, not guessed:
 *
 * - inputs:    rounding a float64 to float32 costs U|x|.
 * - gemm:      C = αAB + βC0:  e = |α|(eA|B| + |A|eB) + |β|eC0 + γ_{k+3}(|α||A||B| + |β||C0|)
 *              (propagation of the input errors, plus the any-order dot-product bound with three
 *              more roundings for α, β and the final add; see tolerance.ts).
 * - bias add:  e = ez + eb + U(|z| + |b|).
 * - act:       e_h = L·e_z + (rounding), L the largest |act'| on [z - e_z, z + e_z] (so a
 *              pre-activation that may cross a kink is covered); transcendental outputs carry
 *              ACT_ULPS·U|h| for the float32 exp/tanh.
 * - act':      the piecewise-linear derivatives are exact unless the computed z may lie on the
 *              other side of the kink (|z| <= e_z, e_z > 0); then the bound is the jump |1 - a|.
 *              Exactly-zero pre-activations with a zero error bound (x = 0 and b = 0, the *_zero
 *              fixtures) are exact in float32 too, so their derivative must follow the convention
 *              exactly: the tolerance there is tiny and a wrong convention cannot hide.
 * - softmax:   dp_j = p_j (dl_j - Σ_k p_k dl_k) (first order), plus the float32 rounding of the
 *              argument l_j - max (U(|l_j| + max|l|), large for logits of ±1000) and of exp/sum/div.
 * - sums:      bias gradients, slope gradients and sums of squares use γ_n Σ|terms|.
 * - optimizer: each update propagates the incoming errors and adds a few U per operation; the
 *              constants derived from hyper-parameters (1-β, bias corrections) may be rounded
 *              to float32 once each, which is why some terms carry 8U.
 *
 * Second-order terms (products of two error bounds, ~U²) are dropped; every comparison adds a
 * float64 slack of a few U64·|value| for the fixtures' own rounding.
 */
import { ACT_ULPS, FLT_MIN, U, gamma } from './tolerance.js';

/** A row-major matrix of exact values `v` with per-element float32 error bounds `e`. */
export class BMat {
  constructor(
    readonly rows: number,
    readonly cols: number,
    readonly v: Float64Array,
    readonly e: Float64Array,
  ) {
    if (v.length !== rows * cols || e.length !== rows * cols) throw new Error('BMat: size mismatch');
  }
  static zeros(rows: number, cols: number): BMat {
    return new BMat(rows, cols, new Float64Array(rows * cols), new Float64Array(rows * cols));
  }
  /** Values that a backend receives rounded to float32: error U|v|. */
  static rounded(rows: number, cols: number, values: ArrayLike<number>): BMat {
    const v = Float64Array.from({ length: rows * cols }, (_, i) => values[i]!);
    return new BMat(rows, cols, v, v.map((x) => U * Math.abs(x)));
  }
  /** Values a backend holds exactly (small integers, exact float32 data). */
  static exact(rows: number, cols: number, values: ArrayLike<number>): BMat {
    const v = Float64Array.from({ length: rows * cols }, (_, i) => values[i]!);
    return new BMat(rows, cols, v, new Float64Array(rows * cols));
  }
  /** The stored transpose (a [rows, cols] matrix becomes [cols, rows]); errors move along. */
  transposed(): BMat {
    const t = BMat.zeros(this.cols, this.rows);
    for (let i = 0; i < this.rows; i++) {
      for (let j = 0; j < this.cols; j++) {
        t.v[j * this.rows + i] = this.v[i * this.cols + j]!;
        t.e[j * this.rows + i] = this.e[i * this.cols + j]!;
      }
    }
    return t;
  }
}

export interface BScalar {
  v: number;
  e: number;
}

/** C = alpha * op(A) * op(B) + beta * C0 (C0 is not read when beta = 0). */
export function matmul(A: BMat, tA: boolean, B: BMat, tB: boolean, alpha = 1, beta = 0, C0?: BMat): BMat {
  const m = tA ? A.cols : A.rows;
  const k = tA ? A.rows : A.cols;
  const kb = tB ? B.cols : B.rows;
  const n = tB ? B.rows : B.cols;
  if (k !== kb) throw new Error(`matmul: inner sizes ${k} and ${kb} differ`);
  if (beta !== 0 && (!C0 || C0.rows !== m || C0.cols !== n)) throw new Error('matmul: C0 has the wrong shape');
  const C = BMat.zeros(m, n);
  const g = gamma(k + 3);
  for (let i = 0; i < m; i++) {
    for (let j = 0; j < n; j++) {
      let sum = 0;
      let mag = 0;
      let prop = 0;
      for (let p = 0; p < k; p++) {
        const ai = tA ? p * A.cols + i : i * A.cols + p;
        const bi = tB ? j * B.cols + p : p * B.cols + j;
        const a = A.v[ai]!;
        const b = B.v[bi]!;
        sum += a * b;
        mag += Math.abs(a * b);
        prop += A.e[ai]! * Math.abs(b) + Math.abs(a) * B.e[bi]!;
      }
      const idx = i * n + j;
      const c0 = beta !== 0 ? C0!.v[idx]! : 0;
      const ec0 = beta !== 0 ? C0!.e[idx]! : 0;
      C.v[idx] = alpha * sum + beta * c0;
      C.e[idx] = Math.abs(alpha) * prop + Math.abs(beta) * ec0 + g * (Math.abs(alpha) * mag + Math.abs(beta * c0));
    }
  }
  return C;
}

/** z + bias (bias a 1 x cols row broadcast over rows). */
export function addBias(Z: BMat, bias: BMat): BMat {
  const out = BMat.zeros(Z.rows, Z.cols);
  for (let i = 0; i < Z.rows; i++) {
    for (let j = 0; j < Z.cols; j++) {
      const idx = i * Z.cols + j;
      const z = Z.v[idx]!;
      const b = bias.v[j]!;
      out.v[idx] = z + b;
      out.e[idx] = Z.e[idx]! + bias.e[j]! + U * (Math.abs(z) + Math.abs(b));
    }
  }
  return out;
}

/** An activation as the bounds see it; the prelu slope is a parameter with its own error. */
export type BAct =
  | { kind: 'relu' }
  | { kind: 'leaky_relu'; alpha: number }
  | { kind: 'prelu'; slope: BScalar }
  | { kind: 'sigmoid' }
  | { kind: 'tanh' }
  | { kind: 'linear' };

/** Slope (and its error) of the z <= 0 branch of the piecewise-linear activations. */
function negativeSlope(act: BAct): { a: number; ea: number } {
  switch (act.kind) {
    case 'relu':
      return { a: 0, ea: 0 };
    case 'leaky_relu':
      // A backend may round alpha to float32 before multiplying.
      return { a: act.alpha, ea: U * Math.abs(act.alpha) };
    case 'prelu':
      return { a: act.slope.v, ea: act.slope.e };
    default:
      throw new Error(`${act.kind} is not piecewise linear`);
  }
}

/** May the computed z lie on the other side of 0 than the exact one? */
function ambiguous(z: number, ez: number): boolean {
  return ez > 0 && Math.abs(z) <= ez;
}

const sigmoid = (z: number): number => 1 / (1 + Math.exp(-z));
const dsigmoid = (z: number): number => sigmoid(z) * (1 - sigmoid(z));
const dtanh = (z: number): number => 1 - Math.tanh(z) ** 2;
/** Largest value of a derivative that peaks at 0 and decreases in |z|, over [z - ez, z + ez]. */
function maxOnInterval(f: (z: number) => number, z: number, ez: number): number {
  if (Math.abs(z) <= ez) return f(0);
  return f(Math.abs(z) - ez);
}

export function activate(Z: BMat, act: BAct): BMat {
  const H = BMat.zeros(Z.rows, Z.cols);
  for (let i = 0; i < Z.v.length; i++) {
    const z = Z.v[i]!;
    const ez = Z.e[i]!;
    let h: number;
    let eh: number;
    switch (act.kind) {
      case 'relu':
      case 'leaky_relu':
      case 'prelu': {
        const { a, ea } = negativeSlope(act);
        h = z > 0 ? z : a * z;
        if (ambiguous(z, ez)) eh = Math.max(1, Math.abs(a) + ea) * ez + ea * Math.abs(z) + U * Math.abs(a) * (Math.abs(z) + ez);
        else if (z > 0) eh = ez;
        else eh = Math.abs(a) * ez + ea * Math.abs(z) + U * Math.abs(a * z);
        break;
      }
      case 'sigmoid':
        h = sigmoid(z);
        eh = maxOnInterval(dsigmoid, z, ez) * ez + ACT_ULPS * U * h + FLT_MIN;
        break;
      case 'tanh':
        h = Math.tanh(z);
        eh = maxOnInterval(dtanh, z, ez) * ez + ACT_ULPS * U * Math.abs(h);
        break;
      case 'linear':
        h = z;
        eh = ez;
        break;
    }
    H.v[i] = h;
    H.e[i] = eh;
  }
  return H;
}

export interface BackwardOptions {
  /** Derivative used at exactly z = 0: 'negative' is PyTorch's (and ours); 'positive' is the bug. */
  zeroBranch?: 'negative' | 'positive';
}

/** dz = dh * act'(z) (using h where a backend would), and the prelu slope gradient. */
export function activationBackward(
  Z: BMat,
  H: BMat,
  dH: BMat,
  act: BAct,
  options: BackwardOptions = {},
): { dZ: BMat; slopeGrad: BScalar | null } {
  const dZ = BMat.zeros(Z.rows, Z.cols);
  let s = 0;
  let es = 0;
  let smag = 0;
  const positiveAtZero = options.zeroBranch === 'positive';
  for (let i = 0; i < Z.v.length; i++) {
    const z = Z.v[i]!;
    const ez = Z.e[i]!;
    const h = H.v[i]!;
    const eh = H.e[i]!;
    const dh = dH.v[i]!;
    const edh = dH.e[i]!;
    let d: number;
    let ed: number;
    switch (act.kind) {
      case 'relu':
      case 'leaky_relu':
      case 'prelu': {
        const { a, ea } = negativeSlope(act);
        const positive = z > 0 || (positiveAtZero && z === 0);
        d = positive ? 1 : a;
        if (ambiguous(z, ez)) ed = Math.abs(1 - a) + ea;
        else ed = positive ? 0 : ea;
        if (act.kind === 'prelu') {
          if (ambiguous(z, ez)) {
            if (z <= 0) s += dh * z;
            es += (Math.abs(dh) + edh) * (Math.abs(z) + ez);
          } else if (z <= 0) {
            s += dh * z;
            es += edh * Math.abs(z) + Math.abs(dh) * ez;
          }
          if (z <= 0) smag += Math.abs(dh * z);
        }
        break;
      }
      case 'sigmoid':
        d = h * (1 - h);
        ed = Math.abs(1 - 2 * h) * eh + ACT_ULPS * U * d;
        break;
      case 'tanh':
        d = 1 - h * h;
        ed = 2 * Math.abs(h) * eh + ACT_ULPS * U * (d + h * h);
        break;
      case 'linear':
        d = 1;
        ed = 0;
        break;
    }
    dZ.v[i] = dh * d;
    dZ.e[i] = edh * Math.abs(d) + Math.abs(dh) * ed + U * Math.abs(dh * d);
  }
  const slopeGrad = act.kind === 'prelu' ? { v: s, e: es + gamma(Z.v.length + 1) * smag } : null;
  return { dZ, slopeGrad };
}

/** Column sums (the bias gradient), as a 1 x cols row. */
export function colSum(dZ: BMat): BMat {
  const out = BMat.zeros(1, dZ.cols);
  const g = gamma(dZ.rows + 1);
  for (let j = 0; j < dZ.cols; j++) {
    let s = 0;
    let e = 0;
    let mag = 0;
    for (let i = 0; i < dZ.rows; i++) {
      const idx = i * dZ.cols + j;
      s += dZ.v[idx]!;
      e += dZ.e[idx]!;
      mag += Math.abs(dZ.v[idx]!);
    }
    out.v[j] = s;
    out.e[j] = e + g * mag;
  }
  return out;
}

/** Softmax + mean cross-entropy + dlogits = (p - onehot)/rows. */
export function softmaxCrossEntropy(L: BMat, labels: ArrayLike<number>): { probs: BMat; dlogits: BMat; loss: BScalar } {
  const { rows, cols } = L;
  const probs = BMat.zeros(rows, cols);
  const dlogits = BMat.zeros(rows, cols);
  let lossSum = 0;
  let lossErr = 0;
  let lossMag = 0;
  for (let i = 0; i < rows; i++) {
    const r = i * cols;
    let mx = -Infinity;
    let M = 0;
    for (let j = 0; j < cols; j++) {
      mx = Math.max(mx, L.v[r + j]!);
      M = Math.max(M, Math.abs(L.v[r + j]!));
    }
    let s = 0;
    for (let j = 0; j < cols; j++) s += Math.exp(L.v[r + j]! - mx);
    const lse = mx + Math.log(s);
    const p = Array.from({ length: cols }, (_, j) => Math.exp(L.v[r + j]! - lse));
    // Σ_k p_k e_k: the shift of the normaliser caused by the logits' own errors.
    let eAvg = 0;
    // Σ_k p_k (argument rounding of exp): l_k - max (and lse) rounded in float32.
    let argAvg = 0;
    for (let j = 0; j < cols; j++) {
      eAvg += p[j]! * L.e[r + j]!;
      argAvg += p[j]! * 4 * U * (Math.abs(L.v[r + j]!) + 2 * M);
    }
    const y = labels[i]!;
    for (let j = 0; j < cols; j++) {
      const pj = p[j]!;
      const arg = 4 * U * (Math.abs(L.v[r + j]!) + 2 * M);
      const ep = pj * (L.e[r + j]! + eAvg + arg + argAvg + (cols + ACT_ULPS) * U) + FLT_MIN;
      probs.v[r + j] = pj;
      probs.e[r + j] = ep;
      const target = j === y ? 1 : 0;
      const d = (pj - target) / rows;
      dlogits.v[r + j] = d;
      dlogits.e[r + j] = (ep + U * Math.abs(pj - target)) / rows + 2 * U * Math.abs(d);
    }
    const li = lse - L.v[r + y]!;
    lossSum += li;
    lossMag += Math.abs(li);
    lossErr +=
      L.e[r + y]! + eAvg + argAvg + 4 * U * (Math.abs(L.v[r + y]!) + M + Math.abs(lse)) + (cols + ACT_ULPS) * U;
  }
  return {
    probs,
    dlogits,
    loss: { v: lossSum / rows, e: lossErr / rows + (gamma(rows + 1) * lossMag) / rows },
  };
}

/** Σ x² over all elements. */
export function sumSquares(X: BMat): BScalar {
  let s = 0;
  let e = 0;
  for (let i = 0; i < X.v.length; i++) {
    const x = X.v[i]!;
    s += x * x;
    e += 2 * Math.abs(x) * X.e[i]!;
  }
  return { v: s, e: e + gamma(X.v.length + 1) * s };
}

// ---------------------------------------------------------------------------------------------
// The fixtures' network: 3 dense layers, the same activation on both hidden layers.

export interface BParams {
  /** W[l] in the fixtures' layout [in, out]. */
  W: BMat[];
  /** b[l] as 1 x out rows. */
  b: BMat[];
  /** prelu slopes of the two hidden layers (null for other activations). */
  slope: (BScalar | null)[];
}

export type ActSpec = { name: 'relu' | 'sigmoid' | 'tanh' | 'linear' | 'prelu' } | { name: 'leaky_relu'; alpha: number };

export function hiddenAct(spec: ActSpec, params: BParams, layer: number): BAct {
  switch (spec.name) {
    case 'leaky_relu':
      return { kind: 'leaky_relu', alpha: spec.alpha };
    case 'prelu': {
      const slope = params.slope[layer];
      if (!slope) throw new Error(`prelu slope ${layer + 1} missing`);
      return { kind: 'prelu', slope };
    }
    default:
      return { kind: spec.name };
  }
}

export interface MlpResult {
  z: BMat[]; // z1, z2 (hidden pre-activations after bias) and logits
  h: BMat[]; // h1, h2
  probs: BMat;
  dlogits: BMat;
  dataLoss: BScalar;
  sumSq: BScalar;
  loss: BScalar;
  gW: BMat[];
  gb: BMat[];
  gSlope: (BScalar | null)[];
}

/**
 * Forward and backward through the kernel sequence the harness runs (gemm, biasActivation,
 * softmaxCrossEntropy, gemm/biasGrad/activationBackward), with bounds. With `l2InGrad` the
 * weight gradients include lambda*W, folded into the dW gemm as beta = lambda with C0 = W.
 */
export function mlp(
  params: BParams,
  x: BMat,
  labels: ArrayLike<number>,
  act: ActSpec,
  lambda: number,
  l2InGrad: boolean,
  options: BackwardOptions = {},
): MlpResult {
  const z: BMat[] = [];
  const h: BMat[] = [];
  let A = x;
  for (let l = 0; l < 3; l++) {
    const Z = addBias(matmul(A, false, params.W[l]!, false), params.b[l]!);
    z.push(Z);
    if (l < 2) {
      A = activate(Z, hiddenAct(act, params, l));
      h.push(A);
    }
  }
  const { probs, dlogits, loss: dataLoss } = softmaxCrossEntropy(z[2]!, labels);
  let ssv = 0;
  let sse = 0;
  for (const W of params.W) {
    const s = sumSquares(W);
    ssv += s.v;
    sse += s.e;
  }
  const sumSq = { v: ssv, e: sse + 2 * U * ssv };
  const l2 = 0.5 * lambda * ssv;
  const loss = { v: dataLoss.v + l2, e: dataLoss.e + 0.5 * lambda * sumSq.e + U * (Math.abs(dataLoss.v) + l2) };

  const gW: BMat[] = [];
  const gb: BMat[] = [];
  const gSlope: (BScalar | null)[] = [null, null];
  let dZ = dlogits;
  for (let l = 2; l >= 0; l--) {
    const input = l === 0 ? x : h[l - 1]!;
    gW[l] = l2InGrad ? matmul(input, true, dZ, false, 1, lambda, params.W[l]!) : matmul(input, true, dZ, false);
    gb[l] = colSum(dZ);
    if (l > 0) {
      const dH = matmul(dZ, false, params.W[l]!, true);
      const back = activationBackward(z[l - 1]!, h[l - 1]!, dH, hiddenAct(act, params, l - 1), options);
      dZ = back.dZ;
      gSlope[l - 1] = back.slopeGrad;
    }
  }
  return { z, h, probs, dlogits, dataLoss, sumSq, loss, gW, gb, gSlope };
}

// ---------------------------------------------------------------------------------------------
// Optimizer updates with bounds, element-wise over a parameter tensor.

function gradWithL2(p: BMat, g: BMat, l2: number): BMat {
  const out = BMat.zeros(p.rows, p.cols);
  for (let i = 0; i < p.v.length; i++) {
    const lp = l2 * p.v[i]!;
    out.v[i] = g.v[i]! + lp;
    out.e[i] = l2 === 0 ? g.e[i]! : g.e[i]! + Math.abs(l2) * p.e[i]! + 3 * U * (Math.abs(g.v[i]!) + Math.abs(lp));
  }
  return out;
}

export function sgdStep(
  p: BMat,
  g: BMat,
  vel: BMat | null,
  lr: number,
  mu: number,
  nesterov: boolean,
  l2: number,
): { p: BMat; vel: BMat | null } {
  const gi = gradWithL2(p, g, l2);
  const np = BMat.zeros(p.rows, p.cols);
  const nv = mu !== 0 ? BMat.zeros(p.rows, p.cols) : null;
  for (let i = 0; i < p.v.length; i++) {
    let step = gi.v[i]!;
    let estep = gi.e[i]!;
    if (nv) {
      const v0 = vel ? vel.v[i]! : 0;
      const ev0 = vel ? vel.e[i]! : 0;
      const v1 = mu * v0 + gi.v[i]!;
      const ev1 = Math.abs(mu) * ev0 + gi.e[i]! + 3 * U * (Math.abs(mu * v0) + Math.abs(gi.v[i]!));
      nv.v[i] = v1;
      nv.e[i] = ev1;
      if (nesterov) {
        step = gi.v[i]! + mu * v1;
        estep = gi.e[i]! + Math.abs(mu) * ev1 + 3 * U * (Math.abs(gi.v[i]!) + Math.abs(mu * v1));
      } else {
        step = v1;
        estep = ev1;
      }
    }
    const upd = lr * step;
    np.v[i] = p.v[i]! - upd;
    np.e[i] = p.e[i]! + Math.abs(lr) * estep + 3 * U * Math.abs(upd) + U * (Math.abs(p.v[i]!) + Math.abs(upd));
  }
  return { p: np, vel: nv };
}

export function adamStep(
  p: BMat,
  g: BMat,
  m: BMat,
  v: BMat,
  lr: number,
  b1: number,
  b2: number,
  eps: number,
  l2: number,
  t: number,
): { p: BMat; m: BMat; v: BMat } {
  const gi = gradWithL2(p, g, l2);
  const np = BMat.zeros(p.rows, p.cols);
  const nm = BMat.zeros(p.rows, p.cols);
  const nv = BMat.zeros(p.rows, p.cols);
  const stepSize = lr / (1 - b1 ** t);
  const c2 = Math.sqrt(1 - b2 ** t);
  // Largest possible |update| (Cauchy-Schwarz on m_t = (1-b1) Σ b1^(t-i) g_i against
  // v_t = (1-b2) Σ b2^(t-i) g_i²):  |m_t|/sqrt(v_t) <= (1-b1)/sqrt(1-b2) * sqrt(Σ_{j<t} (b1²/b2)^j).
  let geo = 0;
  const ratio = b2 > 0 ? (b1 * b1) / b2 : b1 === 0 ? 0 : Infinity;
  for (let j = 0; j < t; j++) geo += j === 0 ? 1 : ratio ** j;
  const maxUpd = Math.abs(stepSize) * c2 * ((1 - b1) / Math.sqrt(1 - b2)) * Math.sqrt(geo);
  for (let i = 0; i < p.v.length; i++) {
    const gv = gi.v[i]!;
    const eg = gi.e[i]!;
    const m1 = b1 * m.v[i]! + (1 - b1) * gv;
    const em1 = b1 * m.e[i]! + (1 - b1) * eg + 8 * U * (b1 * Math.abs(m.v[i]!) + (1 - b1) * Math.abs(gv));
    const v1 = b2 * v.v[i]! + (1 - b2) * gv * gv;
    const ev1 = b2 * v.e[i]! + (1 - b2) * 2 * Math.abs(gv) * eg + 8 * U * (b2 * Math.abs(v.v[i]!) + (1 - b2) * gv * gv);
    const sq = Math.sqrt(v1);
    const esq = v1 > 0 ? Math.min(Math.sqrt(ev1), ev1 / sq) : Math.sqrt(ev1);
    const D = sq / c2 + eps;
    const eD = esq / c2 + 4 * U * (sq / c2 + Math.abs(eps));
    const Dlow = D - eD;
    const upd = (stepSize * m1) / D;
    const firstOrder =
      Dlow > 0 ? Math.abs(stepSize) * (em1 / Dlow + (Math.abs(m1) * eD) / (D * Dlow)) + 4 * U * Math.abs(upd) : Infinity;
    // Where the gradient's sign is uncertain (|g| not above its error), Adam's normalisation makes
    // the computed update anything up to its maximum: both it and the exact one obey |upd| <= maxUpd.
    const eupd = Math.min(firstOrder, Math.abs(upd) + maxUpd * (1 + 16 * U));
    nm.v[i] = m1;
    nm.e[i] = em1;
    nv.v[i] = v1;
    nv.e[i] = ev1;
    np.v[i] = p.v[i]! - upd;
    np.e[i] = p.e[i]! + eupd + U * (Math.abs(p.v[i]!) + Math.abs(upd));
  }
  return { p: np, m: nm, v: nv };
}
