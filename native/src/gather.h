// Batch filling: out[k*features + p] = table[bytes[indices[k]*features + p]]. A table lookup per
// byte, the same in every ISA (and bit-identical to the JavaScript backends), so it lives on the
// addon side rather than in the kernel tables. Rows are split in blocks over the pool: besides
// sharing the work, that keeps the pool's workers busy up to the training step that follows (a
// worker left idle through a single-threaded fill, ~65 us, outlasts its 50 us spin and may be
// asleep when the step's first GEMM starts).
#ifndef DENSETRAIN_GATHER_H_
#define DENSETRAIN_GATHER_H_

#include <cstdint>

#include "kernel_api.h"

namespace densetrain {

// Fills `count` rows of `f` floats from the rows indices[0..count) of `bytes`, on exec's pool.
void GatherRowsInto(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices, const float* table,
                    float* out, const Exec& exec);

// Asks for the rows indices[0..count) of `bytes` to be brought towards the cache (L2 and out):
// the next batch's rows, fetched while this batch is computed. Indices at or past `images` are
// skipped. Prefetches never fault.
void PrefetchRows(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices, int64_t images);

}  // namespace densetrain

#endif  // DENSETRAIN_GATHER_H_
