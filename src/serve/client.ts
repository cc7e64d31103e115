/**
 * The glmv client: a thin layer over the official `openai` package for OpenAI-compatible servers (vLLM, SGLang,
 * Zhipu's API, our own `glmv serve`) that normalises what thinking models return.
 *
 * What it smooths over (docs/design.md S.3):
 * - the reasoning field is `reasoning_content` (old vLLM, SGLang, Zhipu) or `reasoning` (vLLM ≥ 0.11); both are read;
 * - a server without a reasoning parser leaves raw `<think>…</think>` (and GLM-4.1V `<answer>` tags) in `content`;
 * - a missing `</think>`: a truncated generation, or a model that skipped it while the template pre-opened thinking
 *   (SGLang #37645: HTTP 200, `content: ""`, the whole answer in `reasoning_content`). Policy, identical for
 *   streamed and non-streamed responses: a reasoning field with empty content means thinking was never closed
 *   (`thinkClosed: false`); lenient extraction then looks for the answer inside the reasoning;
 * - answers are parsed by the one shared parser (src/io/answer/): box extraction, grounding boxes, points.
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
import {
  type Box,
  type ImageSize,
  normToPixel,
  type ParsedBox,
  type Point,
  parseBoxes,
  parsePoints,
} from '../io/answer/geometry.js';
import { type ParsedResponse, parseResponse } from '../io/answer/response.js';
import { ThinkStreamSplitter } from '../io/answer/stream.js';
import { ANSWER_OPEN, THINK_CLOSE, THINK_OPEN } from '../io/answer/tags.js';
import {
  type ContentPart,
  renderChat,
  type ChatMessage as TemplateMessage,
  type TemplateName,
} from '../io/template.js';

// ---------------------------------------------------------------------------------------------------------------
// Types
// ---------------------------------------------------------------------------------------------------------------

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

export interface Usage {
  promptTokens: number;
  completionTokens: number;
  /** Reasoning tokens when the server reports them. */
  reasoningTokens?: number;
}

/** Where the reasoning came from. */
export type ReasoningSource = 'reasoning_content' | 'reasoning' | 'tags' | 'none';

