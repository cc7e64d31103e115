/**
 * LaTeX (and Unicode math) → plain mathjs-style text, the normalisation layer the math verifier compares on.
 *
 * No JS port of latex2sympy exists (anchors 3.4), so this is a small single-pass converter over the commands that
 * appear in answers: fractions (including `\frac12` and mixed numbers `2\frac{1}{2}`), roots, powers, subscripts,
 * `\log_b`, trig and greek names, `\text{}` wrappers, set braces, relations, `\pm`, matrices, degrees and percent.
 * Grouping braces become parentheses, so in the output `{`/`}` only ever mean set braces.
 * Bounded work: every character is visited a constant number of times and recursion depth is capped, so a deeply
 * nested or giant input fails fast with `LatexError` instead of hanging.
 */

export class LatexError extends Error {}

export interface LatexOptions {
  /** Maximum brace / environment nesting before giving up (default 64). */
  maxDepth?: number;
}

/** What the converter noticed that changes the meaning of a value (units stripped, degree marks, percent…). */
export interface LatexFlags {
  degrees: boolean;
  percent: boolean;
  /** `\text{…}` content that looked like a unit or word and was kept as text. */
  hadText: boolean;
  plusMinus: boolean;
}

const FUNCTIONS: Record<string, string> = {
  sin: 'sin',
  cos: 'cos',
  tan: 'tan',
  sec: 'sec',
  csc: 'csc',
  cot: 'cot',
  arcsin: 'asin',
  arccos: 'acos',
  arctan: 'atan',
  sinh: 'sinh',
  cosh: 'cosh',
  tanh: 'tanh',
  ln: 'log',
  log: 'log10',
  lg: 'log10',
  exp: 'exp',
  det: 'det',
  max: 'max',
  min: 'min',
  gcd: 'gcd',
  operatorname: '',
};

const SYMBOLS: Record<string, string> = {
  cdot: '*',
  times: '*',
  ast: '*',
  div: '/',
  pi: 'pi',
  infty: 'Infinity',
  infinity: 'Infinity',
  le: '<=',
  leq: '<=',
  leqslant: '<=',
  ge: '>=',
  geq: '>=',
  geqslant: '>=',
  lt: '<',
  gt: '>',
  ne: '!=',
  neq: '!=',
  approx: '≈',
  sim: '≈',
  simeq: '≈',
  cup: '∪',
  cap: '∩',
  in: '∈',
  to: '→',
  rightarrow: '→',
  Rightarrow: '⇒',
  implies: '⇒',
  emptyset: '∅',
  varnothing: '∅',
  ldots: '...',
  cdots: '...',
  dots: '...',
  vdots: '...',
  circ: '',
  degree: '',
  prime: "'",
  mid: '|',
  vert: '|',
  lvert: '|',
  rvert: '|',
  lbrace: '{',
  rbrace: '}',
  langle: '(',
  rangle: ')',
  lfloor: 'floor(',
  rfloor: ')',
  lceil: 'ceil(',
  rceil: ')',
  quad: ' ',
  qquad: ' ',
  displaystyle: '',
  textstyle: '',
  left: '',
  right: '',
  big: '',
  Big: '',
  bigg: '',
  Bigg: '',
  bigl: '',
  bigr: '',
  Bigl: '',
  Bigr: '',
  middle: '',
  limits: '',
  nolimits: '',
  mathrm: '',
  text: '',
  land: ' and ',
  lor: ' or ',
  wedge: ' and ',
  vee: ' or ',
  neg: 'not ',
  because: '',
  therefore: '',
};

/** Lower-case Greek letter names (LaTeX commands), shared with the value parser. */
export const GREEK_LOWER: readonly string[] = [
  'alpha',
  'beta',
  'gamma',
  'delta',
  'epsilon',
  'varepsilon',
  'zeta',
  'eta',
  'theta',
  'vartheta',
  'iota',
  'kappa',
  'lambda',
  'mu',
  'nu',
  'xi',
  'rho',
  'sigma',
  'tau',
  'upsilon',
  'phi',
  'varphi',
  'chi',
  'psi',
  'omega',
];

const GREEK = new Set([
  ...GREEK_LOWER,
  'Gamma',
  'Delta',
  'Theta',
  'Lambda',
  'Xi',
  'Pi',
  'Sigma',
  'Phi',
  'Psi',
  'Omega',
]);

