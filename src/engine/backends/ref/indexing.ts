/** Reference index ops: index_select / index_add along an axis, gather / scatter-add, and top-k of each row. */
import type { DType, TypedArray } from '../../dtype.js';

export function indexSelect(
  _dtype: DType,
  x: TypedArray,
  idx: Int32Array,
  out: TypedArray,
  outer: number,
  n: number,
  inner: number,
  nIdx: number,
): void {
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < nIdx; j++) {
      const src = (o * n + (idx[j] as number)) * inner;
      const dst = (o * nIdx + j) * inner;
      for (let i = 0; i < inner; i++) out[dst + i] = x[src + i] as number;
    }
}

export function indexAdd(
  _dtype: DType,
  src: TypedArray,
  idx: Int32Array,
  out: TypedArray,
  outer: number,
  n: number,
  inner: number,
  nIdx: number,
): void {
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < nIdx; j++) {
      const d = (o * n + (idx[j] as number)) * inner;
      const s = (o * nIdx + j) * inner;
      for (let i = 0; i < inner; i++) out[d + i] = (out[d + i] as number) + (src[s + i] as number);
    }
}

export function gather(
  _dtype: DType,
  x: TypedArray,
  idx: Int32Array,
  out: TypedArray,
  outer: number,
  n: number,
  inner: number,
  k: number,
): void {
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < k; j++)
      for (let i = 0; i < inner; i++) {
        const p = (o * k + j) * inner + i;
        out[p] = x[(o * n + (idx[p] as number)) * inner + i] as number;
      }
}

export function scatterAdd(
  _dtype: DType,
  src: TypedArray,
  idx: Int32Array,
  out: TypedArray,
  outer: number,
  n: number,
  inner: number,
  k: number,
): void {
  for (let o = 0; o < outer; o++)
    for (let j = 0; j < k; j++)
      for (let i = 0; i < inner; i++) {
        const p = (o * k + j) * inner + i;
        const d = (o * n + (idx[p] as number)) * inner + i;
        out[d] = (out[d] as number) + (src[p] as number);
      }
}

export function topk(
  _dtype: DType,
  x: TypedArray,
  values: TypedArray,
  indices: Int32Array,
  rows: number,
  n: number,
  k: number,
): void {
  const order = new Array<number>(n);
  for (let r = 0; r < rows; r++) {
    for (let i = 0; i < n; i++) order[i] = i;
    const row = (i: number) => x[r * n + i] as number;
    order.sort((p, q) => {
      const a = row(p);
      const b = row(q);
      if (a === b) return p - q;
      if (Number.isNaN(a)) return -1;
      if (Number.isNaN(b)) return 1;
      return b - a;
    });
    for (let j = 0; j < k; j++) {
      indices[r * k + j] = order[j] as number;
      values[r * k + j] = row(order[j] as number);
    }
  }
}
