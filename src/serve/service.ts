/**
 * Between the HTTP layer and the batcher: builds prompts from checked requests (media resolved under the policy,
 * chat template with the thinking switch, context-length checks), runs the n choices of a request as batcher jobs,
 * and turns token events into what the protocol sends: reasoning / content deltas with stop sequences cut out
 * (text that could still begin a stop sequence is held back, so a stream never shows a stop sequence or text
 * after it), per-token logprobs, usage counts.
 */
import { randomUUID } from 'node:crypto';
import { ThinkStreamSplitter } from '../io/answer/stream.js';
import { THINK_CLOSE, THINK_OPEN } from '../io/answer/tags.js';
import { ChatModel } from '../io/chat.js';
import type { GenerationInput, StreamEvent } from '../io/generate.js';
import { readGenerationConfig } from '../io/generation-config.js';
import type { Glm4vProcessor } from '../io/processor/request.js';
import type { ChatMessage, ContentPart } from '../io/template.js';
import { VideoBudgetError } from '../io/video.js';
import { ContinuousBatcher, type Job, type JobFinish, type JobResult, QueueFullError } from './batcher.js';
import { ApiError } from './errors.js';
import { type LogprobEntry, logprobEntry } from './logprobs.js';
import { fetchMediaBytes, loadRequestImage, type MediaPolicy } from './media.js';
import type { RequestOffload } from './offload.js';
import type { ChatParams, CompletionParams, MmProcessorKwargs, SamplingParams } from './protocol.js';
import {
  parseToolCalls,
  type ToolCall,
  ToolCallHoldback,
  type ToolDef,
  toolResponseText,
  toolsSystemText,
} from './tools.js';

export interface SamplingDefaults {
  temperature: number;
  topP: number;
  topK: number;
  repetitionPenalty: number;
}

export interface ServiceOptions {
  /** Name the model is served under (`/v1/models`, the `model` field). */
  modelName: string;
  /** Prompt + completion tokens of one sequence. */
  maxModelLen: number;
  /** Completion tokens when the request gives no max_tokens (capped by the context left). */
  defaultMaxTokens: number;
  /** Most choices per request (`n`). */
  maxN: number;
  media: MediaPolicy;
  /** Tokenizes off the event loop and holds the prompt character limit; default: tokenize inline, no limit. */
  offload?: RequestOffload;
  /** Sampling defaults; default: the model folder's generation_config.json, else OpenAI's (temperature 1). */
  defaults?: Partial<SamplingDefaults>;
}

/** A prompt ready for generation. */
export interface PreparedPrompt {
  input: GenerationInput;
  promptTokens: number;
  /** The prompt ends inside `<think>` (continuing an assistant turn mid-thought). */
  startInReasoning: boolean;
  /** Split the output into reasoning and content (chat) or keep it raw (completions). */
  split: boolean;
  thinking: boolean;
  /** Parse the answer's GLM tool calls into `tool_calls` against these functions (tool_choice auto). */
  tools?: ToolDef[] | null;
}

export interface ChoiceDelta {
  reasoning: string;
  content: string;
  logprobs: LogprobEntry[];
  /** Generated ids since the previous delta of this choice (stop token included). */
  tokenIds: number[];
}

export interface ChoiceResult {
  index: number;
  /** Raw text (think tags included), stop sequences cut. */
  text: string;
  reasoning: string;
  content: string;
  /** Whether the output had a thinking part to report (never with thinking off, unless the model still thought). */
  thought: boolean;
  /** `tool_calls` when the answer called tools (tool_choice auto) and ended on its own. */
  finishReason: JobFinish | 'tool_calls';
  /** The answer's tool calls (tool_choice auto), parsed from GLM's `<tool_call>` blocks. */
  toolCalls: ToolCall[];
  /** vLLM's stop_reason: the matched stop string, or the stop token id (null for the EOS token and other ends). */
  stopReason: string | number | null;
  completionTokens: number;
  reasoningTokens: number;
  logprobs: LogprobEntry[];
  /** Every generated id, the stop token included (vLLM's `token_ids`). */
  tokenIds: number[];
  /** Generated ids not yet passed to `onDelta` (the stream's last chunk carries them). */
  unsentTokenIds: number[];
  forced: boolean;
  /** The weights' version every token of this choice was sampled with. */
  policyVersion: number;
  job: JobResult;
}

