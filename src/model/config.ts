/**
 * Glm4vConfig / Glm4vMoeConfig: read from a Hugging Face `config.json`, validated, and written back.
 *
 * Layouts found in the wild, all accepted:
 *  - nested (transformers ≥ 4.54): `text_config` and `vision_config` objects; rotary settings either as
 *    `rope_theta` + `partial_rotary_factor` + `rope_scaling.mrope_section` (4.5x) or as one `rope_parameters` object (5.x);
 *  - flat (the first GLM-4.1V uploads): the text fields at the top level next to `vision_config`.
 * Shape fields (sizes, layer and head counts, vocabulary) are required: a config without them is an error, never a
 * silent full-size default. Fields with a fixed meaning in the reference (eps, θ, token ids, …) take its defaults.
 * The named configs (the released models, the tiny ones) are in presets.ts.
 */
import { join } from 'node:path';
import { readRegularFileSync } from '../util/files.js';

export type ModelType = 'glm4v' | 'glm4v_moe';
export type Activation = 'silu' | 'gelu' | 'gelu_pytorch_tanh' | 'relu';

export interface VisionConfig {
  depth: number;
  hiddenSize: number;
  numHeads: number;
  /** hiddenSize / numHeads. */
  headDim: number;
  patchSize: number;
  temporalPatchSize: number;
  spatialMergeSize: number;
  /** The learned position table covers (imageSize / patchSize)² patches. */
  imageSize: number;
  inChannels: number;
  /** LLM hidden size; also the width of the ViT block MLP (an HF naming quirk kept by the checkpoints). */
  outHiddenSize: number;
  /** Width of the merger's SwiGLU. */
  intermediateSize: number;
  rmsNormEps: number;
  hiddenAct: Activation;
  attentionBias: boolean;
  ropeTheta: number;
  initializerRange: number;
}

export interface MoeConfig {
  nRoutedExperts: number;
  numExpertsPerTok: number;
  nSharedExperts: number;
  moeIntermediateSize: number;
  nGroup: number;
  topkGroup: number;
  normTopkProb: boolean;
  routedScalingFactor: number;
  /** Layers [0, firstKDenseReplace) use a dense MLP, the rest MoE. */
  firstKDenseReplace: number;
  routerAuxLossCoef: number;
}

export interface TextConfig {
  vocabSize: number;
  hiddenSize: number;
  intermediateSize: number;
  numHiddenLayers: number;
  numAttentionHeads: number;
  numKeyValueHeads: number;
  headDim: number;
  /** Rotary dims per head = headDim · partialRotaryFactor (the first ones rotate). */
  rotaryDim: number;
  partialRotaryFactor: number;
  ropeTheta: number;
  /** Frequencies per (T, H, W) axis; sums to rotaryDim / 2. */
  mropeSection: [number, number, number];
  rmsNormEps: number;
  maxPositionEmbeddings: number;
  attentionBias: boolean;
  hiddenAct: Activation;
  initializerRange: number;
  /** Present for glm4v_moe. */
  moe: MoeConfig | null;
}

export interface Glm4vConfig {
  modelType: ModelType;
  text: TextConfig;
  vision: VisionConfig;
  imageTokenId: number;
  videoTokenId: number;
  imageStartTokenId: number;
  imageEndTokenId: number;
  videoStartTokenId: number;
  videoEndTokenId: number;
  tieWordEmbeddings: boolean;
  eosTokenId: number[];
  padTokenId: number | null;
  /** Preferred storage dtype recorded in the file (`torch_dtype` / `dtype`), if any. */
  dtype: string | null;
}

type Json = Record<string, unknown>;

class ConfigReader {
  constructor(
    private readonly obj: Json,
    private readonly where: string,
  ) {}

  has(key: string): boolean {
    return this.obj[key] !== undefined && this.obj[key] !== null;
  }

  private fail(key: string, expected: string): never {
    const v = this.obj[key];
    const found = v === undefined ? 'nothing (the field is missing)' : JSON.stringify(v);
    throw new Error(`config ${this.where}.${key}: expected ${expected}, found ${found}`);
  }

