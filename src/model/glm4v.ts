/**
 * Glm4vForConditionalGeneration / Glm4vMoeForConditionalGeneration: the vision tower and the text decoder joined
 * (docs/design.md B.3, B.4). Parameter names are the Hugging Face ones (`model.visual.*`, `model.language_model.*`,
 * `lm_head.weight`), so real checkpoints load by name.
 *
 * One forward serves three callers:
 *  - training: labels (HF convention, unshifted, −100 ignored) → mean token loss; packed rows via `cuSeqlens`
 *    (attention and positions per sample, no loss across a boundary) or explicit 3D `positionIds`;
 *  - generation: a `KVCache` (prefill computes 3D positions and rope deltas, later steps use index + delta),
 *    batches with left padding;
 *  - real checkpoints in bf16 (weights stay bf16, activations float32).
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import { type DType, F, fromArray, Module, noGrad, type Parameter, QuantLinear, type Tensor } from '../engine/index.js';
import { Rng } from '../util/rng.js';
import {
  CheckpointReader,
  type LoadOptions,
  type LoadReport,
  loadWeights,
  saveWeights,
  writeTextAtomic,
} from './checkpoint.js';
import { prepareQuantized, readQuantizationConfig, verifyQuantized } from './compressed.js';
import { configJsonText, type Glm4vConfig, loadConfig, validateConfig } from './config.js';
import {
  auxSequences,
  checkSegments,
  deltasOf,
  type Glm4vInputs,
  maskShape,
  toMask,
  toPositions,
  toTokenBatch,
} from './inputs.js';
import { type InitMode, ParamFactory, setParameter } from './modules.js';
import { type Grid, getRopeIndex, IMAGE, type TokenBatch, textRopeTables, tokenTypes, VIDEO } from './rope.js';
import { Glm4vMoeTextMoE, Glm4vTextModel, KVCache, type RouterStats, type TextContext } from './text.js';
import { Glm4vVisionModel } from './vision.js';

export interface Glm4vOutput {
  /** [B, L or logitsToKeep, vocab] float32. */
  logits: Tensor;
  loss?: Tensor;
  /** [3, B, L] positions used. */
  positionIds: Int32Array;
  ropeDeltas: number[];
  hiddenStates?: Tensor[];
  imageEmbeds?: Tensor;
  videoEmbeds?: Tensor;
  routerStats?: RouterStats[];
  /** Mean of the MoE layers' balance losses (unscaled; multiply by router_aux_loss_coef). */
  auxLoss?: Tensor;
}

export interface CreateOptions {
  /** 'normal' (random init, the default) or 'empty' (placeholders for a checkpoint). */
  init?: InitMode;
  dtype?: DType;
  seed?: number;
}

export class Glm4vModel extends Module {
  visual: Glm4vVisionModel;
  language_model: Glm4vTextModel;
  constructor(cfg: Glm4vConfig, text: ParamFactory, vision: ParamFactory) {
    super();
    this.visual = new Glm4vVisionModel(cfg.vision, vision);
    this.language_model = new Glm4vTextModel(cfg.text, cfg.modelType === 'glm4v_moe', text);
  }
}

export class Glm4vForConditionalGeneration extends Module {
  model: Glm4vModel;
  /** Null when the word embeddings are tied (the logits then use embed_tokens); QuantLinear when quantised. */
  lm_head: LmHead | QuantLinear | null;

  constructor(
    readonly config: Glm4vConfig,
    opts: CreateOptions = {},
  ) {
    super();
    validateConfig(config);
    const mode = opts.init ?? 'normal';
    const rng = mode === 'normal' ? new Rng(opts.seed ?? 0) : null;
    const dtype = opts.dtype ?? 'float32';
    const text = new ParamFactory(mode, dtype, rng, config.text.initializerRange);
    const vision = text.withStd(config.vision.initializerRange);
    this.model = new Glm4vModel(config, text, vision);
    this.lm_head = config.tieWordEmbeddings
      ? null
      : new LmHead(text.normal([config.text.vocabSize, config.text.hiddenSize]));
  }

  /** The output projection [vocab, hidden]: lm_head, or the embedding table when tied. */
  get outputWeight(): Parameter {
    if (this.lm_head instanceof QuantLinear)
      throw new Error('lm_head is quantised (int8/int4): it has no float weight; use logitsOf(hidden)');
    return this.lm_head?.weight ?? this.model.language_model.embed_tokens.weight;
  }

