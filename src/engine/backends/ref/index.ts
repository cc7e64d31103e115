/**
 * The reference backend: plain TypeScript loops, written to be obviously correct rather than fast. Every native
 * kernel is tested against it, and it runs float64 for finite-difference gradient checks.
 */
import type {
  AttentionArgs,
  AttentionBackwardArgs,
  Backend,
  BinaryOp,
  QuantMatmulArgs,
  ReduceOp,
  UnaryOp,
} from '../../backend.js';
import { bf16ToF32, type DType, f32ToBf16, type TypedArray } from '../../dtype.js';
import { cubicWeights, erf, gelu, geluGrad, geluTanh, geluTanhGrad, sigmoid } from './math.js';
import { qmatmulRef } from './quant.js';

function unaryFn(op: UnaryOp): (x: number) => number {
  switch (op) {
    case 'neg':
      return (x) => -x;
    case 'exp':
      return Math.exp;
    case 'log':
      return Math.log;
    case 'sqrt':
      return Math.sqrt;
    case 'rsqrt':
      return (x) => 1 / Math.sqrt(x);
    case 'tanh':
      return Math.tanh;
    case 'sigmoid':
      return sigmoid;
    case 'silu':
      return (x) => x * sigmoid(x);
    case 'gelu':
      return gelu;
    case 'gelu_tanh':
      return geluTanh;
    case 'relu':
      return (x) => Math.max(x, 0);
    case 'abs':
      return Math.abs;
    case 'sin':
      return Math.sin;
    case 'cos':
      return Math.cos;
    case 'square':
      return (x) => x * x;
    case 'reciprocal':
      return (x) => 1 / x;
    case 'sign':
      return (x) => (x > 0 ? 1 : x < 0 ? -1 : 0);
  }
}

/** f'(x) given x and y = f(x). */
function unaryGrad(op: UnaryOp): (x: number, y: number) => number {
  switch (op) {
    case 'neg':
      return () => -1;
    case 'exp':
      return (_x, y) => y;
    case 'log':
      return (x) => 1 / x;
    case 'sqrt':
      return (_x, y) => 0.5 / y;
    case 'rsqrt':
      return (_x, y) => -0.5 * y * y * y;
    case 'tanh':
      return (_x, y) => 1 - y * y;
    case 'sigmoid':
      return (_x, y) => y * (1 - y);
    case 'silu':
      return (x) => {
        const s = sigmoid(x);
        return s * (1 + x * (1 - s));
      };
    case 'gelu':
      return geluGrad;
    case 'gelu_tanh':
      return geluTanhGrad;
    case 'relu':
      return (x) => (x > 0 ? 1 : 0);
    case 'abs':
      return (x) => (x > 0 ? 1 : x < 0 ? -1 : 0);
    case 'sin':
      return Math.cos;
    case 'cos':
      return (x) => -Math.sin(x);
    case 'square':
      return (x) => 2 * x;
    case 'reciprocal':
      return (_x, y) => -y * y;
    case 'sign':
      return () => 0;
  }
}

function binaryFn(op: BinaryOp): (a: number, b: number) => number {
  switch (op) {
    case 'add':
      return (a, b) => a + b;
    case 'sub':
      return (a, b) => a - b;
    case 'mul':
      return (a, b) => a * b;
    case 'div':
      return (a, b) => a / b;
    case 'pow':
      return Math.pow;
    case 'max':
      return (a, b) => (a >= b || Number.isNaN(a) ? a : b);
    case 'min':
      return (a, b) => (a <= b || Number.isNaN(a) ? a : b);
    case 'eq':
      return (a, b) => (a === b ? 1 : 0);
    case 'ne':
      return (a, b) => (a !== b ? 1 : 0);
    case 'lt':
      return (a, b) => (a < b ? 1 : 0);
    case 'le':
      return (a, b) => (a <= b ? 1 : 0);
    case 'gt':
      return (a, b) => (a > b ? 1 : 0);
    case 'ge':
      return (a, b) => (a >= b ? 1 : 0);
  }
}

