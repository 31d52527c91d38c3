// Elementwise and reduction kernels: bias + activation, activation backward, bias gradient,
// softmax (+ cross-entropy), SGD, Adam, sum of squares.
//
// The reference backend computes in float64 and rounds once when it stores. Where that is cheap
// these kernels do the same (two f64 lanes at a time), so their results match the reference's
// to the last bit or nearly: relu/linear/prelu are exact in float32 anyway, leaky_relu,
// sigmoid, tanh, the backward pass and the optimizers run in float64.
import { hi64, lo64, pack32, sigmoidf64x2, tanhf64x2 } from './vmath';

// Activation codes (the `kind` argument). Must match src/kernels/activation-codes.ts and
// native/src/kernel_api.h's ActKind: test/kernels.activation-codes.test.ts checks the three.
export const ACT_RELU: i32 = 0;
export const ACT_LEAKY_RELU: i32 = 1;
export const ACT_PRELU: i32 = 2;
export const ACT_SIGMOID: i32 = 3;
export const ACT_TANH: i32 = 4;
export const ACT_LINEAR: i32 = 5;

/** f64 accumulators for biasGrad, one column block at a time. */
// @ts-ignore: decorator
@inline const COL_BLOCK: i32 = 512;
const colAcc: usize = memory.data(COL_BLOCK * 8, 16);

/** Applies the activation to 4 float32 values. */
// @ts-ignore: decorator
@inline function act4(kind: i32, z: v128, alpha: f64, slope: f32): v128 {
  const zero = f32x4.splat(0);
  if (kind == ACT_RELU) {
    return v128.and(z, f32x4.gt(z, zero));
  } else if (kind == ACT_LEAKY_RELU) {
    const a = f64x2.splat(alpha);
    const neg = pack32(f64x2.mul(a, lo64(z)), f64x2.mul(a, hi64(z)));
    return v128.bitselect(z, neg, f32x4.gt(z, zero));
  } else if (kind == ACT_PRELU) {
    // slope * z rounded once: the same in float32 as in float64.
    return v128.bitselect(z, f32x4.mul(f32x4.splat(slope), z), f32x4.gt(z, zero));
  } else if (kind == ACT_SIGMOID) {
    return pack32(sigmoidf64x2(lo64(z)), sigmoidf64x2(hi64(z)));
  } else if (kind == ACT_TANH) {
    return pack32(tanhf64x2(lo64(z)), tanhf64x2(hi64(z)));
  }
  return z;
}

/** The activation of one float32 value (tails). */
// @ts-ignore: decorator
@inline function act1(kind: i32, z: f32, alpha: f64, slope: f32): f32 {
  return f32x4.extract_lane(act4(kind, f32x4.splat(z), alpha, slope), 0);
}

/**
 * z[i,j] += bias[j] (bias != 0), h = act(z). h may be z. kind: ACT_*; alpha: the leaky_relu
 * slope; slopePtr: the prelu slope tensor.
 */
export function biasActivation(rows: i32, cols: i32, z: usize, bias: usize, kind: i32, alpha: f64, slopePtr: usize, h: usize): void {
  const slope: f32 = kind == ACT_PRELU ? load<f32>(slopePtr) : 0;
  // One loop per activation (kind is a constant in each inlined copy, so its branches fold).
  if (kind == ACT_RELU) biasActLoop(ACT_RELU, rows, cols, z, bias, alpha, slope, h);
  else if (kind == ACT_LEAKY_RELU) biasActLoop(ACT_LEAKY_RELU, rows, cols, z, bias, alpha, slope, h);
  else if (kind == ACT_PRELU) biasActLoop(ACT_PRELU, rows, cols, z, bias, alpha, slope, h);
  else if (kind == ACT_SIGMOID) biasActLoop(ACT_SIGMOID, rows, cols, z, bias, alpha, slope, h);
  else if (kind == ACT_TANH) biasActLoop(ACT_TANH, rows, cols, z, bias, alpha, slope, h);
  else biasActLoop(ACT_LINEAR, rows, cols, z, bias, alpha, slope, h);
}