  /** Logits of hidden states [.., hidden] through lm_head (quantised or not) or the tied embedding table. */
  logitsOf(hidden: Tensor): Tensor {
    return this.lm_head instanceof QuantLinear ? this.lm_head.forward(hidden) : F.linear(hidden, this.outputWeight);
  }

  /** A randomly initialised model (training from scratch). See modules.ts for the init scheme. */
  static random(config: Glm4vConfig, opts: { seed?: number; dtype?: DType } = {}): Glm4vForConditionalGeneration {
    return createModel(config, { ...opts, init: 'normal' });
  }

  /**
   * Reads `<dir>/config.json` and the weights (single file or sharded). strict (default): every parameter must be
   * present and nothing unknown may remain; lenient: report lists missing/unexpected names and missing parameters get
   * the random init.
   */
  static fromPretrained(
    dir: string,
    opts: LoadOptions & { seed?: number } = {},
  ): { model: Glm4vForConditionalGeneration; config: Glm4vConfig; report: LoadReport } {
    const config = loadConfig(dir);
    // bf16 placeholders: never written, but they halve the address space reserved until the real tensors arrive.
    const model = createModel(config, { init: 'empty', dtype: 'bfloat16' });
    const reader = new CheckpointReader(dir, { mmap: opts.mmap });
    let report: LoadReport;
    try {
      // A compressed-tensors checkpoint: its packed Linear layers become QuantLinear modules, loaded by name.
      const qc = readQuantizationConfig(dir);
      const quantized = qc ? prepareQuantized(model, reader, qc) : undefined;
      const L = config.text.numHiddenLayers;
      report = loadWeights(model, reader, {
        ...opts,
        // GLM-4.5's multi-token-prediction layer (index = num_hidden_layers) is not part of this model.
        ignore: (n) =>
          opts.ignore?.(n) ||
          n.startsWith(`model.language_model.layers.${L}.`) ||
          n.startsWith(`model.layers.${L}.`) ||
          (config.tieWordEmbeddings && n === 'lm_head.weight'),
        keepFloat32: (n) => opts.keepFloat32?.(n) || n.endsWith('e_score_correction_bias'),
      });
      report.mapped = reader.mapped;
      if (quantized) {
        verifyQuantized(model, dir);
        report.quantized = quantized;
      }
    } finally {
      reader.close();
    }
    if (report.missing.length) {
      const anyBf16 = model.namedParameters().some(([n, p]) => !report.missing.includes(n) && p.dtype === 'bfloat16');
      const dtype = opts.dtype && opts.dtype !== 'auto' ? opts.dtype : anyBf16 ? 'bfloat16' : 'float32';
      model.initMissing(report.missing, opts.seed ?? 0, dtype);
    }
    model.eval();
    return { model, config, report };
  }

  /** Writes config.json and the weights (sharded above `shardBytes`) to `dir`. */
  save(dir: string, opts: { shardBytes?: number } = {}): { files: string[]; bytes: number } {
    mkdirSync(dir, { recursive: true });
    const res = saveWeights(this, dir, { shardBytes: opts.shardBytes });
    // The dtype holding most of the weights (a bf16 GLM-4.5V keeps its float32 router biases).
    let bf16 = 0;
    let other = 0;
    for (const [, p] of this.namedParameters())
      if (p.dtype === 'bfloat16') bf16 += p.size;
      else other += p.size;
    writeTextAtomic(
      join(dir, 'config.json'),
      configJsonText(this.config, { torch_dtype: bf16 > other ? 'bfloat16' : 'float32' }),
    );
    return { files: ['config.json', ...res.files], bytes: res.bytes };
  }

  /** Random init (the scheme of `random`) for parameters a lenient load did not find. */
  initMissing(names: readonly string[], seed: number, dtype: DType = 'float32'): void {
    const rng = new Rng(seed);
    const params = new Map(this.namedParameters());
    for (const name of names) {
      const p = params.get(name);
      if (!p) continue;
      const vision = name.startsWith('model.visual.');
      const std = vision ? this.config.vision.initializerRange : this.config.text.initializerRange;
      const router = name.endsWith('e_score_correction_bias');
      const pf = new ParamFactory('normal', router ? 'float32' : dtype, rng, std);
      const isNorm = /(norm\d?|layernorm)\.weight$/.test(name);
      const fresh =
        name.endsWith('.bias') || router
          ? pf.constant(p.shape, 0, p.requiresGrad)
          : isNorm
            ? pf.constant(p.shape, 1, p.requiresGrad)
            : pf.normal(p.shape);
      fresh.requiresGrad = p.requiresGrad;
      setParameter(this, name, fresh);
    }
  }

