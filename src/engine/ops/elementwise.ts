/** Elementwise math with broadcasting: binary arithmetic, comparisons, where, the fused SwiGLU, in-place add. */
import { record } from '../autograd.js';
import type { BinaryOp } from '../backend.js';
import { be } from '../device.js';
import { computeType, type DType, isFloat, promote, requireFloat } from '../dtype.js';
import { broadcastShapes, broadcastStrides, fmt, sameShape } from '../shape.js';
import { empty, full, Tensor } from '../tensor-core.js';
import { cast, contiguous, copyInto } from './copy.js';
import { sumTo } from './reduce.js';
import { affine, log, neg, silu } from './unary.js';

type Operand = Tensor | number;

/** Rows view of a [..., cols] tensor whose last dim is contiguous: base array, row stride, row count. */
function rowsOf(t: Tensor, op: string): { arr: ReturnType<Tensor['buf']>; row: number; rows: number } | null {
  const cols = t.shape[t.ndim - 1] as number;
  if (t.strides[t.ndim - 1] !== 1 && cols !== 1) return null;
  // All leading dims must collapse into one row stride.
  let rows = 1;
  let row = -1;
  for (let i = t.ndim - 2; i >= 0; i--) {
    const d = t.shape[i] as number;
    if (d === 1) continue;
    const expected = row < 0 ? -1 : row * rows;
    if (row < 0) row = t.strides[i] as number;
    else if (t.strides[i] !== expected) return null;
    rows *= d;
  }
  if (row < 0) row = cols;
  t.assertAlive(op);
  return { arr: t._storage.data.subarray(t.offset), row, rows };
}

/**
 * SwiGLU, silu(gate)·up, fused: one pass forward, one backward. gate and up may be the two halves of one fused
 * projection (`chunk(2, -1)` of gate_up_proj) without copies.
 */
export function swiglu(gate: Tensor, up: Tensor): Tensor {
  if (!sameShape(gate.shape, up.shape))
    throw new Error(`swiglu: gate ${fmt(gate.shape)} and up ${fmt(up.shape)} differ`);
  requireFloat(gate, 'swiglu');
  if (gate.dtype !== up.dtype || gate.dtype === 'bfloat16')
    return mul(silu(cast(gate, 'float32')), cast(up, 'float32'));
  let g = rowsOf(gate, 'swiglu');
  let u = rowsOf(up, 'swiglu');
  const gc = g ? gate : contiguous(gate);
  const uc = u ? up : contiguous(up);
  g ??= rowsOf(gc, 'swiglu');
  u ??= rowsOf(uc, 'swiglu');
  const cols = gate.shape[gate.ndim - 1] as number;
  const out = empty(gate.shape, gate.dtype);
  be('swiglu', gate.dtype).swiglu(gate.dtype, g!.arr, g!.row, u!.arr, u!.row, out.buf(), g!.rows, cols);
  return record(out, 'swiglu', [gate, up], (d) => {
    const dg = empty(gate.shape, gate.dtype);
    const du = empty(gate.shape, gate.dtype);
    be('swigluBackward', gate.dtype).swigluBackward(
      gate.dtype,
      g!.arr,
      g!.row,
      u!.arr,
      u!.row,
      contiguous(d).buf('swiglu'),
      dg.buf(),
      du.buf(),
      g!.rows,
      cols,
    );
    return [dg, du];
  });
}

// ---- binary ----

/** Raw broadcast binary kernel call (no autograd). */
function binaryRaw(op: BinaryOp, a: Tensor, b: Tensor, dtype: DType, outType: DType): Tensor {
  const shape = broadcastShapes(a.shape, b.shape, op);
  const out = empty(shape, outType);
  a.assertAlive(op);
  b.assertAlive(op);
  be('binary', dtype).binary(
    op,
    dtype,
    a._storage.data,
    a.offset,
    broadcastStrides(a.shape, a.strides, shape),
    b._storage.data,
    b.offset,
    broadcastStrides(b.shape, b.strides, shape),
    out.buf(),
    outType,
    shape,
  );
  return out;
}

function toTensor(v: Operand, like: Tensor): Tensor {
  return typeof v === 'number' ? full([], v, computeType(like.dtype)) : v;
}

