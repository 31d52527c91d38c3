// SGEMM, BLIS style: C = alpha * op(A) * op(B) + beta * C, row-major, f32.
//
// Loop nest (jc, pc, ic, jr, ir): op(B) is packed per (jc, pc) block into micro-panels of
// KC x NR, op(A) per (ic, pc) block into micro-panels of MC x KC; the micro-kernel multiplies
// one A micro-panel by one B micro-panel into an MR x NR register tile. Transposes are absorbed
// by packing (they only change the strides the packers read with).
//
// The micro-kernel is 4 x 8 with plain SIMD128 (f32x4.mul + f32x4.add; no FMA in SIMD128; the
// relaxed-SIMD build fuses them, see madd):
// eight v128 accumulators. V8 schedules a basic block's loads ahead of its arithmetic, so the
// loads of a block must fit in registers next to the accumulators: 4 x 8 needs 8 accumulators +
// 2 B vectors + 4 broadcast A values + 1 temporary = 15, exactly the xmm registers V8 allocates
// (larger tiles such as 6 x 8 spill). The k loop is unrolled four times with an exit test after
// every step; the tests split the body into basic blocks so only one step's loads are live.
// A is packed plainly (MR floats per k step) and broadcast by v128.load32_splat (vbroadcastss
// from memory); packing A pre-broadcast (4 copies per element, plain v128.load) measured ~7%
// slower overall (4x the packing stores and A traffic).
//
// Blocking (measured on a Zen 3 with 32 KiB L1d / 512 KiB L2, best of many runs on a shared
// machine; KC 128..512, MC 32..128, NC 256..1024 and both macro-loop orders were within a few
// percent): KC = 512 keeps a B micro-panel (16 KiB) in L1 across the A panels of a block
// (MC x KC x 4 = 128 KiB in L2); k and n are cut into equal blocks (k = 784 is 2 x 392).
import { alloc } from './heap';

// @ts-ignore: decorator
@inline export const MR: i32 = 4;
// @ts-ignore: decorator
@inline export const NR: i32 = 8;
/** Depth of a packed block (k direction). */
// @ts-ignore: decorator
@inline export const KC: i32 = 512;
/** Rows of op(A) packed at a time (a multiple of MR). */
// @ts-ignore: decorator
@inline export const MC: i32 = 64;
/** Columns of op(B) packed at a time (a multiple of NR). */
// @ts-ignore: decorator
@inline export const NC: i32 = 512;

// Bytes per k step of a packed micro-panel.
// @ts-ignore: decorator
@inline const SA: usize = <usize>MR * 4;
// @ts-ignore: decorator
@inline const SB: usize = <usize>NR * 4;

let packA: usize = 0;
let packB: usize = 0;
let tile: usize = 0;

/** Allocates the packing scratch (once). Returns false when memory cannot grow. */
export function gemmInit(): bool {
  if (packA != 0) return true;
  const a = alloc(<usize>MC * <usize>KC * 4);
  if (a == 0) return false;
  const b = alloc(<usize>KC * <usize>NC * 4);
  if (b == 0) return false;
  const t = alloc(<usize>MR * <usize>NR * 4);
  if (t == 0) return false;
  packA = a;
  packB = b;
  tile = t;
  return true;
}

/**
 * Packs rows [0, mc) x depth [0, kc) of op(A) (element (i, p) at src + i*rs + p*cs) into plain
 * micro-panels: panel r holds, for each p, the MR floats A(r*MR + ii, p); rows past mc are zero.
 */
