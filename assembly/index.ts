// densetrain's WebAssembly kernels (AssemblyScript, SIMD128, no GC runtime). The JS side
// (src/kernels/wasm.ts) checks every argument before it calls in; these functions trust theirs.
// Pointers are byte offsets into the exported memory.
export { alloc, free, heapUsed, heapBlocks, heapExtent, heapCheck } from './heap';
export { gemm, gemmInit, gemmStrided, gemmSetScratch } from './gemm';
export {
  biasActivation,
  activationBackward,
  biasGrad,
  softmaxCrossEntropy,
  softmax,
  sgdStep,
  adamStep,
  sumSquares,
} from './elementwise';

/** 1 in the relaxed-SIMD build (the GEMM micro-kernel fuses multiply and add), 0 in the plain SIMD128 one. */
export const RELAXED_SIMD: i32 = ASC_FEATURE_RELAXED_SIMD ? 1 : 0;
