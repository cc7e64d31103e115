/**
 * Models under test. `ModelUnderTest` is what the harness talks to; `EndpointModel` reaches any OpenAI-compatible
 * server (vLLM / SGLang serving GLM-4.5V, our own `glmv serve`) through the glmv client. A local-engine model will
 * implement the same interface once generation exists in the engine (not yet: `glmv eval --model DIR` says so).
 *
 * Visual token caps (paper §6.1: 6144 tokens per image, 48k per video) are enforced before sending: an image whose
 * processor token count exceeds the cap is resized here to the size the GLM processor would pick under the cap
 * (a multiple of 28 within budget, so the server's own smart_resize leaves it unchanged). Frame-list videos are sent
 * as consecutive images sharing the video budget; video files are sent whole (the server's frame sampling and
 * `--media-io-kwargs` decide their tokens).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { extname, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { encodePng, loadImage, resizeRgb } from '../io/image.js';
import { DEFAULT_IMAGE_CONFIG, imageTargetSize, imageTokenCount } from '../io/processor.js';
import { type ChatMessageParam, type ChatResult, GlmvClient } from '../serve/client.js';
import type { EvalPrompt } from './data.js';

export interface GenerationParams {
  /** Thinking mode on (`chat_template_kwargs.enable_thinking`). */
  thinking: boolean;
  /** Most generated tokens (without a thinking budget). */
  maxTokens: number;
  /** Two-phase force answering: phase 1 at most this many tokens, then `</think>` and `answerTokens` more. */
  thinkingBudget?: number;
  answerTokens?: number;
  temperature: number;
  topP?: number;
  seed?: number;
}

export interface Generation {
  /** Raw response (`<think>…</think>…`), what scoring reads. */
  text: string;
  reasoning: string | null;
  content: string;
  thinkClosed: boolean;
  finishReason: string | null;
  forcedAnswer: boolean;
  truncatedThinking: boolean;
  usage?: { promptTokens: number; completionTokens: number; reasoningTokens?: number };
  latencyMs: number;
  phases: number;
}

export interface ModelUnderTest {
  /** Stable identity for the cache: endpoint + served model, or a checkpoint's content hash. */
  readonly id: string;
  /** What the report shows about the model. */
  describe(): Record<string, unknown>;
  generate(prompt: EvalPrompt, params: GenerationParams, signal?: AbortSignal): Promise<Generation>;
  close(): Promise<void>;
}

export interface VisualCaps {
  /** LLM tokens per image (default 6144). */
  imageTokens: number;
  /** LLM tokens per video (default 48000). */
  videoTokens: number;
}

export const DEFAULT_CAPS: VisualCaps = { imageTokens: 6144, videoTokens: 48_000 };

const IMAGE_MIME: Record<string, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
};
const VIDEO_MIME: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.mov': 'video/quicktime',
  '.avi': 'video/x-msvideo',
};

export interface EncodedImage {
  url: string;
  /** Processor tokens of what is sent. */
  tokens: number;
  resized: boolean;
  width: number;
  height: number;
}

/**
 * Encodes an image file for a chat request under a token cap: the original bytes when they fit (and the format is
 * one servers decode), else a PNG resized to the processor's size under the cap. `file` mode sends a `file://` URL
 * of the original when no resize is needed (vLLM `--allowed-local-media-path`).
 */