function packPanelsA(mc: i32, kc: i32, src: usize, rs: usize, cs: usize): void {
  let dst = packA;
  for (let i = 0; i < mc; i += MR) {
    const rows = min(MR, mc - i);
    const r0 = src + <usize>i * rs;
    if (rows == MR && rs == 4) {
      // op(A) = A^T: the MR rows of a k step are contiguous.
      let s = r0;
      for (let p = 0; p < kc; p++) {
        v128.store(dst, v128.load(s));
        dst += SA;
        s += cs;
      }
    } else if (rows == MR && cs == 4) {
      // Rows contiguous along k: transpose 4 x 4 blocks.
      const r1 = r0 + rs;
      const r2 = r1 + rs;
      const r3 = r2 + rs;
      let p = 0;
      let off: usize = 0;
      for (; p + 4 <= kc; p += 4) {
        transpose4(dst, r0 + off, r1 + off, r2 + off, r3 + off, SA);
        dst += SA * 4;
        off += 16;
      }
      for (; p < kc; p++) {
        store<f32>(dst, load<f32>(r0 + off), 0);
        store<f32>(dst, load<f32>(r1 + off), 4);
        store<f32>(dst, load<f32>(r2 + off), 8);
        store<f32>(dst, load<f32>(r3 + off), 12);
        dst += SA;
        off += 4;
      }
    } else {
      let off: usize = 0;
      for (let p = 0; p < kc; p++) {
        for (let ii = 0; ii < MR; ii++) {
          store<f32>(dst + (<usize>ii << 2), ii < rows ? load<f32>(r0 + <usize>ii * rs + off) : 0);
        }
        dst += SA;
        off += cs;
      }
    }
  }
}

/**
 * Packs depth [0, kc) x columns [0, nc) of op(B) (element (p, j) at src + p*rs + j*cs) into
 * micro-panels of kc x NR (row p of a panel: NR consecutive floats); columns past nc are zero.
 */
function packPanelsB(kc: i32, nc: i32, src: usize, rs: usize, cs: usize): void {
  let dst = packB;
  for (let j = 0; j < nc; j += NR) {
    const cols = min(NR, nc - j);
    const col0 = src + <usize>j * cs;
    if (cols == NR && cs == 4) {
      // op(B) rows are contiguous: copy 8 floats per k step.
      let s = col0;
      for (let p = 0; p < kc; p++) {
        v128.store(dst, v128.load(s), 0);
        v128.store(dst, v128.load(s, 16), 16);
        dst += SB;
        s += rs;
      }
    } else if (cols == NR && rs == 4) {
      // op(B) = B^T: each column of op(B) is a contiguous row of B. Transpose 4x4 blocks.
      const c0 = col0;
      const c1 = c0 + cs;
      const c2 = c1 + cs;
      const c3 = c2 + cs;
      const c4 = c3 + cs;
      const c5 = c4 + cs;
      const c6 = c5 + cs;
      const c7 = c6 + cs;
      let p = 0;
      let off: usize = 0;
      for (; p + 4 <= kc; p += 4) {
        transpose4(dst, c0 + off, c1 + off, c2 + off, c3 + off, SB);
        transpose4(dst + 16, c4 + off, c5 + off, c6 + off, c7 + off, SB);
        dst += SB * 4;
        off += 16;
      }
      for (; p < kc; p++) {
        store<f32>(dst, load<f32>(c0 + off), 0);
        store<f32>(dst, load<f32>(c1 + off), 4);
        store<f32>(dst, load<f32>(c2 + off), 8);
        store<f32>(dst, load<f32>(c3 + off), 12);
        store<f32>(dst, load<f32>(c4 + off), 16);
        store<f32>(dst, load<f32>(c5 + off), 20);
        store<f32>(dst, load<f32>(c6 + off), 24);
        store<f32>(dst, load<f32>(c7 + off), 28);
        dst += SB;
        off += 4;
      }
    } else {
      let s = col0;
      for (let p = 0; p < kc; p++) {
        for (let jj = 0; jj < NR; jj++) {
          store<f32>(dst + (<usize>jj << 2), jj < cols ? load<f32>(s + <usize>jj * cs) : 0);
        }
        dst += SB;
        s += rs;
      }
    }
  }
}

/**
 * Reads 4 consecutive floats from each of 4 rows and writes them as 4 columns: dst row q
 * (stride `stride` bytes) receives [r0[q], r1[q], r2[q], r3[q]].
 */
