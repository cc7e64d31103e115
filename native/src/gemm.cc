// GEMM through oneDNN. float32 uses dnnl_sgemm (JIT AVX-512 kernels, OpenMP inside); small batched products run
// one GEMM per thread instead, since each is too small to split. bfloat16 × bfloat16 → float32 uses a cached
// oneDNN matmul primitive (the C API has no bf16 GEMM) on CPUs with bf16 dot-product instructions (AVX512_BF16,
// AMX). Without them oneDNN either has no bf16 matmul at all (AVX2: primitive creation fails) or emulates it
// tens of times slower than sgemm (AVX-512 without BF16), so there the operands are widened to float32 (exact:
// a bf16 is the top half of a float32) and run through sgemm — the same products, accumulated in float32.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <tuple>
#include <vector>

#include "kernels.h"

namespace glmv {

static void check(dnnl_status_t s, const char* what) {
  if (s != dnnl_success) throw std::runtime_error(std::string(what) + " failed with oneDNN status " + std::to_string((int)s));
}

namespace {
using dnnl::engine;
using dnnl::matmul;
using dnnl::memory;
using dnnl::stream;

struct Bf16Key {
  i64 m, n, k;
  bool ta, tb, beta;
  bool f32 = false;  // float32 operands (the matmul primitive path of matmul_f32) instead of bf16
  bool operator<(const Bf16Key& o) const {
    return std::tie(m, n, k, ta, tb, beta, f32) < std::tie(o.m, o.n, o.k, o.ta, o.tb, o.beta, o.f32);
  }
};

struct Bf16Prim {
  matmul prim;
  memory::desc a, b, c;
};

engine& cpu_engine() {
  static engine eng(engine::kind::cpu, 0);
  return eng;
}

std::mutex cache_mu;
std::map<Bf16Key, Bf16Prim> cache;

Bf16Prim& get_prim(const Bf16Key& key, float alpha) {
  std::lock_guard<std::mutex> lock(cache_mu);
  auto it = cache.find(key);
  if (it != cache.end()) return it->second;
  // Transposition is expressed with strides on the memory descriptors.
  const auto in = key.f32 ? memory::data_type::f32 : memory::data_type::bf16;
  memory::desc a({key.m, key.k}, in, key.ta ? memory::dims{1, key.m} : memory::dims{key.k, 1});
  memory::desc b({key.k, key.n}, in, key.tb ? memory::dims{1, key.k} : memory::dims{key.n, 1});
  memory::desc c({key.m, key.n}, memory::data_type::f32, memory::dims{key.n, 1});
  dnnl::primitive_attr attr;
  if (key.beta) {
    dnnl::post_ops po;
    po.append_sum(1.f);
    attr.set_post_ops(po);
  }
  (void)alpha;
  matmul::desc d(a, b, c);
  matmul::primitive_desc pd(d, attr, cpu_engine());
  auto res = cache.emplace(key, Bf16Prim{matmul(pd), a, b, c});
  return res.first->second;
}
}  // namespace

// float32 GEMM implementation: 1 = dnnl_sgemm with its own threading, 2 = oneDNN's matmul primitive, cached per
// shape, wherever it applies (alpha 1, beta 0 or 1), 3 = one single-threaded dnnl_sgemm block of the output per thread
// (the default). bench:engine compares them per CPU-second: on AMD Zen 5 at n = 1024 the block split ran 198 GFLOP
// per CPU-second against sgemm's own 2-thread split 186 and the primitive 186, and 375 against 365 GFLOPS wall-clock
// (median of five runs each).
int f32_gemm_mode = 3;

void matmul_f32(const float* a, const float* b, float* out, i64 batch, i64 m, i64 n, i64 k, bool ta, bool tb, i64 aB, i64 bB, float alpha, float beta) {
  SignalGuard guard;
  const char TA = ta ? 'T' : 'N', TB = tb ? 'T' : 'N';
  const i64 lda = ta ? m : k, ldb = tb ? k : n, ldc = n;
  const double flops = 2.0 * m * n * k;
  int nt = max_threads();
  if (batch >= 2 && nt > 1 && flops < 4e6) {
    // Many small GEMMs: one per thread (oneDNN runs single-threaded inside a parallel region).
    dnnl_status_t err = dnnl_success;
#pragma omp parallel for schedule(static) num_threads(nt)
    for (i64 p = 0; p < batch; p++) {
      dnnl_status_t s = dnnl_sgemm(TA, TB, m, n, k, alpha, a + p * aB, lda, b + p * bB, ldb, beta, out + p * m * n, ldc);
      if (s != dnnl_success) err = s;
    }
    check(err, "dnnl_sgemm");
    return;
  }
  const bool prim = f32_gemm_mode == 2 && alpha == 1.f && (beta == 0.f || beta == 1.f);
  if (prim) {
    Bf16Prim& p = get_prim({m, n, k, ta, tb, beta == 1.f, true}, alpha);
    stream st(cpu_engine());
    for (i64 i = 0; i < batch; i++) {
      memory ma(p.a, cpu_engine(), (void*)(a + i * aB));
      memory mb(p.b, cpu_engine(), (void*)(b + i * bB));
      memory mc(p.c, cpu_engine(), (void*)(out + i * m * n));
      p.prim.execute(st, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
    }
    st.wait();
    return;
  }
  if (f32_gemm_mode == 3 && nt > 1 && flops >= 4e6) {
    // One block of the output per thread, each a single-threaded sgemm (oneDNN runs serially inside a parallel
    // region): split over the longer of m and n. Each thread packs its own copy of the shared operand; for a square
    // GEMM that costs less than what sgemm's own 2-thread split loses (bench:engine, fp32 GEMM).
    const bool by_rows = m >= n;
    const i64 len = by_rows ? m : n;
    const i64 blk = ((len + nt - 1) / nt + 15) / 16 * 16;
    for (i64 p = 0; p < batch; p++) {
      const float* ap = a + p * aB;
      const float* bp = b + p * bB;
      float* op = out + p * m * n;
      dnnl_status_t err = dnnl_success;
#pragma omp parallel for schedule(static, 1) num_threads(nt)
      for (int t = 0; t < nt; t++) {
        const i64 s0 = (i64)t * blk;
        if (s0 >= len) continue;
        const i64 sl = std::min(blk, len - s0);
        dnnl_status_t s;
        if (by_rows)
          s = dnnl_sgemm(TA, TB, sl, n, k, alpha, ap + (ta ? s0 : s0 * lda), lda, bp, ldb, beta, op + s0 * ldc, ldc);
        else
          s = dnnl_sgemm(TA, TB, m, sl, k, alpha, ap, lda, bp + (tb ? s0 * ldb : s0), ldb, beta, op + s0, ldc);
        if (s != dnnl_success) err = s;
      }
      check(err, "dnnl_sgemm");
    }
    return;
  }
  for (i64 p = 0; p < batch; p++) check(dnnl_sgemm(TA, TB, m, n, k, alpha, a + p * aB, lda, b + p * bB, ldb, beta, out + p * m * n, ldc), "dnnl_sgemm");
}

int set_f32_gemm_mode(int mode) {
  const int prev = f32_gemm_mode;
  f32_gemm_mode = mode;
  return prev;
}

// Benchmarks and tests: 0 sends decode-shaped bf16 products to oneDNN too (the comparison in one process).
int bf16_gemv_enabled = 1;
i64 stream_prefetch_bytes = 4096;
void set_bf16_gemv(bool on) { bf16_gemv_enabled = on ? 1 : 0; }

bool isa_allows(unsigned mask) {
  static const unsigned isa = (unsigned)dnnl_get_effective_cpu_isa();
  return (isa & mask) == mask;
}

bool cpu_has_avx2_fma() {
  static const bool yes =
      __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && isa_allows((unsigned)dnnl_cpu_isa_avx2);
  return yes;
}

bool cpu_has_avx512_bf16() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512bf16") && isa_allows((unsigned)dnnl_cpu_isa_avx512_core_bf16);
  return yes;
}

bool bf16_gemm_native() {
  // Respects ONEDNN_MAX_CPU_ISA / DNNL_MAX_CPU_ISA, so a lower ISA can be forced to reproduce another machine.
  static const bool native = isa_allows((unsigned)dnnl_cpu_isa_avx512_core_bf16);
  return native;
}

namespace {
// Operand p of a batched GEMM widened to float32: rows × cols values from src + p·stride (the layout kept).
void widen(const uint16_t* src, float* dst, i64 count) {
#pragma omp parallel for schedule(static) if (count > (1 << 16))
  for (i64 i = 0; i < count; i++) dst[i] = bf16_to_f32(src[i]);
}
}  // namespace

namespace {
// Decode-shaped bf16 products (a few rows of x against a [N, K] weight, the Linear layout): VDPBF16PS straight from
// the weight rows, 32 products per instruction, float32 sums — the weight is read once for all rows. oneDNN's
// matmul primitive spent several times the weight's read time on this shape (3.8 CPU-seconds per token for a 9B
// bf16 decoder on AMD Zen 5, 0.33 of them in the 1.24 GB lm_head alone).
template <int MR>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void gemv_bf16_rows(const uint16_t* a, const uint16_t* b, float* out, i64 m0, i64 n0, i64 n1, i64 N, i64 K) {
  const i64 K32 = K / 32 * 32;
  const __mmask32 tail = (__mmask32)((K - K32) == 0 ? 0u : ((1u << (K - K32)) - 1u));
  for (i64 n = n0; n < n1; n++) {
    const uint16_t* w = b + n * K;
    __m512 acc0[MR], acc1[MR];
    for (int r = 0; r < MR; r++) acc0[r] = acc1[r] = _mm512_setzero_ps();
    i64 k = 0;
    for (; k + 64 <= K32; k += 64) {
      prefetch_ahead(w + k);
      prefetch_ahead(w + k + 32);
      const __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + k), w1 = (__m512bh)_mm512_loadu_si512(w + k + 32);
      for (int r = 0; r < MR; r++) {
        const uint16_t* x = a + (m0 + r) * K + k;
        acc0[r] = _mm512_dpbf16_ps(acc0[r], w0, (__m512bh)_mm512_loadu_si512(x));
        acc1[r] = _mm512_dpbf16_ps(acc1[r], w1, (__m512bh)_mm512_loadu_si512(x + 32));
      }
    }
    for (; k < K32; k += 32) {
      const __m512bh w0 = (__m512bh)_mm512_loadu_si512(w + k);
      for (int r = 0; r < MR; r++) acc0[r] = _mm512_dpbf16_ps(acc0[r], w0, (__m512bh)_mm512_loadu_si512(a + (m0 + r) * K + k));
    }
    if (tail) {
      const __m512bh w0 = (__m512bh)_mm512_maskz_loadu_epi16(tail, w + k);
      for (int r = 0; r < MR; r++)
        acc0[r] = _mm512_dpbf16_ps(acc0[r], w0, (__m512bh)_mm512_maskz_loadu_epi16(tail, a + (m0 + r) * K + k));
    }
    for (int r = 0; r < MR; r++) out[(m0 + r) * N + n] = _mm512_reduce_add_ps(_mm512_add_ps(acc0[r], acc1[r]));
  }
}

// The same decode shape for CPUs without AVX512-BF16 (AVX2 + FMA: Zen 2/3, Intel before Cooper Lake): bf16 values
// widened in registers (a bf16 is the top half of a float32, so the products are exact) and float32 FMAs. Without it
// the operands would be widened to float32 in memory first (the whole weight, per call) and run through sgemm.
// The first / last 8 of 16 bf16 values as float32.
__attribute__((target("avx2,fma"))) inline __m256 bf16_lo_avx2(__m256i v) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_castsi256_si128(v)), 16));
}
__attribute__((target("avx2,fma"))) inline __m256 bf16_hi_avx2(__m256i v) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_cvtepu16_epi32(_mm256_extracti128_si256(v, 1)), 16));
}

