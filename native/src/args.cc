// Argument reading for the addon's entry points (see args.h).
#include "args.h"

#include <cmath>
#include <cstdio>

namespace densetrain {
namespace {

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

}  // namespace

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

double Args::Number(size_t i, const char* name) {
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

double Args::Finite(size_t i, const char* name) {
  const double d = Number(i, name);
  if (ok_ && !std::isfinite(d)) RangeError(std::string(name) + " must be finite, got " + NumberText(d));
  return ok_ ? d : 0;
}

int64_t Args::Size(size_t i, const char* name, int64_t lo, int64_t hi) {
  const double d = Number(i, name);
  if (!ok_) return 0;
  if (!(d == std::floor(d)) || d < static_cast<double>(lo) || d > static_cast<double>(hi)) {
    RangeError(std::string(name) + " must be an integer in [" + std::to_string(lo) + ", " + std::to_string(hi) +
               "], got " + NumberText(d));
    return 0;
  }
  return static_cast<int64_t>(d);
}

bool Args::Bool(size_t i, const char* name) {
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

bool Args::IsNullish(size_t i) {
  napi_value v = Arg(i);
  napi_valuetype t;
  return napi_typeof(env_, v, &t) == napi_ok && (t == napi_null || t == napi_undefined);
}

void* Args::Typed(size_t i, const char* name, napi_typedarray_type want, const char* want_name, int64_t needed,
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

int64_t Args::Product(const char* names, int64_t a, int64_t b) {
  if (!ok_) return 0;
  const int64_t p = a * b;  // both <= 2^31-1: no overflow in 64 bits
  if (p > kMaxSize) {
    RangeError(std::string(names) + " = " + std::to_string(p) + " elements is larger than any tensor can be");
    return 0;
  }
  return p;
}

std::string Args::TypeNameOf(napi_value v) {
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

void Args::Fail(const std::string& msg, bool type_error) {
  if (!ok_) return;
  ok_ = false;
  const std::string full = std::string(fn_) + ": " + msg;
  if (type_error) {
    Napi::TypeError::New(env_, full).ThrowAsJavaScriptException();
  } else {
    Napi::RangeError::New(env_, full).ThrowAsJavaScriptException();
  }
}

bool LabelsOk(Args& args, const float* labels, int64_t rows, int64_t cols) {
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

}  // namespace densetrain
