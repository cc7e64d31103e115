// GEMM through oneDNN. float32 uses dnnl_sgemm (JIT AVX-512 kernels, OpenMP inside); small batched products run
// one GEMM per thread instead, since each is too small to split. bfloat16 × bfloat16 → float32 uses a cached
// oneDNN matmul primitive (the C API has no bf16 GEMM).
#include <map>
#include <mutex>
#include <oneapi/dnnl/dnnl.h>
#include <oneapi/dnnl/dnnl.hpp>
#include <stdexcept>
#include <string>
#include <tuple>

#include "kernels.h"

namespace glmv {

static void check(dnnl_status_t s, const char* what) {
  if (s != dnnl_success) throw std::runtime_error(std::string(what) + " failed with oneDNN status " + std::to_string((int)s));
}

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
  for (i64 p = 0; p < batch; p++) check(dnnl_sgemm(TA, TB, m, n, k, alpha, a + p * aB, lda, b + p * bB, ldb, beta, out + p * m * n, ldc), "dnnl_sgemm");
}

namespace {
using dnnl::engine;
using dnnl::matmul;
using dnnl::memory;
using dnnl::stream;

struct Bf16Key {
  i64 m, n, k;
  bool ta, tb, beta;
  bool operator<(const Bf16Key& o) const { return std::tie(m, n, k, ta, tb, beta) < std::tie(o.m, o.n, o.k, o.ta, o.tb, o.beta); }
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
  memory::desc a({key.m, key.k}, memory::data_type::bf16, key.ta ? memory::dims{1, key.m} : memory::dims{key.k, 1});
  memory::desc b({key.k, key.n}, memory::data_type::bf16, key.tb ? memory::dims{1, key.k} : memory::dims{key.n, 1});
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

void matmul_bf16(const uint16_t* a, const uint16_t* b, float* out, i64 batch, i64 m, i64 n, i64 k, bool ta, bool tb, i64 aB, i64 bB, float alpha, float beta) {
  if (beta != 0.f && beta != 1.f) throw std::runtime_error("bf16 matmul supports beta 0 or 1");
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
