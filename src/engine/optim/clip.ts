/** Global gradient-norm clipping (torch.nn.utils.clip_grad_norm_). */
import { be } from '../device.js';
import type { Tensor } from '../tensor.js';

/**
 * Scales every gradient so the global L2 norm is at most maxNorm; returns the norm before clipping.
 * A non-finite norm throws when errorIfNonfinite (default), so a NaN never reaches the weights silently.
 */
export function clipGradNorm(
  params: readonly Tensor[],
  maxNorm: number,
  opts: { errorIfNonfinite?: boolean } = {},
): number {
  if (!(maxNorm > 0)) throw new Error(`clipGradNorm: maxNorm must be > 0, got ${maxNorm}`);
  let total = 0;
  const grads: Tensor[] = [];
  for (const p of params) {
    if (!p.grad) continue;
    const g = p.grad;
    if (!g.isContiguous()) throw new Error('clipGradNorm: gradients must be contiguous');
    total += be('sumSquares', g.dtype).sumSquares(g.dtype, g.buf('clipGradNorm'), g.size);
    grads.push(g);
  }
  const norm = Math.sqrt(total);
  if (!Number.isFinite(norm)) {
    if (opts.errorIfNonfinite ?? true) {
      throw new Error(
        `clipGradNorm: the total gradient norm is ${norm}; a NaN or Inf gradient reached the optimizer (skip this step or lower the learning rate)`,
      );
    }
    return norm;
  }
  const scale = maxNorm / (norm + 1e-6);
  if (scale < 1) {
    for (const g of grads) {
      const b = g.buf();
      be('affine', g.dtype).affine(g.dtype, b, scale, 0, b, g.size);
    }
  }
  return norm;
}