// @ts-ignore: decorator
@inline function biasActLoop(kind: i32, rows: i32, cols: i32, z: usize, bias: usize, alpha: f64, slope: f32, h: usize): void {
  if (bias == 0) {
    const n = <usize>rows * <usize>cols;
    if (kind == ACT_LINEAR) {
      if (h != z) memory.copy(h, z, n << 2);
      return;
    }
    let i: usize = 0;
    for (; i + 4 <= n; i += 4) {
      const off = i << 2;
      v128.store(h + off, act4(kind, v128.load(z + off), alpha, slope));
    }
    for (; i < n; i++) {
      const off = i << 2;
      store<f32>(h + off, act1(kind, load<f32>(z + off), alpha, slope));
    }
    return;
  }
  const rowBytes = <usize>cols << 2;
  for (let r = 0; r < rows; r++) {
    const zr = z + <usize>r * rowBytes;
    const hr = h + <usize>r * rowBytes;
    let j = 0;
    for (; j + 4 <= cols; j += 4) {
      const off = <usize>j << 2;
      const v = f32x4.add(v128.load(zr + off), v128.load(bias + off));
      v128.store(zr + off, v);
      v128.store(hr + off, act4(kind, v, alpha, slope));
    }
    for (; j < cols; j++) {
      const off = <usize>j << 2;
      const v = load<f32>(zr + off) + load<f32>(bias + off);
      store<f32>(zr + off, v);
      store<f32>(hr + off, act1(kind, v, alpha, slope));
    }
  }
}

/** dz = dh * act'(z) for two lanes (f64x2), the reference's formula. */
// @ts-ignore: decorator
@inline function deriv2(kind: i32, z: v128, h: v128, g: v128, alpha: f64, slope: f64): v128 {
  const one = f64x2.splat(1.0);
  if (kind == ACT_RELU) {
    return f64x2.mul(g, v128.and(one, f64x2.gt(z, f64x2.splat(0))));
  } else if (kind == ACT_LEAKY_RELU || kind == ACT_PRELU) {
    const s = f64x2.splat(kind == ACT_PRELU ? slope : alpha);
    return f64x2.mul(g, v128.bitselect(one, s, f64x2.gt(z, f64x2.splat(0))));
  } else if (kind == ACT_SIGMOID) {
    return f64x2.mul(g, f64x2.mul(h, f64x2.sub(one, h)));
  } else if (kind == ACT_TANH) {
    return f64x2.mul(g, f64x2.sub(one, f64x2.mul(h, h)));
  }
  return f64x2.mul(g, one);
}

/**
 * dz = dh * act'(z) (PyTorch's convention at z = 0). For prelu, returns sum over z <= 0 of
 * dh * z (the slope gradient, float64); otherwise 0. dz may be dh.
 */
export function activationBackward(rows: i32, cols: i32, kind: i32, alpha: f64, slopePtr: usize, z: usize, h: usize, dh: usize, dz: usize): f64 {
  const n = <usize>rows * <usize>cols;
  const slope: f64 = kind == ACT_PRELU ? <f64>load<f32>(slopePtr) : 0;
  if (kind == ACT_RELU) return backwardLoop(ACT_RELU, n, alpha, slope, z, h, dh, dz);
  if (kind == ACT_LEAKY_RELU) return backwardLoop(ACT_LEAKY_RELU, n, alpha, slope, z, h, dh, dz);
  if (kind == ACT_PRELU) return backwardLoop(ACT_PRELU, n, alpha, slope, z, h, dh, dz);
  if (kind == ACT_SIGMOID) return backwardLoop(ACT_SIGMOID, n, alpha, slope, z, h, dh, dz);
  if (kind == ACT_TANH) return backwardLoop(ACT_TANH, n, alpha, slope, z, h, dh, dz);
  return backwardLoop(ACT_LINEAR, n, alpha, slope, z, h, dh, dz);
}