/** Reads sampling defaults from a model folder's generation_config.json (as vLLM's `--generation-config auto`). */
export function generationDefaults(dir: string): Partial<SamplingDefaults> {
  const g = readGenerationConfig(dir);
  if (!g) return {};
  const num = (k: string) => (typeof g[k] === 'number' ? (g[k] as number) : undefined);
  const out: Partial<SamplingDefaults> = {};
  if (g.do_sample === false) out.temperature = 0;
  else if (num('temperature') !== undefined) out.temperature = num('temperature');
  if (num('top_p') !== undefined) out.topP = num('top_p');
  if (num('top_k') !== undefined) out.topK = num('top_k');
  if (num('repetition_penalty') !== undefined) out.repetitionPenalty = num('repetition_penalty');
  return out;
}

/** Holds back text that may begin a stop sequence; cuts at the first complete one. */
class StopFilter {
  private pending = '';
  stopped = false;
  /** The stop sequence that matched. */
  matched: string | null = null;
  constructor(
    private readonly stops: readonly string[],
    private readonly include = false,
  ) {}

  push(delta: string): string {
    if (this.stopped) return '';
    if (this.stops.length === 0) return delta;
    const buf = this.pending + delta;
    let cut = -1;
    let len = 0;
    for (const s of this.stops) {
      const i = buf.indexOf(s);
      if (i >= 0 && (cut < 0 || i < cut)) {
        cut = i;
        len = s.length;
        this.matched = s;
      }
    }
    if (cut >= 0) {
      this.stopped = true;
      this.pending = '';
      return buf.slice(0, this.include ? cut + len : cut);
    }
    let hold = 0;
    for (const s of this.stops)
      for (let k = Math.min(s.length - 1, buf.length); k > hold; k--)
        if (buf.endsWith(s.slice(0, k))) {
          hold = k;
          break;
        }
    this.pending = buf.slice(buf.length - hold);
    return buf.slice(0, buf.length - hold);
  }

  end(): string {
    const out = this.stopped ? '' : this.pending;
    this.pending = '';
    return out;
  }
}

class ChoiceState {
  text = '';
  reasoning = '';
  content = '';
  logprobs: LogprobEntry[] = [];
  /** Ids generated since the last delta handed out. */
  pendingIds: number[] = [];
  readonly stop: StopFilter;
  readonly splitter: ThinkStreamSplitter | null;
  /** With tools: content from a `<tool_call>` on is held back and parsed at the end. */
  readonly holdback: ToolCallHoldback | null;
  toolCalls: ToolCall[] = [];
  job: Job | null = null;

  constructor(
    readonly index: number,
    stops: readonly string[],
    includeStop: boolean,
    readonly prepared: PreparedPrompt,
  ) {
    this.stop = new StopFilter(stops, includeStop);
    this.splitter = prepared.split ? new ThinkStreamSplitter({ startInReasoning: prepared.startInReasoning }) : null;
    this.holdback = prepared.tools?.length ? new ToolCallHoldback() : null;
  }

  /** Text released by the stop filter → reasoning/content delta. */
  feed(text: string, final: boolean): { reasoning: string; content: string } {
    this.text += text;
    const d = { reasoning: '', content: '' };
    if (!this.splitter) d.content = text;
    else {
      const a = this.splitter.push(text);
      d.reasoning += a.reasoning;
      d.content += a.content;
      if (final) {
        const b = this.splitter.end();
        d.reasoning += b.reasoning;
        d.content += b.content;
      }
    }
    if (this.holdback) {
      d.content = this.holdback.push(d.content);
      if (final) {
        const held = this.holdback.end();
        const parsed = parseToolCalls(held, this.prepared.tools ?? [], () => `call_${randomUUID().replace(/-/g, '')}`);
        this.toolCalls = parsed.calls;
        d.content += parsed.content;
      }
    }
    this.reasoning += d.reasoning;
    this.content += d.content;
    return d;
  }

