/**
 * How the wasm backend cuts a kernel into parts for its threads (wasm-pool.ts). Parts are
 * blocks of outputs, never of a reduction, and their edges fall where the kernel's own
 * blocking already cuts (tiles of C, SIMD groups of 4 elements), so every output element gets
 * exactly the operations it gets in one call: results do not depend on the thread count.
 */

/** A GEMM is split only from this many flops (2mnk): below it, waking a thread costs more than it saves. */
export const GEMM_SPLIT_FLOPS = 4e6;
/** A GEMM is cut into chunks of about this many flops (at least one per thread, at most what the pool allows). */
export const GEMM_CHUNK_FLOPS = 8e6;

/** Chunks for a GEMM of `flops` flops: 1 below GEMM_SPLIT_FLOPS, else one per thread and more for big ones, at most `maxChunks`. */
export function gemmChunks(flops: number, threads: number, maxChunks: () => number): number {
  if (threads === 1 || flops < GEMM_SPLIT_FLOPS) return 1;
  return Math.min(maxChunks(), Math.max(threads, Math.floor(flops / GEMM_CHUNK_FLOPS)));
}

/** Element-wise kernels are split only from this many elements per part. */
export const ELEMENTS_PER_PART = 1 << 16;

/** [lo, hi) bounds of `parts` nearly equal ranges of `units` units of `unit` items (total items `total`). */
function ranges(total: number, unit: number, parts: number): [number, number][] {
  const units = Math.ceil(total / unit);
  const count = Math.max(1, Math.min(parts, units));
  const out: [number, number][] = [];
  for (let i = 0; i < count; i++) {
    const lo = Math.round((i * units) / count) * unit;
    const hi = Math.min(total, Math.round(((i + 1) * units) / count) * unit);
    if (hi > lo) out.push([lo, hi]);
  }
  return out;
}

/**
 * gemmStrided argument lists (assembly/gemm.ts) for C = alpha op(A) op(B) + beta C cut into at
 * most `parts` blocks: by columns of C in multiples of the micro-tile width 8 when C is at least
 * as wide as it is tall, else by rows in multiples of 4 (each thread then packs only its share
 * of the larger operand). Pointers are byte offsets.
 */
export function gemmParts(
  parts: number,
  transA: boolean,
  transB: boolean,
  m: number,
  n: number,
  k: number,
  alpha: number,
  a: number,
  b: number,
  beta: number,
  c: number,
  bf16: boolean,
): number[][] {
  const lda = transA ? m : k;
  const ldb = transB ? k : n;
  const flags = [transA ? 1 : 0, transB ? 1 : 0];
  const tail = bf16 ? 1 : 0;
  if (n >= m) {
    return ranges(n, 8, parts).map(([lo, hi]) => [
      ...flags, m, hi - lo, k, alpha, a, lda, transB ? b + lo * ldb * 4 : b + lo * 4, ldb, beta, c + lo * 4, n, tail,
    ]);
  }
  return ranges(m, 4, parts).map(([lo, hi]) => [
    ...flags, hi - lo, n, k, alpha, transA ? a + lo * 4 : a + lo * lda * 4, lda, b, ldb, beta, c + lo * n * 4, n, tail,
  ]);
}

/** How many parts an element-wise kernel over `elements` elements gets, at most `threads`. */
export function elementParts(elements: number, threads: number): number {
  return Math.max(1, Math.min(threads, Math.floor(elements / ELEMENTS_PER_PART)));
}

/**
 * Row ranges of a rows x cols element-wise kernel, cut at multiples of 4 rows so a part's flat
 * start (row * cols) is a multiple of 4: the kernels' SIMD groups stay the same.
 */
export function rowRanges(rows: number, parts: number): [number, number][] {
  return ranges(rows, 4, parts);
}

/** Ranges of a flat n-element kernel (an optimizer step), cut at multiples of 16 elements. */
export function flatRanges(n: number, parts: number): [number, number][] {
  return ranges(n, 16, parts);
}