// @ts-ignore: decorator
@inline function transpose4(dst: usize, r0: usize, r1: usize, r2: usize, r3: usize, stride: usize): void {
  const x0 = v128.load(r0);
  const x1 = v128.load(r1);
  const x2 = v128.load(r2);
  const x3 = v128.load(r3);
  const t0 = v128.shuffle<f32>(x0, x1, 0, 4, 1, 5); // a0 b0 a1 b1
  const t1 = v128.shuffle<f32>(x2, x3, 0, 4, 1, 5); // c0 d0 c1 d1
  const t2 = v128.shuffle<f32>(x0, x1, 2, 6, 3, 7); // a2 b2 a3 b3
  const t3 = v128.shuffle<f32>(x2, x3, 2, 6, 3, 7); // c2 d2 c3 d3
  v128.store(dst, v128.shuffle<f32>(t0, t1, 0, 1, 4, 5));
  v128.store(dst + stride, v128.shuffle<f32>(t0, t1, 2, 3, 6, 7));
  v128.store(dst + stride * 2, v128.shuffle<f32>(t2, t3, 0, 1, 4, 5));
  v128.store(dst + stride * 3, v128.shuffle<f32>(t2, t3, 2, 3, 6, 7));
}

/**
 * acc + a * b. The relaxed-SIMD build (dist/wasm/densetrain-relaxed.wasm, picked at load when the
 * runtime validates it) uses f32x4.relaxed_madd, one fused multiply-add where the CPU has FMA;
 * the plain SIMD128 build multiplies, then adds. ASC_FEATURE_RELAXED_SIMD is a compile-time
 * constant, so each build has one of the two and no branch.
 */
// @ts-ignore: decorator
@inline function madd(acc: v128, a: v128, b: v128): v128 {
  if (ASC_FEATURE_RELAXED_SIMD) return f32x4.relaxed_madd(a, b, acc);
  return f32x4.add(acc, f32x4.mul(a, b));
}

/** tile = alpha * acc + beta * tile (beta = 0: the tile is not read). */
// @ts-ignore: decorator
@inline function storeTile(
  c: usize,
  ldc: usize,
  alpha: f32,
  beta: f32,
  c00: v128,
  c01: v128,
  c10: v128,
  c11: v128,
  c20: v128,
  c21: v128,
  c30: v128,
  c31: v128,
): void {
  const va = f32x4.splat(alpha);
  const c1 = c + ldc;
  const c2 = c1 + ldc;
  const c3 = c2 + ldc;
  if (beta == 0) {
    v128.store(c, f32x4.mul(va, c00), 0);
    v128.store(c, f32x4.mul(va, c01), 16);
    v128.store(c1, f32x4.mul(va, c10), 0);
    v128.store(c1, f32x4.mul(va, c11), 16);
    v128.store(c2, f32x4.mul(va, c20), 0);
    v128.store(c2, f32x4.mul(va, c21), 16);
    v128.store(c3, f32x4.mul(va, c30), 0);
    v128.store(c3, f32x4.mul(va, c31), 16);
  } else {
    const vb = f32x4.splat(beta);
    v128.store(c, f32x4.add(f32x4.mul(va, c00), f32x4.mul(vb, v128.load(c, 0))), 0);
    v128.store(c, f32x4.add(f32x4.mul(va, c01), f32x4.mul(vb, v128.load(c, 16))), 16);
    v128.store(c1, f32x4.add(f32x4.mul(va, c10), f32x4.mul(vb, v128.load(c1, 0))), 0);
    v128.store(c1, f32x4.add(f32x4.mul(va, c11), f32x4.mul(vb, v128.load(c1, 16))), 16);
    v128.store(c2, f32x4.add(f32x4.mul(va, c20), f32x4.mul(vb, v128.load(c2, 0))), 0);
    v128.store(c2, f32x4.add(f32x4.mul(va, c21), f32x4.mul(vb, v128.load(c2, 16))), 16);
    v128.store(c3, f32x4.add(f32x4.mul(va, c30), f32x4.mul(vb, v128.load(c3, 0))), 0);
    v128.store(c3, f32x4.add(f32x4.mul(va, c31), f32x4.mul(vb, v128.load(c3, 16))), 16);
  }
}

