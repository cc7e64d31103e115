// Row kernels: reductions, softmax, LayerNorm, RMSNorm, cross-entropy. Each row is independent, so rows are
// split across threads. Full reductions and sums of squares accumulate in double; per-row statistics (rows of at
// most a few thousand elements) in float, as PyTorch does.
#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "kernels.h"

namespace glmv {

static i64 row_grain(i64 cols) { return std::max<i64>(1, (1 << 14) / std::max<i64>(cols, 1)); }

void reduce_f32(int op, const float* x, void* out, i64 outer, i64 r, i64 inner) {
  float* of = (float*)out;
  int32_t* oi = (int32_t*)out;
  if (op == R_SUM && inner == 1) {
    parallel_range(outer, row_grain(r), [&](i64 b, i64 e) {
      for (i64 o = b; o < e; o++) {
        const float* p = x + o * r;
        double s = 0;
        #pragma omp simd reduction(+ : s)
        for (i64 j = 0; j < r; j++) s += p[j];
        of[o] = (float)s;
      }
    });
    return;
  }
  if (op == R_SUM) {
    // Column sums: split the inner dim across threads when outer is small.
    i64 tasks = outer * ((inner + 255) / 256);
    parallel_range(tasks, std::max<i64>(1, (1 << 14) / (256 * std::max<i64>(r, 1))), [&](i64 b, i64 e) {
      std::vector<double> acc(256);
      for (i64 t = b; t < e; t++) {
        i64 o = t / ((inner + 255) / 256);
        i64 c0 = (t % ((inner + 255) / 256)) * 256;
        i64 c1 = std::min(inner, c0 + 256);
        std::fill(acc.begin(), acc.begin() + (c1 - c0), 0.0);
        for (i64 j = 0; j < r; j++) {
          const float* p = x + (o * r + j) * inner;
          for (i64 c = c0; c < c1; c++) acc[c - c0] += p[c];
        }
        for (i64 c = c0; c < c1; c++) of[o * inner + c] = (float)acc[c - c0];
      }
    });
    return;
  }
  const bool isMax = op == R_MAX || op == R_ARGMAX;
  const bool isArg = op == R_ARGMAX || op == R_ARGMIN;
  parallel_range(outer * inner, row_grain(r), [&](i64 b, i64 e) {
    for (i64 t = b; t < e; t++) {
      i64 o = t / inner, i = t % inner;
      const float* p = x + o * r * inner + i;
      float best = p[0];
      int32_t arg = 0;
      for (i64 j = 1; j < r; j++) {
        float v = p[j * inner];
        bool better = isMax ? v > best : v < best;
        if (better || (v != v && best == best)) {
          best = v;
          arg = (int32_t)j;
        }
      }
      if (isArg) oi[t] = arg;
      else of[t] = best;
    }
  });
}

double sum_squares_f32(const float* x, i64 n) {
  // Fixed 4096-element chunks summed in chunk order: the same result for any thread count.
  const i64 nChunks = (n + 4095) / 4096;
  std::vector<double> part(nChunks);
  parallel_range(nChunks, 16, [&](i64 b, i64 e) {
    for (i64 c = b; c < e; c++) {
      const i64 lo = c * 4096, len = std::min(n, lo + 4096) - lo;
      const float* p = x + lo;  // a local pointer: through the capture GCC vectorised this with gathers
      float s = 0;
      #pragma omp simd reduction(+ : s)
      for (i64 i = 0; i < len; i++) s += p[i] * p[i];
      part[c] = s;
    }
  });
  double total = 0;
  for (double p : part) total += p;
  return total;
}

void softmax_f32(const float* x, float* out, i64 rows, i64 cols, bool log) {
  parallel_range(rows, row_grain(cols), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* p = x + r * cols;
      float* o = out + r * cols;
      float mx = -std::numeric_limits<float>::infinity();
      #pragma omp simd reduction(max : mx)
      for (i64 c = 0; c < cols; c++) mx = std::max(mx, p[c]);
      if (mx == -std::numeric_limits<float>::infinity()) mx = 0;
      float s = 0;
      if (log) {
        #pragma omp simd reduction(+ : s)
        for (i64 c = 0; c < cols; c++) s += fexp(p[c] - mx);
        float lse = mx + std::log(s);
        for (i64 c = 0; c < cols; c++) o[c] = p[c] - lse;
      } else {
#pragma omp simd reduction(+ : s)
        for (i64 c = 0; c < cols; c++) {
          float v = fexp(p[c] - mx);
          o[c] = v;
          s += v;
        }
        float inv = 1.f / s;
        for (i64 c = 0; c < cols; c++) o[c] *= inv;
      }
    }
  });
}

