// Placeholder until the native loader lands (issue 2): the native backend reports why it is absent.
import type { Kernels } from './types.js';
export function loadNativeKernels(): Kernels {
  throw new Error('native addon not built yet');
}