export async function encodeImage(
  path: string,
  maxTokens: number,
  mode: 'data' | 'file' = 'data',
): Promise<EncodedImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`image ${path}: cannot read (${(e as Error).message})`);
  }
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(bytes).metadata();
  } catch (e) {
    throw new Error(`image ${path}: not a decodable image (${(e as Error).message.split('\n')[0]})`);
  }
  if (!meta.width || !meta.height) throw new Error(`image ${path}: no dimensions in the file`);
  // EXIF orientations 5–8 swap width and height once applied (the processor applies them).
  const swap = (meta.orientation ?? 1) >= 5;
  const width = swap ? meta.height : meta.width;
  const height = swap ? meta.width : meta.height;
  const tokens = imageTokenCount(height, width);
  const fmt = String(meta.format) === 'jpg' ? 'jpeg' : meta.format;
  if (tokens <= maxTokens && fmt && IMAGE_MIME[fmt] && (meta.orientation ?? 1) === 1) {
    const url =
      mode === 'file'
        ? pathToFileURL(resolve(path)).href
        : `data:${IMAGE_MIME[fmt]};base64,${bytes.toString('base64')}`;
    return { url, tokens, resized: false, width, height };
  }
  const target = imageTargetSize(height, width, DEFAULT_IMAGE_CONFIG, maxTokens);
  const img = await loadImage(bytes, path);
  const resized =
    target.width === img.width && target.height === img.height
      ? img
      : resizeRgb(img, target.width, target.height, 'bicubic');
  const png = await encodePng(resized);
  return {
    url: `data:image/png;base64,${png.toString('base64')}`,
    tokens: imageTokenCount(target.height, target.width),
    resized: true,
    width: target.width,
    height: target.height,
  };
}

export interface EndpointModelOptions {
  baseURL: string;
  model?: string;
  apiKey?: string;
  timeoutMs?: number;
  maxRetries?: number;
  caps?: Partial<VisualCaps>;
  /** Stream responses (same results; useful against servers that time out long non-streamed requests). */
  stream?: boolean;
  /** Force-answer continuation for the thinking budget. */
  continuation?: 'chat' | 'completions';
  /** The model's output convention (what follows a forced `</think>`). */
  style?: 'glm41v' | 'glm45v';
  /** `data` (default): media inline as data URLs; `file`: `file://` URLs (server on this machine). */
  media?: 'data' | 'file';
  /** Extra body fields for every request (`top_k`, `repetition_penalty`, …). */
  extraBody?: Record<string, unknown>;
}

/** A small LRU so repeated images (circular copies, multi-turn) are encoded once without holding a whole set. */
class Lru<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly size: number) {}
  get(k: string): V | undefined {
    const v = this.map.get(k);
    if (v !== undefined) {
      this.map.delete(k);
      this.map.set(k, v);
    }
    return v;
  }
  set(k: string, v: V): void {
    this.map.delete(k);
    this.map.set(k, v);
    if (this.map.size > this.size) this.map.delete(this.map.keys().next().value as string);
  }
}

export class EndpointModel implements ModelUnderTest {
  readonly client: GlmvClient;
  private modelName = '';
  private readonly caps: VisualCaps;
  private readonly images = new Lru<Promise<EncodedImage>>(64);

  private constructor(private readonly opts: EndpointModelOptions) {
    this.client = new GlmvClient({
      baseURL: opts.baseURL,
      ...(opts.model ? { model: opts.model } : {}),
      ...(opts.apiKey ? { apiKey: opts.apiKey } : {}),
      timeoutMs: opts.timeoutMs ?? 600_000,
      maxRetries: opts.maxRetries ?? 3,
      // The harness extracts answers itself (per benchmark); the client's own view stays lenient.
      extract: 'lenient',
    });
    this.caps = { ...DEFAULT_CAPS, ...(opts.caps ?? {}) };
    for (const [k, v] of Object.entries(this.caps))
      if (!Number.isInteger(v) || v <= 0)
        throw new Error(`visual token cap ${k}: expected a positive integer, found ${v}`);
  }

  /** Connects (resolves the served model name when not given). */
  static async open(opts: EndpointModelOptions): Promise<EndpointModel> {
    const m = new EndpointModel(opts);
    m.modelName = await m.client.resolveModel();
    return m;
  }

  get id(): string {
    return `endpoint:${this.client.baseURL}#${this.modelName}`;
  }

  describe(): Record<string, unknown> {
    return {
      kind: 'endpoint',
      baseURL: this.client.baseURL,
      model: this.modelName,
      caps: this.caps,
      stream: !!this.opts.stream,
      continuation: this.opts.continuation ?? 'chat',
      style: this.opts.style ?? 'glm45v',
    };
  }

