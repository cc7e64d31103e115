/**
 * Scaled-dot-product attention in the [batch, length, heads, head_dim] layout (flash-attention's), so projections
 * reshape into it without a transpose. GQA, causal masks with a query offset (KV-cache decoding), block-diagonal
 * segments (packed samples, per-image ViT attention) and left padding. Softmax in float32; only the per-row
 * log-sum-exp is saved, the backward recomputes probabilities (memory O(L), not O(L²)).
 */

import { record } from '../autograd.js';
import type { Backend } from '../backend.js';
import { be } from '../device.js';
import { fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';

export interface AttentionOptions {
  causal?: boolean;
  /** Defaults to 1/√head_dim. */
  scale?: number;
  /** Segment offsets [0, …, L] shared by every batch row; attention never crosses a segment (needs Lq == Lk). */
  cuSeqlens?: readonly number[] | Int32Array | null;
  /** Per batch row, index of the first real key (left padding). */
  keyStart?: readonly number[] | Int32Array | null;
}

/** Last two dims contiguous ([.., H, D] with strides [D, 1]); otherwise copy. */
function headsContiguous(t: Tensor): Tensor {
  const D = t.shape[3] as number;
  const H = t.shape[2] as number;
  const ok = t.strides[3] === 1 && (t.strides[2] === D || H === 1) && (t.strides[1] as number) >= H * D;
  return ok ? t : contiguous(t);
}

export function attention(q0: Tensor, k0: Tensor, v0: Tensor, opts: AttentionOptions = {}): Tensor {
  for (const [n, t] of [
    ['q', q0],
    ['k', k0],
    ['v', v0],
  ] as const) {
    t.assertAlive('attention');
    if (t.ndim !== 4) throw new Error(`attention: ${n} must be [batch, length, heads, head_dim], got ${fmt(t.shape)}`);
  }
  const dtype = q0.dtype === 'bfloat16' ? 'float32' : q0.dtype;
  if (dtype !== 'float32' && dtype !== 'float64') throw new Error(`attention: expected float inputs, got ${q0.dtype}`);
  const q = headsContiguous(cast(q0, dtype));
  const k = headsContiguous(cast(k0, dtype));
  const v = headsContiguous(cast(v0, dtype));
  const [B, Lq, Hq, D] = q.shape as [number, number, number, number];
  const [Bk, Lk, Hkv, Dk] = k.shape as [number, number, number, number];
  if (Bk !== B || Dk !== D || v.shape[0] !== B || v.shape[1] !== Lk || v.shape[2] !== Hkv || v.shape[3] !== D) {
    throw new Error(`attention: shapes do not fit: q ${fmt(q.shape)}, k ${fmt(k.shape)}, v ${fmt(v.shape)}`);
  }
  if (Hq % Hkv !== 0) throw new Error(`attention: query heads (${Hq}) must be a multiple of key/value heads (${Hkv})`);
  if (Lq > Lk) throw new Error(`attention: more queries (${Lq}) than keys (${Lk})`);
  let cu: Int32Array | null = null;
  if (opts.cuSeqlens) {
    cu = Int32Array.from(opts.cuSeqlens);
    if (Lq !== Lk) throw new Error(`attention: cuSeqlens needs equal query and key lengths, got ${Lq} and ${Lk}`);
    if (cu.length < 2 || cu[0] !== 0 || cu[cu.length - 1] !== Lk)
      throw new Error(`attention: cuSeqlens must run from 0 to ${Lk}, got [${[...cu]}]`);
    for (let i = 1; i < cu.length; i++)
      if ((cu[i] as number) < (cu[i - 1] as number))
        throw new Error(`attention: cuSeqlens must be non-decreasing, got [${[...cu]}]`);
  }
  let ks: Int32Array | null = null;
  if (opts.keyStart) {
    ks = Int32Array.from(opts.keyStart);
    if (ks.length !== B) throw new Error(`attention: keyStart has ${ks.length} entries for batch ${B}`);
    for (const s of ks) if (s < 0 || s > Lk) throw new Error(`attention: keyStart ${s} out of range [0, ${Lk}]`);
  }
  const out = empty([B, Lq, Hq, D], dtype);
  const lse = empty([B, Hq, Lq], dtype);
  const arr = (t: Tensor) => t._storage.data.subarray(t.offset);
  const args = {
    q: arr(q),
    k: arr(k),
    v: arr(v),
    out: out.buf(),
    lse: lse.buf(),
    B,
    Lq,
    Lk,
    Hq,
    Hkv,
    D,
    qBatch: q.strides[0] as number,
    qRow: q.strides[1] as number,
    kBatch: k.strides[0] as number,
    kRow: k.strides[1] as number,
    vBatch: v.strides[0] as number,
    vRow: v.strides[1] as number,
    scale: opts.scale ?? 1 / Math.sqrt(D),
    causal: !!opts.causal,
    cuSeqlens: cu,
    keyStart: ks,
  };
  const backend: Backend = be('attention', dtype);
  backend.attention(dtype, args);
  return record(out, 'attention', [q, k, v], (g) => {
    const dq = empty(q.shape, dtype);
    const dk = empty(k.shape, dtype);
    const dv = empty(v.shape, dtype);
    be('attentionBackward', dtype).attentionBackward(dtype, {
      ...args,
      q: arr(q),
      k: arr(k),
      v: arr(v),
      dout: contiguous(g).buf('attention'),
      dq: dq.buf(),
      dk: dk.buf(),
      dv: dv.buf(),
    });
    return [dq, dk, dv];
  });
}