  /**
   * Auxiliary-loss-free load balancing (DeepSeek-V3; the paper's "loss-free" routing with update rate 1e-3): for
   * every MoE layer in `stats` (from a forward with outputRouterStats), e_score_correction_bias[i] += rate ·
   * sign(mean load − load[i]), so overloaded experts become less likely to be chosen. Returns the layers updated.
   */
  updateRouterBiases(stats: readonly RouterStats[], rate = 1e-3): number {
    if (!(rate >= 0)) throw new Error(`updateRouterBiases: rate must be ≥ 0, got ${rate}`);
    const byLayer = new Map<number, Int32Array>();
    for (const s of stats) {
      const acc = byLayer.get(s.layer);
      if (!acc) byLayer.set(s.layer, Int32Array.from(s.counts));
      else
        s.counts.forEach((c, i) => {
          acc[i]! += c;
        });
    }
    for (const [layer, counts] of byLayer) {
      const mlp = this.model.language_model.layers[layer]?.mlp;
      if (!(mlp instanceof Glm4vMoeTextMoE))
        throw new Error(`updateRouterBiases: layer ${layer} has no MoE router (stats from another model?)`);
      const bias = mlp.gate.e_score_correction_bias;
      if (counts.length !== bias.size)
        throw new Error(
          `updateRouterBiases: layer ${layer} stats cover ${counts.length} experts, the router has ${bias.size}`,
        );
      const mean = counts.reduce((a, b) => a + b, 0) / counts.length;
      const b = bias.toFloat32();
      for (let i = 0; i < b.length; i++) b[i]! += rate * Math.sign(mean - (counts[i] as number));
      bias.copy_(fromArray(b, [b.length]));
    }
    return byLayer.size;
  }

  get gradientCheckpointing(): boolean {
    return this.model.language_model.gradientCheckpointing;
  }
  set gradientCheckpointing(v: boolean) {
    this.model.language_model.gradientCheckpointing = v;
  }

  /** A KV cache sized for this model. */
  newCache(initialCapacity?: number): KVCache {
    return new KVCache(this.config.text.numHiddenLayers, initialCapacity);
  }

  /** Vision features of images: [Σ t·h·w / merge², hidden]. */
  getImageFeatures(pixelValues: Tensor | Float32Array, grids: readonly Grid[]): Tensor {
    return this.model.visual.forward(pixelValues, grids, 'image_grid_thw');
  }

  /** Vision features of videos (each temporal group encoded on its own, as the reference does). */
  getVideoFeatures(pixelValues: Tensor | Float32Array, grids: readonly Grid[]): Tensor {
    return this.model.visual.forward(pixelValues, grids, 'video_grid_thw');
  }

  /** Reference `get_rope_index` for a batch (positions [3, B, L] and rope deltas). */
  getRopeIndex(
    inputIds: Glm4vInputs['inputIds'],
    opts: Pick<Glm4vInputs, 'imageGridThw' | 'videoGridThw' | 'attentionMask' | 'cuSeqlens'> = {},
  ): { positionIds: Int32Array; ropeDeltas: number[] } {
    const tokens = toTokenBatch(inputIds, 'inputIds');
    const mask = opts.attentionMask ? toMask(opts.attentionMask, tokens.batch, tokens.length, 'attentionMask') : null;
    return getRopeIndex(tokens, {
      imageGridThw: opts.imageGridThw,
      videoGridThw: opts.videoGridThw,
      attentionMask: mask,
      segments: opts.cuSeqlens,
      spatialMergeSize: this.config.vision.spatialMergeSize,
      tokens: this.config,
    });
  }

  forward(input: Glm4vInputs): Glm4vOutput {
    if (input.cache) return noGrad(() => this.forwardImpl(input));
    return this.forwardImpl(input);
  }

