/**
 * Relations as values and sets: the rules that read an equation for the value it assigns and an inequality for the
 * interval it describes: `isInterval` (two items in `(`/`[` brackets), chains, labels, `relationAsSet`. Pure helpers
 * of compare.ts (no comparison here).
 */
import type { MathValue, RelOp } from './value.js';

export type Relation = Extract<MathValue, { kind: 'relation' }>;

export function isInterval(v: MathValue): boolean {
  return v.kind === 'seq' && v.items.length === 2 && (v.open === '(' || v.open === '[') && v.close !== '}';
}

/** `y = 2 + 2 + 3 = 7` → `y = 7`: a chain of equalities keeps its first and last term. */
export function collapseChain(r: Relation): Relation {
  if (r.ops.length < 2 || !r.ops.every((o) => o === '=' || o === '≈')) return r;
  return { kind: 'relation', ops: ['='], terms: [r.terms[0]!, r.terms[r.terms.length - 1]!] };
}

/**
 * A term that only names the quantity: symbols without numbers (`x`, `PQ`, `|AB|`, `S_1:S_2`), a tuple of them
 * (`(a, b)`), or words and unknown function names (`g(t)`, `Area`). Dropped for the value it is equated with.
 */
export function isLabel(v: MathValue): boolean {
  if (v.kind === 'expr') return !/\d/.test(v.src.replace(/_[A-Za-z0-9]+/g, ''));
  if (v.kind === 'seq') return v.open !== '{' && v.items.length > 0 && v.items.every(isLabel);
  return v.kind === 'text';
}

export const FLIP: Record<RelOp, RelOp> = {
  '=': '=',
  '!=': '!=',
  '≈': '≈',
  '<': '>',
  '>': '<',
  '<=': '>=',
  '>=': '<=',
};

/** The value a reference equality assigns: `x = 3` → 3, `3 = x` → 3, `(a, b) = (1, 4)` → (1, 4). */
export function assignedValue(r: Relation): MathValue | null {
  if (r.ops.length !== 1 || (r.ops[0] !== '=' && r.ops[0] !== '≈')) return null;
  const [l, rr] = r.terms as [MathValue, MathValue];
  if (isLabel(l)) return rr;
  if (isLabel(rr)) return l;
  return null;
}

/** The variable side of a one-variable inequality (`x`, `t`), or null. */
export function isVariable(v: MathValue): boolean {
  return v.kind === 'expr' && v.vars.length === 1 && /^\s*[A-Za-z](?:_[A-Za-z0-9]+)?\s*$|^\s*[a-z]+\s*$/.test(v.src);
}

const INF: MathValue = { kind: 'number', value: Number.POSITIVE_INFINITY, percent: false };
const NEG_INF: MathValue = { kind: 'number', value: Number.NEGATIVE_INFINITY, percent: false };

/**
 * The set a one-variable relation describes: `x < 3` → (-∞, 3), `x ≥ 2` → [2, ∞), `1 < x ≤ 2` → (1, 2],
 * `x ≠ 2` → (-∞, 2) ∪ (2, ∞); null for anything else.
 */
export function relationAsSet(r: Relation): MathValue | null {
  if (r.ops.length === 2) return inequalityAsInterval(r);
  if (r.ops.length !== 1) return null;
  let [a, b] = r.terms as [MathValue, MathValue];
  let op = r.ops[0]!;
  if (isVariable(b) && !isVariable(a)) {
    [a, b] = [b, a];
    op = FLIP[op];
  }
  if (!isVariable(a) || isVariable(b)) return null;
  switch (op) {
    case '<':
      return { kind: 'seq', open: '(', close: ')', items: [NEG_INF, b] };
    case '<=':
      return { kind: 'seq', open: '(', close: ']', items: [NEG_INF, b] };
    case '>':
      return { kind: 'seq', open: '(', close: ')', items: [b, INF] };
    case '>=':
      return { kind: 'seq', open: '[', close: ')', items: [b, INF] };
    case '!=':
      return {
        kind: 'union',
        parts: [
          { kind: 'seq', open: '(', close: ')', items: [NEG_INF, b] },
          { kind: 'seq', open: '(', close: ')', items: [b, INF] },
        ],
      };
    default:
      return null;
  }
}

/** `x < 1 or x > 2` (a list of one-variable relations) as the union of their sets. */
export function listAsUnion(v: Extract<MathValue, { kind: 'seq' }>): MathValue | null {
  const parts: MathValue[] = [];
  for (const it of v.items) {
    if (it.kind === 'seq' && isInterval(it)) parts.push(it);
    else if (it.kind === 'relation') {
      const set = relationAsSet(it);
      if (!set) return null;
      if (set.kind === 'union') parts.push(...set.parts);
      else parts.push(set);
    } else return null;
  }
  return parts.length === 1 ? parts[0]! : { kind: 'union', parts };
}

function inequalityAsInterval(r: Relation): MathValue | null {
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
