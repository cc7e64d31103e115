/**
 * Equivalence of two parsed math values. Three outcomes: equal, not equal, or undecided (`null`) when the rules
 * cannot tell (text against a formula, an expression that cannot be evaluated anywhere): undecided goes on to the
 * CAS worker or the judge, never silently to "wrong".
 *
 * Symbolic expressions are compared by evaluation at fixed pseudo-random points (real and negative, so `|x|` ≠ `x`
 * and `sqrt(x^2)` ≠ `x`): identity testing that is exact for polynomials with overwhelming probability and fast
 * (microseconds) — the CAS worker adds `simplify` for what evaluation leaves open.
 */
import { type Complexish, type MathValue, normalizeText, type RelOp } from './value.js';

export interface CompareOptions {
  /** Relative tolerance for numbers (default 1e-6). */
  relTol?: number;
  /** Absolute tolerance near zero (default 1e-9). */
  absTol?: number;
  /** Accept `25%` vs `0.25` and `25%` vs `25` (default true). */
  percentVariants?: boolean;
}

export interface Comparison {
  /** true / false, or null when the rules cannot decide. */
  equal: boolean | null;
  /** Which rule decided: `number`, `int`, `expr`, `seq`, `set`, `relation`, `text`, … */
  path: string;
  detail?: string;
}

const POINTS: number[][] = [];
{
  // Fixed points (deterministic rewards): irrational-looking values of both signs, away from common poles.
  let x = 0.7548776662466927;
  for (let k = 0; k < 8; k++) {
    const row: number[] = [];
    for (let v = 0; v < 12; v++) {
      x = (x * 9301 + 0.49297) % 1;
      const sign = (k + v) % 3 === 0 ? -1 : 1;
      row.push(sign * (0.31 + 2.6 * x));
    }
    POINTS.push(row);
  }
}

interface Tol {
  rel: number;
  abs: number;
  pct: boolean;
}

function tolOf(o: CompareOptions): Tol {
  return { rel: o.relTol ?? 1e-6, abs: o.absTol ?? 1e-9, pct: o.percentVariants ?? true };
}

export function closeEnough(a: number, b: number, t: Tol): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= Math.max(t.abs, t.rel * Math.max(Math.abs(a), Math.abs(b)));
}

function closeComplex(a: Complexish, b: Complexish, t: Tol): boolean {
  return closeEnough(a.re, b.re, t) && closeEnough(a.im, b.im, t);
}

/** Compares `pred` to the reference `gold`. Asymmetric where it matters (see the relation rules). */
export function compareValues(pred: MathValue, gold: MathValue, opts: CompareOptions = {}): Comparison {
  return cmp(pred, gold, tolOf(opts));
}