// @ts-ignore: decorator
@inline function backwardLoop(kind: i32, n: usize, alpha: f64, slope: f64, z: usize, h: usize, dh: usize, dz: usize): f64 {
  let acc = f64x2.splat(0);
  const zero = f64x2.splat(0);
  let i: usize = 0;
  for (; i + 4 <= n; i += 4) {
    const off = i << 2;
    const zv = v128.load(z + off);
    const hv = v128.load(h + off);
    const gv = v128.load(dh + off);
    const zl = lo64(zv);
    const zh = hi64(zv);
    const gl = lo64(gv);
    const gh = hi64(gv);
    if (kind == ACT_PRELU) {
      acc = f64x2.add(acc, v128.and(f64x2.mul(gl, zl), f64x2.le(zl, zero)));
      acc = f64x2.add(acc, v128.and(f64x2.mul(gh, zh), f64x2.le(zh, zero)));
    }
    v128.store(dz + off, pack32(deriv2(kind, zl, lo64(hv), gl, alpha, slope), deriv2(kind, zh, hi64(hv), gh, alpha, slope)));
  }
  let tail: f64 = 0;
  for (; i < n; i++) {
    const off = i << 2;
    const zs = <f64>load<f32>(z + off);
    const gs = <f64>load<f32>(dh + off);
    if (kind == ACT_PRELU && zs <= 0) tail += gs * zs;
    const d = deriv2(kind, f64x2.splat(zs), f64x2.splat(<f64>load<f32>(h + off)), f64x2.splat(gs), alpha, slope);
    store<f32>(dz + off, <f32>f64x2.extract_lane(d, 0));
  }
  return f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1) + tail;
}

/** db[j] = sum_i dz[i, j], summed in float64 in row order (as the reference does). */
export function biasGrad(rows: i32, cols: i32, dz: usize, db: usize): void {
  const rowBytes = <usize>cols << 2;
  for (let j0 = 0; j0 < cols; j0 += COL_BLOCK) {
    const w = min(COL_BLOCK, cols - j0);
    memory.fill(colAcc, 0, <usize>w << 3);
    const base = dz + (<usize>j0 << 2);
    for (let r = 0; r < rows; r++) {
      const row = base + <usize>r * rowBytes;
      let j = 0;
      for (; j + 4 <= w; j += 4) {
        const v = v128.load(row + (<usize>j << 2));
        const acc = colAcc + (<usize>j << 3);
        v128.store(acc, f64x2.add(v128.load(acc), lo64(v)));
        v128.store(acc, f64x2.add(v128.load(acc, 16), hi64(v)), 16);
      }
      for (; j < w; j++) {
        const acc = colAcc + (<usize>j << 3);
        store<f64>(acc, load<f64>(acc) + <f64>load<f32>(row + (<usize>j << 2)));
      }
    }
    for (let j = 0; j < w; j++) {
      store<f32>(db + (<usize>(j0 + j) << 2), <f32>load<f64>(colAcc + (<usize>j << 3)));
    }
  }
}

/** max + log(sum exp(x - max)) of one row, in float64. */
function logSumExp(row: usize, cols: i32): f64 {
  let max: f64 = -Infinity;
  for (let j = 0; j < cols; j++) {
    const v = <f64>load<f32>(row + (<usize>j << 2));
    // NaN propagates like Math.max.
    max = v != v || max != max ? NaN : Math.max(max, v);
  }
  let sum: f64 = 0;
  for (let j = 0; j < cols; j++) sum += Math.exp(<f64>load<f32>(row + (<usize>j << 2)) - max);
  return max + Math.log(sum);
}

/**
 * probs = softmax(logits); dlogits = (probs - onehot(labels)) / rows (when dlogits != 0; it
 * may be logits). Returns the mean cross-entropy (float64).
 */
