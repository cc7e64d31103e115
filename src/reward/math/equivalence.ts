/**
 * Math answer equivalence: parse both sides (LaTeX or plain) and compare. The in-process call is bounded by the
 * parse limits; anything beyond them is reported as `tooComplex` so the caller can send it to the CAS worker pool
 * (src/reward/cas.ts), where the same check runs with larger limits plus mathjs `simplify`, under a hard kill.
 */
import { simplify } from 'mathjs';
import { type CompareOptions, type Comparison, compareValues } from './compare.js';
import {
  DEFAULT_LIMITS,
  LatexError,
  type MathValue,
  type ParseLimits,
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
}

export interface MathCheck extends Comparison {
  /** Set when the input exceeded the in-process limits: retry in the CAS pool. */
  tooComplex?: string;
  /** Set when one side could not be parsed at all (unbalanced LaTeX...). */
  parseError?: string;
}

const GOLD_CACHE_SIZE = 4096;
const goldCache = new Map<string, MathValue>();

export function checkMath(pred: string, gold: string, opts: MathCheckOptions = {}): MathCheck {
  const limits = opts.limits ?? DEFAULT_LIMITS;
  let g: MathValue;
  const useCache = (opts.goldCache ?? true) && limits === DEFAULT_LIMITS;
  const cached = useCache ? goldCache.get(gold) : undefined;
  if (cached) g = cached;
  else {
    try {
      g = parseMathValue(gold, limits);
    } catch (e) {
      return failure(e, 'reference');
    }
    if (useCache) {
      if (goldCache.size >= GOLD_CACHE_SIZE) goldCache.delete(goldCache.keys().next().value!);
      goldCache.set(gold, g);
    }
  }
  let p: MathValue;
  try {
    p = parseMathValue(pred, limits);
  } catch (e) {
    return failure(e, 'answer');
  }
  let c: Comparison;
  try {
    c = compareValues(p, g, opts);
  } catch (e) {
    // Stack overflow on adversarial structure, or anything unexpected: undecided, never a crash.
    return { equal: null, path: 'error', parseError: `comparison failed: ${(e as Error).message}` };
  }
  if (c.equal === null && opts.symbolic && p.kind === 'expr' && (g.kind === 'expr' || g.kind === 'number')) {
    const s = symbolicZero(p.src, g.kind === 'expr' ? g.src : String(g.value));
    if (s !== null) return { equal: s, path: 'simplify' };
  }
  return c;
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
