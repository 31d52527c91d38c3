// Tensor memory: 64-byte aligned blocks handed to JavaScript as external ArrayBuffers, and the
// registry of live blocks that lets the addon recognise its own tensors.
//
// Large tensors (>= 256 KiB) are mapped straight from the OS (anonymous mmap: page-aligned,
// zero-filled, returned with munmap at free()), so disposing a model gives its memory back at
// once; smaller ones come from the aligned heap below, zero-filled here. Under AddressSanitizer
// every tensor comes from the heap, so ASan sees each one with redzones. Runtimes that refuse
// external ArrayBuffers get V8-owned zero-filled memory instead, tracked the same way.
//
// free() detaches the ArrayBuffer first (every JS view of it becomes empty) and then releases
// the memory, so no view can ever reach freed memory. Memory never given back with free() is
// released by the ArrayBuffer's finalizer when it is garbage collected.
#ifndef DENSETRAIN_TENSOR_MEMORY_H_
#define DENSETRAIN_TENSOR_MEMORY_H_

#include <node_api.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

namespace densetrain {

constexpr int64_t kMaxLength = int64_t{1} << 30;  // elements per tensor (4 GiB)
constexpr size_t kAlign = 64;

// `bytes` rounded up to kAlign, 64-byte aligned, uninitialised; null when out of memory.
void* AlignedAlloc(size_t bytes);
void AlignedFree(void* p);

struct AlignedDeleter {
  void operator()(float* p) const { AlignedFree(p); }
};
using AlignedFloats = std::unique_ptr<float, AlignedDeleter>;

struct TensorRegistry;

struct Block {
  void* data = nullptr;
  size_t bytes = 0;
  int64_t length = 0;
  bool external = true;   // memory allocated here (else: a V8-owned ArrayBuffer)
  bool mapped = false;    // from mmap
  bool released = false;  // free() has run: memory gone, registry entry removed
  uint64_t id = 0;        // unique per allocation (train-step plans check that theirs are still live)
  std::shared_ptr<TensorRegistry> registry;
};

// Live tensor memory of one addon instance. Shared with every block's finalizer, so it
// outlives whichever of the addon and its last ArrayBuffer goes first.
struct TensorRegistry {
  std::unordered_map<const void*, Block*> live;  // by data pointer
  size_t bytes = 0;
  uint64_t next_id = 1;  // a freed tensor's address reused by a new one gets a new id
};

// The tensors of one addon instance.
class TensorStore {
 public:
  TensorStore() : registry_(std::make_shared<TensorRegistry>()) {}

  // A new zero-filled Float32Array of `length` elements (1 <= length <= kMaxLength), or null
  // with the reason in *error (no JS exception left pending).
  napi_value Alloc(napi_env env, int64_t length, std::string* error);

  enum class FreeResult { kFreed, kAlreadyFreed, kNotATensor, kDetachFailed };
  FreeResult Free(napi_env env, napi_value v);

  // The live block of a whole tensor view allocated here, or null (nothing thrown);
  // *detached_out says whether v is a view whose memory was already freed.
  Block* Find(napi_env env, napi_value v, bool* detached_out) const;

  // Whether the allocation `id` at `data` is still live (not freed, not replaced).
  bool StillLive(const void* data, uint64_t id) const;

  size_t bytes() const { return registry_->bytes; }

 private:
  std::shared_ptr<TensorRegistry> registry_;
};

}  // namespace densetrain

#endif  // DENSETRAIN_TENSOR_MEMORY_H_
