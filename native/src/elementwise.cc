// Elementwise kernels: unary activations and their derivatives, broadcast binary ops over arbitrary strides,
// where, strided copies and dtype casts. Inner loops are written so GCC vectorises them (-O3 -march=native).
#include <algorithm>
#include <cmath>

#include "kernels.h"

namespace glmv {

static const i64 kGrain = 1 << 15;

// The tanh-GELU's gate ½(1 + tanh u), u = √(2/π)(v + 0.044715 v³), is exactly σ(2u): one exp and one division
// instead of tanh's expm1 (a polynomial and an exp, blended) and its division. Where e^{-2u} is past fexp's clamp
// the gate is 0, not 1/(1 + e^{88.7}), so the backward's v·σ(1 − σ) term stays 0 for very negative v.
static inline float gelu_tanh_gate(float v) {
  const float z = -2.f * kSqrt2OverPi * (v + 0.044715f * v * v * v);
  const float s = 1.f / (1.f + fexp(z));
  return z > 88.f ? 0.f : s;
}

void unary_f32(int op, const float* __restrict x, float* __restrict out, i64 n) {
  parallel_range(n, kGrain, [&](i64 b, i64 e) {
    switch (op) {
#define LOOP(expr)                     \
  for (i64 i = b; i < e; i++) {        \
    float v = x[i];                    \
    out[i] = (expr);                   \
  }                                    \
  break;
      case U_NEG: LOOP(-v)
      case U_EXP: LOOP(fexp(v))
      case U_LOG: LOOP(std::log(v))
      case U_SQRT: LOOP(std::sqrt(v))
      case U_RSQRT: LOOP(1.f / std::sqrt(v))
      case U_TANH: LOOP(ftanh(v))
      case U_SIGMOID: LOOP(fsigmoid(v))
      case U_SILU: LOOP(v * fsigmoid(v))
      case U_GELU: LOOP(0.5f * v * (1.f + ferf(v * kInvSqrt2)))
      case U_GELU_TANH: LOOP(v * gelu_tanh_gate(v))
      case U_RELU: LOOP(v > 0.f ? v : (v != v ? v : 0.f))
      case U_ABS: LOOP(std::fabs(v))
      case U_SIN: LOOP(std::sin(v))
      case U_COS: LOOP(std::cos(v))
      case U_SQUARE: LOOP(v * v)
      case U_RECIP: LOOP(1.f / v)
      case U_SIGN: LOOP(v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f))
#undef LOOP
    }
  });
}

void unary_bwd_f32(int op, const float* __restrict x, const float* __restrict y, const float* __restrict dy, float* __restrict dx, i64 n) {
  parallel_range(n, kGrain, [&](i64 b, i64 e) {
    switch (op) {
#define LOOP(expr)                     \
  for (i64 i = b; i < e; i++) {        \
    float v = x[i], w = y[i];          \
    (void)v;                           \
    (void)w;                           \
    dx[i] = dy[i] * (expr);            \
  }                                    \
  break;
      case U_NEG: LOOP(-1.f)
      case U_EXP: LOOP(w)
      case U_LOG: LOOP(1.f / v)
      case U_SQRT: LOOP(0.5f / w)
      case U_RSQRT: LOOP(-0.5f * w * w * w)
      case U_TANH: LOOP(1.f - w * w)
      case U_SIGMOID: LOOP(w * (1.f - w))
      case U_SILU: {
        for (i64 i = b; i < e; i++) {
          float s = fsigmoid(x[i]);
          dx[i] = dy[i] * (s * (1.f + x[i] * (1.f - s)));
        }
        break;
      }
      case U_GELU: {
        for (i64 i = b; i < e; i++) {
          float v = x[i];
          float cdf = 0.5f * (1.f + ferf(v * kInvSqrt2));
          float pdf = fexp(-0.5f * v * v) * kInvSqrt2Pi;
          dx[i] = dy[i] * (cdf + v * pdf);
        }
        break;
      }
      case U_GELU_TANH: {
        for (i64 i = b; i < e; i++) {
          float v = x[i];
          float s = gelu_tanh_gate(v);
          float du = kSqrt2OverPi * (1.f + 3.f * 0.044715f * v * v);
          // d/dv of v·σ(2u): σ + v·σ(1 − σ)·2u'
          dx[i] = dy[i] * (s + 2.f * v * s * (1.f - s) * du);
        }
        break;
      }
      case U_RELU: LOOP(v > 0.f ? 1.f : 0.f)
      case U_ABS: LOOP(v > 0.f ? 1.f : (v < 0.f ? -1.f : 0.f))
      case U_SIN: LOOP(std::cos(v))
      case U_COS: LOOP(-std::sin(v))
      case U_SQUARE: LOOP(2.f * v)
      case U_RECIP: LOOP(-w * w)
      case U_SIGN: LOOP(0.f)
#undef LOOP
    }
  });
}

