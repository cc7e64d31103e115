/** Standard layers. Field names are the HF/PyTorch ones (`weight`, `bias`) so checkpoints load by name. */

import type { DType } from '../dtype.js';
import { conv } from '../ops/conv.js';
import { compare, mul } from '../ops/elementwise.js';
import { embedding } from '../ops/indexing.js';
import { linear } from '../ops/matmul.js';
import { layerNorm, rmsNorm } from '../ops/norm.js';
import { getRng, rand } from '../random.js';
import { type Tensor, zeros } from '../tensor.js';
import { constant_, fanIn, normal_, uniform_ } from './init.js';
import { Module, Parameter } from './module.js';

function param(shape: readonly number[], dtype: DType = 'float32'): Parameter {
  return Parameter.from(zeros(shape, dtype));
}

/**
 * How a layer creates its parameters. The default follows PyTorch (weights and biases U(±1/√fan_in), embeddings
 * N(0, 1), norms 1 and 0); models pass their own (GLM: N(0, initializer_range), or empty placeholders that a
 * checkpoint replaces without ever initialising them).
 */
export interface ParamInit {
  /** A weight matrix, conv kernel or embedding table; fan-in = elements per output row. */
  weight(shape: readonly number[], kind: 'linear' | 'conv' | 'embedding'): Parameter;
  /** A bias of a layer with this fan-in. */
  bias(shape: readonly number[], fanIn: number): Parameter;
  /** A constant-filled parameter (norm weights 1, norm biases 0). */
  constant(shape: readonly number[], value: number): Parameter;
}

/** PyTorch's default initialisation. */
export function torchInit(dtype: DType = 'float32'): ParamInit {
  return {
    weight: (shape, kind) => {
      const p = param(shape, dtype);
      if (kind === 'embedding') return normal_(p, 1) as Parameter;
      const bound = 1 / Math.sqrt(shape.slice(1).reduce((a, b) => a * b, 1));
      return uniform_(p, -bound, bound) as Parameter;
    },
    bias: (shape, fanIn) => uniform_(param(shape, dtype), -1 / Math.sqrt(fanIn), 1 / Math.sqrt(fanIn)) as Parameter,
    constant: (shape, value) => constant_(param(shape, dtype), value) as Parameter,
  };
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
    opts: { bias?: boolean; dtype?: DType; init?: ParamInit } = {},
  ) {
    super();
    checkPositive('Linear', { inFeatures, outFeatures });
    const init = opts.init ?? torchInit(opts.dtype);
    this.weight = init.weight([outFeatures, inFeatures], 'linear');
    this.bias = opts.bias === false ? null : init.bias([outFeatures], inFeatures);
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
    opts: { dtype?: DType; init?: ParamInit } = {},
  ) {
    super();
    checkPositive('Embedding', { numEmbeddings, embeddingDim });
    this.weight = (opts.init ?? torchInit(opts.dtype)).weight([numEmbeddings, embeddingDim], 'embedding');
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
    opts: { init?: ParamInit } = {},
  ) {
    super();
    checkPositive('RMSNorm', { dim });
    this.weight = (opts.init ?? torchInit()).constant([dim], 1);
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
    opts: { elementwiseAffine?: boolean; bias?: boolean; init?: ParamInit } = {},
  ) {
    super();
    checkPositive('LayerNorm', { dim });
    const affine = opts.elementwiseAffine ?? true;
    const init = opts.init ?? torchInit();
    this.weight = affine ? init.constant([dim], 1) : null;
    this.bias = affine && opts.bias !== false ? init.constant([dim], 0) : null;
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
    opts: {
      stride?: number | readonly number[];
      padding?: number | readonly number[];
      bias?: boolean;
      init?: ParamInit;
    } = {},
  ) {
    super();
    checkPositive('Conv', { inChannels, outChannels });
    const nd = kernelSize.length;
    const arg = (v: number | readonly number[] | undefined, d: number) =>
      v === undefined ? new Array(nd).fill(d) : typeof v === 'number' ? new Array(nd).fill(v) : [...v];
    this.stride = arg(opts.stride, 1);
    this.padding = arg(opts.padding, 0);
    const init = opts.init ?? torchInit();
    this.weight = init.weight([outChannels, inChannels, ...kernelSize], 'conv');
    this.bias = opts.bias === false ? null : init.bias([outChannels], fanIn(this.weight));
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
