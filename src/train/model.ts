/**
 * The model, tokenizer and processor of a training stage: a fresh GLM-4.1V-shaped (or GLM-4.5V-shaped MoE) model
 * built from `model.arch` with the special-token ids of our own tokenizer, or a checkpoint folder of the previous
 * stage. And the other way: a complete model folder (config.json, safetensors, tokenizer files, chat template,
 * preprocessor configs) that `glmv chat --model DIR` loads.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { AnswerStyle } from '../io/answer/think.js';
import {
  DEFAULT_IMAGE_CONFIG,
  DEFAULT_VIDEO_CONFIG,
  loadPreprocessorConfig,
  loadVideoPreprocessorConfig,
  type VisionProcessorConfig,
} from '../io/processor/config.js';
import { Glm4vProcessor } from '../io/processor/request.js';
import { CHAT_TEMPLATES, type TemplateName } from '../io/template.js';
import { GlmTokenizer } from '../io/tokenizer.js';
import { writeJsonAtomic } from '../model/checkpoint.js';
import { configToJson, countParameters, type Glm4vConfig, loadConfig, parseConfig } from '../model/config.js';
import { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import type { ArchConfig, ModelStageConfig } from './config.js';

/** The chat template family a model type answers in (ChatModel parses replies by the same rule). */
export function templateFor(config: Glm4vConfig): TemplateName {
  return config.modelType === 'glm4v_moe' ? 'glm45v' : 'glm41v';
}

export function styleFor(config: Glm4vConfig): AnswerStyle {
  return config.modelType === 'glm4v_moe' ? 'glm45v' : 'glm41v';
}

/** A HF-layout config for `arch` with the tokenizer's special-token ids. */
export function archConfig(arch: ArchConfig, tokenizer: GlmTokenizer): Glm4vConfig {
  const id = (t: string) => {
    const v = tokenizer.tokenToId(t);
    if (v === undefined)
      throw new Error(
        `model.tokenizer: ${t} is not a token of this tokenizer; a GLM-V model needs the GLM special tokens (train the tokenizer with \`glmv train tokenizer\`)`,
      );
    return v;
  };
  const headDim = arch.hiddenSize / arch.heads;
  // Half the head rotates (partial_rotary_factor 0.5), split over (T, H, W) in the real model's 8:12:12 proportion.
  const n = headDim / 4;
  const t = Math.max(1, Math.round((n * 8) / 32));
  const h = Math.max(1, Math.round(((n - t) * 12) / 24));
  const eos = [...new Set([id('<|endoftext|>'), id('<|user|>'), id('<|observation|>')])];
  const text: Record<string, unknown> = {
    vocab_size: tokenizer.vocabSize,
    hidden_size: arch.hiddenSize,
    intermediate_size: arch.intermediateSize,
    num_hidden_layers: arch.layers,
    num_attention_heads: arch.heads,
    num_key_value_heads: arch.kvHeads,
    head_dim: headDim,
    partial_rotary_factor: 0.5,
    rope_theta: arch.ropeTheta,
    rope_scaling: { type: 'default', mrope_section: [t, h, n - t - h] },
    rms_norm_eps: 1e-5,
    max_position_embeddings: arch.maxPositions,
    initializer_range: arch.initStd,
  };
  if (arch.moe) {
    Object.assign(text, {
      attention_bias: true,
      n_routed_experts: arch.moe.experts,
      num_experts_per_tok: arch.moe.perToken,
      n_shared_experts: arch.moe.shared,
      moe_intermediate_size: arch.moe.intermediateSize,
      n_group: arch.moe.groups,
      topk_group: arch.moe.topkGroups,
      norm_topk_prob: true,
      routed_scaling_factor: 1,
      first_k_dense_replace: arch.moe.firstDense,
    });
  }
  const v = arch.vision;
  return parseConfig(
    {
      model_type: arch.moe ? 'glm4v_moe' : 'glm4v',
      text_config: text,
      vision_config: {
        depth: v.depth,
        hidden_size: v.hiddenSize,
        num_heads: v.heads,
        patch_size: v.patchSize,
        temporal_patch_size: v.temporalPatchSize,
        spatial_merge_size: v.mergeSize,
        image_size: v.imageSize,
        out_hidden_size: arch.hiddenSize,
        intermediate_size: v.intermediateSize,
        initializer_range: arch.initStd,
      },
      image_start_token_id: id('<|begin_of_image|>'),
      image_end_token_id: id('<|end_of_image|>'),
      video_start_token_id: id('<|begin_of_video|>'),
      video_end_token_id: id('<|end_of_video|>'),
      image_token_id: id('<|image|>'),
      video_token_id: id('<|video|>'),
      eos_token_id: eos,
      pad_token_id: id('<|endoftext|>'),
      tie_word_embeddings: arch.tieEmbeddings,
    },
    'model.arch',
  );
}

