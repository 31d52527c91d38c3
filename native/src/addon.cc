// The Node-API layer of the densetrain native backend: tensor memory, the thread pool, the
// choice of kernel table by CPU, and argument checks for every entry point.
//
// Built with NAPI_DISABLE_CPP_EXCEPTIONS: nothing throws C++ exceptions; every bad argument
// becomes a JS TypeError or RangeError naming the argument, raised before any memory is
// touched. These checks repeat (defence in depth) what src/kernels/checks.ts does for users;
// they exist for callers that reach the raw addon directly.
//
// Tensor memory is allocated here (64-byte aligned) and handed to JS as an external
// ArrayBuffer. free() detaches that ArrayBuffer first (every JS view of it becomes empty) and
// then releases the memory, so no view can ever reach freed memory. Memory never given back
// with free() is released by the ArrayBuffer's finalizer when it is garbage collected.
#include <napi.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "kernel_api.h"
#include "thread_pool.h"

#if defined(__linux__)
#include <sched.h>
#endif
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

#if defined(DENSETRAIN_X86) && defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#endif

namespace densetrain {
namespace {

constexpr int kAbiVersion = 3;
constexpr int kMaxThreads = 256;
constexpr int64_t kMaxLength = int64_t{1} << 30;   // elements per tensor (4 GiB)
constexpr int64_t kMaxSize = 0x7fffffff;           // largest size argument
constexpr size_t kAlign = 64;

// ---------------------------------------------------------------------------------------
// CPU features
// ---------------------------------------------------------------------------------------

struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;  // F + DQ + BW + VL, with OS support for the zmm state
  bool avx512bf16 = false;  // AVX512-BF16 (vdpbf16ps), on top of avx512
  bool amx_bf16 = false;    // AMX-BF16 reported (no kernels for it are built: see Bf16Reason)
};

CpuFeatures DetectCpu() {
  CpuFeatures f;
#if defined(DENSETRAIN_X86)
#if defined(__GNUC__) || defined(__clang__)
  // libgcc / compiler-rt also check XCR0, so these are false if the OS does not save the state.
  __builtin_cpu_init();
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
  f.avx512 = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512dq") &&
             __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl");
  f.avx512bf16 = __builtin_cpu_supports("avx512bf16");
#if defined(__GNUC__) && !defined(__clang__) && __GNUC__ >= 11
  f.amx_bf16 = __builtin_cpu_supports("amx-bf16");
#endif
#elif defined(_MSC_VER)
  int r[4];
  __cpuid(r, 0);
  const int max_leaf = r[0];
  __cpuid(r, 1);
  const bool osxsave = (r[2] & (1 << 27)) != 0;
  const bool fma = (r[2] & (1 << 12)) != 0;
  const bool avx = (r[2] & (1 << 28)) != 0;
  if (osxsave && avx && max_leaf >= 7) {
    const unsigned long long xcr0 = _xgetbv(0);
    __cpuidex(r, 7, 0);
    const bool ymm = (xcr0 & 0x6) == 0x6;
    const bool zmm = (xcr0 & 0xe6) == 0xe6;
    f.avx2_fma = ymm && fma && (r[1] & (1 << 5)) != 0;
    f.avx512 = zmm && (r[1] & (1 << 16)) && (r[1] & (1 << 17)) && (r[1] & (1 << 30)) && (r[1] & (1u << 31));
    __cpuidex(r, 7, 1);
    f.avx512bf16 = f.avx512 && (r[0] & (1 << 5)) != 0;
  }
#endif
  // The AVX-512 kernels are only chosen on CPUs that also have AVX2+FMA (all real ones do).
  f.avx512 = f.avx512 && f.avx2_fma;
  f.avx512bf16 = f.avx512bf16 && f.avx512;
#endif
  return f;
}

// Default pool size: the hardware threads, or fewer if this process may only run on fewer
// (CPU affinity, e.g. taskset or a cpuset-limited container).
int DefaultThreads() {
  int threads = static_cast<int>(std::thread::hardware_concurrency());
#if defined(__linux__)
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0) {
    const int allowed = CPU_COUNT(&set);
    if (allowed >= 1 && (threads < 1 || allowed < threads)) threads = allowed;
  }
#endif
  return threads < 1 ? 1 : threads;
}

// Tables this CPU can run, from best to worst.
std::vector<const KernelTable*> SupportedTables(const CpuFeatures& cpu) {
  std::vector<const KernelTable*> tables;
#if defined(DENSETRAIN_X86)
  if (cpu.avx512) tables.push_back(Avx512Table());
  if (cpu.avx2_fma) tables.push_back(Avx2Table());
#else
  (void)cpu;
#endif
  tables.push_back(GenericTable());
  return tables;
}

// The bf16 GEMMs to use with `table`, or null (then Bf16Reason says why).
const Bf16Table* Bf16For(const CpuFeatures& cpu, const KernelTable* table) {
#if defined(DENSETRAIN_X86)
  if (cpu.avx512bf16 && table == Avx512Table()) return Avx512Bf16Table();
#else
  (void)cpu;
  (void)table;
#endif
  return nullptr;
}

// Why there are no bf16 GEMMs with `table`, for users (shown by `densetrain info` and training).
std::string Bf16Reason(const CpuFeatures& cpu, const KernelTable* table) {
  std::string amx = cpu.amx_bf16 ? "; this CPU has AMX-BF16, but no AMX kernels are built yet (untested)" : "";
#if defined(DENSETRAIN_X86)
  if (cpu.avx512bf16) {
    return std::string("the ") + table->name + " kernels are in use (DENSETRAIN_ISA); bf16 needs the avx512 kernels with AVX512-BF16" + amx;
  }
  return "this CPU has no AVX512-BF16 (vdpbf16ps)" + amx;
#else
  (void)table;
  return "bf16 kernels exist only for x86-64 CPUs with AVX512-BF16" + amx;
#endif
}

// Every table this build contains (supported or not), for error messages.
std::string BuiltIsas() {
#if defined(DENSETRAIN_X86)
  return "generic, avx2, avx512";
#else
  return "generic";
#endif
}

// ---------------------------------------------------------------------------------------
// Aligned memory
// ---------------------------------------------------------------------------------------

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

// Tensor memory. Large tensors are mapped straight from the OS (page-aligned, zero-filled,
// returned with munmap), so freeing a model gives its memory back at once instead of leaving
// it in the allocator's free lists; small ones come from the aligned heap, zero-filled here.
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

struct AlignedDeleter {
  void operator()(float* p) const { AlignedFree(p); }
};
using AlignedFloats = std::unique_ptr<float, AlignedDeleter>;

// Live tensor memory of one addon instance. Shared with every block's finalizer, so it
// outlives whichever of the addon and its last ArrayBuffer goes first.
struct Block;
struct TensorRegistry {
  std::unordered_map<const void*, Block*> live;  // by data pointer
  size_t bytes = 0;
  uint64_t next_id = 1;  // Block ids: a freed tensor's address reused by a new one gets a new id
};

