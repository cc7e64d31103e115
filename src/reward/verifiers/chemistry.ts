/**
 * Chemistry: formulas and reaction equations compared as normalised species (order of species on each side does
 * not matter, coefficients and charges do); quantities as in physics (molarity `M`, `g/mol`, `kJ/mol`, `atm`...);
 * anything else through the math path and the judge.
 */
import type { Verifier } from '../types.js';
import { fail, pass } from './common.js';
import { PhysicsParams, verifyQuantity } from './physics.js';

/** `H_2O`, `\mathrm{H_{2}O}`, `\ce{2H2 + O2 -> 2H2O}` → `H2O`, `2H2+O2->2H2O` (states kept, spacing dropped). */
export function normalizeChem(s: string): string {
  return s
    .replace(/\\(?:ce|mathrm|text|rm|textrm|mathbf)(?![A-Za-z])/g, '')
    .replace(/\\(?:longrightarrow|rightarrow|to)|⟶|→|=+>|-+>/g, '->')
    .replace(/\\rightleftharpoons|⇌|<=+>|<-+>/g, '<=>')
    .replace(/[_{}^$\\\s]/g, '')
    .replace(/·|\*/g, '.');
}

const FORMULA_RE = /^(?:\d*(?:[A-Z][a-z]?|\(|\)|\[|\])+(?:\d|[+-](?!>)|\((?:aq|s|l|g)\))*)+$/;

/** A chemical formula or a reaction equation (after normalisation). */
export function chemicalKind(norm: string): 'formula' | 'reaction' | null {
  if (/->|<=>/.test(norm)) {
    const sides = norm.split(/->|<=>/);
    return sides.length === 2 && sides.every((side) => side.split('+').every((sp) => sp === '' || FORMULA_RE.test(sp)))
      ? 'reaction'
      : null;
  }
  return /[A-Z]/.test(norm) && FORMULA_RE.test(norm) && !/^\d+$/.test(norm) ? 'formula' : null;
}

function species(side: string): string[] {
  return side
    .split(/\+(?![^(]*\))/)
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map((s) => (/^1(?=[A-Z(])/.test(s) ? s.slice(1) : s))
    .sort();
}

export const chemistryVerifier: Verifier<PhysicsParams> = {
  type: 'chemistry',
  params: PhysicsParams,
  boxed: true,
  judgeKind: 'chemistry',
  async verify(ctx) {
    const ref = normalizeChem(ctx.sample.answer.trim());
    const kind = chemicalKind(ref);
    if (kind) {
      const ans = normalizeChem(ctx.answer.trim());
      if (ans === ref) return pass(`chemistry:${kind}`);
      if (kind === 'reaction' && chemicalKind(ans) === 'reaction') {
        const [rl, rr] = ref.split(/->|<=>/) as [string, string];
        const [al, ar] = ans.split(/->|<=>/) as [string, string];
        const same = (a: string[], b: string[]) => a.length === b.length && a.every((x, i) => x === b[i]);
        if (same(species(rl), species(al)) && same(species(rr), species(ar))) return pass('chemistry:reaction');
        return fail('chemistry:reaction', 'species or coefficients differ from the reference equation');
      }
      return fail(`chemistry:${kind}`, `${kind} differs from the reference`);
    }
    return verifyQuantity(ctx, ctx.params, 'chemistry');
  },
};
