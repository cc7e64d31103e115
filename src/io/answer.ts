/**
 * The one answer parser of glmv, shared by generation, rewards, eval and the serving client.
 *
 * GLM-4.1V-Thinking answers `<think>…</think><answer>…</answer>`; GLM-4.5V drops the answer tags and answers
 * `<think>…</think>…` (docs/design.md D.2, D.4). Verifiable answers carry exactly one `<|begin_of_box|>…<|end_of_box|>`.
 * Everything here is a pure function over strings: no tensors, no I/O, linear-time scans (tags are found with one
 * global regex pass and indexes, never with backtracking regexes over the whole response, so giant outputs stay cheap).
 */

// ---------------------------------------------------------------------------------------------------------------
// Tags
// ---------------------------------------------------------------------------------------------------------------

export const THINK_OPEN = '<think>';
export const THINK_CLOSE = '</think>';
export const ANSWER_OPEN = '<answer>';
export const ANSWER_CLOSE = '</answer>';
export const BOX_OPEN = '<|begin_of_box|>';
export const BOX_CLOSE = '<|end_of_box|>';

type TagKind = 'think_open' | 'think_close' | 'answer_open' | 'answer_close' | 'box_open' | 'box_close';

interface Tag {
  kind: TagKind;
  start: number;
  end: number;
}

// Case-insensitive like the released reward regex (docs/design.md D.4); box tokens are special tokens, matched exactly.
const TAG_RE = /<(\/?)(think|answer)>|<\|(begin|end)_of_box\|>/gi;

function scanTags(text: string): Tag[] {
  const tags: Tag[] = [];
  TAG_RE.lastIndex = 0;
  for (let m = TAG_RE.exec(text); m !== null; m = TAG_RE.exec(text)) {
    let kind: TagKind;
    if (m[2] !== undefined) {
      const name = m[2].toLowerCase() as 'think' | 'answer';
      kind = `${name}_${m[1] ? 'close' : 'open'}` as TagKind;
    } else {
      kind = m[3]!.toLowerCase() === 'begin' ? 'box_open' : 'box_close';
    }
    tags.push({ kind, start: m.index, end: m.index + m[0].length });
  }
  return tags;
}

const count = (tags: Tag[], kind: TagKind) => tags.reduce((n, t) => n + (t.kind === kind ? 1 : 0), 0);

// ---------------------------------------------------------------------------------------------------------------
// Thinking / answer split
// ---------------------------------------------------------------------------------------------------------------

/** Which output convention a response follows. `plain`: no think tags at all (non-GLM models, tool output). */
export type ResponseStyle = 'glm41v' | 'glm45v' | 'plain';

/** Structural observations made while splitting; `checkFormat` decides which of them fail strict mode. */
export type SplitIssue =
  /** `</think>` without a preceding `<think>` (a template that pre-opens thinking, or a stripped prefix). */
  | 'missing_think_open'
  /** `<think>` never closed: truncated generation or a model that skipped `</think>`. */
  | 'unclosed_think'
  /** `<answer>` never closed. */
  | 'unclosed_answer'
  /** Non-whitespace text before `<think>`. */
  | 'text_before_think'
  /** Non-whitespace text between `</think>` and `<answer>` or after `</answer>`. */
  | 'text_outside_answer'
  /** `<think></think>` with nothing inside (GLM-4.5V non-thinking mode, or a skipped reasoning). */
  | 'empty_think';

export interface ThinkSplit {
  /** Text inside `<think>…</think>`, trimmed; `null` when the response has no thinking part at all. */
  reasoning: string | null;
  /** The answer part, trimmed: inside `<answer>…</answer>` when present, else everything after `</think>`. */
  content: string;
  style: ResponseStyle;
  /** False when `<think>` was opened and never closed. */
  thinkClosed: boolean;
  /** True when the answer part was wrapped in `<answer>` tags (GLM-4.1V). */
  hasAnswerTags: boolean;
  issues: SplitIssue[];
}

/**
 * Splits a response into reasoning and answer, tolerating the common damage (missing `</think>`, missing `<think>`,
 * unclosed `<answer>`) and reporting it. Never throws.
 */
export function splitThinking(text: string): ThinkSplit {
  return splitWithTags(text, scanTags(text));
}

