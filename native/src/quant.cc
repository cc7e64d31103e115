// Weight-only quantised matmul: out[M, N] = x[M, K] · dequant(W)ᵀ (+ bias), W in the compressed-tensors
// pack-quantized layout: each row of N is ceil(K / (32 / bits)) int32 words, value k of a row sits in word
// k / per at bits bits·(k % per), stored unsigned with an offset of 2^(bits−1) (symmetric quantisation:
// q = stored − offset), and w[n, k] = q · scale[n, k / group].
//
// Decode shapes (a few rows) by default quantise x to int8 per row and group and multiply with integer dot products
// (AVX512-VNNI VPDPBUSD where the CPU has it, a portable integer loop elsewhere; see gemv_i8) — the unpacking that a
// float kernel needs per weight cost as much CPU as the bytes it saved. Asked for float activations, they run a fused
// kernel that unpacks in registers and multiplies against every row at once: with AVX512-BF16 dot products where the
// CPU has them (x rounded to bf16, as the bf16 model's GEMM does; float32 sums), else in float32 (AVX-512, chosen at
// run time; a portable loop elsewhere). Prefill shapes dequantise
// blocks of output channels into a bf16 scratch buffer and hand them to oneDNN's bf16 GEMM, so the GEMM runs at the
// bf16 model's speed and precision and the weights are expanded one block at a time.
#include <immintrin.h>
#include <napi.h>
#include <oneapi/dnnl/dnnl_types.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "addon.h"
#include "kernels.h"

namespace glmv {

namespace {

struct QArgs {
  const float* x;
  i64 M, K, N;
  const int32_t* packed;
  int bits;
  const void* scale;
  bool scaleBf16;
  i64 group;
  const float* bias;
  float* out;
  i64 words() const { return (K + (32 / bits) - 1) / (32 / bits); }
  i64 groups() const { return (K + group - 1) / group; }
  float scaleAt(i64 n, i64 g) const {
    i64 i = n * groups() + g;
    return scaleBf16 ? bf16_to_f32(((const uint16_t*)scale)[i]) : ((const float*)scale)[i];
  }
};

// One row's stored values as signed integers (q = u − 2^(bits−1)), in natural order. The packed words are
// little-endian, so a row's bytes are its values in order: int8 byte k is value k; int4 byte b holds values 2b (low
// nibble) and 2b + 1 (high). Written over bytes, with no per-value shifts by k, so the compiler vectorises it for
// whatever ISA the addon is built for (this and the loops below are the kernels of CPUs without the AVX-512 forms).
void unpack_row(const QArgs& a, i64 n, int8_t* w) {
  const uint8_t* bytes = (const uint8_t*)(a.packed + n * a.words());
  const i64 K = a.K;  // a local: stores through int8_t* may alias a.K, which would keep the loops scalar
  if (a.bits == 8) {
    for (i64 k = 0; k < K; k++) w[k] = (int8_t)(bytes[k] ^ 0x80);
    return;
  }
  const i64 half = K / 2;
  for (i64 b = 0; b < half; b++) {
    w[2 * b] = (int8_t)((bytes[b] & 15) - 8);
    w[2 * b + 1] = (int8_t)((bytes[b] >> 4) - 8);
  }
  if (K % 2) w[K - 1] = (int8_t)((bytes[half] & 15) - 8);
}

// Dequantises rows [n0, n1) into w (row-major, K floats per row).
void dequant_rows(const QArgs& a, i64 n0, i64 n1, float* w) {
  std::vector<int8_t> q(a.K);
  for (i64 n = n0; n < n1; n++) {
    unpack_row(a, n, q.data());
    float* dst = w + (n - n0) * a.K;
    for (i64 g = 0, k0 = 0; k0 < a.K; g++, k0 += a.group) {
      const float s = a.scaleAt(n, g);
      const i64 k1 = std::min(a.K, k0 + a.group);
      for (i64 k = k0; k < k1; k++) dst[k] = (float)q[k] * s;
    }
  }
}

// A float dot product in 16 interleaved partial sums, which the compiler keeps in vector registers (a single running
// sum is a dependency chain it may not reorder).
inline float dot_f32(const float* x, const float* w, i64 K) {
  constexpr int L = 16;
  float part[L] = {};
  i64 k = 0;
  for (; k + L <= K; k += L)
    for (int l = 0; l < L; l++) part[l] += x[k + l] * w[k + l];
  float acc = 0.f;
  for (; k < K; k++) acc += x[k] * w[k];
  for (int l = 0; l < L; l++) acc += part[l];
  return acc;
}

// Portable decode kernel: one output channel at a time, every row of x against it.
void gemv_portable(const QArgs& a, i64 n0, i64 n1) {
  std::vector<float> w(a.K);
  for (i64 n = n0; n < n1; n++) {
    dequant_rows(a, n, n + 1, w.data());
    for (i64 m = 0; m < a.M; m++) a.out[m * a.N + n] = dot_f32(a.x + m * a.K, w.data(), a.K) + (a.bias ? a.bias[n] : 0.f);
  }
}

// AVX-512 decode kernel for MR rows. int4: 16 bytes hold 32 values, byte b = values 2b (low nibble) and 2b + 1
// (high nibble), so x is pre-split per 32-block into its even and odd elements (xp) to match the two nibble planes.
// int8: 16 bytes hold 16 consecutive values. Requires group % 32 == 0 (int4) or % 16 == 0 (int8), and K % group == 0.
template <int MR>
__attribute__((target("avx512f,avx512bw"))) void gemv_avx512_rows(const QArgs& a, const float* xp, i64 m0, i64 n0, i64 n1) {
  const i64 W = a.words();
  const i64 G = a.groups();
  const __m512i lowMask = _mm512_set1_epi32(0xF);
  const __m512i off = _mm512_set1_epi32(1 << (a.bits - 1));
  for (i64 n = n0; n < n1; n++) {
    const uint8_t* row = (const uint8_t*)(a.packed + n * W);
    __m512 tot[MR];
    for (int r = 0; r < MR; r++) tot[r] = _mm512_setzero_ps();
    for (i64 g = 0; g < G; g++) {
      __m512 acc[MR];
      for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();
      const i64 k0 = g * a.group, k1 = k0 + a.group;
      if (a.bits == 4) {
        for (i64 k = k0; k < k1; k += 32) {
          __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(row + k / 2)));
          __m512 lo = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, lowMask), off));
          __m512 hi = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), off));
          for (int r = 0; r < MR; r++) {
            const float* xr = xp + (m0 + r) * a.K + k;
            acc[r] = _mm512_fmadd_ps(lo, _mm512_loadu_ps(xr), acc[r]);
            acc[r] = _mm512_fmadd_ps(hi, _mm512_loadu_ps(xr + 16), acc[r]);
          }
        }
      } else {
        for (i64 k = k0; k < k1; k += 16) {
          __m512 w = _mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(row + k))), off));
          for (int r = 0; r < MR; r++) acc[r] = _mm512_fmadd_ps(w, _mm512_loadu_ps(xp + (m0 + r) * a.K + k), acc[r]);
        }
      }
      const __m512 s = _mm512_set1_ps(a.scaleAt(n, g));
      for (int r = 0; r < MR; r++) tot[r] = _mm512_fmadd_ps(acc[r], s, tot[r]);
    }
    const float b = a.bias ? a.bias[n] : 0.f;
    for (int r = 0; r < MR; r++) a.out[(m0 + r) * a.N + n] = _mm512_reduce_add_ps(tot[r]) + b;
  }
}

