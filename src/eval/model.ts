/**
 * Models under test. `ModelUnderTest` is what the harness talks to; `EndpointModel` reaches any OpenAI-compatible
 * server (vLLM / SGLang serving GLM-4.5V, our own `glmv serve`) through the glmv client; `LocalModel` (./local.ts)
 * runs a checkpoint folder in this process.
 *
 * Visual token caps (paper §6.1: 6144 tokens per image, 48k per video) are enforced before sending (./media.ts).
 */
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ChatMessageParam, type ChatResult, GlmvClient } from '../serve/client.js';
import type { EvalPrompt } from './data.js';
import { capVideoFile, type EncodedImage, encodeImage, framesToVideo, videoUrl } from './media.js';

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
  /** Settings that change the request a prompt becomes (part of the cache key). */
  requestTraits(): Record<string, unknown>;
  generate(prompt: EvalPrompt, params: GenerationParams, signal?: AbortSignal): Promise<Generation>;
  close(): Promise<void>;
}

export type { EncodedImage };

export interface VisualCaps {
  /** LLM tokens per image (default 6144). */
  imageTokens: number;
  /** LLM tokens per video (default 48000). */
  videoTokens: number;
}

export const DEFAULT_CAPS: VisualCaps = { imageTokens: 6144, videoTokens: 48_000 };

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
  /** Frame-list videos: encoded to MP4 (`video`, default) or sent as consecutive images sharing the budget. */
  videoFrames?: 'video' | 'images';
  /** Folder for encoded videos (default: a folder under the OS temp dir). */
  mediaDir?: string;
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
      videoFrames: this.opts.videoFrames ?? 'video',
    };
  }

  requestTraits(): Record<string, unknown> {
    return {
      videoFrames: this.opts.videoFrames ?? 'video',
      style: this.opts.style ?? 'glm45v',
      continuation: this.opts.continuation ?? 'chat',
      extraBody: this.opts.extraBody ?? null,
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

  /** The chat messages of a prompt (media first, then the text, as the GLM templates place them; text first if asked). */
  async messages(prompt: EvalPrompt): Promise<ChatMessageParam[]> {
    const parts: Array<Record<string, unknown>> = [];
    for (const path of prompt.images) {
      const img = await this.image(path, this.caps.imageTokens);
      parts.push({ type: 'image_url', image_url: { url: img.url } });
    }
    const v = prompt.video;
    const mode = this.opts.media ?? 'data';
    const mediaDir = this.opts.mediaDir ?? join(tmpdir(), 'glmv-eval-media');
    if (v?.frames?.length && (this.opts.videoFrames ?? 'video') === 'images') {
      const per = Math.max(1, Math.floor(this.caps.videoTokens / v.frames.length));
      for (const f of v.frames) parts.push({ type: 'image_url', image_url: { url: (await this.image(f, per)).url } });
    } else if (v?.frames?.length) {
      const mp4 = await framesToVideo(v.frames, v.fps ?? 2, this.caps.videoTokens, mediaDir);
      parts.push({ type: 'video_url', video_url: { url: await videoUrl(mp4, mode) } });
    } else if (v?.path) {
      const capped = await capVideoFile(v.path, this.caps.videoTokens, mediaDir);
      parts.push({ type: 'video_url', video_url: { url: await videoUrl(capped.path, mode) } });
    }
    const text = { type: 'text', text: prompt.text };
    if (prompt.questionFirst) parts.unshift(text);
    else parts.push(text);
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
