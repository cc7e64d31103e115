/**
 * Reference batched matmul: the textbook triple loop over (optionally transposed) operands, bf16 operands widened on
 * read, out = alpha · A·B + beta · out.
 */
import type { DType, TypedArray } from '../../dtype.js';
import { readAs } from './elementwise.js';

export function matmul(
  abType: DType,
  a: TypedArray,
  b: TypedArray,
  out: TypedArray,
  batch: number,
  m: number,
  n: number,
  k: number,
  transA: boolean,
  transB: boolean,
  aBatch: number,
  bBatch: number,
  alpha: number,
  beta: number,
): void {
  const rd = (arr: TypedArray, i: number) => readAs(abType, arr, i);
  for (let p = 0; p < batch; p++) {
    const ao = p * aBatch;
    const bo = p * bBatch;
    const oo = p * m * n;
    for (let i = 0; i < m; i++) {
      for (let j = 0; j < n; j++) {
        let s = 0;
        for (let q = 0; q < k; q++) {
          const av = rd(a, ao + (transA ? q * m + i : i * k + q));
          const bv = rd(b, bo + (transB ? j * k + q : q * n + j));
          s += av * bv;
        }
        const prev = beta === 0 ? 0 : beta * (out[oo + i * n + j] as number);
        out[oo + i * n + j] = alpha * s + prev;
      }
    }
  }
}
