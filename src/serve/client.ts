/**
 * The glmv client: a thin layer over the official `openai` package for OpenAI-compatible servers (vLLM, SGLang,
 * Zhipu's API, our own `glmv serve`) that normalises what thinking models return (./client/normalize.ts, streams in
 * ./client/stream.ts, grounding helpers in ./client/grounding.ts; all re-exported here, the client's public API).
 *
 * The two-phase thinking budget (`chatWithBudget`, docs/design.md D.6 "force answering"): phase 1 generates at most N
 * tokens. If thinking did not close (or the answer was cut), phase 2 continues the same assistant turn with
 * `</think>` plus the answer opener appended (`<answer>` for GLM-4.1V, a newline for GLM-4.5V), either as a chat
 * continuation (`continue_final_message: true`, `add_generation_prompt: false`: vLLM and SGLang, images allowed) or
 * through `/v1/completions` with the prompt rendered by our chat template (exact, text-only prompts). A reasoning
 * parser cannot know that the continued prefix already closed thinking and may file the phase-2 text under
 * `reasoning`; phase 2 therefore reads reasoning and content of the continuation together, in that order.
 */
import OpenAI from 'openai';
import type { ExtractMode } from '../io/answer/extract.js';
import { ANSWER_OPEN, THINK_CLOSE } from '../io/answer/tags.js';
import {
  type ContentPart,
  renderChat,
  type ChatMessage as TemplateMessage,
  type TemplateName,
} from '../io/template.js';
import {
  addUsage,
  asText,
  fromText,
  type NormalizedOutput,
  normalizeMessage,
  parseUsage,
  type Usage,
} from './client/normalize.js';
import { type StreamDelta, StreamNormalizer } from './client/stream.js';

export { answerBoxes, answerBoxesPixels, answerPoints } from './client/grounding.js';
export {
  type NormalizedOutput,
  type NormalizeOptions,
  normalizeMessage,
  normalizeText,
  type ReasoningSource,
  type Usage,
} from './client/normalize.js';
export { type StreamDelta, StreamNormalizer } from './client/stream.js';

export type ChatMessageParam = OpenAI.Chat.Completions.ChatCompletionMessageParam;

export interface ClientOptions {
  /** OpenAI-compatible base URL including `/v1`, e.g. `http://localhost:8000/v1`. */
  baseURL: string;
  /** API key; default `process.env.OPENAI_API_KEY` or `EMPTY` (vLLM/SGLang accept anything when unauthenticated). */
  apiKey?: string;
  /** Model name; default: the first model the server lists at `/v1/models`. */
  model?: string;
  /** Per-request timeout in milliseconds (default 600 000: long thinking takes minutes). */
  timeoutMs?: number;
  /** Retries on connection errors, 408, 409, 429 and 5xx, with the SDK's exponential backoff (default 3). */
  maxRetries?: number;
  /** Answer extraction mode for `answer` (default `lenient`: any model; `strict` is the GLM reward rule). */
  extract?: ExtractMode;
  /** Replace `fetch` (tests, proxies). */
  fetch?: typeof fetch;
}

export interface ChatRequest {
  messages: ChatMessageParam[];
  /** `false` sends `chat_template_kwargs.enable_thinking = false`; `true` sends `true`; absent: server default. */
  thinking?: boolean;
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  seed?: number;
  stop?: string[];
  /** The chat template pre-opens `<think>`, so raw output starts inside the reasoning. */
  prefilledThink?: boolean;
  /** Extra top-level body fields (`top_k`, `repetition_penalty`, `skip_special_tokens`, …). */
  extraBody?: Record<string, unknown>;
  /** Overrides the client's model for this request. */
  model?: string;
  signal?: AbortSignal;
}

export interface PhaseInfo {
  kind: 'chat' | 'chat_continue' | 'completions';
  maxTokens: number | null;
  finishReason: string | null;
  usage?: Usage;
  latencyMs: number;
}

export interface ChatResult extends NormalizedOutput {
  model: string;
  id: string | null;
  usage?: Usage;
  /** Wall time of all phases. */
  latencyMs: number;
  phases: PhaseInfo[];
  /** Phase 2 appended `</think>` to force an answer. */
  forcedAnswer: boolean;
  /** The response and its choice as the server sent them (`chat` only): server extensions such as `token_ids`. */
  raw?: { response: Record<string, unknown>; choice: Record<string, unknown> };
}