  private forwardImpl(input: Glm4vInputs): Glm4vOutput {
    const cfg = this.config;
    const tokens = toTokenBatch(input.inputIds, 'inputIds');
    const { batch: B, length: L, ids } = tokens;
    const V = cfg.text.vocabSize;
    for (let i = 0; i < ids.length; i++) {
      const v = ids[i] as number;
      if (v < 0 || v >= V)
        throw new Error(
          `inputIds: token id ${v} at [${Math.floor(i / L)}, ${i % L}] is outside the vocabulary [0, ${V})`,
        );
    }
    const cache = input.cache ?? null;
    const past = cache?.length ?? 0;
    if (cache && cache.numLayers !== cfg.text.numHiddenLayers)
      throw new Error(`cache: built for ${cache.numLayers} layers, the model has ${cfg.text.numHiddenLayers}`);
    const cu = input.cuSeqlens ? checkSegments(input.cuSeqlens, L) : null;
    if (cu && cache) throw new Error('cuSeqlens (packed samples) cannot be combined with a KV cache');
    if (input.logitsToKeep !== undefined && (!Number.isInteger(input.logitsToKeep) || input.logitsToKeep < 0))
      throw new Error(`logitsToKeep: expected a non-negative integer, found ${input.logitsToKeep}`);

    // Padding: left padding becomes keyStart; right padding needs nothing (causal); holes are refused.
    const mask = this.resolveMask(input.attentionMask ?? null, B, L, cache);
    if (cu && mask?.some((m) => m === 0)) throw new Error('cuSeqlens (packed samples) cannot be combined with padding');
    let keyStart: Int32Array | null = cache?.keyStart ?? null;
    if (past === 0 && mask) {
      const starts = new Int32Array(B);
      let anyLeft = false;
      for (let b = 0; b < B; b++) {
        const row = mask.subarray(b * L, (b + 1) * L);
        const first = row.indexOf(1);
        const last = row.lastIndexOf(1);
        if (first < 0) throw new Error(`attentionMask: row ${b} has no tokens`);
        for (let l = first; l <= last; l++)
          if (!row[l])
            throw new Error(
              `attentionMask: row ${b} has padding between tokens (position ${l}); only left or right padding is supported`,
            );
        if (last < L - 1 && cache)
          throw new Error(
            `attentionMask: row ${b} is right-padded; with a KV cache new tokens would follow the pads — pad on the left`,
          );
        starts[b] = first;
        if (first > 0) anyLeft = true;
      }
      keyStart = anyLeft ? starts : null;
    }

    // Embeddings and vision splicing.
    const idsT = fromArray(ids, [B, L], 'int32');
    // bf16 checkpoints: the looked-up rows are widened, activations run in float32.
    let embeds = this.model.language_model.embed_tokens.forward(idsT).to('float32');
    const vis = this.spliceVision(embeds, tokens, input, past);
    embeds = vis.embeds;

    // Positions.
    let positionIds: Int32Array;
    let ropeDeltas: number[];
    if (input.positionIds) {
      positionIds = toPositions(input.positionIds, B, L);
      ropeDeltas = deltasOf(positionIds, B, L, past);
    } else if (past > 0) {
      const deltas = cache!.ropeDeltas ?? new Array(B).fill(0);
      positionIds = new Int32Array(3 * B * L);
      for (let b = 0; b < B; b++)
        for (let l = 0; l < L; l++) {
          const p = past + l + (deltas[b] as number);
          for (let a = 0; a < 3; a++) positionIds[a * B * L + b * L + l] = p;
        }
      ropeDeltas = [...deltas];
    } else {
      ({ positionIds, ropeDeltas } = getRopeIndex(tokens, {
        imageGridThw: input.imageGridThw,
        videoGridThw: input.videoGridThw,
        attentionMask: mask,
        segments: cu,
        spatialMergeSize: cfg.vision.spatialMergeSize,
        tokens: cfg,
      }));
    }
    if (cache && past === 0) {
      cache.ropeDeltas = ropeDeltas;
      cache.keyStart = keyStart;
    }

    const t = cfg.text;
    const { cos, sin } = textRopeTables(positionIds, B, L, t.rotaryDim, t.ropeTheta, t.mropeSection);
    const wantStats = !!(input.outputRouterStats || input.auxLoss) && !!t.moe;
    const ctx: TextContext = {
      cos,
      sin,
      cuSeqlens: cu,
      keyStart,
      cache,
      routerStats: wantStats ? [] : null,
      auxSequences: input.auxLoss && t.moe ? auxSequences(B, L, cu, mask) : null,
    };
    const { hidden, hiddenStates } = this.model.language_model.forward(embeds, ctx, !!input.outputHiddenStates);
    cache?.advance(L, B);

    const keepN = input.logitsToKeep ?? 0;
    if (keepN > 0 && input.labels) throw new Error('labels need logits for every position; do not set logitsToKeep');
    const h = keepN > 0 && keepN < L ? hidden.slice(1, L - keepN, L) : hidden;
    const logits = this.logitsOf(h);

    const out: Glm4vOutput = { logits, positionIds, ropeDeltas };
    if (hiddenStates) out.hiddenStates = hiddenStates;
    if (vis.image) out.imageEmbeds = vis.image;
    if (vis.video) out.videoEmbeds = vis.video;
    if (ctx.routerStats) {
      out.routerStats = ctx.routerStats;
      const losses = ctx.routerStats.map((s) => s.auxLoss).filter((x): x is Tensor => !!x);
      if (losses.length)
        out.auxLoss = F.div(
          losses.reduce((a, b) => F.add(a, b)),
          losses.length,
        );
    }
    if (input.labels) out.loss = this.loss(logits, input, B, L, mask, cu);
    return out;
  }