  int(key: string, dflt?: number, min = 1): number {
    if (!this.has(key)) {
      if (dflt !== undefined) return dflt;
      this.fail(key, `an integer ≥ ${min}`);
    }
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min) this.fail(key, `an integer ≥ ${min}`);
    return v;
  }

  num(key: string, dflt?: number, positive = true): number {
    if (!this.has(key)) {
      if (dflt !== undefined) return dflt;
      this.fail(key, 'a number');
    }
    const v = this.obj[key];
    if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0))
      this.fail(key, positive ? 'a positive number' : 'a number');
    return v;
  }

  bool(key: string, dflt: boolean): boolean {
    if (!this.has(key)) return dflt;
    const v = this.obj[key];
    if (typeof v !== 'boolean') this.fail(key, 'true or false');
    return v;
  }

  act(key: string, dflt: Activation): Activation {
    if (!this.has(key)) return dflt;
    const v = this.obj[key];
    const ok: Activation[] = ['silu', 'gelu', 'gelu_pytorch_tanh', 'relu'];
    if (v === 'swish') return 'silu';
    if (typeof v !== 'string' || !ok.includes(v as Activation)) this.fail(key, `one of ${ok.join(', ')}`);
    return v as Activation;
  }

  ids(key: string): number[] {
    if (!this.has(key)) return [];
    const v = this.obj[key];
    const list = Array.isArray(v) ? v : [v];
    if (!list.every((x) => Number.isInteger(x) && (x as number) >= 0)) this.fail(key, 'a token id or a list of them');
    return list as number[];
  }
}

const TOKEN_DEFAULTS: Record<ModelType, { image: number; video: number }> = {
  glm4v: { image: 151343, video: 151344 },
  glm4v_moe: { image: 151363, video: 151364 },
};

/** Detects the model type from `model_type` or `architectures`. */
function detectType(raw: Json, where: string): ModelType {
  const mt = raw.model_type;
  if (mt === 'glm4v' || mt === 'glm4v_moe') return mt;
  const arch = Array.isArray(raw.architectures) ? raw.architectures : [];
  if (arch.includes('Glm4vMoeForConditionalGeneration')) return 'glm4v_moe';
  if (arch.includes('Glm4vForConditionalGeneration')) return 'glm4v';
  throw new Error(
    `config ${where}: model_type must be "glm4v" or "glm4v_moe" (or architectures Glm4vForConditionalGeneration / ` +
      `Glm4vMoeForConditionalGeneration), found model_type ${JSON.stringify(mt)} and architectures ${JSON.stringify(raw.architectures ?? null)}`,
  );
}

function asObject(v: unknown, where: string): Json {
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new Error(`config ${where}: expected an object, found ${JSON.stringify(v)}`);
  return v as Json;
}

/** Keys of the top level that belong to the text model in the flat layout. */
const TOP_LEVEL_ONLY = new Set([
  'architectures',
  'model_type',
  'vision_config',
  'text_config',
  'transformers_version',
  'image_token_id',
  'video_token_id',
  'image_start_token_id',
  'image_end_token_id',
  'video_start_token_id',
  'video_end_token_id',
]);

