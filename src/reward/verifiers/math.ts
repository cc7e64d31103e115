/**
 * Math: exact string match, then hedge rejection, then structured equivalence (numbers, fractions, percent,
 * scientific notation, intervals, sets, tuples, matrices, equations, symbolic expressions) with a relative
 * tolerance; inputs beyond the in-process limits go to the CAS pool; what the rules cannot decide goes to the judge.
 */
import { z } from 'zod';
import { detectHedge } from '../hedge.js';
import type { Verdict, Verifier, VerifyContext } from '../types.js';
import { fail, judgeVerdict, mathEquivalent, pass } from './common.js';

/** The equivalence switches of src/reward/math (documented in src/reward/README.md), per route. */
export const EquivalenceParams = {
  /** Decimal places at which a decimal answer counts as equal when it rounds like the reference (default 6). */
  floatRounding: z.number().int().min(0).max(15).default(6),
  /** Variable names must match (default true); false maps them by position (`y^2` for `x^2`). */
  strictVariables: z.boolean().default(true),
  /** A one-element set `{3}` matches `3` (default true). */
  setMatchesElement: z.boolean().default(true),
  /** Relations may be written with the sides swapped (`3 = x`, `b < a` for `a > b`; default true). */
  relationSwap: z.boolean().default(true),
  /** An answered inequality may match a reference interval (default false: echoing the question is not solving it). */
  relationAsSet: z.boolean().default(false),
  /** Find the final answer inside prose (box, final-answer phrase, last math span, last number; default true). */
  extract: z.boolean().default(true),
};

export const MathParams = z
  .object({
    /**
     * Relative tolerance for numbers. Unset (the default): decimals compare at `floatRounding` places, evaluated
     * expressions within 1e-6; set: it also accepts decimals and integers within it.
     */
    tolerance: z.number().min(0).max(1).optional(),
    /** Absolute tolerance near zero (default 1e-9). */
    absTolerance: z.number().min(0).default(1e-9),
    /** Accept `25%` against `0.25` or `25` (default true). */
    percentVariants: z.boolean().default(true),
    /** Longest answer considered, in characters (longer answers are wrong: no real answer is that long). */
    maxAnswerChars: z.number().int().positive().default(2000),
    ...EquivalenceParams,
  })
  .strict();
export type MathParams = z.infer<typeof MathParams>;

/** Several solutions in the reference make "or"/"and" separators legitimate in the answer. */
export function referenceIsMultiValued(ref: string): boolean {
  return /,|\\pm|±|\bor\b|\band\b|\\cup|∪/.test(ref);
}

export async function verifyMathLike(
  ctx: VerifyContext<unknown>,
  p: {
    tolerance?: number;
    absTolerance: number;
    percentVariants: boolean;
    maxAnswerChars: number;
  } & Partial<z.infer<z.ZodObject<typeof EquivalenceParams>>>,
  domain: 'math' | 'spatial' | 'physics' | 'chemistry',
): Promise<Verdict> {
  const answer = ctx.answer.trim();
  const ref = ctx.sample.answer.trim();
  if (answer.replace(/\s+/g, '') === ref.replace(/\s+/g, '')) return pass(`${domain}:exact`);
  if (answer.length > p.maxAnswerChars)
    return fail(`${domain}:length`, `answer of ${answer.length} characters is not a definite value`);
  const multi = referenceIsMultiValued(ref);
  const hedge = detectHedge(answer, ref, { allow: multi ? ['or'] : [] });
  if (hedge) return fail(`${domain}:hedge`, hedge);
  const pred = multi ? answer.replace(/\s+(?:or|and)\s+/gi, ', ') : answer;
  const r = await mathEquivalent(ctx, pred, ref, {
    relTol: p.tolerance,
    absTol: p.absTolerance,
    percentVariants: p.percentVariants,
    floatRounding: p.floatRounding,
    strictVariables: p.strictVariables,
    setMatchesElement: p.setMatchesElement,
    relationSwap: p.relationSwap,
    relationAsSet: p.relationAsSet,
    extract: p.extract,
  });
  const path = `${domain}:${r.path}${r.via !== 'inline' ? `:${r.via}` : ''}`;
  if (r.equal === true && ctx.judgeMode !== 'always') return pass(path, 'equivalent to the reference');
  if (r.equal === false && ctx.judgeMode !== 'always')
    return fail(path, `not equivalent to the reference${r.detail ? ` (${r.detail})` : ''}`);
  const rule =
    r.equal === true
      ? pass(path)
      : fail(path, r.parseError ?? r.tooComplex ?? r.detail ?? 'rules could not decide', false);
  const why =
    r.equal === null
      ? `rules could not decide (${r.parseError ?? r.tooComplex ?? r.detail ?? r.path})`
      : 'judge mode always';
  // A check stopped by its deadline or refused by a full pool decided nothing: without a judge it is `unjudged`
  // (left out of training signals), never a confident-looking 0.
  const overBudget = r.via === 'cas_timeout' || r.via === 'cas_busy';
  return judgeVerdict(ctx, domain === 'spatial' ? 'spatial' : domain, why, overBudget ? undefined : rule);
}

export const mathVerifier: Verifier<MathParams> = {
  type: 'math',
  params: MathParams,
  boxed: true,
  judgeKind: 'math',
  verify: (ctx) => verifyMathLike(ctx, ctx.params, 'math'),
};
