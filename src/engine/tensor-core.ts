/**
 * The core of Tensor: a strided view over a Storage, with a dtype, a gradient and the autograd node that made it,
 * and the constructors every op builds on (empty, zeros, full, fromArray, tensor, makeView). Views (reshape of
 * contiguous data, permute, transpose, slice, expand) share storage; everything else allocates through the pool.
 *
 * The PyTorch-style methods (`t.add(x)`, `t.sum()`, `t.backward()`, `t.toArray()`, ...) call the ops, which build on
 * this file, so they are installed on the prototype by tensor.ts, above the ops. Only the ops and autograd import
 * this file; everything else imports tensor.ts (or the engine's index), so no one holds a Tensor without methods.
 */
import { allocArray, type DType, f32ToBf16, isFloat, type TypedArray } from './dtype.js';
import { allocStorage, releaseStorage, type Storage, trackTensor, wrapStorage } from './memory.js';
import { checkShape, contiguousStrides, fmt, numel, type Shape } from './shape.js';

/** The autograd node of a tensor an op produced: its inputs and how the output's gradient flows back to them. */
export interface GradNode {
  readonly name: string;
  readonly inputs: readonly Tensor[];
  /** Gradients for each input (null where none flows), given the output's gradient. */
  readonly backward: (grad: Tensor) => ReadonlyArray<Tensor | null | undefined>;
  /**
   * Optional faster form for views (slice/select): adds the gradient straight into the input's accumulation
   * buffer, `bufferFor(k)` (zero-initialised, owned by the backward pass), instead of materialising a full-size
   * zero tensor per view.
   */
  readonly backwardInto?: (grad: Tensor, bufferFor: (k: number) => Tensor) => void;
}

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

/** A view sharing `base`'s storage. */
export function makeView(base: Tensor, shape: readonly number[], strides: readonly number[], offset: number): Tensor {
  base.assertAlive('view');
  base._storage.refs++;
  return new Tensor(base._storage, shape, strides, offset);
}
