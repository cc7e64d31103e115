/**
 * Records → training examples: token ids, labels (−100 = no loss) and the processed pixels of their images and
 * videos, each image decoded and resized once (a bounded cache keeps resized images across epochs).
 *
 * Pre-training documents: `[gMASK]<sop>` + text and media in reading order + `<|endoftext|>`. Consecutive text parts
 * are joined by a newline; an image is `<|begin_of_image|>` + its `<|image|>` tokens + `<|end_of_image|>`, a video the
 * chat template's `<|begin_of_video|>` block with one image block and timestamp per temporal group (the processor's
 * own expansion). Loss on text tokens only: media tokens, their markers, video timestamps and the `[gMASK]<sop>` prefix
 * are masked.
 *
 * SFT samples: the chat template renders the prompt (with the generation prompt) and the whole conversation; the
 * assistant target is the difference, so training sees exactly the prompt ids inference will build, and the loss
 * covers the assistant tokens and the end token only.
 */
import type { PretrainDoc } from '../data/pretrain.js';
import type { Sample } from '../data/sample.js';
import { promptText, type SftOptions, sampleMessage, sftTarget, toFillInBlank } from '../data/sft.js';
import type { AnswerStyle } from '../io/answer/think.js';
import { loadImage, type RgbImage, resizeRgb } from '../io/image.js';
import type { VisionProcessorConfig } from '../io/processor/config.js';
import { imageTargetSize } from '../io/processor/image.js';
import { type GridThw, normalisationTable, patchify } from '../io/processor/patches.js';
import {
  BEGIN_OF_IMAGE,
  BEGIN_OF_VIDEO,
  END_OF_IMAGE,
  END_OF_VIDEO,
  expandMediaTokens,
  IMAGE_TOKEN,
  VIDEO_TOKEN,
} from '../io/processor/tokens.js';
import { processVideo } from '../io/processor/video.js';
import { type ChatMessage, ChatTemplate } from '../io/template.js';
import type { GlmTokenizer } from '../io/tokenizer.js';
import type { VideoSource } from '../io/video.js';
import { FillOnceCache } from '../util/cache.js';

export const IGNORE = -100;

export interface Media {
  pixelValues: Float32Array;
  grid: GridThw;
}

export interface Example {
  id: string;
  /** Pre-training kind or domain (metrics are reported per group). */
  group: string;
  ids: Int32Array;
  labels: Int32Array;
  /** Labels that count (≠ −100). */
  targets: number;
  images: Media[];
  videos: Media[];
  /** Cut to the sequence length (overlong: truncate). */
  truncated?: boolean;
}

export interface EncoderOptions {
  tokenizer: GlmTokenizer;
  imageConfig: VisionProcessorConfig;
  videoConfig: VisionProcessorConfig;
  maxImageTokens?: number;
  maxVideoTokens?: number;
  /** Chat template source (SFT and chat prompts). */
  template: string;
  /** Target format: GLM-4.1V answer tags or GLM-4.5V. */
  style: AnswerStyle;
  /** Appended after the assistant target and trained on. Default `<|endoftext|>`. */
  endToken?: string;
  /** Resized-image cache budget in bytes (0 = off); filled in first-seen order, never evicted. */
  imageCacheBytes?: number;
  /**
   * Token-id cache budget in bytes (estimated: the text's UTF-16 plus 8 bytes per id) for the rendered texts the
   * encoder tokenizes; default 128 MiB, 0 = off. Epochs tokenize the same texts again, and tokenizing was about a
   * seventh of a small model's SFT step.
   */
  textCacheBytes?: number;
}

/** Special token ids the encoder needs; every one must be a single id of the tokenizer. */
interface Ids {
  gmask: number;
  sop: number;
  eos: number;
  end: number;
  image: number;
  beginImage: number;
  endImage: number;
  beginVideo: number;
  endVideo: number;
}

/** A chat message part for a sample's video (frame lists keep their fps). */
function videoSource(v: NonNullable<Sample['video']>): VideoSource {
  if (v.frames) return { frames: v.frames, ...(v.fps ? { fps: v.fps } : {}) };
  return v.path!;
}

export class Encoder {
  readonly ids: Ids;
  private readonly template: ChatTemplate;
  private readonly tables: Float32Array[];
  private readonly cache: FillOnceCache<string, RgbImage>;
  private readonly inflight = new Map<string, Promise<RgbImage>>();
  private readonly textIds: FillOnceCache<string, readonly number[]>;
  /** Image decodes and cache hits, tokenized texts and token-id cache hits (for metrics). */
  readonly stats = { decoded: 0, cached: 0, tokenized: 0, tokensCached: 0 };

