/**
 * Weight-only quantisation (int8 per output channel, int4 group-wise), in the compressed-tensors "pack-quantized"
 * layout that vLLM loads: `packed` int32 [N, ceil(K / (32 / bits))], `scale` [N, ceil(K / groupSize)], symmetric
 * (no zero point). Quantising: per output row and group, scale = max|w| / qmax (qmax = 2^(bits−1) − 1, so the
 * largest weight is exact and nothing clips), q = round(w / scale) ∈ [−qmax, qmax], stored as q + 2^(bits−1).
 * The product dequantises in the kernel (registers on the native decode path), never materialising W.
 */
import { record } from '../autograd.js';
import type { QuantMatmulArgs } from '../backend.js';
import { be } from '../device.js';
import { bf16ToF32, type DType, f32ToBf16 } from '../dtype.js';
import { fmt } from '../shape.js';
import { empty, fromArray, type Tensor } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';
import { matmul } from './matmul.js';
import { sumTo } from './reduce.js';
import { reshape } from './shape.js';

export type QuantBits = 4 | 8;

/** A quantised [N, K] weight. groupSize = K means one scale per output channel. */
export interface QuantizedWeight {
  packed: Tensor;
  scale: Tensor;
  bits: QuantBits;
  groupSize: number;
  /** K (the unpacked row length; packed rows may be padded to whole words). */
  inFeatures: number;
}

export function packedWords(K: number, bits: QuantBits): number {
  return Math.ceil(K / (32 / bits));
}

/**
 * Quantises a float weight [N, K]. `groupSize` null = per output channel. The scale is stored in `scaleDtype`
 * and q is computed from the stored (rounded) scale, so dequantisation reproduces exactly what was intended.
 */
export function quantizeWeight(
  weight: Tensor,
  bits: QuantBits,
  groupSize: number | null,
  scaleDtype: 'float32' | 'bfloat16' = 'float32',
): QuantizedWeight {
  if (bits !== 4 && bits !== 8) throw new Error(`quantizeWeight: bits must be 4 or 8, got ${bits}`);
  if (weight.ndim !== 2) throw new Error(`quantizeWeight: expected a [out, in] weight, got ${fmt(weight.shape)}`);
  const [N, K] = weight.shape as [number, number];
  const g = groupSize ?? K;
  if (!Number.isInteger(g) || g <= 0)
    throw new Error(`quantizeWeight: group size must be a positive integer, got ${g}`);
  const w = weight.toFloat32();
  const per = 32 / bits;
  const W = packedWords(K, bits);
  const G = Math.ceil(K / g);
  const qmax = (1 << (bits - 1)) - 1;
  const offset = 1 << (bits - 1);
  const packed = new Int32Array(N * W);
  const scale = scaleDtype === 'bfloat16' ? new Uint16Array(N * G) : new Float32Array(N * G);
  for (let n = 0; n < N; n++) {
    const row = n * K;
    for (let gi = 0; gi < G; gi++) {
      const k0 = gi * g;
      const k1 = Math.min(K, k0 + g);
      let amax = 0;
      for (let k = k0; k < k1; k++) amax = Math.max(amax, Math.abs(w[row + k] as number));
      if (!Number.isFinite(amax)) throw new Error(`quantizeWeight: row ${n} has a non-finite value; cannot quantise`);
      let s = amax / qmax;
      if (scaleDtype === 'bfloat16') {
        const bits16 = f32ToBf16(s);
        scale[n * G + gi] = bits16;
        s = bf16ToF32(bits16);
      } else {
        s = Math.fround(s);
        scale[n * G + gi] = s;
      }
      const inv = s > 0 ? 1 / s : 0;
      // Word index and bit position advance with k (no division per value).
      let wi = n * W + Math.floor(k0 / per);
      let shift = bits * (k0 % per);
      let word = packed[wi] as number;
      for (let k = k0; k < k1; k++) {
        let q = Math.round((w[row + k] as number) * inv);
        q = Math.max(-qmax, Math.min(qmax, q));
        word |= (q + offset) << shift;
        shift += bits;
        if (shift === 32) {
          packed[wi++] = word;
          word = packed[wi] ?? 0;
          shift = 0;
        }
      }
      if (shift !== 0) packed[wi] = word;
    }
  }
  return {
    packed: fromArray(packed, [N, W], 'int32'),
    scale: fromArray(scale, [N, G], scaleDtype),
    bits,
    groupSize: g,
    inFeatures: K,
  };
}

/** Checks a quantised weight's parts against each other; returns [N, K]. */
export function checkQuantized(q: QuantizedWeight, what = 'quantized weight'): [number, number] {
  const { packed, scale, bits, groupSize, inFeatures: K } = q;
  if (bits !== 4 && bits !== 8) throw new Error(`${what}: bits must be 4 or 8, got ${bits}`);
  if (packed.dtype !== 'int32' || packed.ndim !== 2)
    throw new Error(`${what}: weight_packed must be int32 [out, words], got ${packed.dtype} ${fmt(packed.shape)}`);
  const N = packed.shape[0] as number;
  if (packed.shape[1] !== packedWords(K, bits))
    throw new Error(
      `${what}: weight_packed ${fmt(packed.shape)} holds ${(packed.shape[1] as number) * (32 / bits)} ${bits}-bit values per row, expected ${packedWords(K, bits)} words for ${K} inputs`,
    );
  if (!Number.isInteger(groupSize) || groupSize <= 0) throw new Error(`${what}: invalid group size ${groupSize}`);
  const G = Math.ceil(K / groupSize);
  if (
    scale.ndim !== 2 ||
    scale.shape[0] !== N ||
    scale.shape[1] !== G ||
    !['float32', 'bfloat16'].includes(scale.dtype)
  )
    throw new Error(
      `${what}: weight_scale must be float [${N}, ${G}] for ${K} inputs in groups of ${groupSize}, got ${scale.dtype} ${fmt(scale.shape)}`,
    );
  return [N, K];
}

