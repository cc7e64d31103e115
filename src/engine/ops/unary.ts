/** One-input pointwise math: the activations (exp, log, silu, gelu, ...) and the affine map alpha·x + beta. */
import { record } from '../autograd.js';
import type { UnaryOp } from '../backend.js';
import { be } from '../device.js';
import { requireFloat } from '../dtype.js';
import { empty, type Tensor } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';

function unary(op: UnaryOp, x: Tensor): Tensor {
  x.assertAlive(op);
  requireFloat(x, op);
  if (x.dtype === 'bfloat16') return cast(unary(op, cast(x, 'float32')), 'bfloat16');
  const xc = contiguous(x);
  const out = empty(x.shape, x.dtype);
  be('unary', x.dtype).unary(op, x.dtype, xc.buf(op), out.buf(), out.size);
  return record(out, op, [x], (g) => {
    const gc = contiguous(g);
    const dx = empty(x.shape, x.dtype);
    be('unaryBackward', x.dtype).unaryBackward(op, x.dtype, xc.buf(op), out.buf(), gc.buf(op), dx.buf(), dx.size);
    return [dx];
  });
}

export const neg = (x: Tensor) => unary('neg', x);
export const exp = (x: Tensor) => unary('exp', x);
export const log = (x: Tensor) => unary('log', x);
export const sqrt = (x: Tensor) => unary('sqrt', x);
export const rsqrt = (x: Tensor) => unary('rsqrt', x);
export const tanh = (x: Tensor) => unary('tanh', x);
export const sigmoid = (x: Tensor) => unary('sigmoid', x);
export const silu = (x: Tensor) => unary('silu', x);
export const relu = (x: Tensor) => unary('relu', x);
export const abs = (x: Tensor) => unary('abs', x);
export const sin = (x: Tensor) => unary('sin', x);
export const cos = (x: Tensor) => unary('cos', x);
export const square = (x: Tensor) => unary('square', x);
export const reciprocal = (x: Tensor) => unary('reciprocal', x);
export function gelu(x: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
  return unary(approximate === 'tanh' ? 'gelu_tanh' : 'gelu', x);
}

/** alpha·x + beta, one pass (scalar arithmetic fast path). */
export function affine(x: Tensor, alpha: number, beta: number): Tensor {
  x.assertAlive('affine');
  requireFloat(x, 'affine');
  if (x.dtype === 'bfloat16') return cast(affine(cast(x, 'float32'), alpha, beta), 'bfloat16');
  const xc = contiguous(x);
  const out = empty(x.shape, x.dtype);
  be('affine', x.dtype).affine(x.dtype, xc.buf('affine'), alpha, beta, out.buf(), out.size);
  return record(out, 'affine', [x], (g) => [alpha === 1 ? g : affine(g, alpha, 0)]);
}