  constructor(readonly opts: EncoderOptions) {
    this.cache = new FillOnceCache(opts.imageCacheBytes ?? 0);
    this.textIds = new FillOnceCache(opts.textCacheBytes ?? 128 * 2 ** 20);
    const tok = opts.tokenizer;
    const need = (t: string, why: string) => {
      const id = tok.tokenToId(t);
      if (id === undefined)
        throw new Error(
          `tokenizer: ${JSON.stringify(t)} is not a token of this tokenizer (${why}); train it with the GLM special tokens`,
        );
      return id;
    };
    const eos = tok.eosTokenId ?? need('<|endoftext|>', 'end of document');
    this.ids = {
      gmask: need('[gMASK]', 'sequence prefix'),
      sop: need('<sop>', 'sequence prefix'),
      eos,
      end: need(opts.endToken ?? '<|endoftext|>', 'sft.endToken'),
      image: need(IMAGE_TOKEN, 'image placeholder'),
      beginImage: need(BEGIN_OF_IMAGE, 'image marker'),
      endImage: need(END_OF_IMAGE, 'image marker'),
      beginVideo: need(BEGIN_OF_VIDEO, 'video marker'),
      endVideo: need(END_OF_VIDEO, 'video marker'),
    };
    this.template = new ChatTemplate(opts.template);
    this.tables = normalisationTable(opts.imageConfig);
  }

  // -------------------------------------------------------------------------------------------------------------
  // Media

  /**
   * Starts decoding images that upcoming examples will need. sharp decodes on libuv's thread pool, so these run
   * while the training step computes; `image()` then finds them done. Timing only: values are unaffected.
   */
  prefetch(paths: Iterable<string>): void {
    for (const p of paths) {
      if (this.cache.has(p) || this.inflight.has(p) || this.inflight.size >= 1024) continue;
      const pr = loadImage(p);
      pr.catch(() => {}); // reported when the example is encoded
      this.inflight.set(p, pr);
    }
  }

  /** A decoded image (a prefetched decode when there is one). */
  private decode(path: string): Promise<RgbImage> {
    const pending = this.inflight.get(path);
    if (pending) {
      this.inflight.delete(path);
      return pending;
    }
    return loadImage(path);
  }

  private async resized(path: string): Promise<RgbImage> {
    const hit = this.cache.get(path);
    if (hit) {
      this.stats.cached++;
      return hit;
    }
    const img = await this.decode(path);
    const cfg = this.opts.imageConfig;
    let size: { height: number; width: number };
    try {
      size = imageTargetSize(img.height, img.width, cfg, this.opts.maxImageTokens);
    } catch (e) {
      throw new Error(`image ${path}: ${(e as Error).message}`);
    }
    const f = cfg.patchSize * cfg.mergeSize;
    if (size.height % f !== 0 || size.width % f !== 0)
      throw new Error(
        `image ${path}: with do_resize off the sides must be multiples of ${f}, found ${img.width}x${img.height}`,
      );
    const out =
      size.height === img.height && size.width === img.width
        ? img
        : resizeRgb(img, size.width, size.height, cfg.resample);
    this.stats.decoded++;
    this.cache.admit(path, out, out.data.length);
    return out;
  }

  /** One image as the processor makes it (the resized frame repeated over the temporal patch). */
  async image(path: string): Promise<Media> {
    const rgb = await this.resized(path);
    const cfg = this.opts.imageConfig;
    const frames = Array.from({ length: cfg.temporalPatchSize }, () => rgb);
    const { pixelValues, gridThw } = patchify(frames, cfg, this.tables);
    const tokens = (gridThw[0] * gridThw[1] * gridThw[2]) / cfg.mergeSize ** 2;
    if (this.opts.maxImageTokens !== undefined && tokens > this.opts.maxImageTokens)
      throw new Error(`image ${path}: needs ${tokens} visual tokens, more than the cap of ${this.opts.maxImageTokens}`);
    return { pixelValues, grid: gridThw };
  }

  async video(src: VideoSource): Promise<Media & { timestamps: number[] }> {
    let input = src;
    if (typeof src === 'object' && !(src instanceof Uint8Array) && Array.isArray(src.frames)) {
      // Decode the frames together (and through the prefetch); the processor samples and resizes them.
      const frames = await Promise.all(
        src.frames.map((f, i) =>
          (typeof f === 'string' ? this.decode(f) : loadImage(f)).catch((e: Error) => {
            throw new Error(`video frame ${i}: ${e.message}`);
          }),
        ),
      );
      input = { frames, ...(src.fps ? { fps: src.fps } : {}) };
    }
    const v = await processVideo(input, this.opts.videoConfig, { maxTokens: this.opts.maxVideoTokens });
    return { pixelValues: v.pixelValues, grid: v.gridThw, timestamps: v.timestamps };
  }