export function softmaxCrossEntropy(rows: i32, cols: i32, logits: usize, labels: usize, probs: usize, dlogits: usize): f64 {
  let total: f64 = 0;
  const rowBytes = <usize>cols << 2;
  const inv = <f64>rows;
  for (let i = 0; i < rows; i++) {
    const l = logits + <usize>i * rowBytes;
    const p = probs + <usize>i * rowBytes;
    const d = dlogits + <usize>i * rowBytes;
    const lse = logSumExp(l, cols);
    const y = <i32>load<f32>(labels + (<usize>i << 2));
    total += lse - <f64>load<f32>(l + (<usize>y << 2));
    for (let j = 0; j < cols; j++) {
      const off = <usize>j << 2;
      const pj = Math.exp(<f64>load<f32>(l + off) - lse);
      store<f32>(p + off, <f32>pj);
      if (dlogits != 0) store<f32>(d + off, <f32>((pj - (j == y ? 1.0 : 0.0)) / inv));
    }
  }
  return total / inv;
}

/** probs = softmax(logits), row by row. probs may be logits. */
export function softmax(rows: i32, cols: i32, logits: usize, probs: usize): void {
  const rowBytes = <usize>cols << 2;
  for (let i = 0; i < rows; i++) {
    const l = logits + <usize>i * rowBytes;
    const p = probs + <usize>i * rowBytes;
    const lse = logSumExp(l, cols);
    for (let j = 0; j < cols; j++) {
      const off = <usize>j << 2;
      store<f32>(p + off, <f32>Math.exp(<f64>load<f32>(l + off) - lse));
    }
  }
}

/**
 * SGD with momentum (PyTorch) and L2, float64 arithmetic on float32 storage:
 * g = grad + l2 * param; v = momentum * v + g; param -= lr * (nesterov ? g + momentum * v : v).
 * velocity = 0 or momentum = 0: param -= lr * g.
 */
export function sgdStep(n: i32, param: usize, grad: usize, velocity: usize, lr: f64, momentum: f64, nesterov: bool, l2: f64): void {
  const vl2 = f64x2.splat(l2);
  const vlr = f64x2.splat(lr);
  const vmom = f64x2.splat(momentum);
  const useV = momentum != 0 && velocity != 0;
  const count = <usize>n;
  let i: usize = 0;
  for (; i + 4 <= count; i += 4) {
    const off = i << 2;
    const p = v128.load(param + off);
    const g = v128.load(grad + off);
    const pl = lo64(p);
    const ph = hi64(p);
    const gl = f64x2.add(lo64(g), f64x2.mul(vl2, pl));
    const gh = f64x2.add(hi64(g), f64x2.mul(vl2, ph));
    let sl = gl;
    let sh = gh;
    if (useV) {
      const v = v128.load(velocity + off);
      const v32 = pack32(f64x2.add(f64x2.mul(vmom, lo64(v)), gl), f64x2.add(f64x2.mul(vmom, hi64(v)), gh));
      v128.store(velocity + off, v32);
      sl = lo64(v32);
      sh = hi64(v32);
      if (nesterov) {
        sl = f64x2.add(gl, f64x2.mul(vmom, sl));
        sh = f64x2.add(gh, f64x2.mul(vmom, sh));
      }
    }
    v128.store(param + off, pack32(f64x2.sub(pl, f64x2.mul(vlr, sl)), f64x2.sub(ph, f64x2.mul(vlr, sh))));
  }
  for (; i < count; i++) {
    const off = i << 2;
    const p = <f64>load<f32>(param + off);
    const g = <f64>load<f32>(grad + off) + l2 * p;
    let s = g;
    if (useV) {
      const v = <f32>(momentum * <f64>load<f32>(velocity + off) + g);
      store<f32>(velocity + off, v);
      s = nesterov ? g + momentum * <f64>v : <f64>v;
    }
    store<f32>(param + off, <f32>(p - lr * s));
  }
}

/**
 * Adam (PyTorch, amsgrad off) with L2. m and v are computed in float64 and rounded once (as the
 * reference does); the parameter update in float32 (vector part) or float64 (tail):
 * g = grad + l2 * param; m = b1 m + (1 - b1) g; v = b2 v + (1 - b2) g g;
 * param -= stepSize * m / (sqrt(v) / sqrtBias2 + eps), where the caller computes
 * stepSize = lr / (1 - b1^t) and sqrtBias2 = sqrt(1 - b2^t) as the reference does.
 */
