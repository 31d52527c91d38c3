// The fused training step: planned once per model (createTrainStep) and run per batch
// (runTrainStep): forward, softmax cross-entropy and backward in one call, with the same kernel
// calls in the same order as the model's composed step (src/model/mlp.ts), so the results are
// the same bits. Tensors are kept as (data, id, length): every run first checks each is still the
// live allocation it was when planned, so a freed (or freed and reallocated) tensor is never touched.
#ifndef DENSETRAIN_TRAIN_STEP_H_
#define DENSETRAIN_TRAIN_STEP_H_

#include <napi.h>

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "kernel_api.h"
#include "tensor_memory.h"

namespace densetrain {

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
  PlannedTensor vw, vb, vslope;  // SGD velocities (plans with sgd and momentum != 0)
};
// SGD applied by the step itself (TrainStepSgd in src/kernels/types.ts).
struct StepSgd {
  bool enabled = false;
  double momentum = 0;
  bool nesterov = false;
  double l2 = 0;  // weight decay of the weights (biases and slopes: 0)
};
struct StepPlan {
  int64_t capacity = 0, classes = 0;
  bool bf16 = false;
  PlannedTensor input, labels, probs, dlogits;
  std::vector<StepLayer> layers;
  StepSgd sgd;
};

// Reads and checks spec = {capacity, bf16, input, labels, probs, dlogits, layers: [{inF, outF,
// kind, alpha, w, b, gw, gb, z, h, dhIn, slope, slopeGrad}]}: every tensor a live tensor of
// `store`, large enough, written ones distinct from each other and from everything read. Null
// (with the error raised through args) when anything is wrong. bf16_missing: why there are no
// bf16 GEMMs here (empty when there are), refused when the spec asks for bf16.
std::unique_ptr<StepPlan> PlanTrainStep(Args& args, Napi::Object spec, const TensorStore& store,
                                        const std::string& bf16_missing);

// Whether every tensor of the plan is still the allocation it was when planned.
bool PlanStillLive(const StepPlan& plan, const TensorStore& store);

// The kernels a step runs: the fp32 table, and the bf16 GEMMs when the plan asks for bf16.
struct StepKernels {
  const KernelTable* table;
  const Bf16Table* bf16;  // non-null when plan.bf16
};

// Forward, loss and backward over the first `count` rows (1 <= count <= capacity, labels
// checked by the caller): exactly the kernel calls of Mlp.computeGradients. Returns the mean
// cross-entropy. With `lr` (non-null; the plan has sgd) and a finite loss, each layer's
// parameters are then updated by the sgd kernel as soon as that layer's backward pass no longer
// needs them: the same calls, and so the same bits, as the Sgd optimizer's step after the step.
double RunTrainStep(const StepPlan& plan, int64_t count, double l2, const double* lr, const StepKernels& kernels,
                    const Exec& exec);

}  // namespace densetrain

#endif  // DENSETRAIN_TRAIN_STEP_H_