  /**
   * Whether to report a reasoning part. With thinking off, the empty `<think></think>` a GLM-4.1V model writes after
   * `/nothink` is no thinking: reasoning is null and reasoning_tokens 0 (vLLM with thinking off, and our docs).
   */
  get thought(): boolean {
    if (!this.splitter) return false;
    if (!this.prepared.thinking) return this.reasoning.trim() !== '';
    return this.prepared.startInReasoning || this.splitter.reasoningDone || this.reasoning !== '';
  }
}

export class ChatService {
  /** Prompt tokenization off the event loop, when the server gave an offload pool. */
  private get encoder(): ((text: string) => Promise<number[]>) | undefined {
    const off = this.opts.offload;
    return off ? (text) => off.encode(text) : undefined;
  }

  readonly defaults: SamplingDefaults;
  /**
   * Ids `skip_special_tokens` leaves out of the text: the tokenizer's special tokens, except the reasoning parser's
   * own `<think>` / `</think>` (it needs them to split the text and drops them itself, as vLLM's GLM parser works on
   * token ids), so a checkpoint whose tokenizer still flags them special splits the same way.
   */
  private readonly skipIds: ReadonlySet<number>;

  constructor(
    readonly chat: ChatModel,
    readonly batcher: ContinuousBatcher,
    readonly opts: ServiceOptions,
  ) {
    this.defaults = {
      temperature: 1,
      topP: 1,
      topK: 0,
      repetitionPenalty: 1,
      ...generationDefaults(chat.dir),
      ...(opts.defaults ?? {}),
    };
    const tok = chat.tokenizer;
    const keep = new Set([tok.tokenToId(THINK_OPEN), tok.tokenToId(THINK_CLOSE)]);
    this.skipIds = new Set([...tok.specialTokens.values()].filter((id) => !keep.has(id)));
  }

  /** The chat model with this request's `mm_processor_kwargs` applied to a copy of the processor. */
  private chatFor(kw: MmProcessorKwargs | null): ChatModel {
    if (!kw) return this.chat;
    let processor: Glm4vProcessor;
    try {
      processor = this.chat.processor.withOptions(kw);
    } catch (e) {
      throw new ApiError(400, `mm_processor_kwargs: ${(e as Error).message}`, 'mm_processor_kwargs', 'invalid_value');
    }
    return new ChatModel(this.chat.model, this.chat.tokenizer, processor, this.chat.dir);
  }

