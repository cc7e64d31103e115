// N-API glue: unpacks typed arrays (zero-copy) and scalar arguments, calls the kernels, turns C++ exceptions
// into JavaScript errors. Shapes and strides travel in one Float64Array ("meta") to keep calls cheap.
#include <napi.h>
#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <stdexcept>
#include <string>

#include "addon.h"
#include "kernels.h"

using namespace glmv;

namespace {

template <class T = void>
T* ptr(const Napi::Value& v) {
  napi_typedarray_type type;
  size_t length;
  void* data;
  napi_value ab;
  size_t off;
  napi_get_typedarray_info(v.Env(), v, &type, &length, &data, &ab, &off);
  return (T*)data;  // napi returns the data pointer already adjusted by the byte offset
}

template <class T = void>
T* ptrOrNull(const Napi::Value& v) {
  return v.IsNull() || v.IsUndefined() ? nullptr : ptr<T>(v);
}

inline i64 I(const Napi::CallbackInfo& info, int i) { return (i64)info[i].As<Napi::Number>().Int64Value(); }
inline double Dbl(const Napi::CallbackInfo& info, int i) { return info[i].As<Napi::Number>().DoubleValue(); }
inline bool B(const Napi::CallbackInfo& info, int i) { return info[i].As<Napi::Boolean>().Value(); }

// meta layout: [nd, shape[nd], strides_0[nd], strides_1[nd], ...]
struct Meta {
  int nd;
  i64 shape[kMaxDims];
  i64 st[4][kMaxDims];
};

Meta readMeta(const Napi::Value& v, int nops) {
  const double* m = ptr<double>(v);
  Meta out;
  out.nd = (int)m[0];
  if (out.nd < 0 || out.nd > kMaxDims) throw std::runtime_error("tensor rank " + std::to_string(out.nd) + " exceeds the native limit of 12");
  for (int i = 0; i < out.nd; i++) out.shape[i] = (i64)m[1 + i];
  for (int k = 0; k < nops; k++)
    for (int i = 0; i < out.nd; i++) out.st[k][i] = (i64)m[1 + out.nd * (1 + k) + i];
  return out;
}

#define GUARD_BEGIN try {
#define GUARD_END                                                              \
  }                                                                            \
  catch (const std::exception& e) {                                            \
    Napi::Error::New(info.Env(), std::string("native kernel: ") + e.what()).ThrowAsJavaScriptException(); \
  }                                                                            \
  return info.Env().Undefined();

Napi::Value Unary(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  unary_f32((int)I(info, 0), ptr<float>(info[1]), ptr<float>(info[2]), I(info, 3));
  GUARD_END
}

Napi::Value UnaryBwd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  unary_bwd_f32((int)I(info, 0), ptr<float>(info[1]), ptr<float>(info[2]), ptr<float>(info[3]), ptr<float>(info[4]), I(info, 5));
  GUARD_END
}

Napi::Value Swiglu(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  swiglu_f32(ptr<float>(info[0]), I(info, 1), ptr<float>(info[2]), I(info, 3), ptr<float>(info[4]), I(info, 5), I(info, 6));
  GUARD_END
}

Napi::Value SwigluBwd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  swiglu_bwd_f32(ptr<float>(info[0]), I(info, 1), ptr<float>(info[2]), I(info, 3), ptr<float>(info[4]), ptr<float>(info[5]), ptr<float>(info[6]), I(info, 7), I(info, 8));
  GUARD_END
}

Napi::Value Affine(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  affine_f32(ptr<float>(info[0]), (float)Dbl(info, 1), (float)Dbl(info, 2), ptr<float>(info[3]), I(info, 4));
  GUARD_END
}

// binary(op, a, b, out, outBool, meta[nd, shape, aStrides, bStrides])
Napi::Value Binary(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  Meta m = readMeta(info[5], 2);
  binary_f32((int)I(info, 0), ptr<float>(info[1]), m.st[0], ptr<float>(info[2]), m.st[1], ptr(info[3]), B(info, 4), m.shape, m.nd);
  GUARD_END
}

// where(cond, a, b, out, meta[nd, shape, cStrides, aStrides, bStrides])
Napi::Value Where(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  Meta m = readMeta(info[4], 3);
  where_f32(ptr<uint8_t>(info[0]), m.st[0], ptr<float>(info[1]), m.st[1], ptr<float>(info[2]), m.st[2], ptr<float>(info[3]), m.shape, m.nd);
  GUARD_END
}

// stridedCopy(elemBytes, src, dst, meta[nd, shape, srcStrides, dstStrides])
Napi::Value StridedCopy(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  Meta m = readMeta(info[3], 2);
  strided_copy((int)I(info, 0), ptr(info[1]), m.st[0], ptr(info[2]), m.st[1], m.shape, m.nd);
  GUARD_END
}