  /**
   * The token ids of a text, from the cache when it was tokenized before (a copy: callers own what they get). The
   * cache admits until its budget is spent and never evicts (FillOnceCache), as the image cache does.
   */
  private tokenize(text: string): number[] {
    const hit = this.textIds.get(text);
    if (hit) {
      this.stats.tokensCached++;
      return hit.slice();
    }
    const ids = this.opts.tokenizer.encode(text);
    this.stats.tokenized++;
    // A kept array stays the cache's: the caller gets a copy.
    return this.textIds.admit(text, ids, 2 * text.length + 8 * ids.length) ? ids.slice() : ids;
  }

  /** Token ids of a text with `<|image|>` / `<|video|>` placeholders, expanded as the processor expands them. */
  private expand(text: string, images: Media[], videos: Array<Media & { timestamps: number[] }>): number[] {
    const expanded = expandMediaTokens(text, {
      imageGrids: images.map((m) => m.grid),
      videos: videos.map((v) => ({ gridThw: v.grid, timestamps: v.timestamps })),
      mergeSize: this.opts.imageConfig.mergeSize,
    });
    const ids = this.tokenize(expanded);
    const m2 = this.opts.imageConfig.mergeSize ** 2;
    const want = [...images, ...videos].reduce((a, m) => a + (m.grid[0] * m.grid[1] * m.grid[2]) / m2, 0);
    let got = 0;
    for (const id of ids) if (id === this.ids.image) got++;
    if (got !== want)
      throw new Error(
        `encode: the text tokenizes to ${got} ${IMAGE_TOKEN} ids but its media need ${want}; is ${IMAGE_TOKEN} a special token of this tokenizer?`,
      );
    return ids;
  }

  // -------------------------------------------------------------------------------------------------------------
  // Pre-training documents

  /** The text of a document with media placeholders (before expansion), and its media sources in order. */
  private docText(doc: PretrainDoc): { text: string; images: string[]; video: VideoSource | null } {
    let text = '[gMASK]<sop>';
    let prevText = false;
    const images: string[] = [];
    let video: VideoSource | null = null;
    for (const part of doc.content) {
      if (part.type === 'text') {
        text += (prevText ? '\n' : '') + part.text;
        prevText = true;
        continue;
      }
      prevText = false;
      if (part.type === 'image') {
        const p = doc.images[part.index];
        if (p === undefined)
          throw new Error(`document ${doc.id}: image part ${part.index} is past its ${doc.images.length} images`);
        images.push(p);
        text += `${BEGIN_OF_IMAGE}${IMAGE_TOKEN}${END_OF_IMAGE}`;
      } else {
        if (!doc.video) throw new Error(`document ${doc.id}: has a video part but no video`);
        if (video) throw new Error(`document ${doc.id}: more than one video part`);
        video = videoSource(doc.video);
        text += `${BEGIN_OF_VIDEO}${VIDEO_TOKEN}${END_OF_VIDEO}`;
      }
    }
    return { text: `${text}<|endoftext|>`, images, video };
  }

  async encodeDoc(doc: PretrainDoc): Promise<Example> {
    const { text, images: paths, video } = this.docText(doc);
    const images: Media[] = [];
    for (const p of paths) images.push(await this.image(p));
    const videos = video ? [await this.video(video)] : [];
    const ids = this.expand(text, images, videos);
    const labels = new Int32Array(ids.length);
    const I = this.ids;
    let inVideo = false;
    let targets = 0;
    for (let i = 0; i < ids.length; i++) {
      const id = ids[i]!;
      if (id === I.beginVideo) inVideo = true;
      const masked =
        inVideo ||
        id === I.image ||
        id === I.beginImage ||
        id === I.endImage ||
        id === I.endVideo ||
        id === I.gmask ||
        id === I.sop;
      if (id === I.endVideo) inVideo = false;
      labels[i] = masked ? IGNORE : id;
      if (!masked) targets++;
    }
    // The first token has no context (and the model drops the label at a segment start anyway).
    if (labels[0] !== IGNORE) {
      labels[0] = IGNORE;
      targets--;
    }
    return {
      id: doc.id,
      group: doc.kind,
      ids: Int32Array.from(ids),
      labels,
      targets,
      images,
      videos,
    };
  }

