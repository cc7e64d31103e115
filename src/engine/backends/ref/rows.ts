/**
 * Reference row kernels: reductions along an axis, the full sum of squares, softmax, LayerNorm, RMSNorm and
 * cross-entropy, each with its backward where it has one.
 */
import type { ReduceOp } from '../../backend.js';
import type { DType, TypedArray } from '../../dtype.js';

export function reduce(
  op: ReduceOp,
  _dtype: DType,
  x: TypedArray,
  out: TypedArray,
  outer: number,
  r: number,
  inner: number,
): void {
  for (let o = 0; o < outer; o++) {
    for (let i = 0; i < inner; i++) {
      const base = o * r * inner + i;
      if (op === 'sum') {
        let s = 0;
        for (let j = 0; j < r; j++) s += x[base + j * inner] as number;
        out[o * inner + i] = s;
      } else {
        let best = x[base] as number;
        let arg = 0;
        for (let j = 1; j < r; j++) {
          const v = x[base + j * inner] as number;
          const better = op === 'max' || op === 'argmax' ? v > best : v < best;
          if (better || (Number.isNaN(v) && !Number.isNaN(best))) {
            best = v;
            arg = j;
          }
        }
        out[o * inner + i] = op === 'argmax' || op === 'argmin' ? arg : best;
      }
    }
  }
}

export function sumSquares(_dtype: DType, x: TypedArray, n: number): number {
  let s = 0;
  for (let i = 0; i < n; i++) s += (x[i] as number) * (x[i] as number);
  return s;
}

export function softmax(_dtype: DType, x: TypedArray, out: TypedArray, rows: number, cols: number, log: boolean): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mx = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < cols; c++) mx = Math.max(mx, x[o + c] as number);
    if (mx === Number.NEGATIVE_INFINITY) mx = 0;
    let s = 0;
    for (let c = 0; c < cols; c++) s += Math.exp((x[o + c] as number) - mx);
    const lse = mx + Math.log(s);
    for (let c = 0; c < cols; c++) {
      out[o + c] = log ? (x[o + c] as number) - lse : Math.exp((x[o + c] as number) - lse);
    }
  }
}

export function softmaxBackward(
  _dtype: DType,
  y: TypedArray,
  dy: TypedArray,
  dx: TypedArray,
  rows: number,
  cols: number,
  log: boolean,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let s = 0;
    if (log) {
      for (let c = 0; c < cols; c++) s += dy[o + c] as number;
      for (let c = 0; c < cols; c++) dx[o + c] = (dy[o + c] as number) - Math.exp(y[o + c] as number) * s;
    } else {
      for (let c = 0; c < cols; c++) s += (dy[o + c] as number) * (y[o + c] as number);
      for (let c = 0; c < cols; c++) dx[o + c] = (y[o + c] as number) * ((dy[o + c] as number) - s);
    }
  }
}

export function layerNorm(
  _dtype: DType,
  x: TypedArray,
  w: TypedArray | null,
  b: TypedArray | null,
  out: TypedArray,
  mean: TypedArray,
  rstd: TypedArray,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let mu = 0;
    for (let c = 0; c < cols; c++) mu += x[o + c] as number;
    mu /= cols;
    let v = 0;
    for (let c = 0; c < cols; c++) v += ((x[o + c] as number) - mu) ** 2;
    v /= cols;
    const rs = 1 / Math.sqrt(v + eps);
    mean[r] = mu;
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) {
      const xh = ((x[o + c] as number) - mu) * rs;
      out[o + c] = xh * (w ? (w[c] as number) : 1) + (b ? (b[c] as number) : 0);
    }
  }
}

