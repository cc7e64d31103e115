/**
 * Equivalence of two parsed math values. Three outcomes: equal, not equal, or undecided (`null`) when the rules
 * cannot tell (text against a formula, an expression that cannot be evaluated anywhere): undecided goes on to the
 * CAS worker or the judge, never silently to "wrong".
 *
 * Symbolic expressions are compared by evaluation at fixed pseudo-random points (real and negative, so `|x|` ≠ `x`
 * and `sqrt(x^2)` ≠ `x`): identity testing that is exact for polynomials with overwhelming probability and fast
 * (microseconds) — the CAS worker adds `simplify` for what evaluation leaves open.
 */
import {
  assignedValue,
  collapseChain,
  FLIP,
  isInterval,
  isLabel,
  listAsUnion,
  type Relation,
  relationAsSet,
} from './relations.js';
import { type Complexish, type MathValue, normalizeText } from './value.js';

export interface CompareOptions {
  /**
   * Relative tolerance (default 1e-6 for evaluated expressions). Decimals are compared by `floatRounding` unless a
   * tolerance is given here, in which case either rule accepts; integers are exact unless it is given.
   */
  relTol?: number;
  /** Absolute tolerance near zero (default 1e-9). */
  absTol?: number;
  /** Accept `25%` vs `0.25` and `25%` vs `25` (default true). */
  percentVariants?: boolean;
  /**
   * Decimal places at which two numbers that are not both integers also count as equal when they round to the same
   * value (default 6): `1/3` = `0.333333`, and at 2 places `2/3` = `0.67`. Applies inside tuples, sets and matrices.
   */
  floatRounding?: number;
  /** Variable names matter (default true); false maps the answer's variables onto the reference's by position. */
  strictVariables?: boolean;
  /** A one-element set `{3}` matches its element `3`, either way round (default true). */
  setMatchesElement?: boolean;
  /** A relation may be written with its sides swapped: `3 = x` ≡ `x = 3`, `a > b` ≡ `b < a` (default true). */
  relationSwap?: boolean;
  /**
   * An answered relation may match a reference set or interval (`1 ≤ x ≤ 4` for `[1, 4]`; default false). A
   * reference relation always accepts the set it describes; the reverse is off by default so that echoing the
   * question's inequality is not rewarded as its solution.
   */
  relationAsSet?: boolean;
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
  /** Decimal places for the rounding rule, or -1 for none. */
  round: number;
  /** relTol was given: it also applies to decimals and integers. */
  relGiven: boolean;
  strictVars: boolean;
  setElement: boolean;
  swap: boolean;
  relSet: boolean;
}

function tolOf(o: CompareOptions): Tol {
  return {
    rel: o.relTol ?? 1e-6,
    abs: o.absTol ?? 1e-9,
    pct: o.percentVariants ?? true,
    round: o.floatRounding ?? 6,
    relGiven: o.relTol !== undefined,
    strictVars: o.strictVariables ?? true,
    setElement: o.setMatchesElement ?? true,
    swap: o.relationSwap ?? true,
    relSet: o.relationAsSet ?? false,
  };
}

/** Relative / absolute tolerance of a number comparison (`pct` is read by callers that do percent variants). */
export interface NumTol {
  rel: number;
  abs: number;
  pct?: boolean;
}

export function closeEnough(a: number, b: number, t: NumTol): boolean {
  if (a === b) return true;
  if (!Number.isFinite(a) || !Number.isFinite(b)) return false;
  return Math.abs(a - b) <= Math.max(t.abs, t.rel * Math.max(Math.abs(a), Math.abs(b)));
}

/** `x` rounded half away from zero to `d` places, after removing binary noise (`0.665` stays 0.665, not 0.66499…). */
function roundTo(x: number, d: number): number {
  const clean = Number(x.toPrecision(15));
  const f = 10 ** d;
  return (Math.sign(clean) * Math.round(Math.abs(clean) * f)) / f;
}

/** Equal at `d` decimal places (the configured rounding), or within a tolerance the caller gave. */
function numbersAgree(a: number, b: number, t: Tol): boolean {
  if (a === b || (t.relGiven && closeEnough(a, b, t))) return true;
  if (t.round < 0 || !Number.isFinite(a) || !Number.isFinite(b)) return false;
  return roundTo(a, t.round) === roundTo(b, t.round);
}

