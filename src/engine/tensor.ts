/**
 * Tensor: a strided view over a Storage, with a dtype and an optional autograd node. Views (reshape of contiguous
 * data, permute, transpose, slice, expand) share storage; everything else allocates through the pool.
 * Math lives in ops/; the methods here are thin PyTorch-style shims over those functions.
 */
import {
  type BackwardOps,
  type BackwardOptions,
  type GradNode,
  isGradEnabled,
  record,
  runBackward,
} from './autograd.js';
import { be } from './device.js';
import { allocArray, bf16ToF32, type DType, f32ToBf16, isFloat, type TypedArray } from './dtype.js';
import { allocStorage, keep, releaseStorage, type Storage, trackTensor, wrapStorage } from './memory.js';
import * as C from './ops/copy.js';
import * as E from './ops/elementwise.js';
import * as I from './ops/indexing.js';
import * as M from './ops/matmul.js';
import * as N from './ops/norm.js';
import * as R from './ops/reduce.js';
import * as S from './ops/shape.js';
import * as U from './ops/unary.js';
import { checkShape, contiguousStrides, fmt, numel, type Shape } from './shape.js';

let nextId = 1;

export class Tensor {
  readonly id = nextId++;
  requiresGrad = false;
  /** Accumulated gradient of a leaf (after backward). */
  grad: Tensor | null = null;
  /** Autograd node that produced this tensor (null for leaves and constants). */
  _node: GradNode | null = null;
  /** Optional name (parameters carry their HF dotted name). */
  name?: string;
  private _disposed = false;

  constructor(
    readonly _storage: Storage,
    readonly shape: readonly number[],
    readonly strides: readonly number[],
    readonly offset: number,
  ) {
    trackTensor(this);
  }

  get dtype(): DType {
    return this._storage.dtype;
  }

  get ndim(): number {
    return this.shape.length;
  }

  get size(): number {
    return numel(this.shape);
  }

  get isDisposed(): boolean {
    return this._disposed;
  }

  get isLeaf(): boolean {
    return this._node === null;
  }

  /** Frees this tensor's hold on its storage; later use throws. Idempotent. */
  dispose(): void {
    if (this._disposed) return;
    this._disposed = true;
    releaseStorage(this._storage);
    this._node = null;
    if (this.grad) {
      this.grad.dispose();
      this.grad = null;
    }
  }

  /** Throws when the tensor was disposed; every data access goes through this. */
  assertAlive(op: string): void {
    if (this._disposed) {
      throw new Error(
        `${op}: tensor ${fmt(this.shape)} ${this.dtype}${this.name ? ` '${this.name}'` : ''} was disposed ` +
          '(created inside a scope that has ended, or disposed explicitly); keep() it or return it from the scope',
      );
    }
  }

  isContiguous(): boolean {
    let acc = 1;
    for (let i = this.shape.length - 1; i >= 0; i--) {
      const d = this.shape[i] as number;
      if (d !== 1 && this.strides[i] !== acc) return false;
      acc *= d;
    }
    return true;
  }

  /**
   * The contiguous storage array of this tensor for a kernel: zero-copy when already contiguous (a subarray when
   * offset), otherwise throws — call `.contiguous()` first.
   */
  buf(op = 'kernel'): TypedArray {
    this.assertAlive(op);
    if (!this.isContiguous())
      throw new Error(`${op}: internal error, expected a contiguous tensor, got strides [${this.strides}]`);
    const data = this._storage.data;
    const n = this.size;
    if (this.offset === 0 && data.length === n) return data;
    return data.subarray(this.offset, this.offset + n);
  }

  /** Values as a plain nested-free number array in row-major order (bf16 decoded). */
  toArray(): number[] {
    return Array.from(this.toFloat64());
  }

  /** Row-major copy as Float32Array (decoding bf16, converting ints). */
  toFloat32(): Float32Array {
    const c = this.contiguous();
    const b = c.buf('toFloat32');
    if (c.dtype === 'float32') return Float32Array.from(b as Float32Array);
    const out = new Float32Array(b.length);
    if (c.dtype === 'bfloat16') for (let i = 0; i < b.length; i++) out[i] = bf16ToF32(b[i] as number);
    else for (let i = 0; i < b.length; i++) out[i] = b[i] as number;
    return out;
  }

  toFloat64(): Float64Array {
    const c = this.contiguous();
    const b = c.buf('toFloat64');
    const out = new Float64Array(b.length);
    if (c.dtype === 'bfloat16') for (let i = 0; i < b.length; i++) out[i] = bf16ToF32(b[i] as number);
    else for (let i = 0; i < b.length; i++) out[i] = b[i] as number;
    return out;
  }