function parseText(raw: Json, type: ModelType, where: string): TextConfig {
  const r = new ConfigReader(raw, where);
  const hiddenSize = r.int('hidden_size');
  const numAttentionHeads = r.int('num_attention_heads');
  const numKeyValueHeads = r.int('num_key_value_heads', numAttentionHeads);
  if (numAttentionHeads % numKeyValueHeads !== 0)
    throw new Error(
      `config ${where}: num_attention_heads (${numAttentionHeads}) must be a multiple of num_key_value_heads (${numKeyValueHeads})`,
    );
  let headDim: number;
  if (type === 'glm4v') {
    // Glm4vTextAttention always uses hidden_size / num_heads; a different head_dim would desync the rotary table.
    if (hiddenSize % numAttentionHeads !== 0)
      throw new Error(
        `config ${where}: hidden_size (${hiddenSize}) must be divisible by num_attention_heads (${numAttentionHeads})`,
      );
    headDim = hiddenSize / numAttentionHeads;
    if (r.has('head_dim') && r.int('head_dim') !== headDim)
      throw new Error(
        `config ${where}.head_dim: GLM-4.1V uses hidden_size / num_attention_heads = ${headDim}, found ${String(raw.head_dim)}`,
      );
  } else {
    if (!r.has('head_dim') && hiddenSize % numAttentionHeads !== 0)
      throw new Error(
        `config ${where}: head_dim is missing and hidden_size (${hiddenSize}) is not divisible by num_attention_heads (${numAttentionHeads})`,
      );
    headDim = r.int('head_dim', hiddenSize / numAttentionHeads);
  }

  // Rotary settings: 5.x `rope_parameters`, else 4.5x `rope_theta` / `partial_rotary_factor` / `rope_scaling`.
  const rp =
    raw.rope_parameters !== undefined && raw.rope_parameters !== null
      ? asObject(raw.rope_parameters, `${where}.rope_parameters`)
      : null;
  const rs =
    raw.rope_scaling !== undefined && raw.rope_scaling !== null
      ? asObject(raw.rope_scaling, `${where}.rope_scaling`)
      : null;
  const ropeSrc = rp ?? rs ?? {};
  const ropeType = ropeSrc.rope_type ?? ropeSrc.type ?? 'default';
  if (ropeType !== 'default' && ropeType !== 'mrope')
    throw new Error(
      `config ${where}: rope type ${JSON.stringify(ropeType)} is not supported (GLM-4.1V/4.5V use "default" multimodal rope)`,
    );
  const rpr = new ConfigReader(ropeSrc, rp ? `${where}.rope_parameters` : `${where}.rope_scaling`);
  const ropeTheta = rp && rpr.has('rope_theta') ? rpr.num('rope_theta') : r.num('rope_theta', 10000);
  const partialRotaryFactor =
    rp && rpr.has('partial_rotary_factor') ? rpr.num('partial_rotary_factor') : r.num('partial_rotary_factor', 0.5);
  if (partialRotaryFactor > 1)
    throw new Error(`config ${where}.partial_rotary_factor: expected a value in (0, 1], found ${partialRotaryFactor}`);
  const rotaryDim = Math.floor(headDim * partialRotaryFactor);
  if (rotaryDim < 2 || rotaryDim % 2 !== 0)
    throw new Error(
      `config ${where}: head_dim ${headDim} × partial_rotary_factor ${partialRotaryFactor} = ${rotaryDim} rotary dims; expected an even number ≥ 2`,
    );
  const ms = ropeSrc.mrope_section ?? [8, 12, 12];
  if (
    !Array.isArray(ms) ||
    ms.length !== 3 ||
    !ms.every((x) => Number.isInteger(x) && (x as number) >= 0) ||
    (ms as number[]).reduce((a, b) => a + b, 0) !== rotaryDim / 2
  ) {
    throw new Error(
      `config ${where}: mrope_section must be three non-negative integers summing to rotary_dim / 2 = ${rotaryDim / 2} ` +
        `(head_dim ${headDim} × partial_rotary_factor ${partialRotaryFactor} / 2), found ${JSON.stringify(ms)}`,
    );
  }

  let moe: MoeConfig | null = null;
  if (type === 'glm4v_moe') {
    const nRoutedExperts = r.int(
      'n_routed_experts',
      r.has('num_local_experts') ? r.int('num_local_experts') : undefined,
    );
    const numExpertsPerTok = r.int('num_experts_per_tok');
    const nGroup = r.int('n_group', 1);
    const topkGroup = r.int('topk_group', 1);
    if (numExpertsPerTok > nRoutedExperts)
      throw new Error(
        `config ${where}: num_experts_per_tok (${numExpertsPerTok}) exceeds n_routed_experts (${nRoutedExperts})`,
      );
    if (nRoutedExperts % nGroup !== 0)
      throw new Error(`config ${where}: n_routed_experts (${nRoutedExperts}) must be divisible by n_group (${nGroup})`);
    if (topkGroup > nGroup) throw new Error(`config ${where}: topk_group (${topkGroup}) exceeds n_group (${nGroup})`);
    if (nGroup > 1 && nRoutedExperts / nGroup < 2)
      throw new Error(
        `config ${where}: grouped routing scores each group by its top-2 experts; groups of ${nRoutedExperts / nGroup} are too small`,
      );
    if (numExpertsPerTok > topkGroup * (nRoutedExperts / nGroup))
      throw new Error(
        `config ${where}: num_experts_per_tok (${numExpertsPerTok}) exceeds the experts in topk_group (${topkGroup}) groups of ${nRoutedExperts / nGroup}`,
      );
    moe = {
      nRoutedExperts,
      numExpertsPerTok,
      nSharedExperts: r.int('n_shared_experts', 1, 0),
      moeIntermediateSize: r.int('moe_intermediate_size'),
      nGroup,
      topkGroup,
      normTopkProb: r.bool('norm_topk_prob', true),
      routedScalingFactor: r.num('routed_scaling_factor', 1),
      firstKDenseReplace: r.int('first_k_dense_replace', 1, 0),
      routerAuxLossCoef: r.num('router_aux_loss_coef', 1e-4, false),
    };
  }

  return {
    vocabSize: r.int('vocab_size'),
    hiddenSize,
    intermediateSize: r.int('intermediate_size'),
    numHiddenLayers: r.int('num_hidden_layers'),
    numAttentionHeads,
    numKeyValueHeads,
    headDim,
    rotaryDim,
    partialRotaryFactor,
    ropeTheta,
    mropeSection: [...(ms as number[])] as [number, number, number],
    rmsNormEps: r.num('rms_norm_eps', 1e-5),
    maxPositionEmbeddings: r.int('max_position_embeddings', 65536),
    attentionBias: type === 'glm4v' ? true : r.bool('attention_bias', true),
    hiddenAct: r.act('hidden_act', 'silu'),
    initializerRange: r.num('initializer_range', 0.02),
    moe,
  };
}

