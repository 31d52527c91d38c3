// The fused training step (see train_step.h).
#include "train_step.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <string>

namespace densetrain {
namespace {

// optional). Fails through args with a message naming `what`.
PlannedTensor PlanTensor(const TensorStore& store, Args& args, Napi::Object spec, const char* key,
                         const std::string& what, int64_t needed, bool optional = false) {
  PlannedTensor t;
  if (!args.ok()) return t;
  Napi::Value v = spec.Get(key);
  if (optional && (v.IsNull() || v.IsUndefined())) return t;
  bool detached = false;
  Block* block = store.Find(args.env(), v, &detached);
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

// spec.sgd: absent (or undefined) for no update, else {momentum in [0, 1), nesterov, l2 finite}.
StepSgd PlanSgd(Args& args, Napi::Object spec) {
  StepSgd sgd;
  Napi::Value v = spec.Get("sgd");
  if (v.IsUndefined() || v.IsNull()) return sgd;
  if (!v.IsObject()) {
    args.TypeError("sgd must be an object");
    return sgd;
  }
  Napi::Object o = v.As<Napi::Object>();
  Napi::Value momentum = o.Get("momentum"), nesterov = o.Get("nesterov"), l2 = o.Get("l2");
  sgd.momentum = momentum.IsNumber() ? momentum.As<Napi::Number>().DoubleValue() : std::nan("");
  sgd.l2 = l2.IsNumber() ? l2.As<Napi::Number>().DoubleValue() : std::nan("");
  if (!(sgd.momentum >= 0.0 && sgd.momentum < 1.0)) {
    args.RangeError("sgd.momentum must be a number in [0, 1)");
  } else if (!std::isfinite(sgd.l2)) {
    args.RangeError("sgd.l2 must be a finite number");
  } else if (!nesterov.IsBoolean()) {
    args.TypeError("sgd.nesterov must be a boolean");
  } else {
    sgd.nesterov = nesterov.As<Napi::Boolean>().Value();
    sgd.enabled = true;
  }
  return sgd;
}

bool StillLive(const TensorStore& store, const PlannedTensor& t) {
  return t.data == nullptr || store.StillLive(t.data, t.id);
}

// One layer's sizes and tensors, each checked against the store and its expected length
// (cap = rows of the largest batch); velocities only where SGD with momentum is fused in.
StepLayer PlanLayer(Args& args, Napi::Object l, uint32_t i, const StepPlan& plan, const TensorStore& store) {
  const int64_t cap = plan.capacity;
  const std::string at = "layers[" + std::to_string(i) + "].";
  StepLayer s;
  s.in_f = PlanSize(args, l, "inF", at + "inF", 1, kMaxSize);
  s.out_f = PlanSize(args, l, "outF", at + "outF", 1, kMaxSize);
  s.kind = static_cast<int>(PlanSize(args, l, "kind", at + "kind", 0, kActCount - 1));
  Napi::Value alpha = l.Get("alpha");
  s.alpha = alpha.IsNumber() ? alpha.As<Napi::Number>().DoubleValue() : 0.0;
  const int64_t wn = args.Product("outF*inF", s.out_f, s.in_f);
  const int64_t zn = args.Product("capacity*outF", cap, s.out_f);
  s.w = PlanTensor(store, args, l, "w", at + "w", wn);
  s.b = PlanTensor(store, args, l, "b", at + "b", s.out_f);
  s.gw = PlanTensor(store, args, l, "gw", at + "gw", wn);
  s.gb = PlanTensor(store, args, l, "gb", at + "gb", s.out_f);
  s.z = PlanTensor(store, args, l, "z", at + "z", zn);
  s.h = PlanTensor(store, args, l, "h", at + "h", zn);
  s.dh_in = PlanTensor(store, args, l, "dhIn", at + "dhIn", args.Product("capacity*inF", cap, s.in_f), /*optional=*/i == 0);
  const bool prelu = s.kind == kActPrelu;
  s.slope = PlanTensor(store, args, l, "slope", at + "slope", 1, !prelu);
  s.slope_grad = PlanTensor(store, args, l, "slopeGrad", at + "slopeGrad", 1, !prelu);
  const bool velocities = plan.sgd.enabled && plan.sgd.momentum != 0.0;
  s.vw = PlanTensor(store, args, l, "vw", at + "vw", wn, !velocities);
  s.vb = PlanTensor(store, args, l, "vb", at + "vb", s.out_f, !velocities);
  s.vslope = PlanTensor(store, args, l, "vslope", at + "vslope", 1, !(velocities && prelu));
  return s;
}

// Written tensors must be distinct from each other and from everything read (a layer's h may
// be its z, as for the output layer).
bool WritesAlias(const StepPlan& plan) {
  std::vector<uint64_t> written, read;
  written.push_back(plan.probs.id);
  written.push_back(plan.dlogits.id);
  read.push_back(plan.input.id);
  read.push_back(plan.labels.id);
  for (const StepLayer& s : plan.layers) {
    for (const PlannedTensor* t : {&s.gw, &s.gb, &s.z, &s.dh_in, &s.slope_grad, &s.vw, &s.vb, &s.vslope}) {
      if (t->data) written.push_back(t->id);
    }
    if (s.h.id != s.z.id) written.push_back(s.h.id);
    for (const PlannedTensor* t : {&s.w, &s.b, &s.slope}) if (t->data) read.push_back(t->id);
  }
  std::sort(written.begin(), written.end());
  bool clash = std::adjacent_find(written.begin(), written.end()) != written.end();
  for (uint64_t r : read) clash = clash || std::binary_search(written.begin(), written.end(), r);
  return clash;
}

}  // namespace

std::unique_ptr<StepPlan> PlanTrainStep(Args& args, Napi::Object spec, const TensorStore& store,
                                        const std::string& bf16_missing) {
  auto plan = std::make_unique<StepPlan>();
  plan->capacity = PlanSize(args, spec, "capacity", "capacity", 1, kMaxSize);
  Napi::Value bf16 = spec.Get("bf16");
  plan->bf16 = bf16.IsBoolean() && bf16.As<Napi::Boolean>().Value();
  if (args.ok() && plan->bf16 && !bf16_missing.empty()) args.RangeError("bf16 GEMMs are not available: " + bf16_missing);
  if (args.ok()) plan->sgd = PlanSgd(args, spec);
  Napi::Value layers_v = spec.Get("layers");
  if (args.ok() && !layers_v.IsArray()) args.TypeError("layers must be an array");
  if (!args.ok()) return nullptr;
  Napi::Array layers = layers_v.As<Napi::Array>();
  const int64_t cap = plan->capacity;
  if (layers.Length() < 1 || layers.Length() > 1024) {
    args.RangeError("layers must hold 1 to 1024 layers");
    return nullptr;
  }
  for (uint32_t i = 0; i < layers.Length() && args.ok(); ++i) {
    Napi::Value lv = layers.Get(i);
    if (!lv.IsObject()) {
      args.TypeError("layers[" + std::to_string(i) + "] must be an object");
      break;
    }
    StepLayer s = PlanLayer(args, lv.As<Napi::Object>(), i, *plan, store);
    if (args.ok() && !plan->layers.empty() && plan->layers.back().out_f != s.in_f) {
      args.RangeError("layers[" + std::to_string(i) + "].inF must equal the previous layer's outF");
    }
    plan->layers.push_back(s);
  }
  if (!args.ok()) return nullptr;
  plan->classes = plan->layers.back().out_f;
  plan->input = PlanTensor(store, args, spec, "input", "input", args.Product("capacity*inF", cap, plan->layers.front().in_f));
  plan->labels = PlanTensor(store, args, spec, "labels", "labels", cap);
  plan->probs = PlanTensor(store, args, spec, "probs", "probs", args.Product("capacity*classes", cap, plan->classes));
  plan->dlogits = PlanTensor(store, args, spec, "dlogits", "dlogits", args.Product("capacity*classes", cap, plan->classes));
  if (!args.ok()) return nullptr;
  if (WritesAlias(*plan)) {
    args.RangeError("the step's written tensors (activations, gradients, probs, dlogits) must be distinct from each other and from its inputs and parameters");
    return nullptr;
  }
  return plan;
}

bool PlanStillLive(const StepPlan& p, const TensorStore& store) {
  bool live = true;
  for (const PlannedTensor* t : {&p.input, &p.labels, &p.probs, &p.dlogits}) live = live && StillLive(store, *t);
  for (const StepLayer& s : p.layers) {
    for (const PlannedTensor* t : {&s.w, &s.b, &s.gw, &s.gb, &s.z, &s.h, &s.dh_in, &s.slope, &s.slope_grad, &s.vw, &s.vb,
                                   &s.vslope}) {
      live = live && StillLive(store, *t);
    }
  }
  return live;
}

double RunTrainStep(const StepPlan& p, int64_t count, double l2, const double* lr, const StepKernels& kernels,
                    const Exec& exec) {
  const KernelTable& table = *kernels.table;
  auto gemm = p.bf16 ? kernels.bf16->gemm : table.gemm;
  auto dense = p.bf16 ? kernels.bf16->dense_forward : table.dense_forward;
  auto alpha_of = [](const StepLayer& s) { return s.kind == kActPrelu ? static_cast<double>(s.slope.data[0]) : s.alpha; };
  const size_t nl = p.layers.size();
  const float* a = p.input.data;
  for (const StepLayer& s : p.layers) {
    dense(count, s.in_f, s.out_f, a, s.w.data, s.b.data, s.kind, alpha_of(s), s.z.data, s.h.data, exec);
    a = s.h.data;
  }
  const StepLayer& out = p.layers.back();
  const double loss = table.softmax_xent(count, p.classes, out.z.data, p.labels.data, p.probs.data, p.dlogits.data, exec);
  const bool update = lr != nullptr && p.sgd.enabled && std::isfinite(loss);
  for (size_t li = nl; li-- > 0;) {
    const StepLayer& s = p.layers[li];
    float* dz = li + 1 == nl ? p.dlogits.data : p.layers[li + 1].dh_in.data;
    if (li + 1 != nl) {
      const double slope = table.activation_backward(count, s.out_f, s.kind, alpha_of(s), s.z.data, s.h.data, dz, dz, exec);
      if (s.kind == kActPrelu) s.slope_grad.data[0] = static_cast<float>(slope);
    }
    const float* x = li == 0 ? p.input.data : p.layers[li - 1].h.data;
    // dW = dZ^T X + l2 W in one gemm: start from a copy of W and let beta = l2 scale it.
    if (l2 != 0.0) std::memcpy(s.gw.data, s.w.data, sizeof(float) * static_cast<size_t>(s.out_f * s.in_f));
    gemm(true, false, s.out_f, s.in_f, count, 1.0f, dz, x, static_cast<float>(l2), s.gw.data, exec);
    table.bias_grad(count, s.out_f, dz, s.gb.data, exec);
    if (li > 0) gemm(false, false, count, s.in_f, s.out_f, 1.0f, dz, s.w.data, 0.0f, s.dh_in.data, exec);
    // This layer's parameters are not read again in this step: update them now, while their
    // gradients are in cache (a non-finite loss updates nothing, like the trainer, which stops
    // before its optimizer step).
    if (update) {
      const StepSgd& o = p.sgd;
      auto velocity = [&o](const PlannedTensor& v) { return o.momentum != 0.0 ? v.data : nullptr; };
      table.sgd(s.out_f * s.in_f, s.w.data, s.gw.data, velocity(s.vw), *lr, o.momentum, o.nesterov, o.l2, exec);
      table.sgd(s.out_f, s.b.data, s.gb.data, velocity(s.vb), *lr, o.momentum, o.nesterov, 0.0, exec);
      if (s.kind == kActPrelu) {
        table.sgd(1, s.slope.data, s.slope_grad.data, velocity(s.vslope), *lr, o.momentum, o.nesterov, 0.0, exec);
      }
    }
  }
  return loss;
}

}  // namespace densetrain