function arith(op: 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min', a0: Operand, b0: Operand): Tensor {
  if (typeof a0 === 'number' && typeof b0 === 'number') throw new Error(`${op}: at least one operand must be a tensor`);
  // Scalar fast paths through the affine kernel.
  if (typeof b0 === 'number' && a0 instanceof Tensor && isFloat(a0.dtype)) {
    if (op === 'add') return affine(a0, 1, b0);
    if (op === 'sub') return affine(a0, 1, -b0);
    if (op === 'mul') return affine(a0, b0, 0);
    if (op === 'div') return affine(a0, 1 / b0, 0);
  }
  if (typeof a0 === 'number' && b0 instanceof Tensor && isFloat(b0.dtype)) {
    if (op === 'add') return affine(b0, 1, a0);
    if (op === 'sub') return affine(b0, -1, a0);
    if (op === 'mul') return affine(b0, a0, 0);
  }
  const like = (a0 instanceof Tensor ? a0 : b0) as Tensor;
  let a = toTensor(a0, like);
  let b = toTensor(b0, like);
  // int32/bool operands are promoted to float32 (arithmetic always yields a float tensor).
  const outType = promote(a.dtype, b.dtype);
  if (outType === 'bfloat16') return cast(arith(op, cast(a, 'float32'), cast(b, 'float32')), 'bfloat16');
  a = cast(a, outType);
  b = cast(b, outType);
  const out = binaryRaw(op, a, b, outType, outType);
  const A = a;
  const B = b;
  return record(out, op, [A, B], (g) => {
    const need = (t: Tensor) => t.requiresGrad;
    switch (op) {
      case 'add':
        return [need(A) ? sumTo(g, A.shape) : null, need(B) ? sumTo(g, B.shape) : null];
      case 'sub':
        return [need(A) ? sumTo(g, A.shape) : null, need(B) ? sumTo(neg(g), B.shape) : null];
      case 'mul':
        return [need(A) ? sumTo(mul(g, B), A.shape) : null, need(B) ? sumTo(mul(g, A), B.shape) : null];
      case 'div':
        return [need(A) ? sumTo(div(g, B), A.shape) : null, need(B) ? sumTo(neg(div(mul(g, out), B)), B.shape) : null];
      case 'pow': {
        // d/da a^b = b·a^(b−1); d/db a^b = a^b·ln a (0 where a == 0, as torch does for b > 0).
        const ga = need(A) ? sumTo(mul(g, mul(B, arith('pow', A, sub(B, 1)))), A.shape) : null;
        let gb: Tensor | null = null;
        if (need(B)) {
          const lnA = where(compare('gt', A, 0), log(maximum(A, 1e-300)), 0);
          gb = sumTo(mul(g, mul(out, lnA)), B.shape);
        }
        return [ga, gb];
      }
      case 'max':
      case 'min': {
        // The gradient goes to the selected operand; ties split it evenly (as torch.maximum).
        const pickA = compare(op === 'max' ? 'gt' : 'lt', A, B);
        const tie = compare('eq', A, B);
        const wA = add(cast(pickA, g.dtype), mul(cast(tie, g.dtype), 0.5));
        return [need(A) ? sumTo(mul(g, wA), A.shape) : null, need(B) ? sumTo(mul(g, sub(1, wA)), B.shape) : null];
      }
    }
  });
}

export const add = (a: Operand, b: Operand) => arith('add', a, b);
export const sub = (a: Operand, b: Operand) => arith('sub', a, b);
export const mul = (a: Operand, b: Operand) => arith('mul', a, b);
export const div = (a: Operand, b: Operand) => arith('div', a, b);
export const pow = (a: Operand, b: Operand) => arith('pow', a, b);
export const maximum = (a: Operand, b: Operand) => arith('max', a, b);
export const minimum = (a: Operand, b: Operand) => arith('min', a, b);

