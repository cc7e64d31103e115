/**
 * The GLM-4.1V / GLM-4.5V vision tower (docs/design.md A; both models share it). Field names are the checkpoint names under
 * `model.visual.`:
 *   patch_embed.proj (Conv3d 3→C, kernel = stride = (2,14,14)) → post_conv_layernorm (RMSNorm)
 *   + embeddings.position_embedding resampled bicubically to each grid (grid_sample, align_corners=False, border)
 *   → blocks[i] {norm1, attn.qkv, attn.proj, norm2, mlp.gate/up/down (width out_hidden_size)}
 *   → post_layernorm → downsample (Conv2d C→out, 2×2) → merger {proj, post_projection_norm (LayerNorm), GELU,
 *     gate/up/down (width intermediate_size)}.
 * Attention is bidirectional and confined to each temporal slice of each image or video (block-diagonal segments).
 */
import {
  Embedding,
  F,
  fromArray,
  isGradEnabled,
  LayerNorm,
  Linear,
  Module,
  RMSNorm,
  scope,
  type Tensor,
} from '../engine/index.js';
import type { VisionConfig } from './config.js';
import { activation, GatedMlp, type ParamFactory, PatchConv, rowChunked } from './modules.js';
import {
  checkGrids,
  type Grid,
  positionTableCoords,
  type VisionLayout,
  visionLayout,
  visionRopeTables,
} from './rope.js';

/**
 * side×side rows of 2-D sine-cosine position codes, `dim` wide: the first half codes the row, the second the column,
 * each as sin/cos pairs over geometric frequencies (1 … 1/10000).
 */
export function sinCos2d(side: number, dim: number): Float32Array {
  if (dim % 4 !== 0) throw new Error(`sinCos2d: the width must be a multiple of 4, got ${dim}`);
  const out = new Float32Array(side * side * dim);
  const q = dim / 4;
  for (let r = 0; r < side; r++)
    for (let c = 0; c < side; c++)
      for (let k = 0; k < q; k++) {
        const f = 10000 ** (-k / q);
        const o = (r * side + c) * dim;
        out[o + k] = Math.sin(r * f);
        out[o + q + k] = Math.cos(r * f);
        out[o + 2 * q + k] = Math.sin(c * f);
        out[o + 3 * q + k] = Math.cos(c * f);
      }
  return out;
}

export class Glm4vVisionEmbeddings extends Module {
  position_embedding: Embedding;
  constructor(
    private readonly cfg: VisionConfig,
    pf: ParamFactory,
  ) {
    super();
    const side = cfg.imageSize / cfg.patchSize;
    this.position_embedding = new Embedding(side * side, cfg.hiddenSize, { init: pf });
  }

  /**
   * Sets the table to fixed 2-D sine-cosine codes (half the width for the row, half for the column; as ViTs trained
   * from scratch start): at the usual small random init the codes are ~50× weaker than the patch features, so a model
   * from scratch cannot tell two tokens of the same content apart by where they are. A from-scratch option only.
   */
  initSinCos(): void {
    const side = this.cfg.imageSize / this.cfg.patchSize;
    this.position_embedding.weight.copy_(
      fromArray(sinCos2d(side, this.cfg.hiddenSize), [side * side, this.cfg.hiddenSize]),
    );
  }

  /**
   * The learned side×side table resampled to every row's own grid (bicubic, align_corners=False, border), in
   * float32: [N, hidden], added to the patch embeddings after the post-conv norm.
   */
  forward(layout: VisionLayout): Tensor {
    const side = this.cfg.imageSize / this.cfg.patchSize;
    const table = F.reshape(this.position_embedding.weight, [side, side, this.cfg.hiddenSize]);
    const { gx, gy } = positionTableCoords(layout);
    return F.gridSampleBicubic(table, gx, gy);
  }
}

export class Glm4vVisionPatchEmbed extends Module {
  proj: PatchConv;
  constructor(cfg: VisionConfig, pf: ParamFactory) {
    super();
    this.proj = new PatchConv(
      cfg.inChannels,
      cfg.hiddenSize,
      [cfg.temporalPatchSize, cfg.patchSize, cfg.patchSize],
      pf,
    );
  }
}