function closeComplex(a: Complexish, b: Complexish, t: NumTol): boolean {
  return closeEnough(a.re, b.re, t) && closeEnough(a.im, b.im, t);
}

/** Compares `pred` to the reference `gold`. Asymmetric where it matters (see the relation rules). */
export function compareValues(pred: MathValue, gold: MathValue, opts: CompareOptions = {}): Comparison {
  return cmp(pred, gold, tolOf(opts));
}

function cmp(p: MathValue, g: MathValue, t: Tol): Comparison {
  // Opt-in: an answered inequality for a reference interval or union (`relationAsSet`).
  if (t.relSet && p.kind === 'relation' && (g.kind === 'union' || isInterval(g) || g.kind === 'empty')) {
    const set = relationAsSet(p);
    if (set) return cmp(set, g, t);
  }
  // A relation against a value (either side): an assignment or chain of equalities is its value.
  if (p.kind === 'relation' && g.kind !== 'relation') return relationAgainstValue(p, g, t);
  if (g.kind === 'relation') g = collapseChain(g);
  if (g.kind === 'relation' && p.kind !== 'relation') {
    const v = assignedValue(g);
    if (v) return cmp(p, v, t);
    // A reference inequality accepts the interval it describes (`1 < x < 2` ← `(1, 2)`); not the reverse by default.
    const set = relationAsSet(g);
    if (set && (p.kind === 'seq' || p.kind === 'union' || p.kind === 'empty')) return cmp(p, set, t);
    return { equal: false, path: 'relation', detail: 'value against a relation' };
  }
  // One-element sets against their element.
  if (t.setElement) {
    if (g.kind === 'seq' && g.open === '{' && p.kind !== 'seq') {
      const items = distinct(g.items, t);
      if (items.length === 1) return cmp(p, items[0]!, t);
    }
    if (p.kind === 'seq' && p.open === '{' && g.kind !== 'seq') {
      const items = distinct(p.items, t);
      if (items.length === 1) return cmp(items[0]!, g, t);
    }
  }
  // Solutions written as relations (`x < 1 or x > 2`) against a union or interval reference, and the reverse.
  if (g.kind === 'seq' && g.open === '' && (p.kind === 'union' || isInterval(p))) {
    const u = listAsUnion(g);
    if (u) return cmp(p, u, t);
  }
  if (t.relSet && p.kind === 'seq' && p.open === '' && (g.kind === 'union' || isInterval(g))) {
    const u = listAsUnion(p);
    if (u) return cmp(u, g, t);
  }

  if (g.kind === 'seq' && p.kind === 'union') {
    const ps = finiteUnion(p);
    if (ps) return cmp(ps, g, t);
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
      if (p.kind === 'union' && g.items.length === 1 && g.open === '') return cmp(p, g.items[0]!, t);
      if (p.kind === 'text') return { equal: null, path: 'text' };
      return { equal: false, path: 'kind', detail: `${p.kind} against a sequence` };
    case 'pm':
      if (p.kind === 'pm') return cmpSeq(expandPm(p), expandPm(g), t);
      if (p.kind === 'seq') return cmpSeq(p, expandPm(g), t);
      return { equal: false, path: 'kind', detail: `${p.kind} against a ± pair` };
    case 'union': {
      const gs = finiteUnion(g);
      if (gs) return cmp(p.kind === 'union' ? (finiteUnion(p) ?? p) : p, gs, t);
      if (p.kind !== 'union') return { equal: false, path: 'kind', detail: `${p.kind} against a union` };
      return unordered(p.parts, g.parts, t, 'union');
    }
    case 'matrix': {
      const pm = p.kind === 'matrix' ? p : asMatrix(p);
      if (!pm) return { equal: false, path: 'kind', detail: `${p.kind} against a matrix` };
      if (pm.rows.length !== g.rows.length || pm.rows[0]!.length !== g.rows[0]!.length)
        return { equal: false, path: 'matrix', detail: 'shape differs' };
      for (let r = 0; r < g.rows.length; r++)
        for (let c = 0; c < g.rows[r]!.length; c++) {
          const e = cmp(pm.rows[r]![c]!, g.rows[r]![c]!, t);
          if (e.equal !== true) return { equal: e.equal, path: 'matrix', detail: `entry (${r + 1},${c + 1})` };
        }
      return { equal: true, path: 'matrix' };
    }
    case 'relation':
      if (p.kind === 'relation') return cmpRelation(collapseChain(p), g, t);
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

/** `\{1, 2, 3\} ∪ \{4\}` as the set `\{1, 2, 3, 4\}`; null unless every part is a finite set. */
function finiteUnion(u: Extract<MathValue, { kind: 'union' }>): MathValue | null {
  if (!u.parts.every((q) => q.kind === 'seq' && q.open === '{')) return null;
  return { kind: 'seq', open: '{', close: '}', items: u.parts.flatMap((q) => (q as { items: MathValue[] }).items) };
}

/** A column or row vector written as a tuple matches a one-column / one-row matrix. */
function asMatrix(v: MathValue): Extract<MathValue, { kind: 'matrix' }> | null {
  if (v.kind !== 'seq' || (v.open !== '(' && v.open !== '[') || v.items.length === 0) return null;
  if (v.items.some((it) => it.kind === 'seq' || it.kind === 'matrix')) return null;
  return { kind: 'matrix', rows: v.items.map((it) => [it]) };
}

/**
 * A relation answered for a value reference. Equalities (and `≈`) give their value: the last term, or the first
 * when only the last one is a label (`y = 2+2+3 = 7` → 7, `(a, b) = (1, 4)` → (1, 4), `g(t) = 5` → 5, `5 = x` → 5).
 * After `≈`, the exact value before it also counts when the approximation agrees with it at its own printed
 * precision (`7/3 ≈ 2.33` answers 7/3, `7/3 ≈ 2.5` does not). Inequalities never give a value.
 */
function relationAgainstValue(p: Relation, g: MathValue, t: Tol): Comparison {
  if (!p.ops.every((o) => o === '=' || o === '≈'))
    return { equal: false, path: 'relation', detail: 'relation against a value' };
  const terms = p.terms;
  const n = terms.length - 1;
  const pick = isLabel(terms[n]!) && !isLabel(terms[0]!) ? 0 : n;
  const byValue = cmp(terms[pick]!, g, t);
  if (byValue.equal === true || pick !== n) return byValue;
  const k = p.ops.lastIndexOf('≈');
  if (k >= 0 && k + 1 === n) {
    const exact = cmp(terms[k]!, g, t);
    if (exact.equal === true && approxAgrees(terms[k]!, terms[n]!)) return { equal: true, path: 'relation:approx' };
  }
  return byValue;
}

function approxAgrees(exact: MathValue, approx: MathValue): boolean {
  if (approx.kind !== 'number' || exact.kind !== 'number') return false;
  const d = approx.decimals ?? 0;
  return roundTo(exact.value, d) === roundTo(approx.value, d);
}

function cmpNumbers(
  p: Extract<MathValue, { kind: 'number' }>,
  g: Extract<MathValue, { kind: 'number' }>,
  t: Tol,
): Comparison {
  if (p.int !== undefined && g.int !== undefined && p.percent === g.percent)
    return { equal: p.int === g.int || (t.relGiven && closeEnough(p.value, g.value, t)), path: 'int' };
  // The rounding rule applies when a side was written as a decimal (as graders round floats, not fractions).
  const decimal = p.decimals !== undefined || g.decimals !== undefined;
  const same = (a: number, b: number) => (decimal ? numbersAgree(a, b, t) : closeEnough(a, b, t));
  if (p.percent === g.percent) return { equal: same(p.value, g.value), path: 'number' };
  if (!t.pct) return { equal: false, path: 'number', detail: 'percent mismatch' };
  // One side has `%`: accept the same digits, or the fraction.
  const pct = p.percent ? p.value : g.value;
  const other = p.percent ? g.value : p.value;
  return { equal: same(pct, other) || same(pct / 100, other), path: 'percent' };
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
  const gv = varsOf(g);
  let pv = varsOf(p);
  // Lenient variable names: the answer's variables, in sorted order, stand for the reference's.
  let rename: Map<string, string> | null = null;
  if (!t.strictVars && pv.length === gv.length && pv.some((v, i) => v !== gv[i])) {
    rename = new Map(pv.map((v, i) => [v, gv[i]!]));
    pv = gv;
  } else if (pv.length === gv.length && pv.some((v, i) => v !== gv[i])) {
    // Letter case alone (`X` for `x`, `A + B` for `a + b`), when neither side uses both cases of a letter.
    const fold = (vs: string[]) => vs.map((v) => v.toLowerCase());
    const pf = fold(pv);
    const gf = fold(gv);
    if (new Set(pf).size === pv.length && new Set(gf).size === gv.length && pf.every((v) => gf.includes(v))) {
      rename = new Map(pv.map((v) => [v, gv[gf.indexOf(v.toLowerCase())]!]));
      pv = gv;
    }
  }
  const vars = [...new Set([...pv, ...gv])];
  // Percent on expressions: scale like numbers do.
  const pScale = p.kind === 'expr' && p.percent ? 0.01 : 1;
  const gScale = g.kind === 'expr' && g.percent ? 0.01 : 1;
  let valid = 0;
  // Evaluation differences accumulate: allow a looser tolerance than literal numbers, still far below any real error.
  const et = { rel: Math.max(t.rel, 1e-9), abs: Math.max(t.abs, 1e-9) };
  for (const scope of scopes(vars)) {
    const pScope = rename ? renamed(scope, rename) : scope;
    const a = valueAt(p, pScope);
    const b = valueAt(g, scope);
    const aBad = !a || !Number.isFinite(a.re) || !Number.isFinite(a.im);
    const bBad = !b || !Number.isFinite(b.re) || !Number.isFinite(b.im);
    if (aBad && bBad) continue;
    if (vars.length > 0) {
      // Compare on the real domain: a point where either side is undefined or not real says nothing
      // (`x^{3/4}` and `\sqrt[4]{x^3}` agree wherever both are real numbers).
      if (aBad || bBad || Math.abs(a!.im) > 1e-12 || Math.abs(b!.im) > 1e-12) continue;
    } else if (aBad !== bBad) return { equal: false, path: 'expr', detail: 'defined at different points' };
    const as = { re: a!.re * pScale, im: a!.im * pScale };
    const bs = { re: b!.re * gScale, im: b!.im * gScale };
    if (!closeComplex(as, bs, et)) return { equal: false, path: 'expr', detail: `differs at ${JSON.stringify(scope)}` };
    valid++;
    if (vars.length === 0) break;
  }
  if (valid === 0 || (vars.length > 0 && valid < 3)) return { equal: null, path: 'expr', detail: 'not evaluable' };
  return { equal: true, path: vars.length ? 'expr' : 'number' };
}

function renamed(scope: Record<string, number>, rename: Map<string, string>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [from, to] of rename) out[from] = scope[to]!;
  return out;
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
  const tuple = (v: Extract<MathValue, { kind: 'seq' }>) => v.open === '(' && v.close === ')' && v.items.length > 1;
  if (unorderedKinds(g.open) && unorderedKinds(p.open)) return unordered(p.items, g.items, t, 'set');
  // A tuple answered for a list or set of values matches in any order.
  if (unorderedKinds(g.open) && tuple(p)) return unordered(p.items, g.items, t, 'set');
  // `[3, 2, 1]` for the list `1, 2, 3` (two items in square brackets are an interval, not a list).
  if (unorderedKinds(g.open) && p.open === '[' && p.close === ']' && p.items.length !== 2)
    return unordered(p.items, g.items, t, 'set');
  // A list or set answered for a tuple (or open interval) matches in the order written.
  if (!((p.open === '' || p.open === '{') && tuple(g)) && (p.open !== g.open || p.close !== g.close))
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

/** The items without repeats (`{2, 2, 3}` is the set {2, 3}); quadratic, lists are short. */
function distinct(items: MathValue[], t: Tol): MathValue[] {
  if (items.length > 64) return items;
  const out: MathValue[] = [];
  for (const it of items) if (!out.some((o) => cmp(it, o, t).equal === true)) out.push(it);
  return out;
}

/** Set equality: every distinct gold item matched by a distinct predicted item, and nothing left over. */
function unordered(ps0: MathValue[], gs0: MathValue[], t: Tol, path: string): Comparison {
  const ps = distinct(ps0, t);
  const gs = distinct(gs0, t);
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
    if (!t.swap) return { equal: false, path: 'relation', detail: 'operators differ (relationSwap is off)' };
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
    // With swapped sides allowed, an (in)equation may be written either way round (a factor of −1).
    return proportional(dp, dg, t.swap && (g.ops[0] === '=' || g.ops[0] === '!=' || g.ops[0] === '≈'), t);
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
