/** The strict format check of a response (docs/design.md D.4). */
import { count, LEGACY_BOXED_RE, scanTags, type Tag, THINK_OPEN } from './tags.js';
import { type AnswerStyle, type SplitIssue, splitWithTags, type ThinkSplit } from './think.js';

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
  style: AnswerStyle;
  violations: FormatViolation[];
  /** Non-failing observations (e.g. `empty_think`), useful for gates that require real thinking. */
  notes: SplitIssue[];
}

export interface FormatOptions {
  /**
   * `glm41v`: `<think>…</think><answer>…</answer>`; `glm45v`: `<think>…</think>answer` without answer tags;
   * `auto` (default): GLM-4.1V rules when the response contains an `<answer>` tag, otherwise GLM-4.5V rules.
   */
  style?: AnswerStyle | 'auto';
  /**
   * The prompt already ended with `<think>` (a template that pre-opens thinking), so the response starts inside
   * the reasoning. The opening tag is then assumed when the response does not carry one itself.
   */
  prefilledThink?: boolean;
}

/** `text` with the opening `<think>` a pre-filled prompt already carried, when the response lacks one. */
export function withPrefill(text: string, opts: FormatOptions): string {
  if (!opts.prefilledThink) return text;
  return /^\s*<think>/i.test(text) ? text : THINK_OPEN + text;
}

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

/** The check over tags and a split already computed (one scan for `parseResponse`). */
export function checkFormatWithTags(text: string, tags: Tag[], split: ThinkSplit, opts: FormatOptions): FormatCheck {
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