function parseVision(raw: Json, where: string): VisionConfig {
  const r = new ConfigReader(raw, where);
  const hiddenSize = r.int('hidden_size');
  const numHeads = r.has('num_heads') ? r.int('num_heads') : r.int('num_attention_heads');
  if (hiddenSize % numHeads !== 0)
    throw new Error(`config ${where}: hidden_size (${hiddenSize}) must be divisible by num_heads (${numHeads})`);
  const headDim = hiddenSize / numHeads;
  if (headDim % 4 !== 0)
    throw new Error(
      `config ${where}: the 2D rotary splits head_dim ${headDim} into (h, w) halves of cos/sin pairs; it must be divisible by 4`,
    );
  const patchSize = r.int('patch_size', 14);
  const imageSize = r.int('image_size', 336);
  if (imageSize % patchSize !== 0)
    throw new Error(`config ${where}: image_size (${imageSize}) must be a multiple of patch_size (${patchSize})`);
  const rp = raw.rope_parameters ? asObject(raw.rope_parameters, `${where}.rope_parameters`) : {};
  return {
    depth: r.int('depth'),
    hiddenSize,
    numHeads,
    headDim,
    patchSize,
    temporalPatchSize: r.int('temporal_patch_size', 2),
    spatialMergeSize: r.int('spatial_merge_size', 2),
    imageSize,
    inChannels: r.int('in_channels', 3),
    outHiddenSize: r.int('out_hidden_size'),
    intermediateSize: r.int('intermediate_size'),
    rmsNormEps: r.num('rms_norm_eps', 1e-5),
    hiddenAct: r.act('hidden_act', 'silu'),
    attentionBias: r.bool('attention_bias', false),
    ropeTheta: new ConfigReader(rp, `${where}.rope_parameters`).num('rope_theta', 10000),
    initializerRange: r.num('initializer_range', 0.02),
  };
}