void swiglu_f32(const float* gate, i64 gRow, const float* up, i64 uRow, float* out, i64 rows, i64 cols) {
  parallel_range(rows, std::max<i64>(1, kGrain / std::max<i64>(cols, 1)), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* __restrict g = gate + r * gRow;
      const float* __restrict u = up + r * uRow;
      float* __restrict o = out + r * cols;
      for (i64 c = 0; c < cols; c++) o[c] = g[c] * fsigmoid(g[c]) * u[c];
    }
  });
}

void swiglu_bwd_f32(const float* gate, i64 gRow, const float* up, i64 uRow, const float* dout, float* dgate, float* dup, i64 rows, i64 cols) {
  parallel_range(rows, std::max<i64>(1, kGrain / std::max<i64>(cols, 1)), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* __restrict g = gate + r * gRow;
      const float* __restrict u = up + r * uRow;
      const float* __restrict d = dout + r * cols;
      float* __restrict dg = dgate + r * cols;
      float* __restrict du = dup + r * cols;
      for (i64 c = 0; c < cols; c++) {
        const float s = fsigmoid(g[c]);
        dg[c] = d[c] * u[c] * s * (1.f + g[c] * (1.f - s));
        du[c] = d[c] * g[c] * s;
      }
    }
  });
}

void affine_f32(const float* __restrict x, float alpha, float beta, float* out, i64 n) {
  parallel_range(n, kGrain, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; i++) out[i] = alpha * x[i] + beta;
  });
}

// ---- strided iteration -------------------------------------------------------------------------------------

// Drops size-1 dims and merges adjacent dims that are contiguous in every operand.
static int coalesce(int nd, const i64* shape, int nops, const i64* const* strides, i64* oshape, i64 ost[][kMaxDims]) {
  int m = 0;
  for (int i = 0; i < nd; i++) {
    if (shape[i] == 1) continue;
    bool merge = m > 0;
    for (int k = 0; k < nops && merge; k++)
      if (ost[k][m - 1] != strides[k][i] * shape[i]) merge = false;
    if (merge) {
      oshape[m - 1] *= shape[i];
      for (int k = 0; k < nops; k++) ost[k][m - 1] = strides[k][i];
    } else {
      oshape[m] = shape[i];
      for (int k = 0; k < nops; k++) ost[k][m] = strides[k][i];
      m++;
    }
  }
  if (m == 0) {
    oshape[0] = 1;
    for (int k = 0; k < nops; k++) ost[k][0] = 1;
    m = 1;
  }
  return m;
}

