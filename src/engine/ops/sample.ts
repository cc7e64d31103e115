/**
 * Bicubic grid sampling of a learned table (torch grid_sample, mode='bicubic', align_corners=False,
 * padding_mode='border'), differentiable in the table. The GLM ViT resamples its 24×24 position table to each
 * image's patch grid with it.
 */

import { record } from '../autograd.js';
import { be } from '../device.js';
import { fmt } from '../shape.js';
import { empty, type Tensor, zeros } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';

/** table [Hin, Win, C]; points gx, gy in [−1, 1] (x = column, y = row) → [P, C]. */
export function gridSampleBicubic(table: Tensor, gx: Float64Array, gy: Float64Array): Tensor {
  table.assertAlive('gridSampleBicubic');
  if (table.ndim !== 3) throw new Error(`gridSampleBicubic: table must be [H, W, C], got ${fmt(table.shape)}`);
  if (gx.length !== gy.length)
    throw new Error(`gridSampleBicubic: ${gx.length} x coordinates but ${gy.length} y coordinates`);
  for (let i = 0; i < gx.length; i++) {
    if (!Number.isFinite(gx[i]) || !Number.isFinite(gy[i]))
      throw new Error(`gridSampleBicubic: coordinate ${i} is not finite`);
  }
  const dtype = table.dtype === 'bfloat16' ? 'float32' : table.dtype;
  const t = contiguous(cast(table, dtype));
  const [H, W, C] = t.shape as [number, number, number];
  const out = empty([gx.length, C], dtype);
  be('gridSampleBicubic', dtype).gridSampleBicubic(dtype, t.buf('gridSampleBicubic'), H, W, C, gx, gy, out.buf());
  return record(out, 'gridSampleBicubic', [t], (g) => {
    const d = zeros(t.shape, dtype);
    be('gridSampleBicubicBackward', dtype).gridSampleBicubicBackward(
      dtype,
      contiguous(g).buf(),
      H,
      W,
      C,
      gx,
      gy,
      d.buf(),
    );
    return [d];
  });
}