Napi::Value StridedAdd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  Meta m = readMeta(info[2], 2);
  strided_add_f32(ptr<float>(info[0]), m.st[0], ptr<float>(info[1]), m.st[1], m.shape, m.nd);
  GUARD_END
}

Napi::Value Cast(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  cast(ptr(info[0]), (int)I(info, 1), ptr(info[2]), (int)I(info, 3), I(info, 4));
  GUARD_END
}

Napi::Value Reduce(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  reduce_f32((int)I(info, 0), ptr<float>(info[1]), ptr(info[2]), I(info, 3), I(info, 4), I(info, 5));
  GUARD_END
}

Napi::Value SumSquares(const Napi::CallbackInfo& info) {
  try {
    return Napi::Number::New(info.Env(), sum_squares_f32(ptr<float>(info[0]), I(info, 1)));
  } catch (const std::exception& e) {
    Napi::Error::New(info.Env(), e.what()).ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
}

// matmul(bf16, a, b, out, batch, m, n, k, ta, tb, aB, bB, alpha, beta)
Napi::Value Matmul(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  bool bf16 = B(info, 0);
  i64 batch = I(info, 4), m = I(info, 5), n = I(info, 6), k = I(info, 7);
  bool ta = B(info, 8), tb = B(info, 9);
  i64 aB = I(info, 10), bB = I(info, 11);
  float alpha = (float)Dbl(info, 12), beta = (float)Dbl(info, 13);
  if (bf16)
    matmul_bf16(ptr<uint16_t>(info[1]), ptr<uint16_t>(info[2]), ptr<float>(info[3]), batch, m, n, k, ta, tb, aB, bB, alpha, beta);
  else
    matmul_f32(ptr<float>(info[1]), ptr<float>(info[2]), ptr<float>(info[3]), batch, m, n, k, ta, tb, aB, bB, alpha, beta);
  GUARD_END
}

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  softmax_f32(ptr<float>(info[0]), ptr<float>(info[1]), I(info, 2), I(info, 3), B(info, 4));
  GUARD_END
}

Napi::Value SoftmaxBwd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  softmax_bwd_f32(ptr<float>(info[0]), ptr<float>(info[1]), ptr<float>(info[2]), I(info, 3), I(info, 4), B(info, 5));
  GUARD_END
}

Napi::Value LayerNorm(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  layernorm_f32(ptr<float>(info[0]), ptrOrNull<float>(info[1]), ptrOrNull<float>(info[2]), ptr<float>(info[3]), ptr<float>(info[4]), ptr<float>(info[5]), I(info, 6), I(info, 7), (float)Dbl(info, 8));
  GUARD_END
}

Napi::Value LayerNormBwd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  layernorm_bwd_f32(ptr<float>(info[0]), ptrOrNull<float>(info[1]), ptr<float>(info[2]), ptr<float>(info[3]), ptr<float>(info[4]), ptr<float>(info[5]), ptrOrNull<float>(info[6]), ptrOrNull<float>(info[7]), I(info, 8), I(info, 9));
  GUARD_END
}

Napi::Value RmsNorm(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  rmsnorm_f32(ptr<float>(info[0]), ptrOrNull<float>(info[1]), ptr<float>(info[2]), ptr<float>(info[3]), I(info, 4), I(info, 5), (float)Dbl(info, 6));
  GUARD_END
}

Napi::Value RmsNormBwd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  rmsnorm_bwd_f32(ptr<float>(info[0]), ptrOrNull<float>(info[1]), ptr<float>(info[2]), ptr<float>(info[3]), ptr<float>(info[4]), ptrOrNull<float>(info[5]), I(info, 6), I(info, 7));
  GUARD_END
}

Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  cross_entropy_f32(ptr<float>(info[0]), ptr<int32_t>(info[1]), ptrOrNull<float>(info[2]), ptr<float>(info[3]), ptr<float>(info[4]), I(info, 5), I(info, 6), (int)I(info, 7));
  GUARD_END
}

Napi::Value CrossEntropyBwd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  cross_entropy_bwd_f32(ptr<float>(info[0]), ptr<int32_t>(info[1]), ptrOrNull<float>(info[2]), ptr<float>(info[3]), ptr<float>(info[4]), ptr<float>(info[5]), I(info, 6), I(info, 7), (int)I(info, 8));
  GUARD_END
}

Napi::Value IndexSelect(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  index_select((int)I(info, 0), ptr(info[1]), ptr<int32_t>(info[2]), ptr(info[3]), I(info, 4), I(info, 5), I(info, 6), I(info, 7));
  GUARD_END
}

Napi::Value IndexAdd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  index_add_f32(ptr<float>(info[0]), ptr<int32_t>(info[1]), ptr<float>(info[2]), I(info, 3), I(info, 4), I(info, 5), I(info, 6));
  GUARD_END
}