// Calls f(outerFlatIndex, offsets[k], innerLen, innerStrides[k]) for every row of the last (coalesced) dim.
// Output operands are contiguous, so row r writes out[r * innerLen ...].
template <int NOPS, class F>
static void for_rows(int nd, const i64* shape, const i64* const* strides, F f) {
  i64 sh[kMaxDims];
  i64 st[NOPS][kMaxDims];
  int m = coalesce(nd, shape, NOPS, strides, sh, st);
  i64 inner = sh[m - 1];
  i64 outer = 1;
  for (int i = 0; i < m - 1; i++) outer *= sh[i];
  i64 is[NOPS];
  for (int k = 0; k < NOPS; k++) is[k] = st[k][m - 1];
  i64 grain = std::max<i64>(1, kGrain / std::max<i64>(inner, 1));
  parallel_range(outer, grain, [&](i64 b, i64 e) {
    if (b >= e) return;
    i64 idx[kMaxDims];
    i64 off[NOPS];
    i64 r = b;
    for (int k = 0; k < NOPS; k++) off[k] = 0;
    for (int d = m - 2; d >= 0; d--) {
      idx[d] = r % sh[d];
      r /= sh[d];
      for (int k = 0; k < NOPS; k++) off[k] += idx[d] * st[k][d];
    }
    for (i64 row = b; row < e; row++) {
      f(row, off, inner, is);
      for (int d = m - 2; d >= 0; d--) {
        idx[d]++;
        for (int k = 0; k < NOPS; k++) off[k] += st[k][d];
        if (idx[d] < sh[d]) break;
        for (int k = 0; k < NOPS; k++) off[k] -= st[k][d] * sh[d];
        idx[d] = 0;
      }
    }
  });
}

template <class Op, class O>
static inline void bin_row(Op op, const float* __restrict a, i64 sa, const float* __restrict b, i64 sb, O* __restrict o, i64 n) {
  if (sa == 1 && sb == 1) {
    for (i64 i = 0; i < n; i++) o[i] = (O)op(a[i], b[i]);
  } else if (sa == 1 && sb == 0) {
    const float bv = *b;
    for (i64 i = 0; i < n; i++) o[i] = (O)op(a[i], bv);
  } else if (sa == 0 && sb == 1) {
    const float av = *a;
    for (i64 i = 0; i < n; i++) o[i] = (O)op(av, b[i]);
  } else {
    for (i64 i = 0; i < n; i++) o[i] = (O)op(a[i * sa], b[i * sb]);
  }
}

template <class Op, class O>
static void bin_run(Op op, const float* a, const i64* as, const float* b, const i64* bs, O* out, const i64* shape, int nd) {
  const i64* strides[2] = {as, bs};
  for_rows<2>(nd, shape, strides, [&](i64 row, const i64* off, i64 n, const i64* is) {
    bin_row(op, a + off[0], is[0], b + off[1], is[1], out + row * n, n);
  });
}

void binary_f32(int op, const float* a, const i64* as, const float* b, const i64* bs, void* out, bool outBool, const i64* shape, int nd) {
  float* of = (float*)out;
  uint8_t* ob = (uint8_t*)out;
  switch (op) {
    case B_ADD: return bin_run([](float x, float y) { return x + y; }, a, as, b, bs, of, shape, nd);
    case B_SUB: return bin_run([](float x, float y) { return x - y; }, a, as, b, bs, of, shape, nd);
    case B_MUL: return bin_run([](float x, float y) { return x * y; }, a, as, b, bs, of, shape, nd);
    case B_DIV: return bin_run([](float x, float y) { return x / y; }, a, as, b, bs, of, shape, nd);
    case B_POW: return bin_run([](float x, float y) { return std::pow(x, y); }, a, as, b, bs, of, shape, nd);
    case B_MAX: return bin_run([](float x, float y) { return (x >= y || x != x) ? x : y; }, a, as, b, bs, of, shape, nd);
    case B_MIN: return bin_run([](float x, float y) { return (x <= y || x != x) ? x : y; }, a, as, b, bs, of, shape, nd);
    default: break;
  }
  (void)outBool;
  switch (op) {
    case B_EQ: return bin_run([](float x, float y) { return x == y; }, a, as, b, bs, ob, shape, nd);
    case B_NE: return bin_run([](float x, float y) { return x != y; }, a, as, b, bs, ob, shape, nd);
    case B_LT: return bin_run([](float x, float y) { return x < y; }, a, as, b, bs, ob, shape, nd);
    case B_LE: return bin_run([](float x, float y) { return x <= y; }, a, as, b, bs, ob, shape, nd);
    case B_GT: return bin_run([](float x, float y) { return x > y; }, a, as, b, bs, ob, shape, nd);
    case B_GE: return bin_run([](float x, float y) { return x >= y; }, a, as, b, bs, ob, shape, nd);
  }
}

