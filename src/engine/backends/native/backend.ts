/**
 * The native backend's binding: one method per kernel of the N-API addon in native/ (C++ kernels, oneDNN GEMM), with
 * the op and dtype codes the addon reads and the packing of shapes and strides it expects. float32 throughout, bf16
 * for casts, copies and GEMM; anything else falls back to the reference backend through `supports`.
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
import { bytesPer, type DType, type TypedArray } from '../../dtype.js';

/** The float32 GEMM paths of the addon, in its numbering (1, 2, 3). */
const F32_GEMM = ['sgemm', 'matmul', 'split'] as const;
export type F32Gemm = (typeof F32_GEMM)[number];
/** The int8-activation decode kernels, best first (native/src/quant.cc); 'auto' is the best this CPU runs. */
export type Int8Kernel = 'auto' | 'avx512vnni' | 'avx512bw' | 'avxvnni' | 'avx2' | 'portable';
/**
 * What the quantised kernels find on this CPU (under ONEDNN_MAX_CPU_ISA's cap), and the int8-activation kernels it
 * can run, best (the default) first, 'portable' last.
 */
export interface QuantKernels {
  avx512: boolean;
  avx512bf16: boolean;
  avx512vnni: boolean;
  avxvnni: boolean;
  avx2: boolean;
  int8: Array<Exclude<Int8Kernel, 'auto'>>;
}

export interface Addon {
  [fn: string]: (...args: unknown[]) => unknown;
}

const UNARY: Record<UnaryOp, number> = {
  neg: 0,
  exp: 1,
  log: 2,
  sqrt: 3,
  rsqrt: 4,
  tanh: 5,
  sigmoid: 6,
  silu: 7,
  gelu: 8,
  gelu_tanh: 9,
  relu: 10,
  abs: 11,
  sin: 12,
  cos: 13,
  square: 14,
  reciprocal: 15,
  sign: 16,
};
const BINARY: Record<BinaryOp, number> = {
  add: 0,
  sub: 1,
  mul: 2,
  div: 3,
  pow: 4,
  max: 5,
  min: 6,
  eq: 7,
  ne: 8,
  lt: 9,
  le: 10,
  gt: 11,
  ge: 12,
};
const REDUCE: Record<ReduceOp, number> = { sum: 0, max: 1, min: 2, argmax: 3, argmin: 4 };
const DT: Record<DType, number> = { float32: 0, float64: 1, bfloat16: 2, int32: 3, bool: 4 };

/** Kernels that accept any dtype (byte moves and conversions). */
const ANY_DTYPE = new Set<keyof Backend>(['stridedCopy', 'cast', 'indexSelect']);

const meta = new Float64Array(1 + 5 * 12);

function packMeta(shape: readonly number[], ...strides: ReadonlyArray<readonly number[]>): Float64Array {
  const nd = shape.length;
  if (nd > 12) throw new Error(`native backend: tensors of rank ${nd} exceed the limit of 12`);
  meta[0] = nd;
  for (let i = 0; i < nd; i++) meta[1 + i] = shape[i] as number;
  strides.forEach((s, k) => {
    for (let i = 0; i < nd; i++) meta[1 + nd * (1 + k) + i] = s[i] as number;
  });
  return meta;
}

/** Shifts a strided operand's base to its offset (typed-array views are zero-copy). */
function at(a: TypedArray, offset: number): TypedArray {
  return offset === 0 ? a : a.subarray(offset);
}

const attnMeta = new Float64Array(14);

/** Debugging aid: GLMV_NATIVE_KERNELS=matmul,attention runs only those kernels natively (the rest on `ref`). */
const ONLY = process.env.GLMV_NATIVE_KERNELS
  ? new Set(process.env.GLMV_NATIVE_KERNELS.split(',').map((k) => k.trim()))
  : null;

export class NativeBackend implements Backend {
  readonly name = 'native';
  constructor(private readonly n: Addon) {}

  supports(kernel: keyof Backend, dtype: DType): boolean {
    if (ONLY && !ONLY.has(kernel)) return false;
    if (ANY_DTYPE.has(kernel)) return true;
    if (kernel === 'matmul') return dtype === 'float32' || dtype === 'bfloat16';
    return dtype === 'float32';
  }

