/**
 * Reference elementwise kernels: unary activations and their derivatives, SwiGLU, affine, broadcast binary ops and
 * where over arbitrary strides, strided copies and dtype casts.
 */
import type { BinaryOp, UnaryOp } from '../../backend.js';
import { bf16ToF32, type DType, f32ToBf16, type TypedArray } from '../../dtype.js';
import { gelu, geluGrad, geluTanh, geluTanhGrad, sigmoid } from './math.js';

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

export function readAs(t: DType, a: TypedArray, i: number): number {
  return t === 'bfloat16' ? bf16ToF32(a[i] as number) : (a[i] as number);
}

export function stridedCopy(
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

export function stridedAdd(
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

export function cast(src: TypedArray, srcType: DType, dst: TypedArray, dstType: DType, n: number): void {
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

export function unary(op: UnaryOp, _dtype: DType, x: TypedArray, out: TypedArray, n: number): void {
  const f = unaryFn(op);
  for (let i = 0; i < n; i++) out[i] = f(x[i] as number);
}

export function unaryBackward(
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

export function swiglu(
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

export function swigluBackward(
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

export function affine(_dtype: DType, x: TypedArray, alpha: number, beta: number, out: TypedArray, n: number): void {
  for (let i = 0; i < n; i++) out[i] = alpha * (x[i] as number) + beta;
}

export function binary(
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

export function where(
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