  private resolveMask(m: Glm4vInputs['attentionMask'], B: number, L: number, cache: KVCache | null): Uint8Array | null {
    if (!m) return null;
    const past = cache?.length ?? 0;
    if (past === 0) return toMask(m, B, L, 'attentionMask');
    // Decode step: the mask may cover past + new positions; its zeros must be the left pads recorded at prefill.
    const shape = maskShape(m);
    const width = shape[1];
    if (shape[0] !== B || (width !== past + L && width !== L))
      throw new Error(`attentionMask: expected [${B}, ${past + L}] (past + new) or [${B}, ${L}], got [${shape}]`);
    const full = toMask(m, B, width, 'attentionMask');
    for (let b = 0; b < B; b++) {
      const ks = width === past + L ? (cache?.keyStart?.[b] ?? 0) : 0;
      for (let l = 0; l < width; l++) {
        const expect = l < ks ? 0 : 1;
        if (full[b * width + l] !== expect)
          throw new Error(
            `attentionMask: row ${b} position ${l} is ${full[b * width + l]}, but with a KV cache only the left padding of the prefill (first ${ks}) may be 0`,
          );
      }
    }
    return null;
  }

  /** Embeddings with image/video features written over the `<|image|>` positions (images outside video spans). */
  private spliceVision(
    embeds: Tensor,
    tokens: TokenBatch,
    input: Glm4vInputs,
    past: number,
  ): { embeds: Tensor; image?: Tensor; video?: Tensor } {
    const cfg = this.config;
    const { batch: B, length: L, ids } = tokens;
    const imgPos: number[] = [];
    const vidPos: number[] = [];
    for (let b = 0; b < B; b++) {
      const types = tokenTypes(ids, cfg, b * L, (b + 1) * L);
      for (let l = 0; l < L; l++) {
        if (types[l] === IMAGE) imgPos.push(b * L + l);
        else if (types[l] === VIDEO) vidPos.push(b * L + l);
      }
    }
    const hasImg = !!(input.pixelValues || input.imageEmbeds);
    const hasVid = !!(input.pixelValuesVideos || input.videoEmbeds);
    if (past > 0 && (hasImg || hasVid))
      throw new Error('pixel values go with the first forward (prefill) of a KV cache, not with decode steps');
    if (input.pixelValues && !input.imageGridThw) throw new Error('pixelValues need imageGridThw');
    if (input.pixelValuesVideos && !input.videoGridThw) throw new Error('pixelValuesVideos need videoGridThw');
    let image: Tensor | undefined;
    let video: Tensor | undefined;
    if (hasImg) image = input.imageEmbeds ?? this.getImageFeatures(input.pixelValues!, input.imageGridThw!);
    if (hasVid) video = input.videoEmbeds ?? this.getVideoFeatures(input.pixelValuesVideos!, input.videoGridThw!);
    if (past === 0) {
      const check = (what: string, positions: number[], feats: Tensor | undefined, grids?: readonly Grid[] | null) => {
        const n = feats ? (feats.shape[0] as number) : 0;
        if (positions.length !== n) {
          const src = feats
            ? `the vision features have ${n} rows${grids ? ` (grids ${JSON.stringify(grids)})` : ''}`
            : `no ${what === 'image' ? 'pixelValues/imageEmbeds' : 'pixelValuesVideos/videoEmbeds'} were given`;
          throw new Error(`inputIds contain ${positions.length} ${what} token(s) but ${src}`);
        }
        if (feats && feats.shape[1] !== cfg.text.hiddenSize)
          throw new Error(`${what} features must be [tokens, ${cfg.text.hiddenSize}], got [${feats.shape}]`);
      };
      check('image', imgPos, image, input.imageGridThw);
      check('video', vidPos, video, input.videoGridThw);
    }
    if (!imgPos.length && !vidPos.length) return { embeds, image, video };
    if (past > 0) return { embeds, image, video };
    // out = embeds · keep + scatter(features): differentiable in both the text embeddings and the vision tower.
    const H = cfg.text.hiddenSize;
    const keep = new Float32Array(B * L).fill(1);
    for (const p of imgPos) keep[p] = 0;
    for (const p of vidPos) keep[p] = 0;
    const flat = F.reshape(embeds, [B * L, H]);
    const feats = [image, video]
      .filter((x): x is Tensor => !!x && x.shape[0]! > 0)
      .map((x) => (x.dtype === 'float32' ? x : x.to('float32')));
    const index = fromArray(
      Int32Array.from([...(image ? imgPos : []), ...(video ? vidPos : [])]),
      [imgPos.length + vidPos.length],
      'int32',
    );
    const spliced = F.add(
      F.mul(flat, fromArray(keep, [B * L, 1])),
      F.indexAdd([B * L, H], 0, index, feats.length === 1 ? feats[0]! : F.concat(feats, 0)),
    );
    return { embeds: F.reshape(spliced, [B, L, H]), image, video };
  }