function cmp(p: MathValue, g: MathValue, t: Tol): Comparison {
  // `x = 3` against `3` (either side): an assignment to a single variable is its value.
  if (p.kind === 'relation' && g.kind !== 'relation') {
    const v = assignedValue(p);
    if (v) return cmp(v, g, t);
    return { equal: false, path: 'relation', detail: 'relation against a value' };
  }
  if (g.kind === 'relation' && p.kind !== 'relation') {
    const v = assignedValue(g);
    if (v) return cmp(p, v, t);
    // A chained inequality reference `1 < x < 2` accepts the interval `(1, 2)` (not the reverse: echoing guard).
    const iv = inequalityAsInterval(g);
    if (iv && p.kind === 'seq') return cmp(p, iv, t);
    return { equal: false, path: 'relation', detail: 'value against a relation' };
  }

  switch (g.kind) {
    case 'number':
      if (p.kind === 'number') return cmpNumbers(p, g, t);
      if (p.kind === 'expr') return cmpExpr(p, g, t);
      if (p.kind === 'text') return { equal: null, path: 'text', detail: 'text against a number' };
      return { equal: false, path: 'kind', detail: `${p.kind} against a number` };
    case 'expr':
      if (p.kind === 'number' || p.kind === 'expr') return cmpExpr(p, g, t);
      if (p.kind === 'text') return { equal: null, path: 'text', detail: 'text against an expression' };
      return { equal: false, path: 'kind', detail: `${p.kind} against an expression` };
    case 'seq':
      if (p.kind === 'seq') return cmpSeq(p, g, t);
      if (p.kind === 'pm') return cmpSeq(expandPm(p), g, t);
      if (p.kind === 'text') return { equal: null, path: 'text' };
      return { equal: false, path: 'kind', detail: `${p.kind} against a sequence` };
    case 'pm':
      if (p.kind === 'pm') return cmpSeq(expandPm(p), expandPm(g), t);
      if (p.kind === 'seq') return cmpSeq(p, expandPm(g), t);
      return { equal: false, path: 'kind', detail: `${p.kind} against a ± pair` };
    case 'union': {
      if (p.kind !== 'union') return { equal: false, path: 'kind', detail: `${p.kind} against a union` };
      return unordered(p.parts, g.parts, t, 'union');
    }
    case 'matrix': {
      if (p.kind !== 'matrix') return { equal: false, path: 'kind', detail: `${p.kind} against a matrix` };
      if (p.rows.length !== g.rows.length || p.rows[0]!.length !== g.rows[0]!.length)
        return { equal: false, path: 'matrix', detail: 'shape differs' };
      for (let r = 0; r < g.rows.length; r++)
        for (let c = 0; c < g.rows[r]!.length; c++) {
          const e = cmp(p.rows[r]![c]!, g.rows[r]![c]!, t);
          if (e.equal !== true) return { equal: e.equal, path: 'matrix', detail: `entry (${r + 1},${c + 1})` };
        }
      return { equal: true, path: 'matrix' };
    }
    case 'relation':
      if (p.kind === 'relation') return cmpRelation(p, g, t);
      return { equal: false, path: 'relation' };
    case 'empty':
      return { equal: p.kind === 'empty', path: 'empty' };
    case 'text':
      if (p.kind === 'text') {
        if (p.text === g.text) return { equal: true, path: 'text' };
        return { equal: null, path: 'text', detail: 'texts differ' };
      }
      return { equal: null, path: 'text', detail: `${p.kind} against text` };
  }
}

function cmpNumbers(
  p: Extract<MathValue, { kind: 'number' }>,
  g: Extract<MathValue, { kind: 'number' }>,
  t: Tol,
): Comparison {
  if (p.int !== undefined && g.int !== undefined && p.percent === g.percent)
    return { equal: p.int === g.int, path: 'int' };
  if (p.percent === g.percent) return { equal: closeEnough(p.value, g.value, t), path: 'number' };
  if (!t.pct) return { equal: false, path: 'number', detail: 'percent mismatch' };
  // One side has `%`: accept the same digits, or the fraction.
  const pct = p.percent ? p.value : g.value;
  const other = p.percent ? g.value : p.value;
  return { equal: closeEnough(pct, other, t) || closeEnough(pct / 100, other, t), path: 'percent' };
}

function valueAt(v: MathValue, scope: Record<string, number>): Complexish | null {
  if (v.kind === 'number') return { re: v.value, im: 0 };
  if (v.kind === 'expr') return v.evaluate(scope);
  return null;
}

function varsOf(v: MathValue): string[] {
  return v.kind === 'expr' ? v.vars : [];
}

function scopes(vars: string[]): Array<Record<string, number>> {
  return POINTS.map((row) => {
    const scope: Record<string, number> = {};
    vars.forEach((name, i) => {
      scope[name] = row[i % row.length]! + (i >= row.length ? 0.1 * Math.floor(i / row.length) : 0);
    });
    return scope;
  });
}

function cmpExpr(p: MathValue, g: MathValue, t: Tol): Comparison {
  const vars = [...new Set([...varsOf(p), ...varsOf(g)])];
  // Percent on expressions: scale like numbers do.
  const pScale = p.kind === 'expr' && p.percent ? 0.01 : 1;
  const gScale = g.kind === 'expr' && g.percent ? 0.01 : 1;
  let valid = 0;
  // Evaluation differences accumulate: allow a looser tolerance than literal numbers, still far below any real error.
  const et: Tol = { rel: Math.max(t.rel, 1e-9), abs: Math.max(t.abs, 1e-9), pct: t.pct };
  for (const scope of scopes(vars)) {
    const a = valueAt(p, scope);
    const b = valueAt(g, scope);
    const aBad = !a || !Number.isFinite(a.re) || !Number.isFinite(a.im);
    const bBad = !b || !Number.isFinite(b.re) || !Number.isFinite(b.im);
    if (aBad && bBad) continue;
    if (aBad !== bBad) return { equal: false, path: 'expr', detail: 'defined at different points' };
    const as = { re: a!.re * pScale, im: a!.im * pScale };
    const bs = { re: b!.re * gScale, im: b!.im * gScale };
    if (!closeComplex(as, bs, et)) return { equal: false, path: 'expr', detail: `differs at ${JSON.stringify(scope)}` };
    valid++;
    if (vars.length === 0) break;
  }
  if (valid === 0 || (vars.length > 0 && valid < 3)) return { equal: null, path: 'expr', detail: 'not evaluable' };
  return { equal: true, path: vars.length ? 'expr' : 'number' };
}