/** Image and video processor settings for a fresh model: token budgets follow the position table size. */
export function defaultProcessorConfigs(arch: ArchConfig): {
  image: VisionProcessorConfig;
  video: VisionProcessorConfig;
} {
  const v = arch.vision;
  const unit = v.temporalPatchSize * (v.patchSize * v.mergeSize) ** 2; // t·h·w pixels per visual token
  const tableTokens = (v.imageSize / (v.patchSize * v.mergeSize)) ** 2;
  const image: VisionProcessorConfig = {
    ...DEFAULT_IMAGE_CONFIG,
    imageMean: [...DEFAULT_IMAGE_CONFIG.imageMean],
    imageStd: [...DEFAULT_IMAGE_CONFIG.imageStd],
    patchSize: v.patchSize,
    temporalPatchSize: v.temporalPatchSize,
    mergeSize: v.mergeSize,
    minPixels: 4 * unit,
    maxPixels: 4 * tableTokens * unit,
  };
  // Video budget (t·h·w over the whole clip): 16 frames at the table size.
  const video: VisionProcessorConfig = { ...image, maxPixels: 8 * tableTokens * unit, fps: DEFAULT_VIDEO_CONFIG.fps };
  return { image, video };
}

function applyProcessorOverrides(
  base: { image: VisionProcessorConfig; video: VisionProcessorConfig },
  p: ModelStageConfig['processor'],
): { image: VisionProcessorConfig; video: VisionProcessorConfig } {
  const image = { ...base.image };
  const video = { ...base.video };
  if (p.minPixels !== undefined) image.minPixels = p.minPixels;
  if (p.maxPixels !== undefined) image.maxPixels = p.maxPixels;
  if (p.videoMaxPixels !== undefined) video.maxPixels = p.videoMaxPixels;
  if (p.videoFps !== undefined) video.fps = p.videoFps;
  if (image.minPixels > image.maxPixels)
    throw new Error(`processor: minPixels (${image.minPixels}) exceeds maxPixels (${image.maxPixels})`);
  if (video.minPixels > video.maxPixels)
    throw new Error(`processor: video minPixels (${video.minPixels}) exceeds videoMaxPixels (${video.maxPixels})`);
  return { image, video };
}

/** `preprocessor_config.json` in the Hugging Face Glm4vImageProcessor layout. */
export function preprocessorJson(c: VisionProcessorConfig, kind: 'image' | 'video'): Record<string, unknown> {
  const out: Record<string, unknown> = {
    size: { shortest_edge: c.minPixels, longest_edge: c.maxPixels },
    patch_size: c.patchSize,
    temporal_patch_size: c.temporalPatchSize,
    merge_size: c.mergeSize,
    image_mean: c.imageMean,
    image_std: c.imageStd,
    rescale_factor: c.rescaleFactor,
    do_resize: c.doResize,
    do_rescale: c.doRescale,
    do_normalize: c.doNormalize,
    resample: 3,
    do_convert_rgb: true,
    processor_class: 'Glm4vProcessor',
  };
  if (kind === 'image') out.image_processor_type = 'Glm4vImageProcessor';
  else Object.assign(out, { video_processor_type: 'Glm4vVideoProcessor', fps: c.fps, max_duration: c.maxDuration });
  return out;
}

