/**
 * Named configs: the released GLM-4.1V-9B-Thinking and GLM-4.5V (docs/design.md E), which share one vision tower and
 * differ in its merger width, and `tinyConfig`, the small models of tests and CPU training. Each goes through
 * `parseConfig`, so a preset is checked like any `config.json`.
 */
import { type Glm4vConfig, type ModelType, parseConfig } from './config.js';

type Json = Record<string, unknown>;

/**
 * The vision tower both releases share (a 24-block ViT at 1536 wide, 14-pixel patches, 2×2 merge into the 4096-wide
 * text stream); only the merger's MLP width differs, and it is the text model's `intermediate_size`.
 */
function releaseVisionConfig(mergerIntermediateSize: number): Json {
  return {
    depth: 24,
    hidden_size: 1536,
    num_heads: 12,
    patch_size: 14,
    temporal_patch_size: 2,
    spatial_merge_size: 2,
    image_size: 336,
    out_hidden_size: 4096,
    intermediate_size: mergerIntermediateSize,
  };
}

/** GLM-4.1V-9B-Thinking (docs/design.md E). */
export function glm41v9bConfig(): Glm4vConfig {
  return parseConfig(
    {
      architectures: ['Glm4vForConditionalGeneration'],
      model_type: 'glm4v',
      text_config: {
        vocab_size: 151552,
        hidden_size: 4096,
        intermediate_size: 13696,
        num_hidden_layers: 40,
        num_attention_heads: 32,
        num_key_value_heads: 2,
        partial_rotary_factor: 0.5,
        rope_theta: 10000,
        rope_scaling: { type: 'default', mrope_section: [8, 12, 12] },
        rms_norm_eps: 1e-5,
        max_position_embeddings: 65536,
      },
      vision_config: releaseVisionConfig(13696),
      eos_token_id: [151329, 151336, 151338, 151348],
      pad_token_id: 151329,
      torch_dtype: 'bfloat16',
    },
    'preset glm-4.1v-9b',
  );
}

/** GLM-4.5V (106B-A12B; docs/design.md E). */
export function glm45vConfig(): Glm4vConfig {
  return parseConfig(
    {
      architectures: ['Glm4vMoeForConditionalGeneration'],
      model_type: 'glm4v_moe',
      text_config: {
        vocab_size: 151552,
        hidden_size: 4096,
        intermediate_size: 10944,
        num_hidden_layers: 46,
        num_attention_heads: 96,
        num_key_value_heads: 8,
        head_dim: 128,
        partial_rotary_factor: 0.5,
        rope_theta: 10000,
        rope_scaling: { type: 'default', mrope_section: [8, 12, 12] },
        rms_norm_eps: 1e-5,
        max_position_embeddings: 65536,
        attention_bias: true,
        n_routed_experts: 128,
        num_experts_per_tok: 8,
        n_shared_experts: 1,
        moe_intermediate_size: 1408,
        n_group: 1,
        topk_group: 1,
        norm_topk_prob: true,
        routed_scaling_factor: 1.0,
        first_k_dense_replace: 1,
      },
      vision_config: releaseVisionConfig(10944),
      eos_token_id: [151329, 151336, 151338],
      pad_token_id: 151329,
      torch_dtype: 'bfloat16',
    },
    'preset glm-4.5v',
  );
}

export interface TinyConfigOptions {
  vocabSize?: number;
  hiddenSize?: number;
  layers?: number;
  heads?: number;
  kvHeads?: number;
  intermediateSize?: number;
  visionDepth?: number;
  visionHidden?: number;
  visionHeads?: number;
  /** Learned position table side in patches (image_size = side · 14). */
  visionTableSide?: number;
  mropeSection?: [number, number, number];
}

/**
 * A small GLM-4.1V-shaped (or 4.5V-shaped) config for tests and training from scratch on a CPU. The special token ids
 * sit at the top of the vocabulary in the real order (begin/end image, begin/end video, image, video), as in the
 * parity fixtures. Defaults equal the fixtures' tiny models.
 */
export function tinyConfig(type: ModelType = 'glm4v', o: TinyConfigOptions = {}): Glm4vConfig {
  const vocab = o.vocabSize ?? 512;
  const hidden = o.hiddenSize ?? 64;
  const heads = o.heads ?? 4;
  const headDim = hidden / heads;
  const section = o.mropeSection ?? defaultMropeSection(headDim / 4);
  const special = vocab - 12;
  const text: Json = {
    vocab_size: vocab,
    hidden_size: hidden,
    intermediate_size: o.intermediateSize ?? 2 * hidden,
    num_hidden_layers: o.layers ?? 2,
    num_attention_heads: heads,
    num_key_value_heads: o.kvHeads ?? Math.max(1, heads / 2),
    head_dim: headDim,
    partial_rotary_factor: 0.5,
    rope_theta: 10000,
    rope_scaling: { type: 'default', mrope_section: section },
    rms_norm_eps: 1e-5,
    max_position_embeddings: 4096,
  };
  if (type === 'glm4v_moe') {
    Object.assign(text, {
      attention_bias: true,
      n_routed_experts: 8,
      num_experts_per_tok: 2,
      n_shared_experts: 1,
      moe_intermediate_size: Math.max(8, hidden / 2),
      n_group: 2,
      topk_group: 1,
      norm_topk_prob: true,
      routed_scaling_factor: 1.0,
      first_k_dense_replace: 1,
    });
  }
  const side = o.visionTableSide ?? 4;
  return parseConfig(
    {
      model_type: type,
      text_config: text,
      vision_config: {
        depth: o.visionDepth ?? 2,
        hidden_size: o.visionHidden ?? hidden / 2,
        num_heads: o.visionHeads ?? 2,
        patch_size: 14,
        temporal_patch_size: 2,
        spatial_merge_size: 2,
        image_size: side * 14,
        out_hidden_size: hidden,
        intermediate_size: Math.round(1.5 * hidden),
      },
      image_start_token_id: special,
      image_end_token_id: special + 1,
      video_start_token_id: special + 2,
      video_end_token_id: special + 3,
      image_token_id: special + 4,
      video_token_id: special + 5,
      tie_word_embeddings: false,
    },
    `tiny ${type}`,
  );
}

/** Splits n frequencies over (T, H, W) in the real model's 8:12:12 proportion, at least one for each axis. */
function defaultMropeSection(n: number): [number, number, number] {
  if (n < 3) throw new Error(`tinyConfig: head_dim / 4 = ${n} frequencies cannot be split over 3 rope axes`);
  const t = Math.max(1, Math.round((n * 8) / 32));
  const h = Math.max(1, Math.round(((n - t) * 12) / 24));
  return [t, h, n - t - h];
}
