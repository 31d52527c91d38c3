// The Node-API layer of the densetrain native backend: the addon object JavaScript sees. It
// holds the chosen kernel tables (cpu.h), the thread pool, the GEMM workspaces and the tensors
// (tensor_memory.h), reads and checks every entry point's arguments (args.h) and calls the
// kernels; the fused training step lives in train_step.h and batch filling in gather.h.
//
// Built with NAPI_DISABLE_CPP_EXCEPTIONS: nothing throws C++ exceptions; every bad argument
// becomes a JS TypeError or RangeError naming the argument, raised before any memory is touched.
#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "cpu.h"
#include "gather.h"
#include "kernel_api.h"
#include "tensor_memory.h"
#include "thread_pool.h"
#include "train_step.h"

namespace densetrain {
namespace {

constexpr int kAbiVersion = 3;
constexpr int kMaxThreads = 256;

class Addon : public Napi::Addon<Addon> {
 public:
  Addon(Napi::Env env, Napi::Object exports) : env_(env) {
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

    Napi::Object activation_codes = Napi::Object::New(env);
    for (int kind = 0; kind < kActCount; ++kind) activation_codes.Set(kActivationNames[kind], kind);
    activation_codes.Freeze();

    DefineAddon(exports, {
        InstanceValue("abiVersion", Napi::Number::New(env, kAbiVersion), napi_enumerable),
        InstanceValue("maxThreads", Napi::Number::New(env, kMaxThreads), napi_enumerable),
        InstanceValue("maxLength", Napi::Number::New(env, static_cast<double>(kMaxLength)), napi_enumerable),
        InstanceValue("activationCodes", activation_codes, napi_enumerable),
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
    const int64_t length = args.Size(0, "length", 1, kMaxLength);
    if (!args.ok()) return info.Env().Undefined();
    std::string error;
    napi_value view = store_.Alloc(info.Env(), length, &error);
    if (view == nullptr) {
      args.RangeError(error);
      return info.Env().Undefined();
    }
    return Napi::Value(info.Env(), view);
  }

  Napi::Value Free(const Napi::CallbackInfo& info) {
    Args args(info, "free");
    using R = TensorStore::FreeResult;
    const R r = info.Length() >= 1 ? store_.Free(info.Env(), info[0]) : R::kNotATensor;
    if (r == R::kAlreadyFreed) args.RangeError("tensor has already been freed");
    if (r == R::kNotATensor) args.TypeError("tensor must be a whole Float32Array returned by alloc() of this addon");
    if (r == R::kDetachFailed) args.RangeError("cannot detach the tensor's ArrayBuffer");
    return info.Env().Undefined();
  }

  Napi::Value IsAllocated(const Napi::CallbackInfo& info) {
    bool detached = false;
    const bool live = info.Length() >= 1 && store_.Find(info.Env(), info[0], &detached) != nullptr;
    return Napi::Boolean::New(info.Env(), live);
  }

  Napi::Value AllocatedBytes(const Napi::CallbackInfo& info) {
    return Napi::Number::New(info.Env(), static_cast<double>(store_.bytes()));
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

  // Batch filling (gather.h): out[k*features + p] = table[bytes[indices[start + k]*features + p]].
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
    GatherRowsInto(count, features, bytes, indices + start, table, out, MakeExec(false));
    // Batches are usually read in order over one index list (an epoch's shuffled order), so the
    // next `count` indices are the next batch: start fetching its rows now, and they arrive
    // while this batch is computed instead of stalling the next call.
    const int64_t next_end = std::min(indices_length, start + 2 * count);
    PrefetchRows(next_end - (start + count), features, bytes, indices + start + count, images);
    return info.Env().Undefined();
  }

  // ---- Fused training step (train_step.h) ----------------------------------------------

  // Why bf16 GEMMs are missing here, or empty when they exist.
  std::string Bf16Missing() const { return bf16_ != nullptr ? std::string() : Bf16Reason(cpu_, table_); }

  // createTrainStep(spec): checks every tensor once and returns the plan (see PlanTrainStep).
  Napi::Value CreateTrainStep(const Napi::CallbackInfo& info) {
    Args args(info, "createTrainStep");
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsObject()) {
      args.TypeError("spec must be an object");
      return env.Undefined();
    }
    std::unique_ptr<StepPlan> plan = PlanTrainStep(args, info[0].As<Napi::Object>(), store_, Bf16Missing());
    if (plan == nullptr) return env.Undefined();
    return Napi::External<StepPlan>::New(env, plan.release(), [](Napi::Env, StepPlan* p) { delete p; });
  }

  // runTrainStep(plan, count, l2[, lr]): forward, loss and backward over the first `count` rows,
  // exactly the kernel calls of Mlp.computeGradients, then (with lr) the plan's SGD update;
  // returns the mean cross-entropy.
  Napi::Value RunTrainStep(const Napi::CallbackInfo& info) {
    Args args(info, "runTrainStep");
    Napi::Env env = info.Env();
    if (info.Length() < 1 || !info[0].IsExternal()) {
      args.TypeError("plan must come from createTrainStep");
      return env.Undefined();
    }
    const StepPlan& p = *info[0].As<Napi::External<StepPlan>>().Data();
    const int64_t count = args.Size(1, "count", 1, p.capacity);
    const double l2 = args.Finite(2, "l2");
    // Optional learning rate: then the step also applies the plan's SGD update.
    const bool has_lr = args.ok() && !args.IsNullish(3);
    const double lr = has_lr ? args.Finite(3, "lr") : 0.0;
    if (args.ok() && has_lr && !p.sgd.enabled) args.TypeError("lr given, but the plan was created without sgd");
    if (!args.ok()) return env.Undefined();
    if (!PlanStillLive(p, store_)) {
      args.RangeError("a tensor of this training step has been freed; create the step again");
      return env.Undefined();
    }
    if (p.bf16 && bf16_ == nullptr) {
      args.RangeError("bf16 GEMMs are not available: " + Bf16Reason(cpu_, table_));
      return env.Undefined();
    }
    if (!LabelsOk(args, p.labels.data, count, p.classes)) return env.Undefined();
    Exec exec = MakeExec(true);
    if (!WorkspaceOk(args)) return env.Undefined();
    const double loss = densetrain::RunTrainStep(p, count, l2, has_lr ? &lr : nullptr, StepKernels{table_, bf16_}, exec);
    return Napi::Number::New(env, loss);
  }

  napi_env env_;
  TensorStore store_;
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
