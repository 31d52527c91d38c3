// Batch filling (see gather.h).
#include "gather.h"

#include <algorithm>

namespace densetrain {
namespace {

// Prefetches the `f` bytes of one row, every cache line (locality: 3 = all levels, 2 = L2 and out).
template <int kLocality>
void PrefetchRow(const uint8_t* row, int64_t f) {
  for (int64_t b = 0; b < f; b += 64) __builtin_prefetch(row + b, 0, kLocality);
  __builtin_prefetch(row + f - 1, 0, kLocality);
}

}  // namespace

void GatherRowsInto(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices, const float* table,
                    float* out) {
  // Rows are scattered over the whole dataset (tens of MB, shuffled), so each one starts with
  // cache misses the hardware prefetcher cannot predict: fetch a few rows ahead by hand.
  constexpr int64_t kAhead = 4;
  for (int64_t k = 0; k < std::min(count, kAhead); ++k) PrefetchRow<3>(bytes + static_cast<int64_t>(indices[k]) * f, f);
  for (int64_t k = 0; k < count; ++k) {
    if (k + kAhead < count) PrefetchRow<3>(bytes + static_cast<int64_t>(indices[k + kAhead]) * f, f);
    const uint8_t* src = bytes + static_cast<int64_t>(indices[k]) * f;
    float* dst = out + k * f;
    for (int64_t p = 0; p < f; ++p) dst[p] = table[src[p]];
  }
}

void PrefetchRows(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices, int64_t images) {
  for (int64_t k = 0; k < count; ++k) {
    if (static_cast<int64_t>(indices[k]) < images) PrefetchRow<2>(bytes + static_cast<int64_t>(indices[k]) * f, f);
  }
}

}  // namespace densetrain