  /** Resolves media and renders the chat template. */
  async prepareChat(p: ChatParams, signal?: AbortSignal): Promise<PreparedPrompt> {
    const chat = this.chatFor(p.mmProcessorKwargs);
    // Cheap measures first: text that cannot fit the context is refused before any rendering or tokenizing.
    const off = this.opts.offload;
    if (off) {
      let chars = 0;
      for (const m of p.messages) {
        chars += m.reasoning?.length ?? 0;
        for (const x of m.parts) if (x.type === 'text') chars += x.text.length;
      }
      if (chars > off.maxPromptChars) throw off.tooLong(chars);
    }
    const media = p.messages.reduce((a, m) => a + m.parts.filter((x) => x.type !== 'text').length, 0);
    if (media > this.opts.media.maxMediaItems)
      throw new ApiError(
        413,
        `messages: ${media} images and videos, more than the limit of ${this.opts.media.maxMediaItems} per request`,
        'messages',
        'too_many_media',
      );
    const msgs: ChatMessage[] = [];
    for (const [i, m] of p.messages.entries()) {
      if (m.role === 'tool' && this.chat.style === 'glm41v')
        throw new ApiError(
          400,
          `messages[${i}].role: this model's chat template (GLM-4.1V) has no tool role`,
          `messages[${i}].role`,
          'invalid_role',
        );
      let content: string | ContentPart[];
      if (m.plain) content = (m.parts[0] as { text: string }).text;
      else {
        content = [];
        for (const part of m.parts) {
          if (part.type === 'text') content.push(part);
          else {
            const bytes = await fetchMediaBytes(part.url, this.opts.media, part.param, signal);
            if (part.type === 'image')
              content.push({ type: 'image', image: await loadRequestImage(bytes, this.opts.media, part.param) });
            else content.push({ type: 'video', video: bytes });
          }
        }
      }
      // Past tool calls go back as the model wrote them; tool results as the GLM template's observation turn.
      if (m.toolCalls !== null) {
        const text = typeof content === 'string' ? content : content.map((c) => (c as { text: string }).text).join('');
        content = text ? `${text}\n${m.toolCalls}` : m.toolCalls;
      }
      if (m.role === 'tool')
        content = toolResponseText(
          typeof content === 'string' ? content : content.map((c) => (c as { text?: string }).text ?? '').join(''),
        );
      msgs.push({
        role: m.role,
        content,
        ...(m.reasoning !== null ? { reasoning_content: m.reasoning } : {}),
      });
    }
    // The functions offered, as GLM-4.5-family templates list them: a system block before the conversation.
    if (p.tools) msgs.unshift({ role: 'system', content: toolsSystemText(p.tools) });
    const thinking = p.enableThinking ?? true;
    // Videos are probed before decoding: over the pixel budget, or more tokens than the context holds, is a 413.
    const decode = {
      signal,
      maxDecodedPixels: this.opts.media.maxVideoPixels,
      maxVideoTokens: this.opts.maxModelLen - 1,
    };
    let input: GenerationInput;
    let startInReasoning = false;
    try {
      if (p.continueFinalMessage) {
        const last = msgs.pop()!;
        if (msgs.length === 0)
          throw new ApiError(
            400,
            'messages: continue_final_message needs at least one message before the assistant message it continues',
            'messages',
          );
        const base = await chat.prepare(msgs, thinking, { media: decode, encode: this.encoder });
        let prefix =
          typeof last.content === 'string'
            ? last.content
            : last.content.map((c) => (c as { text: string }).text).join('');
        if (last.reasoning_content !== undefined)
          prefix = `${THINK_OPEN}${last.reasoning_content}${THINK_CLOSE}${prefix}`;
        // GLM-4.5V writes a newline after `<|assistant|>` itself; a continued turn must look like a generated one.
        if (this.chat.style === 'glm45v' && thinking && !prefix.startsWith('\n')) prefix = `\n${prefix}`;
        const open = prefix.lastIndexOf(THINK_OPEN);
        startInReasoning = open >= 0 && prefix.indexOf(THINK_CLOSE, open) < 0;
        const more = this.encoder ? await this.encoder(prefix) : this.chat.tokenizer.encode(prefix);
        input = { ...base, inputIds: [...base.inputIds, ...more] };
      } else input = await chat.prepare(msgs, thinking, { media: decode, encode: this.encoder });
    } catch (e) {
      if (e instanceof ApiError) throw e;
      if (e instanceof VideoBudgetError)
        throw new ApiError(413, `messages: ${e.message}`, 'messages', 'video_too_large');
      if ((e as Error).name === 'AbortError')
        throw new ApiError(499, 'the client closed the request while its media were decoded', null, 'cancelled');
      throw new ApiError(400, `messages: ${(e as Error).message}`, 'messages', 'invalid_messages');
    }
    return this.checkPrompt({
      input,
      promptTokens: input.inputIds.length,
      startInReasoning,
      split: true,
      thinking,
      tools: p.toolChoice === 'auto' ? p.tools : null,
    });
  }