struct Block {
  void* data = nullptr;
  size_t bytes = 0;
  int64_t length = 0;
  bool external = true;   // memory allocated here (else: a V8-owned ArrayBuffer)
  bool mapped = false;    // from mmap (TensorAlloc)
  bool released = false;  // free() has run: memory gone, registry entry removed
  uint64_t id = 0;        // unique per allocation (TrainStep plans check that theirs are still live)
  std::shared_ptr<TensorRegistry> registry;
};

// A training step planned once per model (createTrainStep) and run per batch (runTrainStep):
// forward, softmax cross-entropy and backward in one call, with the same kernel calls in the
// same order as the model's composed step (src/model/mlp.ts), so the results are the same bits.
// Tensors are kept as (data, id, length): every run first checks each is still the live
// allocation it was when planned, so a freed (or freed and reallocated) tensor is never touched.
struct PlannedTensor {
  float* data = nullptr;  // null: absent (optional)
  uint64_t id = 0;
  int64_t length = 0;
};
struct StepLayer {
  int64_t in_f = 0, out_f = 0;
  int kind = 0;
  double alpha = 0;  // leaky_relu's slope (prelu reads its slope tensor at run time)
  PlannedTensor w, b, gw, gb, z, h, dh_in, slope, slope_grad;  // dh_in: dX target (layers > 0)
};
struct StepPlan {
  int64_t capacity = 0, classes = 0;
  bool bf16 = false;
  PlannedTensor input, labels, probs, dlogits;
  std::vector<StepLayer> layers;
};

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

// ---------------------------------------------------------------------------------------
// Argument checks
// ---------------------------------------------------------------------------------------

const char* TypeName(napi_valuetype t) {
  switch (t) {
    case napi_undefined: return "undefined";
    case napi_null: return "null";
    case napi_boolean: return "a boolean";
    case napi_number: return "a number";
    case napi_string: return "a string";
    case napi_symbol: return "a symbol";
    case napi_object: return "an object";
    case napi_function: return "a function";
    case napi_external: return "an external";
    case napi_bigint: return "a bigint";
  }
  return "an unknown value";
}

std::string NumberText(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "Infinity" : "-Infinity";
  char buf[64];
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    snprintf(buf, sizeof buf, "%.0f", v);
  } else {
    snprintf(buf, sizeof buf, "%.17g", v);
  }
  return buf;
}

// Reads the arguments of one call. The first failure throws a JS error and makes every later
// read return a harmless default; callers check ok() before touching memory.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), env_(info.Env()), fn_(fn) {}

  bool ok() const { return ok_; }
  napi_env env() const { return env_; }

  void TypeError(const std::string& msg) { Fail(msg, true); }
  void RangeError(const std::string& msg) { Fail(msg, false); }

  double Number(size_t i, const char* name) {
    if (!ok_) return 0;
    napi_value v = Arg(i);
    napi_valuetype t;
    if (napi_typeof(env_, v, &t) != napi_ok || t != napi_number) {
      TypeError(std::string(name) + " must be a number, got " + TypeNameOf(v));
      return 0;
    }
    double d = 0;
    napi_get_value_double(env_, v, &d);
    return d;
  }

  double Finite(size_t i, const char* name) {
    const double d = Number(i, name);
    if (ok_ && !std::isfinite(d)) RangeError(std::string(name) + " must be finite, got " + NumberText(d));
    return ok_ ? d : 0;
  }

  int64_t Size(size_t i, const char* name, int64_t lo = 0, int64_t hi = kMaxSize) {
    const double d = Number(i, name);
    if (!ok_) return 0;
    if (!(d == std::floor(d)) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
      RangeError(std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
                 "], got " + NumberText(d));
      return 0;
    }
    return static_cast<int64_t>(d);
  }

  bool Bool(size_t i, const char* name) {
    if (!ok_) return false;
    napi_value v = Arg(i);
    napi_valuetype t;
    if (napi_typeof(env_, v, &t) != napi_ok || t != napi_boolean) {
      TypeError(std::string(name) + " must be a boolean, got " + TypeNameOf(v));
      return false;
    }
    bool b = false;
    napi_get_value_bool(env_, v, &b);
    return b;
  }

  bool IsNullish(size_t i) {
    napi_value v = Arg(i);
    napi_valuetype t;
    return napi_typeof(env_, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
  }

  // A Float32Array holding at least `needed` elements. Returns its data (nullptr on failure,
  // or when optional and the argument is null/undefined; then *present is false).
  float* Floats(size_t i, const char* name, int64_t needed, bool optional = false, bool* present = nullptr,
                int64_t* length_out = nullptr) {
    return static_cast<float*>(
        Typed(i, name, napi_float32_array, "a Float32Array", needed, optional, present, length_out));
  }

  // A Uint8Array / Uint32Array of at least `needed` elements; its length in *length_out.
  const uint8_t* Bytes(size_t i, const char* name, int64_t needed, int64_t* length_out) {
    return static_cast<const uint8_t*>(Typed(i, name, napi_uint8_array, "a Uint8Array", needed, false, nullptr, length_out));
  }
  const uint32_t* Uint32s(size_t i, const char* name, int64_t needed, int64_t* length_out) {
    return static_cast<const uint32_t*>(
        Typed(i, name, napi_uint32_array, "a Uint32Array", needed, false, nullptr, length_out));
  }

  // A typed array of type `want` holding at least `needed` elements (its data, or nullptr on
  // failure, or when optional and the argument is null/undefined; then *present is false).
  void* Typed(size_t i, const char* name, napi_typedarray_type want, const char* want_name, int64_t needed,
              bool optional, bool* present, int64_t* length_out) {
    if (present != nullptr) *present = false;
    if (!ok_) return nullptr;
    if (optional && IsNullish(i)) return nullptr;
    napi_value v = Arg(i);
    bool is_ta = false;
    if (napi_is_typedarray(env_, v, &is_ta) != napi_ok || !is_ta) {
      TypeError(std::string(name) + " must be " + want_name + ", got " + TypeNameOf(v));
      return nullptr;
    }
    napi_typedarray_type type;
    size_t length = 0;
    void* data = nullptr;
    napi_value buffer;
    size_t offset = 0;
    if (napi_get_typedarray_info(env_, v, &type, &length, &data, &buffer, &offset) != napi_ok) {
      TypeError(std::string(name) + ": cannot read the typed array");
      return nullptr;
    }
    if (type != want) {
      TypeError(std::string(name) + " must be " + want_name + ", got another typed array");
      return nullptr;
    }
    bool detached = false;
    napi_is_detached_arraybuffer(env_, buffer, &detached);
    if (detached || data == nullptr) {
      if (needed > 0 || detached) {
        RangeError(std::string(name) + " has been freed (its ArrayBuffer is detached)");
        return nullptr;
      }
    }
    if (static_cast<int64_t>(length) < needed) {
      RangeError(std::string(name) + " holds " + std::to_string(length) + " elements but the call needs " +
                 std::to_string(needed));
      return nullptr;
    }
    if (present != nullptr) *present = true;
    if (length_out != nullptr) *length_out = static_cast<int64_t>(length);
    return data;
  }

  // Product of two sizes, refusing results above what any tensor can hold.
  int64_t Product(const char* names, int64_t a, int64_t b) {
    if (!ok_) return 0;
    const int64_t p = a * b;  // both <= 2^31-1: no overflow in 64 bits
    if (p > kMaxSize) {
      RangeError(std::string(names) + " = " + std::to_string(p) + " elements is larger than any tensor can be");
      return 0;
    }
    return p;
  }

 private:
  napi_value Arg(size_t i) const { return i < info_.Length() ? static_cast<napi_value>(info_[i]) : env_.Undefined(); }

  std::string TypeNameOf(napi_value v) {
    napi_valuetype t;
    if (napi_typeof(env_, v, &t) != napi_ok) return "an unknown value";
    if (t == napi_number) {
      double d = 0;
      napi_get_value_double(env_, v, &d);
      return "the number " + NumberText(d);
    }
    if (t == napi_object) {
      bool b = false;
      if (napi_is_typedarray(env_, v, &b) == napi_ok && b) return "a typed array";
      if (napi_is_array(env_, v, &b) == napi_ok && b) return "an array";
    }
    return TypeName(t);
  }

  void Fail(const std::string& msg, bool type_error) {
    if (!ok_) return;
    ok_ = false;
    const std::string full = std::string(fn_) + ": " + msg;
    if (type_error) {
      Napi::TypeError::New(env_, full).ThrowAsJavaScriptException();
    } else {
      Napi::RangeError::New(env_, full).ThrowAsJavaScriptException();
    }
  }

  const Napi::CallbackInfo& info_;
  Napi::Env env_;
  const char* fn_;
  bool ok_ = true;
};

