// The AVX-512 ISA description (see kernels_impl.h): the 12x32 tile and the 16x16 tile for
// narrow outputs. Included inside `namespace densetrain { namespace { ... } }` by the kernel
// translation units compiled with the AVX-512 flags (isa_avx512.cc, isa_avx512bf16.cc), after
// <immintrin.h> and x86_transpose.h; each gets its own private copy.
struct IsaNarrow;

// 32 zmm registers: a 12x32 tile is 24 accumulators + 2 B vectors + 1 broadcast.
struct Isa {
  using Narrow = IsaNarrow;
  using V = __m512;
  static constexpr int kW = 16;
  static constexpr int kMR = 12;
  static constexpr int kNV = 2;
  static constexpr int64_t kMC = 240;   // 240x256 A block: 240 KiB, in L2
  static constexpr int64_t kKC = 256;   // 256x32 B micro-panel: 32 KiB, in L1
  static constexpr int64_t kNC = 2048;  // 256x2048 B block: 2 MiB, in L3
  static inline V Zero() { return _mm512_setzero_ps(); }
  static inline V Load(const float* p) { return _mm512_load_ps(p); }
  static inline V LoadU(const float* p) { return _mm512_loadu_ps(p); }
  static inline void Store(float* p, V v) { _mm512_store_ps(p, v); }
  static inline void StoreU(float* p, V v) { _mm512_storeu_ps(p, v); }
  static inline V Bcast(const float* p) { return _mm512_set1_ps(*p); }
  static inline V Set1(float x) { return _mm512_set1_ps(x); }
  static inline V Fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
  static inline V Mul(V a, V b) { return _mm512_mul_ps(a, b); }
  static inline void Prefetch(const float* p) { _mm_prefetch(reinterpret_cast<const char*>(p), _MM_HINT_T0); }
  static constexpr bool kTranspose8 = true;
  static inline void Transpose8x8(const float* src, int64_t lds, float* dst, int64_t ldd) {
    Transpose8x8Avx(src, lds, dst, ldd);
  }
  static inline void Transpose8x8Rows(const float* const* rows, int nrows, int64_t p, float* dst, int64_t ldd) {
    Transpose8x8RowsAvx(rows, nrows, p, dst, ldd);
  }
};

// GEMMs with at most 16 output columns (the 10-class layer): a 24x16 tile, 24 accumulators + 1 B
// vector + 1 broadcast, computes 16 columns instead of 32 (a 10-wide output wastes 6, not 22).
struct IsaNarrow : Isa {
  static constexpr int kMR = 16;
  static constexpr int kNV = 1;
  static constexpr int64_t kMC = 256;
};