export function adamStep(n: i32, param: usize, grad: usize, m: usize, v: usize, stepSize: f64, beta1: f64, beta2: f64, eps: f64, l2: f64, sqrtBias2: f64): void {
  const vl2 = f64x2.splat(l2);
  const vb1 = f64x2.splat(beta1);
  const vb2 = f64x2.splat(beta2);
  const c1 = f64x2.splat(1 - beta1);
  const c2 = f64x2.splat(1 - beta2);
  const fss = f32x4.splat(<f32>stepSize);
  const fsb = f32x4.splat(<f32>sqrtBias2);
  const feps = f32x4.splat(<f32>eps);
  const count = <usize>n;
  let i: usize = 0;
  for (; i + 4 <= count; i += 4) {
    const off = i << 2;
    const p = v128.load(param + off);
    const g = v128.load(grad + off);
    const mv = v128.load(m + off);
    const vv = v128.load(v + off);
    const pl = lo64(p);
    const ph = hi64(p);
    const gl = f64x2.add(lo64(g), f64x2.mul(vl2, pl));
    const gh = f64x2.add(hi64(g), f64x2.mul(vl2, ph));
    const m32 = pack32(f64x2.add(f64x2.mul(vb1, lo64(mv)), f64x2.mul(c1, gl)), f64x2.add(f64x2.mul(vb1, hi64(mv)), f64x2.mul(c1, gh)));
    const v32 = pack32(
      f64x2.add(f64x2.mul(vb2, lo64(vv)), f64x2.mul(f64x2.mul(c2, gl), gl)),
      f64x2.add(f64x2.mul(vb2, hi64(vv)), f64x2.mul(f64x2.mul(c2, gh), gh)),
    );
    v128.store(m + off, m32);
    v128.store(v + off, v32);
    // The update itself in float32 (4 lanes; sqrt and division are the expensive part): it is
    // within a few float32 ulps of the reference's, far below the ulp of param.
    const u = f32x4.div(f32x4.mul(fss, m32), f32x4.add(f32x4.div(f32x4.sqrt(v32), fsb), feps));
    v128.store(param + off, f32x4.sub(p, u));
  }
  for (; i < count; i++) {
    const off = i << 2;
    const p = <f64>load<f32>(param + off);
    const g = <f64>load<f32>(grad + off) + l2 * p;
    const mi = <f32>(beta1 * <f64>load<f32>(m + off) + (1 - beta1) * g);
    const vi = <f32>(beta2 * <f64>load<f32>(v + off) + (1 - beta2) * g * g);
    store<f32>(m + off, mi);
    store<f32>(v + off, vi);
    store<f32>(param + off, <f32>(p - (stepSize * <f64>mi) / (Math.sqrt(<f64>vi) / sqrtBias2 + eps)));
  }
}

/** sum x[i]^2 over the first n elements, accumulated in float64. */
export function sumSquares(n: i32, x: usize): f64 {
  let a0 = f64x2.splat(0);
  let a1 = f64x2.splat(0);
  let a2 = f64x2.splat(0);
  let a3 = f64x2.splat(0);
  const count = <usize>n;
  let i: usize = 0;
  for (; i + 8 <= count; i += 8) {
    const off = i << 2;
    const u = v128.load(x + off);
    const w = v128.load(x + off, 16);
    const ul = lo64(u);
    const uh = hi64(u);
    const wl = lo64(w);
    const wh = hi64(w);
    a0 = f64x2.add(a0, f64x2.mul(ul, ul));
    a1 = f64x2.add(a1, f64x2.mul(uh, uh));
    a2 = f64x2.add(a2, f64x2.mul(wl, wl));
    a3 = f64x2.add(a3, f64x2.mul(wh, wh));
  }
  const s = f64x2.add(f64x2.add(a0, a1), f64x2.add(a2, a3));
  let sum = f64x2.extract_lane(s, 0) + f64x2.extract_lane(s, 1);
  for (; i < count; i++) {
    const v = <f64>load<f32>(x + (i << 2));
    sum += v * v;
  }
  return sum;
}
