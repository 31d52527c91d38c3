/**
 * Floating-point error model shared by the kernel suites.
 *
 * Every backend computes in float32 with round-to-nearest, so each elementary operation
 * (+, -, *, /, sqrt, and a store of a wider value) has relative error at most the unit roundoff
 * U = 2^-24 ≈ 5.96e-8 (Higham, "Accuracy and Stability of Numerical Algorithms", §2.2).
 * A dot product (or any sum of k products) evaluated in ANY order, with or without FMA, satisfies
 *   |fl(Σ a_i b_i) - Σ a_i b_i| <= γ_k Σ |a_i b_i|,   γ_k = k U / (1 - k U)        (Higham §3.1)
 * which is the bound the tolerances below are built from: it holds for a serial loop, for
 * SIMD lanes with a horizontal reduction and for BLIS-style K blocking alike, so it does not
 * depend on how a backend is written, only on it being float32 arithmetic.
 */

/** float32 unit roundoff. */
export const U = 2 ** -24;
/** float64 unit roundoff: the fixtures themselves are this accurate (FORMAT.md: ~1e-15 relative). */
export const U64 = 2 ** -53;
/** Smallest normal float32. A backend may flush subnormals to zero (FTZ/DAZ), so any result below
 * this in magnitude may come out as 0: it is the absolute floor for quantities that can underflow. */
export const FLT_MIN = 2 ** -126;

/**
 * Accuracy allowed for float32 transcendental functions (exp, tanh, log) and the few operations
 * wrapped around them, in units of U. libm's expf/tanhf are within 1-2 ulp (1 ulp <= 2U); SIMD
 * polynomial approximations in hand-written kernels are typically within 2-3 ulp. 8U (4 ulp)
 * covers both with margin. A backend worse than that fails the suite and has to argue for more.
 */
export const ACT_ULPS = 8;

/** γ_k = kU/(1-kU): the bound factor of a float32 sum of k terms (see above). */
export function gamma(k: number): number {
  return (k * U) / (1 - k * U);
}

export interface Violation {
  index: number;
  actual: number;
  expected: number;
  diff: number;
  tol: number;
}

/**
 * Element-wise check |actual - expected| <= tol (NaN never passes). Returns the violations,
 * worst (largest diff/tol) first. `expected` is a float64 truth; `tol` is a per-element bound.
 */
export function violations(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: ArrayLike<number> | number,
  count = expected.length,
): Violation[] {
  if (actual.length < count) throw new Error(`actual has ${actual.length} elements, expected at least ${count}`);
  const out: Violation[] = [];
  for (let i = 0; i < count; i++) {
    const a = actual[i]!;
    const e = expected[i]!;
    const t = typeof tol === 'number' ? tol : tol[i]!;
    const diff = Math.abs(a - e);
    if (!(diff <= t)) out.push({ index: i, actual: a, expected: e, diff, tol: t });
  }
  out.sort((x, y) => (Number.isNaN(y.diff) ? 1 : y.diff / (y.tol || 1e-300)) - (Number.isNaN(x.diff) ? 1 : x.diff / (x.tol || 1e-300)));
  return out;
}

/** Throws a readable error listing the worst violations (or returns if there are none). */
export function assertClose(
  what: string,
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  tol: ArrayLike<number> | number,
  count = expected.length,
): void {
  const v = violations(actual, expected, tol, count);
  if (v.length === 0) return;
  const lines = v
    .slice(0, 6)
    .map((x) => `  [${x.index}] got ${x.actual}, want ${x.expected}, |diff| ${x.diff.toExponential(3)} > tol ${x.tol.toExponential(3)}`);
  throw new Error(`${what}: ${v.length} of ${count} elements out of tolerance; worst:\n${lines.join('\n')}`);
}

/** True if every element is finite. */
export function allFinite(values: ArrayLike<number>, count = values.length): boolean {
  for (let i = 0; i < count; i++) if (!Number.isFinite(values[i]!)) return false;
  return true;
}