export interface BudgetRequest extends ChatRequest {
  /** Most tokens phase 1 may generate (the thinking budget, e.g. 8192). */
  thinkingBudget: number;
  /** Most tokens of the forced answer in phase 2 (default 1024). */
  answerTokens?: number;
  /** How phase 2 continues: `chat` (default) or `completions` (text-only prompts). */
  continuation?: 'chat' | 'completions';
  /** Output convention of the model: decides what follows the forced `</think>` (default `glm45v`). */
  style?: 'glm41v' | 'glm45v';
  /** Chat template for `completions` continuation (a built-in name or template text; default `glm45v`). */
  template?: TemplateName | string;
}

function checkPositiveInt(v: number | undefined, name: string): void {
  if (v !== undefined && (!Number.isInteger(v) || v <= 0))
    throw new Error(`${name}: expected a positive integer, found ${JSON.stringify(v)}`);
}

export class GlmvClient {
  readonly openai: OpenAI;
  readonly baseURL: string;
  private model: string | undefined;
  private readonly extract: ExtractMode;

  constructor(opts: ClientOptions) {
    if (typeof opts?.baseURL !== 'string' || !/^https?:\/\/\S+$/i.test(opts.baseURL))
      throw new Error(
        `client baseURL: expected an http(s) URL such as http://localhost:8000/v1, found ${JSON.stringify(opts?.baseURL)}`,
      );
    checkPositiveInt(opts.timeoutMs, 'client timeoutMs');
    if (opts.maxRetries !== undefined && (!Number.isInteger(opts.maxRetries) || opts.maxRetries < 0))
      throw new Error(`client maxRetries: expected a non-negative integer, found ${JSON.stringify(opts.maxRetries)}`);
    if (opts.extract !== undefined && opts.extract !== 'strict' && opts.extract !== 'lenient')
      throw new Error(`client extract: expected strict or lenient, found ${JSON.stringify(opts.extract)}`);
    this.baseURL = opts.baseURL.replace(/\/+$/, '');
    this.model = opts.model;
    this.extract = opts.extract ?? 'lenient';
    this.openai = new OpenAI({
      baseURL: this.baseURL,
      apiKey: opts.apiKey ?? process.env.OPENAI_API_KEY ?? 'EMPTY',
      timeout: opts.timeoutMs ?? 600_000,
      maxRetries: opts.maxRetries ?? 3,
      ...(opts.fetch ? { fetch: opts.fetch } : {}),
    });
  }

  /** Models the server serves. */
  async listModels(): Promise<string[]> {
    const out: string[] = [];
    try {
      for await (const m of this.openai.models.list()) out.push(m.id);
    } catch (e) {
      throw new Error(`${this.baseURL}/models: cannot list models (${describeError(e)})`);
    }
    return out;
  }

  /** The model requests use: the configured one, else the first the server lists. */
  async resolveModel(): Promise<string> {
    if (this.model) return this.model;
    const models = await this.listModels();
    if (models.length === 0) throw new Error(`${this.baseURL}/models: the server lists no models; pass a model name`);
    this.model = models[0]!;
    return this.model;
  }

  private async body(req: ChatRequest, stream: boolean): Promise<Record<string, unknown>> {
    if (!Array.isArray(req.messages) || req.messages.length === 0)
      throw new Error('chat request: expected a non-empty messages array');
    checkPositiveInt(req.maxTokens, 'chat request maxTokens');
    const body: Record<string, unknown> = {
      model: req.model ?? (await this.resolveModel()),
      messages: req.messages,
      ...(req.maxTokens !== undefined ? { max_tokens: req.maxTokens } : {}),
      ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
      ...(req.topP !== undefined ? { top_p: req.topP } : {}),
      ...(req.seed !== undefined ? { seed: req.seed } : {}),
      ...(req.stop?.length ? { stop: req.stop } : {}),
      ...(req.extraBody ?? {}),
    };
    if (req.thinking !== undefined) {
      // A top-level field over raw HTTP; `extra_body` is only the Python SDK's spelling of it (docs/design.md S.2).
      const prev = (body.chat_template_kwargs ?? {}) as Record<string, unknown>;
      body.chat_template_kwargs = { ...prev, enable_thinking: req.thinking };
    }
    if (stream) {
      body.stream = true;
      body.stream_options = { include_usage: true };
    }
    return body;
  }

