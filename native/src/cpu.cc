// CPU feature detection and kernel-table choice (see cpu.h).
#include "cpu.h"

#include <thread>

#if defined(__linux__)
#include <sched.h>
#endif
#if defined(DENSETRAIN_X86) && defined(_MSC_VER)
#include <immintrin.h>
#include <intrin.h>
#endif

namespace densetrain {
namespace {

// Every table this build contains (supported or not), for error messages.
std::string BuiltIsas() {
#if defined(DENSETRAIN_X86)
  return "generic, avx2, avx512";
#else
  return "generic";
#endif
}

}  // namespace

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

const Bf16Table* Bf16For(const CpuFeatures& cpu, const KernelTable* table) {
#if defined(DENSETRAIN_X86)
  if (cpu.avx512bf16 && table == Avx512Table()) return Avx512Bf16Table();
#else
  (void)cpu;
  (void)table;
#endif
  return nullptr;
}

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

}  // namespace densetrain