export interface StageModel {
  model: Glm4vForConditionalGeneration;
  config: Glm4vConfig;
  tokenizer: GlmTokenizer;
  imageConfig: VisionProcessorConfig;
  videoConfig: VisionProcessorConfig;
  /** Chat template text written with the checkpoints. */
  template: string;
  style: AnswerStyle;
  /** Where the weights came from ("scratch" or a folder). */
  initFrom: string;
}

async function loadTokenizer(dir: string, what: string): Promise<GlmTokenizer> {
  if (!existsSync(join(dir, 'tokenizer.json')))
    throw new Error(`${what} ${dir}: no tokenizer.json there (train one with \`glmv train tokenizer\`)`);
  return GlmTokenizer.fromPretrained(dir);
}

/** The template family of a template text, when it is one of the built-ins. */
function builtinTemplate(text: string | null): TemplateName | null {
  for (const [name, t] of Object.entries(CHAT_TEMPLATES)) if (t === text) return name as TemplateName;
  return null;
}

/** Config only (no weights): for dry runs and parameter counts. */
export async function resolveModelConfig(
  cfg: ModelStageConfig,
): Promise<{ config: Glm4vConfig; tokenizer: GlmTokenizer }> {
  const m = cfg.model;
  if (m.init === 'scratch') {
    const tokenizer = await loadTokenizer(m.tokenizer!, 'model.tokenizer');
    return { config: archConfig(m.arch, tokenizer), tokenizer };
  }
  if (!existsSync(join(m.init, 'config.json')))
    throw new Error(`model.init ${m.init}: not a model folder (no config.json); give a checkpoint folder or "scratch"`);
  const tokenizer = await loadTokenizer(m.tokenizer ?? m.init, m.tokenizer ? 'model.tokenizer' : 'model.init');
  return { config: loadConfig(m.init), tokenizer };
}

export type StageDescription = Omit<StageModel, 'model' | 'initFrom'>;

/** Everything about the stage's model except its weights: config, tokenizer, processor settings, template. */
export async function describeStageModel(cfg: ModelStageConfig): Promise<StageDescription> {
  const m = cfg.model;
  const { config, tokenizer } = await resolveModelConfig(cfg);
  if (tokenizer.vocabSize > config.text.vocabSize)
    throw new Error(
      `model: the tokenizer has ${tokenizer.vocabSize} tokens but the model's vocabulary is ${config.text.vocabSize}; use the tokenizer the model was trained with`,
    );
  let base: { image: VisionProcessorConfig; video: VisionProcessorConfig };
  if (m.init === 'scratch') base = defaultProcessorConfigs(m.arch);
  else {
    const image = existsSync(join(m.init, 'preprocessor_config.json'))
      ? await loadPreprocessorConfig(m.init)
      : { ...DEFAULT_IMAGE_CONFIG };
    base = { image, video: await loadVideoPreprocessorConfig(m.init, image) };
  }
  const { image, video } = applyProcessorOverrides(base, cfg.processor);
  const v = config.vision;
  if (
    image.patchSize !== v.patchSize ||
    image.mergeSize !== v.spatialMergeSize ||
    image.temporalPatchSize !== v.temporalPatchSize
  )
    throw new Error(
      `processor: patch ${image.patchSize}, merge ${image.mergeSize}, temporal ${image.temporalPatchSize} do not match the model's vision tower (${v.patchSize}, ${v.spatialMergeSize}, ${v.temporalPatchSize})`,
    );
  // The template follows the model type: ChatModel parses replies in that family's format.
  const family = templateFor(config);
  const own = builtinTemplate(tokenizer.chatTemplate);
  let template: string;
  if (m.init === 'scratch' || !tokenizer.chatTemplate) template = CHAT_TEMPLATES[family];
  else {
    if (own && own !== family)
      throw new Error(
        `model.init ${m.init}: its chat template is the ${own} one but a ${config.modelType} model answers in the ${family} format`,
      );
    template = tokenizer.chatTemplate;
  }
  return { config, tokenizer, imageConfig: image, videoConfig: video, template, style: styleFor(config) };
}

