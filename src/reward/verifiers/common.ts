/**
 * Shared pieces of the verifiers: verdict constructors, the judge fallback, and the math check that escalates to
 * the CAS worker pool. One implementation each, so every domain gets the same hack-resistant behaviour.
 */

import type { JudgeKind } from '../judge.js';
import { checkMath, type MathCheck, type MathCheckOptions } from '../math/equivalence.js';
import type { Verdict, VerifyContext } from '../types.js';

export function pass(path: string, reason = 'matches the reference', score = 1): Verdict {
  return { score, correct: true, confident: true, reason, path };
}

export function fail(path: string, reason: string, confident = true): Verdict {
  return { score: 0, correct: false, confident, reason, path };
}

/**
 * Asks the judge when the route allows it. Without a usable judge: `noJudge` when given (the rule verdict stands,
 * not confident), else `unjudged`.
 */
export async function judgeVerdict(
  ctx: VerifyContext<unknown>,
  kind: JudgeKind,
  why: string,
  noJudge?: Verdict,
): Promise<Verdict> {
  if (!ctx.judge || ctx.judgeMode === 'never') {
    if (noJudge) return { ...noJudge, confident: false, reason: `${noJudge.reason} (${why}; no judge)` };
    return {
      score: 0,
      correct: false,
      confident: false,
      status: 'unjudged',
      reason: `${why}, and no judge is configured for this route`,
      path: 'judge:none',
    };
  }
  const out = await ctx.judge.judge({
    kind,
    question: ctx.sample.question,
    answer: ctx.answer,
    reference: ctx.sample.answer,
  });
  if (out.status === 'unjudged')
    return {
      score: 0,
      correct: false,
      confident: false,
      status: 'unjudged',
      reason: out.reason,
      path: 'judge',
      judge: out.provenance,
    };
  return {
    score: out.correct ? 1 : 0,
    correct: out.correct,
    confident: out.confident,
    reason: `judge: ${out.correct ? 'correct' : 'incorrect'} (agreement ${(out.agreement * 100).toFixed(0)}%)`,
    path: 'judge',
    judge: out.provenance,
  };
}

/** The checker's options a verifier passes on (tolerances and the equivalence switches; see CompareOptions). */
export type MathOptions = Omit<MathCheckOptions, 'limits' | 'goldCache' | 'symbolic'>;

/** Math equivalence in process; inputs beyond the in-process limits go to the CAS pool (hard-killed on timeout). */
export async function mathEquivalent(
  ctx: VerifyContext<unknown>,
  pred: string,
  gold: string,
  opts: MathOptions = {},
): Promise<MathCheck & { via: 'inline' | 'cas' | 'cas_timeout' | 'cas_busy' | 'cas_error' }> {
  const inline = checkMath(pred, gold, opts);
  const needsCas = inline.tooComplex !== undefined || (inline.equal === null && inline.path === 'expr');
  if (!needsCas || !ctx.cas) return { ...inline, via: 'inline' };
  const r = await ctx.cas.check({ pred, gold, ...opts });
  if (r.status === 'done') return { ...r, via: 'cas' };
  const via = r.status === 'timeout' ? 'cas_timeout' : r.status === 'busy' ? 'cas_busy' : 'cas_error';
  return { equal: null, path: 'cas', detail: r.reason, via };
}

/** Clamps a number to [0, 1]; NaN becomes 0. */
export function unit(x: number): number {
  return Number.isFinite(x) ? Math.min(1, Math.max(0, x)) : 0;
}
