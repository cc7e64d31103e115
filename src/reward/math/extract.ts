/**
 * The final answer of a worked solution, taken the way a careful grader reads it:
 *
 * 1. the last `\boxed{…}` / `\fbox{…}`; boxes joined only by `,`, `and`, `or` (`\boxed{2} and \boxed{3}`) are one
 *    answer, their union;
 * 2. else the text after the last final-answer phrase ("final answer is", "the answer is", "Answer:"), up to the end
 *    of its sentence, cut before a justification (", since …");
 * 3. else the last math span (`$…$`, `\(…\)`, `\[…\]`, `$$…$$`), with the spans joined to it by `,` / `and` / `or`,
 *    or the last number in the text when it comes after that span.
 *
 * A hedged sentence ("a number between 1 and 10", "either 3 or 4", "maybe 5") is reported as such, so the checker
 * fails it instead of picking one of its numbers. All scanning is linear: no regex here has nested quantifiers.
 */
import { detectHedge } from '../hedge.js';

export interface Extracted {
  /** The answer text (LaTeX or plain), ready for the value parser. */
  answer: string;
  /** Which rule found it. */
  how: 'box' | 'phrase' | 'span' | 'number' | 'choice';
  /** The sentence it came from, used for the hedge check. */
  context: string;
}

interface Span {
  start: number;
  end: number;
  inner: string;
}

/** Top-level `\boxed{…}` and `\fbox{…}` groups, in order. */
export function findBoxes(s: string): Span[] {
  const out: Span[] = [];
  let i = 0;
  while (i < s.length) {
    const b = s.indexOf('\\boxed', i);
    const f = s.indexOf('\\fbox', i);
    const at = b < 0 ? f : f < 0 ? b : Math.min(b, f);
    if (at < 0) break;
    let j = at + (at === b ? 6 : 5);
    while (s[j] === ' ') j++;
    if (s[j] !== '{') {
      // `\boxed 5`: one token.
      const m = /^\s*([^\s$]+)/.exec(s.slice(j, j + 64));
      if (m && /^[A-Za-z0-9.\-+]+$/.test(m[1]!)) out.push({ start: at, end: j + m[0].length, inner: m[1]! });
      i = j;
      continue;
    }
    let depth = 0;
    let k = j;
    for (; k < s.length; k++) {
      const c = s[k];
      if (c === '\\') {
        k++;
        continue;
      }
      if (c === '{') depth++;
      else if (c === '}' && --depth === 0) break;
    }
    if (k >= s.length) break; // unclosed: no box
    out.push({ start: at, end: k + 1, inner: s.slice(j + 1, k) });
    i = k + 1;
  }
  return out;
}

/** Math spans `$$…$$`, `\[…\]`, `\(…\)`, `$…$` (inline spans stay on one line), in order. */
export function findMathSpans(s: string): Span[] {
  const out: Span[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i]!;
    if (c === '\\' && (s[i + 1] === '[' || s[i + 1] === '(')) {
      const close = s[i + 1] === '[' ? '\\]' : '\\)';
      const end = s.indexOf(close, i + 2);
      if (end < 0) return out;
      out.push({ start: i, end: end + 2, inner: s.slice(i + 2, end) });
      i = end + 2;
      continue;
    }
    if (c === '\\') {
      i += 2;
      continue;
    }
    if (c === '$') {
      if (s[i + 1] === '$') {
        const end = s.indexOf('$$', i + 2);
        if (end < 0) return out;
        out.push({ start: i, end: end + 2, inner: s.slice(i + 2, end) });
        i = end + 2;
        continue;
      }
      let k = i + 1;
      while (k < s.length && s[k] !== '$' && s[k] !== '\n') k += s[k] === '\\' ? 2 : 1;
      if (s[k] === '$' && k > i + 1) {
        out.push({ start: i, end: k + 1, inner: s.slice(i + 1, k) });
        i = k + 1;
        continue;
      }
      i = k;
      continue;
    }
    i++;
  }
  return out;
}

/** What may stand between two parts of one answer: commas, `and`, `or`, spacing (no other words). */
const CONNECTOR_RE = /^[\s$,;&]*(?:(?:and|or|\\text\{\s*(?:and|or)\s*\}|\\quad|\\qquad)[\s$,;]*)?$/i;

/** The left-hand side of `lhs = value`, or '' when the span is a bare value. */
function lhsOf(inner: string): string {
  const at = inner.indexOf('=');
  return at < 0 ? '' : inner.slice(0, at).replace(/\s+/g, '');
}

/** Two spans may be one answer: the same unknown (`x=2`, `x=3`), or each a bare unknown (`x = 2`, `y = 3`). */
function sameAnswer(a: string, b: string): boolean {
  const unknown = (l: string) => /^[A-Za-z](?:_\{?[A-Za-z0-9]+\}?)?$/.test(l);
  return a === b || (unknown(a) && unknown(b));
}