  toInt32(): Int32Array {
    const c = this.dtype === 'int32' ? this.contiguous() : this.to('int32');
    return Int32Array.from(c.buf('toInt32') as Int32Array);
  }

  /** Nested JS arrays, like torch's tolist(). */
  tolist(): unknown {
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
  item(): number {
    if (this.size !== 1)
      throw new Error(`item: tensor has ${this.size} elements (shape ${fmt(this.shape)}), expected 1`);
    return this.toFloat64()[0] as number;
  }

  toString(): string {
    const head = `Tensor(${fmt(this.shape)}, ${this.dtype}${this.requiresGrad ? ', requiresGrad' : ''})`;
    if (this._disposed) return `${head} <disposed>`;
    const vals = this.size <= 12 ? this.toArray() : this.reshape([-1]).slice(0, 0, 6).toArray();
    return `${head} [${vals.map((v) => +v.toPrecision(5)).join(', ')}${this.size > 12 ? ', …' : ''}]`;
  }

  // ---- autograd ----

  /** d(this)/d(leaves), accumulated into each leaf's .grad. Non-scalars need an explicit gradient. */
  backward(grad?: Tensor, opts?: BackwardOptions): void {
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

  /** A tensor sharing storage but cut from the graph. */
  detach(): Tensor {
    this.assertAlive('detach');
    this._storage.refs++;
    return new Tensor(this._storage, this.shape, this.strides, this.offset);
  }

  /** Marks this tensor as a leaf that accumulates gradients (like requires_grad_()). */
  requireGrad(flag = true): this {
    if (flag && !isFloat(this.dtype))
      throw new Error(`requireGrad: only float tensors can require grad, got ${this.dtype}`);
    if (this._node) throw new Error('requireGrad: only leaf tensors can be marked; use detach() first');
    this.requiresGrad = flag;
    return this;
  }

  // ---- views and layout (ops/shape.ts) ----
  contiguous(): Tensor {
    return C.contiguous(this);
  }
  clone(): Tensor {
    return C.clone(this);
  }
  reshape(shape: readonly number[]): Tensor {
    return S.reshape(this, shape);
  }
  view(shape: readonly number[]): Tensor {
    return S.reshape(this, shape);
  }
  flatten(start = 0, end = -1): Tensor {
    return S.flatten(this, start, end);
  }
  permute(order: readonly number[]): Tensor {
    return S.permute(this, order);
  }
  transpose(a: number, b: number): Tensor {
    return S.transpose(this, a, b);
  }
  /** Transpose of the last two dims. */
  get mT(): Tensor {
    return S.transpose(this, -2, -1);
  }
  /** Elements [start, end) along `axis` (a view). */
  slice(axis: number, start: number, end?: number, step = 1): Tensor {
    return S.slice(this, axis, start, end, step);
  }
  narrow(axis: number, start: number, length: number): Tensor {
    return S.slice(this, axis, start, start + length);
  }
  select(axis: number, index: number): Tensor {
    return S.select(this, axis, index);
  }
  expand(shape: readonly number[]): Tensor {
    return R.expand(this, shape);
  }
  squeeze(axis?: number): Tensor {
    return S.squeeze(this, axis);
  }
  unsqueeze(axis: number): Tensor {
    return S.unsqueeze(this, axis);
  }
  split(sizes: number | readonly number[], axis = 0): Tensor[] {
    return S.split(this, sizes, axis);
  }
  chunk(n: number, axis = 0): Tensor[] {
    return S.chunk(this, n, axis);
  }
  to(dtype: DType): Tensor {
    return C.cast(this, dtype);
  }

  // ---- elementwise (ops/elementwise.ts) ----
  add(o: Tensor | number): Tensor {
    return E.add(this, o);
  }
  sub(o: Tensor | number): Tensor {
    return E.sub(this, o);
  }
  mul(o: Tensor | number): Tensor {
    return E.mul(this, o);
  }
  div(o: Tensor | number): Tensor {
    return E.div(this, o);
  }
  pow(o: Tensor | number): Tensor {
    return E.pow(this, o);
  }
  maximum(o: Tensor | number): Tensor {
    return E.maximum(this, o);
  }
  minimum(o: Tensor | number): Tensor {
    return E.minimum(this, o);
  }
  neg(): Tensor {
    return U.neg(this);
  }
  exp(): Tensor {
    return U.exp(this);
  }
  log(): Tensor {
    return U.log(this);
  }
  sqrt(): Tensor {
    return U.sqrt(this);
  }
  rsqrt(): Tensor {
    return U.rsqrt(this);
  }
  tanh(): Tensor {
    return U.tanh(this);
  }
  sigmoid(): Tensor {
    return U.sigmoid(this);
  }
  silu(): Tensor {
    return U.silu(this);
  }
  gelu(approximate: 'none' | 'tanh' = 'none'): Tensor {
    return U.gelu(this, approximate);
  }
  relu(): Tensor {
    return U.relu(this);
  }
  abs(): Tensor {
    return U.abs(this);
  }
  sin(): Tensor {
    return U.sin(this);
  }
  cos(): Tensor {
    return U.cos(this);
  }
  square(): Tensor {
    return U.square(this);
  }
  reciprocal(): Tensor {
    return U.reciprocal(this);
  }
  clamp(min?: number, max?: number): Tensor {
    return E.clamp(this, min, max);
  }
  eq(o: Tensor | number): Tensor {
    return E.compare('eq', this, o);
  }
  ne(o: Tensor | number): Tensor {
    return E.compare('ne', this, o);
  }
  lt(o: Tensor | number): Tensor {
    return E.compare('lt', this, o);
  }
  le(o: Tensor | number): Tensor {
    return E.compare('le', this, o);
  }
  gt(o: Tensor | number): Tensor {
    return E.compare('gt', this, o);
  }
  ge(o: Tensor | number): Tensor {
    return E.compare('ge', this, o);
  }
  maskedFill(mask: Tensor, value: number): Tensor {
    return E.maskedFill(this, mask, value);
  }

  // ---- reductions (ops/reduce.ts) ----
  sum(axis?: number | readonly number[], keepdim = false): Tensor {
    return R.sum(this, axis, keepdim);
  }
  mean(axis?: number | readonly number[], keepdim = false): Tensor {
    return R.mean(this, axis, keepdim);
  }
  max(axis?: number, keepdim = false): Tensor {
    return R.max(this, axis, keepdim);
  }
  min(axis?: number, keepdim = false): Tensor {
    return R.min(this, axis, keepdim);
  }
  argmax(axis = -1, keepdim = false): Tensor {
    return R.argmax(this, axis, keepdim);
  }
  argmin(axis = -1, keepdim = false): Tensor {
    return R.argmin(this, axis, keepdim);
  }

  // ---- matmul / nn (ops/matmul.ts, ops/norm.ts, ops/indexing.ts) ----
  matmul(o: Tensor): Tensor {
    return M.matmul(this, o);
  }
  softmax(axis = -1): Tensor {
    return N.softmax(this, axis);
  }
  logSoftmax(axis = -1): Tensor {
    return N.logSoftmax(this, axis);
  }
  indexSelect(axis: number, index: Tensor): Tensor {
    return I.indexSelect(this, axis, index);
  }
  gather(axis: number, index: Tensor): Tensor {
    return I.gather(this, axis, index);
  }

  // ---- in-place updates (no autograd; optimizers and accumulation) ----
  /** this ← src (same shape; dtype converted). */
  copy_(src: Tensor): this {
    C.copyInto(this, src);
    return this;
  }
  /** this ← this + alpha·other, in place (no autograd). */
  addInPlace(other: Tensor, alpha = 1): this {
    E.addInPlace(this, other, alpha);
    return this;
  }
  /** this ← value everywhere, in place. */
  fill_(value: number): this {
    C.fillInPlace(this, value);
    return this;
  }
}

// ---------------------------------------------------------------------------------------------------------------
// Construction helpers used by every op.

/** A new contiguous tensor with undefined contents (pooled inside scopes) unless zero. */
export function empty(shape: Shape, dtype: DType = 'float32', zero = false): Tensor {
  checkShape(shape, 'empty');
  const s = allocStorage(dtype, numel(shape), zero);
  return new Tensor(s, shape.slice(), contiguousStrides(shape), 0);
}

export function zeros(shape: Shape, dtype: DType = 'float32'): Tensor {
  return empty(shape, dtype, true);
}

export function full(shape: Shape, value: number, dtype: DType = 'float32'): Tensor {
  const t = empty(shape, dtype);
  const v = dtype === 'bfloat16' ? f32ToBf16(value) : value;
  t.buf('full').fill(v);
  return t;
}

export function ones(shape: Shape, dtype: DType = 'float32'): Tensor {
  return full(shape, 1, dtype);
}

/** Wraps an existing typed array (no copy). bf16 data is a Uint16Array of raw bits. */
export function fromArray(data: TypedArray, shape: Shape, dtype?: DType): Tensor {
  const d = dtype ?? inferDType(data);
  checkShape(shape, 'fromArray');
  if (numel(shape) !== data.length) {
    throw new Error(`fromArray: ${data.length} values cannot have shape ${fmt(shape)} (${numel(shape)} elements)`);
  }
  const expected = allocArray(d, 0).constructor;
  if (data.constructor !== expected) {
    throw new Error(`fromArray: dtype ${d} needs a ${expected.name}, got a ${data.constructor.name}`);
  }
  return new Tensor(wrapStorage(d, data), shape.slice(), contiguousStrides(shape), 0);
}

function inferDType(data: TypedArray): DType {
  if (data instanceof Float32Array) return 'float32';
  if (data instanceof Float64Array) return 'float64';
  if (data instanceof Int32Array) return 'int32';
  if (data instanceof Uint8Array) return 'bool';
  return 'bfloat16';
}

/**
 * A tensor from (nested) numbers or a typed array, copying the data. Shape is inferred from nesting unless given.
 */
export function tensor(data: unknown, opts: { shape?: Shape; dtype?: DType; requiresGrad?: boolean } = {}): Tensor {
  let flat: number[] | TypedArray;
  let shape: number[];
  if (ArrayBuffer.isView(data)) {
    flat = data as TypedArray;
    shape = opts.shape ? [...opts.shape] : [flat.length];
  } else if (typeof data === 'number' || typeof data === 'boolean') {
    flat = [Number(data)];
    shape = opts.shape ? [...opts.shape] : [];
  } else if (Array.isArray(data)) {
    shape = [];
    let probe: unknown = data;
    while (Array.isArray(probe)) {
      shape.push(probe.length);
      probe = probe[0];
    }
    flat = (data as unknown[]).flat(Number.POSITIVE_INFINITY) as number[];
    if (flat.length !== numel(shape))
      throw new Error(`tensor: ragged nested array (shape guess ${fmt(shape)}, ${flat.length} values)`);
    for (const v of flat) {
      if (typeof v !== 'number' && typeof v !== 'boolean')
        throw new Error(`tensor: expected numbers, found ${typeof v}`);
    }
    if (opts.shape) {
      if (numel(opts.shape) !== flat.length)
        throw new Error(`tensor: ${flat.length} values cannot have shape ${fmt(opts.shape)}`);
      shape = [...opts.shape];
    }
  } else {
    throw new Error(`tensor: expected a number, nested array or typed array, got ${typeof data}`);
  }
  const dtype =
    opts.dtype ?? (flat instanceof Int32Array ? 'int32' : flat instanceof Float64Array ? 'float64' : 'float32');
  if (numel(shape) !== flat.length) throw new Error(`tensor: ${flat.length} values cannot have shape ${fmt(shape)}`);
  const t = empty(shape, dtype);
  const b = t.buf('tensor');
  if (dtype === 'bfloat16' && !(flat instanceof Uint16Array))
    for (let i = 0; i < flat.length; i++) b[i] = f32ToBf16(flat[i] as number);
  else if (dtype === 'bool') for (let i = 0; i < flat.length; i++) b[i] = flat[i] ? 1 : 0;
  else for (let i = 0; i < flat.length; i++) b[i] = flat[i] as number;
  if (opts.requiresGrad) t.requireGrad();
  return t;
}

/** Leaf gradient accumulation: the first gradient is copied into an owned buffer, later ones are added in place. */
export function accumulateGrad(leaf: Tensor, g: Tensor): void {
  if (leaf.grad && !leaf.grad.isDisposed) {
    E.addInPlace(leaf.grad, g, 1);
    return;
  }
  const own = g.dtype === leaf.dtype ? C.clone(g) : C.cast(g, leaf.dtype);
  leaf.grad = keep(own);
}

export const BACKWARD_OPS: BackwardOps = {
  accumulateLeaf: (leaf, g) => accumulateGrad(leaf, g),
  add: (a, b) => E.add(a, b),
  addInPlace: (dst, src) => E.addInPlace(dst, src, 1),
  zeros: (shape, like) => zeros(shape, like.dtype),
  clone: (t) => C.clone(t),
};

/** A view sharing `base`'s storage. */
export function makeView(base: Tensor, shape: readonly number[], strides: readonly number[], offset: number): Tensor {
  base.assertAlive('view');
  base._storage.refs++;
  return new Tensor(base._storage, shape, strides, offset);
}

/** Dispatch helper for ops: backend for a kernel and dtype. */
export { be, isGradEnabled, record };
