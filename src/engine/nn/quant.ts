/**
 * QuantLinear: a Linear whose weight is stored quantised (ops/quant.ts). Its parameters carry the compressed-tensors
 * names — `weight_packed`, `weight_scale`, `weight_shape` (and `bias`) — so a pack-quantized checkpoint loads into
 * it by name like any other. Inference only: nothing in it is trainable (gradients still flow to the input).
 */
import { type QuantBits, type QuantizedWeight, quantizeWeight, quantLinear } from '../ops/quant.js';
import { fromArray, type Tensor, zeros } from '../tensor.js';
import type { Linear } from './layers.js';
import { Module, Parameter } from './module.js';

export class QuantLinear extends Module {
  weight_packed: Parameter;
  weight_scale: Parameter;
  /** [out, in] as the checkpoint records it (int64 on disk, int32 here). */
  weight_shape: Parameter;
  bias: Parameter | null;

  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    readonly bits: QuantBits,
    readonly groupSize: number,
    opts: { bias?: boolean; scaleDtype?: 'float32' | 'bfloat16' } = {},
  ) {
    super();
    if (bits !== 4 && bits !== 8) throw new Error(`QuantLinear: bits must be 4 or 8, got ${bits}`);
    if (!Number.isInteger(groupSize) || groupSize <= 0)
      throw new Error(`QuantLinear: group size must be a positive integer, got ${groupSize}`);
    // Zero placeholders (the allocator's zeroed pages are never touched until a checkpoint replaces them).
    this.weight_packed = Parameter.from(zeros([outFeatures, Math.ceil(inFeatures / (32 / bits))], 'int32'), false);
    this.weight_scale = Parameter.from(
      zeros([outFeatures, Math.ceil(inFeatures / groupSize)], opts.scaleDtype ?? 'bfloat16'),
      false,
    );
    this.weight_shape = Parameter.from(fromArray(Int32Array.from([outFeatures, inFeatures]), [2], 'int32'), false);
    this.bias = opts.bias ? Parameter.from(zeros([outFeatures], opts.scaleDtype ?? 'bfloat16'), false) : null;
  }

  /** A quantised copy of a Linear layer. */
  static fromLinear(
    lin: Linear,
    bits: QuantBits,
    groupSize: number | null,
    scaleDtype?: 'float32' | 'bfloat16',
  ): QuantLinear {
    const [N, K] = lin.weight.shape as [number, number];
    const q = quantizeWeight(
      lin.weight,
      bits,
      groupSize,
      scaleDtype ?? (lin.weight.dtype === 'bfloat16' ? 'bfloat16' : 'float32'),
    );
    const out = new QuantLinear(K, N, bits, q.groupSize, {
      bias: lin.bias !== null,
      scaleDtype: q.scale.dtype as 'float32' | 'bfloat16',
    });
    out.weight_packed.dispose();
    out.weight_scale.dispose();
    out.weight_packed = Parameter.from(q.packed, false);
    out.weight_scale = Parameter.from(q.scale, false);
    if (lin.bias && out.bias) {
      out.bias.dispose();
      out.bias = Parameter.from(lin.bias.detach(), false);
    }
    return out;
  }

  get quantized(): QuantizedWeight {
    return {
      packed: this.weight_packed,
      scale: this.weight_scale,
      bits: this.bits,
      groupSize: this.groupSize,
      inFeatures: this.inFeatures,
    };
  }

  forward(x: Tensor): Tensor {
    return quantLinear(x, this.quantized, this.bias);
  }
}
