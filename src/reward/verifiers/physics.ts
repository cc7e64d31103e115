/**
 * Physics: the answer must state a value; units are parsed and converted deterministically (mathjs units), a
 * missing unit where the reference has one is wrong (configurable), a unit of another dimension is wrong.
 * References without a numeric head (formulas, concepts) go through the math path and then the judge.
 * This is where "a velocity very close to the speed of light" dies: no value, no reward.
 */
import { z } from 'zod';
import { detectHedge } from '../hedge.js';
import { closeEnough } from '../math/compare.js';
import type { Verdict, Verifier, VerifyContext } from '../types.js';
import { convertTo, parseQuantity, parseUnit, sameDimension } from '../units.js';
import { fail, judgeVerdict, pass } from './common.js';
import { verifyMathLike } from './math.js';

export const PhysicsParams = z
  .object({
    /** Relative tolerance (default 1e-2: answers are rounded to significant figures). */
    tolerance: z.number().min(0).max(1).default(1e-2),
    absTolerance: z.number().min(0).default(1e-12),
    /** The reference's unit when the reference is a bare number (e.g. `m/s`). */
    unit: z.string().optional(),
    /** An answer without a unit is wrong when the reference has one (default true). */
    requireUnit: z.boolean().default(true),
    percentVariants: z.boolean().default(true),
    maxAnswerChars: z.number().int().positive().default(2000),
  })
  .strict();
export type PhysicsParams = z.infer<typeof PhysicsParams>;

export async function verifyQuantity(
  ctx: VerifyContext<unknown>,
  p: PhysicsParams,
  domain: 'physics' | 'chemistry',
): Promise<Verdict> {
  const answer = ctx.answer.trim();
  const ref = ctx.sample.answer.trim();
  if (answer.replace(/\s+/g, '') === ref.replace(/\s+/g, '')) return pass(`${domain}:exact`);
  const gq = parseQuantity(ref);
  if (!gq) return verifyMathLike(ctx, p, domain);
  const hedge = detectHedge(answer, ref, { ranges: true });
  if (hedge) return fail(`${domain}:hedge`, hedge);
  const pq = parseQuantity(answer);
  if (!pq) return fail(`${domain}:no_value`, 'the reference is a quantity, the answer states no value');

  let refUnit = gq.unit;
  let refValue = gq.value;
  if (!refUnit && p.unit) {
    refUnit = parseUnit(p.unit);
    if (!refUnit) throw new Error(`${domain} params.unit: "${p.unit}" is not a unit mathjs understands`);
    refUnit = refUnit.clone();
    refValue = gq.value;
  }
  const tol = { rel: p.tolerance, abs: p.absTolerance, pct: p.percentVariants };
  if (gq.unitText.startsWith('?')) {
    return judgeVerdict(
      ctx,
      domain,
      `reference unit "${gq.unitText.slice(1)}" not understood`,
      fail(`${domain}:unit`, 'unit not understood', false),
    );
  }
  if (refUnit) {
    if (pq.unitText.startsWith('?'))
      return judgeVerdict(
        ctx,
        domain,
        `answer unit "${pq.unitText.slice(1)}" not understood`,
        fail(`${domain}:unit`, 'unit not understood', false),
      );
    if (!pq.unit) {
      if (p.requireUnit) return fail(`${domain}:unit_missing`, `the answer omits the unit (${gq.unitText || p.unit})`);
      return closeEnough(pq.value, refValue, tol)
        ? pass(`${domain}:number`, 'value matches (unit omitted, allowed)')
        : fail(`${domain}:number`, `value ${pq.value} ≠ ${refValue}`);
    }
    if (!sameDimension(pq.unit, refUnit))
      return fail(
        `${domain}:unit_dimension`,
        `unit ${pq.unitText} does not measure the same quantity as ${gq.unitText || p.unit}`,
      );
    const target = gq.unit ?? refUnit;
    const got = convertTo(pq.unit, target);
    const want = gq.unit ? gq.unit.toNumber(target.formatUnits()) : refValue;
    return closeEnough(got, want, tol)
      ? pass(`${domain}:quantity`, `${answer} = ${want} ${target.formatUnits()}`)
      : fail(`${domain}:quantity`, `${got} ${target.formatUnits()} ≠ ${want}`);
  }
  // Bare-number reference: percent answers compare as fractions; a unit on the answer is then not checkable.
  const ok =
    closeEnough(pq.value, refValue, tol) ||
    (p.percentVariants && pq.unitText === '%' && closeEnough(pq.value * 100, refValue, tol));
  return ok ? pass(`${domain}:number`) : fail(`${domain}:number`, `value ${pq.value} ≠ ${refValue}`);
}

export const physicsVerifier: Verifier<PhysicsParams> = {
  type: 'physics',
  params: PhysicsParams,
  boxed: true,
  judgeKind: 'physics',
  verify: (ctx) => verifyQuantity(ctx, ctx.params, 'physics'),
};