/** Validates a parsed HF config object. `where` names the source in error messages. */
export function parseConfig(raw0: unknown, where = 'config.json'): Glm4vConfig {
  const raw = asObject(raw0, where);
  const type = detectType(raw, where);
  let textRaw: Json;
  if (raw.text_config !== undefined && raw.text_config !== null) {
    textRaw = asObject(raw.text_config, `${where} text_config`);
  } else {
    textRaw = {};
    for (const [k, v] of Object.entries(raw)) if (!TOP_LEVEL_ONLY.has(k)) textRaw[k] = v;
  }
  if (raw.vision_config === undefined || raw.vision_config === null)
    throw new Error(`config ${where}: vision_config is missing (a GLM-4.1V/4.5V config has a vision_config object)`);
  const text = parseText(textRaw, type, raw.text_config ? `${where} text_config` : where);
  const vision = parseVision(asObject(raw.vision_config, `${where} vision_config`), `${where} vision_config`);
  if (vision.outHiddenSize !== text.hiddenSize)
    throw new Error(
      `config ${where}: vision_config.out_hidden_size (${vision.outHiddenSize}) must equal the text hidden_size (${text.hiddenSize}); vision tokens are spliced into the text sequence`,
    );
  const top = new ConfigReader(raw, where);
  const tr = new ConfigReader(textRaw, where);
  const tokenIdOr = (key: string, dflt: number) => (top.has(key) ? top.int(key, dflt, 0) : tr.int(key, dflt, 0));
  const cfg: Glm4vConfig = {
    modelType: type,
    text,
    vision,
    imageTokenId: tokenIdOr('image_token_id', TOKEN_DEFAULTS[type].image),
    videoTokenId: tokenIdOr('video_token_id', TOKEN_DEFAULTS[type].video),
    imageStartTokenId: tokenIdOr('image_start_token_id', 151339),
    imageEndTokenId: tokenIdOr('image_end_token_id', 151340),
    videoStartTokenId: tokenIdOr('video_start_token_id', 151341),
    videoEndTokenId: tokenIdOr('video_end_token_id', 151342),
    tieWordEmbeddings: top.has('tie_word_embeddings')
      ? top.bool('tie_word_embeddings', false)
      : tr.bool('tie_word_embeddings', false),
    eosTokenId: top.has('eos_token_id') ? top.ids('eos_token_id') : tr.ids('eos_token_id'),
    padTokenId: top.has('pad_token_id')
      ? top.int('pad_token_id', 0, 0)
      : tr.has('pad_token_id')
        ? tr.int('pad_token_id', 0, 0)
        : null,
    dtype:
      typeof (raw.torch_dtype ?? raw.dtype ?? textRaw.torch_dtype ?? textRaw.dtype) === 'string'
        ? String(raw.torch_dtype ?? raw.dtype ?? textRaw.torch_dtype ?? textRaw.dtype)
        : null,
  };
  validateConfig(cfg);
  return cfg;
}

/** Cross-field checks (also run on configs built in code). */
export function validateConfig(cfg: Glm4vConfig): void {
  const V = cfg.text.vocabSize;
  for (const [k, id] of Object.entries({
    image_token_id: cfg.imageTokenId,
    image_start_token_id: cfg.imageStartTokenId,
    image_end_token_id: cfg.imageEndTokenId,
    video_start_token_id: cfg.videoStartTokenId,
    video_end_token_id: cfg.videoEndTokenId,
  })) {
    if (!Number.isInteger(id) || id < 0 || id >= V)
      throw new Error(`config: ${k} ${id} is outside the vocabulary [0, ${V})`);
  }
  const m = cfg.text.mropeSection;
  if (m[0] + m[1] + m[2] !== cfg.text.rotaryDim / 2)
    throw new Error(`config: mrope_section [${m}] must sum to rotary_dim / 2 = ${cfg.text.rotaryDim / 2}`);
  if (cfg.modelType === 'glm4v_moe' && !cfg.text.moe) throw new Error('config: glm4v_moe needs MoE settings');
  if (cfg.modelType === 'glm4v' && cfg.text.moe) throw new Error('config: glm4v has no MoE settings');
  if (cfg.vision.outHiddenSize !== cfg.text.hiddenSize)
    throw new Error(
      `config: vision outHiddenSize ${cfg.vision.outHiddenSize} must equal text hiddenSize ${cfg.text.hiddenSize}`,
    );
}