Napi::Value Gather(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  gather_f32(ptr<float>(info[0]), ptr<int32_t>(info[1]), ptr<float>(info[2]), I(info, 3), I(info, 4), I(info, 5), I(info, 6));
  GUARD_END
}

Napi::Value ScatterAdd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  scatter_add_f32(ptr<float>(info[0]), ptr<int32_t>(info[1]), ptr<float>(info[2]), I(info, 3), I(info, 4), I(info, 5), I(info, 6));
  GUARD_END
}

Napi::Value Rope(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  rope_f32(ptr<float>(info[0]), ptr<float>(info[1]), ptr<float>(info[2]), ptr<float>(info[3]), I(info, 4), I(info, 5), I(info, 6), I(info, 7), I(info, 8), I(info, 9), B(info, 10), B(info, 11));
  GUARD_END
}

AttnArgs readAttn(const Napi::CallbackInfo& info, bool bwd) {
  AttnArgs a{};
  a.q = ptr<float>(info[0]);
  a.k = ptr<float>(info[1]);
  a.v = ptr<float>(info[2]);
  a.out = ptr<float>(info[3]);
  a.lse = ptr<float>(info[4]);
  const double* d = ptr<double>(info[5]);  // B, Lq, Lk, Hq, Hkv, D, qBatch, qRow, kBatch, kRow, vBatch, vRow, scale, causal
  a.B = (i64)d[0];
  a.Lq = (i64)d[1];
  a.Lk = (i64)d[2];
  a.Hq = (i64)d[3];
  a.Hkv = (i64)d[4];
  a.D = (i64)d[5];
  a.qBatch = (i64)d[6];
  a.qRow = (i64)d[7];
  a.kBatch = (i64)d[8];
  a.kRow = (i64)d[9];
  a.vBatch = (i64)d[10];
  a.vRow = (i64)d[11];
  a.scale = (float)d[12];
  a.causal = d[13] != 0;
  if (info[6].IsNull()) {
    a.cu = nullptr;
    a.nCu = 0;
  } else {
    a.cu = ptr<int32_t>(info[6]);
    a.nCu = (i64)info[6].As<Napi::TypedArray>().ElementLength();
  }
  a.keyStart = ptrOrNull<int32_t>(info[7]);
  if (bwd) {
    a.dout = ptr<float>(info[8]);
    a.dq = ptr<float>(info[9]);
    a.dk = ptr<float>(info[10]);
    a.dv = ptr<float>(info[11]);
  }
  return a;
}

Napi::Value Attention(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  attention_fwd_f32(readAttn(info, false));
  GUARD_END
}

Napi::Value AttentionBwd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  attention_bwd_f32(readAttn(info, true));
  GUARD_END
}

Napi::Value Topk(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  topk_f32(ptr<float>(info[0]), ptr<float>(info[1]), ptr<int32_t>(info[2]), I(info, 3), I(info, 4), I(info, 5));
  GUARD_END
}

Napi::Value GridSample(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  i64 P = (i64)info[4].As<Napi::TypedArray>().ElementLength();
  grid_sample_bicubic_f32(ptr<float>(info[0]), I(info, 1), I(info, 2), I(info, 3), ptr<double>(info[4]), ptr<double>(info[5]), P, ptr<float>(info[6]));
  GUARD_END
}

Napi::Value GridSampleBwd(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  i64 P = (i64)info[4].As<Napi::TypedArray>().ElementLength();
  grid_sample_bicubic_bwd_f32(ptr<float>(info[0]), I(info, 1), I(info, 2), I(info, 3), ptr<double>(info[4]), ptr<double>(info[5]), P, ptr<float>(info[6]));
  GUARD_END
}

// im2col(x, cols, meta[N, C, nd, inS.., k.., stride.., pad.., outS..], backward)
Napi::Value Im2col(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  const double* m = ptr<double>(info[2]);
  i64 N = (i64)m[0], C = (i64)m[1];
  int nd = (int)m[2];
  if (nd < 1 || nd > 3) throw std::runtime_error("im2col supports 1–3 spatial dims");
  i64 v[5][3];
  for (int g = 0; g < 5; g++)
    for (int d = 0; d < nd; d++) v[g][d] = (i64)m[3 + g * nd + d];
  if (B(info, 3))
    col2im_f32(ptr<float>(info[0]), ptr<float>(info[1]), N, C, v[0], v[1], v[2], v[3], v[4], nd);
  else
    im2col_f32(ptr<float>(info[0]), ptr<float>(info[1]), N, C, v[0], v[1], v[2], v[3], v[4], nd);
  GUARD_END
}

