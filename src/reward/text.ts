/**
 * Text normalisation shared by the verifiers: VQA-style answer normalisation, number words (English and Chinese),
 * yes/no synonyms, script detection for the language gate.
 */

const UNITS_EN: Record<string, number> = {
  zero: 0,
  none: 0,
  one: 1,
  two: 2,
  three: 3,
  four: 4,
  five: 5,
  six: 6,
  seven: 7,
  eight: 8,
  nine: 9,
  ten: 10,
  eleven: 11,
  twelve: 12,
  thirteen: 13,
  fourteen: 14,
  fifteen: 15,
  sixteen: 16,
  seventeen: 17,
  eighteen: 18,
  nineteen: 19,
};
const TENS_EN: Record<string, number> = {
  twenty: 20,
  thirty: 30,
  forty: 40,
  fifty: 50,
  sixty: 60,
  seventy: 70,
  eighty: 80,
  ninety: 90,
};
const CN_DIGITS: Record<string, number> = {
  零: 0,
  〇: 0,
  一: 1,
  二: 2,
  两: 2,
  三: 3,
  四: 4,
  五: 5,
  六: 6,
  七: 7,
  八: 8,
  九: 9,
};

/** English number words up to 999 ("twenty-one", "a hundred and five"); null when not a number phrase. */
export function englishNumber(s: string): number | null {
  const words = s
    .toLowerCase()
    .replace(/-/g, ' ')
    .replace(/\band\b/g, ' ')
    .trim()
    .split(/\s+/);
  if (words.length === 0 || words[0] === '') return null;
  let total = 0;
  let current = 0;
  let seen = false;
  for (const w of words) {
    if (w in UNITS_EN) current += UNITS_EN[w]!;
    else if (w in TENS_EN) current += TENS_EN[w]!;
    else if (w === 'hundred') current = (current || 1) * 100;
    else if (w === 'thousand') {
      total += (current || 1) * 1000;
      current = 0;
    } else if ((w === 'a' || w === 'an') && !seen) continue;
    else return null;
    seen = true;
  }
  return seen ? total + current : null;
}

/** Chinese numerals up to 9999 (十二, 二十五, 一百零三, 两千); null when not one. */
export function chineseNumber(s: string): number | null {
  const t = s.trim();
  if (t === '' || !/^[零〇一二两三四五六七八九十百千]+$/.test(t)) return null;
  let total = 0;
  let digit = -1;
  for (const ch of t) {
    if (ch in CN_DIGITS) digit = CN_DIGITS[ch]!;
    else {
      const mult = ch === '十' ? 10 : ch === '百' ? 100 : 1000;
      total += (digit < 0 ? 1 : digit) * mult;
      digit = -1;
    }
  }
  if (digit > 0) total += digit;
  return total;
}

/** A number written as digits (with thousands separators), English words or Chinese numerals; else null. */
export function wordNumber(s: string): number | null {
  const t = s.trim();
  if (/^[+-]?\d{1,3}(,\d{3})+(\.\d+)?$/.test(t)) return Number(t.replace(/,/g, ''));
  if (/^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$/.test(t)) return Number(t);
  return englishNumber(t) ?? chineseNumber(t);
}

const ARTICLES = /\b(a|an|the)\b/g;
const CONTRACTIONS: Array<[RegExp, string]> = [
  [/\bcan't\b/g, 'cannot'],
  [/\bwon't\b/g, 'will not'],
  [/n't\b/g, ' not'],
  [/'re\b/g, ' are'],
  [/'s\b/g, ''],
];

/**
 * VQA answer normalisation (the VQAv2 evaluation's idea): lower case, contractions expanded, punctuation removed
 * (except a decimal point between digits), articles dropped, number words to digits, whitespace collapsed.
 */
export function normalizeVqa(s: string): string {
  let t = s.normalize('NFKC').toLowerCase().trim();
  for (const [re, rep] of CONTRACTIONS) t = t.replace(re, rep);
  t = t.replace(/(?<!\d)\.(?!\d)|[!"#$&'()*+,/:;<=>?@[\\\]^_`{|}~，。！？；：、“”‘’（）【】《》]/g, ' ');
  t = t.replace(ARTICLES, ' ');
  t = t
    .split(/\s+/)
    .filter((w) => w !== '')
    .map((w) => {
      const n = w in UNITS_EN ? UNITS_EN[w]! : w in TENS_EN ? TENS_EN[w]! : null;
      return n === null ? w : String(n);
    })
    .join(' ');
  return t.trim();
}

const YES = new Set([
  'yes',
  'y',
  'true',
  'correct',
  'right',
  'yeah',
  'yep',
  '是',
  '是的',
  '对',
  '对的',
  '正确',
  '有',
  '会',
  '能',
]);
const NO = new Set([
  'no',
  'n',
  'false',
  'incorrect',
  'wrong',
  'nope',
  '否',
  '不是',
  '不',
  '不对',
  '错误',
  '没有',
  '不会',
  '不能',
]);

/** `yes` / `no` when the answer is a yes/no word (or starts with one followed by a clause), else null. */
export function yesNo(s: string): 'yes' | 'no' | null {
  const t = normalizeVqa(s);
  if (YES.has(t)) return 'yes';
  if (NO.has(t)) return 'no';
  const first = t.split(' ')[0] ?? '';
  const hasYes = t.split(' ').some((w) => YES.has(w) && w.length > 1);
  const hasNo = t.split(' ').some((w) => NO.has(w) && w.length > 1);
  if (hasYes && hasNo) return null; // "yes or no", "not yes": never a definite answer
  if (YES.has(first) && first.length > 1) return 'yes';
  if (NO.has(first) && first.length > 1) return 'no';
  return null;
}

export interface ScriptCounts {
  cjk: number;
  latin: number;
  other: number;
}

const CJK_RE = /[\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\u3040-\u30ff\uac00-\ud7af]/;

export function scriptCounts(s: string): ScriptCounts {
  let cjk = 0;
  let latin = 0;
  let other = 0;
  for (const ch of s) {
    if (CJK_RE.test(ch)) cjk++;
    else if (/[A-Za-z]/.test(ch)) latin++;
    else if (/\p{L}/u.test(ch)) other++;
  }
  return { cjk, latin, other };
}

/** The dominant script of a text, or null when it has too few letters to tell. */
export function dominantScript(s: string, minLetters = 4): 'cjk' | 'latin' | 'other' | null {
  const c = scriptCounts(s);
  // A CJK character carries about a word; weigh it like 3 Latin letters.
  const cjk = c.cjk * 3;
  const total = cjk + c.latin + c.other;
  // One CJK character counts like four letters toward "enough to tell" (红色 is as clear as "red").
  if (c.cjk * 4 + c.latin + c.other < minLetters) return null;
  if (cjk >= 0.6 * total) return 'cjk';
  if (c.latin >= 0.6 * total) return 'latin';
  if (c.other >= 0.6 * total) return 'other';
  return null;
}