template <int MR>
__attribute__((target("avx2,fma"))) void gemv_bf16_rows_avx2(const uint16_t* a, const uint16_t* b, float* out, i64 m0, i64 n0, i64 n1, i64 N, i64 K) {
  const i64 K16 = K / 16 * 16;
  for (i64 n = n0; n < n1; n++) {
    const uint16_t* w = b + n * K;
    __m256 acc0[MR], acc1[MR];
    for (int r = 0; r < MR; r++) acc0[r] = acc1[r] = _mm256_setzero_ps();
    for (i64 k = 0; k < K16; k += 16) {
      if (k % 32 == 0) prefetch_ahead(w + k);
      const __m256i wv = _mm256_loadu_si256((const __m256i*)(w + k));
      const __m256 w0 = bf16_lo_avx2(wv), w1 = bf16_hi_avx2(wv);
      for (int r = 0; r < MR; r++) {
        const __m256i xv = _mm256_loadu_si256((const __m256i*)(a + (m0 + r) * K + k));
        acc0[r] = _mm256_fmadd_ps(bf16_lo_avx2(xv), w0, acc0[r]);
        acc1[r] = _mm256_fmadd_ps(bf16_hi_avx2(xv), w1, acc1[r]);
      }
    }
    for (int r = 0; r < MR; r++) {
      alignas(32) float t[8];
      _mm256_store_ps(t, _mm256_add_ps(acc0[r], acc1[r]));
      float sum = ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
      const uint16_t* x = a + (m0 + r) * K;
      for (i64 k = K16; k < K; k++) sum += bf16_to_f32(x[k]) * bf16_to_f32(w[k]);
      out[(m0 + r) * N + n] = sum;
    }
  }
}

}  // namespace