// AVX512-BF16 decode kernel for MR rows: weights become exact bf16 values through a 16-entry lookup (vpermw) and
// are multiplied against x rounded to bf16 by VDPBF16PS (32 products per instruction, float32 sums) — the bf16
// model's precision, with about 2.5× fewer instructions per weight than the float32 kernel above. int4: 32 bytes
// hold 64 values, byte b = values 2b (low nibble) and 2b + 1 (high nibble), so xb is pre-split per 64-block into
// its even and odd elements. int8: the byte u = 16h + l (stored q + 128) is split into nibbles, looked up as
// 16h − 128 and l (both exact in bf16) and both planes are multiplied against the same x: (16h − 128 + l) = q.
// Requires group % 64 == 0 (int4) or % 32 == 0 (int8), and K % group == 0.
template <int MR>
__attribute__((target("avx512f,avx512bw,avx512bf16"))) void gemv_bf16dot_rows(const QArgs& a, const uint16_t* xb, i64 m0,
                                                                               i64 n0, i64 n1) {
  const i64 W = a.words();
  const i64 G = a.groups();
  const __m512i lowMask = _mm512_set1_epi16(0xF);
  alignas(64) uint16_t lo[32], hi[32];
  for (int i = 0; i < 32; i++) {
    const int v = i & 15;
    lo[i] = f32_to_bf16(a.bits == 4 ? (float)(v - 8) : (float)v);
    hi[i] = f32_to_bf16(a.bits == 4 ? (float)(v - 8) : (float)(16 * v - 128));
  }
  const __m512i lutLo = _mm512_load_si512(lo), lutHi = _mm512_load_si512(hi);
  for (i64 n = n0; n < n1; n++) {
    const uint8_t* row = (const uint8_t*)(a.packed + n * W);
    __m512 tot[MR];
    for (int r = 0; r < MR; r++) tot[r] = _mm512_setzero_ps();
    for (i64 g = 0; g < G; g++) {
      __m512 acc[MR];
      for (int r = 0; r < MR; r++) acc[r] = _mm512_setzero_ps();
      const i64 k0 = g * a.group, k1 = k0 + a.group;
      if (a.bits == 4) {
        for (i64 k = k0; k < k1; k += 64) {
          const __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)(row + k / 2)));
          const __m512bh wl = (__m512bh)_mm512_permutexvar_epi16(_mm512_and_si512(v, lowMask), lutLo);
          const __m512bh wh = (__m512bh)_mm512_permutexvar_epi16(_mm512_srli_epi16(v, 4), lutHi);
          for (int r = 0; r < MR; r++) {
            const uint16_t* xr = xb + (m0 + r) * a.K + k;
            acc[r] = _mm512_dpbf16_ps(acc[r], wl, (__m512bh)_mm512_loadu_si512(xr));
            acc[r] = _mm512_dpbf16_ps(acc[r], wh, (__m512bh)_mm512_loadu_si512(xr + 32));
          }
        }
      } else {
        for (i64 k = k0; k < k1; k += 32) {
          const __m512i v = _mm512_cvtepu8_epi16(_mm256_loadu_si256((const __m256i*)(row + k)));
          const __m512bh wl = (__m512bh)_mm512_permutexvar_epi16(_mm512_and_si512(v, lowMask), lutLo);
          const __m512bh wh = (__m512bh)_mm512_permutexvar_epi16(_mm512_srli_epi16(v, 4), lutHi);
          for (int r = 0; r < MR; r++) {
            const __m512bh xr = (__m512bh)_mm512_loadu_si512(xb + (m0 + r) * a.K + k);
            acc[r] = _mm512_dpbf16_ps(acc[r], wl, xr);
            acc[r] = _mm512_dpbf16_ps(acc[r], wh, xr);
          }
        }
      }
      const __m512 s = _mm512_set1_ps(a.scaleAt(n, g));
      for (int r = 0; r < MR; r++) tot[r] = _mm512_fmadd_ps(acc[r], s, tot[r]);
    }
    const float b = a.bias ? a.bias[n] : 0.f;
    for (int r = 0; r < MR; r++) a.out[(m0 + r) * a.N + n] = _mm512_reduce_add_ps(tot[r]) + b;
  }
}

bool has_avx512() {
  static const bool yes = __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                          __builtin_cpu_supports("avx512vl") && isa_allows((unsigned)dnnl_cpu_isa_avx512_core);
  return yes;
}

