/**
 * bfloat16 rounding as every backend performs it on GEMM operands in bf16 mixed precision
 * (PyTorch autocast's recipe: operands rounded to bfloat16, products summed in float32).
 *
 * bfloat16 is the top half of a float32: sign, the same 8-bit exponent, 7 stored mantissa bits
 * (8 significant bits). A float32 is rounded to the nearest bfloat16, ties to even, by integer
 * arithmetic on its bits (the same in the reference, the wasm packing and the native packing):
 *   bits + 0x7fff + ((bits >> 16) & 1), then the low 16 bits cleared.
 * Consequences: relative error at most 2^-8 (half an ulp of an 8-bit significand); values past
 * the largest bfloat16 (3.3895e38) round to infinity; infinities and zeros (with their sign)
 * are kept; subnormals are rounded like everything else (not flushed); a NaN stays a NaN (made
 * quiet: bit 22 set, so the cleared low bits can never turn it into an infinity).
 */

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** The bfloat16 nearest to Math.fround(x) (ties to even), as a number. */
export function roundBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0]!;
  if (x !== x) {
    u32[0] = (bits | 0x00400000) & 0xffff0000;
  } else {
    u32[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000) >>> 0;
  }
  return f32[0]!;
}

/** The first n values of src, rounded to bfloat16, in a new Float32Array. */
export function roundedBf16Copy(src: Float32Array, n: number): Float32Array {
  const out = new Float32Array(n);
  const bits = new Uint32Array(out.buffer);
  out.set(src.subarray(0, n));
  for (let i = 0; i < n; i++) {
    const b = bits[i]!;
    const v = out[i]!;
    bits[i] = v !== v ? (b | 0x00400000) & 0xffff0000 : (b + 0x7fff + ((b >>> 16) & 1)) & 0xffff0000;
  }
  return out;
}
