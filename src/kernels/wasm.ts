// Placeholder until the wasm loader lands (issue 2).
import type { Kernels } from './types.js';
export function loadWasmKernels(): Kernels {
  throw new Error('wasm module not built yet');
}