int force_portable = 0;  // tests: 1 runs the portable kernels even where AVX-512 exists

// Decode with bf16 dot products (x rounded to bf16, as the bf16 model's GEMM rounds it). False when the CPU or the
// layout does not allow it (the caller then runs the float32 kernel).
bool gemv_bf16dot(const QArgs& a) {
  if (force_portable || !cpu_has_avx512_bf16() || a.K % a.group != 0 || a.group % (a.bits == 4 ? 64 : 32) != 0)
    return false;
  // x rounded to bf16; int4: each 64-block split into its even then its odd elements (the two nibble planes).
  std::vector<uint16_t> xb(a.M * a.K);
  for (i64 m = 0; m < a.M; m++) {
    const float* xr = a.x + m * a.K;
    uint16_t* d = xb.data() + m * a.K;
    if (a.bits == 4)
      for (i64 k = 0; k < a.K; k += 64)
        for (int i = 0; i < 32; i++) {
          d[k + i] = f32_to_bf16(xr[k + 2 * i]);
          d[k + 32 + i] = f32_to_bf16(xr[k + 2 * i + 1]);
        }
    else
      for (i64 k = 0; k < a.K; k++) d[k] = f32_to_bf16(xr[k]);
  }
  parallel_range(a.N, 16, [&](i64 b, i64 e) {
    i64 m = 0;
    for (; m + 8 <= a.M; m += 8) gemv_bf16dot_rows<8>(a, xb.data(), m, b, e);
    for (; m + 4 <= a.M; m += 4) gemv_bf16dot_rows<4>(a, xb.data(), m, b, e);
    for (; m + 2 <= a.M; m += 2) gemv_bf16dot_rows<2>(a, xb.data(), m, b, e);
    for (; m < a.M; m++) gemv_bf16dot_rows<1>(a, xb.data(), m, b, e);
  });
  return true;
}

void gemv(const QArgs& a) {
  const bool fast = !force_portable && has_avx512() && a.K % a.group == 0 && a.group % (a.bits == 4 ? 32 : 16) == 0;
  if (!fast) {
    parallel_range(a.N, 16, [&](i64 b, i64 e) { gemv_portable(a, b, e); });
    return;
  }
  // int4: x rows with each 32-block split into its even then its odd elements (the two nibble planes).
  std::vector<float> perm;
  const float* xp = a.x;
  if (a.bits == 4) {
    perm.resize(a.M * a.K);
    for (i64 m = 0; m < a.M; m++)
      for (i64 k = 0; k < a.K; k += 32)
        for (int i = 0; i < 16; i++) {
          perm[m * a.K + k + i] = a.x[m * a.K + k + 2 * i];
          perm[m * a.K + k + 16 + i] = a.x[m * a.K + k + 2 * i + 1];
        }
    xp = perm.data();
  }
  parallel_range(a.N, 16, [&](i64 b, i64 e) {
    i64 m = 0;
    for (; m + 4 <= a.M; m += 4) gemv_avx512_rows<4>(a, xp, m, b, e);
    for (; m + 2 <= a.M; m += 2) gemv_avx512_rows<2>(a, xp, m, b, e);
    for (; m < a.M; m++) gemv_avx512_rows<1>(a, xp, m, b, e);
  });
}

// ---- int8-activation decode (W8A8 / W4A8, dynamic): x is quantised to int8 per row and per activation group of
// `ga` inputs (scale sx = max|x| / 127, xq = round-half-even(x · (127 / max|x|)), both in float32), and each product
// is an integer dot: out[m, n] = Σ_ag sw[n, g(ag)] · sx[m, ag] · Σ_{k ∈ ag} q[n, k] · xq[m, k] (+ bias). Every
// activation group lies inside one weight group. With VNNI, VPDPBUSD multiplies 64 stored weights u = q + 2^(bits−1)
// (unsigned) by 64 xq (signed) per instruction; the offset's share, 2^(bits−1) · Σ xq over the group, starts the
// group's accumulator negative, so each group's int32 sum is exact before it is scaled.
//
// Layout of xq for the VNNI kernel: each activation group is cut into chunks of CH inputs (CH = 64 for int8; for
// int4 128 where the group splits into 128s, else 64), each chunk stored in CH bytes, zero-padded. int8 chunks are in
// natural order; int4 chunks hold the chunk's even inputs, then its odd ones, matching the two nibble planes of the
// CH / 2 weight bytes (byte b = value 2b in the low nibble, 2b + 1 in the high one), so a weight chunk is unpacked
// with one AND and one shift + AND.
struct XQuant {
  i64 M = 0, K = 0, ga = 0, AG = 0, CH = 64, stride = 0;
  std::vector<int8_t> qbuf;
  int8_t* q = nullptr;      // [M, stride] in qbuf, 64-byte aligned: the chunks of every group, in order
  std::vector<float> s;     // [M, AG]
  std::vector<int32_t> c;   // [M, AG]: −2^(bits−1) · Σ xq over the group
};

// One activation group x[0, n): its max |x| (NaN when any input is NaN: the output then becomes NaN), its inputs
// quantised to q[0, n) in natural order, and Σ q. Scalar form; the AVX-512 one below gives the same bytes.
float quantize_group_scalar(const float* x, i64 n, int8_t* q, int32_t& sum) {
  float amax = 0.f;
  for (i64 k = 0; k < n; k++) amax = std::max(amax, std::fabs(x[k]));
  for (i64 k = 0; k < n; k++)
    if (x[k] != x[k]) amax = NAN;  // std::max drops a NaN operand: keep it
  const float inv = amax > 0.f ? 127.f / amax : 0.f;
  sum = 0;
  for (i64 k = 0; k < n; k++) {
    float v = std::nearbyint(x[k] * inv);
    v = v > 127.f ? 127.f : (v < -127.f ? -127.f : v);
    if (v != v) v = 0.f;  // a NaN or ±inf input (inv is then 0 or NaN)
    sum += (int)v;
    q[k] = (int8_t)(int)v;
  }
  return amax;
}

