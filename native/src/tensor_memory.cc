// Tensor memory (see tensor_memory.h).
#include "tensor_memory.h"

#include <cstdlib>
#include <cstring>

// Large tensors come from mmap, except under AddressSanitizer, which must see every tensor as a
// heap block (with redzones) to catch out-of-bounds accesses.
#if defined(__has_feature)
#if __has_feature(address_sanitizer)
#define DENSETRAIN_ASAN 1
#endif
#endif
#if defined(__SANITIZE_ADDRESS__)
#define DENSETRAIN_ASAN 1
#endif
#if (defined(__unix__) || defined(__APPLE__)) && !defined(DENSETRAIN_ASAN)
#include <sys/mman.h>
#define DENSETRAIN_HAVE_MMAP 1
#endif

namespace densetrain {

// Aligned blocks are carved by hand out of a plain malloc of kAlign extra bytes, with malloc's
// pointer stored just below the block. Not posix_memalign: glibc serves an aligned request from
// a chunk larger than the one it hands back, so a freed tensor never satisfies the next request
// of the same size; with the JS heap allocating small objects between tensors, every model built
// and disposed left its large buffers behind as unusable holes and RSS grew without bound
// (test/reliability.memory.test.ts). A plain malloc of the same size reuses the freed chunk.
void* AlignedAlloc(size_t bytes) {
  const size_t rounded = (bytes + kAlign - 1) / kAlign * kAlign;
#if defined(_MSC_VER)
  return _aligned_malloc(rounded, kAlign);
#else
  static_assert(kAlign >= 2 * sizeof(void*) && (kAlign & (kAlign - 1)) == 0, "kAlign must be a power of two >= 16");
  void* raw = std::malloc(rounded + kAlign);
  if (raw == nullptr) return nullptr;
  // malloc aligns to at least sizeof(void*), so there is room for the pointer below the block.
  const uintptr_t aligned = (reinterpret_cast<uintptr_t>(raw) + kAlign) & ~static_cast<uintptr_t>(kAlign - 1);
  reinterpret_cast<void**>(aligned)[-1] = raw;
  return reinterpret_cast<void*>(aligned);
#endif
}

void AlignedFree(void* p) {
#if defined(_MSC_VER)
  _aligned_free(p);
#else
  if (p != nullptr) std::free(static_cast<void**>(p)[-1]);
#endif
}

namespace {

// Tensors of at least this many bytes are mapped from the OS (see tensor_memory.h).
constexpr size_t kMapThreshold = size_t{256} * 1024;

void* TensorAlloc(size_t bytes, bool* mapped) {
  *mapped = false;
#if defined(DENSETRAIN_HAVE_MMAP)
  if (bytes >= kMapThreshold) {
    void* p = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p != MAP_FAILED) {
      *mapped = true;
      return p;
    }
  }
#endif
  void* p = AlignedAlloc(bytes);
  if (p != nullptr) std::memset(p, 0, bytes);
  return p;
}

void TensorFree(void* p, size_t bytes, bool mapped) {
#if defined(DENSETRAIN_HAVE_MMAP)
  if (mapped) {
    munmap(p, bytes);
    return;
  }
#endif
  (void)bytes;
  (void)mapped;
  AlignedFree(p);
}

// Finalizer of an external ArrayBuffer: runs when it is garbage collected (or at environment
// teardown), possibly long after free() already released the memory.
void FinalizeExternal(napi_env /*env*/, void* data, void* hint) {
  std::unique_ptr<Block> block(static_cast<Block*>(hint));
  if (!block->released) {
    block->registry->live.erase(data);
    block->registry->bytes -= block->bytes;
    TensorFree(data, block->bytes, block->mapped);
    block->released = true;
  }
}

// Finalizer attached to a V8-owned ArrayBuffer (fallback when external buffers are refused).
void FinalizeInternal(napi_env /*env*/, void* /*data*/, void* hint) {
  std::unique_ptr<Block> block(static_cast<Block*>(hint));
  if (!block->released) {
    block->registry->live.erase(block->data);
    block->registry->bytes -= block->bytes;
    block->released = true;
  }
}

void ClearPendingException(napi_env env) {
  bool pending = false;
  if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
    napi_value ignored;
    napi_get_and_clear_last_exception(env, &ignored);
  }
}

