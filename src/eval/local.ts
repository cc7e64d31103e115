/**
 * A local checkpoint as a model under test: `ChatModel` (src/io/chat.ts) behind the serving batcher
 * (src/serve/batcher.ts), so prompts the harness sends concurrently are decoded together, joining the running
 * batch as they arrive.
 *
 * Same conventions as the endpoint path, so scores are comparable:
 * - thinking on/off through the model's own switch (`/nothink` for GLM-4.1V templates, `enable_thinking` for 4.5V);
 * - the thinking budget is the paper's force answering in one pass: after `thinkingBudget` thinking tokens the
 *   closing tokens are inserted and the answer gets `answerTokens` more (the endpoint path does the same in two
 *   requests);
 * - visual token caps go into the processor (per image, per video), exactly the arithmetic the endpoint path uses
 *   to resize before sending;
 * - the raw text is normalised by the glmv client's parser (`normalizeText`), as endpoint answers are.
 */
import { createHash } from 'node:crypto';
import { createReadStream, readdirSync, statSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import { ChatModel, defaultModelDir } from '../io/chat.js';
import { Glm4vProcessor } from '../io/processor/request.js';
import type { ChatMessage, ContentPart } from '../io/template.js';
import { ContinuousBatcher } from '../serve/batcher.js';
import { normalizeText } from '../serve/client.js';
import type { EvalPrompt } from './data.js';
import { DEFAULT_CAPS, type Generation, type GenerationParams, type ModelUnderTest, type VisualCaps } from './model.js';

export interface LocalModelOptions {
  /** Checkpoint folder; default: the embedded model. */
  dir?: string;
  caps?: Partial<VisualCaps>;
  /** Prompts decoded together (the harness's concurrency is a good value). Default 8. */
  maxBatch?: number;
}

/** Files whose content decides what a checkpoint answers. */
const IDENTITY_FILES =
  /^(config\.json|generation_config\.json|tokenizer\.json|tokenizer_config\.json|chat_template\.jinja|(video_)?preprocessor_config\.json|.*\.safetensors(\.index\.json)?)$/;
/** Files up to this size are hashed whole; larger ones (weights) by size plus sampled blocks (see `checkpointId`). */
const WHOLE = 64 * 2 ** 20;

/**
 * Content hash of a checkpoint folder: every identity file hashed whole when small; weight files over 64 MiB by
 * their size, their first 4 MiB (the safetensors header and the first tensors) and 16 evenly spaced 1 MiB blocks,
 * so a multi-GB checkpoint is identified in well under a second while any retraining changes the id.
 */
export async function checkpointId(dir: string): Promise<string> {
  const h = createHash('sha256');
  const files = readdirSync(dir)
    .filter((f) => IDENTITY_FILES.test(f))
    .sort();
  if (!files.includes('config.json')) throw new Error(`local model ${dir}: no config.json (not a model folder)`);
  for (const f of files) {
    const p = join(dir, f);
    const size = statSync(p).size;
    h.update(`${f}\u0000${size}\u0000`);
    if (size <= WHOLE) {
      for await (const chunk of createReadStream(p)) h.update(chunk as Buffer);
      continue;
    }
    const fh = await open(p, 'r');
    try {
      const block = Buffer.alloc(2 ** 20);
      const head = Buffer.alloc(4 * 2 ** 20);
      await fh.read(head, 0, head.length, 0);
      h.update(head);
      for (let i = 0; i < 16; i++) {
        const at = Math.floor(((size - block.length) * (i + 1)) / 17);
        const { bytesRead } = await fh.read(block, 0, block.length, at);
        h.update(block.subarray(0, bytesRead));
      }
    } finally {
      await fh.close();
    }
  }
  return h.digest('hex').slice(0, 16);
}

export class LocalModel implements ModelUnderTest {
  private readonly capped: ChatModel;
  private closed = false;

  private constructor(
    readonly chat: ChatModel,
    readonly batcher: ContinuousBatcher,
    readonly caps: VisualCaps,
    private readonly hash: string,
  ) {
    // The same weights and tokenizer with the caps in the processor's token budget.
    const p = chat.processor;
    const capped = new Glm4vProcessor({
      imageConfig: p.imageConfig,
      videoConfig: p.videoConfig,
      maxImageTokens: Math.min(caps.imageTokens, p.budget.maxImageTokens ?? caps.imageTokens),
      maxVideoTokens: caps.videoTokens,
    });
    this.capped = new ChatModel(chat.model, chat.tokenizer, capped, chat.dir);
  }

  /** Loads the checkpoint (default: the embedded model). */
  static async open(opts: LocalModelOptions = {}): Promise<LocalModel> {
    const caps = { ...DEFAULT_CAPS, ...(opts.caps ?? {}) };
    for (const [k, v] of Object.entries(caps))
      if (!Number.isInteger(v) || v <= 0)
        throw new Error(`visual token cap ${k}: expected a positive integer, found ${v}`);
    const chat = await ChatModel.load(opts.dir);
    const batcher = new ContinuousBatcher(chat.model, {
      maxBatch: opts.maxBatch ?? 8,
      // The harness bounds what is in flight; nothing is refused here.
      maxQueue: 1_000_000,
    });
    return new LocalModel(chat, batcher, caps, await checkpointId(chat.dir));
  }

  get id(): string {
    return `local:${this.hash}`;
  }

  describe(): Record<string, unknown> {
    const cfg = this.chat.model.config;
    return {
      kind: 'local',
      dir: this.chat.dir,
      embedded: this.chat.dir === defaultModelDir(),
      modelType: cfg.modelType,
      style: this.chat.style,
      checkpoint: this.hash,
      caps: this.caps,
      maxBatch: this.batcher.maxBatch,
    };
  }

  requestTraits(): Record<string, unknown> {
    // Everything else that shapes a request (caps, params, media hashes) is already in the harness's key.
    return { kind: 'local', style: this.chat.style, budget: 'one-pass' };
  }

  /** The chat messages of a prompt (media first, then the text, unless the prompt asks first; as the endpoint path sends them). */
  messages(prompt: EvalPrompt): ChatMessage[] {
    const parts: ContentPart[] = prompt.images.map((path) => ({ type: 'image', image: path }));
    const v = prompt.video;
    if (v?.frames?.length) parts.push({ type: 'video', video: { frames: v.frames, fps: v.fps ?? 2 } });
    else if (v?.path) parts.push({ type: 'video', video: v.path });
    const text: ContentPart = { type: 'text', text: prompt.text };
    return [
      ...(prompt.system ? [{ role: 'system' as const, content: prompt.system }] : []),
      { role: 'user', content: prompt.questionFirst ? [text, ...parts] : [...parts, text] },
    ];
  }

  async generate(prompt: EvalPrompt, p: GenerationParams, signal?: AbortSignal): Promise<Generation> {
    if (this.closed) throw new Error('local model: closed');
    const t0 = performance.now();
    const input = await this.capped.prepare(this.messages(prompt), p.thinking);
    const budget = p.thinking && p.thinkingBudget !== undefined ? p.thinkingBudget : null;
    const answerTokens = budget === null ? 0 : (p.answerTokens ?? (p.maxTokens > budget ? p.maxTokens - budget : 1024));
    const gen = this.chat.generateOptions({
      thinking: p.thinking,
      thinkingBudget: budget,
      // Budget + the inserted closing tokens + the answer, as the two-phase endpoint call allows.
      maxNewTokens: budget === null ? p.maxTokens : budget + 2 + answerTokens,
      temperature: p.temperature,
      ...(p.topP !== undefined ? { topP: p.topP } : {}),
    });
    const job = this.batcher.submit(input, { ...gen, seed: p.seed ?? 0, ...(signal ? { signal } : {}) });
    const r = await job.result;
    if (r.finishReason === 'abort') throw new Error('local model: generation aborted');
    const norm = normalizeText(r.text, r.finishReason, { mode: 'lenient' });
    return {
      text: norm.text,
      reasoning: norm.reasoning,
      content: norm.content,
      thinkClosed: norm.thinkClosed,
      finishReason: r.finishReason,
      forcedAnswer: r.forced,
      truncatedThinking: norm.truncatedThinking,
      usage: {
        promptTokens: r.promptTokens,
        completionTokens: r.tokens.length,
        ...(norm.reasoning !== null ? { reasoningTokens: Math.min(r.thinkingTokens, r.tokens.length) } : {}),
      },
      latencyMs: performance.now() - t0,
      phases: 1,
    };
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.batcher.close();
  }
}