/** Reads `<dir>/config.json` (or a path to a JSON file). */
export function loadConfig(pathOrDir: string): Glm4vConfig {
  const path = pathOrDir.endsWith('.json') ? pathOrDir : join(pathOrDir, 'config.json');
  let text: string;
  try {
    text = readRegularFileSync(path);
  } catch (e) {
    throw new Error(`config: cannot read ${path}: ${(e as Error).message}`);
  }
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new Error(`config: ${path} is not valid JSON (${(e as Error).message})`);
  }
  return parseConfig(raw, path);
}

/** HF `config.json` (transformers 4.57 nested layout; transformers 5.x reads it too). */
export function configToJson(cfg: Glm4vConfig): Json {
  const t = cfg.text;
  const v = cfg.vision;
  const arch = cfg.modelType === 'glm4v' ? 'Glm4vForConditionalGeneration' : 'Glm4vMoeForConditionalGeneration';
  const text: Json = {
    model_type: cfg.modelType === 'glm4v' ? 'glm4v_text' : 'glm4v_moe_text',
    vocab_size: t.vocabSize,
    hidden_size: t.hiddenSize,
    intermediate_size: t.intermediateSize,
    num_hidden_layers: t.numHiddenLayers,
    num_attention_heads: t.numAttentionHeads,
    num_key_value_heads: t.numKeyValueHeads,
    head_dim: t.headDim,
    partial_rotary_factor: t.partialRotaryFactor,
    rope_theta: t.ropeTheta,
    rope_scaling: { rope_type: 'default', type: 'default', mrope_section: [...t.mropeSection] },
    rms_norm_eps: t.rmsNormEps,
    max_position_embeddings: t.maxPositionEmbeddings,
    hidden_act: t.hiddenAct,
    initializer_range: t.initializerRange,
    attention_dropout: 0,
    use_cache: true,
    image_token_id: cfg.imageTokenId,
    video_token_id: cfg.videoTokenId,
  };
  if (cfg.modelType === 'glm4v_moe') text.attention_bias = t.attentionBias;
  if (t.moe) {
    Object.assign(text, {
      n_routed_experts: t.moe.nRoutedExperts,
      num_experts_per_tok: t.moe.numExpertsPerTok,
      n_shared_experts: t.moe.nSharedExperts,
      moe_intermediate_size: t.moe.moeIntermediateSize,
      n_group: t.moe.nGroup,
      topk_group: t.moe.topkGroup,
      norm_topk_prob: t.moe.normTopkProb,
      routed_scaling_factor: t.moe.routedScalingFactor,
      first_k_dense_replace: t.moe.firstKDenseReplace,
      router_aux_loss_coef: t.moe.routerAuxLossCoef,
    });
  }
  const out: Json = {
    architectures: [arch],
    model_type: cfg.modelType,
    text_config: text,
    vision_config: {
      model_type: cfg.modelType,
      depth: v.depth,
      hidden_size: v.hiddenSize,
      num_heads: v.numHeads,
      patch_size: v.patchSize,
      temporal_patch_size: v.temporalPatchSize,
      spatial_merge_size: v.spatialMergeSize,
      image_size: v.imageSize,
      in_channels: v.inChannels,
      out_hidden_size: v.outHiddenSize,
      intermediate_size: v.intermediateSize,
      rms_norm_eps: v.rmsNormEps,
      hidden_act: v.hiddenAct,
      attention_bias: v.attentionBias,
      attention_dropout: 0,
      initializer_range: v.initializerRange,
    },
    image_token_id: cfg.imageTokenId,
    video_token_id: cfg.videoTokenId,
    image_start_token_id: cfg.imageStartTokenId,
    image_end_token_id: cfg.imageEndTokenId,
    video_start_token_id: cfg.videoStartTokenId,
    video_end_token_id: cfg.videoEndTokenId,
    tie_word_embeddings: cfg.tieWordEmbeddings,
  };
  if (cfg.eosTokenId.length) out.eos_token_id = cfg.eosTokenId.length === 1 ? cfg.eosTokenId[0] : [...cfg.eosTokenId];
  if (cfg.padTokenId !== null) out.pad_token_id = cfg.padTokenId;
  if (cfg.dtype) out.torch_dtype = cfg.dtype;
  return out;
}

