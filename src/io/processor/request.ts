/**
 * The GLM-4.1V / GLM-4.5V multimodal processor: every image and video of one request to `pixel_values` rows plus
 * `grid_thw`, with the prompt expanded; and `prepareChatInputs`, messages to model inputs in one step.
 */
import { concatFloat32 } from '../../util/arrays.js';
import { describeSource, type ImageSource, loadImage } from '../image.js';
import {
  CHAT_TEMPLATES,
  type ChatMessage,
  ChatTemplate,
  collectMedia,
  type RenderOptions,
  type TemplateName,
} from '../template.js';
import type { GlmTokenizer } from '../tokenizer.js';
import type { VideoSource } from '../video.js';
import {
  DEFAULT_IMAGE_CONFIG,
  DEFAULT_VIDEO_CONFIG,
  loadImagePreprocessorConfig,
  loadVideoPreprocessorConfig,
  type VisionProcessorConfig,
} from './config.js';
import { type ProcessedImage, processImage } from './image.js';
import type { GridThw } from './patches.js';
import { BEGIN_OF_VIDEO, END_OF_VIDEO, expandMediaTokens, IMAGE_TOKEN, mmTokenTypeIds } from './tokens.js';
import { type MediaDecodeOptions, type ProcessedVideo, processVideo } from './video.js';

export interface TokenBudget {
  /** Cap on the LLM tokens of one image (default from the config's max pixels: 6144). */
  maxImageTokens?: number;
  /** Cap on the LLM tokens of one video (default 48000, the paper's eval limit; the config's pixel budget also applies). */
  maxVideoTokens?: number;
  /** Cap on all visual tokens of one request; exceeding it is an error. */
  maxTotalTokens?: number;
}

export interface MultimodalInputs {
  /** Prompt text with one `<|image|>` per image and one `<|video|>` per video (as the chat template writes them). */
  text: string;
  images?: ImageSource[];
  videos?: VideoSource[];
}

export interface ProcessedInputs {
  /** The prompt with every placeholder expanded. */
  text: string;
  /** Image rows, concatenated over images ([N, 1176]); empty when there are no images. */
  pixelValues: Float32Array;
  imageGridThw: GridThw[];
  /** Video rows, concatenated over videos. */
  pixelValuesVideos: Float32Array;
  videoGridThw: GridThw[];
  videoTimestamps: number[][];
  /** Per image/video: LLM tokens and original size (for mapping coordinates back). */
  images: Array<Omit<ProcessedImage, 'pixelValues'>>;
  videos: Array<Omit<ProcessedVideo, 'pixelValues'>>;
  numVisualTokens: number;
}

export interface ProcessorOptions extends TokenBudget {
  imageConfig?: VisionProcessorConfig;
  videoConfig?: VisionProcessorConfig;
}

/** Images and videos of one request to model inputs, with the prompt expanded. */
export class Glm4vProcessor {
  readonly imageConfig: VisionProcessorConfig;
  readonly videoConfig: VisionProcessorConfig;
  readonly budget: TokenBudget;

  constructor(opts: ProcessorOptions = {}) {
    this.imageConfig = opts.imageConfig ?? { ...DEFAULT_IMAGE_CONFIG };
    this.videoConfig = opts.videoConfig ?? { ...DEFAULT_VIDEO_CONFIG };
    const f = this.imageConfig.patchSize * this.imageConfig.mergeSize;
    this.budget = {
      maxImageTokens:
        opts.maxImageTokens ?? Math.floor(this.imageConfig.maxPixels / (this.imageConfig.temporalPatchSize * f * f)),
      maxVideoTokens: opts.maxVideoTokens ?? 48000,
      maxTotalTokens: opts.maxTotalTokens,
    };
    for (const [k, v] of Object.entries(this.budget)) {
      if (v !== undefined && (!Number.isInteger(v) || v <= 0)) {
        throw new Error(`processor: expected ${k} to be a positive integer, found ${v}`);
      }
    }
  }

  /**
   * A copy with other resize bounds for images (`minPixels` / `maxPixels`) and another video sampling rate (`fps`):
   * vLLM's per-request `mm_processor_kwargs`, `glmv chat --max-pixels`. A bound given alone past the other one moves
   * that one too; the token caps stay, so a larger `maxPixels` never lifts an image past them.
   */
  withOptions(o: { minPixels?: number | null; maxPixels?: number | null; fps?: number | null }): Glm4vProcessor {
    const image = { ...this.imageConfig };
    for (const [k, v] of Object.entries(o))
      if (v != null && !(Number.isFinite(v) && v > 0))
        throw new Error(`processor ${k}: expected a positive number, found ${v}`);
    if (o.minPixels != null) image.minPixels = o.minPixels;
    if (o.maxPixels != null) image.maxPixels = o.maxPixels;
    if (o.maxPixels != null && o.minPixels == null) image.minPixels = Math.min(image.minPixels, o.maxPixels);
    if (o.minPixels != null && o.maxPixels == null) image.maxPixels = Math.max(image.maxPixels, o.minPixels);
    if (image.minPixels > image.maxPixels)
      throw new Error(`processor: min_pixels ${image.minPixels} exceeds max_pixels ${image.maxPixels}`);
    const video = { ...this.videoConfig, ...(o.fps != null ? { fps: o.fps } : {}) };
    return new Glm4vProcessor({ ...this.budget, imageConfig: image, videoConfig: video });
  }

