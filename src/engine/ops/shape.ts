/**
 * Layout ops: views (reshape, permute, slice, squeeze) share storage; concat/stack/pad copy. Copies and casts live
 * in copy.ts; expand, a broadcast view, lives in reduce.ts beside sumTo, its gradient (and sum's gradient is expand).
 */
import { record } from '../autograd.js';
import { checkShape, contiguousStrides, fmt, normAxis, numel, sameShape } from '../shape.js';
import { empty, makeView, type Tensor, zeros } from '../tensor-core.js';
import { addIntoView, contiguous, copyInto, fillInPlace } from './copy.js';

export function reshape(x: Tensor, shape0: readonly number[]): Tensor {
  x.assertAlive('reshape');
  const shape = [...shape0];
  const neg = shape.indexOf(-1);
  if (neg !== shape.lastIndexOf(-1)) throw new Error(`reshape: only one dimension can be -1, got ${fmt(shape0)}`);
  if (neg >= 0) {
    const rest = numel(shape.filter((_, i) => i !== neg));
    if (rest === 0 || x.size % rest !== 0)
      throw new Error(`reshape: cannot reshape ${fmt(x.shape)} into ${fmt(shape0)}`);
    shape[neg] = x.size / rest;
  }
  checkShape(shape, 'reshape');
  if (numel(shape) !== x.size) {
    throw new Error(
      `reshape: cannot reshape ${fmt(x.shape)} (${x.size} elements) into ${fmt(shape0)} (${numel(shape)} elements)`,
    );
  }
  if (sameShape(shape, x.shape)) return x;
  const base = contiguous(x);
  const out = makeView(base, shape, contiguousStrides(shape), base.offset);
  const xs = x.shape;
  return record(out, 'reshape', [base], (g) => [reshape(g, xs)]);
}

export function flatten(x: Tensor, start = 0, end = -1): Tensor {
  if (x.ndim === 0) return reshape(x, [1]);
  const s = normAxis(start, x.ndim, 'flatten');
  const e = normAxis(end, x.ndim, 'flatten');
  if (e < s) throw new Error(`flatten: end axis ${end} comes before start axis ${start}`);
  return reshape(x, [...x.shape.slice(0, s), numel(x.shape.slice(s, e + 1)), ...x.shape.slice(e + 1)]);
}

export function permute(x: Tensor, order: readonly number[]): Tensor {
  x.assertAlive('permute');
  if (order.length !== x.ndim)
    throw new Error(`permute: order [${order}] has ${order.length} axes, tensor ${fmt(x.shape)} has ${x.ndim}`);
  const ax = order.map((a) => normAxis(a, x.ndim, 'permute'));
  if (new Set(ax).size !== ax.length) throw new Error(`permute: repeated axis in [${order}]`);
  const out = makeView(
    x,
    ax.map((a) => x.shape[a] as number),
    ax.map((a) => x.strides[a] as number),
    x.offset,
  );
  const inv = new Array<number>(ax.length);
  ax.forEach((a, i) => {
    inv[a] = i;
  });
  return record(out, 'permute', [x], (g) => [permute(g, inv)]);
}

export function transpose(x: Tensor, a: number, b: number): Tensor {
  const order = x.shape.map((_, i) => i);
  const i = normAxis(a, x.ndim, 'transpose');
  const j = normAxis(b, x.ndim, 'transpose');
  order[i] = j;
  order[j] = i;
  return permute(x, order);
}

export function slice(x: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
  x.assertAlive('slice');
  const a = normAxis(axis, x.ndim, 'slice');
  const n = x.shape[a] as number;
  if (!Number.isInteger(step) || step < 1) throw new Error(`slice: step must be a positive integer, got ${step}`);
  const norm = (v: number) => Math.min(Math.max(v < 0 ? v + n : v, 0), n);
  const s = norm(start);
  const e = Math.max(norm(end ?? n), s);
  const len = Math.ceil((e - s) / step);
  const shape = [...x.shape];
  shape[a] = len;
  const strides = [...x.strides];
  strides[a] = (x.strides[a] as number) * step;
  const out = makeView(x, shape, strides, x.offset + s * (x.strides[a] as number));
  const xs = x.shape;
  return record(
    out,
    'slice',
    [x],
    (g) => {
      const dx = zeros(xs, g.dtype);
      copyInto(slice(dx, a, s, e, step), g);
      return [dx];
    },
    (g, bufferFor) => addIntoView(slice(bufferFor(0), a, s, e, step), g),
  );
}

/** Index `index` along `axis`, dropping that axis (a view). */
export function select(x: Tensor, axis: number, index: number): Tensor {
  const a = normAxis(axis, x.ndim, 'select');
  const n = x.shape[a] as number;
  const i = index < 0 ? index + n : index;
  if (!Number.isInteger(i) || i < 0 || i >= n)
    throw new Error(`select: index ${index} out of range for axis ${axis} of size ${n}`);
  return squeeze(slice(x, a, i, i + 1), a);
}

