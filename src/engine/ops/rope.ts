/**
 * Rotary position embedding applied to x [batch, length, heads, head_dim] with per-position angle tables.
 * interleaved = pairs (2i, 2i+1) (GLM-4.1V text, GPT-J); otherwise half-split (i, i+R/2) (NeoX, GLM-4.5V text,
 * the GLM ViT). Only the first rotDim dims rotate (partial rotary); the rest pass through.
 */

import { record } from '../autograd.js';
import { be } from '../device.js';
import { fmt } from '../shape.js';
import { empty, type Tensor } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';

/** cos/sin: [B or 1, L, rotDim/2]. */
export function applyRotary(x: Tensor, cos: Tensor, sin: Tensor, opts: { interleaved: boolean }): Tensor {
  x.assertAlive('applyRotary');
  if (x.dtype === 'bfloat16') return cast(applyRotary(cast(x, 'float32'), cos, sin, opts), 'bfloat16');
  if (x.ndim !== 4) throw new Error(`applyRotary: x must be [batch, length, heads, head_dim], got ${fmt(x.shape)}`);
  const [B, L, H, D] = x.shape as [number, number, number, number];
  if (cos.ndim !== 3 || sin.ndim !== 3 || cos.shape.some((d, i) => d !== sin.shape[i])) {
    throw new Error(
      `applyRotary: cos ${fmt(cos.shape)} and sin ${fmt(sin.shape)} must both be [batch, length, rotDim/2]`,
    );
  }
  const half = cos.shape[2] as number;
  const rotDim = 2 * half;
  if (cos.shape[1] !== L || (cos.shape[0] !== B && cos.shape[0] !== 1) || rotDim > D) {
    throw new Error(`applyRotary: tables ${fmt(cos.shape)} do not fit x ${fmt(x.shape)}`);
  }
  const c = contiguous(cast(cos, x.dtype));
  const s = contiguous(cast(sin, x.dtype));
  const csBatch = cos.shape[0] === 1 ? 0 : L * half;
  const xc = contiguous(x);
  const out = empty(x.shape, x.dtype);
  const run = (src: Tensor, dst: Tensor, inverse: boolean) =>
    be('rope', x.dtype).rope(
      x.dtype,
      src.buf('applyRotary'),
      c.buf(),
      s.buf(),
      dst.buf(),
      B,
      L,
      H,
      D,
      rotDim,
      csBatch,
      opts.interleaved,
      inverse,
    );
  run(xc, out, false);
  return record(out, 'applyRotary', [x], (g) => {
    const dx = empty(x.shape, x.dtype);
    run(contiguous(g), dx, true);
    return [dx];
  });
}