  /** A sample as a pre-training instruction document: media, question (and options), answer. */
  sampleAsDoc(sample: Sample): PretrainDoc {
    const content: PretrainDoc['content'] = sample.images.map((_, index) => ({ type: 'image' as const, index }));
    if (sample.video) content.push({ type: 'video' });
    content.push({ type: 'text', text: promptText(sample) }, { type: 'text', text: sample.answer });
    return {
      id: sample.id,
      kind: 'instruction',
      source: sample.source,
      split: sample.split === 'heldout' ? 'heldout' : 'train',
      images: sample.images,
      ...(sample.video ? { video: sample.video } : {}),
      content,
    };
  }

  // -------------------------------------------------------------------------------------------------------------
  // SFT

  /** The user turn of a sample (media parts, then the question), as the chat template takes it. */
  userMessage(sample: Sample, opts: SftOptions = {}): ChatMessage {
    return sampleMessage(sample, opts);
  }

  /** The sample in SFT form: multiple choice converted to fill-in-the-blank when asked and possible. */
  static prepareSft(sample: Sample, mcq: 'blank' | 'choice'): Sample {
    if (mcq === 'blank' && sample.options?.length) return toFillInBlank(sample) ?? sample;
    return sample;
  }

  async encodeSft(sample: Sample, thinking: boolean): Promise<Example> {
    const opts: SftOptions = { thinking, style: this.opts.style };
    const user = this.userMessage(sample, opts);
    const target = sftTarget(sample, opts);
    const render = this.opts.style === 'glm45v' ? { enableThinking: thinking } : {};
    const prompt = this.template.render([user], { ...render, addGenerationPrompt: true });
    const full = this.template.render([user, { role: 'assistant', content: target }], {
      ...render,
      addGenerationPrompt: false,
    });
    if (!full.startsWith(prompt))
      throw new Error(
        `sample ${sample.id}: the chat template does not render the conversation as prompt + reply (the prompt is not a prefix), so the assistant tokens cannot be found`,
      );
    const reply = full.slice(prompt.length);
    const images: Media[] = [];
    for (const p of sample.images) images.push(await this.image(p));
    const videos = sample.video ? [await this.video(videoSource(sample.video))] : [];
    const promptIds = this.expand(prompt, images, videos);
    const replyIds = this.tokenize(reply);
    const n = promptIds.length + replyIds.length + 1;
    const ids = new Int32Array(n);
    ids.set(promptIds);
    ids.set(replyIds, promptIds.length);
    ids[n - 1] = this.ids.end;
    const labels = new Int32Array(n).fill(IGNORE);
    labels.set(ids.subarray(promptIds.length), promptIds.length);
    return {
      id: thinking ? sample.id : `${sample.id}#nothink`,
      group: sample.domain,
      ids,
      labels,
      targets: n - promptIds.length,
      images,
      videos,
    };
  }

  /** Prompt ids in the pre-training instruction format (media, question, newline), for eval and filtering. */
  async pretrainPrompt(sample: Sample): Promise<{ ids: number[]; images: Media[]; videos: Media[] }> {
    const doc = this.sampleAsDoc(sample);
    doc.content.pop(); // the answer
    const { text, images: paths, video } = this.docText(doc);
    const images: Media[] = [];
    for (const p of paths) images.push(await this.image(p));
    const videos = video ? [await this.video(video)] : [];
    // Drop the document end: the model continues after the question's newline.
    const body = text.slice(0, -'<|endoftext|>'.length);
    return { ids: this.expand(`${body}\n`, images, videos), images, videos };
  }
}

/**
 * Fits an example into `seqLen` tokens: unchanged when it fits; with `truncate`, cut when every visual token lies
 * before the cut (a cut through an image or video would leave features without their tokens); otherwise null (drop).
 */
export function fitExample(
  ex: Example,
  seqLen: number,
  mode: 'truncate' | 'drop',
  ids: { image: number; endVideo: number; endImage: number },
): Example | null {
  if (ex.ids.length <= seqLen) return ex;
  if (mode === 'drop') return null;
  let lastMedia = -1;
  for (let i = ex.ids.length - 1; i >= 0; i--) {
    const id = ex.ids[i]!;
    if (id === ids.image || id === ids.endVideo || id === ids.endImage) {
      lastMedia = i;
      break;
    }
  }
  if (lastMedia >= seqLen - 1) return null;
  const labels = ex.labels.slice(0, seqLen);
  let targets = 0;
  for (const l of labels) if (l !== IGNORE) targets++;
  if (targets === 0) return null;
  return { ...ex, ids: ex.ids.slice(0, seqLen), labels, targets, truncated: true };
}