export class Glm4vVisionAttention extends Module {
  qkv: Linear;
  proj: Linear;
  constructor(
    private readonly cfg: VisionConfig,
    pf: ParamFactory,
  ) {
    super();
    this.qkv = new Linear(cfg.hiddenSize, 3 * cfg.hiddenSize, { bias: cfg.attentionBias, init: pf });
    this.proj = new Linear(cfg.hiddenSize, cfg.hiddenSize, { bias: false, init: pf });
  }

  /** x [N, C]; cos/sin [1, N, D/2]; segments = cu_seqlens. */
  forward(x: Tensor, cos: Tensor, sin: Tensor, segments: readonly number[]): Tensor {
    const N = x.shape[0] as number;
    const { numHeads: H, headDim: D, hiddenSize: C } = this.cfg;
    const qkv = F.reshape(this.qkv.forward(x), [1, N, 3, H, D]);
    // Views with contiguous [H, D] inner dims: rotary and attention read them without a transpose.
    const q = F.applyRotary(qkv.select(2, 0), cos, sin, { interleaved: false });
    const k = F.applyRotary(qkv.select(2, 1), cos, sin, { interleaved: false });
    const v = qkv.select(2, 2);
    const o = F.attention(q, k, v, { causal: false, cuSeqlens: segments });
    return this.proj.forward(F.reshape(o, [N, C]));
  }
}

export class Glm4vVisionBlock extends Module {
  norm1: RMSNorm;
  norm2: RMSNorm;
  attn: Glm4vVisionAttention;
  mlp: GatedMlp;
  constructor(cfg: VisionConfig, pf: ParamFactory) {
    super();
    this.norm1 = new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, { init: pf });
    this.norm2 = new RMSNorm(cfg.hiddenSize, cfg.rmsNormEps, { init: pf });
    this.attn = new Glm4vVisionAttention(cfg, pf);
    // The block MLP's width is out_hidden_size (reference quirk, kept by the checkpoints).
    this.mlp = new GatedMlp(cfg.hiddenSize, cfg.outHiddenSize, cfg.hiddenAct, pf);
  }
  forward(x: Tensor, cos: Tensor, sin: Tensor, segments: readonly number[]): Tensor {
    const h = F.add(x, this.attn.forward(this.norm1.forward(x), cos, sin, segments));
    return F.add(h, this.mlp.forward(this.norm2.forward(h)));
  }
}

export class Glm4vVisionPatchMerger extends Module {
  proj: Linear;
  post_projection_norm: LayerNorm;
  gate_proj: Linear;
  up_proj: Linear;
  down_proj: Linear;
  private readonly act: (x: Tensor) => Tensor;
  constructor(cfg: VisionConfig, pf: ParamFactory) {
    super();
    const d = cfg.outHiddenSize;
    this.proj = new Linear(d, d, { bias: false, init: pf });
    this.post_projection_norm = new LayerNorm(d, 1e-5, { init: pf });
    this.gate_proj = new Linear(d, cfg.intermediateSize, { bias: false, init: pf });
    this.up_proj = new Linear(d, cfg.intermediateSize, { bias: false, init: pf });
    this.down_proj = new Linear(cfg.intermediateSize, d, { bias: false, init: pf });
    this.act = activation(cfg.hiddenAct);
  }
  forward(x: Tensor): Tensor {
    return rowChunked(x, (t) => {
      const h = F.gelu(this.post_projection_norm.forward(this.proj.forward(t)), 'none');
      return this.down_proj.forward(F.mul(this.act(this.gate_proj.forward(h)), this.up_proj.forward(h)));
    });
  }
}

export class Glm4vVisionModel extends Module {
  embeddings: Glm4vVisionEmbeddings;
  patch_embed: Glm4vVisionPatchEmbed;
  blocks: Glm4vVisionBlock[];
  merger: Glm4vVisionPatchMerger;
  post_conv_layernorm: RMSNorm;
  downsample: PatchConv;
  post_layernorm: RMSNorm;