  /** Reads `preprocessor_config.json` (and `video_preprocessor_config.json` if present) from a model folder. */
  static async fromPretrained(dir: string, opts: TokenBudget = {}): Promise<Glm4vProcessor> {
    const imageConfig = await loadImagePreprocessorConfig(dir);
    const videoConfig = await loadVideoPreprocessorConfig(dir, imageConfig);
    return new Glm4vProcessor({ ...opts, imageConfig, videoConfig });
  }

  async processImage(src: ImageSource): Promise<ProcessedImage> {
    const label = `image ${describeSource(src)}`;
    const img = await loadImage(src, describeSource(src));
    return processImage(img, this.imageConfig, { maxTokens: this.budget.maxImageTokens, label });
  }

  async processVideo(src: VideoSource, media: MediaDecodeOptions = {}): Promise<ProcessedVideo> {
    return processVideo(src, this.videoConfig, { ...media, maxTokens: this.budget.maxVideoTokens });
  }

  /** Processes every image and video and expands the prompt. */
  async process(inputs: MultimodalInputs, media: MediaDecodeOptions = {}): Promise<ProcessedInputs> {
    if (typeof inputs.text !== 'string')
      throw new Error(`processor: expected "text" to be a string, found ${typeof inputs.text}`);
    const images: ProcessedImage[] = [];
    for (const src of inputs.images ?? []) images.push(await this.processImage(src));
    const videos: ProcessedVideo[] = [];
    for (const src of inputs.videos ?? []) videos.push(await this.processVideo(src, media));
    const numVisualTokens = images.reduce((s, x) => s + x.numTokens, 0) + videos.reduce((s, x) => s + x.numTokens, 0);
    const cap = this.budget.maxTotalTokens;
    if (cap !== undefined && numVisualTokens > cap) {
      throw new Error(
        `processor: the request needs ${numVisualTokens} visual tokens (${images.length} images, ${videos.length} videos), more than the total cap of ${cap}`,
      );
    }
    const text = expandMediaTokens(inputs.text, {
      imageGrids: images.map((x) => x.gridThw),
      videos: videos.map((x) => ({ gridThw: x.gridThw, timestamps: x.timestamps })),
      mergeSize: this.imageConfig.mergeSize,
    });
    const strip = <T extends { pixelValues: Float32Array }>(x: T): Omit<T, 'pixelValues'> => {
      const { pixelValues: _p, ...rest } = x;
      return rest;
    };
    return {
      text,
      pixelValues: concatFloat32(images.map((x) => x.pixelValues)) ?? new Float32Array(0),
      imageGridThw: images.map((x) => x.gridThw),
      pixelValuesVideos: concatFloat32(videos.map((x) => x.pixelValues)) ?? new Float32Array(0),
      videoGridThw: videos.map((x) => x.gridThw),
      videoTimestamps: videos.map((x) => x.timestamps),
      images: images.map(strip),
      videos: videos.map(strip),
      numVisualTokens,
    };
  }
}

export interface ChatModelInputs extends ProcessedInputs {
  /** Token ids of the expanded prompt. */
  inputIds: number[];
  /** 0 text, 1 image, 2 video per token (see `mmTokenTypeIds`). */
  mmTokenTypeIds: Uint8Array;
}

export interface PrepareChatOptions extends RenderOptions {
  /** A built-in template name or template text; default the tokenizer's own `chat_template`. */
  template?: TemplateName | string;
  /** Cancellation and decode budget of the videos (a server's request limits). */
  media?: MediaDecodeOptions;
  /** Tokenizes the expanded prompt instead of `tokenizer.encode` (a server tokenizes off its event loop). */
  encode?: (text: string) => Promise<number[]>;
}

/**
 * Messages to model inputs in one step: render the chat template, load and process the media in prompt order,
 * expand the placeholders, tokenize. Checks that every visual token became exactly one `<|image|>` id.
 */
export async function prepareChatInputs(
  processor: Glm4vProcessor,
  tokenizer: GlmTokenizer,
  messages: ChatMessage[],
  opts: PrepareChatOptions = {},
): Promise<ChatModelInputs> {
  const { template, media, encode, ...render } = opts;
  const source =
    template !== undefined ? (CHAT_TEMPLATES[template as TemplateName] ?? template) : tokenizer.chatTemplate;
  if (!source) {
    throw new Error('chat: the tokenizer has no chat_template; pass template "glm41v", "glm45v" or the template text');
  }
  const text = new ChatTemplate(source).render(messages, render);
  const processed = await processor.process({ text, ...collectMedia(messages) }, media);
  const inputIds = encode ? await encode(processed.text) : tokenizer.encode(processed.text);
  const types = mmTokenTypeIds(inputIds, {
    image: tokenizer.id(IMAGE_TOKEN),
    videoStart: tokenizer.id(BEGIN_OF_VIDEO),
    videoEnd: tokenizer.id(END_OF_VIDEO),
  });
  const visual = types.reduce((s, t) => s + (t === 0 ? 0 : 1), 0);
  if (visual !== processed.numVisualTokens) {
    throw new Error(
      `chat: the prompt tokenizes to ${visual} ${IMAGE_TOKEN} ids but the media need ${processed.numVisualTokens}; is ${IMAGE_TOKEN} a special token of this tokenizer?`,
    );
  }
  return { ...processed, inputIds, mmTokenTypeIds: types };
}