void softmax_bwd_f32(const float* y, const float* dy, float* dx, i64 rows, i64 cols, bool log) {
  parallel_range(rows, row_grain(cols), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* p = y + r * cols;
      const float* g = dy + r * cols;
      float* o = dx + r * cols;
      float s = 0;
      if (log) {
        #pragma omp simd reduction(+ : s)
        for (i64 c = 0; c < cols; c++) s += g[c];
        for (i64 c = 0; c < cols; c++) o[c] = g[c] - fexp(p[c]) * s;
      } else {
        #pragma omp simd reduction(+ : s)
        for (i64 c = 0; c < cols; c++) s += g[c] * p[c];
        for (i64 c = 0; c < cols; c++) o[c] = p[c] * (g[c] - s);
      }
    }
  });
}

void layernorm_f32(const float* x, const float* w, const float* bias, float* out, float* mean, float* rstd, i64 rows, i64 cols, float eps) {
  parallel_range(rows, row_grain(cols), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* p = x + r * cols;
      float* o = out + r * cols;
      float s = 0;
      #pragma omp simd reduction(+ : s)
      for (i64 c = 0; c < cols; c++) s += p[c];
      float mu = s / cols;
      float v = 0;
      #pragma omp simd reduction(+ : v)
      for (i64 c = 0; c < cols; c++) v += (p[c] - mu) * (p[c] - mu);
      float rs = 1.f / std::sqrt(v / cols + eps);
      mean[r] = mu;
      rstd[r] = rs;
      if (w && bias)
        for (i64 c = 0; c < cols; c++) o[c] = (p[c] - mu) * rs * w[c] + bias[c];
      else if (w)
        for (i64 c = 0; c < cols; c++) o[c] = (p[c] - mu) * rs * w[c];
      else
        for (i64 c = 0; c < cols; c++) o[c] = (p[c] - mu) * rs;
    }
  });
}

// Weight/bias gradients are sums over rows: each thread accumulates its own partial, then they are added in
// thread order (deterministic for a fixed thread count).
template <class RowF>
static void rows_with_param_grads(i64 rows, i64 cols, float* dw, float* db, RowF f) {
  int nt = rows * cols > (1 << 15) ? max_threads() : 1;
  std::vector<std::vector<float>> pw(nt), pb(nt);
#pragma omp parallel num_threads(nt)
  {
    int t = omp_get_thread_num();
    int T = omp_get_num_threads();
    if (dw) pw[t].assign(cols, 0.f);
    if (db) pb[t].assign(cols, 0.f);
    i64 b = rows * t / T, e = rows * (t + 1) / T;
    for (i64 r = b; r < e; r++) f(r, dw ? pw[t].data() : nullptr, db ? pb[t].data() : nullptr);
  }
  for (int t = 0; t < nt; t++) {
    if (dw && !pw[t].empty())
      for (i64 c = 0; c < cols; c++) dw[c] += pw[t][c];
    if (db && !pb[t].empty())
      for (i64 c = 0; c < cols; c++) db[c] += pb[t][c];
  }
}

void layernorm_bwd_f32(const float* x, const float* w, const float* mean, const float* rstd, const float* dy, float* dx, float* dw, float* db, i64 rows, i64 cols) {
  rows_with_param_grads(rows, cols, dw, db, [&](i64 r, float* pw, float* pb) {
    const float* p = x + r * cols;
    const float* g = dy + r * cols;
    float* o = dx + r * cols;
    const float mu = mean[r], rs = rstd[r];
    // The weight test stays outside the loops: inside, GCC turns `w ? g·w : g` into gathers (10× slower).
    float sg = 0, sgx = 0;
    if (w) {
#pragma omp simd reduction(+ : sg, sgx)
      for (i64 c = 0; c < cols; c++) {
        const float gw = g[c] * w[c];
        sg += gw;
        sgx += gw * ((p[c] - mu) * rs);
      }
    } else {
#pragma omp simd reduction(+ : sg, sgx)
      for (i64 c = 0; c < cols; c++) {
        sg += g[c];
        sgx += g[c] * ((p[c] - mu) * rs);
      }
    }
    if (pw) {
#pragma omp simd
      for (i64 c = 0; c < cols; c++) pw[c] += g[c] * (p[c] - mu) * rs;
    }
    if (pb) {
#pragma omp simd
      for (i64 c = 0; c < cols; c++) pb[c] += g[c];
    }
    const float a = sg / cols, bb = sgx / cols;
    if (w) {
#pragma omp simd
      for (i64 c = 0; c < cols; c++) o[c] = rs * (g[c] * w[c] - a - (p[c] - mu) * rs * bb);
    } else {
#pragma omp simd
      for (i64 c = 0; c < cols; c++) o[c] = rs * (g[c] - a - (p[c] - mu) * rs * bb);
    }
  });
}

