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

// Rows [begin, end) of one gather.
void GatherBlock(int64_t begin, int64_t end, int64_t f, const uint8_t* bytes, const uint32_t* indices,
                 const float* table, float* out) {
  const int64_t count = end - begin;
  indices += begin;
  out += begin * f;
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

struct GatherCtx {
  int64_t count, f, rows_per_task;
  const uint8_t* bytes;
  const uint32_t* indices;
  const float* table;
  float* out;
};

void GatherTask(void* vctx, int task, int /*worker*/) {
  const GatherCtx& x = *static_cast<const GatherCtx*>(vctx);
  const int64_t begin = task * x.rows_per_task;
  const int64_t end = std::min(x.count, begin + x.rows_per_task);
  GatherBlock(begin, end, x.f, x.bytes, x.indices, x.table, x.out);
}

// Bytes per task: large enough that handing out a task costs little against it (a
// 784-pixel image is 784 bytes: 32 of them per task).
constexpr int64_t kBytesPerTask = 24 * 1024;

}  // namespace

void GatherRowsInto(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices, const float* table,
                    float* out, const Exec& exec) {
  if (count <= 0) return;
  GatherCtx x{count, f, std::max<int64_t>(1, kBytesPerTask / f), bytes, indices, table, out};
  const int64_t tasks = (count + x.rows_per_task - 1) / x.rows_per_task;
  if (tasks <= 1 || exec.threads <= 1 || exec.parallel == nullptr) {
    GatherBlock(0, count, f, bytes, indices, table, out);
    return;
  }
  exec.parallel(exec.pool, static_cast<int>(tasks), &GatherTask, &x);
}

void PrefetchRows(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices, int64_t images) {
  for (int64_t k = 0; k < count; ++k) {
    if (static_cast<int64_t>(indices[k]) < images) PrefetchRow<2>(bytes + static_cast<int64_t>(indices[k]) * f, f);
  }
}

}  // namespace densetrain
