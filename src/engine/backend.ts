/**
 * The backend contract: a closed set of kernels over typed arrays. The tensor front (views, broadcasting, autograd)
 * lives above this line and never touches memory itself; a backend implements only these entries.
 *
 * Conventions: every array argument is contiguous row-major unless a strides argument says otherwise; outputs are
 * fully written (callers pass dirty buffers) unless the doc says "accumulates". Sizes are element counts.
 * Float kernels accept float32 and float64 arrays of the dtype named by `dtype` (bfloat16 only where stated).
 */
import type { DType, TypedArray } from './dtype.js';

export type UnaryOp =
  | 'neg'
  | 'exp'
  | 'log'
  | 'sqrt'
  | 'rsqrt'
  | 'tanh'
  | 'sigmoid'
  | 'silu'
  | 'gelu' // exact, erf-based
  | 'gelu_tanh'
  | 'relu'
  | 'abs'
  | 'sin'
  | 'cos'
  | 'square'
  | 'reciprocal'
  | 'sign';

export type BinaryOp = 'add' | 'sub' | 'mul' | 'div' | 'pow' | 'max' | 'min' | 'eq' | 'ne' | 'lt' | 'le' | 'gt' | 'ge';

export type ReduceOp = 'sum' | 'max' | 'min' | 'argmax' | 'argmin';

/**
 * A weight in the compressed-tensors pack-quantized layout: row n of `packed` holds ceil(K / (32 / bits)) int32
 * words; value k sits in word ⌊k / per⌋ at bits `bits · (k mod per)` (per = 32 / bits), stored unsigned with an
 * offset of 2^(bits−1), and w[n, k] = (stored − offset) · scale[n, ⌊k / groupSize⌋] (scale [N, ceil(K / groupSize)],
 * float32 or bf16 bits). x [M, K], bias [N] (optional) and out [M, N] are contiguous float32 (float64 on `ref`).
 */
export interface QuantMatmulArgs {
  x: TypedArray;
  M: number;
  K: number;
  N: number;
  packed: Int32Array;
  bits: 4 | 8;
  scale: TypedArray;
  scaleDtype: 'float32' | 'bfloat16';
  groupSize: number;
  bias: TypedArray | null;
  out: TypedArray;
  /**
   * Native only: 'auto' (by M: decode-bf16 up to 8 rows, gemm above), 'decode' (fused unpack kernel, float32),
   * 'decode-bf16' (fused unpack kernel with AVX512-BF16 dot products, x rounded to bf16; 'decode' where the CPU or
   * the layout does not allow it) or 'gemm' (dequantised blocks + bf16 GEMM).
   */
  path?: 'auto' | 'decode' | 'decode-bf16' | 'gemm';
  /**
   * int8 activations (every backend): when set, x is quantised per row and per `actGroup` consecutive inputs
   * (sx = max|x| / 127 and xq = round-half-even(x · (127 / max|x|)), both float32; the last group of a row may be
   * shorter) and out[m, n] = Σ_groups sw · sx · Σ q · xq (+ bias), integer dots — what the native VNNI kernel
   * computes. Each activation group must lie inside one weight group. Unset or null: x is used as it is (`path`).
   */
  actGroup?: number | null;
}

export interface AttentionArgs {
  /** [B, Lq, Hq, D] with row stride qRow (elements between consecutive positions) and batch stride qBatch. */
  q: TypedArray;
  k: TypedArray;
  v: TypedArray;
  /** Output [B, Lq, Hq, D] contiguous. */
  out: TypedArray;
  /** Per (b, h, i) log-sum-exp of the scaled, masked scores: [B, Hq, Lq] float32/64 (saved for backward). */
  lse: TypedArray;
  B: number;
  Lq: number;
  Lk: number;
  Hq: number;
  Hkv: number;
  D: number;
  qBatch: number;
  qRow: number;
  kBatch: number;
  kRow: number;
  vBatch: number;
  vRow: number;
  scale: number;
  /** Query i sits at key position i + (Lk - Lq) and sees keys <= that position. */
  causal: boolean;
  /** Block-diagonal segments shared by all batch rows: offsets [0, ..., L] (requires Lq == Lk). */
  cuSeqlens: Int32Array | null;
  /** Per batch row, first valid key (left padding); keys before it are masked. */
  keyStart: Int32Array | null;
}

export interface AttentionBackwardArgs extends AttentionArgs {
  dout: TypedArray; // [B, Lq, Hq, D] contiguous
  dq: TypedArray; // [B, Lq, Hq, D] contiguous, written
  dk: TypedArray; // [B, Lk, Hkv, D] contiguous, written
  dv: TypedArray; // [B, Lk, Hkv, D] contiguous, written
}

export interface Backend {
  readonly name: string;
  /** Whether this backend runs `kernel` for `dtype` itself (else the front falls back to the reference). */
  supports(kernel: keyof Backend, dtype: DType): boolean;

