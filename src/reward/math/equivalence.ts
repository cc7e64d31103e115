/**
 * Math answer equivalence: parse both sides (LaTeX or plain) and compare. The in-process call is bounded by the
 * parse limits; anything beyond them is reported as `tooComplex` so the caller can send it to the CAS worker pool
 * (src/reward/cas.ts), where the same check runs with larger limits plus mathjs `simplify`, under a hard kill.
 */
import { simplify } from 'mathjs';
import { type CompareOptions, type Comparison, compareValues } from './compare.js';
import { extractAnswer, extractChoice, hedgeIn } from './extract.js';
import { hasAmbiguousComma } from './surface.js';
import {
  DEFAULT_LIMITS,
  LatexError,
  type MathValue,
  type ParseLimits,
  type ParseMode,
  parseMathValue,
  TooComplexError,
} from './value.js';

export interface MathCheckOptions extends CompareOptions {
  limits?: ParseLimits;
  /**
   * Reuse parsed references (default true): an RL group compares G responses with one reference, so the reference
   * is parsed once. Parsed values are immutable, so sharing them is safe.
   */
  goldCache?: boolean;
  /** Try mathjs `simplify(pred − gold) = 0` when evaluation cannot decide (worker only: it can be slow). */
  symbolic?: boolean;
  /**
   * Find the final answer when a side is a worked solution or a sentence (default true): last box, then a
   * final-answer phrase, then the last math span, then the last number (see extract.ts).
   */
  extract?: boolean;
}

export interface MathCheck extends Comparison {
  /** Set when the input exceeded the in-process limits: retry in the CAS pool. */
  tooComplex?: string;
  /** Set when one side could not be parsed at all (unbalanced LaTeX...). */
  parseError?: string;
}

interface Side {
  /** The text that was parsed (the extracted answer, or the whole input). */
  text: string;
  value: MathValue;
  /** A hedge in the sentence the answer came from. */
  hedge?: string;
}

const GOLD_CACHE_SIZE = 4096;
const goldCache = new Map<string, Side>();

/** Two or more plain words in a row: a sentence, not a formula (`5 square units` and `It is 5` both count). */
export function looksLikeProse(s: string): boolean {
  if (!/[A-Za-z]{2}/.test(s)) return false;
  let run = 0;
  for (const w of s.split(/\s+/, 400)) {
    if (w.length >= 2 && /^[A-Za-z]+[.,:;!?]?$/.test(w) && !/^(?:and|or)$/i.test(w)) {
      if (++run >= 2) return true;
    } else run = 0;
  }
  return false;
}

/** Reads one side: the whole input when it is a formula, else the answer extracted from the prose. */
function readSide(raw: string, limits: ParseLimits, extract: boolean, mode: ParseMode, gold: string): Side {
  const boxed = raw.includes('\\boxed') || raw.includes('\\fbox');
  if (extract && (boxed || raw.length > limits.maxLength || looksLikeProse(raw))) {
    const side = readExtracted(raw, limits, mode, gold);
    if (side) return side;
  }
  const value = parseMathValue(raw, limits, mode);
  // Words inside what parsed (`Therefore x = 4`, `Expanding, (x-2)(x+2) = x^2 - 4`): read it as prose instead.
  if (extract && hasText(value)) {
    const side = readExtracted(raw, limits, mode, gold);
    if (side && side.text !== raw.trim() && (value.kind === 'text' || !hasText(side.value))) return side;
  }
  return { text: raw, value };
}

/** A value with a prose part anywhere in it. */
function hasText(v: MathValue): boolean {
  switch (v.kind) {
    case 'text':
      return true;
    case 'seq':
      return v.items.some(hasText);
    case 'relation':
      return v.terms.some(hasText);
    case 'union':
      return v.parts.some(hasText);
    default:
      return false;
  }
}

/** The answer a prose side extracts, parsed; a phrase that reads as text falls back to its last formula or number. */
function readExtracted(raw: string, limits: ParseLimits, mode: ParseMode, gold: string): Side | null {
  const ex = extractAnswer(raw);
  if (!ex) return null;
  const hedge = ex.how === 'box' ? undefined : (hedgeIn(ex.context, gold) ?? undefined);
  const value = parseMathValue(ex.answer, limits, mode);
  if (value.kind === 'text' && ex.how === 'phrase') {
    const inner = extractAnswer(ex.answer, { phrases: false });
    if (inner && inner.answer !== ex.answer)
      return { text: inner.answer, value: parseMathValue(inner.answer, limits, mode), hedge };
  }
  return { text: ex.answer, value, hedge };
}

const CHOICE_RE = /^(?:\\text(?:bf)?\{)?\(?([A-J])\)?\}?$/;