/** Fields the reference declares as floats; its strict config classes reject `1` where `1.0` is expected. */
const FLOAT_KEYS = [
  'rope_theta',
  'partial_rotary_factor',
  'rms_norm_eps',
  'initializer_range',
  'attention_dropout',
  'routed_scaling_factor',
  'router_aux_loss_coef',
];

/** `config.json` text: configToJson with float fields written as floats (`10000.0`), as Python writes them. */
export function configJsonText(cfg: Glm4vConfig, extra: Json = {}): string {
  const text = JSON.stringify({ ...configToJson(cfg), ...extra }, null, 2);
  const re = new RegExp(`("(?:${FLOAT_KEYS.join('|')})": )(-?\\d+)(?=[,\\n}])`, 'g');
  return `${text.replace(re, '$1$2.0')}\n`;
}

/** Parameter count of a config (no allocation). */
export function countParameters(cfg: Glm4vConfig): { vision: number; text: number; lmHead: number; total: number } {
  const v = cfg.vision;
  const t = cfg.text;
  const patch = v.hiddenSize * v.inChannels * v.temporalPatchSize * v.patchSize * v.patchSize + v.hiddenSize;
  const table = (v.imageSize / v.patchSize) ** 2 * v.hiddenSize;
  const block =
    2 * v.hiddenSize +
    v.hiddenSize * 3 * v.hiddenSize +
    (v.attentionBias ? 3 * v.hiddenSize : 0) +
    v.hiddenSize * v.hiddenSize +
    3 * v.hiddenSize * v.outHiddenSize;
  const down = v.outHiddenSize * v.hiddenSize * v.spatialMergeSize ** 2 + v.outHiddenSize;
  const merger = v.outHiddenSize * v.outHiddenSize + 2 * v.outHiddenSize + 3 * v.outHiddenSize * v.intermediateSize;
  const vision = patch + v.hiddenSize + table + v.depth * block + v.hiddenSize + down + merger;
  const H = t.hiddenSize;
  const attn =
    H * t.numAttentionHeads * t.headDim +
    2 * H * t.numKeyValueHeads * t.headDim +
    (t.attentionBias ? (t.numAttentionHeads + 2 * t.numKeyValueHeads) * t.headDim : 0) +
    t.numAttentionHeads * t.headDim * H;
  let layers = 0;
  for (let i = 0; i < t.numHiddenLayers; i++) {
    if (t.moe && i >= t.moe.firstKDenseReplace) {
      const m = t.moe;
      layers +=
        attn +
        2 * H +
        m.nRoutedExperts * H +
        m.nRoutedExperts +
        m.nRoutedExperts * 3 * H * m.moeIntermediateSize +
        3 * H * m.moeIntermediateSize * m.nSharedExperts;
    } else {
      layers += attn + (t.moe ? 2 : 4) * H + 3 * H * t.intermediateSize;
    }
  }
  const text = t.vocabSize * H + layers + H;
  const lmHead = cfg.tieWordEmbeddings ? 0 : t.vocabSize * H;
  return { vision, text, lmHead, total: vision + text + lmHead };
}
