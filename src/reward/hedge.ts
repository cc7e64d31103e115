/**
 * Hedge detection, shared by every verifier that expects one definite value. The paper's hacks ("a correct number
 * between 0 and 10", "a velocity very close to the speed of light") and the released math judge prompt's hacking
 * patterns ("10 (or 8)", mutually exclusive options) are all answers that name several values or none precisely.
 */

const HEDGE_WORDS = [
  'or',
  'either',
  'between',
  'approximately',
  'approx',
  'about',
  'around',
  'roughly',
  'nearly',
  'almost',
  'close to',
  'very close',
  'at least',
  'at most',
  'more than',
  'less than',
  'greater than',
  'fewer than',
  'up to',
  'somewhere',
  'maybe',
  'perhaps',
  'probably',
  'likely',
  'possibly',
  'could be',
  'might be',
  'estimate',
  'estimated',
  'or so',
  'range',
  'ranging',
  'several',
  'some',
  'unknown',
  'unsure',
  'not sure',
];

const HEDGE_CJK = [
  '或者',
  '或',
  '大约',
  '大概',
  '约',
  '左右',
  '可能',
  '之间',
  '至少',
  '至多',
  '不超过',
  '不少于',
  '以上',
  '以下',
  '上下',
  '也许',
  '估计',
];

const WORD_RE = new RegExp(
  `(^|[^a-z])(${HEDGE_WORDS.map((w) => w.replace(/ /g, '\\s+')).join('|')})(?=$|[^a-z])`,
  'gi',
);

export interface HedgeOptions {
  /** Also treat numeric ranges like `3-4`, `3–5`, `3~4`, `3 to 4` as hedges (counting, chart, VQA). */
  ranges?: boolean;
  /** Hedge words to allow here (e.g. `or` when the reference lists several solutions). */
  allow?: string[];
}

/**
 * Returns a short reason when `answer` hedges, else null. Words that also occur in the reference are allowed
 * (a reference "at least 3" makes "at least 3" a definite answer).
 */
export function detectHedge(answer: string, reference = '', opts: HedgeOptions = {}): string | null {
  const a = answer.toLowerCase();
  const ref = reference.toLowerCase();
  for (const m of a.matchAll(WORD_RE)) {
    const word = m[2]!.replace(/\s+/g, ' ');
    if (opts.allow?.includes(word)) continue;
    if (!new RegExp(`(^|[^a-z])${word.replace(/ /g, '\\s+')}($|[^a-z])`).test(ref)) return `hedged answer ("${word}")`;
  }
  for (const w of HEDGE_CJK) if (a.includes(w) && !ref.includes(w)) return `hedged answer ("${w}")`;
  if (/[≈~∼]|\\approx|\\sim(?![a-z])/.test(a) && !/[≈~∼]|\\approx|\\sim(?![a-z])/.test(ref))
    return 'hedged answer (approximation sign)';
  if (/\?/.test(a) && !ref.includes('?')) return 'hedged answer (question mark)';
  if (opts.ranges) {
    if (/\d\s*(?:-|–|—|~|to|\\text\{\s*to\s*\}|至|到)\s*-?\d/.test(a) && !/\d\s*(?:-|–|—|~|to|至|到)\s*\d/.test(ref))
      return 'hedged answer (a range)';
    if (/±|\\pm/.test(a) && !/±|\\pm/.test(ref)) return 'hedged answer (±)';
  }
  return null;
}