Napi::Value Adamw(const Napi::CallbackInfo& info) {
  GUARD_BEGIN
  adamw_f32(ptr<float>(info[0]), ptr<float>(info[1]), ptr<float>(info[2]), ptr<float>(info[3]), I(info, 4), (float)Dbl(info, 5), (float)Dbl(info, 6), (float)Dbl(info, 7), (float)Dbl(info, 8), (float)Dbl(info, 9), (float)Dbl(info, 10), (float)Dbl(info, 11));
  GUARD_END
}

Napi::Value SetThreads(const Napi::CallbackInfo& info) {
  int n = (int)I(info, 0);
  if (n > 0) omp_set_num_threads(n);
  return Napi::Number::New(info.Env(), omp_get_max_threads());
}

// setF32Gemm(mode): 1 dnnl_sgemm, 2 cached matmul primitive, 3 one sgemm block per thread (the default); returns the
// mode it replaced (benchmarks and tests compare the paths in one run and put the previous one back).
Napi::Value SetF32Gemm(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), set_f32_gemm_mode((int)I(info, 0)));
}

// setBf16Gemv(on): decode-shaped bf16 products through the AVX512-BF16 GEMV kernel (default) or oneDNN.
Napi::Value SetBf16Gemv(const Napi::CallbackInfo& info) {
  set_bf16_gemv(B(info, 0));
  return info.Env().Undefined();
}

// setStreamPrefetch(bytes): how far ahead the decode kernels prefetch the weight they stream (0: off); returns the
// distance it replaced (benchmarks compare in one process and put the previous one back).
Napi::Value SetStreamPrefetch(const Napi::CallbackInfo& info) {
  const i64 bytes = (i64)I(info, 0);
  if (bytes < 0 || bytes > (1 << 20)) {
    Napi::RangeError::New(info.Env(), "setStreamPrefetch: bytes must be in [0, 1 MiB]").ThrowAsJavaScriptException();
    return info.Env().Undefined();
  }
  const i64 prev = stream_prefetch_bytes;
  stream_prefetch_bytes = bytes;
  return Napi::Number::New(info.Env(), (double)prev);
}

Napi::Value Info(const Napi::CallbackInfo& info) {
  Napi::Object o = Napi::Object::New(info.Env());
  o.Set("threads", omp_get_max_threads());
  const dnnl_version_t* v = dnnl_version();
  o.Set("onednn", std::to_string(v->major) + "." + std::to_string(v->minor) + "." + std::to_string(v->patch));
  o.Set("isa", (int)dnnl_get_effective_cpu_isa());
  o.Set("bf16Gemm", bf16_gemm_native() ? "onednn-bf16" : "f32-widened");
  return o;
}

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  {
    // Create the OpenMP worker threads now, with asynchronous signals blocked: they inherit that mask for good, so a
    // process-directed signal is never delivered to a thread running a oneDNN kernel (see SignalGuard).
    SignalGuard guard;
#pragma omp parallel
    { (void)omp_get_thread_num(); }
  }
#define REG(name, fn) exports.Set(name, Napi::Function::New(env, fn))
  REG("unary", Unary);
  REG("unaryBackward", UnaryBwd);
  REG("swiglu", Swiglu);
  REG("swigluBackward", SwigluBwd);
  REG("affine", Affine);
  REG("binary", Binary);
  REG("where", Where);
  REG("stridedCopy", StridedCopy);
  REG("stridedAdd", StridedAdd);
  REG("cast", Cast);
  REG("reduce", Reduce);
  REG("sumSquares", SumSquares);
  REG("matmul", Matmul);
  REG("softmax", Softmax);
  REG("softmaxBackward", SoftmaxBwd);
  REG("layerNorm", LayerNorm);
  REG("layerNormBackward", LayerNormBwd);
  REG("rmsNorm", RmsNorm);
  REG("rmsNormBackward", RmsNormBwd);
  REG("crossEntropy", CrossEntropy);
  REG("crossEntropyBackward", CrossEntropyBwd);
  REG("indexSelect", IndexSelect);
  REG("indexAdd", IndexAdd);
  REG("gather", Gather);
  REG("scatterAdd", ScatterAdd);
  REG("rope", Rope);
  REG("attention", Attention);
  REG("attentionBackward", AttentionBwd);
  REG("topk", Topk);
  REG("gridSample", GridSample);
  REG("gridSampleBackward", GridSampleBwd);
  REG("im2col", Im2col);
  REG("adamw", Adamw);
  REG("setThreads", SetThreads);
  REG("setF32Gemm", SetF32Gemm);
  REG("setBf16Gemv", SetBf16Gemv);
  REG("setStreamPrefetch", SetStreamPrefetch);
  REG("info", Info);
#undef REG
  register_mapped(env, exports);
  register_quant(env, exports);
  return exports;
}

}  // namespace

NODE_API_MODULE(glmv_native, Init)