  /** Tokenizes a raw prompt (`/v1/completions`). */
  async prepareCompletion(p: CompletionParams): Promise<PreparedPrompt> {
    const tok = this.chat.tokenizer;
    const off = this.opts.offload;
    let ids: number[];
    if (typeof p.prompt === 'string') {
      if (off && p.prompt.length > off.maxPromptChars) throw off.tooLong(p.prompt.length, 'prompt');
      ids = off
        ? await off.encode(p.prompt, p.addSpecialTokens)
        : tok.encode(p.prompt, { addSpecialTokens: p.addSpecialTokens });
    } else {
      ids = p.prompt;
      const V = this.chat.model.config.text.vocabSize;
      const bad = ids.findIndex((id) => id >= V);
      if (bad >= 0)
        throw new ApiError(
          400,
          `prompt[${bad}]: token id ${ids[bad]} is outside the vocabulary [0, ${V})`,
          `prompt[${bad}]`,
          'invalid_value',
        );
    }
    if (ids.length === 0) throw new ApiError(400, 'prompt: the prompt encodes to no tokens', 'prompt');
    // Raw prompts carry no media: an image/video placeholder id would reach the model with no pixels behind it.
    const cfg = this.chat.model.config;
    const placeholders = new Set([cfg.imageTokenId, cfg.videoTokenId]);
    const at = ids.findIndex((id) => placeholders.has(id));
    if (at >= 0) {
      const count = ids.filter((id) => placeholders.has(id)).length;
      throw new ApiError(
        400,
        `prompt: holds ${count} image/video placeholder token(s) (token ${ids[at]} at position ${at}) but /v1/completions takes no images or videos; send media as image_url/video_url parts to /v1/chat/completions`,
        'prompt',
        'invalid_value',
      );
    }
    const text = typeof p.prompt === 'string' ? p.prompt : tok.decode(ids, { skipSpecialTokens: false });
    const open = text.lastIndexOf(THINK_OPEN);
    return this.checkPrompt({
      input: { inputIds: ids },
      promptTokens: ids.length,
      startInReasoning: open >= 0 && text.indexOf(THINK_CLOSE, open) < 0,
      split: false,
      thinking: true,
    });
  }

  private checkPrompt(p: PreparedPrompt): PreparedPrompt {
    const L = this.opts.maxModelLen;
    if (p.promptTokens >= L)
      throw new ApiError(
        400,
        `This model's maximum context length is ${L} tokens. However, your prompt is ${p.promptTokens} tokens (images and videos included), which leaves no room to generate.`,
        'messages',
        'context_length_exceeded',
      );
    return p;
  }

  /** max_tokens checked against the context left (vLLM's rule), or the default. */
  maxTokensFor(p: SamplingParams, prepared: PreparedPrompt): number {
    const left = this.opts.maxModelLen - prepared.promptTokens;
    if (p.maxTokens === null) return Math.min(this.opts.defaultMaxTokens, left);
    if (p.maxTokens > left)
      throw new ApiError(
        400,
        `This model's maximum context length is ${this.opts.maxModelLen} tokens. However, you requested ${prepared.promptTokens + p.maxTokens} tokens (${prepared.promptTokens} in the prompt, ${p.maxTokens} for the completion). Reduce the prompt or max_tokens.`,
        'max_tokens',
        'context_length_exceeded',
      );
    return p.maxTokens;
  }

