/**
 * Reference N-d im2col and col2im (its adjoint, accumulating), the lowering of convolution to matmul; both walk the
 * same (input index, column index) pairs.
 */
import type { DType, TypedArray } from '../../dtype.js';

export function im2col(
  _dtype: DType,
  x: TypedArray,
  cols: TypedArray,
  N: number,
  C: number,
  inS: readonly number[],
  kernel: readonly number[],
  stride: readonly number[],
  padding: readonly number[],
  outS: readonly number[],
): void {
  convWalk(N, C, inS, kernel, stride, padding, outS, (xi, ci) => {
    cols[ci] = xi < 0 ? 0 : (x[xi] as number);
  });
}

export function col2im(
  _dtype: DType,
  cols: TypedArray,
  dx: TypedArray,
  N: number,
  C: number,
  inS: readonly number[],
  kernel: readonly number[],
  stride: readonly number[],
  padding: readonly number[],
  outS: readonly number[],
): void {
  convWalk(N, C, inS, kernel, stride, padding, outS, (xi, ci) => {
    if (xi >= 0) dx[xi] = (dx[xi] as number) + (cols[ci] as number);
  });
}

/** Visits (input index or −1 for padding, column index) pairs of an N-d im2col. */
function convWalk(
  N: number,
  C: number,
  inS: readonly number[],
  kernel: readonly number[],
  stride: readonly number[],
  padding: readonly number[],
  outS: readonly number[],
  f: (xi: number, ci: number) => void,
): void {
  const nd = inS.length;
  const kTot = kernel.reduce((a, b) => a * b, 1);
  const oTot = outS.reduce((a, b) => a * b, 1);
  const inTot = inS.reduce((a, b) => a * b, 1);
  const oIdx = new Array<number>(nd);
  const kIdx = new Array<number>(nd);
  for (let n = 0; n < N; n++)
    for (let o = 0; o < oTot; o++) {
      let r = o;
      for (let d = nd - 1; d >= 0; d--) {
        oIdx[d] = r % (outS[d] as number);
        r = Math.floor(r / (outS[d] as number));
      }
      const rowBase = (n * oTot + o) * C * kTot;
      for (let c = 0; c < C; c++)
        for (let kk = 0; kk < kTot; kk++) {
          let rr = kk;
          for (let d = nd - 1; d >= 0; d--) {
            kIdx[d] = rr % (kernel[d] as number);
            rr = Math.floor(rr / (kernel[d] as number));
          }
          let xi = 0;
          let inside = true;
          for (let d = 0; d < nd; d++) {
            const pos = (oIdx[d] as number) * (stride[d] as number) - (padding[d] as number) + (kIdx[d] as number);
            if (pos < 0 || pos >= (inS[d] as number)) inside = false;
            xi = xi * (inS[d] as number) + pos;
          }
          f(inside ? (n * C + c) * inTot + xi : -1, rowBase + c * kTot + kk);
        }
    }
}