  /** dst[dstOffset + Σ i·dstStrides] = src[srcOffset + Σ i·srcStrides] over `shape` (same dtype). */
  stridedCopy(
    src: TypedArray,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: TypedArray,
    dstOffset: number,
    dstStrides: readonly number[],
    shape: readonly number[],
  ): void;
  /** dst[…] += src[…], strided like stridedCopy (float dtypes): gradient accumulation into views. */
  stridedAdd(
    src: TypedArray,
    srcOffset: number,
    srcStrides: readonly number[],
    dst: TypedArray,
    dstOffset: number,
    dstStrides: readonly number[],
    shape: readonly number[],
  ): void;
  /** Elementwise conversion of n elements. */
  cast(src: TypedArray, srcType: DType, dst: TypedArray, dstType: DType, n: number): void;

  unary(op: UnaryOp, dtype: DType, x: TypedArray, out: TypedArray, n: number): void;
  /** dx = dy · f'(x); y = f(x) is passed for ops whose derivative is cheaper from it. */
  unaryBackward(
    op: UnaryOp,
    dtype: DType,
    x: TypedArray,
    y: TypedArray,
    dy: TypedArray,
    dx: TypedArray,
    n: number,
  ): void;
  /**
   * SwiGLU: out[r, c] = silu(gate[r, c]) · up[r, c] over rows × cols, where gate and up rows start every gRow / uRow
   * elements (so they can be the two halves of one fused projection). out is contiguous.
   */
  swiglu(
    dtype: DType,
    gate: TypedArray,
    gRow: number,
    up: TypedArray,
    uRow: number,
    out: TypedArray,
    rows: number,
    cols: number,
  ): void;
  /** dgate = dout · up · silu'(gate), dup = dout · silu(gate); dgate, dup and dout contiguous [rows, cols]. */
  swigluBackward(
    dtype: DType,
    gate: TypedArray,
    gRow: number,
    up: TypedArray,
    uRow: number,
    dout: TypedArray,
    dgate: TypedArray,
    dup: TypedArray,
    rows: number,
    cols: number,
  ): void;
  /** out = alpha·x + beta. */
  affine(dtype: DType, x: TypedArray, alpha: number, beta: number, out: TypedArray, n: number): void;
  /**
   * out (contiguous, `shape`) = a ⊙ b with arbitrary (broadcast, 0-stride) input strides. Comparisons write 0/1 in
   * out's dtype (`outType`); arithmetic reads and writes `dtype`.
   */
  binary(
    op: BinaryOp,
    dtype: DType,
    a: TypedArray,
    aOffset: number,
    aStrides: readonly number[],
    b: TypedArray,
    bOffset: number,
    bStrides: readonly number[],
    out: TypedArray,
    outType: DType,
    shape: readonly number[],
  ): void;
  /** out = cond ? a : b, strided like `binary`; cond is a bool array. */
  where(
    dtype: DType,
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
  ): void;
  /** x viewed as [outer, r, inner] → out [outer, inner] (int32 for arg ops). */
  reduce(op: ReduceOp, dtype: DType, x: TypedArray, out: TypedArray, outer: number, r: number, inner: number): void;
  /** Σ x² over n elements (gradient norms). */
  sumSquares(dtype: DType, x: TypedArray, n: number): number;