/** Commands whose single argument is kept as is (decoration only). */
const TRANSPARENT = new Set([
  'mathbf',
  'mathit',
  'mathsf',
  'mathtt',
  'mathcal',
  'mathbb',
  'boldsymbol',
  'bm',
  'overline',
  'underline',
  'hat',
  'widehat',
  'tilde',
  'widetilde',
  'vec',
  'overrightarrow',
  'bar',
  'dot',
  'ddot',
  'mathring',
  'displaystyle',
  'boxed',
  'fbox',
  'pmb',
]);

/** Commands whose argument is prose: kept as words. */
const TEXTUAL = new Set([
  'text',
  'textrm',
  'textbf',
  'textit',
  'textsf',
  'texttt',
  'mbox',
  'mathrm',
  'operatorname',
  'textnormal',
]);

const MATRIX_ENVS = new Set(['matrix', 'pmatrix', 'bmatrix', 'Bmatrix', 'vmatrix', 'Vmatrix', 'smallmatrix', 'array']);

/** Unicode math symbols → the converter's ASCII spellings; applied before the LaTeX pass. */
const UNICODE: Array<[RegExp, string]> = [
  [/[×·⋅∙]/g, '*'],
  [/÷/g, '/'],
  [/[−–—]/g, '-'],
  [/π/g, '\\pi '],
  [/∞/g, '\\infty '],
  [/≤|⩽/g, '<='],
  [/≥|⩾/g, '>='],
  [/≠/g, '!='],
  [/±/g, '\\pm '],
  [/∓/g, '\\mp '],
  [/√/g, '\\sqrt'],
  [/°/g, '^\\circ '],
  [/[∪]/g, '\\cup '],
  [/[∩]/g, '\\cap '],
  [/∈/g, '\\in '],
  [/[∅]/g, '\\emptyset '],
  [/…/g, '...'],
  [/ℝ/g, '\\mathbb{R}'],
];

const SUPERSCRIPTS: Record<string, string> = {
  '⁰': '0',
  '¹': '1',
  '²': '2',
  '³': '3',
  '⁴': '4',
  '⁵': '5',
  '⁶': '6',
  '⁷': '7',
  '⁸': '8',
  '⁹': '9',
  '⁻': '-',
};

/** Unicode clean-up: superscript digits to `^(…)`, full-width forms (NFKC), math symbols to LaTeX commands. */
export function normalizeUnicode(s: string): string {
  // Most answers are ASCII: nothing to do (the check is far cheaper than NFKC plus the replacements).
  if (!/[^\p{ASCII}]/u.test(s)) return s;
  let out = s.replace(/[⁰¹²³⁴⁵⁶⁷⁸⁹⁻]+/g, (m) => `^(${[...m].map((c) => SUPERSCRIPTS[c]).join('')})`);
  out = out.normalize('NFKC');
  for (const [re, rep] of UNICODE) out = out.replace(re, rep);
  return out;
}

class Reader {
  pos = 0;
  constructor(
    readonly s: string,
    readonly maxDepth: number,
  ) {}
  get done(): boolean {
    return this.pos >= this.s.length;
  }
  peek(k = 0): string {
    return this.s[this.pos + k] ?? '';
  }
  skipSpaces(): void {
    while (this.pos < this.s.length && /\s/.test(this.s[this.pos]!)) this.pos++;
  }
  /** Reads `\name` (letters) or a single-symbol command like `\{`, `\,`. Assumes peek() === '\\'. */
  command(): string {
    this.pos++;
    const start = this.pos;
    while (this.pos < this.s.length && /[A-Za-z]/.test(this.s[this.pos]!)) this.pos++;
    if (this.pos === start && this.pos < this.s.length) this.pos++;
    return this.s.slice(start, this.pos);
  }
  /** Raw text of a balanced `{…}` group starting at pos (which must be `{`); returns the inner text. */
  group(open = '{', close = '}'): string {
    if (this.peek() !== open) throw new LatexError(`expected '${open}' at ${this.pos}`);
    let depth = 0;
    const start = this.pos + 1;
    for (; this.pos < this.s.length; this.pos++) {
      const c = this.s[this.pos]!;
      if (c === '\\') {
        this.pos++;
        continue;
      }
      if (c === open) {
        depth++;
        if (depth > this.maxDepth) throw new LatexError(`nesting deeper than ${this.maxDepth}`);
      } else if (c === close) {
        depth--;
        if (depth === 0) {
          this.pos++;
          return this.s.slice(start, this.pos - 1);
        }
      }
    }
    throw new LatexError(`unbalanced '${open}' starting at ${start - 1}`);
  }
  /** One macro argument: a brace group, a command token, or a single character (`\frac12`). */
  arg(): string {
    this.skipSpaces();
    const c = this.peek();
    if (c === '{') return this.group();
    if (c === '(') return `(${this.group('(', ')')})`;
    if (c === '\\') {
      const start = this.pos;
      this.command();
      return this.s.slice(start, this.pos);
    }
    if (c === '') throw new LatexError('missing argument at end of input');
    this.pos++;
    return c;
  }
}