export function layerNormBackward(
  _dtype: DType,
  x: TypedArray,
  w: TypedArray | null,
  mean: TypedArray,
  rstd: TypedArray,
  dy: TypedArray,
  dx: TypedArray,
  dw: TypedArray | null,
  db: TypedArray | null,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const mu = mean[r] as number;
    const rs = rstd[r] as number;
    let sg = 0;
    let sgx = 0;
    for (let c = 0; c < cols; c++) {
      const xh = ((x[o + c] as number) - mu) * rs;
      const g = (dy[o + c] as number) * (w ? (w[c] as number) : 1);
      sg += g;
      sgx += g * xh;
      if (dw) dw[c] = (dw[c] as number) + (dy[o + c] as number) * xh;
      if (db) db[c] = (db[c] as number) + (dy[o + c] as number);
    }
    for (let c = 0; c < cols; c++) {
      const xh = ((x[o + c] as number) - mu) * rs;
      const g = (dy[o + c] as number) * (w ? (w[c] as number) : 1);
      dx[o + c] = rs * (g - sg / cols - (xh * sgx) / cols);
    }
  }
}

export function rmsNorm(
  _dtype: DType,
  x: TypedArray,
  w: TypedArray | null,
  out: TypedArray,
  rstd: TypedArray,
  rows: number,
  cols: number,
  eps: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    let ss = 0;
    for (let c = 0; c < cols; c++) ss += (x[o + c] as number) ** 2;
    const rs = 1 / Math.sqrt(ss / cols + eps);
    rstd[r] = rs;
    for (let c = 0; c < cols; c++) out[o + c] = (x[o + c] as number) * rs * (w ? (w[c] as number) : 1);
  }
}

export function rmsNormBackward(
  _dtype: DType,
  x: TypedArray,
  w: TypedArray | null,
  rstd: TypedArray,
  dy: TypedArray,
  dx: TypedArray,
  dw: TypedArray | null,
  rows: number,
  cols: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * cols;
    const rs = rstd[r] as number;
    let sgx = 0;
    for (let c = 0; c < cols; c++) {
      const g = (dy[o + c] as number) * (w ? (w[c] as number) : 1);
      sgx += g * (x[o + c] as number);
      if (dw) dw[c] = (dw[c] as number) + (dy[o + c] as number) * (x[o + c] as number) * rs;
    }
    for (let c = 0; c < cols; c++) {
      const g = (dy[o + c] as number) * (w ? (w[c] as number) : 1);
      dx[o + c] = rs * g - ((rs * rs * rs) / cols) * (x[o + c] as number) * sgx;
    }
  }
}

export function crossEntropy(
  _dtype: DType,
  logits: TypedArray,
  targets: Int32Array,
  weights: TypedArray | null,
  loss: TypedArray,
  lse: TypedArray,
  rows: number,
  V: number,
  ignoreIndex: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    let mx = Number.NEGATIVE_INFINITY;
    for (let c = 0; c < V; c++) mx = Math.max(mx, logits[o + c] as number);
    let s = 0;
    for (let c = 0; c < V; c++) s += Math.exp((logits[o + c] as number) - mx);
    const l = mx + Math.log(s);
    lse[r] = l;
    const t = targets[r] as number;
    loss[r] = t === ignoreIndex ? 0 : (weights ? (weights[r] as number) : 1) * (l - (logits[o + t] as number));
  }
}

export function crossEntropyBackward(
  _dtype: DType,
  logits: TypedArray,
  targets: Int32Array,
  weights: TypedArray | null,
  lse: TypedArray,
  dloss: TypedArray,
  dlogits: TypedArray,
  rows: number,
  V: number,
  ignoreIndex: number,
): void {
  for (let r = 0; r < rows; r++) {
    const o = r * V;
    const t = targets[r] as number;
    const g = t === ignoreIndex ? 0 : (dloss[r] as number) * (weights ? (weights[r] as number) : 1);
    for (let c = 0; c < V; c++) {
      const p = Math.exp((logits[o + c] as number) - (lse[r] as number));
      dlogits[o + c] = g * (p - (c === t ? 1 : 0));
    }
  }
}