/** The float32 [N, K] weight a quantised one stands for. */
export function dequantizeWeight(q: QuantizedWeight): Tensor {
  const [N, K] = checkQuantized(q);
  const packed = q.packed.contiguous().buf('dequantizeWeight') as Int32Array;
  const sc = q.scale.contiguous().buf('dequantizeWeight');
  const bf16 = q.scale.dtype === 'bfloat16';
  const per = 32 / q.bits;
  const W = packedWords(K, q.bits);
  const G = Math.ceil(K / q.groupSize);
  const mask = (1 << q.bits) - 1;
  const offset = 1 << (q.bits - 1);
  const out = new Float32Array(N * K);
  for (let n = 0; n < N; n++)
    for (let k = 0; k < K; k++) {
      const word = packed[n * W + Math.floor(k / per)] as number;
      const si = n * G + Math.floor(k / q.groupSize);
      const s = bf16 ? bf16ToF32(sc[si] as number) : (sc[si] as number);
      out[n * K + k] = (((word >>> (q.bits * (k % per))) & mask) - offset) * s;
    }
  return fromArray(out, [N, K], 'float32');
}

/** Rows up to which quantLinear quantises its input to int8 (the decode shapes; prefill keeps float inputs). */
export const QUANT_ACT_MAX_ROWS = 8;

let actMode: 'int8' | 'float' = process.env.GLMV_QUANT_ACTIVATIONS === 'float' ? 'float' : 'int8';

/**
 * Whether quantLinear quantises decode-shaped inputs to int8 ('int8', the default: integer dot products, VNNI on
 * the native backend) or multiplies them as they are ('float': bf16-rounded x on AVX512-BF16 CPUs, float32
 * elsewhere). `GLMV_QUANT_ACTIVATIONS=float` in the environment starts a process in 'float'. Returns the old mode.
 */
export function setQuantActivations(mode: 'int8' | 'float'): 'int8' | 'float' {
  if (mode !== 'int8' && mode !== 'float')
    throw new Error(`setQuantActivations: expected 'int8' or 'float', got ${String(mode)}`);
  const old = actMode;
  actMode = mode;
  return old;
}

/**
 * The activation group quantLinear uses for a weight of group size `groupSize` over K inputs (groupSize ≥ K: one
 * scale per output channel): 128 inputs, or the weight group itself where it is under 128 or does not split into
 * 128s — so each activation group lies inside one weight group and keeps its own scale (per-token scales would let
 * one large activation flatten the rest of its row).
 */
export function activationGroup(groupSize: number, K: number): number {
  if (groupSize <= 128) return groupSize;
  if (groupSize % 128 === 0 || groupSize >= K) return 128;
  return groupSize;
}

/**
 * y = x · dequant(W)ᵀ + b for a quantised W [N, K]; x [..., K] float (float32 compute), y float32. Up to
 * QUANT_ACT_MAX_ROWS rows (decode), x is quantised to int8 per row and `activationGroup` inputs first (see
 * `setQuantActivations`; the math is `QuantMatmulArgs.actGroup`'s); more rows multiply x as it is.
 */
export function quantLinear(x: Tensor, q: QuantizedWeight, bias?: Tensor | null): Tensor {
  const [N, K] = checkQuantized(q, 'quantLinear');
  x.assertAlive('quantLinear');
  if (x.shape[x.ndim - 1] !== K)
    throw new Error(`quantLinear: input ${fmt(x.shape)} has ${x.shape[x.ndim - 1]} features, the weight expects ${K}`);
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== N))
    throw new Error(`quantLinear: bias ${fmt(bias.shape)} does not match ${N} outputs`);
  const dtype: DType = x.dtype === 'float64' ? 'float64' : 'float32';
  const lead = x.shape.slice(0, -1);
  const M = x.size / K;
  const x2 = contiguous(x.dtype === dtype ? reshape(x, [M, K]) : cast(reshape(x, [M, K]), dtype));
  const b = bias ? contiguous(bias.dtype === dtype ? bias : cast(bias, dtype)) : null;
  const out = empty([M, N], dtype);
  const args: QuantMatmulArgs = {
    x: x2.buf('quantLinear'),
    M,
    K,
    N,
    packed: q.packed.contiguous().buf('quantLinear') as Int32Array,
    bits: q.bits,
    scale: q.scale.contiguous().buf('quantLinear'),
    scaleDtype: q.scale.dtype as 'float32' | 'bfloat16',
    groupSize: q.groupSize,
    bias: b ? b.buf('quantLinear') : null,
    out: out.buf('quantLinear'),
    actGroup: actMode === 'int8' && M <= QUANT_ACT_MAX_ROWS ? activationGroup(q.groupSize, K) : null,
  };
  if (M > 0) be('qmatmul', dtype).qmatmul(dtype, args);
  const y = record(out, 'quantLinear', bias ? [x, bias] : [x], (g) => [
    x.requiresGrad ? reshape(matmul(g, cast(dequantizeWeight(q), g.dtype)), x.shape) : null,
    bias?.requiresGrad ? sumTo(g, [N]) : null,
  ]);
  return reshape(y, [...lead, N]);
}