  /** One chat completion, normalised. */
  async chat(req: ChatRequest): Promise<ChatResult> {
    const t0 = performance.now();
    const body = await this.body(req, false);
    let resp: Record<string, unknown>;
    try {
      resp = (await this.openai.chat.completions.create(body as never, { signal: req.signal })) as unknown as Record<
        string,
        unknown
      >;
    } catch (e) {
      throw new Error(`${this.baseURL}/chat/completions: ${describeError(e)}`);
    }
    const choices = Array.isArray(resp?.choices) ? (resp.choices as Array<Record<string, unknown>>) : [];
    const choice = choices[0];
    if (!choice)
      throw new Error(
        `${this.baseURL}/chat/completions: expected choices[0] in the response, found ${JSON.stringify(resp).slice(0, 200)}`,
      );
    const norm = normalizeMessage(choice.message, (choice.finish_reason as string | null) ?? null, {
      mode: this.extract,
      prefilledThink: req.prefilledThink,
    });
    const usage = parseUsage(resp.usage);
    const latencyMs = performance.now() - t0;
    return {
      ...norm,
      model: typeof resp.model === 'string' ? resp.model : String(body.model),
      id: typeof resp.id === 'string' ? resp.id : null,
      ...(usage ? { usage } : {}),
      latencyMs,
      phases: [{ kind: 'chat', maxTokens: req.maxTokens ?? null, finishReason: norm.finishReason, usage, latencyMs }],
      forcedAnswer: false,
      raw: { response: resp, choice },
    };
  }

  /** A streamed chat completion; `onDelta` receives reasoning/content as they arrive. Same result as `chat`. */
  async chatStream(req: ChatRequest, onDelta?: (d: StreamDelta) => void): Promise<ChatResult> {
    const t0 = performance.now();
    const body = await this.body(req, true);
    const acc = new StreamNormalizer({ mode: this.extract, prefilledThink: req.prefilledThink });
    try {
      const stream = (await this.openai.chat.completions.create(body as never, {
        signal: req.signal,
      })) as unknown as AsyncIterable<unknown>;
      for await (const chunk of stream) {
        const d = acc.push(chunk);
        if (onDelta && (d.reasoning || d.content)) onDelta(d);
      }
    } catch (e) {
      throw new Error(`${this.baseURL}/chat/completions (stream): ${describeError(e)}`);
    }
    const tail = acc.flush();
    if (onDelta && (tail.reasoning || tail.content)) onDelta(tail);
    const norm = acc.result();
    const latencyMs = performance.now() - t0;
    return {
      ...norm,
      model: acc.model || String(body.model),
      id: acc.id,
      ...(acc.usage ? { usage: acc.usage } : {}),
      latencyMs,
      phases: [
        {
          kind: 'chat',
          maxTokens: req.maxTokens ?? null,
          finishReason: norm.finishReason,
          usage: acc.usage,
          latencyMs,
        },
      ],
      forcedAnswer: false,
    };
  }

