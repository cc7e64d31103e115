/** Index ops: index_select (embedding lookup), gather / scatter-add along an axis, one-hot, top-k. */

import { record } from '../autograd.js';
import { be } from '../device.js';
import { isFloat } from '../dtype.js';
import { fmt, normAxis, numel } from '../shape.js';
import { empty, type Tensor, zeros } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';
import { permute, reshape } from './shape.js';

function checkIndex(index: Tensor, limit: number, op: string): Int32Array {
  index.assertAlive(op);
  if (index.dtype !== 'int32') throw new Error(`${op}: index must be int32, got ${index.dtype}`);
  const idx = contiguous(index).buf(op) as Int32Array;
  for (let i = 0; i < idx.length; i++) {
    const v = idx[i] as number;
    if (v < 0 || v >= limit) throw new Error(`${op}: index ${v} at position ${i} is out of range [0, ${limit})`);
  }
  return idx;
}

/** Rows of x along `axis` picked by `index` (any shape); output shape x[:axis] + index.shape + x[axis+1:]. */
export function indexSelect(x: Tensor, axis: number, index: Tensor): Tensor {
  x.assertAlive('indexSelect');
  const a = normAxis(axis, x.ndim, 'indexSelect');
  const n = x.shape[a] as number;
  const idx = checkIndex(index, n, 'indexSelect');
  const outer = numel(x.shape.slice(0, a));
  const inner = numel(x.shape.slice(a + 1));
  const xc = contiguous(x);
  const out = empty([...x.shape.slice(0, a), ...index.shape, ...x.shape.slice(a + 1)], x.dtype);
  be('indexSelect', x.dtype).indexSelect(x.dtype, xc.buf('indexSelect'), idx, out.buf(), outer, n, inner, idx.length);
  const xs = x.shape;
  return record(out, 'indexSelect', [x], (g) => {
    const gc = contiguous(g);
    const dx = zeros(xs, g.dtype);
    be('indexAdd', g.dtype).indexAdd(g.dtype, gc.buf('indexAdd'), idx, dx.buf(), outer, n, inner, idx.length);
    return [dx];
  });
}

/** Embedding lookup: weight [V, D], ids int32 (any shape) → [..., D]. */
export function embedding(weight: Tensor, ids: Tensor): Tensor {
  if (weight.ndim !== 2) throw new Error(`embedding: weight must be 2-d [vocab, dim], got ${fmt(weight.shape)}`);
  return indexSelect(weight, 0, ids);
}

function gatherDims(x: Tensor, a: number, index: Tensor, op: string): { outer: number; inner: number } {
  if (index.ndim !== x.ndim)
    throw new Error(`${op}: index ${fmt(index.shape)} must have as many dims as input ${fmt(x.shape)}`);
  for (let i = 0; i < x.ndim; i++) {
    if (i !== a && index.shape[i] !== x.shape[i]) {
      throw new Error(`${op}: index ${fmt(index.shape)} and input ${fmt(x.shape)} differ outside axis ${a}`);
    }
  }
  return { outer: numel(x.shape.slice(0, a)), inner: numel(x.shape.slice(a + 1)) };
}

/** out[..., j, ...] = x[..., index[..., j, ...], ...] along `axis` (torch.gather). */
export function gather(x: Tensor, axis: number, index: Tensor): Tensor {
  x.assertAlive('gather');
  const a = normAxis(axis, x.ndim, 'gather');
  const { outer, inner } = gatherDims(x, a, index, 'gather');
  const n = x.shape[a] as number;
  const k = index.shape[a] as number;
  const idx = checkIndex(index, n, 'gather');
  const xc = contiguous(x);
  const out = empty(index.shape, x.dtype);
  be('gather', x.dtype).gather(x.dtype, xc.buf('gather'), idx, out.buf(), outer, n, inner, k);
  const xs = x.shape;
  return record(out, 'gather', [x], (g) => {
    const gc = contiguous(g);
    const dx = zeros(xs, g.dtype);
    be('scatterAdd', g.dtype).scatterAdd(g.dtype, gc.buf('scatterAdd'), idx, dx.buf(), outer, n, inner, k);
    return [dx];
  });
}

