/**
 * The think/answer split: reasoning and answer of a response, tolerating the common damage (missing `</think>`,
 * missing `<think>`, unclosed `<answer>`) and reporting it.
 */
import { scanTags, type Tag } from './tags.js';

/**
 * The GLM answer convention: `glm41v` (GLM-4.1V-Thinking) `<think>…</think><answer>…</answer>`, `glm45v` (GLM-4.5V)
 * `<think>…</think>…` without answer tags (docs/design.md D.2, D.4). One spelling for training targets, templates,
 * rollouts, the format check and configs.
 */
export type AnswerStyle = 'glm41v' | 'glm45v';

/** Which output convention a response follows. `plain`: no think tags at all (non-GLM models, tool output). */
export type ResponseStyle = AnswerStyle | 'plain';

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

/** The split over tags already scanned (the format check and box extraction share one scan). */
export function splitWithTags(text: string, tags: Tag[]): ThinkSplit {
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