/**
 * The last span and the spans joined to it by connectors. Equations join only when they name the same unknown
 * (`$x=2$ and $x=3$`) or each name one unknown (`$x = 2$ and $y = 3$`), so a derivation step
 * (`$4x = 24$ and $x = 6$`) does not join its result.
 */
function joinConnected(spans: Span[], s: string): Span[] {
  const group = [spans[spans.length - 1]!];
  const lhs = lhsOf(group[0]!.inner);
  for (let k = spans.length - 2; k >= 0; k--) {
    const gap = s.slice(spans[k]!.end, group[0]!.start);
    if (gap.length > 24 || !CONNECTOR_RE.test(gap) || !sameAnswer(lhsOf(spans[k]!.inner), lhs)) break;
    group.unshift(spans[k]!);
  }
  return group;
}

function joinInner(group: Span[]): string {
  const seen: string[] = [];
  for (const g of group) {
    const t = g.inner.trim();
    if (t !== '' && !seen.includes(t)) seen.push(t);
  }
  return seen.join(', ');
}

/** Final-answer phrases, strongest reading last-occurrence first. */
const PHRASE_RE =
  /final answer|(?:the )?answers? (?:is|are|would be|should be)|answer\s*[:：=]|solutions? (?:is|are)|solution set is|result is|答案是|答案为|答案[:：]/gi;

/** End of the sentence starting at `from`: a newline outside display math, or `. ` not between digits. */
function sentenceEnd(s: string, from: number): number {
  const spans = findMathSpans(s.slice(from, from + 600));
  let si = 0;
  const limit = Math.min(s.length, from + 600);
  for (let i = from; i < limit; i++) {
    while (si < spans.length && spans[si]!.end + from <= i) si++;
    const inSpan = si < spans.length && spans[si]!.start + from <= i;
    if (inSpan) continue;
    const c = s[i]!;
    if (c === '\n') return i;
    if ((c === '.' || c === '。') && !/\d/.test(s[i + 1] ?? '') && (i + 1 >= s.length || /\s/.test(s[i + 1]!)))
      return i;
    if (c === '。') return i;
  }
  return limit;
}

/**
 * Cuts a justification after the answer: `C, since …`, `5 because …`, `4, which …`. Segments are at most 600
 * characters (sentenceEnd), which bounds the `\s+` retries of this unanchored search.
 */
const JUSTIFY_RE = /(?:[,;]\s*|\s+)(?:since|because|as|which|where|so that|hence|therefore|thus|given|I hope)\b/i;

function cutJustification(seg: string): string {
  // Look only outside math spans.
  const spans = findMathSpans(seg);
  let masked = seg;
  for (const sp of spans) masked = masked.slice(0, sp.start) + ' '.repeat(sp.end - sp.start) + masked.slice(sp.end);
  const m = JUSTIFY_RE.exec(masked);
  return m ? seg.slice(0, m.index) : seg;
}

/** Drops trailing punctuation with a backwards scan (an end-anchored regex would be quadratic on long runs). */
function trimTrailing(s: string): string {
  let i = s.length;
  while (i > 0 && ' \t\n.。!,;:'.includes(s[i - 1]!)) i--;
  return s.slice(0, i);
}

function cleanSegment(seg: string): string {
  return trimTrailing(seg)
    .replace(/\*\*/g, '')
    .replace(/^[\s:：=,]+/, '')
    .replace(/^(?:is|are|would be|should be|of|that)\b\s*[:：]?\s*/i, '')
    .trim();
}