function expandPm(v: Extract<MathValue, { kind: 'pm' }>): Extract<MathValue, { kind: 'seq' }> {
  const mk = (sign: number): MathValue => {
    const vars = [...new Set([...varsOf(v.base), ...varsOf(v.delta)])];
    const evaluate = (scope: Record<string, number>) => {
      const a = valueAt(v.base, scope);
      const b = valueAt(v.delta, scope);
      if (!a || !b) return null;
      return { re: a.re + sign * b.re, im: a.im + sign * b.im };
    };
    return { kind: 'expr', src: `pm${sign}`, vars, evaluate, percent: false };
  };
  return { kind: 'seq', open: '', close: '', items: [mk(1), mk(-1)] };
}

function cmpSeq(p: Extract<MathValue, { kind: 'seq' }>, g: Extract<MathValue, { kind: 'seq' }>, t: Tol): Comparison {
  const unorderedKinds = (o: string) => o === '{' || o === '';
  if (unorderedKinds(g.open) && unorderedKinds(p.open)) return unordered(p.items, g.items, t, 'set');
  if (p.open !== g.open || p.close !== g.close)
    return { equal: false, path: 'seq', detail: `brackets ${p.open}${p.close} against ${g.open}${g.close}` };
  if (p.items.length !== g.items.length) return { equal: false, path: 'seq', detail: 'length differs' };
  let undecided = false;
  for (let i = 0; i < g.items.length; i++) {
    const e = cmp(p.items[i]!, g.items[i]!, t);
    if (e.equal === false) return { equal: false, path: 'seq', detail: `item ${i + 1}` };
    if (e.equal === null) undecided = true;
  }
  return { equal: undecided ? null : true, path: 'seq' };
}

/** Multiset equality: every gold item matched by a distinct predicted item. */
function unordered(ps: MathValue[], gs: MathValue[], t: Tol, path: string): Comparison {
  if (ps.length !== gs.length) return { equal: false, path, detail: `${ps.length} items against ${gs.length}` };
  if (gs.length > 64) return { equal: null, path, detail: 'too many items' };
  const used = new Array<boolean>(ps.length).fill(false);
  let undecided = false;
  for (const g of gs) {
    let found = -1;
    let maybe = -1;
    for (let i = 0; i < ps.length; i++) {
      if (used[i]) continue;
      const e = cmp(ps[i]!, g, t);
      if (e.equal === true) {
        found = i;
        break;
      }
      if (e.equal === null && maybe < 0) maybe = i;
    }
    if (found >= 0) used[found] = true;
    else if (maybe >= 0) {
      used[maybe] = true;
      undecided = true;
    } else return { equal: false, path, detail: 'an item has no match' };
  }
  return { equal: undecided ? null : true, path };
}

const FLIP: Record<RelOp, RelOp> = { '=': '=', '!=': '!=', '<': '>', '>': '<', '<=': '>=', '>=': '<=' };

function assignedValue(r: Extract<MathValue, { kind: 'relation' }>): MathValue | null {
  if (r.ops.length !== 1 || r.ops[0] !== '=') return null;
  const [l, rr] = r.terms as [MathValue, MathValue];
  const isVar = (v: MathValue) =>
    v.kind === 'expr' && v.vars.length === 1 && /^[A-Za-z](?:_\w+)?$|^[a-z]+$/.test(v.src.trim());
  if (isVar(l) && !isVar(rr)) return rr;
  if (isVar(rr) && !isVar(l)) return l;
  return null;
}