// The same, 16 inputs per step. It runs once per product for every activation group, and its scalar form (NaN checks
// in a dependent chain) took as long as a small product's integer dots (a 256 × 4096 int4 k_proj) in the decode.
// MAXPS returns its second operand when either is NaN, so max(|x|, acc) skips NaNs as std::max does; the rounding is
// the current mode's (nearest-even), as nearbyint's.
__attribute__((target("avx512f,avx512bw,avx512vl"))) float quantize_group_avx512(const float* x, i64 n, int8_t* q,
                                                                               int32_t& sum) {
  __m512 acc = _mm512_setzero_ps();
  __mmask16 nan = 0;
  for (i64 k = 0; k < n; k += 16) {
    const __mmask16 live = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
    const __m512 v = _mm512_maskz_loadu_ps(live, x + k);
    acc = _mm512_max_ps(_mm512_abs_ps(v), acc);
    nan |= _mm512_cmp_ps_mask(v, v, _CMP_UNORD_Q);
  }
  const float amax = nan ? NAN : _mm512_reduce_max_ps(acc);
  const float inv = amax > 0.f ? 127.f / amax : 0.f;
  const __m512 vinv = _mm512_set1_ps(inv), hi = _mm512_set1_ps(127.f), lo = _mm512_set1_ps(-127.f);
  __m512i isum = _mm512_setzero_si512();
  for (i64 k = 0; k < n; k += 16) {
    const __mmask16 live = n - k >= 16 ? (__mmask16)0xffff : (__mmask16)((1u << (n - k)) - 1);
    __m512 v = _mm512_roundscale_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(live, x + k), vinv),
                                    _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    v = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(v, v, _CMP_ORD_Q), v);  // NaN → 0 (before the clamp, which would keep it)
    const __m512i iv = _mm512_cvtps_epi32(_mm512_min_ps(_mm512_max_ps(v, lo), hi));
    isum = _mm512_add_epi32(isum, iv);
    _mm512_mask_cvtepi32_storeu_epi8(q + k, live, iv);
  }
  sum = _mm512_reduce_add_epi32(isum);
  return amax;
}

int force_scalar_quantize = 0;  // tests: 1 quantises activations with the scalar form

// chunked: the VNNI kernel's layout (planes for int4); else plain rows of K (the portable kernel's).
void quantize_x(const QArgs& a, i64 ga, bool chunked, XQuant& xq) {
  xq.M = a.M;
  xq.K = a.K;
  xq.ga = ga;
  xq.AG = (a.K + ga - 1) / ga;
  xq.CH = a.bits == 4 && ga % 128 == 0 ? 128 : 64;
  const i64 CH = xq.CH;
  const bool planes = chunked && a.bits == 4;
  const i64 last = a.K - (xq.AG - 1) * ga;
  xq.stride = chunked ? (xq.AG - 1) * ((ga + CH - 1) / CH * CH) + (last + CH - 1) / CH * CH : a.K;
  xq.qbuf.assign(xq.M * xq.stride + 64, 0);
  xq.q = xq.qbuf.data() + ((64 - (uintptr_t)xq.qbuf.data() % 64) % 64);
  xq.s.resize(xq.M * xq.AG);
  xq.c.resize(xq.M * xq.AG);
  const int off = 1 << (a.bits - 1);
  const bool vec = !force_scalar_quantize && has_avx512();
  std::vector<int8_t> nat(planes ? ga : 0);  // int4: the group in natural order, then split into planes
  for (i64 m = 0; m < a.M; m++) {
    const float* xr = a.x + m * a.K;
    int8_t* d = xq.q + m * xq.stride;
    for (i64 ag = 0; ag < xq.AG; ag++) {
      const i64 k0 = ag * ga, n = std::min(a.K, k0 + ga) - k0;
      int8_t* g = planes ? nat.data() : d;  // int8 chunks are the group in natural order, zero-padded after it
      int32_t sum;
      const float amax = vec ? quantize_group_avx512(xr + k0, n, g, sum) : quantize_group_scalar(xr + k0, n, g, sum);
      if (planes)  // chunk by chunk: the chunk's even inputs, then its odd ones
        for (i64 c0 = 0; c0 < n; c0 += CH)
          for (i64 i = 0; i < std::min(CH, n - c0); i++) d[c0 + (i & 1) * (CH / 2) + (i >> 1)] = g[c0 + i];
      d += chunked ? (n + CH - 1) / CH * CH : n;
      xq.s[m * xq.AG + ag] = amax / 127.f;
      xq.c[m * xq.AG + ag] = -off * sum;
    }
  }
}

// Portable form (natural-order xq, no chunks): integer dots in int32, scaled per activation group in float32.
void gemv_i8_portable(const QArgs& a, const XQuant& xq, i64 n0, i64 n1) {
  std::vector<int8_t> w(a.K);
  for (i64 n = n0; n < n1; n++) {
    unpack_row(a, n, w.data());
    for (i64 m = 0; m < a.M; m++) {
      const int8_t* xr = xq.q + m * xq.stride;
      float acc = 0.f;
      for (i64 ag = 0; ag < xq.AG; ag++) {
        const i64 k0 = ag * xq.ga, k1 = std::min(a.K, k0 + xq.ga);
        int32_t dot = 0;
        for (i64 k = k0; k < k1; k++) dot += (int32_t)w[k] * (int32_t)xr[k];
        acc += (float)dot * (a.scaleAt(n, k0 / a.group) * xq.s[m * xq.AG + ag]);
      }
      a.out[m * a.N + n] = acc + (a.bias ? a.bias[n] : 0.f);
    }
  }
}