  /**
   * Submits every choice (synchronously: a full queue or a bad option throws ApiError here, before any response is
   * started); `onDelta` then receives each choice's deltas as they are certain, and `done` resolves when all
   * choices finished (or were aborted through `signal`).
   */
  start(
    prepared: PreparedPrompt,
    p: SamplingParams & { thinkingBudget?: number | null },
    signal: AbortSignal,
    onDelta?: (index: number, d: ChoiceDelta) => void,
  ): { done: Promise<ChoiceResult[]> } {
    const maxNewTokens = this.maxTokensFor(p, prepared);
    const V = this.chat.model.config.text.vocabSize;
    p.stopTokenIds.forEach((id, i) => {
      if (id >= V)
        throw new ApiError(
          400,
          `stop_token_ids[${i}]: token id ${id} is outside the vocabulary [0, ${V})`,
          `stop_token_ids[${i}]`,
        );
    });
    const seed = p.seed ?? Math.floor(Math.random() * 2 ** 32);
    const gen = this.chat.generateOptions({
      thinking: prepared.thinking,
      thinkingBudget: prepared.thinking ? (p.thinkingBudget ?? null) : null,
      maxNewTokens,
      temperature: p.temperature ?? this.defaults.temperature,
      topP: p.topP ?? this.defaults.topP,
      topK: p.topK ?? this.defaults.topK,
      repetitionPenalty: p.repetitionPenalty ?? this.defaults.repetitionPenalty,
      stopTokenIds: p.stopTokenIds,
      returnLogprobs: p.logprobs,
    });
    if (p.logprobs && p.topLogprobs > 0) gen.topLogprobs = p.topLogprobs;
    if (p.skipSpecialTokens) gen.skipTextIds = this.skipIds;
    const tok = this.chat.tokenizer;
    const choices = Array.from({ length: p.n }, (_, i) => new ChoiceState(i, p.stop, p.includeStop, prepared));
    const jobs: Job[] = [];
    try {
      for (const c of choices) {
        const onToken = (e: StreamEvent) => {
          const job = c.job;
          const lp: LogprobEntry[] = [];
          // Every generated token up to the one that completed a stop string (the stop token included, as vLLM).
          if (p.logprobs && job?.row && !c.stop.stopped) {
            const row = job.row;
            const top = p.topLogprobs > 0 ? (row.topLogprobs[row.topLogprobs.length - 1] ?? []) : [];
            lp.push(logprobEntry(tok, e.tokenId, row.logprobs[row.logprobs.length - 1] ?? 0, top));
            c.logprobs.push(...lp);
          }
          if (!c.stop.stopped) c.pendingIds.push(e.tokenId);
          const released = c.stop.push(e.text);
          if (c.stop.stopped) job?.end('stop');
          const d = c.feed(released, false);
          if (onDelta && (d.reasoning || d.content || lp.length)) {
            onDelta(c.index, { reasoning: d.reasoning, content: d.content, logprobs: lp, tokenIds: c.pendingIds });
            c.pendingIds = [];
          }
        };
        const job = this.batcher.submit(prepared.input, {
          ...gen,
          startInReasoning: prepared.startInReasoning,
          seed,
          choice: c.index,
          signal,
          onToken,
        });
        c.job = job;
        jobs.push(job);
      }
    } catch (e) {
      for (const j of jobs) j.end('abort');
      if (e instanceof QueueFullError)
        throw new ApiError(
          429,
          `The server is busy: ${e.queued} requests are waiting for a slot. Retry after ${e.retryAfterS} s.`,
          null,
          'queue_full',
          'rate_limit_error',
          { 'retry-after': String(e.retryAfterS) },
        );
      if (e instanceof ApiError) throw e;
      throw new ApiError(400, (e as Error).message, null, 'invalid_value');
    }
    return { done: Promise.all(jobs.map((j) => j.result)).then((results) => this.finish(results, choices, onDelta)) };
  }

  private finish(
    results: JobResult[],
    choices: ChoiceState[],
    onDelta?: (index: number, d: ChoiceDelta) => void,
  ): ChoiceResult[] {
    const eos = this.chat.tokenizer.eosTokenId;
    return results.map((r, i) => {
      const c = choices[i]!;
      const d = c.feed(c.stop.end(), true);
      if (onDelta && (d.reasoning || d.content)) {
        onDelta(i, { ...d, logprobs: [], tokenIds: c.pendingIds });
        c.pendingIds = [];
      }
      const last = r.tokens[r.tokens.length - 1];
      const stopReason =
        c.stop.matched ?? (r.finishReason === 'stop' && last !== undefined && last !== eos ? last : null);
      return {
        index: i,
        text: c.text,
        reasoning: c.reasoning,
        content: c.content,
        thought: c.thought,
        // vLLM's rule: a turn that ended on its own with calls finishes as tool_calls.
        finishReason: c.toolCalls.length && r.finishReason === 'stop' ? 'tool_calls' : r.finishReason,
        toolCalls: c.toolCalls,
        stopReason,
        completionTokens: r.tokens.length,
        reasoningTokens: c.thought ? Math.min(r.thinkingTokens, r.tokens.length) : 0,
        logprobs: c.logprobs,
        tokenIds: r.tokens,
        unsentTokenIds: c.pendingIds,
        forced: r.forced,
        policyVersion: r.policyVersion,
        job: r,
      };
    });
  }
}

export { ContinuousBatcher };