/**
 * The micro-kernel: the 4 x 8 tile at c (row stride ldc bytes) becomes
 * alpha * (A panel * B panel) + beta * tile; with beta = 0 the tile is not read. kc >= 1.
 * Long because the k loop is unrolled 4x by hand (eight accumulators, no spills).
 */
function kernel4x8(kc: i32, a: usize, b: usize, c: usize, ldc: usize, alpha: f32, beta: f32): void {
  let c00 = f32x4.splat(0);
  let c01 = f32x4.splat(0);
  let c10 = f32x4.splat(0);
  let c11 = f32x4.splat(0);
  let c20 = f32x4.splat(0);
  let c21 = f32x4.splat(0);
  let c30 = f32x4.splat(0);
  let c31 = f32x4.splat(0);
  const aEnd = a + <usize>kc * SA;
  // Unrolled four times; the pointer advances every step (load32_splat takes no offset in V8's
  // code) and the exit test after each step splits the body into basic blocks.
  while (true) {
    {
      const b0 = v128.load(b, 0);
      const b1 = v128.load(b, 16);
      const a0 = v128.load32_splat(a, 0);
      c00 = madd(c00, a0, b0);
      c01 = madd(c01, a0, b1);
      const a1 = v128.load32_splat(a, 4);
      c10 = madd(c10, a1, b0);
      c11 = madd(c11, a1, b1);
      const a2 = v128.load32_splat(a, 8);
      c20 = madd(c20, a2, b0);
      c21 = madd(c21, a2, b1);
      const a3 = v128.load32_splat(a, 12);
      c30 = madd(c30, a3, b0);
      c31 = madd(c31, a3, b1);
    }
    a += SA;
    b += SB;
    if (a == aEnd) break;
    {
      const b0 = v128.load(b, 0);
      const b1 = v128.load(b, 16);
      const a0 = v128.load32_splat(a, 0);
      c00 = madd(c00, a0, b0);
      c01 = madd(c01, a0, b1);
      const a1 = v128.load32_splat(a, 4);
      c10 = madd(c10, a1, b0);
      c11 = madd(c11, a1, b1);
      const a2 = v128.load32_splat(a, 8);
      c20 = madd(c20, a2, b0);
      c21 = madd(c21, a2, b1);
      const a3 = v128.load32_splat(a, 12);
      c30 = madd(c30, a3, b0);
      c31 = madd(c31, a3, b1);
    }
    a += SA;
    b += SB;
    if (a == aEnd) break;
    {
      const b0 = v128.load(b, 0);
      const b1 = v128.load(b, 16);
      const a0 = v128.load32_splat(a, 0);
      c00 = madd(c00, a0, b0);
      c01 = madd(c01, a0, b1);
      const a1 = v128.load32_splat(a, 4);
      c10 = madd(c10, a1, b0);
      c11 = madd(c11, a1, b1);
      const a2 = v128.load32_splat(a, 8);
      c20 = madd(c20, a2, b0);
      c21 = madd(c21, a2, b1);
      const a3 = v128.load32_splat(a, 12);
      c30 = madd(c30, a3, b0);
      c31 = madd(c31, a3, b1);
    }
    a += SA;
    b += SB;
    if (a == aEnd) break;
    {
      const b0 = v128.load(b, 0);
      const b1 = v128.load(b, 16);
      const a0 = v128.load32_splat(a, 0);
      c00 = madd(c00, a0, b0);
      c01 = madd(c01, a0, b1);
      const a1 = v128.load32_splat(a, 4);
      c10 = madd(c10, a1, b0);
      c11 = madd(c11, a1, b1);
      const a2 = v128.load32_splat(a, 8);
      c20 = madd(c20, a2, b0);
      c21 = madd(c21, a2, b1);
      const a3 = v128.load32_splat(a, 12);
      c30 = madd(c30, a3, b0);
      c31 = madd(c31, a3, b1);
    }
    a += SA;
    b += SB;
    if (a == aEnd) break;
  }
  storeTile(c, ldc, alpha, beta, c00, c01, c10, c11, c20, c21, c30, c31);
}

