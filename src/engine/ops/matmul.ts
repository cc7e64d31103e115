/**
 * Matrix products. Transposed views are passed to the GEMM as transpose flags (no copies), so the backward's
 * A·Bᵀ and Aᵀ·B run at full speed. Batch dims broadcast like NumPy. bf16 × bf16 (or bf16 weights with float
 * activations) accumulate in float32 and return float32.
 */

import { noGrad, record } from '../autograd.js';
import { be } from '../device.js';
import type { DType, TypedArray } from '../dtype.js';
import { broadcastShapes, broadcastStrides, coalesce, fmt, numel } from '../shape.js';
import { empty, type Tensor } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';
import { add } from './elementwise.js';
import { expand, sumTo } from './reduce.js';
import { reshape, squeeze, transpose, unsqueeze } from './shape.js';

export type MatmulPrecision = 'float32' | 'bfloat16';

let precision: MatmulPrecision = 'float32';

/**
 * Precision of float32 matrix products (like torch.set_float32_matmul_precision): 'bfloat16' rounds both operands
 * to bf16 and accumulates in float32 — the usual mixed-precision training recipe, and on CPUs with AMX or
 * AVX-512-BF16 several times faster. Weights, activations and gradients stay float32; only GEMM inputs round.
 */
export function setMatmulPrecision(p: MatmulPrecision): void {
  if (p !== 'float32' && p !== 'bfloat16')
    throw new Error(`setMatmulPrecision: expected 'float32' or 'bfloat16', got ${JSON.stringify(p)}`);
  precision = p;
}

export function getMatmulPrecision(): MatmulPrecision {
  return precision;
}

export function withMatmulPrecision<T>(p: MatmulPrecision, fn: () => T): T {
  const prev = precision;
  setMatmulPrecision(p);
  try {
    return fn();
  } finally {
    precision = prev;
  }
}

/** bf16 copy of a float32 GEMM operand that keeps a transposed layout transposed (one pass, no transpose copy). */
function toBf16(t: Tensor): Tensor {
  return noGrad(() => {
    if (t.isContiguous()) return cast(t, 'bfloat16');
    const tt = transpose(t, -1, -2);
    if (tt.isContiguous()) return transpose(cast(tt, 'bfloat16'), -1, -2);
    return cast(contiguous(t), 'bfloat16');
  });
}

interface Operand {
  arr: TypedArray;
  trans: boolean;
  batchStride: number;
}

/** Describes t [..batch, r, c] broadcast to batchShape as a GEMM operand, copying only when the layout needs it. */
function operand(t: Tensor, batchShape: readonly number[]): Operand {
  const r = t.shape[t.ndim - 2] as number;
  const c = t.shape[t.ndim - 1] as number;
  const sr = t.strides[t.ndim - 2] as number;
  const sc = t.strides[t.ndim - 1] as number;
  let trans: boolean | null = null;
  if ((sc === 1 || c === 1) && (sr === c || r === 1)) trans = false;
  else if ((sr === 1 || r === 1) && (sc === r || c === 1)) trans = true;
  const bStrides = broadcastStrides(t.shape.slice(0, -2), t.strides.slice(0, -2), batchShape);
  const co = coalesce(batchShape, [bStrides]);
  const oneBatchStride = co.shape.length === 1;
  if (trans === null || !oneBatchStride) {
    const cc = contiguous(expand(t, [...batchShape, r, c]));
    return { arr: cc.buf('matmul'), trans: false, batchStride: r * c };
  }
  return {
    arr: t._storage.data.subarray(t.offset),
    trans,
    batchStride: numel(batchShape) === 1 ? 0 : (co.strides[0]![0] as number),
  };
}