function splitWithTags(text: string, tags: Tag[]): ThinkSplit {
  const issues: SplitIssue[] = [];
  const firstOpen = tags.find((t) => t.kind === 'think_open');
  const closeAfter = (from: number) => tags.find((t) => t.kind === 'think_close' && t.start >= from);
  let reasoning: string | null = null;
  let rest: string;
  let restOffset: number;
  let thinkClosed = true;

  if (firstOpen) {
    if (text.slice(0, firstOpen.start).trim() !== '') issues.push('text_before_think');
    const close = closeAfter(firstOpen.end);
    if (close) {
      reasoning = text.slice(firstOpen.end, close.start);
      rest = text.slice(close.end);
      restOffset = close.end;
    } else {
      thinkClosed = false;
      issues.push('unclosed_think');
      // A model that forgot `</think>` but still wrote `<answer>`: its answer is recoverable.
      const ans = tags.find((t) => t.kind === 'answer_open' && t.start >= firstOpen.end);
      if (ans) {
        reasoning = text.slice(firstOpen.end, ans.start);
        rest = text.slice(ans.start);
        restOffset = ans.start;
      } else {
        reasoning = text.slice(firstOpen.end);
        rest = '';
        restOffset = text.length;
      }
    }
  } else {
    const close = closeAfter(0);
    if (close) {
      issues.push('missing_think_open');
      reasoning = text.slice(0, close.start);
      rest = text.slice(close.end);
      restOffset = close.end;
    } else {
      rest = text;
      restOffset = 0;
    }
  }

  let content: string;
  let hasAnswerTags = false;
  const ansOpen = tags.find((t) => t.kind === 'answer_open' && t.start >= restOffset);
  if (ansOpen) {
    hasAnswerTags = true;
    if (text.slice(restOffset, ansOpen.start).trim() !== '') issues.push('text_outside_answer');
    const ansClose = tags.find((t) => t.kind === 'answer_close' && t.start >= ansOpen.end);
    if (ansClose) {
      content = text.slice(ansOpen.end, ansClose.start);
      if (text.slice(ansClose.end).trim() !== '') issues.push('text_outside_answer');
    } else {
      issues.push('unclosed_answer');
      content = text.slice(ansOpen.end);
    }
  } else {
    content = rest;
  }

  if (reasoning !== null && reasoning.trim() === '' && thinkClosed) issues.push('empty_think');
  const style: ResponseStyle = reasoning === null ? 'plain' : hasAnswerTags ? 'glm41v' : 'glm45v';
  return {
    reasoning: reasoning === null ? null : reasoning.trim(),
    content: content.trim(),
    style,
    thinkClosed,
    hasAnswerTags,
    issues,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Strict format check
// ---------------------------------------------------------------------------------------------------------------

/** Reasons a response fails the strict format (docs/design.md D.4, GLM-V `check_answer_format`). */
export type FormatViolation =
  | 'missing_think'
  | 'unclosed_think'
  | 'text_before_think'
  | 'missing_answer_tags'
  | 'unexpected_answer_tags'
  | 'unclosed_answer'
  | 'text_outside_answer'
  | 'nested_tags'
  | 'multiple_box_markers'
  | 'unbalanced_box'
  | 'legacy_boxed'
  | 'empty_answer';

export interface FormatCheck {
  ok: boolean;
  /** The style the check applied (resolved from `auto`). */
  style: 'glm41v' | 'glm45v';
  violations: FormatViolation[];
  /** Non-failing observations (e.g. `empty_think`), useful for gates that require real thinking. */
  notes: SplitIssue[];
}

export interface FormatOptions {
  /**
   * `glm41v`: `<think>…</think><answer>…</answer>`; `glm45v`: `<think>…</think>answer` without answer tags;
   * `auto` (default): GLM-4.1V rules when the response contains an `<answer>` tag, otherwise GLM-4.5V rules.
   */
  style?: 'glm41v' | 'glm45v' | 'auto';
  /**
   * The prompt already ended with `<think>` (a template that pre-opens thinking), so the response starts inside
   * the reasoning. The opening tag is then assumed when the response does not carry one itself.
   */
  prefilledThink?: boolean;
}

function withPrefill(text: string, opts: FormatOptions): string {
  if (!opts.prefilledThink) return text;
  return /^\s*<think>/i.test(text) ? text : THINK_OPEN + text;
}

const LEGACY_BOXED_RE = /\\boxed\s*\{/;

/**
 * The strict check of docs/design.md D.4: exactly one think block first, then (4.1V) exactly one answer block and nothing
 * else, at most one box marker of each kind, no legacy `\boxed{`, no nested or repeated think/answer tags,
 * a non-empty answer. Leading and trailing whitespace of the whole response is ignored.
 */
export function checkFormat(text: string, opts: FormatOptions = {}): FormatCheck {
  text = withPrefill(text, opts);
  const tags = scanTags(text);
  return checkFormatWithTags(text, tags, splitWithTags(text, tags), opts);
}

function checkFormatWithTags(text: string, tags: Tag[], split: ThinkSplit, opts: FormatOptions): FormatCheck {
  const requested = opts.style ?? 'auto';
  const style = requested === 'auto' ? (count(tags, 'answer_open') > 0 ? 'glm41v' : 'glm45v') : requested;
  const v = new Set<FormatViolation>();
  const nThinkOpen = count(tags, 'think_open');
  const nThinkClose = count(tags, 'think_close');
  const nAnsOpen = count(tags, 'answer_open');
  const nAnsClose = count(tags, 'answer_close');

  if (nThinkOpen === 0) v.add('missing_think');
  if (nThinkOpen > 1 || nThinkClose > 1 || nAnsOpen > 1 || nAnsClose > 1) v.add('nested_tags');
  if (nThinkOpen >= 1 && !split.thinkClosed) v.add('unclosed_think');
  if (split.issues.includes('text_before_think')) v.add('text_before_think');
  // The think block must come first: a `</think>` before `<think>` is a structural error too.
  const firstThink = tags.find((t) => t.kind === 'think_open' || t.kind === 'think_close');
  if (firstThink && firstThink.kind === 'think_close') v.add('nested_tags');

  if (style === 'glm41v') {
    if (nAnsOpen === 0) v.add('missing_answer_tags');
    if (split.issues.includes('unclosed_answer') || (nAnsOpen > 0 && nAnsClose === 0)) v.add('unclosed_answer');
    if (split.issues.includes('text_outside_answer')) v.add('text_outside_answer');
    // Answer tags inside the think block (e.g. `<think><answer>x</answer></think>`) are nesting.
    const thinkClose = tags.find((t) => t.kind === 'think_close');
    if (
      thinkClose &&
      tags.some((t) => (t.kind === 'answer_open' || t.kind === 'answer_close') && t.start < thinkClose.start)
    )
      v.add('nested_tags');
  } else if (nAnsOpen > 0 || nAnsClose > 0) {
    v.add('unexpected_answer_tags');
  }

  const nBoxOpen = count(tags, 'box_open');
  const nBoxClose = count(tags, 'box_close');
  if (nBoxOpen > 1 || nBoxClose > 1) v.add('multiple_box_markers');
  if (nBoxOpen !== nBoxClose) v.add('unbalanced_box');
  else if (nBoxOpen === 1) {
    const o = tags.find((t) => t.kind === 'box_open')!;
    const c = tags.find((t) => t.kind === 'box_close')!;
    if (c.start < o.start) v.add('unbalanced_box');
  }
  if (LEGACY_BOXED_RE.test(text)) v.add('legacy_boxed');
  if (split.thinkClosed && split.content === '') v.add('empty_answer');

  const notes = split.issues.filter((i) => i === 'empty_think' || i === 'missing_think_open');
  return { ok: v.size === 0, style, violations: [...v], notes };
}

// ---------------------------------------------------------------------------------------------------------------
// Box extraction
// ---------------------------------------------------------------------------------------------------------------

/** Why no answer could be extracted. */
export type BoxFailure =
  /** No box at all in the answer part (and none in the reasoning either). */
  | 'none'
  /** More than one box in the answer part (strict mode). */
  | 'multiple'
  /** A box exists, but only inside `<think>`: thinking is not an answer. */
  | 'only_in_think'
  /** A box inside a box. */
  | 'nested'
  /** A begin marker without its end, or an end without a begin. */
  | 'unclosed'
  /** Legacy `\boxed{}` in the answer in strict mode (ambiguous, and the released system forbids it). */
  | 'legacy_boxed'
  /** The box is present but empty. */
  | 'empty';

/** Where an extracted answer came from; anything but `box` only happens in lenient mode. */
export type AnswerSource = 'box' | 'boxed' | 'answer_line' | 'last_line';

export type BoxExtraction =
  | { ok: true; value: string; source: AnswerSource /** boxes of that kind seen in the answer part */; count: number }
  | { ok: false; failure: BoxFailure; count: number };

export type ExtractMode = 'strict' | 'lenient';

interface BoxSpan {
  start: number;
  end: number;
  inner: string;
}

/**
 * Stack-matches `<|begin_of_box|>`/`<|end_of_box|>` in `text`; returns the outermost spans or the first
 * structural failure.
 */
function matchBoxTokens(text: string, tags: Tag[]): { spans: BoxSpan[]; failure?: 'nested' | 'unclosed' } {
  const spans: BoxSpan[] = [];
  let failure: 'nested' | 'unclosed' | undefined;
  let open: Tag | null = null;
  let depth = 0;
  for (const t of tags) {
    if (t.kind === 'box_open') {
      depth++;
      if (depth === 1) open = t;
      else failure ??= 'nested';
    } else if (t.kind === 'box_close') {
      if (depth === 0) {
        failure ??= 'unclosed';
        continue;
      }
      depth--;
      if (depth === 0 && open) {
        spans.push({ start: open.start, end: t.end, inner: text.slice(open.end, t.start) });
        open = null;
      }
    }
  }
  if (depth > 0) failure ??= 'unclosed';
  return { spans, failure };
}

/**
 * Top-level `\boxed{…}` (and `\fbox{…}`) contents, brace-matched (escaped `\{`/`\}` do not count), in order.
 * An unclosed `\boxed{` is ignored. Linear in the text length.
 */
export function findLatexBoxed(text: string): string[] {
  const out: string[] = [];
  const re = /\\(?:boxed|fbox)\s*\{/g;
  let searchFrom = 0;
  while (true) {
    re.lastIndex = searchFrom;
    const m = re.exec(text);
    if (!m) break;
    const bodyStart = m.index + m[0].length;
    let depth = 1;
    let i = bodyStart;
    for (; i < text.length && depth > 0; i++) {
      const ch = text.charCodeAt(i);
      if (ch === 92 /* \ */)
        i++; // skip the escaped character
      else if (ch === 123 /* { */) depth++;
      else if (ch === 125 /* } */) depth--;
    }
    if (depth !== 0) break; // unclosed: nothing after it can be balanced either
    out.push(text.slice(bodyStart, i - 1));
    searchFrom = i; // top-level only: skip boxes nested inside this one
  }
  return out;
}

const ANSWER_LINE_RE =
  /(?:final answer|answer)\s*(?:is|:|：)\s*(?:\*\*)?\s*([^\n]+?)\s*(?:\*\*)?\s*\.?\s*$|答案\s*(?:是|为|:|：)\s*([^\n]+?)\s*[。.]?\s*$/gim;

function lastAnswerLine(text: string): string | null {
  let last: string | null = null;
  ANSWER_LINE_RE.lastIndex = 0;
  for (let m = ANSWER_LINE_RE.exec(text); m !== null; m = ANSWER_LINE_RE.exec(text)) {
    const v = (m[1] ?? m[2] ?? '').trim();
    if (v !== '') last = v;
  }
  return last;
}

function lastNonEmptyLine(text: string): string | null {
  const lines = text.split('\n');
  for (let i = lines.length - 1; i >= 0; i--) {
    const l = lines[i]!.trim();
    if (l !== '') return l;
  }
  return null;
}

/**
 * Extracts the boxed answer from the answer part of `text`.
 *
 * strict (default, the GLM reward rule): exactly one `<|begin_of_box|>…<|end_of_box|>` in the answer part; a box
 * only inside `<think>` does not count; any `\boxed{` in the answer part fails.
 *
 * lenient (other models, eval): the last box-token span, else the last top-level `\boxed{}`, else the last
 * "Answer: …" / "the answer is …" line, else the last non-empty line. The source is reported.
 */
export function extractBox(text: string, mode: ExtractMode = 'strict'): BoxExtraction {
  const tags = scanTags(text);
  return extractWithTags(text, tags, splitWithTags(text, tags), mode);
}

function extractWithTags(text: string, tags: Tag[], split: ThinkSplit, mode: ExtractMode): BoxExtraction {
  // Locate the answer part inside `text` so tag positions can be compared with it.
  const answerRegion = answerRegionOf(text, tags, split);
  const inAnswer = tags.filter((t) => t.start >= answerRegion.start && t.end <= answerRegion.end);
  const answerText = text.slice(answerRegion.start, answerRegion.end);
  const { spans, failure } = matchBoxTokens(text, inAnswer);

  if (mode === 'strict') {
    if (LEGACY_BOXED_RE.test(answerText)) return { ok: false, failure: 'legacy_boxed', count: spans.length };
    if (failure) return { ok: false, failure, count: spans.length };
    if (spans.length > 1) return { ok: false, failure: 'multiple', count: spans.length };
    if (spans.length === 0) {
      const anyBoxElsewhere = tags.some(
        (t) => t.kind === 'box_open' && (t.start < answerRegion.start || t.start >= answerRegion.end),
      );
      return { ok: false, failure: anyBoxElsewhere ? 'only_in_think' : 'none', count: 0 };
    }
    const value = spans[0]!.inner.trim();
    if (value === '') return { ok: false, failure: 'empty', count: 1 };
    return { ok: true, value, source: 'box', count: 1 };
  }

  // Lenient: well-formed box tokens first (the last one), then the other conventions.
  if (!failure && spans.length > 0) {
    const value = spans[spans.length - 1]!.inner.trim();
    if (value !== '') return { ok: true, value, source: 'box', count: spans.length };
  }
  // A truncated response has no answer part; other models' answers may then sit in the reasoning.
  const haystack = answerText.trim() === '' && !split.thinkClosed && split.reasoning ? split.reasoning : answerText;
  if (haystack !== answerText) {
    // Box tokens inside the unclosed reasoning (a model that skipped `</think>`, SGLang #37645): the last one.
    const inner = matchBoxTokens(haystack, scanTags(haystack));
    const last = inner.failure ? undefined : inner.spans[inner.spans.length - 1];
    if (last && last.inner.trim() !== '')
      return { ok: true, value: last.inner.trim(), source: 'box', count: inner.spans.length };
  }
  const boxed = findLatexBoxed(haystack);
  if (boxed.length > 0) {
    const value = boxed[boxed.length - 1]!.trim();
    if (value !== '') return { ok: true, value, source: 'boxed', count: boxed.length };
  }
  const line = lastAnswerLine(haystack);
  if (line !== null) return { ok: true, value: stripMarkdown(line), source: 'answer_line', count: 1 };
  const last = lastNonEmptyLine(stripTagsLoose(haystack));
  if (last !== null) return { ok: true, value: stripMarkdown(last), source: 'last_line', count: 1 };
  return { ok: false, failure: failure ?? 'none', count: 0 };
}

function stripMarkdown(s: string): string {
  return s
    .replace(/^\*\*|\*\*$/g, '')
    .replace(/^\$(.*)\$$/s, '$1')
    .trim();
}

function stripTagsLoose(s: string): string {
  return s.replace(TAG_RE, '');
}

function answerRegionOf(text: string, tags: Tag[], split: ThinkSplit): { start: number; end: number } {
  // Mirrors splitWithTags: the answer part starts after `</think>` (or at `<answer>` for an unclosed think).
  let start = 0;
  const firstOpen = tags.find((t) => t.kind === 'think_open');
  if (split.reasoning !== null) {
    const close = tags.find((t) => t.kind === 'think_close' && t.start >= (firstOpen ? firstOpen.end : 0));
    if (close) start = close.end;
    else {
      const ans = firstOpen ? tags.find((t) => t.kind === 'answer_open' && t.start >= firstOpen.end) : undefined;
      start = ans ? ans.start : text.length;
    }
  }
  let end = text.length;
  const ansOpen = tags.find((t) => t.kind === 'answer_open' && t.start >= start);
  if (ansOpen) {
    start = ansOpen.end;
    const ansClose = tags.find((t) => t.kind === 'answer_close' && t.start >= ansOpen.end);
    if (ansClose) end = ansClose.start;
  }
  return { start, end };
}

// ---------------------------------------------------------------------------------------------------------------
// One-call parse
// ---------------------------------------------------------------------------------------------------------------

export interface ParsedResponse extends ThinkSplit {
  format: FormatCheck;
  box: BoxExtraction;
  /** The extracted answer, or null when extraction failed (see `box.failure`). */
  answer: string | null;
}

export interface ParseOptions extends FormatOptions {
  /** Extraction mode, `strict` by default. */
  mode?: ExtractMode;
}

/** Split, format check and box extraction in one pass over the tags. Never throws. */
export function parseResponse(text: string, opts: ParseOptions = {}): ParsedResponse {
  text = withPrefill(text, opts);
  const tags = scanTags(text);
  const split = splitWithTags(text, tags);
  const format = checkFormatWithTags(text, tags, split, opts);
  const box = extractWithTags(text, tags, split, opts.mode ?? 'strict');
  return { ...split, format, box, answer: box.ok ? box.value : null };
}

/** Removes box markers (not their content) — for showing answers to people or feeding history turns. */
export function stripBoxMarkers(text: string): string {
  return text.replace(/<\|(?:begin|end)_of_box\|>/g, '');
}

// ---------------------------------------------------------------------------------------------------------------
// Streaming splitter
// ---------------------------------------------------------------------------------------------------------------

export interface StreamDelta {
  reasoning: string;
  content: string;
}

export interface StreamSplitterOptions {
  /**
   * True when the prompt already opened `<think>` (templates that pre-fill it): text is reasoning until `</think>`.
   * Default false: text is content unless the model's first non-space output is `<think>`.
   */
  startInReasoning?: boolean;
  /** Drop `<answer>`/`</answer>` from content (serving clients); default false keeps the raw text. */
  stripAnswerTags?: boolean;
}

/**
 * Incremental reasoning/content splitter for generation and streaming clients. Feed text deltas with `push`; each
 * call returns the reasoning and content text that is now certain. A tag split across chunks (`<thi` + `nk>`) is
 * held back until it can be decided, so no tag fragment ever leaks into either stream. Call `end()` at the end.
 */
export class ThinkStreamSplitter {
  private state: 'start' | 'reasoning' | 'content';
  private buf = '';
  private sawThinkOpen = false;
  private sawThinkClose = false;
  private readonly stripAnswer: boolean;

  constructor(opts: StreamSplitterOptions = {}) {
    this.state = opts.startInReasoning ? 'reasoning' : 'start';
    this.sawThinkOpen = !!opts.startInReasoning;
    this.stripAnswer = !!opts.stripAnswerTags;
  }

  /** Whether `</think>` has been seen (the reasoning phase is over). */
  get reasoningDone(): boolean {
    return this.sawThinkClose;
  }

  /** True when the stream opened thinking and `end()` came before `</think>`. */
  get unclosedThink(): boolean {
    return this.sawThinkOpen && !this.sawThinkClose;
  }

  push(delta: string): StreamDelta {
    this.buf += delta;
    return this.drain(false);
  }

  end(): StreamDelta {
    return this.drain(true);
  }

  private drain(final: boolean): StreamDelta {
    const out: StreamDelta = { reasoning: '', content: '' };
    while (this.buf.length > 0) {
      if (this.state === 'start') {
        const lead = this.buf.length - this.buf.trimStart().length;
        const rest = this.buf.slice(lead);
        if (rest.length === 0) {
          if (final) {
            out.content += this.buf;
            this.buf = '';
          }
          break;
        }
        if (startsWithCI(rest, THINK_OPEN)) {
          this.buf = rest.slice(THINK_OPEN.length);
          this.state = 'reasoning';
          this.sawThinkOpen = true;
          continue;
        }
        if (!final && isPrefixCI(rest, THINK_OPEN)) break; // could still become `<think>`
        this.state = 'content';
        continue;
      }
      if (this.state === 'reasoning') {
        const idx = indexOfCI(this.buf, THINK_CLOSE);
        if (idx >= 0) {
          out.reasoning += this.buf.slice(0, idx);
          this.buf = this.buf.slice(idx + THINK_CLOSE.length);
          this.state = 'content';
          this.sawThinkClose = true;
          continue;
        }
        const hold = final ? 0 : partialSuffix(this.buf, [THINK_CLOSE]);
        out.reasoning += this.buf.slice(0, this.buf.length - hold);
        this.buf = this.buf.slice(this.buf.length - hold);
        break;
      }
      // content
      if (!this.stripAnswer) {
        out.content += this.buf;
        this.buf = '';
        break;
      }
      const o = indexOfCI(this.buf, ANSWER_OPEN);
      const c = indexOfCI(this.buf, ANSWER_CLOSE);
      const next = o < 0 ? c : c < 0 ? o : Math.min(o, c);
      if (next >= 0) {
        out.content += this.buf.slice(0, next);
        this.buf = this.buf.slice(next + (next === o ? ANSWER_OPEN.length : ANSWER_CLOSE.length));
        continue;
      }
      const hold = final ? 0 : partialSuffix(this.buf, [ANSWER_OPEN, ANSWER_CLOSE]);
      out.content += this.buf.slice(0, this.buf.length - hold);
      this.buf = this.buf.slice(this.buf.length - hold);
      break;
    }
    return out;
  }
}

function startsWithCI(s: string, tag: string): boolean {
  return s.length >= tag.length && s.slice(0, tag.length).toLowerCase() === tag;
}

function isPrefixCI(s: string, tag: string): boolean {
  return s.length < tag.length && tag.startsWith(s.toLowerCase());
}

function indexOfCI(s: string, tag: string): number {
  // Tags are ASCII; lower-casing only the candidate windows keeps indexes aligned with `s`.
  const first = tag[0]!;
  for (let i = s.indexOf(first); i >= 0 && i <= s.length - tag.length; i = s.indexOf(first, i + 1)) {
    if (s.slice(i, i + tag.length).toLowerCase() === tag) return i;
  }
  return -1;
}

/** Length of the longest suffix of `s` that is a proper prefix of one of `tags` (case-insensitive). */
function partialSuffix(s: string, tags: string[]): number {
  let best = 0;
  for (const tag of tags) {
    const max = Math.min(tag.length - 1, s.length);
    for (let k = max; k > best; k--) {
      if (tag.startsWith(s.slice(s.length - k).toLowerCase())) {
        best = k;
        break;
      }
    }
  }
  return best;
}

// ---------------------------------------------------------------------------------------------------------------
// Grounding boxes and coordinates
// ---------------------------------------------------------------------------------------------------------------

/** An axis-aligned box `[x1, y1, x2, y2]`: top-left then bottom-right. */
export type Box = [number, number, number, number];
/** A point `[x, y]`. */
export type Point = [number, number];

/**
 * Coordinate systems of GLM-V outputs: `grounding` boxes are normalised to 0–1000 (docs/design.md D.5); `gui` boxes
 * (AndroidWorld `box_2d`) are integer thousandths 0–999. Both map pixel ↔ norm with a factor of 1000; they differ in
 * the valid range.
 */
export type CoordSystem = 'grounding' | 'gui';

export const COORD_MAX: Record<CoordSystem, number> = { grounding: 1000, gui: 999 };

export type BoxProblem = 'out_of_range' | 'inverted' | 'degenerate' | 'not_finite';

export interface ParsedBox {
  box: Box;
  /** The matched source text, e.g. `[10, 20, 30, 40]`. */
  raw: string;
  /** Why the box is unusable for scoring; absent when valid. */
  problem?: BoxProblem;
}

export interface BoxParseOptions {
  /** Range to validate against; default `grounding` (0–1000). */
  system?: CoordSystem;
}

const NUM = '[-+]?(?:\\d+(?:\\.\\d*)?|\\.\\d+)(?:[eE][-+]?\\d+)?';
// Four numbers inside one matching bracket pair: [] () <> or {}; separators are commas and/or spaces.
const BOX_RE = new RegExp(
  `\\[\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*\\]` +
    `|\\(\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*\\)` +
    `|<\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*>`,
  'g',
);
const POINT_RE = new RegExp(
  `\\[\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*\\]|\\(\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*\\)|<\\s*(${NUM})\\s*[,\\s]\\s*(${NUM})\\s*>`,
  'g',
);

/** Validates a normalised box against a coordinate system. */
export function boxProblem(box: Box, system: CoordSystem = 'grounding'): BoxProblem | undefined {
  if (!box.every(Number.isFinite)) return 'not_finite';
  const max = COORD_MAX[system];
  if (box.some((v) => v < 0 || v > max)) return 'out_of_range';
  if (box[0] > box[2] || box[1] > box[3]) return 'inverted';
  if (box[0] === box[2] || box[1] === box[3]) return 'degenerate';
  return undefined;
}

/**
 * All boxes in `text`, in any bracket style: `[x1,y1,x2,y2]`, `[[…],[…]]`, `(…)`, `<…>`, separated by commas or
 * spaces. Each comes with its validation problem (out of range, inverted, degenerate) instead of being dropped, so
 * the caller decides and can report why.
 */
export function parseBoxes(text: string, opts: BoxParseOptions = {}): ParsedBox[] {
  const out: ParsedBox[] = [];
  BOX_RE.lastIndex = 0;
  for (let m = BOX_RE.exec(text); m !== null; m = BOX_RE.exec(text)) {
    const g = m[1] !== undefined ? 1 : m[5] !== undefined ? 5 : 9;
    const box: Box = [Number(m[g]), Number(m[g + 1]), Number(m[g + 2]), Number(m[g + 3])];
    const problem = boxProblem(box, opts.system);
    out.push(problem ? { box, raw: m[0], problem } : { box, raw: m[0] });
  }
  return out;
}

/** All points `[x,y]` / `(x,y)` / `<x,y>` in `text` (GUI clicks, OSWorld `start_box='[x,y]'`). */
export function parsePoints(text: string): Point[] {
  const out: Point[] = [];
  POINT_RE.lastIndex = 0;
  for (let m = POINT_RE.exec(text); m !== null; m = POINT_RE.exec(text)) {
    const g = m[1] !== undefined ? 1 : m[3] !== undefined ? 3 : 5;
    out.push([Number(m[g]), Number(m[g + 1])]);
  }
  return out;
}

export interface ImageSize {
  width: number;
  height: number;
}

function checkSize(size: ImageSize, what: string): void {
  if (!(Number.isFinite(size.width) && size.width > 0 && Number.isFinite(size.height) && size.height > 0))
    throw new Error(`${what}: image size must have positive finite width and height, got ${JSON.stringify(size)}`);
}

/** Normalised (0–1000 / 0–999) box → pixel box of the original image (floating point, not rounded). */
export function normToPixel(box: Box, size: ImageSize): Box {
  checkSize(size, 'normToPixel');
  return [
    (box[0] * size.width) / 1000,
    (box[1] * size.height) / 1000,
    (box[2] * size.width) / 1000,
    (box[3] * size.height) / 1000,
  ];
}

/**
 * Pixel box of the original image → normalised integers, rounded, clamped to the system's range (GLM emits
 * integers; clamping keeps a box touching the right/bottom edge valid in the 0–999 GUI system).
 */
export function pixelToNorm(box: Box, size: ImageSize, system: CoordSystem = 'grounding'): Box {
  checkSize(size, 'pixelToNorm');
  const max = COORD_MAX[system];
  const n = (v: number, s: number) => Math.min(max, Math.max(0, Math.round((v / s) * 1000)));
  return [n(box[0], size.width), n(box[1], size.height), n(box[2], size.width), n(box[3], size.height)];
}

export function normPointToPixel(p: Point, size: ImageSize): Point {
  checkSize(size, 'normPointToPixel');
  return [(p[0] * size.width) / 1000, (p[1] * size.height) / 1000];
}

export function pixelPointToNorm(p: Point, size: ImageSize, system: CoordSystem = 'grounding'): Point {
  checkSize(size, 'pixelPointToNorm');
  const max = COORD_MAX[system];
  const n = (v: number, s: number) => Math.min(max, Math.max(0, Math.round((v / s) * 1000)));
  return [n(p[0], size.width), n(p[1], size.height)];
}

/** Intersection over union of two boxes (any consistent coordinate system); 0 for empty or invalid boxes. */
export function iou(a: Box, b: Box): number {
  const areaA = Math.max(0, a[2] - a[0]) * Math.max(0, a[3] - a[1]);
  const areaB = Math.max(0, b[2] - b[0]) * Math.max(0, b[3] - b[1]);
  const iw = Math.min(a[2], b[2]) - Math.max(a[0], b[0]);
  const ih = Math.min(a[3], b[3]) - Math.max(a[1], b[1]);
  if (iw <= 0 || ih <= 0) return 0;
  const inter = iw * ih;
  const union = areaA + areaB - inter;
  return union > 0 ? inter / union : 0;
}

export function boxCenter(b: Box): Point {
  return [(b[0] + b[2]) / 2, (b[1] + b[3]) / 2];
}

/** The point lies inside the box, edges included (ScreenSpot's point-in-box, the GUI reward's center match). */
export function pointInBox(p: Point, b: Box): boolean {
  return p[0] >= b[0] && p[0] <= b[2] && p[1] >= b[1] && p[1] <= b[3];
}

// ---------------------------------------------------------------------------------------------------------------
// GUI actions
// ---------------------------------------------------------------------------------------------------------------

/**
 * A GUI agent action in one shape for all GLM agent formats:
 * - `json` — AndroidWorld / mobile: `{"action_type":"click","box_2d":[[x1,y1,x2,y2]]}` (0–999), also Python-dict
 *   spelling (`{'action_type': 'open_app', 'override': True}`) as the prompts' history shows;
 * - `call` — OSWorld computer use: `left_click(start_box='[x,y]', element_info='…')`, `type(content='…')`, `DONE()`;
 * - `webvoyager` — set-of-marks web: `Click [5]`, `Type [2]; [text]`, `Scroll [WINDOW]; [up]`, `ANSWER; <content>…</content>`.
 */
export interface GuiAction {
  /** Lower-case action name: `click`, `long_press`, `input_text`, `swipe`, `left_click`, `type`, `scroll`, `done`… */
  type: string;
  format: 'json' | 'call' | 'webvoyager';
  /** Target box (`box_2d`), normalised. */
  box?: Box;
  /** Target point (`start_box` as a point, or `start_point`), normalised. */
  point?: Point;
  /** End point (`left_drag` `end_box`, swipe `end_point`). */
  endPoint?: Point;
  /** Typed / answered text (`text`, `content`). */
  text?: string;
  /** `swipe`/`scroll` direction. */
  direction?: string;
  /** WebVoyager element label (`Click [5]` → `5`, `WINDOW`). */
  element?: string;
  /** Every argument as parsed, keyed by its original name. */
  args: Record<string, unknown>;
}

export type GuiParse = { ok: true; action: GuiAction } | { ok: false; error: string };

/** Parses one GUI action from box content or a raw answer (an `Action:` prefix is allowed). Never throws. */
export function parseGuiAction(text: string): GuiParse {
  // A full agent answer ("Memory: … Reason: … Action: {…}") carries the action after its last "Action:".
  const marker = [...text.matchAll(/(?:^|\n)\s*(?:\d+\.\s*)?action\s*[:：]/gi)].pop();
  const t = (marker ? text.slice(marker.index + marker[0].length) : text).trim();
  if (t === '') return { ok: false, error: 'GUI action: expected an action, found empty text' };
  if (t.startsWith('{')) return parseJsonAction(t);
  const call = /^([A-Za-z_]\w*)\s*\(([\s\S]*)\)\s*$/.exec(t);
  if (call) return parseCallAction(call[1]!, call[2]!);
  const web = parseWebVoyagerAction(t);
  if (web.ok) return web;
  const brace = t.indexOf('{');
  if (brace >= 0) return parseJsonAction(t.slice(brace));
  return web;
}

function parseJsonAction(t: string): GuiParse {
  const end = matchingBrace(t, 0);
  if (end < 0) return { ok: false, error: `GUI action: unbalanced braces in ${preview(t)}` };
  let obj: unknown;
  try {
    obj = parseLooseJson(t.slice(0, end + 1));
  } catch (e) {
    return { ok: false, error: `GUI action: invalid JSON object ${preview(t)}: ${(e as Error).message}` };
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj))
    return { ok: false, error: `GUI action: expected a JSON object, found ${preview(t)}` };
  const args = obj as Record<string, unknown>;
  const rawType = args.action_type ?? args.action;
  if (typeof rawType !== 'string' || rawType.trim() === '')
    return { ok: false, error: `GUI action: missing string "action_type" in ${preview(t)}` };
  const action: GuiAction = { type: normaliseActionName(rawType), format: 'json', args };
  if (args.box_2d !== undefined) {
    const b = toBox(args.box_2d);
    if (!b)
      return {
        ok: false,
        error: `GUI action: "box_2d" must be [[x1,y1,x2,y2]] or [x1,y1,x2,y2], found ${preview(JSON.stringify(args.box_2d))}`,
      };
    action.box = b;
  }
  for (const [key, field] of [
    ['start_point', 'point'],
    ['point', 'point'],
    ['end_point', 'endPoint'],
  ] as const) {
    if (args[key] === undefined) continue;
    const p = toPoint(args[key]);
    if (!p)
      return { ok: false, error: `GUI action: "${key}" must be [x,y], found ${preview(JSON.stringify(args[key]))}` };
    action[field] = p;
  }
  if (typeof args.text === 'string') action.text = args.text;
  if (typeof args.direction === 'string') action.direction = args.direction.toLowerCase();
  return { ok: true, action };
}

function parseCallAction(name: string, argText: string): GuiParse {
  const args: Record<string, unknown> = {};
  const re = /\s*([A-Za-z_]\w*)\s*=\s*('(?:[^'\\]|\\.)*'|"(?:[^"\\]|\\.)*"|\[[^\]]*\]|\([^)]*\)|[^,]+?)\s*(?:,|$)/gy;
  let pos = 0;
  const body = argText.trim();
  while (pos < body.length) {
    re.lastIndex = pos;
    const m = re.exec(body);
    if (!m)
      return { ok: false, error: `GUI action: cannot parse arguments of ${name}(…) at ${preview(body.slice(pos))}` };
    const raw = m[2]!;
    args[m[1]!] = /^['"]/.test(raw)
      ? unescapeQuoted(raw.slice(1, -1))
      : /^[-+]?\d+(?:\.\d+)?$/.test(raw)
        ? Number(raw)
        : raw;
    pos = re.lastIndex;
  }
  const action: GuiAction = { type: normaliseActionName(name), format: 'call', args };
  for (const [key, field] of [
    ['start_box', 'point'],
    ['end_box', 'endPoint'],
  ] as const) {
    const v = args[key];
    if (v === undefined) continue;
    const s = String(v);
    const boxes = parseBoxes(s);
    const points = parsePoints(s);
    if (boxes.length === 1) {
      // A box given where a point is expected: its centre is the click target.
      action[field] = boxCenter(boxes[0]!.box);
      if (field === 'point') action.box = boxes[0]!.box;
    } else if (points.length === 1) action[field] = points[0]!;
    else return { ok: false, error: `GUI action: ${key} of ${name}(…) must be '[x,y]', found ${preview(s)}` };
  }
  const text = args.content ?? args.text;
  if (typeof text === 'string') action.text = text;
  if (typeof args.keys === 'string') action.text ??= args.keys;
  if (typeof args.direction === 'string') action.direction = args.direction.toLowerCase();
  return { ok: true, action };
}

function parseWebVoyagerAction(t: string): GuiParse {
  const s = t.replace(/\.\s*$/, '').trim();
  let m = /^answer\s*;\s*(?:<content>([\s\S]*?)<\/content>|\[?([\s\S]*?)\]?)$/i.exec(s);
  if (m) {
    const text = (m[1] ?? m[2] ?? '').trim();
    return { ok: true, action: { type: 'answer', format: 'webvoyager', text, args: { content: text } } };
  }
  m = /^(click)\s*\[?\s*([\w-]+)\s*\]?$/i.exec(s);
  if (m) return { ok: true, action: { type: 'click', format: 'webvoyager', element: m[2]!, args: { element: m[2]! } } };
  m = /^(type)\s*\[?\s*([\w-]+)\s*\]?\s*;\s*\[?([\s\S]*?)\]?$/i.exec(s);
  if (m)
    return {
      ok: true,
      action: {
        type: 'type',
        format: 'webvoyager',
        element: m[2]!,
        text: m[3]!,
        args: { element: m[2]!, content: m[3]! },
      },
    };
  m = /^(scroll)\s*\[?\s*([\w-]+)\s*\]?\s*;\s*\[?\s*(up|down)\s*\]?$/i.exec(s);
  if (m)
    return {
      ok: true,
      action: {
        type: 'scroll',
        format: 'webvoyager',
        element: m[2]!,
        direction: m[3]!.toLowerCase(),
        args: { element: m[2]!, direction: m[3]!.toLowerCase() },
      },
    };
  m = /^key\s*;\s*\[?\s*([^\]]+?)\s*\]?$/i.exec(s);
  if (m) return { ok: true, action: { type: 'key', format: 'webvoyager', text: m[1]!, args: { key: m[1]! } } };
  m = /^(wait|goback|go back|bing)$/i.exec(s);
  if (m) return { ok: true, action: { type: normaliseActionName(m[1]!), format: 'webvoyager', args: {} } };
  return {
    ok: false,
    error: `GUI action: expected a JSON action, a call like left_click(start_box='[x,y]'), or a WebVoyager action, found ${preview(t)}`,
  };
}

function normaliseActionName(s: string): string {
  return s.trim().replace(/\s+/g, '_').toLowerCase();
}

function toBox(v: unknown): Box | null {
  let a = v;
  if (Array.isArray(a) && a.length === 1 && Array.isArray(a[0])) a = a[0];
  if (typeof a === 'string') {
    const b = parseBoxes(a);
    return b.length === 1 ? b[0]!.box : null;
  }
  if (Array.isArray(a) && a.length === 4 && a.every((x) => typeof x === 'number' && Number.isFinite(x)))
    return a as Box;
  return null;
}

function toPoint(v: unknown): Point | null {
  let a = v;
  if (Array.isArray(a) && a.length === 1 && Array.isArray(a[0])) a = a[0];
  if (typeof a === 'string') {
    const p = parsePoints(a);
    return p.length === 1 ? p[0]! : null;
  }
  if (Array.isArray(a) && a.length === 2 && a.every((x) => typeof x === 'number' && Number.isFinite(x)))
    return a as Point;
  return null;
}

function preview(s: string): string {
  return JSON.stringify(s.length > 80 ? `${s.slice(0, 77)}...` : s);
}

function unescapeQuoted(s: string): string {
  return s.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c === 't' ? '\t' : c));
}