export function squeeze(x: Tensor, axis?: number): Tensor {
  if (axis === undefined)
    return reshape(
      x,
      x.shape.filter((d) => d !== 1),
    );
  const a = normAxis(axis, x.ndim, 'squeeze');
  if (x.shape[a] !== 1) return x;
  const shape = x.shape.filter((_, i) => i !== a);
  const strides = x.strides.filter((_, i) => i !== a);
  const out = makeView(x, shape, strides, x.offset);
  const xs = x.shape;
  return record(out, 'squeeze', [x], (g) => [reshape(g, xs)]);
}

export function unsqueeze(x: Tensor, axis: number): Tensor {
  const a = normAxis(axis, x.ndim + 1, 'unsqueeze');
  const shape = [...x.shape];
  const strides = [...x.strides];
  shape.splice(a, 0, 1);
  strides.splice(a, 0, a < x.ndim ? (x.strides[a] as number) * (x.shape[a] as number) : 1);
  const out = makeView(x, shape, strides, x.offset);
  const xs = x.shape;
  return record(out, 'unsqueeze', [x], (g) => [reshape(g, xs)]);
}

export function split(x: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
  const a = normAxis(axis, x.ndim, 'split');
  const n = x.shape[a] as number;
  let list: number[];
  if (typeof sizes === 'number') {
    if (!(sizes > 0)) throw new Error(`split: size must be positive, got ${sizes}`);
    list = [];
    for (let s = 0; s < n; s += sizes) list.push(Math.min(sizes, n - s));
  } else {
    list = [...sizes];
    const total = list.reduce((p, q) => p + q, 0);
    if (total !== n)
      throw new Error(`split: sizes [${list}] sum to ${total}, but axis ${axis} of ${fmt(x.shape)} has ${n}`);
  }
  const out: Tensor[] = [];
  let off = 0;
  for (const s of list) {
    out.push(slice(x, a, off, off + s));
    off += s;
  }
  return out;
}

export function chunk(x: Tensor, n: number, axis = 0): Tensor[] {
  const a = normAxis(axis, x.ndim, 'chunk');
  const size = Math.ceil((x.shape[a] as number) / n);
  return split(x, size, a);
}

/** Concatenation along an existing axis. */
export function concat(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('concat: need at least one tensor');
  const first = tensors[0]!;
  const a = normAxis(axis, first.ndim, 'concat');
  const dtype = first.dtype;
  let total = 0;
  for (const t of tensors) {
    t.assertAlive('concat');
    if (t.ndim !== first.ndim || t.shape.some((d, i) => i !== a && d !== first.shape[i])) {
      throw new Error(`concat: shapes ${fmt(first.shape)} and ${fmt(t.shape)} differ outside axis ${axis}`);
    }
    if (t.dtype !== dtype) throw new Error(`concat: dtypes differ (${dtype} and ${t.dtype}); cast first`);
    total += t.shape[a] as number;
  }
  const shape = [...first.shape];
  shape[a] = total;
  const out = empty(shape, dtype);
  let off = 0;
  const offsets: number[] = [];
  for (const t of tensors) {
    offsets.push(off);
    const n = t.shape[a] as number;
    if (n > 0) copyInto(slice(out, a, off, off + n), t);
    off += n;
  }
  return record(out, 'concat', tensors, (g) =>
    tensors.map((t, i) => (t.requiresGrad ? slice(g, a, offsets[i]!, offsets[i]! + (t.shape[a] as number)) : null)),
  );
}

/** Stacks equal-shaped tensors along a new axis. */
export function stack(tensors: readonly Tensor[], axis = 0): Tensor {
  if (tensors.length === 0) throw new Error('stack: need at least one tensor');
  const first = tensors[0]!;
  for (const t of tensors) {
    if (!sameShape(t.shape, first.shape))
      throw new Error(`stack: shapes ${fmt(first.shape)} and ${fmt(t.shape)} differ`);
  }
  const a = normAxis(axis, first.ndim + 1, 'stack');
  return concat(
    tensors.map((t) => unsqueeze(t, a)),
    a,
  );
}

/** Zero padding: pads[i] = [before, after] for each trailing axis i (like F.pad, but listed front to back). */
export function pad(x: Tensor, pads: ReadonlyArray<readonly [number, number]>, value = 0): Tensor {
  const lead = x.ndim - pads.length;
  if (lead < 0) throw new Error(`pad: ${pads.length} pad pairs for a ${x.ndim}-d tensor`);
  const shape = x.shape.map((d, i) => (i < lead ? d : d + pads[i - lead]![0] + pads[i - lead]![1]));
  const out = empty(shape, x.dtype);
  fillInPlace(out, value);
  let view = out;
  pads.forEach(([b], k) => {
    const ax = lead + k;
    view = slice(view, ax, b, b + (x.shape[ax] as number));
  });
  copyInto(view, x);
  return record(out, 'pad', [x], (g) => {
    let v = g;
    pads.forEach(([b], k) => {
      const ax = lead + k;
      v = slice(v, ax, b, b + (x.shape[ax] as number));
    });
    return [v];
  });
}