  private image(path: string, cap: number): Promise<EncodedImage> {
    const key = `${path}\u0000${cap}`;
    let p = this.images.get(key);
    if (!p) {
      p = encodeImage(path, cap, this.opts.media ?? 'data');
      this.images.set(key, p);
      p.catch(() => this.images.set(key, undefined as never));
    }
    return p;
  }

  /** The chat messages of a prompt (media first, then the text, as the GLM templates place them). */
  async messages(prompt: EvalPrompt): Promise<ChatMessageParam[]> {
    const parts: Array<Record<string, unknown>> = [];
    for (const path of prompt.images) {
      const img = await this.image(path, this.caps.imageTokens);
      parts.push({ type: 'image_url', image_url: { url: img.url } });
    }
    const v = prompt.video;
    if (v?.frames?.length) {
      const per = Math.max(1, Math.floor(this.caps.videoTokens / v.frames.length));
      for (const f of v.frames) parts.push({ type: 'image_url', image_url: { url: (await this.image(f, per)).url } });
    } else if (v?.path) {
      const mime = VIDEO_MIME[extname(v.path).toLowerCase()];
      if (!mime)
        throw new Error(`video ${v.path}: unsupported extension; expected ${Object.keys(VIDEO_MIME).join(', ')}`);
      let url: string;
      if (this.opts.media === 'file') url = pathToFileURL(resolve(v.path)).href;
      else {
        let bytes: Buffer;
        try {
          bytes = await readFile(v.path);
        } catch (e) {
          throw new Error(`video ${v.path}: cannot read (${(e as Error).message})`);
        }
        url = `data:${mime};base64,${bytes.toString('base64')}`;
      }
      parts.push({ type: 'video_url', video_url: { url } });
    }
    parts.push({ type: 'text', text: prompt.text });
    const out: ChatMessageParam[] = [];
    if (prompt.system) out.push({ role: 'system', content: prompt.system });
    out.push({ role: 'user', content: parts as never });
    return out;
  }

  async generate(prompt: EvalPrompt, p: GenerationParams, signal?: AbortSignal): Promise<Generation> {
    const messages = await this.messages(prompt);
    const base = {
      messages,
      thinking: p.thinking,
      temperature: p.temperature,
      ...(p.topP !== undefined ? { topP: p.topP } : {}),
      ...(p.seed !== undefined ? { seed: p.seed } : {}),
      ...(this.opts.extraBody ? { extraBody: this.opts.extraBody } : {}),
      ...(signal ? { signal } : {}),
    };
    let r: ChatResult;
    if (p.thinkingBudget !== undefined && p.thinking) {
      r = await this.client.chatWithBudget({
        ...base,
        thinkingBudget: p.thinkingBudget,
        answerTokens: p.answerTokens ?? (p.maxTokens > p.thinkingBudget ? p.maxTokens - p.thinkingBudget : 1024),
        continuation: this.opts.continuation ?? 'chat',
        style: this.opts.style ?? 'glm45v',
        template: this.opts.style ?? 'glm45v',
      });
    } else if (this.opts.stream) r = await this.client.chatStream({ ...base, maxTokens: p.maxTokens });
    else r = await this.client.chat({ ...base, maxTokens: p.maxTokens });
    return {
      text: r.text,
      reasoning: r.reasoning,
      content: r.content,
      thinkClosed: r.thinkClosed,
      finishReason: r.finishReason,
      forcedAnswer: r.forcedAnswer,
      truncatedThinking: r.truncatedThinking,
      ...(r.usage ? { usage: r.usage } : {}),
      latencyMs: r.latencyMs,
      phases: r.phases.length,
    };
  }

  async close(): Promise<void> {}
}

/** Content hash of a file (for cache keys: the same bytes under another name hit the same entry). */
export async function fileHash(path: string): Promise<string> {
  try {
    return createHash('sha256')
      .update(await readFile(path))
      .digest('hex');
  } catch (e) {
    throw new Error(`${path}: cannot read for hashing (${(e as Error).message})`);
  }
}