/** Raw GEMM for a [.., m, k] and b [.., k, n] (no autograd). */
function matmulRaw(a: Tensor, b: Tensor, outType: DType): Tensor {
  const m = a.shape[a.ndim - 2] as number;
  const k = a.shape[a.ndim - 1] as number;
  const n = b.shape[b.ndim - 1] as number;
  const batchShape = broadcastShapes(a.shape.slice(0, -2), b.shape.slice(0, -2), 'matmul');
  const A = operand(a, batchShape);
  const B = operand(b, batchShape);
  const out = empty([...batchShape, m, n], outType);
  if (out.size === 0) return out;
  if (k === 0) {
    out.buf().fill(0);
    return out;
  }
  be('matmul', a.dtype).matmul(
    a.dtype,
    A.arr,
    B.arr,
    out.buf(),
    numel(batchShape),
    m,
    n,
    k,
    A.trans,
    B.trans,
    A.batchStride,
    B.batchStride,
    1,
    0,
  );
  return out;
}

export function matmul(a0: Tensor, b0: Tensor): Tensor {
  a0.assertAlive('matmul');
  b0.assertAlive('matmul');
  if (a0.ndim === 0 || b0.ndim === 0) throw new Error('matmul: both operands need at least one dimension');
  if (a0.ndim === 1) return squeeze(matmul(unsqueeze(a0, 0), b0), -2);
  if (b0.ndim === 1) return squeeze(matmul(a0, unsqueeze(b0, 1)), -1);
  const k = a0.shape[a0.ndim - 1];
  if (b0.shape[b0.ndim - 2] !== k) {
    throw new Error(
      `matmul: inner dimensions differ: ${fmt(a0.shape)} @ ${fmt(b0.shape)} (${k} vs ${b0.shape[b0.ndim - 2]})`,
    );
  }
  if (precision === 'bfloat16' && a0.dtype === 'float32' && b0.dtype === 'float32') {
    // Mixed precision: the bf16 copies made for the forward are reused by the backward's two products.
    const aB = toBf16(a0);
    const bB = toBf16(b0);
    const out = matmulRaw(aB, bB, 'float32');
    return record(out, 'matmul', [a0, b0], (g) => {
      const gB = toBf16(g);
      return [
        a0.requiresGrad ? sumTo(matmulRaw(gB, transpose(bB, -1, -2), 'float32'), a0.shape) : null,
        b0.requiresGrad ? sumTo(matmulRaw(transpose(aB, -1, -2), gB, 'float32'), b0.shape) : null,
      ];
    });
  }
  // Mixed or bf16 operands: both go to bf16, accumulate in float32.
  let a = a0;
  let b = b0;
  let outType: DType = a.dtype;
  if (a.dtype === 'bfloat16' || b.dtype === 'bfloat16') {
    a = cast(a, 'bfloat16');
    b = cast(b, 'bfloat16');
    outType = 'float32';
  } else if (a.dtype !== b.dtype) {
    throw new Error(`matmul: dtypes differ (${a.dtype} and ${b.dtype}); cast one operand first`);
  } else if (a.dtype !== 'float32' && a.dtype !== 'float64') {
    throw new Error(`matmul: expected float operands, got ${a.dtype}`);
  }
  const out = matmulRaw(a, b, outType);
  return record(out, 'matmul', [a0, b0], (g) => [
    a0.requiresGrad ? sumTo(matmul(g, transpose(b0, -1, -2)), a0.shape) : null,
    b0.requiresGrad ? sumTo(matmul(transpose(a0, -1, -2), g), b0.shape) : null,
  ]);
}

/** y = x·Wᵀ + b with W [out, in] (HF Linear layout). */
export function linear(x: Tensor, weight: Tensor, bias?: Tensor | null): Tensor {
  checkLinear(x, weight, bias);
  // Flatten leading dims so the whole batch is one GEMM.
  const inF = weight.shape[1] as number;
  const lead = x.shape.slice(0, -1);
  const x2 = x.ndim === 2 ? x : reshape(x, [-1, inF]);
  let y: Tensor;
  if (bias && x.dtype === weight.dtype && bias.dtype === x.dtype && (x.dtype === 'float32' || x.dtype === 'float64')) {
    y = linearBias(x2, weight, bias);
  } else {
    y = matmul(x2, transpose(weight, 0, 1));
    if (bias) y = add(y, bias.dtype === y.dtype ? bias : cast(bias, y.dtype));
  }
  return x.ndim === 2 ? y : reshape(y, [...lead, weight.shape[0] as number]);
}

