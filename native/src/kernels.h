// Kernel entry points of the glmv native backend (float32 unless stated). See src/engine/backend.ts for the
// contract each one implements; the TypeScript reference backend is the specification they are tested against.
#pragma once
#include <cstdint>

#include "common.h"

namespace glmv {

enum Unary { U_NEG, U_EXP, U_LOG, U_SQRT, U_RSQRT, U_TANH, U_SIGMOID, U_SILU, U_GELU, U_GELU_TANH, U_RELU, U_ABS, U_SIN, U_COS, U_SQUARE, U_RECIP, U_SIGN };
enum Binary { B_ADD, B_SUB, B_MUL, B_DIV, B_POW, B_MAX, B_MIN, B_EQ, B_NE, B_LT, B_LE, B_GT, B_GE };
enum Reduce { R_SUM, R_MAX, R_MIN, R_ARGMAX, R_ARGMIN };
enum DT { DT_F32 = 0, DT_F64 = 1, DT_BF16 = 2, DT_I32 = 3, DT_BOOL = 4 };

constexpr int kMaxDims = 12;

// elementwise.cc
void unary_f32(int op, const float* x, float* out, i64 n);
void unary_bwd_f32(int op, const float* x, const float* y, const float* dy, float* dx, i64 n);
void swiglu_f32(const float* gate, i64 gRow, const float* up, i64 uRow, float* out, i64 rows, i64 cols);
void swiglu_bwd_f32(const float* gate, i64 gRow, const float* up, i64 uRow, const float* dout, float* dgate, float* dup, i64 rows, i64 cols);
void affine_f32(const float* x, float alpha, float beta, float* out, i64 n);
void binary_f32(int op, const float* a, const i64* as, const float* b, const i64* bs, void* out, bool outBool, const i64* shape, int nd);
void where_f32(const uint8_t* c, const i64* cs, const float* a, const i64* as, const float* b, const i64* bs, float* out, const i64* shape, int nd);
void strided_copy(int elemBytes, const void* src, const i64* ss, void* dst, const i64* ds, const i64* shape, int nd);
void strided_add_f32(const float* src, const i64* ss, float* dst, const i64* ds, const i64* shape, int nd);
void cast(const void* src, int st, void* dst, int dt, i64 n);

// rows.cc
void reduce_f32(int op, const float* x, void* out, i64 outer, i64 r, i64 inner);
double sum_squares_f32(const float* x, i64 n);
void softmax_f32(const float* x, float* out, i64 rows, i64 cols, bool log);
void softmax_bwd_f32(const float* y, const float* dy, float* dx, i64 rows, i64 cols, bool log);
void layernorm_f32(const float* x, const float* w, const float* b, float* out, float* mean, float* rstd, i64 rows, i64 cols, float eps);
void layernorm_bwd_f32(const float* x, const float* w, const float* mean, const float* rstd, const float* dy, float* dx, float* dw, float* db, i64 rows, i64 cols);
void rmsnorm_f32(const float* x, const float* w, float* out, float* rstd, i64 rows, i64 cols, float eps);
void rmsnorm_bwd_f32(const float* x, const float* w, const float* rstd, const float* dy, float* dx, float* dw, i64 rows, i64 cols);
void cross_entropy_f32(const float* logits, const int32_t* t, const float* w, float* loss, float* lse, i64 rows, i64 V, int ignore);
void cross_entropy_bwd_f32(const float* logits, const int32_t* t, const float* w, const float* lse, const float* dloss, float* dlogits, i64 rows, i64 V, int ignore);

// gemm.cc
void matmul_f32(const float* a, const float* b, float* out, i64 batch, i64 m, i64 n, i64 k, bool ta, bool tb, i64 aB, i64 bB, float alpha, float beta);
void matmul_bf16(const uint16_t* a, const uint16_t* b, float* out, i64 batch, i64 m, i64 n, i64 k, bool ta, bool tb, i64 aB, i64 bB, float alpha, float beta);
// Whether bf16 GEMMs run on oneDNN's bf16 kernels (AVX512_BF16 / AMX) or are widened to float32 sgemm.
bool bf16_gemm_native();
// Whether oneDNN's effective ISA (ONEDNN_MAX_CPU_ISA caps it) includes every feature bit of `dnnl_cpu_isa_t` mask.
// The engine's own AVX-512 / VNNI / BF16 kernels ask it too, so one variable reproduces a lesser CPU for all of them.
bool isa_allows(unsigned mask);
// The CPU checks the kernels choose by, each also allowed by that cap (the quantised and bf16 decode kernels share them).
bool cpu_has_avx2_fma();
bool cpu_has_avx512_bf16();
// float32 GEMM path: 1 dnnl_sgemm, 2 cached matmul primitive, 3 one sgemm block per thread (the default); returns the
// previous mode (benchmarks compare them in one process).
int set_f32_gemm_mode(int mode);
// Decode-shaped bf16 products (<= 8 rows) through the AVX512-BF16 GEMV kernel (default on) or oneDNN.
void set_bf16_gemv(bool on);

// attention.cc
struct AttnArgs {
  const float *q, *k, *v;
  float *out, *lse;
  i64 B, Lq, Lk, Hq, Hkv, D;
  i64 qBatch, qRow, kBatch, kRow, vBatch, vRow;
  float scale;
  bool causal;
  const int32_t* cu;  // nullable
  i64 nCu;
  const int32_t* keyStart;  // nullable
  // backward only
  const float* dout;
  float *dq, *dk, *dv;
};
void attention_fwd_f32(const AttnArgs& a);
void attention_bwd_f32(const AttnArgs& a);

// misc.cc
void index_select(int elemBytes, const void* x, const int32_t* idx, void* out, i64 outer, i64 n, i64 inner, i64 nIdx);
void index_add_f32(const float* src, const int32_t* idx, float* out, i64 outer, i64 n, i64 inner, i64 nIdx);
void gather_f32(const float* x, const int32_t* idx, float* out, i64 outer, i64 n, i64 inner, i64 k);
void scatter_add_f32(const float* src, const int32_t* idx, float* out, i64 outer, i64 n, i64 inner, i64 k);
void rope_f32(const float* x, const float* cos, const float* sin, float* out, i64 B, i64 L, i64 H, i64 D, i64 rot, i64 csBatch, bool interleaved, bool inverse);
void topk_f32(const float* x, float* vals, int32_t* idx, i64 rows, i64 n, i64 k);
void grid_sample_bicubic_f32(const float* table, i64 H, i64 W, i64 C, const double* gx, const double* gy, i64 P, float* out);
void grid_sample_bicubic_bwd_f32(const float* dout, i64 H, i64 W, i64 C, const double* gx, const double* gy, i64 P, float* dtable);
void im2col_f32(const float* x, float* cols, i64 N, i64 C, const i64* inS, const i64* k, const i64* st, const i64* pad, const i64* outS, int nd);
void col2im_f32(const float* cols, float* dx, i64 N, i64 C, const i64* inS, const i64* k, const i64* st, const i64* pad, const i64* outS, int nd);
void adamw_f32(float* p, const float* g, float* m, float* v, i64 n, float lr, float b1, float b2, float eps, float wd, float bc1, float bc2);

}  // namespace glmv