  private loss(
    logits: Tensor,
    input: Glm4vInputs,
    B: number,
    L: number,
    mask: Uint8Array | null,
    cu: number[] | null,
  ): Tensor {
    const labels = toTokenBatch(input.labels!, 'labels', -100);
    if (labels.batch !== B || labels.length !== L)
      throw new Error(`labels: expected [${B}, ${L}] like inputIds, got [${labels.batch}, ${labels.length}]`);
    const V = this.config.text.vocabSize;
    const starts = new Set(cu ? cu.slice(1, -1) : []);
    const targets = new Int32Array(B * L).fill(-100);
    for (let b = 0; b < B; b++)
      for (let l = 0; l + 1 < L; l++) {
        const j = b * L + l + 1;
        const y = labels.ids[j] as number;
        if (y === -100 || (mask && !mask[j]) || starts.has(l + 1)) continue;
        if (y < 0 || y >= V)
          throw new Error(`labels: value ${y} at [${b}, ${l + 1}] is neither −100 nor a token id in [0, ${V})`);
        targets[b * L + l] = y;
      }
    let weights: Tensor | null = null;
    if (input.labelWeights) {
      const w = input.labelWeights;
      if (w.ndim !== 2 || w.shape[0] !== B || w.shape[1] !== L)
        throw new Error(`labelWeights: expected [${B}, ${L}] like labels, got [${w.shape}]`);
      const src = w.toFloat32();
      const dst = new Float32Array(B * L);
      for (let b = 0; b < B; b++) for (let l = 0; l + 1 < L; l++) dst[b * L + l] = src[b * L + l + 1] as number;
      weights = fromArray(dst, [B, L]);
    }
    return F.crossEntropy(logits, fromArray(targets, [B, L], 'int32'), {
      ignoreIndex: -100,
      weights,
      reduction: input.lossReduction ?? 'mean',
    });
  }
}

/** GLM-4.5V: the same model class with MoE decoder layers; named for clarity at call sites. */
export class Glm4vMoeForConditionalGeneration extends Glm4vForConditionalGeneration {
  constructor(config: Glm4vConfig, opts: CreateOptions = {}) {
    if (config.modelType !== 'glm4v_moe')
      throw new Error(`Glm4vMoeForConditionalGeneration: config model_type is ${config.modelType}, expected glm4v_moe`);
    super(config, opts);
  }
}

/** The right class for a config. */
export function createModel(config: Glm4vConfig, opts: CreateOptions = {}): Glm4vForConditionalGeneration {
  return config.modelType === 'glm4v_moe'
    ? new Glm4vMoeForConditionalGeneration(config, opts)
    : new Glm4vForConditionalGeneration(config, opts);
}

class LmHead extends Module {
  constructor(public weight: Parameter) {
    super();
  }
}
