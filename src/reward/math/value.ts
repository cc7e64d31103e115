/**
 * Parses a normalised math answer into a structured value: numbers (exact integers kept as bigint), expressions
 * (compiled with mathjs after an AST whitelist), tuples / intervals / sets / lists, interval unions, matrices,
 * relations (equations, inequalities, chains), `a ± b`, and text. The whitelist is the safety boundary of the
 * in-process path: only arithmetic, a fixed set of elementary functions and single-letter variables ever reach
 * mathjs evaluation, so no answer can allocate a huge matrix, call a unit conversion or loop in `combinations`.
 */
import { type MathNode, parse as mathParse } from 'mathjs';
import { compileNode } from './evaluate.js';
import { GREEK_LOWER, LatexError, type LatexFlags, latexToPlain } from './latex.js';
import { joinDigitGroups, normalizeNumberToken, stripSurface } from './surface.js';

export type Bracket = '(' | ')' | '[' | ']' | '{' | '}' | '';

export interface Complexish {
  re: number;
  im: number;
}

export type MathValue =
  | {
      kind: 'number';
      value: number;
      /** Exact when the literal was an integer. */
      int?: bigint;
      percent: boolean;
      /** Digits after the decimal point when the value was written as a decimal literal (`2.33` → 2). */
      decimals?: number;
    }
  | {
      kind: 'expr';
      src: string;
      vars: string[];
      evaluate: (scope: Record<string, number>) => Complexish | null;
      percent: boolean;
    }
  | { kind: 'seq'; open: Bracket; close: Bracket; items: MathValue[] }
  | { kind: 'union'; parts: MathValue[] }
  | { kind: 'matrix'; rows: MathValue[][] }
  | { kind: 'relation'; ops: RelOp[]; terms: MathValue[] }
  | { kind: 'pm'; base: MathValue; delta: MathValue }
  | { kind: 'empty' }
  | { kind: 'text'; text: string };

/** `≈` reads like `=` for chains (`7/3 ≈ 2.33`); the compare rules check the approximation separately. */
export type RelOp = '=' | '<' | '<=' | '>' | '>=' | '!=' | '≈';

export interface ParseMode {
  /** Read a lone `1,2` as the pair 1, 2 instead of the decimal 1.2 (the second reading of an ambiguous comma). */
  listComma?: boolean;
}

export interface ParseLimits {
  /** Longest plain text parsed in process (default 400 characters). */
  maxLength: number;
  /** Deepest bracket nesting (default 32). */
  maxDepth: number;
  /** Most AST nodes in one expression (default 300). */
  maxNodes: number;
}

export const DEFAULT_LIMITS: ParseLimits = { maxLength: 400, maxDepth: 32, maxNodes: 300 };

export class TooComplexError extends Error {}

const FUNCS = new Set([
  'sqrt',
  'nthRoot',
  'sin',
  'cos',
  'tan',
  'sec',
  'csc',
  'cot',
  'asin',
  'acos',
  'atan',
  'sinh',
  'cosh',
  'tanh',
  'log',
  'log10',
  'log2',
  'exp',
  'abs',
  'floor',
  'ceil',
  'combinations',
  'factorial',
]);
const CONSTS = new Set(['pi', 'e', 'i', 'Infinity']);
const GREEK = new Set(GREEK_LOWER);
/** Short English words: an answer containing them is prose, not a product of single-letter variables. */
const PROSE = new Set(
  (
    'or and to is the of no yes not are any all for but nor yet was its it be at by on if then than so as an ' +
    'we get has had can let our how why who one two six ten may see use you he she his her they us got'
  ).split(' '),
);
const OPS = new Set(['add', 'subtract', 'multiply', 'divide', 'pow', 'unaryMinus', 'unaryPlus', 'factorial']);

const NUMBER_RE = /^[+-]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?$/;
const INT_RE = /^[+-]?\d+$/;
const THOUSANDS_RE = /^[+-]?\d{1,3}(?:,\d{3})+(?:\.\d+)?$/;
const SCI_RE = /^([+-]?(?:\d+(?:\.\d*)?|\.\d+))\s*\*\s*10\s*\^\s*\(?\s*([+-]?\d+)\s*\)?$/;

