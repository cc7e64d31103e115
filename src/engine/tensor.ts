/**
 * Tensor, with its PyTorch-style methods: the class and its constructors live in tensor-core.ts (what the ops build
 * on); the methods, thin shims over the ops in ops/, are installed on its prototype here, above the ops, so the
 * imports run one way (ops → tensor-core, tensor → ops). Import tensors from this file or the engine's index: every
 * Tensor then has its methods.
 */
import { type BackwardOps, type BackwardOptions, runBackward } from './autograd.js';
import { bf16ToF32, type DType } from './dtype.js';
import { keep, keepIfInnermost } from './memory.js';
import * as C from './ops/copy.js';
import * as E from './ops/elementwise.js';
import * as I from './ops/indexing.js';
import * as M from './ops/matmul.js';
import * as N from './ops/norm.js';
import * as R from './ops/reduce.js';
import * as S from './ops/shape.js';
import * as U from './ops/unary.js';
import { fmt, numel } from './shape.js';
import { full, Tensor, zeros } from './tensor-core.js';

export { empty, fromArray, full, type GradNode, ones, Tensor, tensor, zeros } from './tensor-core.js';

/** The methods of Tensor that call ops (declared on Tensor below, copied onto its prototype). */
class TensorMethods {
  /** Values as a plain nested-free number array in row-major order (bf16 decoded). */
  toArray(this: Tensor): number[] {
    return Array.from(this.toFloat64());
  }

  /** Row-major copy as Float32Array (decoding bf16, converting ints). */
  toFloat32(this: Tensor): Float32Array {
    const c = this.contiguous();
    const b = c.buf('toFloat32');
    if (c.dtype === 'float32') return Float32Array.from(b as Float32Array);
    const out = new Float32Array(b.length);
    if (c.dtype === 'bfloat16') for (let i = 0; i < b.length; i++) out[i] = bf16ToF32(b[i] as number);
    else for (let i = 0; i < b.length; i++) out[i] = b[i] as number;
    return out;
  }

  toFloat64(this: Tensor): Float64Array {
    const c = this.contiguous();
    const b = c.buf('toFloat64');
    const out = new Float64Array(b.length);
    if (c.dtype === 'bfloat16') for (let i = 0; i < b.length; i++) out[i] = bf16ToF32(b[i] as number);
    else for (let i = 0; i < b.length; i++) out[i] = b[i] as number;
    return out;
  }

  toInt32(this: Tensor): Int32Array {
    const c = this.dtype === 'int32' ? this.contiguous() : this.to('int32');
    return Int32Array.from(c.buf('toInt32') as Int32Array);
  }

  /** Nested JS arrays, like torch's tolist(). */
  tolist(this: Tensor): unknown {
    const flat = this.toArray();
    const build = (dim: number, off: number): unknown => {
      if (dim === this.ndim) return flat[off];
      const n = this.shape[dim] as number;
      const step = numel(this.shape.slice(dim + 1));
      return Array.from({ length: n }, (_, i) => build(dim + 1, off + i * step));
    };
    return build(0, 0);
  }

  /** The single value of a one-element tensor. */
  item(this: Tensor): number {
    if (this.size !== 1)
      throw new Error(`item: tensor has ${this.size} elements (shape ${fmt(this.shape)}), expected 1`);
    return this.toFloat64()[0] as number;
  }