void where_f32(const uint8_t* c, const i64* cs, const float* a, const i64* as, const float* b, const i64* bs, float* out, const i64* shape, int nd) {
  const i64* strides[3] = {cs, as, bs};
  for_rows<3>(nd, shape, strides, [&](i64 row, const i64* off, i64 n, const i64* is) {
    const uint8_t* cc = c + off[0];
    const float* aa = a + off[1];
    const float* bb = b + off[2];
    float* o = out + row * n;
    for (i64 i = 0; i < n; i++) o[i] = cc[i * is[0]] ? aa[i * is[1]] : bb[i * is[2]];
  });
}

template <class T>
static void copy_typed(const T* src, const i64* ss, T* dst, const i64* ds, const i64* shape, int nd) {
  const i64* strides[2] = {ss, ds};
  for_rows<2>(nd, shape, strides, [&](i64, const i64* off, i64 n, const i64* is) {
    const T* s = src + off[0];
    T* d = dst + off[1];
    if (is[0] == 1 && is[1] == 1) {
      std::memcpy(d, s, n * sizeof(T));
    } else {
      for (i64 i = 0; i < n; i++) d[i * is[1]] = s[i * is[0]];
    }
  });
}

void strided_copy(int elemBytes, const void* src, const i64* ss, void* dst, const i64* ds, const i64* shape, int nd) {
  switch (elemBytes) {
    case 1: return copy_typed((const uint8_t*)src, ss, (uint8_t*)dst, ds, shape, nd);
    case 2: return copy_typed((const uint16_t*)src, ss, (uint16_t*)dst, ds, shape, nd);
    case 4: return copy_typed((const uint32_t*)src, ss, (uint32_t*)dst, ds, shape, nd);
    case 8: return copy_typed((const uint64_t*)src, ss, (uint64_t*)dst, ds, shape, nd);
  }
}

void strided_add_f32(const float* src, const i64* ss, float* dst, const i64* ds, const i64* shape, int nd) {
  const i64* strides[2] = {ss, ds};
  for_rows<2>(nd, shape, strides, [&](i64, const i64* off, i64 n, const i64* is) {
    const float* s = src + off[0];
    float* d = dst + off[1];
    if (is[0] == 1 && is[1] == 1) {
      for (i64 i = 0; i < n; i++) d[i] += s[i];
    } else {
      for (i64 i = 0; i < n; i++) d[i * is[1]] += s[i * is[0]];
    }
  });
}

static inline double load(const void* p, int t, i64 i) {
  switch (t) {
    case DT_F32: return ((const float*)p)[i];
    case DT_F64: return ((const double*)p)[i];
    case DT_BF16: return bf16_to_f32(((const uint16_t*)p)[i]);
    case DT_I32: return ((const int32_t*)p)[i];
    default: return ((const uint8_t*)p)[i];
  }
}

void cast(const void* src, int st, void* dst, int dt, i64 n) {
  // Hot paths for the conversions a model uses every step.
  if (st == DT_F32 && dt == DT_BF16) {
    const float* s = (const float*)src;
    uint16_t* d = (uint16_t*)dst;
    parallel_range(n, kGrain, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; i++) d[i] = f32_to_bf16(s[i]);
    });
    return;
  }
  if (st == DT_BF16 && dt == DT_F32) {
    const uint16_t* s = (const uint16_t*)src;
    float* d = (float*)dst;
    parallel_range(n, kGrain, [&](i64 b, i64 e) {
      for (i64 i = b; i < e; i++) d[i] = bf16_to_f32(s[i]);
    });
    return;
  }
  parallel_range(n, kGrain, [&](i64 b, i64 e) {
    for (i64 i = b; i < e; i++) {
      double v = load(src, st, i);
      switch (dt) {
        case DT_F32: ((float*)dst)[i] = (float)v; break;
        case DT_F64: ((double*)dst)[i] = v; break;
        case DT_BF16: ((uint16_t*)dst)[i] = f32_to_bf16((float)v); break;
        case DT_I32: ((int32_t*)dst)[i] = (int32_t)std::trunc(v); break;
        default: ((uint8_t*)dst)[i] = v != 0 ? 1 : 0;
      }
    }
  });
}

}  // namespace glmv
