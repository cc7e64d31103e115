// Scaled-dot-product attention, [B, L, H, D] layout, GQA, causal / segment / left-padding masks.
// Work is cut into (batch, head, query block) tasks that never cross a segment, so packed samples cost only their
// own blocks. Each task does two small GEMMs (QKᵀ and PV) with a row softmax between them; the backward recomputes
// the probabilities from the saved log-sum-exp (flash-attention style) and runs per (batch, kv head) so the
// key/value gradients of a GQA group are accumulated by one thread without races.
#include <oneapi/dnnl/dnnl.h>

#include <algorithm>
#include <limits>
#include <stdexcept>
#include <vector>

#include "kernels.h"

namespace glmv {

static const i64 kBlock = 64;
static const float kNegInf = -std::numeric_limits<float>::infinity();

struct Task {
  i64 b, h, q0, q1, seg0, seg1;
};

// Query blocks of every (batch, head), cut at segment boundaries.
static std::vector<Task> make_tasks(const AttnArgs& a, i64 heads) {
  std::vector<Task> tasks;
  std::vector<std::pair<i64, i64>> segs;
  if (a.cu) {
    for (i64 s = 0; s + 1 < a.nCu; s++)
      if (a.cu[s + 1] > a.cu[s]) segs.push_back({a.cu[s], a.cu[s + 1]});
  } else {
    segs.push_back({0, a.Lq});
  }
  for (i64 b = 0; b < a.B; b++)
    for (i64 h = 0; h < heads; h++)
      for (auto& s : segs)
        for (i64 q0 = s.first; q0 < s.second; q0 += kBlock) tasks.push_back({b, h, q0, std::min(s.second, q0 + kBlock), s.first, s.second});
  return tasks;
}

// Allowed key range [lo, hi) of query row i (absolute position i + Lk − Lq).
static inline void key_range(const AttnArgs& a, const Task& t, i64 i, i64& lo, i64& hi) {
  const i64 qi = i + a.Lk - a.Lq;
  lo = a.keyStart ? a.keyStart[t.b] : 0;
  hi = a.Lk;
  if (a.cu) {
    lo = std::max(lo, t.seg0);
    hi = t.seg1;
  }
  if (a.causal) hi = std::min(hi, qi + 1);
}

// Union of the allowed key ranges of a task's rows; kHi <= kLo when every row is fully masked.
static inline void block_key_range(const AttnArgs& a, const Task& t, i64& kLo, i64& kHi) {
  kLo = a.Lk;
  kHi = 0;
  for (i64 i = t.q0; i < t.q1; i++) {
    i64 lo, hi;
    key_range(a, t, i, lo, hi);
    if (hi > lo) {
      kLo = std::min(kLo, lo);
      kHi = std::max(kHi, hi);
    }
  }
}

static void sgemm(char ta, char tb, i64 m, i64 n, i64 k, float alpha, const float* A, i64 lda, const float* B, i64 ldb, float beta, float* C, i64 ldc) {
  if (m == 0 || n == 0) return;
  if (k == 0) {
    if (beta == 0.f)
      for (i64 i = 0; i < m; i++) std::fill(C + i * ldc, C + i * ldc + n, 0.f);
    return;
  }
  if (dnnl_sgemm(ta, tb, m, n, k, alpha, A, lda, B, ldb, beta, C, ldc) != dnnl_success) throw std::runtime_error("dnnl_sgemm failed in attention");
}

// In-place softmax of the scores s[0, n) (n > 0); returns their log-sum-exp (what the backward recomputes from).
static inline float softmax_span(float* s, i64 n) {
  float mx = kNegInf;
#pragma omp simd reduction(max : mx)
  for (i64 j = 0; j < n; j++) mx = std::max(mx, s[j]);
  float sum = 0;
#pragma omp simd reduction(+ : sum)
  for (i64 j = 0; j < n; j++) {
    float p = fexp(s[j] - mx);
    s[j] = p;
    sum += p;
  }
  const float inv = 1.f / sum;
  for (i64 j = 0; j < n; j++) s[j] *= inv;
  return mx + std::log(sum);
}

// Decode shapes (a few query positions, no segments): one task per (batch, kv head, run of its query heads, query
// position). The query heads of a GQA group sit side by side in a row, so a run of them is one [heads, D] matrix:
// one QKᵀ and one PV GEMM per task read the group's keys and values once, where a task per (batch, head) calls
// dnnl_sgemm twice for a single row each time (microseconds of dispatch for a few thousand multiply-adds).
static void attention_decode_f32(const AttnArgs& a) {
  const i64 group = a.Hq / a.Hkv;
  const i64 oRow = a.Hq * a.D;
  // Enough tasks for every thread when the batch is small (the 9B decodes one row with 2 kv heads).
  const i64 want = 4 * (i64)max_threads();
  const i64 base = a.B * a.Hkv * a.Lq;
  const i64 perKv = std::max<i64>(1, std::min<i64>(group, (want + base - 1) / base));
  const i64 run = (group + perKv - 1) / perKv;
  const i64 chunks = (group + run - 1) / run;
  const i64 nt = base * chunks;
#pragma omp parallel
  {
    std::vector<float> S(run * std::max<i64>(a.Lk, 1));
#pragma omp for schedule(dynamic, 1)
    for (i64 ti = 0; ti < nt; ti++) {
      i64 x = ti;
      const i64 c = x % chunks;
      x /= chunks;
      const i64 i = x % a.Lq;
      x /= a.Lq;
      const i64 hk = x % a.Hkv;
      const i64 b = x / a.Hkv;
      const i64 h0 = hk * group + c * run;
      const i64 m = std::min(hk * group + group, h0 + run) - h0;
      const i64 lo = a.keyStart ? (i64)a.keyStart[b] : 0;
      const i64 hi = a.causal ? std::min(a.Lk, i + a.Lk - a.Lq + 1) : a.Lk;
      float* out = a.out + (b * a.Lq + i) * oRow + h0 * a.D;
      if (hi <= lo) {
        for (i64 r = 0; r < m; r++) {
          std::fill(out + r * a.D, out + (r + 1) * a.D, 0.f);
          a.lse[(b * a.Hq + h0 + r) * a.Lq + i] = kNegInf;
        }
        continue;
      }
      const i64 nk = hi - lo;
      const float* Q = a.q + b * a.qBatch + i * a.qRow + h0 * a.D;
      const float* K = a.k + b * a.kBatch + lo * a.kRow + hk * a.D;
      const float* V = a.v + b * a.vBatch + lo * a.vRow + hk * a.D;
      sgemm('N', 'T', m, nk, a.D, a.scale, Q, a.D, K, a.kRow, 0.f, S.data(), nk);
      for (i64 r = 0; r < m; r++) a.lse[(b * a.Hq + h0 + r) * a.Lq + i] = softmax_span(S.data() + r * nk, nk);
      sgemm('N', 'N', m, a.D, nk, 1.f, S.data(), nk, V, a.vRow, 0.f, out, a.D);
    }
  }
}

void attention_fwd_f32(const AttnArgs& a) {
  SignalGuard guard;
  if (!a.cu && a.Lq <= 4) return attention_decode_f32(a);
  const i64 group = a.Hq / a.Hkv;
  const i64 oRow = a.Hq * a.D;
  std::vector<Task> tasks = make_tasks(a, a.Hq);
  const i64 nt = (i64)tasks.size();
#pragma omp parallel
  {
    std::vector<float> S(kBlock * std::max<i64>(a.Lk, 1));
#pragma omp for schedule(dynamic, 1)
    for (i64 ti = 0; ti < nt; ti++) {
      const Task& t = tasks[ti];
      const i64 hk = t.h / group;
      const i64 rows = t.q1 - t.q0;
      i64 kLo, kHi;
      block_key_range(a, t, kLo, kHi);
      float* outBase = a.out + (t.b * a.Lq + t.q0) * oRow + t.h * a.D;
      float* lseBase = a.lse + (t.b * a.Hq + t.h) * a.Lq + t.q0;
      if (kHi <= kLo) {
        for (i64 r = 0; r < rows; r++) {
          std::fill(outBase + r * oRow, outBase + r * oRow + a.D, 0.f);
          lseBase[r] = kNegInf;
        }
        continue;
      }
      const i64 nk = kHi - kLo;
      const float* Q = a.q + t.b * a.qBatch + t.q0 * a.qRow + t.h * a.D;
      const float* K = a.k + t.b * a.kBatch + kLo * a.kRow + hk * a.D;
      const float* V = a.v + t.b * a.vBatch + kLo * a.vRow + hk * a.D;
      sgemm('N', 'T', rows, nk, a.D, a.scale, Q, a.qRow, K, a.kRow, 0.f, S.data(), nk);
      for (i64 r = 0; r < rows; r++) {
        float* s = S.data() + r * nk;
        i64 lo, hi;
        key_range(a, t, t.q0 + r, lo, hi);
        lo -= kLo;
        hi -= kLo;
        if (hi <= lo) {
          std::fill(s, s + nk, 0.f);
          lseBase[r] = kNegInf;
          continue;
        }
        lseBase[r] = softmax_span(s + lo, hi - lo);
        std::fill(s, s + lo, 0.f);
        std::fill(s + hi, s + nk, 0.f);
      }
      sgemm('N', 'N', rows, a.D, nk, 1.f, S.data(), nk, V, a.vRow, 0.f, outBase, oRow);
    }
  }
}

void attention_bwd_f32(const AttnArgs& a) {
  SignalGuard guard;
  const i64 group = a.Hq / a.Hkv;
  const i64 qoRow = a.Hq * a.D;   // dout / out / dq rows (contiguous)
  const i64 kvRow = a.Hkv * a.D;  // dk / dv rows (contiguous)
  std::fill(a.dq, a.dq + a.B * a.Lq * qoRow, 0.f);
  std::fill(a.dk, a.dk + a.B * a.Lk * kvRow, 0.f);
  std::fill(a.dv, a.dv + a.B * a.Lk * kvRow, 0.f);
  // Tasks are (batch, segment, kv head); each walks the query blocks of the segment for every query head in its
  // group. A segment's keys are seen only by its own queries, so its key/value gradient rows have one writer; packed
  // rows (one row of many segments) then spread over the threads instead of running on one.
  std::vector<Task> blocks = make_tasks(a, 1);
  std::vector<i64> unitStart;  // first block of each (batch, segment) run; blocks come ordered by batch, segment
  for (i64 i = 0; i < (i64)blocks.size(); i++)
    if (i == 0 || blocks[i].b != blocks[i - 1].b || blocks[i].seg0 != blocks[i - 1].seg0) unitStart.push_back(i);
  unitStart.push_back((i64)blocks.size());
  const i64 nUnits = (i64)unitStart.size() - 1;
  const i64 nTasks = nUnits * a.Hkv;
#pragma omp parallel
  {
    std::vector<float> P(kBlock * std::max<i64>(a.Lk, 1)), dP(kBlock * std::max<i64>(a.Lk, 1)), delta(kBlock);
#pragma omp for schedule(dynamic, 1)
    for (i64 ti = 0; ti < nTasks; ti++) {
      const i64 u = ti / a.Hkv, hk = ti % a.Hkv;
      const i64 b = blocks[unitStart[u]].b;
      for (i64 h = hk * group; h < (hk + 1) * group; h++)
        for (i64 bi = unitStart[u]; bi < unitStart[u + 1]; bi++) {
          const Task& tb = blocks[bi];
          Task t = tb;
          t.h = h;
          const i64 rows = t.q1 - t.q0;
          i64 kLo, kHi;
          block_key_range(a, t, kLo, kHi);
          if (kHi <= kLo) continue;
          const i64 nk = kHi - kLo;
          const float* Q = a.q + b * a.qBatch + t.q0 * a.qRow + h * a.D;
          const float* K = a.k + b * a.kBatch + kLo * a.kRow + hk * a.D;
          const float* V = a.v + b * a.vBatch + kLo * a.vRow + hk * a.D;
          const float* dO = a.dout + (b * a.Lq + t.q0) * qoRow + h * a.D;
          const float* O = a.out + (b * a.Lq + t.q0) * qoRow + h * a.D;
          const float* L = a.lse + (b * a.Hq + h) * a.Lq + t.q0;
          float* dQ = a.dq + (b * a.Lq + t.q0) * qoRow + h * a.D;
          float* dK = a.dk + (b * a.Lk + kLo) * kvRow + hk * a.D;
          float* dV = a.dv + (b * a.Lk + kLo) * kvRow + hk * a.D;
          sgemm('N', 'T', rows, nk, a.D, a.scale, Q, a.qRow, K, a.kRow, 0.f, P.data(), nk);
          for (i64 r = 0; r < rows; r++) {
            float* p = P.data() + r * nk;
            i64 lo, hi;
            key_range(a, t, t.q0 + r, lo, hi);
            lo -= kLo;
            hi -= kLo;
            const float l = L[r];
            if (hi <= lo || l == kNegInf) {
              std::fill(p, p + nk, 0.f);
            } else {
              for (i64 j = 0; j < lo; j++) p[j] = 0.f;
              for (i64 j = lo; j < hi; j++) p[j] = fexp(p[j] - l);
              for (i64 j = hi; j < nk; j++) p[j] = 0.f;
            }
            float d = 0;
            #pragma omp simd reduction(+ : d)
            for (i64 c = 0; c < a.D; c++) d += dO[r * qoRow + c] * O[r * qoRow + c];
            delta[r] = d;
          }
          // dV += Pᵀ·dO ; dP = dO·Vᵀ
          sgemm('T', 'N', nk, a.D, rows, 1.f, P.data(), nk, dO, qoRow, 1.f, dV, kvRow);
          sgemm('N', 'T', rows, nk, a.D, 1.f, dO, qoRow, V, a.vRow, 0.f, dP.data(), nk);
          // dS = P ⊙ (dP − δ) (scale folded into the two products below)
          for (i64 r = 0; r < rows; r++) {
            float* p = P.data() + r * nk;
            const float* g = dP.data() + r * nk;
            const float d = delta[r];
            for (i64 j = 0; j < nk; j++) p[j] = p[j] * (g[j] - d);
          }
          sgemm('N', 'N', rows, a.D, nk, a.scale, P.data(), nk, K, a.kRow, 0.f, dQ, qoRow);
          sgemm('T', 'N', nk, a.D, rows, a.scale, P.data(), nk, Q, a.qRow, 1.f, dK, kvRow);
        }
    }
  }
}

}  // namespace glmv
