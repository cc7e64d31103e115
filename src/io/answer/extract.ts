/**
 * Box extraction: the answer inside `<|begin_of_box|>…<|end_of_box|>` (strict, the GLM reward rule) or, for other
 * models, the other answer conventions (lenient).
 */
import { LEGACY_BOXED_RE, scanTags, stripTags, type Tag } from './tags.js';
import { splitWithTags, type ThinkSplit } from './think.js';

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

/** The extraction over tags and a split already computed (one scan for `parseResponse`). */
export function extractWithTags(text: string, tags: Tag[], split: ThinkSplit, mode: ExtractMode): BoxExtraction {
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
  const last = lastNonEmptyLine(stripTags(haystack));
  if (last !== null) return { ok: true, value: stripMarkdown(last), source: 'last_line', count: 1 };
  return { ok: false, failure: failure ?? 'none', count: 0 };
}

function stripMarkdown(s: string): string {
  return s
    .replace(/^\*\*|\*\*$/g, '')
    .replace(/^\$(.*)\$$/s, '$1')
    .trim();
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

/** Removes box markers (not their content) — for showing answers to people or feeding history turns. */
export function stripBoxMarkers(text: string): string {
  return text.replace(/<\|(?:begin|end)_of_box\|>/g, '');
}