// True if [a, a+an) and [b, b+bn) (in elements of their own types) overlap. Empty ranges
// overlap nothing.
template <class A, class B>
bool Overlaps(const A* a, int64_t an, const B* b, int64_t bn) {
  if (a == nullptr || b == nullptr || an <= 0 || bn <= 0) return false;
  const uintptr_t a0 = reinterpret_cast<uintptr_t>(a), a1 = a0 + static_cast<uintptr_t>(an) * sizeof(A);
  const uintptr_t b0 = reinterpret_cast<uintptr_t>(b), b1 = b0 + static_cast<uintptr_t>(bn) * sizeof(B);
  return a0 < b1 && b0 < a1;
}

bool ParseIsa(const std::string& name, const std::vector<const KernelTable*>& supported, const KernelTable** out,
              std::string* error) {
  if (name == "auto" || name.empty()) {
    *out = supported.front();
    return true;
  }
  if (name != "generic" && name != "avx2" && name != "avx512") {
    *error = "unknown ISA \"" + name + "\" (expected auto, generic, avx2 or avx512)";
    return false;
  }
  for (const KernelTable* t : supported) {
    if (name == t->name) {
      *out = t;
      return true;
    }
  }
  std::string list;
  for (const KernelTable* t : supported) list += (list.empty() ? "" : ", ") + std::string(t->name);
  *error = "ISA \"" + name + "\" is not available on this CPU or build (built: " + BuiltIsas() +
           "; usable here: " + list + ")";
  return false;
}

