// Reading the arguments of one addon call: every bad argument becomes a JS TypeError or
// RangeError naming the function and the argument, raised before any memory is touched.
// Built with NAPI_DISABLE_CPP_EXCEPTIONS: nothing throws C++ exceptions. These checks repeat
// (defence in depth) what src/kernels/checks.ts does for users; they exist for callers that
// reach the raw addon directly.
#ifndef DENSETRAIN_ARGS_H_
#define DENSETRAIN_ARGS_H_

#include <napi.h>

#include <cstdint>
#include <string>

namespace densetrain {

constexpr int64_t kMaxSize = 0x7fffffff;  // largest size argument

// A number as JavaScript would print it (integers without a fraction, NaN, Infinity).
std::string NumberText(double v);

// Reads the arguments of one call. The first failure throws a JS error and makes every later
// read return a harmless default; callers check ok() before touching memory.
class Args {
 public:
  Args(const Napi::CallbackInfo& info, const char* fn) : info_(info), env_(info.Env()), fn_(fn) {}

  bool ok() const { return ok_; }
  napi_env env() const { return env_; }

  void TypeError(const std::string& msg) { Fail(msg, true); }
  void RangeError(const std::string& msg) { Fail(msg, false); }

  double Number(size_t i, const char* name);
  double Finite(size_t i, const char* name);
  int64_t Size(size_t i, const char* name, int64_t lo = 0, int64_t hi = kMaxSize);
  bool Bool(size_t i, const char* name);
  bool IsNullish(size_t i);

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
              bool optional, bool* present, int64_t* length_out);

  // Product of two sizes, refusing results above what any tensor can hold.
  int64_t Product(const char* names, int64_t a, int64_t b);

 private:
  napi_value Arg(size_t i) const { return i < info_.Length() ? static_cast<napi_value>(info_[i]) : env_.Undefined(); }
  std::string TypeNameOf(napi_value v);
  void Fail(const std::string& msg, bool type_error);

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

// Every labels[i] (i < rows) is a class index in [0, cols); else a RangeError naming the first bad one.
bool LabelsOk(Args& args, const float* labels, int64_t rows, int64_t cols);

}  // namespace densetrain

#endif  // DENSETRAIN_ARGS_H_