/** A thinking model's answer in one shape, whatever the server's conventions. */
export interface NormalizedOutput {
  /** The thinking, trimmed; null when the response has none. */
  reasoning: string | null;
  /** The answer part (inside `<answer>` when the model uses those tags), trimmed. */
  content: string;
  /**
   * The response as the model wrote it: `<think>{reasoning}</think>{content}` (no `</think>` when thinking never
   * closed), or the raw content when the server sent raw tags. This is what rewards and eval score.
   */
  text: string;
  /** False when thinking was opened and never closed. */
  thinkClosed: boolean;
  finishReason: string | null;
  /** `finish_reason` was `length`. */
  truncated: boolean;
  /** Cut by the length limit before `</think>`. */
  truncatedThinking: boolean;
  reasoningSource: ReasoningSource;
  /** The shared parser's view (format check, box extraction). */
  parsed: ParsedResponse;
  /** The extracted answer (box content, or the lenient fallbacks), or null. */
  answer: string | null;
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

export interface StreamDelta {
  reasoning: string;
  content: string;
}

// ---------------------------------------------------------------------------------------------------------------
// Normalisation of one message
// ---------------------------------------------------------------------------------------------------------------

function asText(v: unknown): string | null {
  if (typeof v === 'string') return v;
  // Some servers return content as an array of parts.
  if (Array.isArray(v)) {
    const parts = v
      .map((p) =>
        typeof p === 'string'
          ? p
          : p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string'
            ? (p as { text: string }).text
            : '',
      )
      .join('');
    return parts;
  }
  return null;
}

const RAW_TAG_RE = /<\/?think>/i;

export interface NormalizeOptions {
  mode?: ExtractMode;
  prefilledThink?: boolean;
}

/**
 * Normalises one assistant message (`choices[i].message` of a chat completion, or an accumulated stream) and its
 * finish reason. Never throws on odd shapes: missing fields become empty.
 */
export function normalizeMessage(
  message: unknown,
  finishReason: string | null = null,
  opts: NormalizeOptions = {},
): NormalizedOutput {
  const m = (message && typeof message === 'object' ? message : {}) as Record<string, unknown>;
  const rc = asText(m.reasoning_content);
  const r = asText(m.reasoning);
  let field: string | null = null;
  let source: ReasoningSource = 'none';
  // Prefer a non-empty value; both are sent by vLLM versions that keep the alias.
  if (rc !== null && rc !== '') {
    field = rc;
    source = 'reasoning_content';
  } else if (r !== null && r !== '') {
    field = r;
    source = 'reasoning';
  }
  const content = asText(m.content) ?? '';
  let text: string;
  if (field !== null) {
    // Content empty: thinking never closed (truncation, or a parser that filed a skipped-thinking answer as reasoning).
    const closed = content.trim() !== '';
    text = `${THINK_OPEN}${field}${closed ? `${THINK_CLOSE}${content}` : ''}`;
  } else {
    text = content;
    if (opts.prefilledThink && !/^\s*<think>/i.test(text)) text = THINK_OPEN + text;
    if (RAW_TAG_RE.test(text)) source = 'tags';
  }
  return fromText(text, finishReason, source, opts.mode ?? 'lenient');
}

function fromText(
  text: string,
  finishReason: string | null,
  source: ReasoningSource,
  mode: ExtractMode,
): NormalizedOutput {
  const parsed = parseResponse(text, { mode });
  const truncated = finishReason === 'length';
  return {
    reasoning: parsed.reasoning,
    content: parsed.content,
    text,
    thinkClosed: parsed.thinkClosed,
    finishReason,
    truncated,
    truncatedThinking: truncated && !parsed.thinkClosed,
    reasoningSource: parsed.reasoning === null ? 'none' : source === 'none' ? 'tags' : source,
    parsed,
    answer: parsed.answer,
  };
}

/** Normalises raw model text (local generation, `/v1/completions` output, a cache entry). */
export function normalizeText(
  text: string,
  finishReason: string | null = null,
  opts: NormalizeOptions = {},
): NormalizedOutput {
  let t = text;
  if (opts.prefilledThink && !/^\s*<think>/i.test(t)) t = THINK_OPEN + t;
  return fromText(t, finishReason, RAW_TAG_RE.test(t) ? 'tags' : 'none', opts.mode ?? 'lenient');
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming
// ---------------------------------------------------------------------------------------------------------------

/**
 * Accumulates streamed chat chunks (`data:` payloads of an SSE stream) into the same normalised result as a
 * non-streamed response, and yields display deltas in which reasoning and content are already separated, whether
 * the server sends reasoning fields or raw `<think>` tags (split tags across chunks are held back, never leaked).
 */
export class StreamNormalizer {
  private fieldReasoning = '';
  private fieldSource: ReasoningSource = 'none';
  private content = '';
  private finish: string | null = null;
  private splitter: ThinkStreamSplitter;
  id: string | null = null;
  model = '';
  usage?: Usage;

  constructor(private readonly opts: NormalizeOptions = {}) {
    this.splitter = new ThinkStreamSplitter({ startInReasoning: !!opts.prefilledThink, stripAnswerTags: true });
  }

  /** Feeds one chunk object; returns what it adds for display. */
  push(chunk: unknown): StreamDelta {
    const out: StreamDelta = { reasoning: '', content: '' };
    if (!chunk || typeof chunk !== 'object') return out;
    const c = chunk as Record<string, unknown>;
    if (typeof c.id === 'string') this.id ??= c.id;
    if (typeof c.model === 'string' && !this.model) this.model = c.model;
    const u = parseUsage(c.usage);
    if (u) this.usage = u;
    const choices = Array.isArray(c.choices) ? c.choices : [];
    const choice = choices.find((x) => (x as { index?: number })?.index === 0 || choices.length === 1) as
      | Record<string, unknown>
      | undefined;
    if (!choice) return out;
    if (typeof choice.finish_reason === 'string') this.finish = choice.finish_reason;
    const d = (choice.delta ?? {}) as Record<string, unknown>;
    const rc = asText(d.reasoning_content);
    const r = asText(d.reasoning);
    const rdelta = rc !== null && rc !== '' ? rc : r !== null && r !== '' ? r : '';
    if (rdelta) {
      if (this.fieldSource === 'none') this.fieldSource = rc ? 'reasoning_content' : 'reasoning';
      this.fieldReasoning += rdelta;
      out.reasoning += rdelta;
    }
    const cdelta = asText(d.content) ?? '';
    if (cdelta) {
      this.content += cdelta;
      if (this.fieldSource !== 'none') out.content += cdelta;
      else {
        const s = this.splitter.push(cdelta);
        out.reasoning += s.reasoning;
        out.content += s.content;
      }
    }
    return out;
  }

  /** Flushes held-back text at the end of the stream. */
  flush(): StreamDelta {
    return this.fieldSource === 'none' ? this.splitter.end() : { reasoning: '', content: '' };
  }

  result(): NormalizedOutput {
    const msg: Record<string, unknown> = { content: this.content };
    if (this.fieldSource !== 'none') msg[this.fieldSource] = this.fieldReasoning;
    return normalizeMessage(msg, this.finish, this.opts);
  }
}

function parseUsage(u: unknown): Usage | undefined {
  if (!u || typeof u !== 'object') return undefined;
  const x = u as Record<string, unknown>;
  const prompt = typeof x.prompt_tokens === 'number' ? x.prompt_tokens : undefined;
  const completion = typeof x.completion_tokens === 'number' ? x.completion_tokens : undefined;
  if (prompt === undefined && completion === undefined) return undefined;
  const details = x.completion_tokens_details as Record<string, unknown> | undefined;
  const reasoning =
    typeof details?.reasoning_tokens === 'number'
      ? details.reasoning_tokens
      : typeof x.reasoning_tokens === 'number' && x.reasoning_tokens > 0
        ? x.reasoning_tokens
        : undefined;
  return {
    promptTokens: prompt ?? 0,
    completionTokens: completion ?? 0,
    ...(reasoning !== undefined ? { reasoningTokens: reasoning } : {}),
  };
}

function addUsage(a: Usage | undefined, b: Usage | undefined): Usage | undefined {
  if (!a) return b;
  if (!b) return a;
  const out: Usage = {
    promptTokens: a.promptTokens + b.promptTokens,
    completionTokens: a.completionTokens + b.completionTokens,
  };
  if (a.reasoningTokens !== undefined || b.reasoningTokens !== undefined)
    out.reasoningTokens = (a.reasoningTokens ?? 0) + (b.reasoningTokens ?? 0);
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Grounding helpers on a normalised answer
// ---------------------------------------------------------------------------------------------------------------

/** Boxes in the answer (the extracted answer when there is one, else the answer part), normalised 0–1000. */
export function answerBoxes(
  out: Pick<NormalizedOutput, 'answer' | 'content'>,
  system: 'grounding' | 'gui' = 'grounding',
): ParsedBox[] {
  return parseBoxes(out.answer ?? out.content, { system });
}

/** Valid boxes of the answer converted to pixels of an image of `size`. */
export function answerBoxesPixels(out: Pick<NormalizedOutput, 'answer' | 'content'>, size: ImageSize): Box[] {
  return answerBoxes(out)
    .filter((b) => !b.problem)
    .map((b) => normToPixel(b.box, size));
}

/** Points `[x, y]` in the answer (GUI clicks), as written (normalised for GLM models). */
export function answerPoints(out: Pick<NormalizedOutput, 'answer' | 'content'>): Point[] {
  return parsePoints(out.answer ?? out.content);
}

// ---------------------------------------------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------------------------------------------

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