/** Answer-level clean-up shared by every math-like verifier: LaTeX → plain, trailing period, digit groups. */
export function normalizeMathText(raw: string, flags?: LatexFlags): string {
  let s = raw.trim();
  if (s.length > 20_000) throw new TooComplexError(`answer too long (${s.length} characters)`);
  s = latexToPlain(s, {}, flags);
  s = s.trim();
  if (s.endsWith('.')) s = s.slice(0, -1).trim();
  return joinDigitGroups(s);
}

/** Parses raw answer text (LaTeX or plain) into a value. Throws TooComplexError / LatexError on limits. */
export function parseMathValue(raw: string, limits: ParseLimits = DEFAULT_LIMITS, mode: ParseMode = {}): MathValue {
  // Plain numbers need no normalisation.
  if (raw.length < 40 && NUMBER_RE.test(raw)) return parseNumberLiteral(raw)!;
  const flags: LatexFlags = { degrees: false, percent: false, hadText: false, plusMinus: false };
  const plain = normalizeMathText(raw, flags);
  if (plain.length > limits.maxLength)
    throw new TooComplexError(`answer too long for in-process math (${plain.length} > ${limits.maxLength})`);
  checkDepth(plain, limits.maxDepth);
  return parsePlain(plain, limits, mode);
}

function checkDepth(s: string, max: number): void {
  let d = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 40 || c === 91 || c === 123) {
      if (++d > max) throw new TooComplexError(`nesting deeper than ${max}`);
    } else if (c === 41 || c === 93 || c === 125) d--;
  }
}

const OPENERS = '([{';
const CLOSERS = ')]}';

/** Splits on any of `seps` at bracket depth 0. */
export function splitTop(s: string, seps: string[]): { parts: string[]; used: string[] } {
  if (!seps.some((sep) => s.includes(sep))) return { parts: [s], used: [] };
  const parts: string[] = [];
  const used: string[] = [];
  let depth = 0;
  let start = 0;
  let i = 0;
  outer: while (i < s.length) {
    const c = s[i]!;
    if (OPENERS.includes(c)) depth++;
    else if (CLOSERS.includes(c)) depth--;
    else if (depth === 0) {
      for (const sep of seps) {
        if (s.startsWith(sep, i)) {
          parts.push(s.slice(start, i));
          used.push(sep);
          i += sep.length;
          start = i;
          continue outer;
        }
      }
    }
    i++;
  }
  parts.push(s.slice(start));
  return { parts, used };
}

/** Index of the bracket closing the one at 0 (any of `)]` for `([`, `}` for `{`), or -1. */
function closingIndex(s: string): number {
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (OPENERS.includes(c)) depth++;
    else if (CLOSERS.includes(c)) {
      depth--;
      if (depth === 0) return i;
    }
  }
  return -1;
}

const REL_SEPS = ['<=', '>=', '!=', '==', '=', '<', '>', '≈', '∈'];
/** Top-level list separators: commas, semicolons, and the words `and` / `or` between values. */
const LIST_SEPS = [',', ';', ' and ', ' or '];
const CONNECTIVE_RE = /^(?:and|or)\s+/i;

