/**
 * The tags of GLM-V's answer format and the one scan that finds them, shared by the answer parsers in this folder.
 *
 * GLM-4.1V-Thinking answers `<think>…</think><answer>…</answer>`; GLM-4.5V drops the answer tags and answers
 * `<think>…</think>…` (docs/design.md D.2, D.4). Verifiable answers carry exactly one `<|begin_of_box|>…<|end_of_box|>`.
 * Everything in `io/answer/` is a pure function over strings: no tensors, no I/O, linear-time scans (tags are found
 * with one global regex pass and indexes, never with backtracking regexes over the whole response, so giant outputs
 * stay cheap).
 */

export const THINK_OPEN = '<think>';
export const THINK_CLOSE = '</think>';
export const ANSWER_OPEN = '<answer>';
export const ANSWER_CLOSE = '</answer>';
export const BOX_OPEN = '<|begin_of_box|>';
export const BOX_CLOSE = '<|end_of_box|>';

export type TagKind = 'think_open' | 'think_close' | 'answer_open' | 'answer_close' | 'box_open' | 'box_close';

export interface Tag {
  kind: TagKind;
  start: number;
  end: number;
}

// Case-insensitive like the released reward regex (docs/design.md D.4); box tokens are special tokens, matched exactly.
const TAG_RE = /<(\/?)(think|answer)>|<\|(begin|end)_of_box\|>/gi;

/** Every think/answer/box tag of `text`, in order. */
export function scanTags(text: string): Tag[] {
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

export const count = (tags: Tag[], kind: TagKind) => tags.reduce((n, t) => n + (t.kind === kind ? 1 : 0), 0);

/** The legacy `\boxed{` spelling, which the strict format and strict extraction forbid. */
export const LEGACY_BOXED_RE = /\\boxed\s*\{/;

/** `text` without any think/answer/box tag (their content stays). */
export function stripTags(text: string): string {
  return text.replace(TAG_RE, '');
}
