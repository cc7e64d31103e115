/**
 * Reference scaled-dot-product attention, [B, L, H, D] layout with GQA and causal / segment / left-padding masks:
 * one query row at a time, the full score row materialised. The backward recomputes the probabilities from the
 * saved log-sum-exp.
 */
import type { AttentionArgs, AttentionBackwardArgs } from '../../backend.js';
import type { DType } from '../../dtype.js';

/** Mask predicate shared by the attention forward and backward. */
function keyAllowed(args: AttentionArgs, b: number, i: number, j: number): boolean {
  const qi = i + args.Lk - args.Lq;
  if (args.keyStart && j < (args.keyStart[b] as number)) return false;
  if (args.causal && j > qi) return false;
  if (args.cuSeqlens) {
    const cu = args.cuSeqlens;
    let s = 0;
    while (s + 1 < cu.length && (cu[s + 1] as number) <= qi) s++;
    if (j < (cu[s] as number) || j >= (cu[s + 1] as number)) return false;
  }
  return true;
}

export function attention(_dtype: DType, a: AttentionArgs): void {
  const { B, Lq, Lk, Hq, Hkv, D, scale } = a;
  const group = Hq / Hkv;
  const s = new Float64Array(Lk);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < Lq; i++) {
        const qo = b * a.qBatch + i * a.qRow + h * D;
        let mx = Number.NEGATIVE_INFINITY;
        for (let j = 0; j < Lk; j++) {
          if (!keyAllowed(a, b, i, j)) {
            s[j] = Number.NEGATIVE_INFINITY;
            continue;
          }
          const ko = b * a.kBatch + j * a.kRow + hk * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += (a.q[qo + d] as number) * (a.k[ko + d] as number);
          s[j] = dot * scale;
          mx = Math.max(mx, s[j] as number);
        }
        const oo = ((b * Lq + i) * Hq + h) * D;
        for (let d = 0; d < D; d++) a.out[oo + d] = 0;
        if (mx === Number.NEGATIVE_INFINITY) {
          a.lse[(b * Hq + h) * Lq + i] = Number.NEGATIVE_INFINITY;
          continue;
        }
        let sum = 0;
        for (let j = 0; j < Lk; j++) sum += Math.exp((s[j] as number) - mx);
        const lse = mx + Math.log(sum);
        a.lse[(b * Hq + h) * Lq + i] = lse;
        const acc = new Float64Array(D);
        for (let j = 0; j < Lk; j++) {
          if (s[j] === Number.NEGATIVE_INFINITY) continue;
          const p = Math.exp((s[j] as number) - lse);
          const vo = b * a.vBatch + j * a.vRow + hk * D;
          for (let d = 0; d < D; d++) acc[d] = (acc[d] as number) + p * (a.v[vo + d] as number);
        }
        for (let d = 0; d < D; d++) a.out[oo + d] = acc[d] as number;
      }
    }
}

export function attentionBackward(_dtype: DType, a: AttentionBackwardArgs): void {
  const { B, Lq, Lk, Hq, Hkv, D, scale } = a;
  const group = Hq / Hkv;
  a.dq.fill(0);
  a.dk.fill(0);
  a.dv.fill(0);
  for (let b = 0; b < B; b++)
    for (let h = 0; h < Hq; h++) {
      const hk = Math.floor(h / group);
      for (let i = 0; i < Lq; i++) {
        const lse = a.lse[(b * Hq + h) * Lq + i] as number;
        if (lse === Number.NEGATIVE_INFINITY) continue;
        const qo = b * a.qBatch + i * a.qRow + h * D;
        const oo = ((b * Lq + i) * Hq + h) * D;
        let delta = 0;
        for (let d = 0; d < D; d++) delta += (a.dout[oo + d] as number) * (a.out[oo + d] as number);
        for (let j = 0; j < Lk; j++) {
          if (!keyAllowed(a, b, i, j)) continue;
          const ko = b * a.kBatch + j * a.kRow + hk * D;
          const vo = b * a.vBatch + j * a.vRow + hk * D;
          let dot = 0;
          for (let d = 0; d < D; d++) dot += (a.q[qo + d] as number) * (a.k[ko + d] as number);
          const p = Math.exp(dot * scale - lse);
          let dp = 0;
          for (let d = 0; d < D; d++) dp += (a.dout[oo + d] as number) * (a.v[vo + d] as number);
          const ds = p * (dp - delta) * scale;
          const dko = ((b * Lk + j) * Hkv + hk) * D;
          for (let d = 0; d < D; d++) {
            a.dv[dko + d] = (a.dv[dko + d] as number) + p * (a.dout[oo + d] as number);
            a.dq[oo + d] = (a.dq[oo + d] as number) + ds * (a.k[ko + d] as number);
            a.dk[dko + d] = (a.dk[dko + d] as number) + ds * (a.q[qo + d] as number);
          }
        }
      }
    }
}