// The decode shape that gemv_bf16_rows covers: one product, up to 8 rows, x [m, k] and W [n, k] (y = x · Wᵀ),
// no accumulation or scaling. Returns false where it does not apply (the caller runs oneDNN).
bool gemv_bf16(const uint16_t* a, const uint16_t* b, float* out, i64 batch, i64 m, i64 n, i64 k, bool ta, bool tb, float alpha, float beta) {
  if (batch != 1 || m > 8 || m < 1 || ta || !tb || alpha != 1.f || beta != 0.f) return false;
  if (!cpu_has_avx512_bf16()) {
    if (!cpu_has_avx2_fma()) return false;
    parallel_range(n, 16, [&](i64 b0, i64 e) {
      i64 r = 0;
      for (; r + 4 <= m; r += 4) gemv_bf16_rows_avx2<4>(a, b, out, r, b0, e, n, k);
      for (; r + 2 <= m; r += 2) gemv_bf16_rows_avx2<2>(a, b, out, r, b0, e, n, k);
      for (; r < m; r++) gemv_bf16_rows_avx2<1>(a, b, out, r, b0, e, n, k);
    });
    return true;
  }
  SignalGuard guard;
  parallel_range(n, 16, [&](i64 b0, i64 e) {
    i64 r = 0;
    for (; r + 8 <= m; r += 8) gemv_bf16_rows<8>(a, b, out, r, b0, e, n, k);
    for (; r + 4 <= m; r += 4) gemv_bf16_rows<4>(a, b, out, r, b0, e, n, k);
    for (; r + 2 <= m; r += 2) gemv_bf16_rows<2>(a, b, out, r, b0, e, n, k);
    for (; r < m; r++) gemv_bf16_rows<1>(a, b, out, r, b0, e, n, k);
  });
  return true;
}