  /**
   * out[b] = alpha · op(A[b]) · op(B[b]) + beta · out[b] for b < batch; op(A) is m×k, op(B) k×n, out m×n contiguous.
   * A is stored m×k (or k×m when transA) with batch stride aBatch (0 = shared); same for B.
   * dtype float32/float64, or bfloat16 A and B with a float32 out (`abType`).
   */
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
  ): void;

  /**
   * Weight-only quantised product out[M, N] = x[M, K] · dequant(W)ᵀ + bias (see QuantMatmulArgs). `dtype` is x's.
   */
  qmatmul(dtype: DType, args: QuantMatmulArgs): void;

  /** Row-wise (log-)softmax over the last dim. */
  softmax(dtype: DType, x: TypedArray, out: TypedArray, rows: number, cols: number, log: boolean): void;
  softmaxBackward(
    dtype: DType,
    y: TypedArray,
    dy: TypedArray,
    dx: TypedArray,
    rows: number,
    cols: number,
    log: boolean,
  ): void;

  /** LayerNorm over the last dim; weight/bias may be null; saves mean and rstd per row. */
  layerNorm(
    dtype: DType,
    x: TypedArray,
    w: TypedArray | null,
    b: TypedArray | null,
    out: TypedArray,
    mean: TypedArray,
    rstd: TypedArray,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /** dx written; dw, db (when non-null) accumulate. */
  layerNormBackward(
    dtype: DType,
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
  ): void;
  /** RMSNorm: out = x · rstd · w, rstd = 1/sqrt(mean(x²)+eps). */
  rmsNorm(
    dtype: DType,
    x: TypedArray,
    w: TypedArray | null,
    out: TypedArray,
    rstd: TypedArray,
    rows: number,
    cols: number,
    eps: number,
  ): void;
  /** dx written; dw (when non-null) accumulates. */
  rmsNormBackward(
    dtype: DType,
    x: TypedArray,
    w: TypedArray | null,
    rstd: TypedArray,
    dy: TypedArray,
    dx: TypedArray,
    dw: TypedArray | null,
    rows: number,
    cols: number,
  ): void;

  /**
   * Per-row cross-entropy: loss[i] = weight[i]·(lse_i − logits[i, t_i]), 0 where t_i == ignoreIndex.
   * Saves lse. Targets outside [0, V) (other than ignoreIndex) must have been rejected by the caller.
   */
  crossEntropy(
    dtype: DType,
    logits: TypedArray,
    targets: Int32Array,
    weights: TypedArray | null,
    loss: TypedArray,
    lse: TypedArray,
    rows: number,
    V: number,
    ignoreIndex: number,
  ): void;
  /** dlogits[i] = dloss[i]·weight[i]·(softmax(logits[i]) − onehot(t_i)); rows with ignoreIndex get 0. */
  crossEntropyBackward(
    dtype: DType,
    logits: TypedArray,
    targets: Int32Array,
    weights: TypedArray | null,
    lse: TypedArray,
    dloss: TypedArray,
    dlogits: TypedArray,
    rows: number,
    V: number,
    ignoreIndex: number,
  ): void;

  /** x viewed as [outer, n, inner]; out[o, j, :] = x[o, idx[j], :] for j < nIdx (indices pre-validated). */
  indexSelect(
    dtype: DType,
    x: TypedArray,
    idx: Int32Array,
    out: TypedArray,
    outer: number,
    n: number,
    inner: number,
    nIdx: number,
  ): void;
  /** Backward of indexSelect: out[o, idx[j], :] += src[o, j, :]. Accumulates; deterministic. */
  indexAdd(
    dtype: DType,
    src: TypedArray,
    idx: Int32Array,
    out: TypedArray,
    outer: number,
    n: number,
    inner: number,
    nIdx: number,
  ): void;
  /** x [outer, n, inner], idx [outer, k, inner] → out[o, j, i] = x[o, idx[o, j, i], i]. */
  gather(
    dtype: DType,
    x: TypedArray,
    idx: Int32Array,
    out: TypedArray,
    outer: number,
    n: number,
    inner: number,
    k: number,
  ): void;
  /** Backward of gather: out[o, idx[o, j, i], i] += src[o, j, i]. Accumulates. */
  scatterAdd(
    dtype: DType,
    src: TypedArray,
    idx: Int32Array,
    out: TypedArray,
    outer: number,
    n: number,
    inner: number,
    k: number,
  ): void;

  /**
   * Rotary embedding on x [B, L, H, D] (contiguous) over the first rotDim dims of each head; the rest is copied.
   * cos/sin: [B, L, rotDim/2] (batch stride csBatch, 0 = shared). interleaved: pairs (2i, 2i+1) (GLM-4.1V / GPT-J);
   * else half-split (i, i + rotDim/2) (NeoX / GLM-4.5V). inverse rotates by −θ (the backward).
   */
  rope(
    dtype: DType,
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
  ): void;

  /** Scaled-dot-product attention, GQA (Hq multiple of Hkv), fp32 softmax. */
  attention(dtype: DType, args: AttentionArgs): void;
  attentionBackward(dtype: DType, args: AttentionBackwardArgs): void;

  /** Top-k along rows (descending, stable by index): values and int32 indices [rows, k]. */
  topk(dtype: DType, x: TypedArray, values: TypedArray, indices: Int32Array, rows: number, n: number, k: number): void;

  /**
   * Bicubic grid_sample (align_corners=false, border padding, Keys A=−0.75) of a table [Hin, Win, C] at points
   * (gx, gy) in [−1, 1] → out [P, C]. Backward: dtable[Hin, Win, C] += Σ weights · dout (accumulates).
   */
  gridSampleBicubic(
    dtype: DType,
    table: TypedArray,
    Hin: number,
    Win: number,
    C: number,
    gx: Float64Array,
    gy: Float64Array,
    out: TypedArray,
  ): void;
  gridSampleBicubicBackward(
    dtype: DType,
    dout: TypedArray,
    Hin: number,
    Win: number,
    C: number,
    gx: Float64Array,
    gy: Float64Array,
    dtable: TypedArray,
  ): void;

  /**
   * im2col for N-d convolution: x [N, C, ...spatial] → cols [N, ...outSpatial, C·Πkernel] (row per output position,
   * matching a weight [O, C, ...kernel] flattened to [O, C·Πk]). col2im accumulates the reverse into dx.
   */
  im2col(
    dtype: DType,
    x: TypedArray,
    cols: TypedArray,
    N: number,
    C: number,
    inSpatial: readonly number[],
    kernel: readonly number[],
    stride: readonly number[],
    padding: readonly number[],
    outSpatial: readonly number[],
  ): void;
  col2im(
    dtype: DType,
    cols: TypedArray,
    dx: TypedArray,
    N: number,
    C: number,
    inSpatial: readonly number[],
    kernel: readonly number[],
    stride: readonly number[],
    padding: readonly number[],
    outSpatial: readonly number[],
  ): void;

  /** Fused AdamW update in place (decoupled weight decay): p -= lr·(m̂/(√v̂+eps) + wd·p). */
  adamw(
    dtype: DType,
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
    biasCorrection1: number,
    biasCorrection2: number,
  ): void;
}
