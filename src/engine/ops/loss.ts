/** Fused cross-entropy over logits with ignore_index and optional per-token weights. */

import { record } from '../autograd.js';
import { be } from '../device.js';
import { fmt, sameShape } from '../shape.js';
import { empty, fromArray, type Tensor } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';

export interface CrossEntropyOptions {
  /** Targets equal to this contribute nothing (default −100, as PyTorch). */
  ignoreIndex?: number;
  /** Per-token weights, same shape as targets. */
  weights?: Tensor | null;
  /**
   * 'mean' (default): Σ wᵢ·lossᵢ / Σ wᵢ over non-ignored tokens (0 when every token is ignored);
   * 'sum': Σ wᵢ·lossᵢ; 'none': per-token losses shaped like targets.
   */
  reduction?: 'mean' | 'sum' | 'none';
}

/** logits [..., V] (float), targets int32 [...]. */
export function crossEntropy(logits: Tensor, targets: Tensor, opts: CrossEntropyOptions = {}): Tensor {
  const ignore = opts.ignoreIndex ?? -100;
  const reduction = opts.reduction ?? 'mean';
  logits.assertAlive('crossEntropy');
  targets.assertAlive('crossEntropy');
  if (logits.dtype === 'bfloat16') return crossEntropy(cast(logits, 'float32'), targets, opts);
  if (logits.dtype !== 'float32' && logits.dtype !== 'float64')
    throw new Error(`crossEntropy: logits must be float, got ${logits.dtype}`);
  if (targets.dtype !== 'int32') throw new Error(`crossEntropy: targets must be int32, got ${targets.dtype}`);
  if (!sameShape(logits.shape.slice(0, -1), targets.shape)) {
    throw new Error(
      `crossEntropy: logits ${fmt(logits.shape)} and targets ${fmt(targets.shape)} do not match (targets = logits without the last dim)`,
    );
  }
  const V = logits.shape[logits.ndim - 1] as number;
  const rows = targets.size;
  const t = contiguous(targets).buf('crossEntropy') as Int32Array;
  let denom = 0;
  const w = opts.weights ? contiguous(cast(opts.weights, logits.dtype)) : null;
  if (w && !sameShape(w.shape, targets.shape))
    throw new Error(`crossEntropy: weights ${fmt(w.shape)} must match targets ${fmt(targets.shape)}`);
  const wb = w?.buf('crossEntropy') ?? null;
  for (let i = 0; i < rows; i++) {
    const v = t[i] as number;
    if (v === ignore) continue;
    if (!Number.isInteger(v) || v < 0 || v >= V)
      throw new Error(`crossEntropy: target ${v} at position ${i} is out of range [0, ${V}) (ignoreIndex ${ignore})`);
    denom += wb ? (wb[i] as number) : 1;
  }
  const lc = contiguous(logits);
  const perRow = empty(targets.shape, logits.dtype);
  const lse = empty([rows], logits.dtype);
  be('crossEntropy', logits.dtype).crossEntropy(
    logits.dtype,
    lc.buf(),
    t,
    wb,
    perRow.buf(),
    lse.buf(),
    rows,
    V,
    ignore,
  );
  const backward = (dloss: Tensor) => {
    const dl = contiguous(dloss);
    const dlogits = empty(logits.shape, logits.dtype);
    be('crossEntropyBackward', logits.dtype).crossEntropyBackward(
      logits.dtype,
      lc.buf(),
      t,
      wb,
      lse.buf(),
      dl.buf(),
      dlogits.buf(),
      rows,
      V,
      ignore,
    );
    return [dlogits];
  };
  if (reduction === 'none') return record(perRow, 'crossEntropy', [logits], backward);
  const pb = perRow.buf();
  let total = 0;
  for (let i = 0; i < rows; i++) total += pb[i] as number;
  const scale = reduction === 'mean' ? (denom > 0 ? 1 / denom : 0) : 1;
  const Arr = logits.dtype === 'float64' ? Float64Array : Float32Array;
  const out = fromArray(Arr.of(total * scale), [], logits.dtype);
  return record(out, 'crossEntropy', [logits], (g) => {
    const gv = g.item() * scale;
    const dl = empty([rows], logits.dtype);
    dl.buf().fill(gv);
    return backward(dl);
  });
}