// ---------------------------------------------------------------------------------------
// The addon
// ---------------------------------------------------------------------------------------

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) : env_(env) {
    registry_ = std::make_shared<TensorRegistry>();
    cpu_ = DetectCpu();
    supported_ = SupportedTables(cpu_);
    table_ = supported_.front();
    bf16_ = Bf16For(cpu_, table_);

    const char* isa_env = std::getenv("DENSETRAIN_ISA");
    if (isa_env != nullptr && *isa_env != '\0') {
      std::string error;
      if (!ParseIsa(isa_env, supported_, &table_, &error)) {
        Napi::Error::New(env, "DENSETRAIN_ISA: " + error).ThrowAsJavaScriptException();
        return;
      }
      bf16_ = Bf16For(cpu_, table_);
    }
    int threads = DefaultThreads();
    if (threads > kMaxThreads) threads = kMaxThreads;
    const char* threads_env = std::getenv("DENSETRAIN_THREADS");
    if (threads_env != nullptr && *threads_env != '\0') {
      char* end = nullptr;
      const long v = std::strtol(threads_env, &end, 10);
      if (end == threads_env || *end != '\0' || v < 1 || v > kMaxThreads) {
        Napi::RangeError::New(env, std::string("DENSETRAIN_THREADS must be an integer from 1 to ") +
                                       std::to_string(kMaxThreads) + ", got \"" + threads_env + "\"")
            .ThrowAsJavaScriptException();
        return;
      }
      threads = static_cast<int>(v);
    }
    pool_ = std::make_unique<ThreadPool>(threads);
    napi_add_env_cleanup_hook(env, &Addon::CleanupHook, this);
    hook_registered_ = true;

    DefineAddon(exports, {
        InstanceValue("abiVersion", Napi::Number::New(env, kAbiVersion), napi_enumerable),
        InstanceValue("maxThreads", Napi::Number::New(env, kMaxThreads), napi_enumerable),
        InstanceValue("maxLength", Napi::Number::New(env, static_cast<double>(kMaxLength)), napi_enumerable),
        InstanceMethod("isa", &Addon::Isa),
        InstanceMethod("supportedIsas", &Addon::SupportedIsas),
        InstanceMethod("setIsa", &Addon::SetIsa),
        InstanceMethod("bf16", &Addon::Bf16),
        InstanceMethod("threads", &Addon::Threads),
        InstanceMethod("setThreads", &Addon::SetThreads),
        InstanceMethod("blocking", &Addon::Blocking),
        InstanceMethod("alloc", &Addon::Alloc),
        InstanceMethod("free", &Addon::Free),
        InstanceMethod("isAllocated", &Addon::IsAllocated),
        InstanceMethod("allocatedBytes", &Addon::AllocatedBytes),
        InstanceMethod("gemm", &Addon::Gemm),
        InstanceMethod("biasActivation", &Addon::BiasActivation),
        InstanceMethod("denseForward", &Addon::DenseForward),
        InstanceMethod("activationBackward", &Addon::ActivationBackward),
        InstanceMethod("biasGrad", &Addon::BiasGrad),
        InstanceMethod("softmaxCrossEntropy", &Addon::SoftmaxCrossEntropy),
        InstanceMethod("softmax", &Addon::Softmax),
        InstanceMethod("sgdStep", &Addon::SgdStep),
        InstanceMethod("adamStep", &Addon::AdamStep),
        InstanceMethod("sumSquares", &Addon::SumSquares),
        InstanceMethod("gatherRows", &Addon::GatherRows),
        InstanceMethod("createTrainStep", &Addon::CreateTrainStep),
        InstanceMethod("runTrainStep", &Addon::RunTrainStep),
    });
  }

  ~Addon() {
    if (hook_registered_) napi_remove_env_cleanup_hook(env_, &Addon::CleanupHook, this);
    if (pool_) pool_->Shutdown();
  }

 private:
  // Environment teardown (process exit, worker thread end): stop the workers before anything
  // else goes away.
  static void CleanupHook(void* arg) {
    Addon* self = static_cast<Addon*>(arg);
    self->hook_registered_ = false;
    if (self->pool_) self->pool_->Shutdown();
  }

  Exec MakeExec(bool for_gemm) {
    if (for_gemm) EnsureWorkspace();
    Exec e;
    e.parallel = &ThreadPool::RunThunk;
    e.pool = pool_.get();
    e.threads = pool_->size();
    e.workspace = workspace_ptrs_.empty() ? nullptr : workspace_ptrs_.data();
    return e;
  }

  // One GEMM workspace per worker, sized for the largest supported table (so setIsa never
  // needs to grow it), allocated on the first GEMM.
  void EnsureWorkspace() {
    const size_t threads = static_cast<size_t>(pool_->size());
    size_t floats = 0;
    for (const KernelTable* t : supported_) {
      floats = t->workspace_floats > floats ? t->workspace_floats : floats;
      const Bf16Table* b = Bf16For(cpu_, t);
      if (b != nullptr && b->workspace_floats > floats) floats = b->workspace_floats;
    }
    if (workspace_.size() == threads && workspace_floats_ >= floats) return;
    workspace_.clear();
    workspace_ptrs_.clear();
    for (size_t w = 0; w < threads; ++w) {
      float* p = static_cast<float*>(AlignedAlloc(floats * sizeof(float)));
      workspace_.emplace_back(p);
      workspace_ptrs_.push_back(p);
    }
    workspace_floats_ = floats;
  }

  bool WorkspaceOk(Args& args) {
    for (float* p : workspace_ptrs_) {
      if (p == nullptr) {
        workspace_.clear();
        workspace_ptrs_.clear();
        args.RangeError("cannot allocate the GEMM packing workspace");
        return false;
      }
    }
    return true;
  }

  Napi::Value Isa(const Napi::CallbackInfo& info) { return Napi::String::New(info.Env(), table_->name); }

  Napi::Value SupportedIsas(const Napi::CallbackInfo& info) {
    Napi::Array out = Napi::Array::New(info.Env(), supported_.size());
    for (size_t i = 0; i < supported_.size(); ++i) out.Set(static_cast<uint32_t>(i), supported_[i]->name);
    return out;
  }

  Napi::Value SetIsa(const Napi::CallbackInfo& info) {
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsString()) {
      Napi::TypeError::New(env, "setIsa: name must be a string").ThrowAsJavaScriptException();
      return env.Undefined();
    }
    std::string error;
    const KernelTable* table = nullptr;
    if (!ParseIsa(info[0].As<Napi::String>().Utf8Value(), supported_, &table, &error)) {
      Napi::RangeError::New(env, "setIsa: " + error).ThrowAsJavaScriptException();
      return env.Undefined();
    }
    table_ = table;
    bf16_ = Bf16For(cpu_, table_);
    return Napi::String::New(env, table_->name);
  }

  // {available: true, kernels: "avx512-bf16"} or {available: false, reason: "..."}, and
  // amxCpu: whether the CPU reports AMX-BF16 (no AMX kernels are built either way).
  Napi::Value Bf16(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("available", bf16_ != nullptr);
    o.Set("amxCpu", cpu_.amx_bf16);
    if (bf16_ != nullptr) {
      o.Set("kernels", bf16_->name);
    } else {
      o.Set("reason", Bf16Reason(cpu_, table_));
    }
    return o;
  }

  // The optional trailing `bf16` argument of gemm / denseForward (absent or false: fp32). True
  // where this CPU and ISA have no bf16 GEMMs is a RangeError (never a silent fp32 or emulation).
  bool WantBf16(Args& args, size_t i) {
    if (!args.ok() || args.IsNullish(i)) return false;
    const bool want = args.Bool(i, "bf16");
    if (args.ok() && want && bf16_ == nullptr) args.RangeError("bf16 GEMMs are not available: " + Bf16Reason(cpu_, table_));
    return want;
  }

  Napi::Value Threads(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), pool_->size()); }

  Napi::Value SetThreads(const Napi::CallbackInfo& info) {
    Args args(info, "setThreads");
    const int64_t n = args.Size(0, "threads", 1, kMaxThreads);
    if (!args.ok()) return info.Env().Undefined();
    if (n != pool_->size()) {
      pool_.reset();  // joins the old workers
      pool_ = std::make_unique<ThreadPool>(static_cast<int>(n));
    }
    return info.Env().Undefined();
  }

  Napi::Value Blocking(const Napi::CallbackInfo& info) {
    Napi::Object o = Napi::Object::New(info.Env());
    o.Set("mr", table_->mr);
    o.Set("nr", table_->nr);
    o.Set("mc", table_->mc);
    o.Set("kc", table_->kc);
    o.Set("nc", table_->nc);
    return o;
  }

  Napi::Value Alloc(const Napi::CallbackInfo& info) {
    Args args(info, "alloc");
    napi_env env = info.Env();
    const int64_t length = args.Size(0, "length", 1, kMaxLength);
    if (!args.ok()) return info.Env().Undefined();
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
      args.RangeError("cannot allocate " + std::to_string(bytes) + " bytes");
      return info.Env().Undefined();
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
        args.RangeError("cannot allocate " + std::to_string(bytes) + " bytes");
        return info.Env().Undefined();
      }
      block->external = false;
      block->data = vdata;
      if (napi_add_finalizer(env, ab, nullptr, &FinalizeInternal, raw, nullptr) != napi_ok) {
        ClearPendingException(env);
        args.RangeError("cannot attach a finalizer to the tensor's memory");
        return info.Env().Undefined();
      }
      block.release();  // owned by the finalizer
    }
    // Registered as soon as a finalizer owns the block, so the finalizer's bookkeeping matches.
    registry_->live[raw->data] = raw;
    registry_->bytes += bytes;
    napi_value view;
    if (napi_create_typedarray(env, napi_float32_array, static_cast<size_t>(length), ab, 0, &view) != napi_ok) {
      ClearPendingException(env);
      args.RangeError("cannot create the Float32Array view");
      return info.Env().Undefined();
    }
    return Napi::Value(env, view);
  }

  static void ClearPendingException(napi_env env) {
    bool pending = false;
    if (napi_is_exception_pending(env, &pending) == napi_ok && pending) {
      napi_value ignored;
      napi_get_and_clear_last_exception(env, &ignored);
    }
  }

  // The live block of a whole tensor view allocated here, or null (nothing thrown).
  Block* Find(napi_env env, napi_value v, napi_value* buffer_out, bool* detached_out) {
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
    auto it = registry_->live.find(data);
    if (it == registry_->live.end() || offset != 0 || it->second->length != static_cast<int64_t>(length)) return nullptr;
    return it->second;
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    Args args(info, "free");
    napi_env env = info.Env();
    napi_value buffer = nullptr;
    bool detached = false;
    Block* block = info.Length() >= 1 ? Find(env, info[0], &buffer, &detached) : nullptr;
    if (block == nullptr) {
      if (detached) {
        args.RangeError("tensor has already been freed");
      } else {
        args.TypeError("tensor must be a whole Float32Array returned by alloc() of this addon");
      }
      return info.Env().Undefined();
    }
    // Detach first: every JS view of this memory becomes empty, then the memory can go.
    if (napi_detach_arraybuffer(env, buffer) != napi_ok) {
      ClearPendingException(env);
      args.RangeError("cannot detach the tensor's ArrayBuffer");
      return info.Env().Undefined();
    }
    registry_->live.erase(block->data);
    registry_->bytes -= block->bytes;
    if (block->external) TensorFree(block->data, block->bytes, block->mapped);
    block->released = true;  // the finalizer, when it runs, only deletes the Block
    return info.Env().Undefined();
  }

  Napi::Value IsAllocated(const Napi::CallbackInfo& info) {
    napi_value buffer = nullptr;
    bool detached = false;
    const bool live = info.Length() >= 1 && Find(info.Env(), info[0], &buffer, &detached) != nullptr;
    return Napi::Boolean::New(info.Env(), live);
  }

  Napi::Value AllocatedBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(registry_->bytes));
  }

  Napi::Value Gemm(const Napi::CallbackInfo& info) {
    Args args(info, "gemm");
    const bool ta = args.Bool(0, "transA");
    const bool tb = args.Bool(1, "transB");
    const int64_t m = args.Size(2, "m");
    const int64_t n = args.Size(3, "n");
    const int64_t k = args.Size(4, "k");
    const double alpha = args.Finite(5, "alpha");
    const int64_t mk = args.Product("m*k", m, k);
    const int64_t kn = args.Product("k*n", k, n);
    const int64_t mn = args.Product("m*n", m, n);
    const float* a = args.Floats(6, "a", mk);
    const float* b = args.Floats(7, "b", kn);
    const double beta = args.Finite(8, "beta");
    float* c = args.Floats(9, "c", mn);
    if (args.ok() && (Overlaps(c, mn, a, mk) || Overlaps(c, mn, b, kn))) {
      args.RangeError("c must not share memory with a or b");
    }
    const bool bf16 = WantBf16(args, 10);
    if (!args.ok()) return info.Env().Undefined();
    Exec exec = MakeExec(true);
    if (!WorkspaceOk(args)) return info.Env().Undefined();
    (bf16 ? bf16_->gemm : table_->gemm)(ta, tb, m, n, k, static_cast<float>(alpha), a, b, static_cast<float>(beta), c, exec);
    return info.Env().Undefined();
  }

  Napi::Value BiasActivation(const Napi::CallbackInfo& info) {
    Args args(info, "biasActivation");
    const int64_t rows = args.Size(0, "rows");
    const int64_t cols = args.Size(1, "cols");
    const int64_t size = args.Product("rows*cols", rows, cols);
    float* z = args.Floats(2, "z", size);
    const float* bias = args.Floats(3, "bias", cols, /*optional=*/true);
    const int64_t kind = args.Size(4, "kind", 0, kActCount - 1);
    const double alpha = args.Number(5, "alpha");
    float* h = args.Floats(6, "h", size);
    if (!args.ok()) return info.Env().Undefined();
    table_->bias_activation(rows, cols, z, bias, static_cast<int>(kind), alpha, h, MakeExec(false));
    return info.Env().Undefined();
  }

  // z = x * w^T + bias, h = act(z): the GEMM applies bias + activation to each tile it finishes.
  Napi::Value DenseForward(const Napi::CallbackInfo& info) {
    Args args(info, "denseForward");
    const int64_t rows = args.Size(0, "rows");
    const int64_t in_f = args.Size(1, "inF");
    const int64_t out_f = args.Size(2, "outF");
    const int64_t xs = args.Product("rows*inF", rows, in_f);
    const int64_t ws = args.Product("outF*inF", out_f, in_f);
    const int64_t zs = args.Product("rows*outF", rows, out_f);
    const float* x = args.Floats(3, "x", xs);
    const float* w = args.Floats(4, "w", ws);
    const float* bias = args.Floats(5, "bias", out_f, /*optional=*/true);
    const int64_t kind = args.Size(6, "kind", 0, kActCount - 1);
    const double alpha = args.Number(7, "alpha");
    float* z = args.Floats(8, "z", zs);
    float* h = args.Floats(9, "h", zs);
    if (args.ok()) {
      // x, w and bias are read while tiles of z and h are written (by several threads).
      if (Overlaps(z, zs, x, xs) || Overlaps(z, zs, w, ws) || Overlaps(z, zs, bias, out_f)) {
        args.RangeError("z must not share memory with x, w or bias");
      } else if (Overlaps(h, zs, x, xs) || Overlaps(h, zs, w, ws) || Overlaps(h, zs, bias, out_f)) {
        args.RangeError("h must not share memory with x, w or bias");
      } else if (h != z && Overlaps(h, zs, z, zs)) {
        args.RangeError("h must be z itself or not share memory with it");
      }
    }
    const bool bf16 = WantBf16(args, 10);
    if (!args.ok()) return info.Env().Undefined();
    Exec exec = MakeExec(true);
    if (!WorkspaceOk(args)) return info.Env().Undefined();
    (bf16 ? bf16_->dense_forward : table_->dense_forward)(rows, in_f, out_f, x, w, bias, static_cast<int>(kind), alpha,
                                                         z, h, exec);
    return info.Env().Undefined();
  }

  Napi::Value ActivationBackward(const Napi::CallbackInfo& info) {
    Args args(info, "activationBackward");
    const int64_t rows = args.Size(0, "rows");
    const int64_t cols = args.Size(1, "cols");
    const int64_t size = args.Product("rows*cols", rows, cols);
    const int64_t kind = args.Size(2, "kind", 0, kActCount - 1);
    const double alpha = args.Number(3, "alpha");
    const float* z = args.Floats(4, "z", size);
    const float* h = args.Floats(5, "h", size);
    const float* dh = args.Floats(6, "dh", size);
    float* dz = args.Floats(7, "dz", size);
    if (!args.ok()) return info.Env().Undefined();
    const double slope = table_->activation_backward(rows, cols, static_cast<int>(kind), alpha, z, h, dh, dz,
                                                     MakeExec(false));
    return Napi::Number::New(info.Env(), slope);
  }

  Napi::Value BiasGrad(const Napi::CallbackInfo& info) {
    Args args(info, "biasGrad");
    const int64_t rows = args.Size(0, "rows");
    const int64_t cols = args.Size(1, "cols");
    const int64_t size = args.Product("rows*cols", rows, cols);
    const float* dz = args.Floats(2, "dz", size);
    float* db = args.Floats(3, "db", cols);
    if (args.ok() && Overlaps(db, cols, dz, size)) args.RangeError("db must not share memory with dz");
    if (!args.ok()) return info.Env().Undefined();
    table_->bias_grad(rows, cols, dz, db, MakeExec(false));
    return info.Env().Undefined();
  }

  // Labels are validated here too (the TypeScript layer checks them first) so a direct call to
  // the addon can never index outside a row.
  Napi::Value SoftmaxCrossEntropy(const Napi::CallbackInfo& info) {
    Args args(info, "softmaxCrossEntropy");
    const int64_t rows = args.Size(0, "rows", 1);
    const int64_t cols = args.Size(1, "cols", 1);
    const int64_t size = args.Product("rows*cols", rows, cols);
    const float* logits = args.Floats(2, "logits", size);
    const float* labels = args.Floats(3, "labels", rows);
    float* probs = args.Floats(4, "probs", size);
    float* dlogits = args.Floats(5, "dlogits", size, /*optional=*/true);
    if (!args.ok()) return info.Env().Undefined();
    if (!LabelsOk(args, labels, rows, cols)) return info.Env().Undefined();
    if (Overlaps(probs, size, labels, rows) || Overlaps(dlogits, size, labels, rows)) {
      args.RangeError("probs and dlogits must not share memory with labels");
      return info.Env().Undefined();
    }
    const double loss = table_->softmax_xent(rows, cols, logits, labels, probs, dlogits, MakeExec(false));
    return Napi::Number::New(info.Env(), loss);
  }

  Napi::Value Softmax(const Napi::CallbackInfo& info) {
    Args args(info, "softmax");
    const int64_t rows = args.Size(0, "rows");
    const int64_t cols = args.Size(1, "cols");
    const int64_t size = args.Product("rows*cols", rows, cols);
    const float* logits = args.Floats(2, "logits", size);
    float* probs = args.Floats(3, "probs", size);
    if (!args.ok()) return info.Env().Undefined();
    table_->softmax(rows, cols, logits, probs, MakeExec(false));
    return info.Env().Undefined();
  }

  Napi::Value SgdStep(const Napi::CallbackInfo& info) {
    Args args(info, "sgdStep");
    const int64_t n = args.Size(0, "n");
    float* param = args.Floats(1, "param", n);
    const float* grad = args.Floats(2, "grad", n);
    bool has_velocity = false;
    float* velocity = args.Floats(3, "velocity", n, /*optional=*/true, &has_velocity);
    const double lr = args.Finite(4, "lr");
    const double momentum = args.Finite(5, "momentum");
    const bool nesterov = args.Bool(6, "nesterov");
    const double l2 = args.Finite(7, "l2");
    if (args.ok() && momentum != 0.0 && !has_velocity) args.TypeError("velocity is required when momentum != 0");
    if (args.ok() && (Overlaps(param, n, grad, n) || Overlaps(param, n, velocity, n) || Overlaps(grad, n, velocity, n))) {
      args.RangeError("param, grad and velocity must not share memory");
    }
    if (!args.ok()) return info.Env().Undefined();
    table_->sgd(n, param, grad, momentum != 0.0 ? velocity : nullptr, lr, momentum, nesterov, l2, MakeExec(false));
    return info.Env().Undefined();
  }

  Napi::Value AdamStep(const Napi::CallbackInfo& info) {
    Args args(info, "adamStep");
    const int64_t n = args.Size(0, "n");
    float* param = args.Floats(1, "param", n);
    const float* grad = args.Floats(2, "grad", n);
    float* m = args.Floats(3, "m", n);
    float* v = args.Floats(4, "v", n);
    const double lr = args.Finite(5, "lr");
    const double beta1 = args.Finite(6, "beta1");
    const double beta2 = args.Finite(7, "beta2");
    const double eps = args.Finite(8, "eps");
    const double l2 = args.Finite(9, "l2");
    const int64_t step = args.Size(10, "step", 1);
    if (args.ok() && !(beta1 >= 0.0 && beta1 < 1.0)) args.RangeError("beta1 must be in [0, 1), got " + NumberText(beta1));
    if (args.ok() && !(beta2 >= 0.0 && beta2 < 1.0)) args.RangeError("beta2 must be in [0, 1), got " + NumberText(beta2));
    if (args.ok()) {
      const float* ptrs[4] = {param, grad, m, v};
      for (int i = 0; i < 4; ++i) {
        for (int j = i + 1; j < 4; ++j) {
          if (Overlaps(ptrs[i], n, ptrs[j], n)) {
            args.RangeError("param, grad, m and v must not share memory");
            i = j = 4;
          }
        }
      }
    }
    if (!args.ok()) return info.Env().Undefined();
    table_->adam(n, param, grad, m, v, lr, beta1, beta2, eps, l2, static_cast<double>(step), MakeExec(false));
    return info.Env().Undefined();
  }

  Napi::Value SumSquares(const Napi::CallbackInfo& info) {
    Args args(info, "sumSquares");
    const int64_t n = args.Size(0, "n");
    const float* x = args.Floats(1, "x", n);
    if (!args.ok()) return info.Env().Undefined();
    return Napi::Number::New(info.Env(), table_->sum_squares(n, x, MakeExec(false)));
  }

  // Batch filling: out[k*features + p] = table[bytes[indices[start + k]*features + p]]. A table
  // lookup per byte, the same in every ISA (and bit-identical to the JavaScript backends), so it
  // lives here rather than in the kernel tables. One thread: a batch is ~100 KB of bytes, and a
  // second thread measured no faster inside training (its rows land in the other core's cache).
  // Prefetches the `f` bytes of one row, every cache line (locality: 3 = all levels, 2 = L2 and out).
  template <int kLocality>
  static void PrefetchRow(const uint8_t* row, int64_t f) {
    for (int64_t b = 0; b < f; b += 64) __builtin_prefetch(row + b, 0, kLocality);
    __builtin_prefetch(row + f - 1, 0, kLocality);
  }

  static void GatherRowsInto(int64_t count, int64_t f, const uint8_t* bytes, const uint32_t* indices,
                             const float* table, float* out) {
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

  Napi::Value GatherRows(const Napi::CallbackInfo& info) {
    Args args(info, "gatherRows");
    const int64_t count = args.Size(0, "count");
    const int64_t features = args.Size(1, "features", 1);
    int64_t bytes_length = 0, indices_length = 0;
    const uint8_t* bytes = args.Bytes(2, "bytes", 0, &bytes_length);
    const uint32_t* indices = args.Uint32s(3, "indices", 0, &indices_length);
    const int64_t start = args.Size(4, "start");
    const float* table = args.Floats(5, "table", 256);
    const int64_t size = args.Product("count*features", count, features);
    float* out = args.Floats(6, "out", size);
    if (args.ok() && start + count > indices_length) {
      args.RangeError("start + count (" + std::to_string(start + count) + ") exceeds indices.length (" +
                      std::to_string(indices_length) + ")");
    }
    if (!args.ok()) return info.Env().Undefined();
    const int64_t images = bytes_length / features;
    for (int64_t k = start; k < start + count; ++k) {
      if (static_cast<int64_t>(indices[k]) >= images) {
        args.RangeError("indices[" + std::to_string(k) + "] = " + std::to_string(indices[k]) + " is out of range for " +
                        std::to_string(images) + " images of " + std::to_string(features) + " bytes");
        return info.Env().Undefined();
      }
    }
    if (Overlaps(out, size, bytes, bytes_length) || Overlaps(out, size, indices, indices_length) ||
        Overlaps(out, size, table, 256)) {
      args.RangeError("out must not share memory with bytes, indices or table");
      return info.Env().Undefined();
    }
    if (size == 0) return info.Env().Undefined();
    GatherRowsInto(count, features, bytes, indices + start, table, out);
    // Batches are usually read in order over one index list (an epoch's shuffled order), so the
    // next `count` indices are the next batch: start fetching its rows now, and they arrive
    // while this batch is computed instead of stalling the next call. Prefetches never fault.
    const int64_t next_end = std::min(indices_length, start + 2 * count);
    for (int64_t k = start + count; k < next_end; ++k) {
      if (static_cast<int64_t>(indices[k]) < images) PrefetchRow<2>(bytes + static_cast<int64_t>(indices[k]) * features, features);
    }
    return info.Env().Undefined();
  }

  // Every labels[i] (i < rows) is a class index in [0, cols); else a RangeError naming the first bad one.
  static bool LabelsOk(Args& args, const float* labels, int64_t rows, int64_t cols) {
    for (int64_t i = 0; i < rows; ++i) {
      const float y = labels[i];
      if (!(y >= 0.0f) || !(y < static_cast<float>(cols)) || y != std::floor(y) || static_cast<int64_t>(y) >= cols) {
        args.RangeError("labels[" + std::to_string(i) + "] = " + NumberText(y) + " is not a class index in [0, " +
                        std::to_string(cols) + ")");
        return false;
      }
    }
    return true;
  }

  // ---- Fused training step -------------------------------------------------------------

  // A live tensor of at least `needed` elements from spec[key] (null/undefined allowed when
  // optional). Fails through args with a message naming `what`.
  PlannedTensor PlanTensor(Args& args, Napi::Object spec, const char* key, const std::string& what, int64_t needed,
                           bool optional = false) {
    PlannedTensor t;
    if (!args.ok()) return t;
    Napi::Value v = spec.Get(key);
    if (optional && (v.IsNull() || v.IsUndefined())) return t;
    napi_value buffer = nullptr;
    bool detached = false;
    Block* block = Find(args.env(), v, &buffer, &detached);
    if (block == nullptr) {
      args.TypeError(what + " must be a live tensor allocated by this addon");
      return t;
    }
    if (block->length < needed) {
      args.RangeError(what + " holds " + std::to_string(block->length) + " elements but the step needs " + std::to_string(needed));
      return t;
    }
    t.data = static_cast<float*>(block->data);
    t.id = block->id;
    t.length = block->length;
    return t;
  }

  int64_t PlanSize(Args& args, Napi::Object spec, const char* key, const std::string& what, int64_t lo, int64_t hi) {
    if (!args.ok()) return 0;
    Napi::Value v = spec.Get(key);
    const double d = v.IsNumber() ? v.As<Napi::Number>().DoubleValue() : std::nan("");
    if (!(d == std::floor(d)) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
      args.RangeError(what + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) + "]");
      return 0;
    }
    return static_cast<int64_t>(d);
  }

  bool StillLive(const PlannedTensor& t) const {
    if (t.data == nullptr) return true;
    auto it = registry_->live.find(t.data);
    return it != registry_->live.end() && it->second->id == t.id && !it->second->released;
  }

  // createTrainStep({capacity, bf16, input, labels, probs, dlogits, layers: [{inF, outF, kind, alpha,
  // w, b, gw, gb, z, h, dhIn, slope, slopeGrad}]}): checks every tensor once and returns the plan.
  Napi::Value CreateTrainStep(const Napi::CallbackInfo& info) {
    Args args(info, "createTrainStep");
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      args.TypeError("spec must be an object");
      return env.Undefined();
    }
    Napi::Object spec = info[0].As<Napi::Object>();
    auto plan = std::make_unique<StepPlan>();
    plan->capacity = PlanSize(args, spec, "capacity", "capacity", 1, kMaxSize);
    Napi::Value bf16 = spec.Get("bf16");
    plan->bf16 = bf16.IsBoolean() && bf16.As<Napi::Boolean>().Value();
    if (args.ok() && plan->bf16 && bf16_ == nullptr) args.RangeError("bf16 GEMMs are not available: " + Bf16Reason(cpu_, table_));
    Napi::Value layers_v = spec.Get("layers");
    if (args.ok() && !layers_v.IsArray()) args.TypeError("layers must be an array");
    if (!args.ok()) return env.Undefined();
    Napi::Array layers = layers_v.As<Napi::Array>();
    const int64_t cap = plan->capacity;
    if (layers.Length() < 1 || layers.Length() > 1024) {
      args.RangeError("layers must hold 1 to 1024 layers");
      return env.Undefined();
    }
    for (uint32_t i = 0; i < layers.Length() && args.ok(); ++i) {
      Napi::Value lv = layers.Get(i);
      if (!lv.IsObject()) {
        args.TypeError("layers[" + std::to_string(i) + "] must be an object");
        break;
      }
      Napi::Object l = lv.As<Napi::Object>();
      const std::string at = "layers[" + std::to_string(i) + "].";
      StepLayer s;
      s.in_f = PlanSize(args, l, "inF", at + "inF", 1, kMaxSize);
      s.out_f = PlanSize(args, l, "outF", at + "outF", 1, kMaxSize);
      s.kind = static_cast<int>(PlanSize(args, l, "kind", at + "kind", 0, kActCount - 1));
      Napi::Value alpha = l.Get("alpha");
      s.alpha = alpha.IsNumber() ? alpha.As<Napi::Number>().DoubleValue() : 0.0;
      if (args.ok() && !plan->layers.empty() && plan->layers.back().out_f != s.in_f) {
        args.RangeError(at + "inF must equal the previous layer's outF");
      }
      const int64_t wn = args.Product("outF*inF", s.out_f, s.in_f);
      const int64_t zn = args.Product("capacity*outF", cap, s.out_f);
      s.w = PlanTensor(args, l, "w", at + "w", wn);
      s.b = PlanTensor(args, l, "b", at + "b", s.out_f);
      s.gw = PlanTensor(args, l, "gw", at + "gw", wn);
      s.gb = PlanTensor(args, l, "gb", at + "gb", s.out_f);
      s.z = PlanTensor(args, l, "z", at + "z", zn);
      s.h = PlanTensor(args, l, "h", at + "h", zn);
      s.dh_in = PlanTensor(args, l, "dhIn", at + "dhIn", args.Product("capacity*inF", cap, s.in_f), /*optional=*/i == 0);
      const bool prelu = s.kind == kActPrelu;
      s.slope = PlanTensor(args, l, "slope", at + "slope", 1, !prelu);
      s.slope_grad = PlanTensor(args, l, "slopeGrad", at + "slopeGrad", 1, !prelu);
      plan->layers.push_back(s);
    }
    if (!args.ok()) return env.Undefined();
    plan->classes = plan->layers.back().out_f;
    plan->input = PlanTensor(args, spec, "input", "input", args.Product("capacity*inF", cap, plan->layers.front().in_f));
    plan->labels = PlanTensor(args, spec, "labels", "labels", cap);
    plan->probs = PlanTensor(args, spec, "probs", "probs", args.Product("capacity*classes", cap, plan->classes));
    plan->dlogits = PlanTensor(args, spec, "dlogits", "dlogits", args.Product("capacity*classes", cap, plan->classes));
    if (!args.ok()) return env.Undefined();
    // Written tensors must be distinct from each other and from everything read (a layer's h may
    // be its z, as for the output layer).
    std::vector<uint64_t> written, read;
    written.push_back(plan->probs.id);
    written.push_back(plan->dlogits.id);
    read.push_back(plan->input.id);
    read.push_back(plan->labels.id);
    for (const StepLayer& s : plan->layers) {
      for (const PlannedTensor* t : {&s.gw, &s.gb, &s.z, &s.dh_in, &s.slope_grad}) if (t->data) written.push_back(t->id);
      if (s.h.id != s.z.id) written.push_back(s.h.id);
      for (const PlannedTensor* t : {&s.w, &s.b, &s.slope}) if (t->data) read.push_back(t->id);
    }
    std::vector<uint64_t> all = written;
    std::sort(all.begin(), all.end());
    bool clash = std::adjacent_find(all.begin(), all.end()) != all.end();
    for (uint64_t r : read) clash = clash || std::binary_search(all.begin(), all.end(), r);
    if (clash) {
      args.RangeError("the step's written tensors (activations, gradients, probs, dlogits) must be distinct from each other and from its inputs and parameters");
      return env.Undefined();
    }
    StepPlan* raw = plan.release();
    return Napi::External<StepPlan>::New(env, raw, [](Napi::Env, StepPlan* p) { delete p; });
  }

  // runTrainStep(plan, count, l2): forward, loss and backward over the first `count` rows, exactly
  // the kernel calls of Mlp.computeGradients; returns the mean cross-entropy.
  Napi::Value RunTrainStep(const Napi::CallbackInfo& info) {
    Args args(info, "runTrainStep");
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsExternal()) {
      args.TypeError("plan must come from createTrainStep");
      return env.Undefined();
    }
    StepPlan& p = *info[0].As<Napi::External<StepPlan>>().Data();
    const int64_t count = args.Size(1, "count", 1, p.capacity);
    const double l2 = args.Finite(2, "l2");
    if (!args.ok()) return env.Undefined();
    bool live = StillLive(p.input) && StillLive(p.labels) && StillLive(p.probs) && StillLive(p.dlogits);
    for (const StepLayer& s : p.layers) {
      for (const PlannedTensor* t : {&s.w, &s.b, &s.gw, &s.gb, &s.z, &s.h, &s.dh_in, &s.slope, &s.slope_grad}) live = live && StillLive(*t);
    }
    if (!live) {
      args.RangeError("a tensor of this training step has been freed; create the step again");
      return env.Undefined();
    }
    if (p.bf16 && bf16_ == nullptr) {
      args.RangeError("bf16 GEMMs are not available: " + Bf16Reason(cpu_, table_));
      return env.Undefined();
    }
    const float* labels = p.labels.data;
    if (!LabelsOk(args, labels, count, p.classes)) return env.Undefined();
    Exec exec = MakeExec(true);
    if (!WorkspaceOk(args)) return env.Undefined();
    auto gemm = p.bf16 ? bf16_->gemm : table_->gemm;
    auto dense = p.bf16 ? bf16_->dense_forward : table_->dense_forward;
    auto alpha_of = [](const StepLayer& s) { return s.kind == kActPrelu ? static_cast<double>(s.slope.data[0]) : s.alpha; };
    const size_t nl = p.layers.size();
    const float* a = p.input.data;
    for (const StepLayer& s : p.layers) {
      dense(count, s.in_f, s.out_f, a, s.w.data, s.b.data, s.kind, alpha_of(s), s.z.data, s.h.data, exec);
      a = s.h.data;
    }
    const StepLayer& out = p.layers.back();
    const double loss = table_->softmax_xent(count, p.classes, out.z.data, labels, p.probs.data, p.dlogits.data, exec);
    for (size_t li = nl; li-- > 0;) {
      const StepLayer& s = p.layers[li];
      float* dz = li + 1 == nl ? p.dlogits.data : p.layers[li + 1].dh_in.data;
      if (li + 1 != nl) {
        const double slope = table_->activation_backward(count, s.out_f, s.kind, alpha_of(s), s.z.data, s.h.data, dz, dz, exec);
        if (s.kind == kActPrelu) s.slope_grad.data[0] = static_cast<float>(slope);
      }
      const float* x = li == 0 ? p.input.data : p.layers[li - 1].h.data;
      // dW = dZ^T X + l2 W in one gemm: start from a copy of W and let beta = l2 scale it.
      if (l2 != 0.0) std::memcpy(s.gw.data, s.w.data, sizeof(float) * static_cast<size_t>(s.out_f * s.in_f));
      gemm(true, false, s.out_f, s.in_f, count, 1.0f, dz, x, static_cast<float>(l2), s.gw.data, exec);
      table_->bias_grad(count, s.out_f, dz, s.gb.data, exec);
      if (li > 0) gemm(false, false, count, s.in_f, s.out_f, 1.0f, dz, s.w.data, 0.0f, s.dh_in.data, exec);
    }
    return Napi::Number::New(env, loss);
  }

  napi_env env_;
  std::shared_ptr<TensorRegistry> registry_;
  CpuFeatures cpu_;
  std::vector<const KernelTable*> supported_;
  const KernelTable* table_ = nullptr;
  const Bf16Table* bf16_ = nullptr;  // bf16 GEMMs for table_ on this CPU, or null
  std::unique_ptr<ThreadPool> pool_;
  bool hook_registered_ = false;
  std::vector<AlignedFloats> workspace_;
  std::vector<float*> workspace_ptrs_;
  size_t workspace_floats_ = 0;
};

}  // namespace
}  // namespace densetrain

#ifndef NODE_GYP_MODULE_NAME
#define NODE_GYP_MODULE_NAME densetrain
#endif
using DensetrainAddon = densetrain::Addon;
NODE_API_ADDON(DensetrainAddon)