// The integer kernels' scale of each (row, activation group) for output channel n, into sc[r * AG + ag]: sw · sx, or
// sx alone per channel (sw is applied at the end). sc[MR * AG ...] holds the channel's weight scales as float32.
static void row_group_scales(const QArgs& a, const XQuant& xq, int MR, i64 m0, i64 n, float* sc) {
  const i64 G = a.groups(), AG = xq.AG;
  const bool perChannel = G == 1;
  const i64 gPer = perChannel ? 1 : a.group / xq.ga;  // activation groups per weight group
  float* swr = sc + MR * AG;
  if (!perChannel) {
    if (a.scaleBf16) {
      const uint16_t* p = (const uint16_t*)a.scale + n * G;
      for (i64 g = 0; g < G; g++) swr[g] = bf16_to_f32(p[g]);
    } else
      std::memcpy(swr, (const float*)a.scale + n * G, G * sizeof(float));
  }
  for (int r = 0; r < MR; r++) {
    const float* sx = xq.s.data() + (m0 + r) * AG;
    float* d = sc + r * AG;
    if (perChannel)
      for (i64 ag = 0; ag < AG; ag++) d[ag] = sx[ag];
    else if (gPer == 1)
      for (i64 ag = 0; ag < AG; ag++) d[ag] = sx[ag] * swr[ag];
    else
      for (i64 g = 0, ag = 0; g < G; g++)
        for (i64 j = 0; j < gPer && ag < AG; j++, ag++) d[ag] = sx[ag] * swr[g];
  }
}

// 512-bit integer dots: AVX512-VNNI's VPDPBUSD, or AVX512BW's VPMADDUBSW + VPMADDWD where VNNI is missing (the same
// arithmetic as the AVX2 forms below: a pair of weights below 16 times xq cannot saturate 16 bits, and an 8-bit weight
// is split into its two nibbles). One kernel source, compiled once per target (quant_avx512_rows.inc).
__attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni"))) inline __m512i dot512_vnni(__m512i acc, __m512i w, const int8_t* x) {
  return _mm512_dpbusd_epi32(acc, w, _mm512_loadu_si512(x));
}
__attribute__((target("avx512f,avx512bw"))) inline __m512i dot512_bw_u4(__m512i acc, __m512i w, const int8_t* x) {
  const __m512i pairs = _mm512_maddubs_epi16(w, _mm512_loadu_si512(x));
  return _mm512_add_epi32(acc, _mm512_madd_epi16(pairs, _mm512_set1_epi16(1)));
}
__attribute__((target("avx512f,avx512bw"))) inline __m512i dot512_bw_u8(__m512i acc, __m512i w, const int8_t* x) {
  const __m512i xv = _mm512_loadu_si512(x), lo4 = _mm512_set1_epi8(0x0F);
  const __m512i lo = _mm512_maddubs_epi16(_mm512_and_si512(w, lo4), xv);
  const __m512i hi = _mm512_maddubs_epi16(_mm512_and_si512(_mm512_srli_epi16(w, 4), lo4), xv);
  acc = _mm512_add_epi32(acc, _mm512_madd_epi16(lo, _mm512_set1_epi16(1)));
  return _mm512_add_epi32(acc, _mm512_madd_epi16(hi, _mm512_set1_epi16(16)));
}

#define GLMV_512_ROWS gemv_i8_vnni_rows
#define GLMV_512_FAST gemv_i8_vnni_fast
#define GLMV_512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define GLMV_512_DOT8 dot512_vnni
#define GLMV_512_DOT4 dot512_vnni
#include "quant_avx512_rows.inc"
#define GLMV_512_ROWS gemv_i8_avx512bw_rows
#define GLMV_512_FAST gemv_i8_avx512bw_fast
#define GLMV_512_TARGET __attribute__((target("avx512f,avx512bw,avx512vl")))
#define GLMV_512_DOT8 dot512_bw_u8
#define GLMV_512_DOT4 dot512_bw_u4
#include "quant_avx512_rows.inc"

bool has_avx512_vnni() {
  static const bool yes = has_avx512() && __builtin_cpu_supports("avx512vnni") &&
                          isa_allows((unsigned)dnnl_cpu_isa_avx512_core_vnni);
  return yes;
}

// The same integer dots with 256-bit vectors, for CPUs without AVX512-VNNI: AVX-VNNI (VEX VPDPBUSD: Alder Lake and
// later, Zen 5), else plain AVX2 (Zen 2/3, Intel before Alder Lake, Skylake-SP). One kernel source, compiled once per
// target (quant_avx2_rows.inc).
__attribute__((target("avx2,fma,avxvnni"))) inline __m256i dot_avxvnni(__m256i acc, __m256i w, const int8_t* x) {
  return _mm256_dpbusd_avx_epi32(acc, w, _mm256_loadu_si256((const __m256i*)x));
}
__attribute__((target("avx2,fma"))) inline __m256i dot_avx2_u4(__m256i acc, __m256i w, const int8_t* x) {
  const __m256i pairs = _mm256_maddubs_epi16(w, _mm256_loadu_si256((const __m256i*)x));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(pairs, _mm256_set1_epi16(1)));
}
__attribute__((target("avx2,fma"))) inline __m256i dot_avx2_u8(__m256i acc, __m256i w, const int8_t* x) {
  const __m256i xv = _mm256_loadu_si256((const __m256i*)x), lo4 = _mm256_set1_epi8(0x0F);
  const __m256i lo = _mm256_maddubs_epi16(_mm256_and_si256(w, lo4), xv);
  const __m256i hi = _mm256_maddubs_epi16(_mm256_and_si256(_mm256_srli_epi16(w, 4), lo4), xv);
  acc = _mm256_add_epi32(acc, _mm256_madd_epi16(lo, _mm256_set1_epi16(1)));
  return _mm256_add_epi32(acc, _mm256_madd_epi16(hi, _mm256_set1_epi16(16)));
}