/** Calls f(flatIndex, offsets...) for every element of `shape`, with per-operand strided offsets. */
function forEachIndex(
  shape: readonly number[],
  strides: ReadonlyArray<readonly number[]>,
  bases: number[],
  f: (i: number, offs: number[]) => void,
): void {
  const nd = shape.length;
  const total = shape.reduce((a, b) => a * b, 1);
  if (total === 0) return;
  const idx = new Array<number>(nd).fill(0);
  const offs = bases.slice();
  for (let i = 0; i < total; i++) {
    f(i, offs);
    for (let d = nd - 1; d >= 0; d--) {
      idx[d]!++;
      for (let k = 0; k < offs.length; k++) offs[k]! += strides[k]![d] as number;
      if ((idx[d] as number) < (shape[d] as number)) break;
      for (let k = 0; k < offs.length; k++) offs[k]! -= (strides[k]![d] as number) * (shape[d] as number);
      idx[d] = 0;
    }
  }
}

function readAs(t: DType, a: TypedArray, i: number): number {
  return t === 'bfloat16' ? bf16ToF32(a[i] as number) : (a[i] as number);
}

/** Mask predicate shared by the attention forward and backward. */
function keyAllowed(args: AttentionArgs, b: number, i: number, j: number): boolean {
  const qi = i + args.Lk - args.Lq;
  if (args.keyStart && j < (args.keyStart[b] as number)) return false;
  if (args.causal && j > qi) return false;
  if (args.cuSeqlens) {
    const cu = args.cuSeqlens;
    let s = 0;
    while (s + 1 < cu.length && (cu[s + 1] as number) <= qi) s++;
    if (j < (cu[s] as number) || j >= (cu[s + 1] as number)) return false;
  }
  return true;
}

export class RefBackend implements Backend {
  readonly name: string = 'ref';

  supports(_kernel: keyof Backend, dtype: DType): boolean {
    return dtype === 'float32' || dtype === 'float64';
  }

  stridedCopy(
    src: TypedArray,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: TypedArray,
    dstOffset: number,
    dstStrides: readonly number[],
    shape: readonly number[],
  ): void {
    forEachIndex(shape, [srcStrides, dstStrides], [srcOffset, dstOffset], (_i, o) => {
      dst[o[1]!] = src[o[0]!] as number;
    });
  }

  stridedAdd(
    src: TypedArray,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: TypedArray,
    dstOffset: number,
    dstStrides: readonly number[],
    shape: readonly number[],
  ): void {
    forEachIndex(shape, [srcStrides, dstStrides], [srcOffset, dstOffset], (_i, o) => {
      dst[o[1]!] = (dst[o[1]!] as number) + (src[o[0]!] as number);
    });
  }

  cast(src: TypedArray, srcType: DType, dst: TypedArray, dstType: DType, n: number): void {
    for (let i = 0; i < n; i++) {
      const v = readAs(srcType, src, i);
      switch (dstType) {
        case 'bfloat16':
          dst[i] = f32ToBf16(v);
          break;
        case 'int32':
          dst[i] = Math.trunc(v);
          break;
        case 'bool':
          dst[i] = v !== 0 ? 1 : 0;
          break;
        default:
          dst[i] = v;
      }
    }
  }

  unary(op: UnaryOp, _dtype: DType, x: TypedArray, out: TypedArray, n: number): void {
    const f = unaryFn(op);
    for (let i = 0; i < n; i++) out[i] = f(x[i] as number);
  }

  unaryBackward(
    op: UnaryOp,
    _dtype: DType,
    x: TypedArray,
    y: TypedArray,
    dy: TypedArray,
    dx: TypedArray,
    n: number,
  ): void {
    const g = unaryGrad(op);
    for (let i = 0; i < n; i++) dx[i] = (dy[i] as number) * g(x[i] as number, y[i] as number);
  }

