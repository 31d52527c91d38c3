/** Which GEMM precision a run uses, given what it asked for and what its kernels can do. */
import type { Kernels, Precision } from '../kernels/types.js';
import type { PrecisionUsed } from './types.js';

/**
 * The precision a run uses: bf16 where the kernels have bf16 GEMMs, else fp32 with the reason
 * (the rule: say so and run fp32, never a silent slow emulation).
 */
export function resolvePrecision(requested: Precision, kernels: Kernels): PrecisionUsed {
  if (requested === 'fp32') return { requested, used: 'fp32', detail: 'float32 GEMMs' };
  const bf16 = kernels.info().bf16;
  if (bf16?.available) return { requested, used: 'bf16', detail: bf16.detail };
  return { requested, used: 'fp32', detail: `bf16 is not available on the ${kernels.name} backend (${bf16?.detail ?? 'no bf16 GEMMs'}); training in fp32` };
}

/** One line for humans: 'bf16 (avx512-bf16 (vdpbf16ps))', 'fp32', or the fallback notice. */
export function formatPrecision(p: PrecisionUsed): string {
  if (p.used === p.requested) return p.used === 'fp32' ? 'fp32' : `${p.used} (${p.detail})`;
  return `${p.used}: ${p.detail}`;
}