  toString(this: Tensor): string {
    const head = `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
    if (this.isDisposed) return `${head} <disposed>`;
    const vals = this.size <= 12 ? this.toArray() : this.reshape([-1]).slice(0, 0, 6).toArray();
    return `${head} [${vals.map((v) => +v.toPrecision(5)).join(', ')}${this.size > 12 ? ', …' : ''}]`;
  }

  // ---- autograd ----

  /** d(this)/d(leaves), accumulated into each leaf's .grad. Non-scalars need an explicit gradient. */
  backward(this: Tensor, grad?: Tensor, opts?: BackwardOptions): void {
    this.assertAlive('backward');
    if (!this.requiresGrad) {
      throw new Error(
        'backward: this tensor does not require grad (no input had requiresGrad, or it was made under noGrad)',
      );
    }
    if (!grad && this.size !== 1) {
      throw new Error(`backward: output has shape ${fmt(this.shape)}; pass a gradient for non-scalar outputs`);
    }
    const g = grad ?? full(this.shape, 1, this.dtype);
    runBackward(this, g, BACKWARD_OPS, opts);
  }

  // ---- copies, views and layout (ops/copy.ts, ops/shape.ts; expand in ops/reduce.ts) ----
  contiguous(this: Tensor): Tensor {
    return C.contiguous(this);
  }
  clone(this: Tensor): Tensor {
    return C.clone(this);
  }
  reshape(this: Tensor, shape: readonly number[]): Tensor {
    return S.reshape(this, shape);
  }
  view(this: Tensor, shape: readonly number[]): Tensor {
    return S.reshape(this, shape);
  }
  flatten(this: Tensor, start = 0, end = -1): Tensor {
    return S.flatten(this, start, end);
  }
  permute(this: Tensor, order: readonly number[]): Tensor {
    return S.permute(this, order);
  }
  transpose(this: Tensor, a: number, b: number): Tensor {
    return S.transpose(this, a, b);
  }
  /** Transpose of the last two dims. */
  get mT(): Tensor {
    // An accessor cannot declare `this: Tensor`; it is only ever called on a Tensor.
    return S.transpose(this as unknown as Tensor, -2, -1);
  }
  /** Elements [start, end) along `axis` (a view). */
  slice(this: Tensor, axis: number, start: number, end?: number, step = 1): Tensor {
    return S.slice(this, axis, start, end, step);
  }
  narrow(this: Tensor, axis: number, start: number, length: number): Tensor {
    return S.slice(this, axis, start, start + length);
  }
  select(this: Tensor, axis: number, index: number): Tensor {
    return S.select(this, axis, index);
  }
  expand(this: Tensor, shape: readonly number[]): Tensor {
    return R.expand(this, shape);
  }
  squeeze(this: Tensor, axis?: number): Tensor {
    return S.squeeze(this, axis);
  }
  unsqueeze(this: Tensor, axis: number): Tensor {
    return S.unsqueeze(this, axis);
  }
  split(this: Tensor, sizes: number | readonly number[], axis = 0): Tensor[] {
    return S.split(this, sizes, axis);
  }
  chunk(this: Tensor, n: number, axis = 0): Tensor[] {
    return S.chunk(this, n, axis);
  }
  to(this: Tensor, dtype: DType): Tensor {
    return C.cast(this, dtype);
  }

  // ---- elementwise (ops/unary.ts, ops/elementwise.ts) ----
  add(this: Tensor, o: Tensor | number): Tensor {
    return E.add(this, o);
  }
  sub(this: Tensor, o: Tensor | number): Tensor {
    return E.sub(this, o);
  }
  mul(this: Tensor, o: Tensor | number): Tensor {
    return E.mul(this, o);
  }
  div(this: Tensor, o: Tensor | number): Tensor {
    return E.div(this, o);
  }
  pow(this: Tensor, o: Tensor | number): Tensor {
    return E.pow(this, o);
  }
  maximum(this: Tensor, o: Tensor | number): Tensor {
    return E.maximum(this, o);
  }
  minimum(this: Tensor, o: Tensor | number): Tensor {
    return E.minimum(this, o);
  }
  neg(this: Tensor): Tensor {
    return U.neg(this);
  }
  exp(this: Tensor): Tensor {
    return U.exp(this);
  }
  log(this: Tensor): Tensor {
    return U.log(this);
  }
  sqrt(this: Tensor): Tensor {
    return U.sqrt(this);
  }
  rsqrt(this: Tensor): Tensor {
    return U.rsqrt(this);
  }
  tanh(this: Tensor): Tensor {
    return U.tanh(this);
  }
  sigmoid(this: Tensor): Tensor {
    return U.sigmoid(this);
  }
  silu(this: Tensor): Tensor {
    return U.silu(this);
  }
  gelu(this: Tensor, approximate: 'none' | 'tanh' = 'none'): Tensor {
    return U.gelu(this, approximate);
  }
  relu(this: Tensor): Tensor {
    return U.relu(this);
  }
  abs(this: Tensor): Tensor {
    return U.abs(this);
  }
  sin(this: Tensor): Tensor {
    return U.sin(this);
  }
  cos(this: Tensor): Tensor {
    return U.cos(this);
  }
  square(this: Tensor): Tensor {
    return U.square(this);
  }
  reciprocal(this: Tensor): Tensor {
    return U.reciprocal(this);
  }
  clamp(this: Tensor, min?: number, max?: number): Tensor {
    return E.clamp(this, min, max);
  }
  eq(this: Tensor, o: Tensor | number): Tensor {
    return E.compare('eq', this, o);
  }
  ne(this: Tensor, o: Tensor | number): Tensor {
    return E.compare('ne', this, o);
  }
  lt(this: Tensor, o: Tensor | number): Tensor {
    return E.compare('lt', this, o);
  }
  le(this: Tensor, o: Tensor | number): Tensor {
    return E.compare('le', this, o);
  }
  gt(this: Tensor, o: Tensor | number): Tensor {
    return E.compare('gt', this, o);
  }
  ge(this: Tensor, o: Tensor | number): Tensor {
    return E.compare('ge', this, o);
  }
  maskedFill(this: Tensor, mask: Tensor, value: number): Tensor {
    return E.maskedFill(this, mask, value);
  }

  // ---- reductions (ops/reduce.ts) ----
  sum(this: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
    return R.sum(this, axis, keepdim);
  }
  mean(this: Tensor, axis?: number | readonly number[], keepdim = false): Tensor {
    return R.mean(this, axis, keepdim);
  }
  max(this: Tensor, axis?: number, keepdim = false): Tensor {
    return R.max(this, axis, keepdim);
  }
  min(this: Tensor, axis?: number, keepdim = false): Tensor {
    return R.min(this, axis, keepdim);
  }
  argmax(this: Tensor, axis = -1, keepdim = false): Tensor {
    return R.argmax(this, axis, keepdim);
  }
  argmin(this: Tensor, axis = -1, keepdim = false): Tensor {
    return R.argmin(this, axis, keepdim);
  }

  // ---- matmul / nn (ops/matmul.ts, ops/norm.ts, ops/indexing.ts) ----
  matmul(this: Tensor, o: Tensor): Tensor {
    return M.matmul(this, o);
  }
  softmax(this: Tensor, axis = -1): Tensor {
    return N.softmax(this, axis);
  }
  logSoftmax(this: Tensor, axis = -1): Tensor {
    return N.logSoftmax(this, axis);
  }
  indexSelect(this: Tensor, axis: number, index: Tensor): Tensor {
    return I.indexSelect(this, axis, index);
  }
  gather(this: Tensor, axis: number, index: Tensor): Tensor {
    return I.gather(this, axis, index);
  }

  // ---- in-place updates (no autograd; optimizers and accumulation; ops/copy.ts, ops/elementwise.ts) ----
  /** this ← src (same shape; dtype converted). */
  copy_<T extends Tensor>(this: T, src: Tensor): T {
    C.copyInto(this, src);
    return this;
  }
  /** this ← this + alpha·other, in place (no autograd). */
  addInPlace<T extends Tensor>(this: T, other: Tensor, alpha = 1): T {
    E.addInPlace(this, other, alpha);
    return this;
  }
  /** this ← value everywhere, in place. */
  fill_<T extends Tensor>(this: T, value: number): T {
    C.fillInPlace(this, value);
    return this;
  }
}

declare module './tensor-core.js' {
  // Declaration merging: every Tensor has the methods of TensorMethods.
  interface Tensor extends TensorMethods {}
}

for (const [name, desc] of Object.entries(Object.getOwnPropertyDescriptors(TensorMethods.prototype))) {
  if (name !== 'constructor') Object.defineProperty(Tensor.prototype, name, desc);
}

/**
 * Leaf gradient accumulation: later gradients are added in place into leaf.grad. The first becomes leaf.grad as it
 * is when the caller says nothing else holds it (`sole`) and it is a whole contiguous buffer of the leaf's dtype made
 * in the current scope (a step's weight gradients: no copy, as PyTorch's AccumulateGrad steals them); otherwise it
 * is copied into an owned buffer. Returns whether g was taken.
 */
export function accumulateGrad(leaf: Tensor, g: Tensor, sole = false): boolean {
  if (leaf.grad && !leaf.grad.isDisposed) {
    E.addInPlace(leaf.grad, g, 1);
    return false;
  }
  const whole = g.offset === 0 && g._storage.refs === 1 && g._storage.data.length === g.size && g.isContiguous();
  if (sole && whole && g.dtype === leaf.dtype && keepIfInnermost(g)) {
    leaf.grad = g;
    return true;
  }
  const own = g.dtype === leaf.dtype ? C.clone(g) : C.cast(g, leaf.dtype);
  leaf.grad = keep(own);
  return false;
}

export const BACKWARD_OPS: BackwardOps = {
  accumulateLeaf: (leaf, g, sole) => accumulateGrad(leaf, g, sole),
  add: (a, b) => E.add(a, b),
  addInPlace: (dst, src) => E.addInPlace(dst, src, 1),
  zeros: (shape, like) => zeros(shape, like.dtype),
  clone: (t) => C.clone(t),
};