  swiglu(
    _dtype: DType,
    gate: TypedArray,
    gRow: number,
    up: TypedArray,
    uRow: number,
    out: TypedArray,
    rows: number,
    cols: number,
  ): void {
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const g = gate[r * gRow + c] as number;
        out[r * cols + c] = g * sigmoid(g) * (up[r * uRow + c] as number);
      }
  }

  swigluBackward(
    _dtype: DType,
    gate: TypedArray,
    gRow: number,
    up: TypedArray,
    uRow: number,
    dout: TypedArray,
    dgate: TypedArray,
    dup: TypedArray,
    rows: number,
    cols: number,
  ): void {
    for (let r = 0; r < rows; r++)
      for (let c = 0; c < cols; c++) {
        const g = gate[r * gRow + c] as number;
        const u = up[r * uRow + c] as number;
        const d = dout[r * cols + c] as number;
        const s = sigmoid(g);
        dgate[r * cols + c] = d * u * s * (1 + g * (1 - s));
        dup[r * cols + c] = d * g * s;
      }
  }

  affine(_dtype: DType, x: TypedArray, alpha: number, beta: number, out: TypedArray, n: number): void {
    for (let i = 0; i < n; i++) out[i] = alpha * (x[i] as number) + beta;
  }

  binary(
    op: BinaryOp,
    _dtype: DType,
    a: TypedArray,
    aOffset: number,
    aStrides: readonly number[],
    b: TypedArray,
    bOffset: number,
    bStrides: readonly number[],
    out: TypedArray,
    _outType: DType,
    shape: readonly number[],
  ): void {
    const f = binaryFn(op);
    forEachIndex(shape, [aStrides, bStrides], [aOffset, bOffset], (i, o) => {
      out[i] = f(a[o[0]!] as number, b[o[1]!] as number);
    });
  }

  where(
    _dtype: DType,
    cond: TypedArray,
    cOffset: number,
    cStrides: readonly number[],
    a: TypedArray,
    aOffset: number,
    aStrides: readonly number[],
    b: TypedArray,
    bOffset: number,
    bStrides: readonly number[],
    out: TypedArray,
    shape: readonly number[],
  ): void {
    forEachIndex(shape, [cStrides, aStrides, bStrides], [cOffset, aOffset, bOffset], (i, o) => {
      out[i] = cond[o[0]!] ? (a[o[1]!] as number) : (b[o[2]!] as number);
    });
  }

  reduce(op: ReduceOp, _dtype: DType, x: TypedArray, out: TypedArray, outer: number, r: number, inner: number): void {
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

  qmatmul(_dtype: DType, args: QuantMatmulArgs): void {
    qmatmulRef(args);
  }

  sumSquares(_dtype: DType, x: TypedArray, n: number): number {
    let s = 0;
    for (let i = 0; i < n; i++) s += (x[i] as number) * (x[i] as number);
    return s;
  }

  matmul(
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

  softmax(_dtype: DType, x: TypedArray, out: TypedArray, rows: number, cols: number, log: boolean): void {
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

  softmaxBackward(
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

  layerNorm(
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

  layerNormBackward(
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

  rmsNorm(
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

  rmsNormBackward(
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

  crossEntropy(
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

  crossEntropyBackward(
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

  indexSelect(
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

  indexAdd(
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

  gather(
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

  scatterAdd(
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

  rope(
    _dtype: DType,
    x: TypedArray,
    cos: TypedArray,
    sin: TypedArray,
    out: TypedArray,
    B: number,
    L: number,
    H: number,
    D: number,
    rotDim: number,
    csBatch: number,
    interleaved: boolean,
    inverse: boolean,
  ): void {
    const half = rotDim / 2;
    const sgn = inverse ? -1 : 1;
    for (let b = 0; b < B; b++)
      for (let l = 0; l < L; l++) {
        const cs = b * csBatch + l * half;
        for (let h = 0; h < H; h++) {
          const o = ((b * L + l) * H + h) * D;
          for (let i = 0; i < half; i++) {
            const c = cos[cs + i] as number;
            const s = sgn * (sin[cs + i] as number);
            const i0 = interleaved ? 2 * i : i;
            const i1 = interleaved ? 2 * i + 1 : i + half;
            const x0 = x[o + i0] as number;
            const x1 = x[o + i1] as number;
            out[o + i0] = x0 * c - x1 * s;
            out[o + i1] = x1 * c + x0 * s;
          }
          for (let i = rotDim; i < D; i++) out[o + i] = x[o + i] as number;
        }
      }
  }

  attention(_dtype: DType, a: AttentionArgs): void {
    const { B, Lq, Lk, Hq, Hkv, D, scale } = a;
    const group = Hq / Hkv;
    const s = new Float64Array(Lk);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < Hq; h++) {
        const hk = Math.floor(h / group);
        for (let i = 0; i < Lq; i++) {
          const qo = b * a.qBatch + i * a.qRow + h * D;
          let mx = Number.NEGATIVE_INFINITY;
          for (let j = 0; j < Lk; j++) {
            if (!keyAllowed(a, b, i, j)) {
              s[j] = Number.NEGATIVE_INFINITY;
              continue;
            }
            const ko = b * a.kBatch + j * a.kRow + hk * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += (a.q[qo + d] as number) * (a.k[ko + d] as number);
            s[j] = dot * scale;
            mx = Math.max(mx, s[j] as number);
          }
          const oo = ((b * Lq + i) * Hq + h) * D;
          for (let d = 0; d < D; d++) a.out[oo + d] = 0;
          if (mx === Number.NEGATIVE_INFINITY) {
            a.lse[(b * Hq + h) * Lq + i] = Number.NEGATIVE_INFINITY;
            continue;
          }
          let sum = 0;
          for (let j = 0; j < Lk; j++) sum += Math.exp((s[j] as number) - mx);
          const lse = mx + Math.log(sum);
          a.lse[(b * Hq + h) * Lq + i] = lse;
          const acc = new Float64Array(D);
          for (let j = 0; j < Lk; j++) {
            if (s[j] === Number.NEGATIVE_INFINITY) continue;
            const p = Math.exp((s[j] as number) - lse);
            const vo = b * a.vBatch + j * a.vRow + hk * D;
            for (let d = 0; d < D; d++) acc[d] = (acc[d] as number) + p * (a.v[vo + d] as number);
          }
          for (let d = 0; d < D; d++) a.out[oo + d] = acc[d] as number;
        }
      }
  }

  attentionBackward(_dtype: DType, a: AttentionBackwardArgs): void {
    const { B, Lq, Lk, Hq, Hkv, D, scale } = a;
    const group = Hq / Hkv;
    a.dq.fill(0);
    a.dk.fill(0);
    a.dv.fill(0);
    for (let b = 0; b < B; b++)
      for (let h = 0; h < Hq; h++) {
        const hk = Math.floor(h / group);
        for (let i = 0; i < Lq; i++) {
          const lse = a.lse[(b * Hq + h) * Lq + i] as number;
          if (lse === Number.NEGATIVE_INFINITY) continue;
          const qo = b * a.qBatch + i * a.qRow + h * D;
          const oo = ((b * Lq + i) * Hq + h) * D;
          let delta = 0;
          for (let d = 0; d < D; d++) delta += (a.dout[oo + d] as number) * (a.out[oo + d] as number);
          for (let j = 0; j < Lk; j++) {
            if (!keyAllowed(a, b, i, j)) continue;
            const ko = b * a.kBatch + j * a.kRow + hk * D;
            const vo = b * a.vBatch + j * a.vRow + hk * D;
            let dot = 0;
            for (let d = 0; d < D; d++) dot += (a.q[qo + d] as number) * (a.k[ko + d] as number);
            const p = Math.exp(dot * scale - lse);
            let dp = 0;
            for (let d = 0; d < D; d++) dp += (a.dout[oo + d] as number) * (a.v[vo + d] as number);
            const ds = p * (dp - delta) * scale;
            const dko = ((b * Lk + j) * Hkv + hk) * D;
            for (let d = 0; d < D; d++) {
              a.dv[dko + d] = (a.dv[dko + d] as number) + p * (a.dout[oo + d] as number);
              a.dq[oo + d] = (a.dq[oo + d] as number) + ds * (a.k[ko + d] as number);
              a.dk[dko + d] = (a.dk[dko + d] as number) + ds * (a.q[qo + d] as number);
            }
          }
        }
      }
  }

  topk(
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

  gridSampleBicubic(
    _dtype: DType,
    table: TypedArray,
    Hin: number,
    Win: number,
    C: number,
    gx: Float64Array,
    gy: Float64Array,
    out: TypedArray,
  ): void {
    const wx = new Float64Array(4);
    const wy = new Float64Array(4);
    for (let p = 0; p < gx.length; p++) {
      const { x0, y0 } = bicubicSetup(gx[p] as number, gy[p] as number, Hin, Win, wx, wy);
      for (let c = 0; c < C; c++) {
        let acc = 0;
        for (let i = 0; i < 4; i++) {
          const yy = clampI(y0 - 1 + i, Hin);
          for (let j = 0; j < 4; j++) {
            const xx = clampI(x0 - 1 + j, Win);
            acc += (wy[i] as number) * (wx[j] as number) * (table[(yy * Win + xx) * C + c] as number);
          }
        }
        out[p * C + c] = acc;
      }
    }
  }

  gridSampleBicubicBackward(
    _dtype: DType,
    dout: TypedArray,
    Hin: number,
    Win: number,
    C: number,
    gx: Float64Array,
    gy: Float64Array,
    dtable: TypedArray,
  ): void {
    const wx = new Float64Array(4);
    const wy = new Float64Array(4);
    for (let p = 0; p < gx.length; p++) {
      const { x0, y0 } = bicubicSetup(gx[p] as number, gy[p] as number, Hin, Win, wx, wy);
      for (let i = 0; i < 4; i++) {
        const yy = clampI(y0 - 1 + i, Hin);
        for (let j = 0; j < 4; j++) {
          const xx = clampI(x0 - 1 + j, Win);
          const w = (wy[i] as number) * (wx[j] as number);
          const o = (yy * Win + xx) * C;
          for (let c = 0; c < C; c++) dtable[o + c] = (dtable[o + c] as number) + w * (dout[p * C + c] as number);
        }
      }
    }
  }

  im2col(
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

  col2im(
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

  adamw(
    _dtype: DType,
    p: TypedArray,
    g: TypedArray,
    m: TypedArray,
    v: TypedArray,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    bc1: number,
    bc2: number,
  ): void {
    for (let i = 0; i < n; i++) {
      const gi = g[i] as number;
      const mi = beta1 * (m[i] as number) + (1 - beta1) * gi;
      const vi = beta2 * (v[i] as number) + (1 - beta2) * gi * gi;
      m[i] = mi;
      v[i] = vi;
      let pi = (p[i] as number) * (1 - lr * weightDecay);
      pi -= (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
      p[i] = pi;
    }
  }
}

function clampI(i: number, n: number): number {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/** Source coordinates and cubic weights of one sample point (grid_sample, align_corners=false). */
export function bicubicSetup(
  gx: number,
  gy: number,
  Hin: number,
  Win: number,
  wx: Float64Array,
  wy: Float64Array,
): { x0: number; y0: number } {
  const sx = ((gx + 1) * Win - 1) / 2;
  const sy = ((gy + 1) * Hin - 1) / 2;
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  cubicWeights(sx - x0, wx);
  cubicWeights(sy - y0, wy);
  return { x0, y0 };
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

export { erf };