/** Index of the brace closing the one at `start`, skipping quoted strings; -1 if unbalanced. */
function matchingBrace(s: string, start: number): number {
  let depth = 0;
  let quote: string | null = null;
  for (let i = start; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === '\\') i++;
      else if (c === quote) quote = null;
    } else if (c === '"' || c === "'") quote = c;
    else if (c === '{') depth++;
    else if (c === '}') {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

/**
 * JSON, plus the Python-literal spellings GLM agent histories contain: single-quoted strings, True/False/None,
 * integers with leading zeros (`[[0503,…]]`, normalised by the released AndroidWorld verifier too), trailing commas.
 */
export function parseLooseJson(src: string): unknown {
  try {
    return JSON.parse(src);
  } catch {
    // fall through to the tolerant rewrite
  }
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i]!;
    if (c === '"' || c === "'") {
      let j = i + 1;
      let str = '';
      while (j < src.length && src[j] !== c) {
        if (src[j] === '\\' && j + 1 < src.length) {
          const e = src[j + 1]!;
          str += e === "'" ? "'" : `\\${e}`;
          j += 2;
        } else {
          str += src[j] === '"' ? '\\"' : src[j] === '\n' ? '\\n' : src[j]!;
          j++;
        }
      }
      if (j >= src.length) throw new Error(`unterminated string starting at ${i}`);
      out += `"${str}"`;
      i = j + 1;
      continue;
    }
    const word = /^[A-Za-z_]\w*/.exec(src.slice(i, i + 16));
    if (word) {
      const w = word[0];
      out += w === 'True' ? 'true' : w === 'False' ? 'false' : w === 'None' ? 'null' : w;
      i += w.length;
      continue;
    }
    const num = /^-?0+(\d)/.exec(src.slice(i, i + 24));
    if (num && (i === 0 || !/[\w.]/.test(src[i - 1]!))) {
      // strip leading zeros of an integer: 0503 → 503 (but keep 0.5 and a lone 0)
      const full = /^-?\d+(?:\.\d+)?/.exec(src.slice(i))![0];
      const neg = full.startsWith('-');
      const digits = full.replace(/^-/, '');
      const stripped = digits.includes('.') ? digits.replace(/^0+(?=\d)/, '') : digits.replace(/^0+(?=\d)/, '');
      out += (neg ? '-' : '') + stripped;
      i += full.length;
      continue;
    }
    if (c === ',') {
      const next = /^,\s*([}\]])/.exec(src.slice(i, i + 64));
      if (next) {
        i += next[0].length - 1; // trailing comma: drop it, keep the bracket
        continue;
      }
    }
    out += c;
    i++;
  }
  return JSON.parse(out);
}