  /**
   * Chat with a thinking budget (see the file comment). With thinking off there is nothing to budget: one call with
   * `maxTokens` (or `thinkingBudget + answerTokens`).
   */
  async chatWithBudget(req: BudgetRequest): Promise<ChatResult> {
    checkPositiveInt(req.thinkingBudget, 'thinkingBudget');
    checkPositiveInt(req.answerTokens, 'answerTokens');
    const answerTokens = req.answerTokens ?? 1024;
    const style = req.style ?? 'glm45v';
    if (style !== 'glm41v' && style !== 'glm45v')
      throw new Error(`style: expected glm41v or glm45v, found ${JSON.stringify(style)}`);
    const continuation = req.continuation ?? 'chat';
    if (continuation !== 'chat' && continuation !== 'completions')
      throw new Error(`continuation: expected chat or completions, found ${JSON.stringify(continuation)}`);
    if (continuation === 'completions') textOnlyMessages(req.messages); // fail before spending phase 1
    if (req.thinking === false)
      return this.chat({ ...req, maxTokens: req.maxTokens ?? req.thinkingBudget + answerTokens });

    const t0 = performance.now();
    const first = await this.chat({ ...req, maxTokens: req.thinkingBudget });
    const thinking = first.reasoning !== null;
    const needsForce = thinking && !first.thinkClosed;
    const cutAnswer = first.finishReason === 'length' && !needsForce;
    if (!needsForce && !cutAnswer) return first;

    // Continue the same assistant turn: close thinking (when open) and open the answer.
    const opener = style === 'glm41v' ? ANSWER_OPEN : '\n';
    const prefix = needsForce ? `${first.text.replace(/\s+$/, '')}${THINK_CLOSE}${opener}` : first.text;
    const t1 = performance.now();
    let contText: string;
    let finish: string | null;
    let usage: Usage | undefined;
    let kind: PhaseInfo['kind'];
    if (continuation === 'chat') {
      kind = 'chat_continue';
      const body = await this.body(
        {
          ...req,
          maxTokens: answerTokens,
          messages: [...req.messages, { role: 'assistant', content: prefix }],
          extraBody: { ...(req.extraBody ?? {}), continue_final_message: true, add_generation_prompt: false },
        },
        false,
      );
      let resp: Record<string, unknown>;
      try {
        resp = (await this.openai.chat.completions.create(body as never, { signal: req.signal })) as unknown as Record<
          string,
          unknown
        >;
      } catch (e) {
        throw new Error(`${this.baseURL}/chat/completions (forced answer): ${describeError(e)}`);
      }
      const choice = (resp.choices as Array<Record<string, unknown>> | undefined)?.[0];
      if (!choice) throw new Error(`${this.baseURL}/chat/completions (forced answer): no choices in the response`);
      const msg = (choice.message ?? {}) as Record<string, unknown>;
      // The parser may file the continuation under reasoning (it never saw `<think>` open in this output).
      contText = (asText(msg.reasoning_content) || asText(msg.reasoning) || '') + (asText(msg.content) ?? '');
      finish = (choice.finish_reason as string | null) ?? null;
      usage = parseUsage(resp.usage);
    } else {
      kind = 'completions';
      const prompt =
        renderChat(req.template ?? 'glm45v', textOnlyMessages(req.messages), {
          ...(req.thinking !== undefined ? { enableThinking: req.thinking } : {}),
        }) + prefix;
      const body: Record<string, unknown> = {
        model: req.model ?? (await this.resolveModel()),
        prompt,
        max_tokens: answerTokens,
        ...(req.temperature !== undefined ? { temperature: req.temperature } : {}),
        ...(req.topP !== undefined ? { top_p: req.topP } : {}),
        ...(req.seed !== undefined ? { seed: req.seed } : {}),
        // The rendered prompt already holds [gMASK]<sop>; do not let the server add them again.
        add_special_tokens: false,
        skip_special_tokens: false,
        ...(req.extraBody ?? {}),
      };
      let resp: Record<string, unknown>;
      try {
        resp = (await this.openai.completions.create(body as never, { signal: req.signal })) as unknown as Record<
          string,
          unknown
        >;
      } catch (e) {
        throw new Error(`${this.baseURL}/completions (forced answer): ${describeError(e)}`);
      }
      const choice = (resp.choices as Array<Record<string, unknown>> | undefined)?.[0];
      if (!choice || typeof choice.text !== 'string')
        throw new Error(`${this.baseURL}/completions (forced answer): expected choices[0].text in the response`);
      contText = choice.text;
      finish = (choice.finish_reason as string | null) ?? null;
      usage = parseUsage(resp.usage);
    }
    const norm = fromText(
      prefix + contText,
      finish,
      first.reasoningSource === 'none' ? 'tags' : first.reasoningSource,
      this.extract,
    );
    const latency2 = performance.now() - t1;
    return {
      ...norm,
      // The budget was spent while thinking: report it even though phase 2 finished normally.
      truncatedThinking: needsForce && first.finishReason === 'length',
      model: first.model,
      id: first.id,
      ...(addUsage(first.usage, usage) ? { usage: addUsage(first.usage, usage) } : {}),
      latencyMs: performance.now() - t0,
      phases: [...first.phases, { kind, maxTokens: answerTokens, finishReason: finish, usage, latencyMs: latency2 }],
      forcedAnswer: needsForce,
    };
  }
}

/** OpenAI messages → template messages for `/v1/completions`; images cannot travel in a text prompt. */
function textOnlyMessages(messages: ChatMessageParam[]): TemplateMessage[] {
  return messages.map((m, i) => {
    const c = (m as { content?: unknown }).content;
    let content: string | ContentPart[];
    if (typeof c === 'string') content = c;
    else if (Array.isArray(c)) {
      content = c.map((p, j) => {
        const part = p as { type?: string; text?: string };
        if (part.type !== 'text' || typeof part.text !== 'string')
          throw new Error(
            `completions continuation: message ${i} part ${j} is ${JSON.stringify(part.type)}; a /v1/completions prompt carries text only (use continuation "chat" for images and video)`,
          );
        return { type: 'text', text: part.text };
      });
    } else content = '';
    const role = m.role === 'developer' ? 'system' : m.role === 'function' ? 'tool' : m.role;
    return { role, content } as TemplateMessage;
  });
}

/** A readable one-line description of an SDK or network error. */
export function describeError(e: unknown): string {
  if (e instanceof OpenAI.APIError) {
    const status = e.status !== undefined ? `HTTP ${e.status}` : 'no HTTP status';
    return `${status}: ${e.message}`;
  }
  if (e instanceof Error) return e.message;
  return String(e);
}