void matmul_bf16(const uint16_t* a, const uint16_t* b, float* out, i64 batch, i64 m, i64 n, i64 k, bool ta, bool tb, i64 aB, i64 bB, float alpha, float beta) {
  if (beta != 0.f && beta != 1.f) throw std::runtime_error("bf16 matmul supports beta 0 or 1");
  if (bf16_gemv_enabled && gemv_bf16(a, b, out, batch, m, n, k, ta, tb, alpha, beta)) return;
  if (!bf16_gemm_native()) {
    if (k * n > (1 << 20)) {
      // A large B (a weight): widened a block of output columns at a time into a reused buffer, each block's product
      // written through a small one. Widening all of it per call (a 9B MLP weight is 224 MB as float32: a fresh
      // allocation, its page faults and its zeroing) cost about a second per product; a block is 8 MB at k = 4096.
      const i64 NB = std::max<i64>(16, std::min<i64>(n, (1 << 21) / k / 16 * 16));
      std::vector<float> fa((size_t)(m * k));
      static thread_local std::vector<float> fb, tmp;  // bounded: NB · k and m · NB floats, kept for the next call
      if ((i64)fb.size() < NB * k) fb.resize(NB * k);
      if ((i64)tmp.size() < m * NB) tmp.resize(m * NB);
      for (i64 p = 0; p < batch; p++) {
        if (p == 0 || aB != 0) widen(a + p * aB, fa.data(), m * k);
        const uint16_t* bp = b + p * bB;
        float* op = out + p * m * n;
        for (i64 n0 = 0; n0 < n; n0 += NB) {
          const i64 nb = std::min(NB, n - n0);
          // The block of B as [nb, k] (tb: rows of the stored [n, k]) or [k, nb] (columns of the stored [k, n]).
          if (tb)
            widen(bp + n0 * k, fb.data(), nb * k);
          else {
            float* dst = fb.data();  // the calling thread's buffer (fb names another one on each OpenMP thread)
            parallel_range(k, 64, [&](i64 r0, i64 r1) {
              for (i64 r = r0; r < r1; r++) widen(bp + r * n + n0, dst + r * nb, nb);  // short rows: widen runs serially
            });
          }
          if (beta != 0.f)
            for (i64 i = 0; i < m; i++) std::memcpy(&tmp[i * nb], op + i * n + n0, nb * sizeof(float));
          matmul_f32(fa.data(), fb.data(), tmp.data(), 1, m, nb, k, ta, tb, 0, 0, alpha, beta);
          for (i64 i = 0; i < m; i++) std::memcpy(op + i * n + n0, &tmp[i * nb], nb * sizeof(float));
        }
      }
      return;
    }
    // Widen the operands once (batch-broadcast ones, stride 0, only once) and run the float32 path.
    const i64 na = (aB == 0 ? 1 : batch) * m * k, nb = (bB == 0 ? 1 : batch) * k * n;
    std::vector<float> fa((size_t)na), fb((size_t)nb);
    for (i64 p = 0; p < (aB == 0 ? 1 : batch); p++) widen(a + p * aB, fa.data() + p * m * k, m * k);
    for (i64 p = 0; p < (bB == 0 ? 1 : batch); p++) widen(b + p * bB, fb.data() + p * k * n, k * n);
    matmul_f32(fa.data(), fb.data(), out, batch, m, n, k, ta, tb, aB == 0 ? 0 : m * k, bB == 0 ? 0 : k * n, alpha, beta);
    return;
  }
  SignalGuard guard;
  Bf16Prim& p = get_prim({m, n, k, ta, tb, beta == 1.f}, alpha);
  stream s(cpu_engine());
  for (i64 i = 0; i < batch; i++) {
    memory ma(p.a, cpu_engine(), (void*)(a + i * aB));
    memory mb(p.b, cpu_engine(), (void*)(b + i * bB));
    memory mc(p.c, cpu_engine(), (void*)(out + i * m * n));
    p.prim.execute(s, {{DNNL_ARG_SRC, ma}, {DNNL_ARG_WEIGHTS, mb}, {DNNL_ARG_DST, mc}});
  }
  s.wait();
  if (alpha != 1.f) {
    i64 total = batch * m * n;
    for (i64 i = 0; i < total; i++) out[i] *= alpha;
  }
}

}  // namespace glmv
