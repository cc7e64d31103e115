/**
 * What thinking models return over an OpenAI-compatible API, in one shape (`NormalizedOutput`), whatever the
 * server's conventions (docs/design.md S.3):
 * - the reasoning field is `reasoning_content` (old vLLM, SGLang, Zhipu) or `reasoning` (vLLM ≥ 0.11); both are read;
 * - a server without a reasoning parser leaves raw `<think>…</think>` (and GLM-4.1V `<answer>` tags) in `content`;
 * - a missing `</think>`: a truncated generation, or a model that skipped it while the template pre-opened thinking
 *   (SGLang #37645: HTTP 200, `content: ""`, the whole answer in `reasoning_content`). Policy, identical for
 *   streamed (./stream.ts) and non-streamed responses: a reasoning field with empty content means thinking was never
 *   closed (`thinkClosed: false`); lenient extraction then looks for the answer inside the reasoning;
 * - answers are parsed by the one shared parser (src/io/answer/): box extraction, grounding boxes, points.
 */
import type { ExtractMode } from '../../io/answer/extract.js';
import { type ParsedResponse, parseResponse } from '../../io/answer/response.js';
import { THINK_CLOSE, THINK_OPEN } from '../../io/answer/tags.js';

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

export function asText(v: unknown): string | null {
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

export function fromText(
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

export function parseUsage(u: unknown): Usage | undefined {
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

export function addUsage(a: Usage | undefined, b: Usage | undefined): Usage | undefined {
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