/**
 * Converts LaTeX / Unicode math to plain text that `parseMathValue` understands. Throws `LatexError` on unbalanced
 * braces, missing arguments or excessive nesting.
 */
export function latexToPlain(input: string, opts: LatexOptions = {}, flags?: LatexFlags): string {
  const f = flags ?? { degrees: false, percent: false, hadText: false, plusMinus: false };
  let s = normalizeUnicode(input);
  // Math-mode delimiters and thousands groups written as `{,}`.
  s = s
    .replace(/\\[()[\]]/g, ' ')
    .replace(/\$+/g, ' ')
    .replace(/\{,\}/g, '');
  return convert(s, opts.maxDepth ?? 64, 0, f)
    .replace(/\s+/g, ' ')
    .trim();
}

function convert(s: string, maxDepth: number, depth: number, f: LatexFlags): string {
  if (depth > maxDepth) throw new LatexError(`nesting deeper than ${maxDepth}`);
  const r = new Reader(s, maxDepth);
  const sub = (t: string) => convert(t, maxDepth, depth + 1, f);
  let out = '';
  while (!r.done) {
    const c = r.peek();
    if (c === '\\') {
      const name = r.command();
      out += command(name, r, sub, f, out, maxDepth);
      continue;
    }
    if (c === '{') {
      out += `(${sub(r.group())})`;
      continue;
    }
    if (c === '}') throw new LatexError(`unbalanced '}' at ${r.pos}`);
    if (c === '^') {
      r.pos++;
      r.skipSpaces();
      // Degrees: ^\circ, ^{\circ}, ^{\circ C} are units, not powers.
      const rest = s.slice(r.pos, r.pos + 12);
      if (/^(\\circ|\{\s*\\circ\s*\})/.test(rest)) {
        const a = r.arg();
        void a;
        f.degrees = true;
        continue;
      }
      out += `^(${sub(r.arg())})`;
      continue;
    }
    if (c === '_') {
      r.pos++;
      const a = sub(r.arg()).replace(/[\s()]/g, '');
      out += `_${a}`;
      continue;
    }
    if (c === '&') {
      out += ', ';
      r.pos++;
      continue;
    }
    if (c === '~') {
      out += ' ';
      r.pos++;
      continue;
    }
    if (c === '%') f.percent = true;
    out += c;
    r.pos++;
  }
  return out;
}

/** The text so far ends with a digit, ignoring trailing spaces (a backwards scan: no regex over the whole output). */
function endsWithDigit(s: string): boolean {
  let i = s.length - 1;
  while (i >= 0 && (s[i] === ' ' || s[i] === '\t' || s[i] === '\n')) i--;
  return i >= 0 && s[i]! >= '0' && s[i]! <= '9';
}

