/** Standard layers. Field names are the HF/PyTorch ones (`weight`, `bias`) so checkpoints load by name. */

import type { DType } from '../dtype.js';
import { conv } from '../ops/conv.js';
import { compare, mul } from '../ops/elementwise.js';
import { embedding } from '../ops/indexing.js';
import { linear } from '../ops/matmul.js';
import { layerNorm, rmsNorm } from '../ops/norm.js';
import { getRng, rand } from '../random.js';
import { fmt } from '../shape.js';
import { type Tensor, zeros } from '../tensor.js';
import { constant_, fanIn, normal_, uniform_ } from './init.js';
import { Module, Parameter } from './module.js';

function param(shape: readonly number[], dtype: DType = 'float32'): Parameter {
  return Parameter.from(zeros(shape, dtype));
}

function checkPositive(name: string, vals: Record<string, number>): void {
  for (const [k, v] of Object.entries(vals)) {
    if (!Number.isInteger(v) || v <= 0) throw new Error(`${name}: ${k} must be a positive integer, got ${v}`);
  }
}

export class Linear extends Module {
  weight: Parameter;
  bias: Parameter | null;
  constructor(
    readonly inFeatures: number,
    readonly outFeatures: number,
    opts: { bias?: boolean; dtype?: DType } = {},
  ) {
    super();
    checkPositive('Linear', { inFeatures, outFeatures });
    this.weight = param([outFeatures, inFeatures], opts.dtype);
    this.bias = opts.bias === false ? null : param([outFeatures], opts.dtype);
    const bound = 1 / Math.sqrt(inFeatures);
    uniform_(this.weight, -bound, bound);
    if (this.bias) uniform_(this.bias, -bound, bound);
  }
  forward(x: Tensor): Tensor {
    return linear(x, this.weight, this.bias);
  }
}

export class Embedding extends Module {
  weight: Parameter;
  constructor(
    readonly numEmbeddings: number,
    readonly embeddingDim: number,
    opts: { dtype?: DType } = {},
  ) {
    super();
    checkPositive('Embedding', { numEmbeddings, embeddingDim });
    this.weight = param([numEmbeddings, embeddingDim], opts.dtype);
    normal_(this.weight, 1);
  }
  forward(ids: Tensor): Tensor {
    return embedding(this.weight, ids);
  }
}

export class RMSNorm extends Module {
  weight: Parameter;
  constructor(
    readonly dim: number,
    readonly eps = 1e-6,
  ) {
    super();
    checkPositive('RMSNorm', { dim });
    this.weight = param([dim]);
    constant_(this.weight, 1);
  }
  forward(x: Tensor): Tensor {
    return rmsNorm(x, this.weight, this.eps);
  }
}

export class LayerNorm extends Module {
  weight: Parameter | null;
  bias: Parameter | null;
  constructor(
    readonly dim: number,
    readonly eps = 1e-5,
    opts: { elementwiseAffine?: boolean; bias?: boolean } = {},
  ) {
    super();
    checkPositive('LayerNorm', { dim });
    const affine = opts.elementwiseAffine ?? true;
    this.weight = affine ? (constant_(param([dim]), 1) as Parameter) : null;
    this.bias = affine && opts.bias !== false ? param([dim]) : null;
  }
  forward(x: Tensor): Tensor {
    return layerNorm(x, this.weight, this.bias, this.eps);
  }
}

/** N-d convolution module (Conv2d when kernel has 2 entries, Conv3d with 3). */
export class ConvNd extends Module {
  weight: Parameter;
  bias: Parameter | null;
  readonly stride: number[];
  readonly padding: number[];
  constructor(
    readonly inChannels: number,
    readonly outChannels: number,
    readonly kernelSize: readonly number[],
    opts: { stride?: number | readonly number[]; padding?: number | readonly number[]; bias?: boolean } = {},
  ) {
    super();
    checkPositive('Conv', { inChannels, outChannels });
    const nd = kernelSize.length;
    const arg = (v: number | readonly number[] | undefined, d: number) =>
      v === undefined ? new Array(nd).fill(d) : typeof v === 'number' ? new Array(nd).fill(v) : [...v];
    this.stride = arg(opts.stride, 1);
    this.padding = arg(opts.padding, 0);
    this.weight = param([outChannels, inChannels, ...kernelSize]);
    this.bias = opts.bias === false ? null : param([outChannels]);
    const bound = 1 / Math.sqrt(fanIn(this.weight));
    uniform_(this.weight, -bound, bound);
    if (this.bias) uniform_(this.bias, -bound, bound);
  }
  forward(x: Tensor): Tensor {
    return conv(x, this.weight, this.bias, { stride: this.stride, padding: this.padding });
  }
}

export class Conv2d extends ConvNd {
  constructor(
    inC: number,
    outC: number,
    kernel: number | readonly [number, number],
    opts: ConstructorParameters<typeof ConvNd>[3] = {},
  ) {
    super(inC, outC, typeof kernel === 'number' ? [kernel, kernel] : kernel, opts);
  }
}

export class Conv3d extends ConvNd {
  constructor(
    inC: number,
    outC: number,
    kernel: number | readonly [number, number, number],
    opts: ConstructorParameters<typeof ConvNd>[3] = {},
  ) {
    super(inC, outC, typeof kernel === 'number' ? [kernel, kernel, kernel] : kernel, opts);
  }
}

/** Inverted dropout driven by the global seeded generator; identity in eval mode. */
export class Dropout extends Module {
  constructor(readonly p = 0.1) {
    super();
    if (!(p >= 0 && p < 1)) throw new Error(`Dropout: p must be in [0, 1), got ${p}`);
  }
  forward(x: Tensor): Tensor {
    if (!this.training || this.p === 0) return x;
    const keep = compare('ge', rand(x.shape, { rng: getRng() }), this.p);
    return mul(mul(x, keep), 1 / (1 - this.p));
  }
}
