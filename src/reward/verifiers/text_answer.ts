/**
 * The text-answer path shared by VQA, fill-in-the-blank multiple choice, video and long-document answers: normalised
 * exact match, yes/no synonyms (a yes/no question needs a yes/no answer), numbers (digits or words) with hedge
 * rejection, configurable synonym groups, then the judge. Its own file so that `vqa` (which also takes options by
 * letter) and `multiple_choice` (which falls back to text) both import it without importing each other.
 */
import { z } from 'zod';
import { detectHedge } from '../hedge.js';
import type { JudgeKind } from '../judge.js';
import { closeEnough } from '../math/compare.js';
import { normalizeVqa, wordNumber, yesNo } from '../text.js';
import type { Verdict, VerifyContext } from '../types.js';
import { fail, judgeVerdict, pass } from './common.js';

export const VqaParams = z
  .object({
    tolerance: z.number().min(0).max(1).default(1e-6),
    /** Groups of answers that mean the same, e.g. `[["sofa", "couch"]]`. */
    synonyms: z.array(z.array(z.string()).min(2)).default([]),
  })
  .strict();
export type VqaParams = z.infer<typeof VqaParams>;

/** The text path shared by VQA, fill-in-the-blank multiple choice, video and spatial text answers. */
export async function verifyVqaText(
  ctx: VerifyContext<unknown>,
  kind: JudgeKind,
  p: VqaParams = { tolerance: 1e-6, synonyms: [] },
): Promise<Verdict> {
  const na = normalizeVqa(ctx.answer);
  const nr = normalizeVqa(ctx.sample.answer);
  if (na === '') return fail(`${kind}:empty`, 'empty answer');
  if (na === nr) return pass(`${kind}:exact`);
  const ry = yesNo(ctx.sample.answer);
  if (ry) {
    const ay = yesNo(ctx.answer);
    if (ay === ry) return pass(`${kind}:yes_no`);
    if (ay) return fail(`${kind}:yes_no`, `answered ${ay}, reference ${ry}`);
    return fail(`${kind}:yes_no`, 'a yes/no question needs a definite yes or no');
  }
  const rn = wordNumber(ctx.sample.answer.trim()) ?? wordNumber(nr);
  if (rn !== null) {
    const hedge = detectHedge(ctx.answer, ctx.sample.answer, { ranges: true });
    if (hedge) return fail(`${kind}:hedge`, hedge);
    // The raw answer first: normalisation turns a thousands separator (1,250) into a space.
    const an = wordNumber(ctx.answer.trim().replace(/\s*%$/, '')) ?? wordNumber(na.replace(/\s*%$/, ''));
    if (an !== null)
      return closeEnough(an, rn, { rel: p.tolerance, abs: 1e-12, pct: false })
        ? pass(`${kind}:number`)
        : fail(`${kind}:number`, `${an} ≠ ${rn}`);
  }
  for (const group of p.synonyms) {
    const g = group.map(normalizeVqa);
    if (g.includes(na) && g.includes(nr)) return pass(`${kind}:synonym`);
  }
  const hedge = detectHedge(ctx.answer, ctx.sample.answer);
  if (hedge) return fail(`${kind}:hedge`, hedge);
  return judgeVerdict(
    ctx,
    kind,
    'answers differ after normalisation',
    fail(`${kind}:text`, 'differs from the reference', false),
  );
}