function inequalityAsInterval(r: Extract<MathValue, { kind: 'relation' }>): MathValue | null {
  if (r.ops.length !== 2) return null;
  const [a, b] = r.ops as [RelOp, RelOp];
  const asc = (a === '<' || a === '<=') && (b === '<' || b === '<=');
  const desc = (a === '>' || a === '>=') && (b === '>' || b === '>=');
  if (!asc && !desc) return null;
  const lo = asc ? r.terms[0]! : r.terms[2]!;
  const hi = asc ? r.terms[2]! : r.terms[0]!;
  const loClosed = asc ? a === '<=' : b === '>=';
  const hiClosed = asc ? b === '<=' : a === '>=';
  return { kind: 'seq', open: loClosed ? '[' : '(', close: hiClosed ? ']' : ')', items: [lo, hi] };
}

function difference(l: MathValue, r: MathValue): MathValue | null {
  if ((l.kind !== 'number' && l.kind !== 'expr') || (r.kind !== 'number' && r.kind !== 'expr')) return null;
  const vars = [...new Set([...varsOf(l), ...varsOf(r)])];
  return {
    kind: 'expr',
    src: 'diff',
    vars,
    percent: false,
    evaluate: (scope) => {
      const a = valueAt(l, scope);
      const b = valueAt(r, scope);
      return a && b ? { re: a.re - b.re, im: a.im - b.im } : null;
    },
  };
}

function cmpRelation(
  p: Extract<MathValue, { kind: 'relation' }>,
  g: Extract<MathValue, { kind: 'relation' }>,
  t: Tol,
): Comparison {
  if (p.ops.length !== g.ops.length) return { equal: false, path: 'relation', detail: 'different chain length' };
  // Orient the prediction like the reference (a > b ≡ b < a).
  let pp = p;
  if (p.ops.some((o, i) => o !== g.ops[i])) {
    const flipped = {
      kind: 'relation' as const,
      ops: [...p.ops].reverse().map((o) => FLIP[o]),
      terms: [...p.terms].reverse(),
    };
    if (flipped.ops.some((o, i) => o !== g.ops[i]))
      return { equal: false, path: 'relation', detail: 'operators differ' };
    pp = flipped;
  }
  if (g.ops.length === 1) {
    // lhs − rhs must agree up to a constant factor: positive for inequalities, any non-zero for (in)equations.
    const dp = difference(pp.terms[0]!, pp.terms[1]!);
    const dg = difference(g.terms[0]!, g.terms[1]!);
    if (!dp || !dg) {
      const a = cmp(pp.terms[0]!, g.terms[0]!, t);
      const b = cmp(pp.terms[1]!, g.terms[1]!, t);
      return {
        equal: a.equal === true && b.equal === true ? true : a.equal === false || b.equal === false ? false : null,
        path: 'relation',
      };
    }
    return proportional(dp, dg, g.ops[0] === '=' || g.ops[0] === '!=', t);
  }
  for (let i = 0; i < g.terms.length; i++) {
    const e = cmp(pp.terms[i]!, g.terms[i]!, t);
    if (e.equal !== true) return { equal: e.equal, path: 'relation', detail: `term ${i + 1}` };
  }
  return { equal: true, path: 'relation' };
}

function proportional(p: MathValue, g: MathValue, anySign: boolean, t: Tol): Comparison {
  const vars = [...new Set([...varsOf(p), ...varsOf(g)])];
  let ratio: number | null = null;
  let valid = 0;
  for (const scope of scopes(vars)) {
    const a = valueAt(p, scope);
    const b = valueAt(g, scope);
    if (!a || !b || a.im !== 0 || b.im !== 0 || !Number.isFinite(a.re) || !Number.isFinite(b.re)) continue;
    if (Math.abs(b.re) < 1e-12 || Math.abs(a.re) < 1e-12) {
      if (Math.abs(b.re) < 1e-12 && Math.abs(a.re) < 1e-12) continue;
      return { equal: false, path: 'relation', detail: 'zero sets differ' };
    }
    const r = a.re / b.re;
    if (ratio === null) ratio = r;
    else if (!closeEnough(r, ratio, { rel: Math.max(t.rel, 1e-9), abs: 1e-12, pct: false }))
      return { equal: false, path: 'relation', detail: 'not proportional' };
    valid++;
  }
  if (ratio === null || valid < Math.min(3, POINTS.length))
    return { equal: null, path: 'relation', detail: 'not evaluable' };
  if (!anySign && ratio < 0) return { equal: false, path: 'relation', detail: 'inequality direction differs' };
  return { equal: true, path: 'relation' };
}

/** Text equality after normalisation; exported for verifiers that compare words. */
export function sameText(a: string, b: string): boolean {
  return normalizeText(a) === normalizeText(b);
}
