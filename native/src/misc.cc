// Index ops, rotary embedding, top-k, bicubic grid sampling, im2col/col2im and the fused AdamW update.
// Accumulating kernels partition their *outputs* across threads, so results are deterministic.
#include <algorithm>
#include <cmath>
#include <numeric>
#include <vector>

#include "kernels.h"

namespace glmv {

void index_select(int eb, const void* x, const int32_t* idx, void* out, i64 outer, i64 n, i64 inner, i64 nIdx) {
  const char* src = (const char*)x;
  char* dst = (char*)out;
  const i64 row = inner * eb;
  parallel_range(outer * nIdx, std::max<i64>(1, (1 << 16) / std::max<i64>(row, 1)), [&](i64 b, i64 e) {
    for (i64 t = b; t < e; t++) {
      i64 o = t / nIdx, j = t % nIdx;
      std::memcpy(dst + t * row, src + (o * n + idx[j]) * row, row);
    }
  });
}

void index_add_f32(const float* src, const int32_t* idx, float* out, i64 outer, i64 n, i64 inner, i64 nIdx) {
  // Threads own column ranges, so duplicate indices never race.
  const i64 chunk = 64;
  const i64 nChunks = (inner + chunk - 1) / chunk;
  parallel_range(outer * nChunks, std::max<i64>(1, 4096 / std::max<i64>(nIdx, 1)), [&](i64 b, i64 e) {
    for (i64 t = b; t < e; t++) {
      i64 o = t / nChunks, c0 = (t % nChunks) * chunk, c1 = std::min(inner, c0 + chunk);
      for (i64 j = 0; j < nIdx; j++) {
        const float* s = src + (o * nIdx + j) * inner;
        float* d = out + (o * n + idx[j]) * inner;
        for (i64 c = c0; c < c1; c++) d[c] += s[c];
      }
    }
  });
}

void gather_f32(const float* x, const int32_t* idx, float* out, i64 outer, i64 n, i64 inner, i64 k) {
  parallel_range(outer * k, std::max<i64>(1, 4096 / std::max<i64>(inner, 1)), [&](i64 b, i64 e) {
    for (i64 t = b; t < e; t++) {
      i64 o = t / k;
      const int32_t* ix = idx + t * inner;
      float* d = out + t * inner;
      const float* s = x + o * n * inner;
      for (i64 i = 0; i < inner; i++) d[i] = s[ix[i] * inner + i];
    }
  });
}

void scatter_add_f32(const float* src, const int32_t* idx, float* out, i64 outer, i64 n, i64 inner, i64 k) {
  // Each (outer, inner) column is owned by one thread.
  parallel_range(outer * inner, std::max<i64>(1, 4096 / std::max<i64>(k, 1)), [&](i64 b, i64 e) {
    for (i64 t = b; t < e; t++) {
      i64 o = t / inner, i = t % inner;
      for (i64 j = 0; j < k; j++) {
        i64 p = (o * k + j) * inner + i;
        out[(o * n + idx[p]) * inner + i] += src[p];
      }
    }
  });
}

void rope_f32(const float* x, const float* cos, const float* sin, float* out, i64 B, i64 L, i64 H, i64 D, i64 rot, i64 csBatch, bool interleaved, bool inverse) {
  const i64 half = rot / 2;
  const float sg = inverse ? -1.f : 1.f;
  parallel_range(B * L, std::max<i64>(1, 4096 / std::max<i64>(H * D, 1)), [&](i64 b0, i64 e0) {
    for (i64 t = b0; t < e0; t++) {
      i64 b = t / L, l = t % L;
      const float* c = cos + b * csBatch + l * half;
      const float* s = sin + b * csBatch + l * half;
      for (i64 h = 0; h < H; h++) {
        const float* xi = x + (t * H + h) * D;
        float* o = out + (t * H + h) * D;
        if (interleaved) {
          for (i64 i = 0; i < half; i++) {
            float x0 = xi[2 * i], x1 = xi[2 * i + 1], cc = c[i], ss = sg * s[i];
            o[2 * i] = x0 * cc - x1 * ss;
            o[2 * i + 1] = x1 * cc + x0 * ss;
          }
        } else {
          for (i64 i = 0; i < half; i++) {
            float x0 = xi[i], x1 = xi[i + half], cc = c[i], ss = sg * s[i];
            o[i] = x0 * cc - x1 * ss;
            o[i + half] = x1 * cc + x0 * ss;
          }
        }
        for (i64 i = rot; i < D; i++) o[i] = xi[i];
      }
    }
  });
}

void topk_f32(const float* x, float* vals, int32_t* idx, i64 rows, i64 n, i64 k) {
  parallel_range(rows, std::max<i64>(1, 4096 / std::max<i64>(n, 1)), [&](i64 b, i64 e) {
    std::vector<int32_t> order(n);
    for (i64 r = b; r < e; r++) {
      const float* p = x + r * n;
      std::iota(order.begin(), order.end(), 0);
      auto cmp = [&](int32_t i, int32_t j) {
        float a = p[i], c = p[j];
        bool an = a != a, cn = c != c;
        if (an || cn) return an && !cn ? true : (an == cn ? i < j : false);
        return a > c || (a == c && i < j);
      };
      std::partial_sort(order.begin(), order.begin() + k, order.end(), cmp);
      for (i64 j = 0; j < k; j++) {
        idx[r * k + j] = order[j];
        vals[r * k + j] = p[order[j]];
      }
    }
  });
}

static inline void cubic_weights(double t, double* w) {
  const double A = -0.75;
  auto near = [&](double d) { return ((A + 2) * d - (A + 3)) * d * d + 1; };
  auto far = [&](double d) { return ((A * d - 5 * A) * d + 8 * A) * d - 4 * A; };
  w[0] = far(t + 1);
  w[1] = near(t);
  w[2] = near(1 - t);
  w[3] = far(2 - t);
}

static inline i64 clampi(i64 i, i64 n) { return i < 0 ? 0 : (i >= n ? n - 1 : i); }

struct Taps {
  i64 off[16];
  float w[16];
};

static Taps bicubic_taps(double gx, double gy, i64 H, i64 W, i64 C) {
  double sx = ((gx + 1) * W - 1) / 2, sy = ((gy + 1) * H - 1) / 2;
  double fx = std::floor(sx), fy = std::floor(sy);
  double wx[4], wy[4];
  cubic_weights(sx - fx, wx);
  cubic_weights(sy - fy, wy);
  Taps t;
  for (int i = 0; i < 4; i++)
    for (int j = 0; j < 4; j++) {
      i64 yy = clampi((i64)fy - 1 + i, H), xx = clampi((i64)fx - 1 + j, W);
      t.off[i * 4 + j] = (yy * W + xx) * C;
      t.w[i * 4 + j] = (float)(wy[i] * wx[j]);
    }
  return t;
}

void grid_sample_bicubic_f32(const float* table, i64 H, i64 W, i64 C, const double* gx, const double* gy, i64 P, float* out) {
  parallel_range(P, std::max<i64>(1, 2048 / std::max<i64>(C, 1)), [&](i64 b, i64 e) {
    for (i64 p = b; p < e; p++) {
      Taps t = bicubic_taps(gx[p], gy[p], H, W, C);
      float* o = out + p * C;
      std::fill(o, o + C, 0.f);
      for (int q = 0; q < 16; q++) {
        const float* src = table + t.off[q];
        const float w = t.w[q];
        for (i64 c = 0; c < C; c++) o[c] += w * src[c];
      }
    }
  });
}

void grid_sample_bicubic_bwd_f32(const float* dout, i64 H, i64 W, i64 C, const double* gx, const double* gy, i64 P, float* dtable) {
  // Channel ranges per thread: every thread visits all points but writes only its channels.
  const i64 chunk = 64;
  const i64 nChunks = (C + chunk - 1) / chunk;
  parallel_range(nChunks, 1, [&](i64 b, i64 e) {
    const i64 c0 = b * chunk, c1 = std::min(C, e * chunk);
    for (i64 p = 0; p < P; p++) {
      Taps t = bicubic_taps(gx[p], gy[p], H, W, C);
      const float* g = dout + p * C;
      for (int q = 0; q < 16; q++) {
        float* d = dtable + t.off[q];
        const float w = t.w[q];
        // A table row and a gradient row never overlap; GCC cannot prove it and left this loop scalar.
#pragma omp simd
        for (i64 c = c0; c < c1; c++) d[c] += w * g[c];
      }
    }
  });
}

// Walks (input offset or −1, column offset) pairs of an N-d im2col for one (n, c) plane.
template <class F>
static void conv_plane(i64 C, const i64* inS, const i64* k, const i64* st, const i64* pad, const i64* outS, int nd, i64 c, F f) {
  i64 kTot = 1, oTot = 1;
  for (int d = 0; d < nd; d++) {
    kTot *= k[d];
    oTot *= outS[d];
  }
  const i64 rowLen = C * kTot;
  i64 oi[3] = {0, 0, 0}, ki[3] = {0, 0, 0};
  for (i64 o = 0; o < oTot; o++) {
    i64 r = o;
    for (int d = nd - 1; d >= 0; d--) {
      oi[d] = r % outS[d];
      r /= outS[d];
    }
    for (i64 kk = 0; kk < kTot; kk++) {
      i64 rr = kk;
      for (int d = nd - 1; d >= 0; d--) {
        ki[d] = rr % k[d];
        rr /= k[d];
      }
      i64 xi = 0;
      bool inside = true;
      for (int d = 0; d < nd; d++) {
        i64 pos = oi[d] * st[d] - pad[d] + ki[d];
        if (pos < 0 || pos >= inS[d]) inside = false;
        xi = xi * inS[d] + pos;
      }
      f(inside ? xi : -1, o * rowLen + c * kTot + kk);
    }
  }
}

struct ConvSizes {
  i64 in = 1, out = 1, k = 1;
};

static ConvSizes conv_sizes(const i64* inS, const i64* k, const i64* outS, int nd) {
  ConvSizes s;
  for (int d = 0; d < nd; d++) {
    s.in *= inS[d];
    s.out *= outS[d];
    s.k *= k[d];
  }
  return s;
}

void im2col_f32(const float* x, float* cols, i64 N, i64 C, const i64* inS, const i64* k, const i64* st, const i64* pad, const i64* outS, int nd) {
  const ConvSizes z = conv_sizes(inS, k, outS, nd);
  const i64 inTot = z.in, oTot = z.out, kTot = z.k;
  parallel_range(N * C, 1, [&](i64 b, i64 e) {
    for (i64 t = b; t < e; t++) {
      i64 n = t / C, c = t % C;
      const float* xp = x + t * inTot;
      float* cp = cols + n * oTot * C * kTot;
      conv_plane(C, inS, k, st, pad, outS, nd, c, [&](i64 xi, i64 ci) { cp[ci] = xi < 0 ? 0.f : xp[xi]; });
    }
  });
}

void col2im_f32(const float* cols, float* dx, i64 N, i64 C, const i64* inS, const i64* k, const i64* st, const i64* pad, const i64* outS, int nd) {
  const ConvSizes z = conv_sizes(inS, k, outS, nd);
  const i64 inTot = z.in, oTot = z.out, kTot = z.k;
  parallel_range(N * C, 1, [&](i64 b, i64 e) {
    for (i64 t = b; t < e; t++) {
      i64 n = t / C, c = t % C;
      float* xp = dx + t * inTot;
      const float* cp = cols + n * oTot * C * kTot;
      conv_plane(C, inS, k, st, pad, outS, nd, c, [&](i64 xi, i64 ci) {
        if (xi >= 0) xp[xi] += cp[ci];
      });
    }
  });
}

void adamw_f32(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, i64 n, float lr, float b1, float b2, float eps, float wd, float bc1, float bc2) {
  const float decay = 1.f - lr * wd, step = lr / bc1, ib2 = 1.f / bc2;
  parallel_range(n, 1 << 15, [&](i64 b, i64 e) {
    // The pointers are captures, so GCC cannot prove the stores leave them alone and would not vectorise this loop
    // (sqrt and a division per element, four times slower scalar); each index is independent.
#pragma omp simd
    for (i64 i = b; i < e; i++) {
      const float gi = g[i];
      const float mi = b1 * m[i] + (1.f - b1) * gi;
      const float vi = b2 * v[i] + (1.f - b2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      p[i] = p[i] * decay - step * mi / (std::sqrt(vi * ib2) + eps);
    }
  });
}

}  // namespace glmv
