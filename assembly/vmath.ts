// Vector math on f64x2 for the activations. The reference computes sigmoid and tanh in float64
// and rounds once to float32; doing the same here (in two f64 lanes) keeps the results equal to
// the reference's except when a value lies within ~1e-14 (relative) of a float32 rounding
// boundary.

// @ts-ignore: decorator
@inline const LOG2E: f64 = 1.4426950408889634;
// ln 2 split so that n * LN2_HI is exact for |n| < 2^20 (fdlibm's constants).
// @ts-ignore: decorator
@inline const LN2_HI: f64 = 6.93147180369123816490e-1;
// @ts-ignore: decorator
@inline const LN2_LO: f64 = 1.90821492927058770002e-10;

// 1.5 * 2^52: adding it rounds a double of magnitude < 2^51 to an integer held in the low
// mantissa bits.
// @ts-ignore: decorator
@inline const ROUND_MAGIC: f64 = 6755399441055744.0;

/**
 * e^x per lane, relative error below 1e-14 for x in [-708, 709]; x is clamped to that range
 * (so the result is finite and positive), NaN stays NaN.
 */
// @ts-ignore: decorator
@inline export function expf64x2(x: v128): v128 {
  // pmin/pmax (one instruction each) keep NaN: the comparison is false and x is returned.
  x = f64x2.pmax(f64x2.pmin(x, f64x2.splat(709.0)), f64x2.splat(-708.0));
  const t = f64x2.add(f64x2.mul(x, f64x2.splat(LOG2E)), f64x2.splat(ROUND_MAGIC));
  const n = f64x2.sub(t, f64x2.splat(ROUND_MAGIC));
  const r = f64x2.sub(f64x2.sub(x, f64x2.mul(n, f64x2.splat(LN2_HI))), f64x2.mul(n, f64x2.splat(LN2_LO)));
  // |r| <= 0.347: Taylor series to degree 11 (truncation error < 1e-14 relative), evaluated
  // with Estrin's scheme (short dependency chains).
  const r2 = f64x2.mul(r, r);
  const r4 = f64x2.mul(r2, r2);
  const r8 = f64x2.mul(r4, r4);
  const p01 = f64x2.add(f64x2.splat(1.0), r);
  const p23 = f64x2.add(f64x2.splat(0.5), f64x2.mul(r, f64x2.splat(1.66666666666666666667e-1)));
  const p45 = f64x2.add(f64x2.splat(4.16666666666666666667e-2), f64x2.mul(r, f64x2.splat(8.33333333333333333333e-3)));
  const p67 = f64x2.add(f64x2.splat(1.38888888888888888889e-3), f64x2.mul(r, f64x2.splat(1.98412698412698412698e-4)));
  const p89 = f64x2.add(f64x2.splat(2.48015873015873015873e-5), f64x2.mul(r, f64x2.splat(2.75573192239858906526e-6)));
  const pab = f64x2.add(f64x2.splat(2.75573192239858906526e-7), f64x2.mul(r, f64x2.splat(2.50521083854417187751e-8)));
  const q0 = f64x2.add(p01, f64x2.mul(p23, r2));
  const q1 = f64x2.add(p45, f64x2.mul(p67, r2));
  const q2 = f64x2.add(p89, f64x2.mul(pab, r2));
  const p = f64x2.add(f64x2.add(q0, f64x2.mul(q1, r4)), f64x2.mul(q2, r8));
  // 2^n from its bits: the low bits of t hold n (in [-1021, 1023] after the clamp); shifting
  // n + 1023 into the exponent field drops t's upper bits.
  const scale = i64x2.shl(i64x2.add(t, i64x2.splat(1023)), 52);
  return f64x2.mul(p, scale);
}

/** 1 / (1 + e^-z), as the reference writes it. */
// @ts-ignore: decorator
@inline export function sigmoidf64x2(z: v128): v128 {
  const one = f64x2.splat(1.0);
  return f64x2.div(one, f64x2.add(one, expf64x2(f64x2.neg(z))));
}

/** tanh(z): (1 - e^-2|z|) / (1 + e^-2|z|) with z's sign; a short series for |z| < 1e-4. */
// @ts-ignore: decorator
@inline export function tanhf64x2(z: v128): v128 {
  const one = f64x2.splat(1.0);
  const az = f64x2.abs(z);
  const e = expf64x2(f64x2.mul(az, f64x2.splat(-2.0)));
  const big = f64x2.div(f64x2.sub(one, e), f64x2.add(one, e));
  // Copy the sign of z (tanh is odd; keeps -0).
  const signMask = f64x2.splat(-0.0);
  const signed = v128.or(big, v128.and(z, signMask));
  // z - z^3/3 + 2 z^5 / 15, exact to f64 rounding for |z| < 1e-4.
  const z2 = f64x2.mul(z, z);
  const series = f64x2.add(
    z,
    f64x2.mul(f64x2.mul(z, z2), f64x2.add(f64x2.splat(-1.0 / 3.0), f64x2.mul(z2, f64x2.splat(2.0 / 15.0)))),
  );
  const small = f64x2.lt(az, f64x2.splat(1e-4));
  // NaN lanes: small is false, big is NaN.
  return v128.bitselect(series, signed, small);
}

/** The low two float32 lanes of v as f64x2. */
// @ts-ignore: decorator
@inline export function lo64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}

/** The high two float32 lanes of v as f64x2. */
// @ts-ignore: decorator
@inline export function hi64(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 2, 3));
}

/** Rounds two f64x2 to float32 and packs them as [lo0, lo1, hi0, hi1]. */
// @ts-ignore: decorator
@inline export function pack32(lo: v128, hi: v128): v128 {
  return v128.shuffle<f32>(f32x4.demote_f64x2_zero(lo), f32x4.demote_f64x2_zero(hi), 0, 1, 4, 5);
}
