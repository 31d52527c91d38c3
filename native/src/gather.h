// Batch filling: out[k*features + p] = table[bytes[indices[k]*features + p]]. A table lookup per
// byte, the same in every ISA (and bit-identical to the JavaScript backends), so it lives on the
// addon side rather than in the kernel tables. One thread: a batch is ~100 KB of bytes, and a
// second thread measured no faster inside training (its rows land in the other core's cache).
#ifndef DENSETRAIN_GATHER_H_
#define DENSETRAIN_GATHER_H_

#include <cstdint>

namespace densetrain {

// Fills `count` rows of `f` floats from the rows indices[0..count) of `bytes`.
void GatherRowsInto(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices, const float* table,
                    float* out);

// Asks for the rows indices[0..count) of `bytes` to be brought towards the cache (L2 and out):
// the next batch's rows, fetched while this batch is computed. Indices at or past `images` are
// skipped. Prefetches never fault.
void PrefetchRows(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices, int64_t images);

}  // namespace densetrain

#endif  // DENSETRAIN_GATHER_H_
