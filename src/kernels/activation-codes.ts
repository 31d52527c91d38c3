/**
 * The activation codes the compiled kernels take in place of an activation's name.
 *
 * Defined once per language, and the four definitions must match:
 * - TypeScript: here (used by src/kernels/native.ts and src/kernels/wasm.ts);
 * - C++: `enum ActKind` in native/src/kernel_api.h (the addon also exports it as `activationCodes`);
 * - AssemblyScript: the ACT_* constants in assembly/elementwise.ts.
 * test/kernels.activation-codes.test.ts reads all of them and fails when any differs. Add a new
 * activation at the end in every place at once (docs/DESIGN.md, "Adding a kernel").
 */
import type { ActivationName } from './types.js';

export const ACTIVATION_CODES: Readonly<Record<ActivationName, number>> = Object.freeze({
  relu: 0,
  leaky_relu: 1,
  prelu: 2,
  sigmoid: 3,
  tanh: 4,
  linear: 5,
});
