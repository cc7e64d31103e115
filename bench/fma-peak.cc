// The fp32 FMA peak of one core, for bench:engine (section 1c): independent fused multiply-adds on registers only, as
// wide as the CPU it is compiled for (-march=native), so no kernel that multiplies float32 on this core can beat it.
// Prints {"gflops": G}. GEMM_START_AT (ms since the epoch): wait until then, so that processes started side by side
// (one per core) measure together, as the GEMM envelope's pairs do.
#include <immintrin.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>

#if defined(__AVX512F__)
using V = __m512;
static inline V fma(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }
static inline V splat(float x) { return _mm512_set1_ps(x); }
static inline float sum(V v) { return _mm512_reduce_add_ps(v); }
#elif defined(__FMA__)
using V = __m256;
static inline V fma(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }
static inline V splat(float x) { return _mm256_set1_ps(x); }
static inline float sum(V v) {
  alignas(32) float t[8];
  _mm256_store_ps(t, v);
  return t[0] + t[1] + t[2] + t[3] + t[4] + t[5] + t[6] + t[7];
}
#else
using V = float;
static inline V fma(V a, V b, V c) { return a * b + c; }
static inline V splat(float x) { return x; }
static inline float sum(V v) { return v; }
#endif

static double now() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}

// 12 independent chains cover the FMA latency of two pipes (4–5 cycles each).
__attribute__((noinline)) static float run(long iters) {
  V acc[12];
  const V b = splat(1.0000001f), c = splat(1e-7f);
  for (int i = 0; i < 12; i++) acc[i] = splat(0.1f * i);
  for (long it = 0; it < iters; it++) {
#pragma GCC unroll 12
    for (int i = 0; i < 12; i++) acc[i] = fma(acc[i], b, c);
  }
  float s = 0;
  for (int i = 0; i < 12; i++) s += sum(acc[i]);
  return s;
}

int main(int argc, char** argv) {
  const double secs = argc > 1 ? atof(argv[1]) : 1.0;
  const char* at = getenv("GEMM_START_AT");
  if (at) {
    const double start = atof(at) / 1000;
    while (std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count() < start)
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  run(20000000);  // warm-up: the clock ramps up
  long iters = 0, chunk = 10000000;
  float keep = 0;
  const double t0 = now();
  while (now() - t0 < secs) {
    keep += run(chunk);
    iters += chunk;
  }
  const double flops = iters * 12.0 * (sizeof(V) / sizeof(float)) * 2;
  printf("{\"gflops\": %.1f, \"lanes\": %d, \"check\": %g}\n", flops / (now() - t0) / 1e9, (int)(sizeof(V) / sizeof(float)), keep);
}