// The live block of a whole tensor view allocated here (its ArrayBuffer in *buffer_out), or null.
Block* FindBlock(const TensorRegistry& registry, napi_env env, napi_value v, napi_value* buffer_out,
                 bool* detached_out) {
  *detached_out = false;
  bool is_ta = false;
  if (napi_is_typedarray(env, v, &is_ta) != napi_ok || !is_ta) return nullptr;
  napi_typedarray_type type;
  size_t length = 0;
  void* data = nullptr;
  size_t offset = 0;
  if (napi_get_typedarray_info(env, v, &type, &length, &data, buffer_out, &offset) != napi_ok) return nullptr;
  if (type != napi_float32_array) return nullptr;
  bool detached = false;
  napi_is_detached_arraybuffer(env, *buffer_out, &detached);
  if (detached || data == nullptr) {
    *detached_out = true;
    return nullptr;
  }
  auto it = registry.live.find(data);
  if (it == registry.live.end() || offset != 0 || it->second->length != static_cast<int64_t>(length)) return nullptr;
  return it->second;
}

}  // namespace

napi_value TensorStore::Alloc(napi_env env, int64_t length, std::string* error) {
  const size_t bytes = static_cast<size_t>(length) * sizeof(float);
  auto block = std::make_unique<Block>();
  block->bytes = bytes;
  block->length = length;
  block->registry = registry_;
  Block* raw = block.get();
  block->id = registry_->next_id++;
  napi_value ab = nullptr;
  void* data = TensorAlloc(bytes, &block->mapped);
  if (data == nullptr) {
    *error = "cannot allocate " + std::to_string(bytes) + " bytes";
    return nullptr;
  }
  block->data = data;
  if (napi_create_external_arraybuffer(env, data, bytes, &FinalizeExternal, raw, &ab) == napi_ok) {
    block.release();  // owned by the ArrayBuffer's finalizer from now on
  } else {
    // Runtimes that refuse external buffers (e.g. a V8 sandbox): fall back to V8-owned,
    // zero-filled memory, still detached by free() and tracked by a finalizer.
    TensorFree(data, bytes, block->mapped);
    block->mapped = false;
    ClearPendingException(env);
    void* vdata = nullptr;
    if (napi_create_arraybuffer(env, bytes, &vdata, &ab) != napi_ok || vdata == nullptr) {
      ClearPendingException(env);
      *error = "cannot allocate " + std::to_string(bytes) + " bytes";
      return nullptr;
    }
    block->external = false;
    block->data = vdata;
    if (napi_add_finalizer(env, ab, nullptr, &FinalizeInternal, raw, nullptr) != napi_ok) {
      ClearPendingException(env);
      *error = "cannot attach a finalizer to the tensor's memory";
      return nullptr;
    }
    block.release();  // owned by the finalizer
  }
  // Registered as soon as a finalizer owns the block, so the finalizer's bookkeeping matches.
  registry_->live[raw->data] = raw;
  registry_->bytes += bytes;
  napi_value view;
  if (napi_create_typedarray(env, napi_float32_array, static_cast<size_t>(length), ab, 0, &view) != napi_ok) {
    ClearPendingException(env);
    *error = "cannot create the Float32Array view";
    return nullptr;
  }
  return view;
}

TensorStore::FreeResult TensorStore::Free(napi_env env, napi_value v) {
  napi_value buffer = nullptr;
  bool detached = false;
  Block* block = FindBlock(*registry_, env, v, &buffer, &detached);
  if (block == nullptr) return detached ? FreeResult::kAlreadyFreed : FreeResult::kNotATensor;
  // Detach first: every JS view of this memory becomes empty, then the memory can go.
  if (napi_detach_arraybuffer(env, buffer) != napi_ok) {
    ClearPendingException(env);
    return FreeResult::kDetachFailed;
  }
  registry_->live.erase(block->data);
  registry_->bytes -= block->bytes;
  if (block->external) TensorFree(block->data, block->bytes, block->mapped);
  block->released = true;  // the finalizer, when it runs, only deletes the Block
  return FreeResult::kFreed;
}

Block* TensorStore::Find(napi_env env, napi_value v, bool* detached_out) const {
  napi_value buffer = nullptr;
  return FindBlock(*registry_, env, v, &buffer, detached_out);
}

bool TensorStore::StillLive(const void* data, uint64_t id) const {
  auto it = registry_->live.find(data);
  return it != registry_->live.end() && it->second->id == id && !it->second->released;
}

}  // namespace densetrain
