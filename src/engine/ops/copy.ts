/**
 * Data movement without math: strided copies between layouts (contiguous, clone), between dtypes (cast), and the
 * in-place writes (copy_, fill_, add into a view). Every other op builds on these; they build on nothing but the
 * tensor core.
 */
import { record } from '../autograd.js';
import { be } from '../device.js';
import { type DType, f32ToBf16, isFloat } from '../dtype.js';
import { broadcastShapes, broadcastStrides, fmt, sameShape } from '../shape.js';
import { empty, type Tensor } from '../tensor-core.js';

/** Raw strided copy src → dst view (src broadcast to dst's shape, same dtype), no autograd. */
function copyRaw(dst: Tensor, src: Tensor): void {
  dst.assertAlive('copy');
  src.assertAlive('copy');
  const strides = broadcastStrides(src.shape, src.strides, dst.shape);
  be('stridedCopy', dst.dtype).stridedCopy(
    src._storage.data,
    src.offset,
    strides,
    dst._storage.data,
    dst.offset,
    dst.strides,
    dst.shape,
  );
}

export function contiguous(x: Tensor): Tensor {
  x.assertAlive('contiguous');
  if (x.isContiguous()) return x;
  return clone(x);
}

/** A fresh contiguous copy (differentiable). */
export function clone(x: Tensor): Tensor {
  x.assertAlive('clone');
  const out = empty(x.shape, x.dtype);
  copyRaw(out, x);
  return record(out, 'clone', [x], (g) => [g]);
}

/** Converts to `dtype` only when needed (differentiable). */
export function cast(x: Tensor, dtype: DType): Tensor {
  x.assertAlive('cast');
  if (x.dtype === dtype) return x;
  const c = contiguous(x);
  const out = empty(x.shape, dtype);
  be('cast', 'float32').cast(c.buf('cast'), x.dtype, out.buf(), dtype, out.size);
  if (isFloat(x.dtype) && isFloat(dtype)) record(out, 'cast', [x], (g) => [cast(g, x.dtype)]);
  return out;
}

/** dst (a view) += src broadcast to its shape, no autograd. */
export function addIntoView(dst: Tensor, src: Tensor): void {
  dst.assertAlive('addInto');
  const s = src.dtype === dst.dtype ? src : cast(src, dst.dtype);
  s.assertAlive('addInto');
  be('stridedAdd', dst.dtype).stridedAdd(
    s._storage.data,
    s.offset,
    broadcastStrides(s.shape, s.strides, dst.shape),
    dst._storage.data,
    dst.offset,
    dst.strides,
    dst.shape,
  );
}

/** dst (any view) ← src broadcast to dst's shape, converting dtype. No autograd. */
export function copyInto(dst: Tensor, src: Tensor): void {
  broadcastShapes(dst.shape, src.shape, 'copy_');
  if (!sameShape(broadcastShapes(dst.shape, src.shape, 'copy_'), dst.shape)) {
    throw new Error(`copy_: cannot copy ${fmt(src.shape)} into ${fmt(dst.shape)}`);
  }
  copyRaw(dst, src.dtype === dst.dtype ? src : cast(src, dst.dtype));
}

export function fillInPlace(dst: Tensor, value: number): void {
  dst.assertAlive('fill_');
  const v = dst.dtype === 'bfloat16' ? f32ToBf16(value) : value;
  if (dst.isContiguous()) {
    dst.buf('fill_').fill(v);
    return;
  }
  const tmp = empty([], dst.dtype);
  tmp.buf().fill(v);
  copyRaw(dst, tmp);
}