  /**
   * threads, oneDNN version, effective ISA (dnnl_cpu_isa_t) and how bf16 GEMMs run: `onednn-bf16` on CPUs with
   * bf16 dot products (AVX512_BF16, AMX), `f32-widened` (operands widened, float32 sgemm) elsewhere.
   */
  info(): { threads: number; onednn: string; isa: number; bf16Gemm: 'onednn-bf16' | 'f32-widened' } {
    return this.n.info!() as { threads: number; onednn: string; isa: number; bf16Gemm: 'onednn-bf16' | 'f32-widened' };
  }

  setThreads(n: number): number {
    return this.n.setThreads!(n) as number;
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
    this.n.stridedCopy!(
      src.BYTES_PER_ELEMENT,
      at(src, srcOffset),
      at(dst, dstOffset),
      packMeta(shape, srcStrides, dstStrides),
    );
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
    this.n.stridedAdd!(at(src, srcOffset), at(dst, dstOffset), packMeta(shape, srcStrides, dstStrides));
  }
  cast(src: TypedArray, srcType: DType, dst: TypedArray, dstType: DType, n: number): void {
    this.n.cast!(src, DT[srcType], dst, DT[dstType], n);
  }
  unary(op: UnaryOp, _d: DType, x: TypedArray, out: TypedArray, n: number): void {
    this.n.unary!(UNARY[op], x, out, n);
  }
  unaryBackward(op: UnaryOp, _d: DType, x: TypedArray, y: TypedArray, dy: TypedArray, dx: TypedArray, n: number): void {
    this.n.unaryBackward!(UNARY[op], x, y, dy, dx, n);
  }
  swiglu(
    _d: DType,
    gate: TypedArray,
    gRow: number,
    up: TypedArray,
    uRow: number,
    out: TypedArray,
    rows: number,
    cols: number,
  ): void {
    this.n.swiglu!(gate, gRow, up, uRow, out, rows, cols);
  }
  swigluBackward(
    _d: DType,
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
    this.n.swigluBackward!(gate, gRow, up, uRow, dout, dgate, dup, rows, cols);
  }
  affine(_d: DType, x: TypedArray, alpha: number, beta: number, out: TypedArray, n: number): void {
    this.n.affine!(x, alpha, beta, out, n);
  }
  binary(
    op: BinaryOp,
    _d: DType,
    a: TypedArray,
    aOffset: number,
    aStrides: readonly number[],
    b: TypedArray,
    bOffset: number,
    bStrides: readonly number[],
    out: TypedArray,
    outType: DType,
    shape: readonly number[],
  ): void {
    this.n.binary!(
      BINARY[op],
      at(a, aOffset),
      at(b, bOffset),
      out,
      outType === 'bool',
      packMeta(shape, aStrides, bStrides),
    );
  }
  where(
    _d: DType,
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
    this.n.where!(
      at(cond, cOffset),
      at(a, aOffset),
      at(b, bOffset),
      out,
      packMeta(shape, cStrides, aStrides, bStrides),
    );
  }
  reduce(op: ReduceOp, _d: DType, x: TypedArray, out: TypedArray, outer: number, r: number, inner: number): void {
    this.n.reduce!(REDUCE[op], x, out, outer, r, inner);
  }
  sumSquares(_d: DType, x: TypedArray, n: number): number {
    return this.n.sumSquares!(x, n) as number;
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
    this.n.matmul!(abType === 'bfloat16', a, b, out, batch, m, n, k, transA, transB, aBatch, bBatch, alpha, beta);
  }
  qmatmul(_d: DType, a: QuantMatmulArgs): void {
    const path = a.path === 'decode' ? 1 : a.path === 'gemm' ? 2 : a.path === 'decode-bf16' ? 3 : 0;
    this.n.qmatmul!(
      a.x,
      a.M,
      a.K,
      a.packed,
      a.bits,
      a.scale,
      a.scaleDtype === 'bfloat16',
      a.groupSize,
      a.N,
      a.bias,
      a.out,
      path,
      a.actGroup ?? 0,
    );
  }
  /** Tests: run the portable quantised kernels even where AVX-512 exists. Returns whether the CPU has AVX-512. */
  quantPortable(flag: boolean): boolean {
    return this.n.qForcePortable!(flag) as boolean;
  }
  /**
   * Tests: quantise activations for the int8-activation kernels with the scalar loop instead of the AVX-512 one
   * (they must give the same bytes). Returns whether the CPU has AVX-512.
   */
  quantScalarActivations(flag: boolean): boolean {
    return this.n.qScalarQuantize!(flag) as boolean;
  }
  /**
   * Tests and benchmarks: run the named int8-activation kernel instead of the best this CPU has ('auto'), so that
   * the kernels of lesser CPUs run and are timed here: 'avx512bw' (AVX-512 without VNNI: Skylake-SP), 'avxvnni'
   * (256-bit VNNI: Alder Lake), 'avx2' (Zen 2/3, Intel before Alder Lake), 'portable'. Returns whether this CPU runs
   * it; if not, the choice stays 'auto'.
   */
  quantInt8Kernel(kernel: Int8Kernel): boolean {
    return this.n.qInt8Kernel!(kernel) as boolean;
  }
  /**
   * Benchmarks and tests: which float32 GEMM runs — 'split' (the default: the output split in one block per thread,
   * each block a single-threaded dnnl_sgemm), 'sgemm' (dnnl_sgemm with its own threading) or 'matmul' (oneDNN's
   * matmul primitive, cached per shape, wherever it applies). Returns the mode it replaced, to put back.
   */
  setF32Gemm(mode: F32Gemm): F32Gemm {
    const prev = this.n.setF32Gemm!(F32_GEMM.indexOf(mode) + 1) as number;
    return F32_GEMM[prev - 1]!;
  }
  /**
   * Benchmarks and tests: decode-shaped bf16 products (up to 8 rows against a [N, K] weight) through the AVX512-BF16
   * GEMV kernel (true, the default where the CPU has it) or oneDNN's matmul primitive (false).
   */
  setBf16Gemv(on: boolean): void {
    this.n.setBf16Gemv!(on);
  }
  /**
   * Benchmarks: how many bytes ahead the decode kernels (bf16 GEMV, int8 / int4 weights) prefetch the weight they
   * stream; 0 turns it off. Returns the distance it replaced.
   */
  setStreamPrefetch(bytes: number): number {
    return this.n.setStreamPrefetch!(bytes) as number;
  }
  /**
   * The quantised decode kernels this CPU runs (AVX-512 float32, AVX512-BF16 dot products, AVX512-VNNI / AVX512BW /
   * AVX-VNNI / AVX2 integer dots).
   */
  quantKernels(): QuantKernels {
    return this.n.qKernels!() as QuantKernels;
  }
  softmax(_d: DType, x: TypedArray, out: TypedArray, rows: number, cols: number, log: boolean): void {
    this.n.softmax!(x, out, rows, cols, log);
  }
  softmaxBackward(
    _d: DType,
    y: TypedArray,
    dy: TypedArray,
    dx: TypedArray,
    rows: number,
    cols: number,
    log: boolean,
  ): void {
    this.n.softmaxBackward!(y, dy, dx, rows, cols, log);
  }
  layerNorm(
    _d: DType,
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
    this.n.layerNorm!(x, w, b, out, mean, rstd, rows, cols, eps);
  }
  layerNormBackward(
    _d: DType,
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
    this.n.layerNormBackward!(x, w, mean, rstd, dy, dx, dw, db, rows, cols);
  }
  rmsNorm(
    _d: DType,
    x: TypedArray,
    w: TypedArray | null,
    out: TypedArray,
    rstd: TypedArray,
    rows: number,
    cols: number,
    eps: number,
  ): void {
    this.n.rmsNorm!(x, w, out, rstd, rows, cols, eps);
  }
  rmsNormBackward(
    _d: DType,
    x: TypedArray,
    w: TypedArray | null,
    rstd: TypedArray,
    dy: TypedArray,
    dx: TypedArray,
    dw: TypedArray | null,
    rows: number,
    cols: number,
  ): void {
    this.n.rmsNormBackward!(x, w, rstd, dy, dx, dw, rows, cols);
  }
  crossEntropy(
    _d: DType,
    logits: TypedArray,
    targets: Int32Array,
    weights: TypedArray | null,
    loss: TypedArray,
    lse: TypedArray,
    rows: number,
    V: number,
    ignoreIndex: number,
  ): void {
    this.n.crossEntropy!(logits, targets, weights, loss, lse, rows, V, ignoreIndex);
  }
  crossEntropyBackward(
    _d: DType,
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
    this.n.crossEntropyBackward!(logits, targets, weights, lse, dloss, dlogits, rows, V, ignoreIndex);
  }
  indexSelect(
    dtype: DType,
    x: TypedArray,
    idx: Int32Array,
    out: TypedArray,
    outer: number,
    n: number,
    inner: number,
    nIdx: number,
  ): void {
    this.n.indexSelect!(bytesPer(dtype), x, idx, out, outer, n, inner, nIdx);
  }
  indexAdd(
    _d: DType,
    src: TypedArray,
    idx: Int32Array,
    out: TypedArray,
    outer: number,
    n: number,
    inner: number,
    nIdx: number,
  ): void {
    this.n.indexAdd!(src, idx, out, outer, n, inner, nIdx);
  }
  gather(
    _d: DType,
    x: TypedArray,
    idx: Int32Array,
    out: TypedArray,
    outer: number,
    n: number,
    inner: number,
    k: number,
  ): void {
    this.n.gather!(x, idx, out, outer, n, inner, k);
  }
  scatterAdd(
    _d: DType,
    src: TypedArray,
    idx: Int32Array,
    out: TypedArray,
    outer: number,
    n: number,
    inner: number,
    k: number,
  ): void {
    this.n.scatterAdd!(src, idx, out, outer, n, inner, k);
  }
  rope(
    _d: DType,
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
    this.n.rope!(x, cos, sin, out, B, L, H, D, rotDim, csBatch, interleaved, inverse);
  }
  private attnMeta(a: AttentionArgs): Float64Array {
    const m = attnMeta;
    m[0] = a.B;
    m[1] = a.Lq;
    m[2] = a.Lk;
    m[3] = a.Hq;
    m[4] = a.Hkv;
    m[5] = a.D;
    m[6] = a.qBatch;
    m[7] = a.qRow;
    m[8] = a.kBatch;
    m[9] = a.kRow;
    m[10] = a.vBatch;
    m[11] = a.vRow;
    m[12] = a.scale;
    m[13] = a.causal ? 1 : 0;
    return m;
  }
  attention(_d: DType, a: AttentionArgs): void {
    this.n.attention!(a.q, a.k, a.v, a.out, a.lse, this.attnMeta(a), a.cuSeqlens, a.keyStart);
  }
  attentionBackward(_d: DType, a: AttentionBackwardArgs): void {
    this.n.attentionBackward!(
      a.q,
      a.k,
      a.v,
      a.out,
      a.lse,
      this.attnMeta(a),
      a.cuSeqlens,
      a.keyStart,
      a.dout,
      a.dq,
      a.dk,
      a.dv,
    );
  }
  topk(_d: DType, x: TypedArray, values: TypedArray, indices: Int32Array, rows: number, n: number, k: number): void {
    this.n.topk!(x, values, indices, rows, n, k);
  }
  gridSampleBicubic(
    _d: DType,
    table: TypedArray,
    Hin: number,
    Win: number,
    C: number,
    gx: Float64Array,
    gy: Float64Array,
    out: TypedArray,
  ): void {
    this.n.gridSample!(table, Hin, Win, C, gx, gy, out);
  }
  gridSampleBicubicBackward(
    _d: DType,
    dout: TypedArray,
    Hin: number,
    Win: number,
    C: number,
    gx: Float64Array,
    gy: Float64Array,
    dtable: TypedArray,
  ): void {
    this.n.gridSampleBackward!(dout, Hin, Win, C, gx, gy, dtable);
  }
  private convMeta(
    N: number,
    C: number,
    inS: readonly number[],
    kernel: readonly number[],
    stride: readonly number[],
    padding: readonly number[],
    outS: readonly number[],
  ): Float64Array {
    return Float64Array.from([N, C, inS.length, ...inS, ...kernel, ...stride, ...padding, ...outS]);
  }
  im2col(
    _d: DType,
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
    this.n.im2col!(x, cols, this.convMeta(N, C, inS, kernel, stride, padding, outS), false);
  }
  col2im(
    _d: DType,
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
    this.n.im2col!(cols, dx, this.convMeta(N, C, inS, kernel, stride, padding, outS), true);
  }
  adamw(
    _d: DType,
    p: TypedArray,
    g: TypedArray,
    m: TypedArray,
    v: TypedArray,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    wd: number,
    bc1: number,
    bc2: number,
  ): void {
    this.n.adamw!(p, g, m, v, n, lr, beta1, beta2, eps, wd, bc1, bc2);
  }
}