  constructor(
    readonly config: VisionConfig,
    pf: ParamFactory,
  ) {
    super();
    const c = config;
    this.embeddings = new Glm4vVisionEmbeddings(c, pf);
    this.patch_embed = new Glm4vVisionPatchEmbed(c, pf);
    this.blocks = Array.from({ length: c.depth }, () => new Glm4vVisionBlock(c, pf));
    this.merger = new Glm4vVisionPatchMerger(c, pf);
    this.post_conv_layernorm = new RMSNorm(c.hiddenSize, c.rmsNormEps, { init: pf });
    this.downsample = new PatchConv(c.hiddenSize, c.outHiddenSize, [c.spatialMergeSize, c.spatialMergeSize], pf);
    this.post_layernorm = new RMSNorm(c.hiddenSize, c.rmsNormEps, { init: pf });
  }

  /** Values per pixel row: channels · temporal patch · patch². */
  get rowSize(): number {
    const c = this.config;
    return c.inChannels * c.temporalPatchSize * c.patchSize * c.patchSize;
  }

  /**
   * pixel rows [N, C·T·P·P] (processor order) with their grids → one feature row per merged 2×2 window
   * [N / merge², out_hidden_size], in the same order as the `<|image|>` tokens of the prompt.
   * A grid with t > 1 (a video) is treated as t one-frame grids, as the reference does for videos.
   */
  forward(pixelValues: Tensor | Float32Array, grids: readonly Grid[], what = 'grid_thw'): Tensor {
    const c = this.config;
    const K = this.rowSize;
    const px = pixelValues instanceof Float32Array ? rowsFromArray(pixelValues, K, what) : pixelValues;
    if (px.ndim !== 2 || px.shape[1] !== K)
      throw new Error(`vision: pixel values must be [patches, ${K}] rows, got [${px.shape}]`);
    checkGrids(grids, c.spatialMergeSize, what);
    const slices: Grid[] = [];
    for (const g of grids) for (let t = 0; t < (g[0] as number); t++) slices.push([1, g[1] as number, g[2] as number]);
    const layout = visionLayout(slices, c.spatialMergeSize, what);
    const N = layout.hpos.length;
    if (px.shape[0] !== N)
      throw new Error(
        `vision: ${what} ${JSON.stringify(grids)} describes ${N} patches but the pixel values have ${px.shape[0]} rows`,
      );
    if (N === 0) throw new Error(`vision: no patches (${what} is empty)`);

    let x = this.post_conv_layernorm.forward(this.patch_embed.proj.forwardRows(px));
    x = F.add(x, this.embeddings.forward(layout));

    const { cos, sin } = visionRopeTables(layout, c.headDim, c.ropeTheta);
    const grad = isGradEnabled();
    for (const blk of this.blocks) {
      const h = x;
      // Inference frees each block's intermediates at once (large images have ~10⁵ patches).
      x = grad ? blk.forward(h, cos, sin, layout.cuSeqlens) : scope(() => blk.forward(h, cos, sin, layout.cuSeqlens));
    }
    x = this.post_layernorm.forward(x);

    // Four consecutive rows are one merge window (mh, mw); the 2×2 conv reads them in (channel, mh, mw) order.
    const m2 = c.spatialMergeSize * c.spatialMergeSize;
    const windows = F.reshape(F.contiguous(F.permute(F.reshape(x, [N / m2, m2, c.hiddenSize]), [0, 2, 1])), [
      N / m2,
      c.hiddenSize * m2,
    ]);
    return this.merger.forward(this.downsample.forwardRows(windows));
  }
}

function rowsFromArray(a: Float32Array, K: number, what: string): Tensor {
  if (a.length % K !== 0)
    throw new Error(`vision: pixel values for ${what} hold ${a.length} values, not a whole number of ${K}-value rows`);
  return fromArray(a, [a.length / K, K]);
}