/** Elementwise comparison → bool tensor (no gradient). */
export function compare(op: 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge', a0: Operand, b0: Operand): Tensor {
  const like = (a0 instanceof Tensor ? a0 : b0) as Tensor;
  if (!(like instanceof Tensor)) throw new Error(`${op}: at least one operand must be a tensor`);
  let a = typeof a0 === 'number' ? full([], a0, like.dtype === 'bfloat16' ? 'float32' : like.dtype) : a0;
  let b = typeof b0 === 'number' ? full([], b0, like.dtype === 'bfloat16' ? 'float32' : like.dtype) : b0;
  let dtype: DType = a.dtype === b.dtype ? a.dtype : promote(a.dtype, b.dtype);
  if (dtype === 'bfloat16' || dtype === 'bool') dtype = 'float32';
  a = cast(a, dtype);
  b = cast(b, dtype);
  return binaryRaw(op, a, b, dtype, 'bool');
}

/** cond ? a : b with broadcasting; cond is bool (any nonzero counts as true for other dtypes). */
export function where(cond: Tensor, a0: Operand, b0: Operand): Tensor {
  const like = (a0 instanceof Tensor ? a0 : b0 instanceof Tensor ? b0 : null) as Tensor | null;
  const dtype0: DType = like ? computeType(like.dtype) : 'float32';
  let a = typeof a0 === 'number' ? full([], a0, dtype0) : a0;
  let b = typeof b0 === 'number' ? full([], b0, dtype0) : b0;
  const dtype = a.dtype === b.dtype ? computeType(a.dtype) : promote(a.dtype, b.dtype);
  a = cast(a, dtype);
  b = cast(b, dtype);
  const c = cond.dtype === 'bool' ? cond : compare('ne', cond, 0);
  const shape = broadcastShapes(broadcastShapes(c.shape, a.shape, 'where'), b.shape, 'where');
  const out = empty(shape, dtype);
  c.assertAlive('where');
  be('where', dtype).where(
    dtype,
    c._storage.data,
    c.offset,
    broadcastStrides(c.shape, c.strides, shape),
    a._storage.data,
    a.offset,
    broadcastStrides(a.shape, a.strides, shape),
    b._storage.data,
    b.offset,
    broadcastStrides(b.shape, b.strides, shape),
    out.buf(),
    shape,
  );
  const A = a;
  const B = b;
  return record(out, 'where', [A, B], (g) => [
    A.requiresGrad ? sumTo(where(c, g, 0), A.shape) : null,
    B.requiresGrad ? sumTo(where(c, 0, g), B.shape) : null,
  ]);
}

export function maskedFill(x: Tensor, mask: Tensor, value: number): Tensor {
  if (mask.dtype !== 'bool') throw new Error(`maskedFill: mask must be bool, got ${mask.dtype}`);
  broadcastShapes(x.shape, mask.shape, 'maskedFill');
  return where(mask, value, x);
}

export function clamp(x: Tensor, min?: number, max?: number): Tensor {
  requireFloat(x, 'clamp');
  if (min !== undefined && max !== undefined && min > max) throw new Error(`clamp: min ${min} > max ${max}`);
  let y = x;
  if (min !== undefined) y = where(compare('lt', x, min), min, y);
  if (max !== undefined) y = where(compare('gt', x, max), max, y);
  return y;
}

/** dst += alpha·src in place (broadcast src), no autograd. */
export function addInPlace(dst: Tensor, src: Tensor, alpha: number): void {
  dst.assertAlive('addInPlace');
  src.assertAlive('addInPlace');
  if (!dst.isContiguous()) throw new Error('addInPlace: destination must be contiguous');
  const shape = broadcastShapes(dst.shape, src.shape, 'addInPlace');
  if (!sameShape(shape, dst.shape)) throw new Error(`addInPlace: cannot add ${fmt(src.shape)} into ${fmt(dst.shape)}`);
  let s = src.dtype === dst.dtype ? src : cast(src, dst.dtype);
  if (dst.dtype === 'bfloat16') {
    const f = cast(dst, 'float32');
    addInPlace(f, src, alpha);
    copyInto(dst, f);
    return;
  }
  if (alpha !== 1) s = affine(s, alpha, 0);
  const d = dst.buf('addInPlace');
  be('binary', dst.dtype).binary(
    'add',
    dst.dtype,
    d,
    0,
    dst.strides as number[],
    s._storage.data,
    s.offset,
    broadcastStrides(s.shape, s.strides, shape),
    d,
    dst.dtype,
    shape,
  );
}