function checkLinear(x: Tensor, weight: Tensor, bias?: Tensor | null): void {
  if (weight.ndim !== 2) throw new Error(`linear: weight must be [out, in], got ${fmt(weight.shape)}`);
  const inF = weight.shape[1] as number;
  if (x.shape[x.ndim - 1] !== inF) {
    throw new Error(
      `linear: input ${fmt(x.shape)} has ${x.shape[x.ndim - 1]} features, weight ${fmt(weight.shape)} expects ${inF}`,
    );
  }
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== weight.shape[0])) {
    throw new Error(`linear: bias ${fmt(bias.shape)} does not match weight ${fmt(weight.shape)}`);
  }
}

/**
 * Several biased linears of one input (a layer's q, k and v projections): `linear(x, W_i, b_i)` for each, with the
 * bf16 copy of x under bf16 precision made once instead of once per projection. Each product is the GEMM `linear`
 * runs, so the values and gradients are the same as separate calls.
 */
export function linearsOf(x: Tensor, layers: ReadonlyArray<{ weight: Tensor; bias: Tensor | null }>): Tensor[] {
  const fused =
    layers.length > 1 &&
    x.dtype === 'float32' &&
    layers.every((l) => l.bias && l.weight.ndim === 2 && l.weight.dtype === x.dtype && l.bias.dtype === x.dtype);
  if (!fused) return layers.map((l) => linear(x, l.weight, l.bias));
  const inF = x.shape[x.ndim - 1] as number;
  for (const l of layers) checkLinear(x, l.weight, l.bias);
  const lead = x.shape.slice(0, -1);
  const x2 = x.ndim === 2 ? x : reshape(x, [-1, inF]);
  const xg = precision === 'bfloat16' ? toBf16(x2) : x2;
  return layers.map((l) => {
    const y = linearBias(x2, l.weight, l.bias!, xg);
    return x.ndim === 2 ? y : reshape(y, [...lead, l.weight.shape[0] as number]);
  });
}

/**
 * x [M, in] · Wᵀ + b in one GEMM: the bias rows are written first and the product accumulates onto them. `xCast`: the
 * bf16 copy of x when the caller made it already (`linearsOf`).
 */
function linearBias(x: Tensor, weight: Tensor, bias: Tensor, xCast?: Tensor): Tensor {
  const M = x.shape[0] as number;
  const K = x.shape[1] as number;
  const N = weight.shape[0] as number;
  const out = empty([M, N], x.dtype);
  const b = contiguous(bias);
  be('stridedCopy', x.dtype).stridedCopy(b.buf('linear'), 0, [0, 1], out.buf(), 0, [N, 1], [M, N]);
  // Under bf16 precision the bf16 copies of x and W are made once and reused by the backward.
  const bf16 = precision === 'bfloat16' && x.dtype === 'float32';
  const xg = bf16 ? (xCast ?? toBf16(x)) : x;
  const wg = bf16 ? toBf16(weight) : weight;
  if (M > 0 && K > 0) {
    const A = operand(xg, []);
    const W = operand(transpose(wg, 0, 1), []);
    const abType: DType = bf16 ? 'bfloat16' : x.dtype;
    be('matmul', abType).matmul(abType, A.arr, W.arr, out.buf(), 1, M, N, K, A.trans, W.trans, 0, 0, 1, 1);
  }
  return record(out, 'linear', [x, weight, bias], (g) => {
    if (!bf16) {
      return [
        x.requiresGrad ? matmul(g, weight) : null,
        weight.requiresGrad ? matmul(transpose(g, 0, 1), x) : null,
        bias.requiresGrad ? sumRows(g) : null,
      ];
    }
    const gB = toBf16(g);
    return [
      x.requiresGrad ? matmulRaw(gB, wg, 'float32') : null,
      weight.requiresGrad ? matmulRaw(transpose(gB, 0, 1), xg, 'float32') : null,
      bias.requiresGrad ? sumRows(g) : null,
    ];
  });
}

function sumRows(g: Tensor): Tensor {
  return sumTo(g, [g.shape[1] as number]);
}
