/**
 * Reductions over axes: sum, mean, max/min (with index-routed gradients), argmax/argmin; and broadcasting's pair,
 * expand (a broadcast view) and sumTo (its gradient, a sum back down to the input's shape). sum and expand are each
 * other's gradient, so they share this file.
 */
import { record } from '../autograd.js';
import type { ReduceOp } from '../backend.js';
import { be } from '../device.js';
import { isFloat } from '../dtype.js';
import { broadcastShapes, broadcastStrides, checkShape, fmt, normAxis, numel, sameShape } from '../shape.js';
import { empty, makeView, type Tensor } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';
import { scatterAlong } from './indexing.js';
import { reshape } from './shape.js';
import { affine } from './unary.js';

function normAxes(x: Tensor, axis: number | readonly number[] | undefined, op: string): number[] {
  if (axis === undefined) return x.shape.map((_, i) => i);
  const list = typeof axis === 'number' ? [axis] : [...axis];
  const out = [...new Set(list.map((a) => normAxis(a, x.ndim, op)))].sort((a, b) => a - b);
  return out;
}

/** One reduction kernel call over the contiguous axis range [a0, a1]. */
function reduceRange(op: ReduceOp, x: Tensor, a0: number, a1: number): Tensor {
  const xc = contiguous(x);
  const outer = numel(x.shape.slice(0, a0));
  const r = numel(x.shape.slice(a0, a1 + 1));
  const inner = numel(x.shape.slice(a1 + 1));
  const outShape = [...x.shape.slice(0, a0), ...x.shape.slice(a1 + 1)];
  if (r === 0 && op !== 'sum') throw new Error(`${op}: cannot reduce over an empty dimension of ${fmt(x.shape)}`);
  const isArg = op === 'argmax' || op === 'argmin';
  const out = empty(outShape, isArg ? 'int32' : x.dtype);
  be('reduce', x.dtype).reduce(op, x.dtype, xc.buf(op), out.buf(), outer, r, inner);
  return out;
}

function keptShape(shape: readonly number[], axes: readonly number[]): number[] {
  return shape.map((d, i) => (axes.includes(i) ? 1 : d));
}

export function sum(x: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
  x.assertAlive('sum');
  if (!isFloat(x.dtype)) return sum(cast(x, 'float32'), axis, keepdim);
  if (x.dtype === 'bfloat16') return cast(sum(cast(x, 'float32'), axis, keepdim), 'bfloat16');
  const axes = normAxes(x, axis, 'sum');
  if (axes.length === 0) return x;
  let y: Tensor;
  const contiguousRange = axes[axes.length - 1]! - axes[0]! === axes.length - 1;
  if (contiguousRange) {
    y = reduceRange('sum', x, axes[0]!, axes[axes.length - 1]!);
  } else {
    // Reduce one axis at a time from the last, keeping dims so indices stay valid.
    y = x;
    for (let i = axes.length - 1; i >= 0; i--)
      y = reshape(reduceRange('sum', y, axes[i]!, axes[i]!), keptShape(y.shape, [axes[i]!]));
    y = reshape(
      y,
      x.shape.filter((_, i) => !axes.includes(i)),
    );
  }
  const kept = keptShape(x.shape, axes);
  if (keepdim) y = reshape(y, kept);
  const xs = x.shape;
  return record(y, 'sum', [x], (g) => [expand(reshape(g, kept), xs)]);
}

export function mean(x: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
  const axes = normAxes(x, axis, 'mean');
  const n = axes.reduce((a, i) => a * (x.shape[i] as number), 1);
  if (n === 0) throw new Error(`mean: no elements to average in ${fmt(x.shape)}`);
  return affine(sum(x, axes, keepdim), 1 / n, 0);
}

function maxMin(op: 'max' | 'min', x: Tensor, axis: number | undefined, keepdim: boolean): Tensor {
  x.assertAlive(op);
  if (x.dtype === 'bfloat16') return cast(maxMin(op, cast(x, 'float32'), axis, keepdim), 'bfloat16');
  if (axis === undefined) return maxMin(op, reshape(x, [-1]), 0, false);
  const a = normAxis(axis, x.ndim, op);
  const idx = reduceRange(op === 'max' ? 'argmax' : 'argmin', x, a, a);
  const kept = keptShape(x.shape, [a]);
  const idxK = reshape(idx, kept);
  const vals = reduceRange(op, x, a, a);
  const y = keepdim ? reshape(vals, kept) : vals;
  const xs = x.shape;
  return record(y, op, [x], (g) => [scatterAlong(reshape(g, kept), a, idxK, xs)]);
}

export function max(x: Tensor, axis?: number, keepdim = false): Tensor {
  return maxMin('max', x, axis, keepdim);
}

export function min(x: Tensor, axis?: number, keepdim = false): Tensor {
  return maxMin('min', x, axis, keepdim);
}

export function argmax(x: Tensor, axis = -1, keepdim = false): Tensor {
  x.assertAlive('argmax');
  const xf = x.dtype === 'bfloat16' || x.dtype === 'bool' ? cast(x, 'float32') : x;
  const a = normAxis(axis, x.ndim, 'argmax');
  const idx = reduceRange('argmax', xf, a, a);
  return keepdim ? reshape(idx, keptShape(x.shape, [a])) : idx;
}

export function argmin(x: Tensor, axis = -1, keepdim = false): Tensor {
  x.assertAlive('argmin');
  const xf = x.dtype === 'bfloat16' || x.dtype === 'bool' ? cast(x, 'float32') : x;
  const a = normAxis(axis, x.ndim, 'argmin');
  const idx = reduceRange('argmin', xf, a, a);
  return keepdim ? reshape(idx, keptShape(x.shape, [a])) : idx;
}

/** A broadcast view of x at `shape` (torch.expand; -1 keeps a dim). Its gradient is sumTo. */
export function expand(x: Tensor, shape0: readonly number[]): Tensor {
  x.assertAlive('expand');
  const shape = shape0.map((d, i) => (d === -1 ? (x.shape[i - (shape0.length - x.ndim)] ?? -1) : d));
  checkShape(shape, 'expand');
  const target = broadcastShapes(x.shape, shape, 'expand');
  if (!sameShape(target, shape)) throw new Error(`expand: cannot expand ${fmt(x.shape)} to ${fmt(shape0)}`);
  if (sameShape(shape, x.shape)) return x;
  const out = makeView(x, shape, broadcastStrides(x.shape, x.strides, shape), x.offset);
  const xs = x.shape;
  return record(out, 'expand', [x], (g) => [sumTo(g, xs)]);
}

/** Sums a broadcast gradient back down to `shape` (the inverse of broadcasting). */
export function sumTo(g: Tensor, shape: readonly number[]): Tensor {
  if (sameShape(g.shape, shape)) return g;
  const lead = g.ndim - shape.length;
  if (lead < 0) throw new Error(`sumTo: cannot reduce ${fmt(g.shape)} to ${fmt(shape)}`);
  const axes: number[] = [];
  for (let i = 0; i < g.ndim; i++) {
    if (i < lead) axes.push(i);
    else if (shape[i - lead] === 1 && g.shape[i] !== 1) axes.push(i);
  }
  const s = axes.length ? sum(g, axes, true) : g;
  return reshape(s, shape);
}