void rmsnorm_f32(const float* x, const float* w, float* out, float* rstd, i64 rows, i64 cols, float eps) {
  parallel_range(rows, row_grain(cols), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* p = x + r * cols;
      float* o = out + r * cols;
      float ss = 0;
      #pragma omp simd reduction(+ : ss)
      for (i64 c = 0; c < cols; c++) ss += p[c] * p[c];
      float rs = 1.f / std::sqrt(ss / cols + eps);
      rstd[r] = rs;
      if (w)
        for (i64 c = 0; c < cols; c++) o[c] = p[c] * rs * w[c];
      else
        for (i64 c = 0; c < cols; c++) o[c] = p[c] * rs;
    }
  });
}

void rmsnorm_bwd_f32(const float* x, const float* w, const float* rstd, const float* dy, float* dx, float* dw, i64 rows, i64 cols) {
  rows_with_param_grads(rows, cols, dw, nullptr, [&](i64 r, float* pw, float*) {
    const float* p = x + r * cols;
    const float* g = dy + r * cols;
    float* o = dx + r * cols;
    const float rs = rstd[r];
    // As in layernorm_bwd: the weight test outside the loops, or they become gathers.
    float sgx = 0;
    if (w) {
      #pragma omp simd reduction(+ : sgx)
      for (i64 c = 0; c < cols; c++) sgx += g[c] * w[c] * p[c];
    } else {
      #pragma omp simd reduction(+ : sgx)
      for (i64 c = 0; c < cols; c++) sgx += g[c] * p[c];
    }
    if (pw) {
      #pragma omp simd
      for (i64 c = 0; c < cols; c++) pw[c] += g[c] * p[c] * rs;
    }
    const float k = rs * rs * rs / cols * sgx;
    if (w) {
      #pragma omp simd
      for (i64 c = 0; c < cols; c++) o[c] = rs * (g[c] * w[c]) - k * p[c];
    } else {
      #pragma omp simd
      for (i64 c = 0; c < cols; c++) o[c] = rs * g[c] - k * p[c];
    }
  });
}

void cross_entropy_f32(const float* logits, const int32_t* t, const float* w, float* loss, float* lse, i64 rows, i64 V, int ignore) {
  parallel_range(rows, row_grain(V), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* p = logits + r * V;
      float mx = -std::numeric_limits<float>::infinity();
      #pragma omp simd reduction(max : mx)
      for (i64 c = 0; c < V; c++) mx = std::max(mx, p[c]);
      float s = 0;
      #pragma omp simd reduction(+ : s)
      for (i64 c = 0; c < V; c++) s += fexp(p[c] - mx);
      float l = mx + std::log(s);
      lse[r] = l;
      int tt = t[r];
      loss[r] = tt == ignore ? 0.f : (w ? w[r] : 1.f) * (l - p[tt]);
    }
  });
}

void cross_entropy_bwd_f32(const float* logits, const int32_t* t, const float* w, const float* lse, const float* dloss, float* dlogits, i64 rows, i64 V, int ignore) {
  parallel_range(rows, row_grain(V), [&](i64 b, i64 e) {
    for (i64 r = b; r < e; r++) {
      const float* p = logits + r * V;
      float* o = dlogits + r * V;
      int tt = t[r];
      float g = tt == ignore ? 0.f : dloss[r] * (w ? w[r] : 1.f);
      if (g == 0.f) {
        std::memset(o, 0, V * sizeof(float));
        continue;
      }
      const float l = lse[r];
      for (i64 c = 0; c < V; c++) o[c] = g * fexp(p[c] - l);
      o[tt] -= g;
    }
  });
}

}  // namespace glmv