/** Multiplies the packed mc x kc block of A by the packed kc x nc block of B into C. */
function macroKernel(mc: i32, nc: i32, kc: i32, c: usize, ldc: usize, alpha: f32, beta: f32): void {
  const panelA = <usize>kc * SA;
  const panelB = <usize>kc * SB;
  // B micro-panel (kc x NR, up to 16 KiB) stays in L1 while the A micro-panels stream from L2.
  let pb = packB;
  for (let j = 0; j < nc; j += NR) {
    const cols = min(NR, nc - j);
    let pa = packA;
    for (let i = 0; i < mc; i += MR) {
      const rows = min(MR, mc - i);
      const ct = c + <usize>i * ldc + (<usize>j << 2);
      if (rows == MR && cols == NR) kernel4x8(kc, pa, pb, ct, ldc, alpha, beta);
      else edgeTile(kc, pa, pb, ct, ldc, alpha, beta, rows, cols);
      pa += panelA;
    }
    pb += panelB;
  }
}

/** A partial tile (rows < MR or cols < NR): computed into the scratch tile, then merged into C. */
function edgeTile(kc: i32, pa: usize, pb: usize, ct: usize, ldc: usize, alpha: f32, beta: f32, rows: i32, cols: i32): void {
  kernel4x8(kc, pa, pb, tile, SB, 1, 0);
  for (let ii = 0; ii < rows; ii++) {
    const crow = ct + <usize>ii * ldc;
    const trow = tile + <usize>ii * SB;
    for (let jj = 0; jj < cols; jj++) {
      const off = <usize>jj << 2;
      const v = alpha * load<f32>(trow + off);
      store<f32>(crow + off, beta == 0 ? v : v + beta * load<f32>(crow + off));
    }
  }
}

/** The step that splits `total` into the fewest blocks of at most `max`, as equal as possible, rounded up to a multiple of `unit` (max is a multiple of unit). */
function balancedStep(total: i32, max: i32, unit: i32): i32 {
  const blocks = (total + max - 1) / max;
  const step = (total + blocks - 1) / blocks;
  return min(max, ((step + unit - 1) / unit) * unit);
}

/**
 * Rounds `count` floats (a multiple of 4) at p to bfloat16 in place, nearest with ties to even,
 * on their bits, exactly as src/kernels/bf16.ts does: bits + 0x7fff + ((bits >> 16) & 1), low 16
 * bits cleared; a NaN gets its quiet bit set first (so it stays a NaN).
 */
function roundBf16InPlace(p: usize, count: usize): void {
  const one = i32x4.splat(1);
  const half = i32x4.splat(0x7fff);
  const quietBit = i32x4.splat(0x00400000);
  const high = i32x4.splat(0xffff0000);
  const end = p + (count << 2);
  for (; p < end; p += 16) {
    const x = v128.load(p);
    const lsb = v128.and(i32x4.shr_u(x, 16), one);
    const rounded = v128.and(i32x4.add(i32x4.add(x, half), lsb), high);
    const quiet = v128.and(v128.or(x, quietBit), high);
    v128.store(p, v128.bitselect(quiet, rounded, f32x4.ne(x, x)));
  }
}

/**
 * Points this instance's packing scratch at memory the main thread allocated: a worker's
 * instance (src/kernels/wasm-worker.ts) shares the memory but never calls the allocator, whose
 * free lists only the main thread's instance may touch. a: MC*KC floats, b: KC*NC, t: MR*NR.
 */