export function checkMath(pred: string, gold: string, opts: MathCheckOptions = {}): MathCheck {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  const extract = opts.extract ?? true;
  // A multiple-choice reference: the answer's choice letter, wherever the prose puts it.
  const choice = extract && gold.length < 40 ? CHOICE_RE.exec(gold.trim()) : null;
  if (choice) {
    const letter = extractChoice(pred);
    if (letter === '') return { equal: false, path: 'choice', detail: 'several choices' };
    if (letter !== null) return { equal: letter === choice[1], path: 'choice' };
  }
  // The same text (spacing aside) is the same answer, whatever it parses to (`n!`, a word).
  if (pred.length < 2000 && pred.replace(/\s+/g, '') === gold.replace(/\s+/g, '') && pred.trim() !== '')
    return { equal: true, path: 'exact' };
  let g: Side;
  const useCache = (opts.goldCache ?? true) && limits === DEFAULT_LIMITS;
  const key = `${extract ? 1 : 0}${gold}`;
  const cached = useCache ? goldCache.get(key) : undefined;
  if (cached) g = cached;
  else {
    try {
      g = readSide(gold, limits, extract, {}, '');
    } catch (e) {
      return failure(e, 'reference');
    }
    if (useCache) {
      if (goldCache.size >= GOLD_CACHE_SIZE) goldCache.delete(goldCache.keys().next().value!);
      goldCache.set(key, g);
    }
  }
  let p: Side;
  try {
    p = readSide(pred, limits, extract, {}, gold);
  } catch (e) {
    return failure(e, 'answer');
  }
  if (p.hedge) return { equal: false, path: 'hedge', detail: p.hedge };
  let c = compare(p.value, g.value, opts);
  // A lone `1,2` reads as the decimal 1.2 first; when that fails, as the pair 1, 2.
  if (c.equal !== true && (hasAmbiguousComma(p.text) || hasAmbiguousComma(g.text))) {
    try {
      const p2 = hasAmbiguousComma(p.text) ? parseMathValue(p.text, limits, { listComma: true }) : p.value;
      const g2 = hasAmbiguousComma(g.text) ? parseMathValue(g.text, limits, { listComma: true }) : g.value;
      const c2 = compare(p2, g2, opts);
      if (c2.equal === true) c = c2;
    } catch {
      // keep the first reading's verdict
    }
  }
  if (
    c.equal === null &&
    opts.symbolic &&
    p.value.kind === 'expr' &&
    (g.value.kind === 'expr' || g.value.kind === 'number')
  ) {
    const s = symbolicZero(p.value.src, g.value.kind === 'expr' ? g.value.src : String(g.value.value));
    if (s !== null) return { equal: s, path: 'simplify' };
  }
  return c;
}

/** The canonical clock time `parseMathValue` gives a bare `9:45` / `07:30:15`. */
const CLOCK_TEXT_RE = /^\d{1,2}:[0-5]\d(?::[0-5]\d)?$/;

const isClock = (v: MathValue) => v.kind === 'text' && CLOCK_TEXT_RE.test(v.text);

/** A clock-shaped `4:14` read as the ratio 4/14 (for a side compared with a ratio or number); null for `h:00`. */
function clockAsRatio(v: MathValue): MathValue {
  const m = v.kind === 'text' ? /^(\d{1,2}):(\d\d)$/.exec(v.text) : null;
  if (!m || Number(m[2]) === 0) return v;
  return { kind: 'number', value: Number(m[1]) / Number(m[2]), percent: false };
}

function compare(p: MathValue, g: MathValue, opts: CompareOptions): MathCheck {
  // Two clock times are decided here: the same time or not (texts would only leave them undecided). A clock-shaped
  // side against anything else is the ratio it also reads as (`4:14` against `2:7`).
  if (isClock(p) && isClock(g))
    return { equal: (p as { text: string }).text === (g as { text: string }).text, path: 'time' };
  if (isClock(p) !== isClock(g)) {
    p = clockAsRatio(p);
    g = clockAsRatio(g);
  }
  try {
    return compareValues(p, g, opts);
  } catch (e) {
    // Stack overflow on adversarial structure, or anything unexpected: undecided, never a crash.
    return { equal: null, path: 'error', parseError: `comparison failed: ${(e as Error).message}` };
  }
}

function failure(e: unknown, side: string): MathCheck {
  const msg = (e as Error).message ?? String(e);
  if (e instanceof TooComplexError) return { equal: null, path: 'limits', tooComplex: `${side}: ${msg}` };
  if (e instanceof LatexError)
    return { equal: side === 'answer' ? false : null, path: 'parse', parseError: `${side}: ${msg}` };
  if (e instanceof RangeError) return { equal: null, path: 'limits', tooComplex: `${side}: ${msg}` };
  return { equal: null, path: 'parse', parseError: `${side}: ${msg}` };
}

/** mathjs simplify of the difference: true when it reduces to 0; null when simplify leaves a non-zero residue. */
export function symbolicZero(a: string, b: string): boolean | null {
  try {
    const r = simplify(`(${a}) - (${b})`).toString();
    if (r === '0') return true;
    return null;
  } catch {
    return null;
  }
}