#define GLMV_AVX2_ROWS gemv_i8_avxvnni_rows
#define GLMV_AVX2_FAST gemv_i8_avxvnni_fast
#define GLMV_AVX2_TARGET __attribute__((target("avx2,fma,avxvnni")))
#define GLMV_AVX2_DOT8 dot_avxvnni
#define GLMV_AVX2_DOT4 dot_avxvnni
#include "quant_avx2_rows.inc"
#define GLMV_AVX2_ROWS gemv_i8_avx2_rows
#define GLMV_AVX2_FAST gemv_i8_avx2_fast
#define GLMV_AVX2_TARGET __attribute__((target("avx2,fma")))
#define GLMV_AVX2_DOT8 dot_avx2_u8
#define GLMV_AVX2_DOT4 dot_avx2_u4
#include "quant_avx2_rows.inc"

bool has_avx_vnni() {
  // Allowed under a cap of AVX2_VNNI or of AVX-512 VNNI and above (ONEDNN_MAX_CPU_ISA=AVX2 reproduces a CPU without it).
  static const bool yes = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("avxvnni") &&
                          (isa_allows((unsigned)dnnl_cpu_isa_avx2_vnni) || isa_allows((unsigned)dnnl_cpu_isa_avx512_core_vnni));
  return yes;
}

// The int8-activation kernels, best first (bench:quant: at 512 bits int4 runs 1.4x faster than at 256, int8 about as
// fast). force_int8 (tests, benchmarks) names one to run instead of the best this CPU has; gemv_i8 refuses one the
// CPU lacks.
enum Int8Kernel { I8_AUTO = 0, I8_AVX512VNNI, I8_AVX512BW, I8_AVXVNNI, I8_AVX2, I8_PORTABLE };
const char* const int8_kernel_names[] = {"auto", "avx512vnni", "avx512bw", "avxvnni", "avx2", "portable"};
int force_int8 = I8_AUTO;

bool int8_kernel_runs(int k) {
  switch (k) {
    case I8_AVX512VNNI: return has_avx512_vnni();
    case I8_AVXVNNI: return has_avx_vnni();
    case I8_AVX512BW: return has_avx512();
    case I8_AVX2: return cpu_has_avx2_fma();
    default: return true;
  }
}

int best_int8_kernel() {
  for (int k = I8_AVX512VNNI; k < I8_PORTABLE; k++)
    if (int8_kernel_runs(k)) return k;
  return I8_PORTABLE;
}

// The kernel for this product: the forced one, else the best the CPU runs; the portable loop where the layout does not
// fit the vector kernels (odd int4 activation groups) or the portable kernels are forced.
int int8_kernel(const QArgs& a, i64 ga) {
  if (force_portable || !(a.bits == 8 || ga % 2 == 0)) return I8_PORTABLE;
  return force_int8 != I8_AUTO ? force_int8 : best_int8_kernel();
}

// Each vector kernel's row blocks: 8 rows at a time where its registers allow (512 bits), then 4, 2 and 1. Indexed by
// Int8Kernel; auto and portable have none.
using RowsFn = void (*)(const QArgs&, const XQuant&, i64, i64, i64, float*);
struct RowKernels {
  RowsFn r8, r4, r2, r1;
};
const RowKernels int8_row_kernels[] = {
    {},
    {gemv_i8_vnni_rows<8>, gemv_i8_vnni_rows<4>, gemv_i8_vnni_rows<2>, gemv_i8_vnni_rows<1>},
    {gemv_i8_avx512bw_rows<8>, gemv_i8_avx512bw_rows<4>, gemv_i8_avx512bw_rows<2>, gemv_i8_avx512bw_rows<1>},
    {nullptr, gemv_i8_avxvnni_rows<4>, gemv_i8_avxvnni_rows<2>, gemv_i8_avxvnni_rows<1>},
    {nullptr, gemv_i8_avx2_rows<4>, gemv_i8_avx2_rows<2>, gemv_i8_avx2_rows<1>},
    {},
};
static_assert(sizeof(int8_row_kernels) / sizeof(RowKernels) == I8_PORTABLE + 1, "one entry per Int8Kernel");
// Their forms for the common layout (int4 then int8).
const RowKernels int8_fast_kernels[][2] = {
    {},
    {{gemv_i8_vnni_fast<8, 4>, gemv_i8_vnni_fast<4, 4>, gemv_i8_vnni_fast<2, 4>, gemv_i8_vnni_fast<1, 4>},
     {gemv_i8_vnni_fast<8, 8>, gemv_i8_vnni_fast<4, 8>, gemv_i8_vnni_fast<2, 8>, gemv_i8_vnni_fast<1, 8>}},
    {{gemv_i8_avx512bw_fast<8, 4>, gemv_i8_avx512bw_fast<4, 4>, gemv_i8_avx512bw_fast<2, 4>, gemv_i8_avx512bw_fast<1, 4>},
     {gemv_i8_avx512bw_fast<8, 8>, gemv_i8_avx512bw_fast<4, 8>, gemv_i8_avx512bw_fast<2, 8>, gemv_i8_avx512bw_fast<1, 8>}},
    {{nullptr, gemv_i8_avxvnni_fast<4, 4>, gemv_i8_avxvnni_fast<2, 4>, gemv_i8_avxvnni_fast<1, 4>},
     {nullptr, gemv_i8_avxvnni_fast<4, 8>, gemv_i8_avxvnni_fast<2, 8>, gemv_i8_avxvnni_fast<1, 8>}},
    {{nullptr, gemv_i8_avx2_fast<4, 4>, gemv_i8_avx2_fast<2, 4>, gemv_i8_avx2_fast<1, 4>},
     {nullptr, gemv_i8_avx2_fast<4, 8>, gemv_i8_avx2_fast<2, 8>, gemv_i8_avx2_fast<1, 8>}},
    {},
};
static_assert(sizeof(int8_fast_kernels) / sizeof(int8_fast_kernels[0]) == I8_PORTABLE + 1, "one entry per Int8Kernel");

// The common layout the fast forms cover: activation groups of 128 and K whole groups. The rest follows: quantize_x
// then makes each group one int4 chunk (CH 128) or two int8 chunks (CH 64), and gemv_i8 has already refused a weight
// group under K that is not a whole number of activation groups (so it is a multiple of 128, or there is one per
// channel).
bool common_layout(const XQuant& xq) { return xq.ga == 128 && xq.K % 128 == 0; }