// A ratio or clock time (`2:7`, `9:45`) is one number token: its last part alone is not the answer.
const NUMBER_RE = /[-−]?\$?\d[\d,.']*(?::\d+)*(?:\/\d+)?(?:\s*(?:%|\\%|percent\b))?/g;

function lastNumber(s: string): { text: string; index: number } | null {
  let last: RegExpExecArray | null = null;
  NUMBER_RE.lastIndex = 0;
  for (let m = NUMBER_RE.exec(s); m !== null; m = NUMBER_RE.exec(s)) last = m;
  if (!last) return null;
  const text = last[0].replace(/[\s,.']+$/, '');
  return { text, index: last.index };
}

/** The sentence that leads up to an answer ending at `end` (for hedge checks: what qualifies the value). */
function leadIn(s: string, start: number, end: number): string {
  let a = start;
  while (a > 0 && s[a - 1] !== '\n' && !(s[a - 1] === '.' && /\s/.test(s[a] ?? '')) && start - a < 300) a--;
  return s.slice(a, end);
}

/** Plain words (two letters or more) outside the math spans of `s`. */
function hasWordsOutside(s: string, spans: Span[]): boolean {
  let prev = 0;
  for (const sp of spans) {
    if (/[A-Za-z]{2}/.test(s.slice(prev, sp.start))) return true;
    prev = sp.end;
  }
  return /[A-Za-z]{2}/.test(s.slice(prev));
}

/**
 * Finds the final answer in a worked solution, or null when the text holds none of the forms above. `text` is the
 * raw response (LaTeX and prose).
 */
export function extractAnswer(text: string, opts: { phrases?: boolean } = {}): Extracted | null {
  const boxes = findBoxes(text);
  if (boxes.length > 0) {
    const group = joinConnected(boxes, text);
    return { answer: joinInner(group), how: 'box', context: joinInner(group) };
  }
  let phrase: RegExpExecArray | null = null;
  PHRASE_RE.lastIndex = 0;
  for (let m = PHRASE_RE.exec(text); m !== null; m = PHRASE_RE.exec(text)) phrase = m;
  if (phrase && opts.phrases !== false) {
    const from = phrase.index + phrase[0].length;
    const end = sentenceEnd(text, from);
    const seg = cleanSegment(cutJustification(text.slice(from, end)));
    if (seg !== '') {
      // `$x < 2$, that is $(-\infty, 2)$`: formulas with words between them; the last formula is the answer.
      const inSeg = findMathSpans(seg);
      if (inSeg.length > 1 && hasWordsOutside(seg, inSeg)) {
        const group = joinConnected(inSeg, seg);
        return { answer: joinInner(group), how: 'phrase', context: seg.slice(0, group[group.length - 1]!.end) };
      }
      return { answer: seg, how: 'phrase', context: seg };
    }
  }
  // The last math span or the last number, whichever comes later (a closing sentence in plain text wins over an
  // earlier formula).
  const spans = findMathSpans(text);
  const n = lastNumber(text);
  const lastSpan = spans[spans.length - 1];
  if (lastSpan && !(n && n.index >= lastSpan.end)) {
    const group = joinConnected(spans, text);
    const answer = joinInner(group);
    if (answer !== '')
      return { answer, how: 'span', context: leadIn(text, group[0]!.start, group[group.length - 1]!.end) };
  }
  if (n) return { answer: n.text, how: 'number', context: leadIn(text, n.index, n.index + n.text.length) };
  return null;
}

/**
 * A multiple-choice letter in an answer written as prose: `C`, `(C)`, `C, since …`, `the answer is (C)`. Returns ''
 * for a list of letters (`A, B, C`), null when the text names no choice.
 */
export function extractChoice(text: string, letters = 'ABCDEFGHIJ'): string | null {
  const boxes = findBoxes(text);
  const src = boxes.length > 0 ? boxes[boxes.length - 1]!.inner : text;
  const plain = src.replace(/\\text(?:bf)?\{([^{}]*)\}/g, '$1').replace(/\*\*/g, '');
  const lead = /^\s*\(?([A-J])\)?(?=$|[\s.,:;)])/.exec(plain);
  if (lead && letters.includes(lead[1]!)) {
    // `A, B, C` or `A or C`: a list of candidates is not a choice.
    if (/^\s*(?:,|;|\/|or\b|and\b)\s*\(?[A-J]\)?(?=$|[\s.,:;)])/.test(plain.slice(lead[0].length))) return '';
    return lead[1]!;
  }
  let last: string | null = null;
  const re = /(?:answer|option|choice)\s*(?:(?:is|:)\s*)?\(?([A-J])\)?(?=$|[\s.,:;)])/gi;
  for (let m = re.exec(plain); m !== null; m = re.exec(plain)) last = m[1]!.toUpperCase();
  return last && letters.includes(last) ? last : null;
}

/** Hedge words a single value may come with in prose (`approximately 3.14` names one value). */
const SINGLE_VALUE_WORDS = ['or', 'and', 'approximately', 'approx', 'about', 'around', 'roughly', 'nearly', 'almost'];

/** A hedge in the sentence an answer came from ("between 1 and 10", "either", "at least"), or null. */
export function hedgeIn(context: string, gold: string): string | null {
  const plain = context.replace(/\\approx|≈|~|\\sim(?![a-z])/g, ' ').replace(/\?(?=\s*$)/, '');
  // "The range of f is [-2, 5]": for an interval or inequality reference, "range" names the answer, not a hedge.
  const interval =
    gold.length <= 200 && (/[<>]|\\[lg]eq?\b|\\infty/.test(gold) || /[[(][^\])]*[\])]/.exec(gold)?.[0].includes(','));
  // The answer as the end of a range ("from 5 to 7", "5 to 7"): bounded tokens, anchored at the end.
  if (
    /(?:^|\s)(?:from\s+)?[-$]?\d[^\s]{0,30}\s+(?:to|through|-|–)\s+[-$]?\d[^\s]{0,30}$/i.test(plain.slice(-80)) &&
    !/\bto\b/.test(gold)
  )
    return 'hedged answer (a range)';
  return detectHedge(plain, gold, {
    allow: interval ? [...SINGLE_VALUE_WORDS, 'range', 'ranging'] : SINGLE_VALUE_WORDS,
  });
}