/** zeros(shape) with src added at `index` along `axis` (the backward of gather; differentiable in src). */
export function scatterAlong(src: Tensor, axis: number, index: Tensor, shape: readonly number[]): Tensor {
  const a = normAxis(axis, shape.length, 'scatterAdd');
  const n = shape[a] as number;
  const k = index.shape[a] as number;
  const outer = numel(shape.slice(0, a));
  const inner = numel(shape.slice(a + 1));
  const idx = checkIndex(index, n, 'scatterAdd');
  const sc = contiguous(src);
  const out = zeros(shape, src.dtype);
  be('scatterAdd', src.dtype).scatterAdd(src.dtype, sc.buf('scatterAdd'), idx, out.buf(), outer, n, inner, k);
  return record(out, 'scatterAdd', [src], (g) => [gather(g, a, index)]);
}

/**
 * out = zeros(shape) with src's slices added at `index` along `axis` (torch index_add on zeros): MoE combine,
 * scatter of expert outputs back to their tokens. Differentiable in src (the gradient is an indexSelect).
 */
export function indexAdd(shape: readonly number[], axis: number, index: Tensor, src: Tensor): Tensor {
  src.assertAlive('indexAdd');
  const a = normAxis(axis, shape.length, 'indexAdd');
  const n = shape[a] as number;
  const idx = checkIndex(index, n, 'indexAdd');
  if (index.ndim !== 1) throw new Error(`indexAdd: index must be 1-d, got ${fmt(index.shape)}`);
  const expected = [...shape.slice(0, a), idx.length, ...shape.slice(a + 1)];
  if (src.ndim !== expected.length || src.shape.some((d, i) => d !== expected[i])) {
    throw new Error(
      `indexAdd: src ${fmt(src.shape)} does not match ${fmt(expected)} (shape ${fmt(shape)} with ${idx.length} indices on axis ${axis})`,
    );
  }
  const outer = numel(shape.slice(0, a));
  const inner = numel(shape.slice(a + 1));
  const sc = contiguous(src);
  const out = zeros(shape, src.dtype);
  be('indexAdd', src.dtype).indexAdd(src.dtype, sc.buf('indexAdd'), idx, out.buf(), outer, n, inner, idx.length);
  return record(out, 'indexAdd', [src], (g) => [indexSelect(g, a, index)]);
}

/** One-hot float32 encoding of int32 ids: [..., numClasses]. */
export function oneHot(ids: Tensor, numClasses: number): Tensor {
  const idx = checkIndex(ids, numClasses, 'oneHot');
  const out = zeros([...ids.shape, numClasses], 'float32');
  const b = out.buf();
  for (let i = 0; i < idx.length; i++) b[i * numClasses + (idx[i] as number)] = 1;
  return out;
}

/** Largest k along `axis` (descending; ties by lower index). values are differentiable (via gather). */
export function topk(x: Tensor, k: number, axis = -1): { values: Tensor; indices: Tensor } {
  x.assertAlive('topk');
  const a = normAxis(axis, x.ndim, 'topk');
  const n = x.shape[a] as number;
  if (!Number.isInteger(k) || k < 0 || k > n) throw new Error(`topk: k=${k} out of range for axis of size ${n}`);
  const xf = isFloat(x.dtype) && x.dtype !== 'bfloat16' ? x : cast(x, 'float32');
  const order = x.shape.map((_, i) => i).filter((i) => i !== a);
  order.push(a);
  const moved = contiguous(permute(xf, order));
  const rows = moved.size / Math.max(n, 1);
  const vals = empty([...moved.shape.slice(0, -1), k], xf.dtype);
  const idxT = empty([...moved.shape.slice(0, -1), k], 'int32');
  be('topk', xf.dtype).topk(xf.dtype, moved.buf('topk'), vals.buf(), idxT.buf() as Int32Array, rows, n, k);
  const inv = new Array<number>(order.length);
  order.forEach((o, i) => {
    inv[o] = i;
  });
  const indices = contiguous(permute(idxT, inv));
  return { values: gather(x, a, indices), indices };
}

export { reshape };