void gemv_i8(const QArgs& a, i64 ga) {
  if (ga <= 0) throw std::runtime_error("qmatmul: activation group size must be positive");
  if (a.group < a.K && a.group % ga != 0)
    throw std::runtime_error("qmatmul: the weight group size must be a multiple of the activation group size");
  const int kernel = int8_kernel(a, ga);
  if (!int8_kernel_runs(kernel))
    throw std::runtime_error(std::string("qmatmul: this CPU cannot run the ") + int8_kernel_names[kernel] + " kernel");
  XQuant xq;
  quantize_x(a, ga, kernel != I8_PORTABLE, xq);
  parallel_range(a.N, 16, [&](i64 b, i64 e) {
    if (kernel == I8_PORTABLE) {
      gemv_i8_portable(a, xq, b, e);
      return;
    }
    std::vector<float> sc(8 * xq.AG + a.groups());
    const RowKernels& fast = int8_fast_kernels[kernel][a.bits == 4 ? 0 : 1];
    const RowKernels& f = fast.r1 && common_layout(xq) ? fast : int8_row_kernels[kernel];
    i64 m = 0;
    if (f.r8)
      for (; m + 8 <= a.M; m += 8) f.r8(a, xq, m, b, e, sc.data());
    for (; m + 4 <= a.M; m += 4) f.r4(a, xq, m, b, e, sc.data());
    for (; m + 2 <= a.M; m += 2) f.r2(a, xq, m, b, e, sc.data());
    for (; m < a.M; m++) f.r1(a, xq, m, b, e, sc.data());
  });
}

// Dequantises rows [n0, n1) to bf16 (row-major, K per row): scalar reference form.
void dequant_rows_bf16_portable(const QArgs& a, i64 n0, i64 n1, uint16_t* w) {
  std::vector<float> row(a.K);
  for (i64 n = n0; n < n1; n++) {
    dequant_rows(a, n, n + 1, row.data());
    for (i64 k = 0; k < a.K; k++) w[(n - n0) * a.K + k] = f32_to_bf16(row[k]);
  }
}

// 16 floats to bf16, round to nearest even (finite values: dequantised weights). A function with its own target
// attribute, not a lambda: a lambda does not inherit its enclosing function's target, so on a compiler building for a
// CPU without AVX-512 (-march=native on an AVX2 machine) the intrinsics inside it would not compile.
__attribute__((target("avx512f,avx512bw"))) inline __m256i to_bf16_avx512(__m512 v) {
  __m512i u = _mm512_castps_si512(v);
  u = _mm512_add_epi32(u, _mm512_add_epi32(_mm512_set1_epi32(0x7fff), _mm512_and_si512(_mm512_srli_epi32(u, 16), _mm512_set1_epi32(1))));
  return _mm512_cvtepi32_epi16(_mm512_srli_epi32(u, 16));
}

// The same with AVX-512 (fast-path layouts only): int4 nibble planes are interleaved back into natural order.
__attribute__((target("avx512f,avx512bw"))) void dequant_rows_bf16_avx512(const QArgs& a, i64 n0, i64 n1, uint16_t* w) {
  const i64 W = a.words();
  const i64 G = a.groups();
  const __m512i lowMask = _mm512_set1_epi32(0xF);
  const __m512i off = _mm512_set1_epi32(1 << (a.bits - 1));
  const __m512i idx0 = _mm512_setr_epi32(0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23);
  const __m512i idx1 = _mm512_setr_epi32(8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31);
  for (i64 n = n0; n < n1; n++) {
    const uint8_t* row = (const uint8_t*)(a.packed + n * W);
    uint16_t* dst = w + (n - n0) * a.K;
    for (i64 g = 0; g < G; g++) {
      const __m512 s = _mm512_set1_ps(a.scaleAt(n, g));
      const i64 k0 = g * a.group, k1 = k0 + a.group;
      if (a.bits == 4) {
        for (i64 k = k0; k < k1; k += 32) {
          __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(row + k / 2)));
          __m512 lo = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_and_si512(v, lowMask), off)), s);
          __m512 hi = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(_mm512_srli_epi32(v, 4), off)), s);
          _mm256_storeu_si256((__m256i*)(dst + k), to_bf16_avx512(_mm512_permutex2var_ps(lo, idx0, hi)));
          _mm256_storeu_si256((__m256i*)(dst + k + 16), to_bf16_avx512(_mm512_permutex2var_ps(lo, idx1, hi)));
        }
      } else {
        for (i64 k = k0; k < k1; k += 16) {
          __m512i v = _mm512_cvtepu8_epi32(_mm_loadu_si128((const __m128i*)(row + k)));
          _mm256_storeu_si256((__m256i*)(dst + k), to_bf16_avx512(_mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(v, off)), s)));
        }
      }
    }
  }
}

// Prefill: x is rounded to bf16 once, then blocks of NB output channels are dequantised to bf16 and multiplied
// by oneDNN's bf16 GEMM (float32 accumulation) — the precision of the unquantised bf16 model, at its speed.
void gemm_blocked(const QArgs& a) {
  const bool fast = !force_portable && has_avx512() && a.K % a.group == 0 && a.group % (a.bits == 4 ? 32 : 16) == 0;
  const i64 NB = std::min<i64>(a.N, 512);
  std::vector<uint16_t> xb(a.M * a.K), w(NB * a.K);
  std::vector<float> tmp(a.M * NB);
  cast(a.x, DT_F32, xb.data(), DT_BF16, a.M * a.K);
  for (i64 n0 = 0; n0 < a.N; n0 += NB) {
    const i64 nb = std::min(NB, a.N - n0);
    parallel_range(nb, 8, [&](i64 b, i64 e) {
      if (fast)
        dequant_rows_bf16_avx512(a, n0 + b, n0 + e, w.data() + b * a.K);
      else
        dequant_rows_bf16_portable(a, n0 + b, n0 + e, w.data() + b * a.K);
    });
    matmul_bf16(xb.data(), w.data(), tmp.data(), 1, a.M, nb, a.K, false, true, 0, 0, 1.f, 0.f);
    parallel_range(a.M, 16, [&](i64 b, i64 e) {
      for (i64 m = b; m < e; m++)
        for (i64 j = 0; j < nb; j++) a.out[m * a.N + n0 + j] = tmp[m * nb + j] + (a.bias ? a.bias[n0 + j] : 0.f);
    });
  }
}

