// Shared helpers for the glmv native kernels: threading and vectorisable math.
#pragma once
#include <omp.h>
#include <pthread.h>
#include <signal.h>

#include <cmath>
#include <cstdint>
#include <cstring>

typedef int64_t i64;

namespace glmv {

inline int max_threads() { return omp_get_max_threads(); }

// Decode-shaped products (a few rows of x against a weight) stream the weight from memory once. The hardware
// prefetchers alone keep too few lines in flight for that: prefetching each line this many bytes ahead of its use
// raised one core's streaming rate by about a third on AMD Zen 5 (tried: 1–8 KiB; 4 KiB was best). A prefetch never
// faults, so reading past the end of a row or a mapping is harmless.
extern i64 stream_prefetch_bytes;
inline void prefetch_ahead(const void* p) { __builtin_prefetch((const char*)p + stream_prefetch_bytes, 0, 3); }

// oneDNN's JIT GEMM kernels (Debian oneDNN 2.6) corrupt the heap when an asynchronous signal — e.g. SIGPROF from
// `node --cpu-prof` — lands while they run (reproduced with a plain C loop of dnnl_sgemm under setitimer). Blocking
// asynchronous signals for the duration of a oneDNN call delays them by at most that call. Synchronous fault
// signals stay deliverable.
class SignalGuard {
 public:
  SignalGuard() {
    sigset_t set;
    sigfillset(&set);
    for (int s : {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT}) sigdelset(&set, s);
    pthread_sigmask(SIG_BLOCK, &set, &old_);
  }
  ~SignalGuard() { pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  SignalGuard(const SignalGuard&) = delete;
  SignalGuard& operator=(const SignalGuard&) = delete;

 private:
  sigset_t old_;
};

// Runs f(begin, end) over [0, n) split into contiguous chunks, one per thread, when n is large enough
// to pay for the fork/join; otherwise inline.
template <class F>
inline void parallel_range(i64 n, i64 grain, F f) {
  int nt = max_threads();
  if (n <= grain || nt <= 1 || omp_in_parallel()) {
    f((i64)0, n);
    return;
  }
  i64 want = (n + grain - 1) / grain;
  if (want < nt) nt = (int)want;
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    int T = omp_get_num_threads();
    i64 b = n * t / T, e = n * (t + 1) / T;
    f(b, e);
  }
}

// bf16 ↔ float32. A bf16 is the top half of a float32, so widening is exact. Narrowing rounds to nearest even and
// keeps NaNs quiet NaNs; it is branch-free so loops over it vectorise.
inline float bf16_to_f32(uint16_t h) {
  const uint32_t u = (uint32_t)h << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}

inline uint16_t f32_to_bf16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  const uint32_t rounded = (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
  const uint32_t nan = (u >> 16) | 0x40u;
  const bool isNan = (u & 0x7fffffffu) > 0x7f800000u;
  return (uint16_t)(isNan ? nan : rounded);
}

// exp with ~2 ulp error that GCC vectorises (no libm call): Cody–Waite reduction, degree-7 polynomial,
// exponent built with integer ops. exp(-inf) = 0, exp(NaN) = NaN.
inline float fexp(float x) {
  const float hi = 88.7f, lo = -87.3f;
  float xc = x > hi ? hi : x;
  xc = xc < lo ? lo : xc;
  float n = std::nearbyint(xc * 1.4426950408889634f);
  float r = xc - n * 0.693145751953125f;
  r = r - n * 1.428606765330187e-06f;
  float p = 1.f / 5040.f;
  p = p * r + 1.f / 720.f;
  p = p * r + 1.f / 120.f;
  p = p * r + 1.f / 24.f;
  p = p * r + 1.f / 6.f;
  p = p * r + 0.5f;
  p = p * r + 1.f;
  p = p * r + 1.f;
  int32_t e = ((int32_t)n + 127) << 23;
  float scale;
  std::memcpy(&scale, &e, 4);
  float y = p * scale;
  y = x < lo ? 0.f : y;
  return x != x ? x : y;
}

// exp(x) − 1 without cancellation near 0.
inline float fexpm1(float x) {
  float a = x < 0 ? -x : x;
  // Taylor to x^9/9! for |x| < 0.5 (error < 1e-9 relative).
  float p = 1.f / 362880.f;
  p = p * x + 1.f / 40320.f;
  p = p * x + 1.f / 5040.f;
  p = p * x + 1.f / 720.f;
  p = p * x + 1.f / 120.f;
  p = p * x + 1.f / 24.f;
  p = p * x + 1.f / 6.f;
  p = p * x + 0.5f;
  p = p * x + 1.f;
  p = p * x;
  float big = fexp(x) - 1.f;
  return a < 0.5f ? p : big;
}

inline float ftanh(float x) {
  // tanh = expm1(2x) / (expm1(2x) + 2), on |x| with the sign restored (no overflow for large |x|).
  float a = x < 0 ? -x : x;
  a = a > 20.f ? 20.f : a;
  float e = fexpm1(2.f * a);
  float t = e / (e + 2.f);
  t = x < 0 ? -t : t;
  return x != x ? x : t;
}

inline float fsigmoid(float x) { return 1.f / (1.f + fexp(-x)); }

// erf via the Numerical Recipes erfc Chebyshev fit (fractional error < 1.2e-7), vectorisable.
inline float ferf(float x) {
  float z = x < 0 ? -x : x;
  float t = 1.f / (1.f + 0.5f * z);
  float p = 0.17087277f;
  p = p * t - 0.82215223f;
  p = p * t + 1.48851587f;
  p = p * t - 1.13520398f;
  p = p * t + 0.27886807f;
  p = p * t - 0.18628806f;
  p = p * t + 0.09678418f;
  p = p * t + 0.37409196f;
  p = p * t + 1.00002368f;
  p = p * t - 1.26551223f;
  float erfc = t * fexp(-z * z + p);
  float r = 1.f - erfc;
  return x < 0 ? -r : r;
}

constexpr float kSqrt2OverPi = 0.7978845608028654f;
constexpr float kInvSqrt2 = 0.7071067811865476f;
constexpr float kInvSqrt2Pi = 0.3989422804014327f;

}  // namespace glmv
