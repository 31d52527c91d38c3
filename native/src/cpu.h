// What this CPU can run: feature detection, the default thread count, and the choice of kernel
// table (fp32 and bf16) by CPU and by name (DENSETRAIN_ISA, setIsa). Compiled with the baseline
// flags only: nothing here may execute an instruction the CPU has not been checked for.
#ifndef DENSETRAIN_CPU_H_
#define DENSETRAIN_CPU_H_

#include <string>
#include <vector>

#include "kernel_api.h"

namespace densetrain {

struct CpuFeatures {
  bool avx2_fma = false;
  bool avx512 = false;      // F + DQ + BW + VL, with OS support for the zmm state
  bool avx512bf16 = false;  // AVX512-BF16 (vdpbf16ps), on top of avx512
  bool amx_bf16 = false;    // AMX-BF16 reported (no kernels for it are built: see Bf16Reason)
};

CpuFeatures DetectCpu();

// Default pool size: the hardware threads, or fewer if this process may only run on fewer
// (CPU affinity, e.g. taskset or a cpuset-limited container).
int DefaultThreads();

// Tables this CPU can run, from best to worst.
std::vector<const KernelTable*> SupportedTables(const CpuFeatures& cpu);

// The bf16 GEMMs to use with `table`, or null (then Bf16Reason says why).
const Bf16Table* Bf16For(const CpuFeatures& cpu, const KernelTable* table);

// Why there are no bf16 GEMMs with `table`, for users (shown by `densetrain info` and training).
std::string Bf16Reason(const CpuFeatures& cpu, const KernelTable* table);

// "auto" (or empty) picks the best supported table; otherwise the named one, if supported.
// False with a message for users in *error when the name is unknown or not usable here.
bool ParseIsa(const std::string& name, const std::vector<const KernelTable*>& supported, const KernelTable** out,
              std::string* error);

}  // namespace densetrain

#endif  // DENSETRAIN_CPU_H_