template <class T>
T* ta(const Napi::Value& v) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value ab;
  size_t off;
  if (napi_get_typedarray_info(v.Env(), v, &type, &length, &data, &ab, &off) != napi_ok)
    throw std::runtime_error("qmatmul: expected a typed array");
  return (T*)data;  // already adjusted by the byte offset
}

// qmatmul(x, M, K, packed, bits, scale, scaleBf16, group, N, bias | null, out, mode, actGroup)
// actGroup > 0: x quantised to int8 per row and per actGroup inputs, integer dots (VNNI where present).
// mode: 0 = choose by shape, 1 = float32 decode kernel, 2 = dequantise + GEMM, 3 = bf16-dot decode kernel (the
// float32 one where the CPU lacks AVX512-BF16 or the layout does not fit).
Napi::Value QMatmul(const Napi::CallbackInfo& info) {
  Napi::Env env = info.Env();
  try {
    QArgs a;
    a.x = ta<float>(info[0]);
    a.M = info[1].As<Napi::Number>().Int64Value();
    a.K = info[2].As<Napi::Number>().Int64Value();
    a.packed = ta<int32_t>(info[3]);
    a.bits = info[4].As<Napi::Number>().Int32Value();
    a.scale = ta<void>(info[5]);
    a.scaleBf16 = info[6].As<Napi::Boolean>().Value();
    a.group = info[7].As<Napi::Number>().Int64Value();
    a.N = info[8].As<Napi::Number>().Int64Value();
    a.bias = info[9].IsNull() ? nullptr : ta<float>(info[9]);
    a.out = ta<float>(info[10]);
    int mode = info[11].As<Napi::Number>().Int32Value();
    const i64 actGroup = info.Length() > 12 && info[12].IsNumber() ? info[12].As<Napi::Number>().Int64Value() : 0;
    if (a.bits != 4 && a.bits != 8) throw std::runtime_error("qmatmul: bits must be 4 or 8");
    if (a.group <= 0) throw std::runtime_error("qmatmul: group size must be positive");
    if (a.M == 0 || a.N == 0) return env.Undefined();
    if (actGroup > 0) {  // int8 activations: the integer-dot kernel, whatever the mode
      gemv_i8(a, actGroup);
      return env.Undefined();
    }
    if (mode == 0) mode = a.M <= 8 ? 3 : 2;
    if (mode == 3 && !gemv_bf16dot(a)) mode = 1;
    if (mode == 1)
      gemv(a);
    else if (mode == 2)
      gemm_blocked(a);
  } catch (const std::exception& e) {
    Napi::Error::New(env, std::string("native kernel: ") + e.what()).ThrowAsJavaScriptException();
  }
  return env.Undefined();
}

// qInt8Kernel(name): tests and benchmarks run the named int8-activation kernel ('auto': the best this CPU has).
// Returns whether this CPU runs it.
Napi::Value QInt8Kernel(const Napi::CallbackInfo& info) {
  const std::string name = info[0].As<Napi::String>().Utf8Value();
  for (int k = I8_AUTO; k <= I8_PORTABLE; k++)
    if (name == int8_kernel_names[k]) {
      const bool runs = int8_kernel_runs(k);
      force_int8 = runs ? k : I8_AUTO;
      return Napi::Boolean::New(info.Env(), runs);
    }
  Napi::Error::New(info.Env(), "qInt8Kernel: unknown kernel " + name).ThrowAsJavaScriptException();
  return info.Env().Undefined();
}

// qScalarQuantize(on): tests quantise activations with the scalar form (the AVX-512 one must give the same bytes).
Napi::Value QScalarQuantize(const Napi::CallbackInfo& info) {
  force_scalar_quantize = info[0].As<Napi::Boolean>().Value() ? 1 : 0;
  return Napi::Boolean::New(info.Env(), has_avx512());
}

Napi::Value QForcePortable(const Napi::CallbackInfo& info) {
  force_portable = info[0].As<Napi::Boolean>().Value() ? 1 : 0;
  return Napi::Boolean::New(info.Env(), has_avx512());
}

// Which decode kernels this CPU runs: { avx512, avx512bf16, avx512vnni, avxvnni, avx2, int8 }; int8 lists the
// int8-activation kernels it can run, best (the default) first, the portable loop last.
Napi::Value QKernels(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("avx512", has_avx512());
  o.Set("avx512bf16", cpu_has_avx512_bf16());
  o.Set("avx512vnni", has_avx512_vnni());
  o.Set("avxvnni", has_avx_vnni());
  o.Set("avx2", cpu_has_avx2_fma());
  Napi::Array int8 = Napi::Array::New(info.Env());
  for (int k = I8_AVX512VNNI; k <= I8_PORTABLE; k++)
    if (int8_kernel_runs(k)) int8.Set(int8.Length(), int8_kernel_names[k]);
  o.Set("int8", int8);
  return o;
}

}  // namespace

void register_quant(Napi::Env env, Napi::Object exports) {
  exports.Set("qmatmul", Napi::Function::New(env, QMatmul));
  exports.Set("qForcePortable", Napi::Function::New(env, QForcePortable));
  exports.Set("qScalarQuantize", Napi::Function::New(env, QScalarQuantize));
  exports.Set("qInt8Kernel", Napi::Function::New(env, QInt8Kernel));
  exports.Set("qKernels", Napi::Function::New(env, QKernels));
}

}  // namespace glmv