/**
 * Builds or loads the stage's model (float32 master weights) with its tokenizer and processor settings. Weights come
 * from `weightsFrom` (a checkpoint being resumed), else model.init, else a seeded random init.
 */
export async function initStageModel(cfg: ModelStageConfig, opts: { weightsFrom?: string } = {}): Promise<StageModel> {
  const m = cfg.model;
  if (m.visionPositionInit === 'sincos' && m.init !== 'scratch')
    throw new Error(
      `model.visionPositionInit sincos: only a model from scratch starts with it; model.init is ${m.init} (its trained table is loaded as it is)`,
    );
  const d = await describeStageModel(cfg);
  let model: Glm4vForConditionalGeneration;
  const from = opts.weightsFrom ?? (m.init === 'scratch' ? null : m.init);
  if (from) {
    const loaded = Glm4vForConditionalGeneration.fromPretrained(from, { dtype: 'float32' });
    model = loaded.model;
    // The storage dtype is not part of the architecture.
    const a = JSON.stringify(configToJson({ ...loaded.config, dtype: null }));
    const b = JSON.stringify(configToJson({ ...d.config, dtype: null }));
    if (a !== b)
      throw new Error(
        `checkpoint ${from}: its config.json describes a different model than this run's config (model.init / model.arch / model.tokenizer changed?)`,
      );
  } else {
    model = Glm4vForConditionalGeneration.random(d.config, { seed: cfg.run.seed });
    if (m.visionPositionInit === 'sincos') model.model.visual.embeddings.initSinCos();
  }
  model.train();
  if (m.freezeVision) for (const p of model.model.visual.parameters()) p.requiresGrad = false;
  model.gradientCheckpointing = m.gradientCheckpointing;
  return { ...d, model, initFrom: from ?? 'scratch' };
}

/** Parameter counts (no allocation) of the stage's model. */
export function parameterSummary(config: Glm4vConfig): { vision: number; text: number; lmHead: number; total: number } {
  return countParameters(config);
}

/**
 * Writes a complete model folder: config.json + model.safetensors (model.save), tokenizer files with the chat
 * template, preprocessor_config.json and video_preprocessor_config.json.
 */
export async function writeModelFolder(dir: string, sm: Omit<StageModel, 'initFrom'>): Promise<void> {
  sm.model.save(dir);
  const tok = new GlmTokenizer(sm.tokenizer.tokenizerJson, sm.tokenizer.config, { chatTemplate: sm.template });
  await tok.save(dir);
  writeJsonAtomic(join(dir, 'preprocessor_config.json'), preprocessorJson(sm.imageConfig, 'image'));
  writeJsonAtomic(join(dir, 'video_preprocessor_config.json'), preprocessorJson(sm.videoConfig, 'video'));
  writeJsonAtomic(join(dir, 'generation_config.json'), {
    eos_token_id: sm.config.eosTokenId,
    pad_token_id: sm.config.padTokenId ?? sm.config.eosTokenId[0],
    do_sample: false,
  });
}

/** A processor for the stage's settings (eval through ChatModel). */
export function stageProcessor(sm: Pick<StageModel, 'imageConfig' | 'videoConfig'>): Glm4vProcessor {
  return new Glm4vProcessor({ imageConfig: sm.imageConfig, videoConfig: sm.videoConfig });
}