function command(
  name: string,
  r: Reader,
  sub: (t: string) => string,
  f: LatexFlags,
  before: string,
  maxDepth: number,
): string {
  switch (name) {
    case 'frac':
    case 'dfrac':
    case 'tfrac':
    case 'cfrac': {
      const a = sub(r.arg());
      const b = sub(r.arg());
      // `2\frac{1}{2}` is a mixed number (2½), the common reading in answers.
      const mixed = endsWithDigit(before) && /^\s*\d+\s*$/.test(a) && /^\s*\d+\s*$/.test(b);
      return `${mixed ? '+' : ''}((${a})/(${b}))`;
    }
    case 'sqrt': {
      r.skipSpaces();
      if (r.peek() === '[') {
        const n = sub(r.group('[', ']'));
        return ` nthRoot(${sub(r.arg())}, ${n})`;
      }
      // Leading space: `x\sqrt{x}` must not glue into the word `xsqrt`.
      return ` sqrt(${sub(r.arg())})`;
    }
    case 'binom':
    case 'dbinom':
    case 'tbinom':
    case 'choose': {
      const n = sub(r.arg());
      const k = sub(r.arg());
      return ` combinations(${n}, ${k})`;
    }
    case 'log': {
      r.skipSpaces();
      if (r.peek() === '_') {
        r.pos++;
        const base = sub(r.arg());
        r.skipSpaces();
        // `\log_2 16`: a number argument is the whole digit run.
        const digits = /^\d+(?:\.\d+)?/.exec(r.s.slice(r.pos, r.pos + 32));
        if (digits) {
          r.pos += digits[0].length;
          return ` log(${digits[0]}, ${base})`;
        }
        const arg = r.peek() === '(' ? sub(r.group('(', ')')) : sub(r.arg());
        return ` log(${arg}, ${base})`;
      }
      // Trailing space: the spaces before the argument were consumed looking for `_`.
      return ' log10 ';
    }
    case 'begin': {
      const env = r.group();
      const endTag = `\\end{${env}}`;
      const endAt = r.s.indexOf(endTag, r.pos);
      if (endAt < 0) throw new LatexError(`\\begin{${env}} without \\end{${env}}`);
      let body = r.s.slice(r.pos, endAt);
      r.pos = endAt + endTag.length;
      if (env === 'array' && body.trimStart().startsWith('{')) body = body.replace(/^\s*\{[^}]*\}/, '');
      if (MATRIX_ENVS.has(env)) {
        const rows = body
          .split(/\\\\/)
          .map((row) => row.trim())
          .filter((row) => row !== '' && row !== '\\hline');
        const cells = rows.map(
          (row) =>
            `[${row
              .split('&')
              .map((c) => sub(c.replace(/\\hline/g, '')).trim())
              .join(', ')}]`,
        );
        const m = `[${cells.join(', ')}]`;
        return env === 'vmatrix' ? `det(${m})` : m;
      }
      if (env === 'cases' || env === 'aligned' || env === 'align' || env === 'align*' || env === 'gathered')
        return ` ${body
          .split(/\\\\/)
          .map((l) => sub(l.replace(/&/g, '')))
          .join(', ')} `;
      return sub(body);
    }
    case 'end':
      throw new LatexError(`unexpected \\end{${r.group()}}`);
    case 'pm':
      f.plusMinus = true;
      return '±';
    case 'mp':
      f.plusMinus = true;
      return '∓';
    case '%':
      f.percent = true;
      return '%';
    case '{':
      return '{';
    case '}':
      return '}';
    case '!':
      // Negative thin space: it joins (`48,\!200` is one number).
      return '';
    case ',':
    case ';':
    case ':':
    case ' ':
      return ' ';
    case '\\':
      return ', ';
    case '$':
      return '$';
    case '#':
    case '&':
    case '_':
      return name;
    case 'not': {
      r.skipSpaces();
      if (r.peek() === '=') {
        r.pos++;
        return '!=';
      }
      return 'not ';
    }
  }
  if (TEXTUAL.has(name)) {
    r.skipSpaces();
    if (r.peek() !== '{') return '';
    const raw = r.group();
    const t = sub(raw).trim();
    if (/[A-Za-z\u00C0-\uFFFF]{2,}/.test(t)) f.hadText = true;
    return ` ${t} `;
  }
  if (TRANSPARENT.has(name)) {
    r.skipSpaces();
    if (r.done) return '';
    const arg = r.arg();
    // The real line: `\mathbb{R}` is the interval (-∞, ∞).
    if (name === 'mathbb' && arg.trim() === 'R') return '(-Infinity, Infinity)';
    return `(${sub(arg)})`;
  }
  if (name in FUNCTIONS) {
    // `\tan^{-1}`, `\sin^{-1}`: the inverse function, not a reciprocal power.
    const inv = /^\^\s*(?:\{\s*-\s*1\s*\}|-1)/.exec(r.s.slice(r.pos, r.pos + 12));
    if (inv && (name === 'sin' || name === 'cos' || name === 'tan')) {
      r.pos += inv[0].length;
      return ` a${name}`;
    }
    return ` ${FUNCTIONS[name]}`;
  }
  if (name in SYMBOLS) {
    if (name === 'circ' || name === 'degree') f.degrees = true;
    return ` ${SYMBOLS[name]} `;
  }
  if (GREEK.has(name)) return ` ${name} `;
  void maxDepth;
  // Unknown command: keep its name as a word, so it cannot silently vanish.
  return ` ${name} `;
}