export function gemmSetScratch(a: usize, b: usize, t: usize): void {
  packA = a;
  packB = b;
  tile = t;
}

/**
 * C (m x n) = alpha * op(A) * op(B) + beta * C. transA: A is stored k x m; transB: B is stored
 * n x k. Pointers are byte offsets. Returns false if the packing scratch cannot be allocated.
 * bf16: bf16 mixed precision, the packed operands rounded to bfloat16 (the products of two
 * bfloat16 values are exact in f32, so the f32 multiply-add then sums them as vdpbf16ps does).
 */
export function gemm(
  transA: bool,
  transB: bool,
  m: i32,
  n: i32,
  k: i32,
  alpha: f32,
  a: usize,
  b: usize,
  beta: f32,
  c: usize,
  bf16: bool,
): bool {
  return gemmStrided(transA, transB, m, n, k, alpha, a, transA ? m : k, b, transB ? k : n, beta, c, n, bf16);
}

/**
 * gemm on sub-matrices: lda, ldb, ldc are the row lengths (in floats) of the stored A, B and C,
 * so a thread can compute a block of rows or columns of C in place. An element of C gets
 * exactly the same operations whatever block it is computed in (the k blocking depends on k
 * alone, and a partial tile rounds like a full one), so a split GEMM is bit-identical to a
 * whole one.
 */
export function gemmStrided(
  transA: bool,
  transB: bool,
  m: i32,
  n: i32,
  k: i32,
  alpha: f32,
  a: usize,
  lda: i32,
  b: usize,
  ldb: i32,
  beta: f32,
  c: usize,
  ldcFloats: i32,
  bf16: bool,
): bool {
  if (m <= 0 || n <= 0) return true;
  const ldc = <usize>ldcFloats << 2;
  if (k <= 0) {
    // op(A) * op(B) is a zero matrix.
    const zero = alpha * 0;
    for (let i = 0; i < m; i++) {
      const row = c + <usize>i * ldc;
      for (let j = 0; j < n; j++) {
        const off = <usize>j << 2;
        store<f32>(row + off, beta == 0 ? zero : zero + beta * load<f32>(row + off));
      }
    }
    return true;
  }
  if (!gemmInit()) return false;
  // Strides in bytes of op(A) (i, p) and op(B) (p, j).
  const ars: usize = transA ? 4 : <usize>lda << 2;
  const acs: usize = transA ? <usize>lda << 2 : 4;
  const brs: usize = transB ? 4 : <usize>ldb << 2;
  const bcs: usize = transB ? <usize>ldb << 2 : 4;
  // Blocks of nearly equal size (with KC 512, k = 784 is 2 x 392, not 512 + 272): no thin last block.
  const ncStep = balancedStep(n, NC, NR);
  const kcStep = balancedStep(k, KC, 4);
  for (let jc = 0; jc < n; jc += ncStep) {
    const nc = min(ncStep, n - jc);
    for (let pc = 0; pc < k; pc += kcStep) {
      const kc = min(kcStep, k - pc);
      packPanelsB(kc, nc, b + <usize>pc * brs + <usize>jc * bcs, brs, bcs);
      if (bf16) roundBf16InPlace(packB, <usize>((nc + NR - 1) / NR) * <usize>NR * <usize>kc);
      const betaBlock: f32 = pc == 0 ? beta : 1;
      for (let ic = 0; ic < m; ic += MC) {
        const mc = min(MC, m - ic);
        packPanelsA(mc, kc, a + <usize>ic * ars + <usize>pc * acs, ars, acs);
        if (bf16) roundBf16InPlace(packA, <usize>((mc + MR - 1) / MR) * <usize>MR * <usize>kc);
        macroKernel(mc, nc, kc, c + <usize>ic * ldc + (<usize>jc << 2), ldc, alpha, betaBlock);
      }
    }
  }
  return true;
}