function parsePlain(s0: string, limits: ParseLimits, mode: ParseMode): MathValue {
  let s = s0.trim().replace(/^["']|["']$/g, '');
  if (s === '') return { kind: 'text', text: '' };
  if (s === '∅' || /^\{\s*\}$/.test(s) || /^(?:the )?(?:empty set|no solutions?|none)$/i.test(s))
    return { kind: 'empty' };
  // A leading approximation sign names the value that follows (`≈ 2.33`).
  if (s[0] === '≈') s = s.slice(1).trim();

  // Currency, units and percent words around a value; then a lone number in any grouping style.
  const surface = stripSurface(s);
  s = surface.text;
  let percent = surface.percent;
  if (s.endsWith('%') && !s.slice(0, -1).includes('%')) {
    const t = normalizeNumberToken(s.slice(0, -1), mode.listComma);
    if (t !== null) return parseNumberLiteral(t, true)!;
  }
  const token = normalizeNumberToken(s, mode.listComma);
  if (token !== null) return parseNumberLiteral(token, percent)!;

  const union = splitTop(s, ['∪']);
  if (union.parts.length > 1) return { kind: 'union', parts: union.parts.map((p) => parsePlain(p, limits, mode)) };

  // Bracketed sequences: sets, tuples, intervals, matrices.
  const first = s[0]!;
  if (OPENERS.includes(first) && closingIndex(s) === s.length - 1) {
    const inner = s.slice(1, -1);
    const close = s[s.length - 1] as Bracket;
    if (first === '{') {
      const items = splitTop(inner, LIST_SEPS)
        .parts.map((p) => p.trim().replace(CONNECTIVE_RE, ''))
        .filter((p) => p !== '');
      return { kind: 'seq', open: '{', close: '}', items: items.map((p) => parsePlain(p, limits, mode)) };
    }
    const commas = splitTop(inner, [',', ';']);
    if (commas.parts.length > 1 && !THOUSANDS_RE.test(inner.trim())) {
      const items = commas.parts.map((p) => parsePlain(p, limits, mode));
      if (first === '[' && items.length > 0 && items.every((it) => it.kind === 'seq' && it.open === '[')) {
        const rows = items.map((it) => (it as Extract<MathValue, { kind: 'seq' }>).items);
        if (rows.every((r) => r.length === rows[0]!.length)) return { kind: 'matrix', rows };
      }
      return { kind: 'seq', open: first as Bracket, close, items };
    }
    if (first === '[' && close === ']') {
      // `[x]` alone: a one-element list (or a 1×n matrix row); keep as a sequence.
      return { kind: 'seq', open: '[', close: ']', items: [parsePlain(inner, limits, mode)] };
    }
  }

  if (THOUSANDS_RE.test(s)) s = s.replace(/,/g, '');
  // Several values: `2, 5, and 11`, `8, 3 or 1`, `x = 3 or x = -3` (an unordered list).
  const list = splitTop(s, LIST_SEPS);
  if (list.parts.length > 1) {
    const items = list.parts
      .map((p) => p.trim().replace(CONNECTIVE_RE, ''))
      .filter((p) => p !== '')
      .map((p) => parsePlain(p, limits, mode));
    return items.length === 1 ? items[0]! : { kind: 'seq', open: '', close: '', items };
  }

  const rel = splitTop(s, REL_SEPS);
  if (rel.parts.length > 1 && rel.parts.every((p) => p.trim() !== '')) {
    // `x ∈ [1, 4]`, `x ∈ {1, 2}`: membership names the set.
    if (rel.used.length === 1 && rel.used[0] === '∈') return parsePlain(rel.parts[1]!, limits, mode);
    if (!rel.used.includes('∈'))
      return {
        kind: 'relation',
        ops: rel.used.map((o) => (o === '==' ? '=' : o) as RelOp),
        terms: rel.parts.map((p) => parsePlain(p, limits, mode)),
      };
  }

  const pm = splitTop(s, ['±', '∓']);
  if (pm.parts.length === 2 && pm.parts[1]!.trim() !== '') {
    const base =
      pm.parts[0]!.trim() === ''
        ? { kind: 'number' as const, value: 0, int: 0n, percent: false }
        : parsePlain(pm.parts[0]!, limits, mode);
    return { kind: 'pm', base, delta: parsePlain(pm.parts[1]!, limits, mode) };
  }

  // A ratio `2:7` is the quotient (`S_1:S_2 = 2:7` keeps its right-hand side through the relation rules).
  // A clock time (`9:00`, `21:45`, `07:30:15`) is not a ratio: 21:00 and 9:00 would both be 21/0 = 9/0 = ∞, and
  // 1:30 would equal 2:60. It compares as the time it names (leading zeros of the hour dropped).
  const clock = /^(\d{1,2}):([0-5]\d)(?::([0-5]\d))?$/.exec(s);
  if (clock) {
    return { kind: 'text', text: `${Number(clock[1])}:${clock[2]}${clock[3] !== undefined ? `:${clock[3]}` : ''}` };
  }
  const ratio = splitTop(s, [':']);
  if (ratio.parts.length === 2 && ratio.parts.every((p) => p.trim() !== '')) {
    const [a, b] = ratio.parts.map((p) => p.trim()) as [string, string];
    const na = normalizeNumberToken(a) ?? a;
    const nb = normalizeNumberToken(b) ?? b;
    const quotient = parseExpression(`(${na})/(${nb})`, false, limits);
    // A zero second term makes no ratio (the quotient is not a value to compare): keep the text.
    if (!(quotient.kind === 'number' && !Number.isFinite(quotient.value))) return quotient;
    return { kind: 'text', text: normalizeText(s) };
  }

  if (s.endsWith('%')) {
    percent = true;
    s = s.slice(0, -1).trim();
  }
  const num = parseNumberLiteral(s, percent);
  if (num) return num;
  // One `±` inside an expression (`(-1 ± sqrt(5))/2`): the two values it stands for.
  const pmAt = s.search(/[±∓]/);
  if (pmAt >= 0 && s.slice(pmAt + 1).search(/[±∓]/) < 0) {
    const [a, b] = s[pmAt] === '±' ? ['+', '-'] : ['-', '+'];
    const items = [a, b].map((sign) => parsePlain(s.slice(0, pmAt) + sign + s.slice(pmAt + 1), limits, mode));
    return { kind: 'seq', open: '', close: '', items };
  }
  return parseExpression(s, percent, limits);
}

const RATIONAL_RE = /^\(*([+-]?\d+(?:\.\d+)?)\)*\/\(*(\d+(?:\.\d+)?)\)*$/;

export function parseNumberLiteral(s: string, percent = false): MathValue | null {
  const t = s.replace(/\s+/g, '');
  // `a/b` and the converter's `((a)/(b))`: a number without a parser round trip (balanced parentheses only).
  const q = RATIONAL_RE.exec(t);
  if (q && balanced(t)) return { kind: 'number', value: Number(q[1]) / Number(q[2]), percent };
  if (NUMBER_RE.test(t)) {
    if (INT_RE.test(t)) return { kind: 'number', value: Number(t), int: BigInt(t), percent };
    const dot = t.indexOf('.');
    const decimals = dot >= 0 && !/[eE]/.test(t) ? t.length - dot - 1 : undefined;
    return { kind: 'number', value: Number(t), percent, ...(decimals !== undefined ? { decimals } : {}) };
  }
  const sci = SCI_RE.exec(t);
  if (sci) return { kind: 'number', value: Number(`${sci[1]}e${sci[2]}`), percent };
  return null;
}

function balanced(s: string): boolean {
  let d = 0;
  for (const ch of s) {
    if (ch === '(') d++;
    else if (ch === ')' && --d < 0) return false;
  }
  return d === 0;
}

/** Inserts explicit structure mathjs needs: splits letter runs into variables, wraps bare function arguments. */
function prepareExpression(s0: string): string | null {
  const s = absBars(s0);
  if (s === null) return null;
  let out = '';
  let i = 0;
  const powGroups: boolean[] = [];
  while (i < s.length) {
    const c = s[i]!;
    if (/[A-Za-z]/.test(c)) {
      let j = i;
      while (j < s.length && /[A-Za-z]/.test(s[j]!)) j++;
      let word = s.slice(i, j);
      // `log10`, `log2`: the digits belong to the function name.
      if (
        word === 'log' &&
        (s.startsWith('10', j) || s.startsWith('2', j)) &&
        /[\s(]/.test(s[j + (s[j + 1] === '0' ? 2 : 1)] ?? '')
      ) {
        j += s[j + 1] === '0' ? 2 : 1;
        word = s.slice(i, j);
      }
      // Subscripted variable x_1, a_n, x_10.
      if (s[j] === '_') {
        let k = j + 1;
        while (k < s.length && /[A-Za-z0-9]/.test(s[k]!)) k++;
        if (k > j + 1 && word.length === 1) {
          out += ` ${s.slice(i, k)} `;
          i = k;
          continue;
        }
      }
      if (FUNCS.has(word)) {
        // `sin x`, `sin^(2) x`: give the function an explicit argument.
        let k = j;
        while (s[k] === ' ') k++;
        let power = '';
        if (s[k] === '^') {
          const m = /^\^\s*\(([^()]*)\)|^\^\s*(\d+)/.exec(s.slice(k));
          if (m) {
            power = m[1] ?? m[2]!;
            k += m[0].length;
            while (s[k] === ' ') k++;
          }
        }
        if (s[k] !== '(') {
          // `sin 2x` is sin(2x): a number with one glued variable is the argument.
          const m = /^(?:\d+(?:\.\d*)?(?:[A-Za-z](?![A-Za-z]))?|[A-Za-z](?![A-Za-z])|pi|[A-Za-z](?=\s))/.exec(
            s.slice(k),
          );
          if (!m) return null;
          const arg = m[0].replace(/^([\d.]+)([A-Za-z])$/, '$1 $2');
          out += power ? ` (${word}(${arg}))^(${power}) ` : ` ${word}(${arg}) `;
          i = k + m[0].length;
          continue;
        }
        if (power) {
          const close = closingIndex(s.slice(k));
          if (close < 0) return null;
          out += ` (${word}${s.slice(k, k + close + 1)})^(${power}) `;
          i = k + close + 1;
          continue;
        }
        out += ` ${word}`;
        i = j;
        continue;
      }
      if (PROSE.has(word.toLowerCase())) return null;
      if (CONSTS.has(word) || GREEK.has(word)) {
        out += ` ${word} `;
        i = j;
        continue;
      }
      if (word.length > 3) {
        // Leading constant/function names glued to single letters, e.g. `pir` → pi r; otherwise it is prose.
        const m = /^(pi)([a-z]{1,2})$/.exec(word);
        if (!m) return null;
        word = `${m[1]} ${m[2]!.split('').join(' ')}`;
        out += ` ${word} `;
        i = j;
        continue;
      }
      out += ` ${word.split('').join(' ')} `;
      i = j;
      // `a(b + c)`: a variable before a bracket multiplies it (mathjs would read a call of `a`).
      while (s[i] === ' ') i++;
      if (s[i] === '(') out += '* ';
      continue;
    }
    // A power followed by another factor (`r^(2) h`, `x^2 y`): mathjs would fold the factor into the exponent.
    if (c === '(') powGroups.push(out.trimEnd().endsWith('^'));
    else if (c === ')' && powGroups.pop() === true) {
      out += c;
      i++;
      if (startsFactor(s, i)) out += ' * ';
      continue;
    } else if (c >= '0' && c <= '9' && out.trimEnd().endsWith('^')) {
      let j = i;
      while (j < s.length && /[\d.]/.test(s[j]!)) j++;
      out += s.slice(i, j);
      i = j;
      if (startsFactor(s, i)) out += ' * ';
      continue;
    }
    out += c;
    i++;
  }
  return out;
}

/** The next non-space character starts a factor (a letter, a digit or an opening bracket). */
function startsFactor(s: string, from: number): boolean {
  let i = from;
  while (s[i] === ' ') i++;
  const c = s[i];
  return c !== undefined && /[A-Za-z0-9(]/.test(c);
}

/** `|a|` → `abs(a)`: bars alternate open/close at the same bracket depth. */
function absBars(s: string): string | null {
  if (!s.includes('|')) return s;
  let out = '';
  const openDepths: number[] = [];
  let depth = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (c === '(' || c === '[') depth++;
    else if (c === ')' || c === ']') depth--;
    if (c !== '|') {
      out += c;
      continue;
    }
    // A bar closes when an abs is open at this depth and the previous character ends an operand.
    const prev = out.trimEnd().slice(-1);
    if (
      openDepths.length > 0 &&
      openDepths[openDepths.length - 1] === depth &&
      prev !== '' &&
      !/[-+*/^(,|]/.test(prev)
    ) {
      openDepths.pop();
      out += ')';
    } else {
      openDepths.push(depth);
      out += ' abs(';
    }
  }
  return openDepths.length === 0 ? out : null;
}

function validate(node: MathNode, limits: ParseLimits): string[] {
  const vars = new Set<string>();
  let count = 0;
  let bad: string | null = null;
  node.traverse((n: MathNode, _path: string, parent: MathNode | null) => {
    if (bad) return;
    if (++count > limits.maxNodes) {
      bad = `more than ${limits.maxNodes} nodes`;
      return;
    }
    switch (n.type) {
      case 'ConstantNode': {
        const v = (n as unknown as { value: unknown }).value;
        if (typeof v !== 'number') bad = 'non-numeric constant';
        break;
      }
      case 'ParenthesisNode':
        break;
      case 'OperatorNode': {
        const fn = (n as unknown as { fn: string }).fn;
        if (!OPS.has(fn)) bad = `operator ${fn}`;
        if (fn === 'factorial') {
          const arg = (n as unknown as { args: MathNode[] }).args[0]!;
          if (!isSmallIntConstant(arg)) bad = 'factorial of a non-constant or large value';
        }
        break;
      }
      case 'FunctionNode': {
        const fnNode = (n as unknown as { fn: MathNode }).fn;
        const name = (fnNode as unknown as { name?: string }).name ?? '';
        if (!FUNCS.has(name)) bad = `function ${name}`;
        if (name === 'combinations' || name === 'factorial') {
          const args = (n as unknown as { args: MathNode[] }).args;
          if (!args.every(isSmallIntConstant)) bad = `${name} of non-constant or large arguments`;
        }
        break;
      }
      case 'SymbolNode': {
        const name = (n as unknown as { name: string }).name;
        const isCallee = parent?.type === 'FunctionNode' && (parent as unknown as { fn: MathNode }).fn === n;
        if (isCallee) break;
        if (CONSTS.has(name)) break;
        if (GREEK.has(name) || /^[A-Za-z](?:_[A-Za-z0-9]+)?$/.test(name)) vars.add(name);
        else bad = `symbol ${name}`;
        break;
      }
      default:
        bad = n.type;
    }
  });
  if (bad) throw new TooComplexError(`unsupported expression (${bad})`);
  return [...vars].sort();
}

function isSmallIntConstant(n: MathNode): boolean {
  let x: MathNode = n;
  while (x.type === 'ParenthesisNode') x = (x as unknown as { content: MathNode }).content;
  if (x.type !== 'ConstantNode') return false;
  const v = (x as unknown as { value: unknown }).value;
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 1000;
}

function parseExpression(s: string, percent: boolean, limits: ParseLimits): MathValue {
  const prepared = prepareExpression(s);
  if (prepared === null) return textValue(s);
  let node: MathNode;
  try {
    node = mathParse(prepared);
  } catch {
    return textValue(s);
  }
  let vars: string[];
  try {
    vars = validate(node, limits);
  } catch (e) {
    if (
      e instanceof TooComplexError &&
      /^unsupported expression \((?:symbol|function|operator|AccessorNode|ArrayNode|non-numeric)/.test(e.message)
    )
      return textValue(s);
    throw e;
  }
  const compiled = compileNode(node);
  const evaluate = (scope: Record<string, number>): Complexish | null => {
    const v = compiled(scope);
    return Number.isNaN(v.re) || Number.isNaN(v.im) ? null : v;
  };
  if (vars.length === 0) {
    const v = evaluate({});
    if (v && v.im === 0 && !Number.isNaN(v.re)) return { kind: 'number', value: v.re, percent };
  }
  return { kind: 'expr', src: prepared.trim(), vars, evaluate, percent };
}

export function textValue(s: string): MathValue {
  return { kind: 'text', text: normalizeText(s) };
}

/** Text comparison form: lower case, no spaces, no surrounding punctuation, unified quotes. */
export function normalizeText(s: string): string {
  return s
    .toLowerCase()
    .replace(/[\s\u3000]+/g, '')
    .replace(/[“”„"]/g, '"')
    .replace(/[‘’']/g, "'")
    .replace(/^[.,;:!。，；：！]+|[.,;:!。，；：！]+$/g, '');
}

export { LatexError };
