/**
 * Grounding: boxes in any bracket style, normalised to 0–1000; predicted boxes matched one-to-one to reference
 * boxes by the Hungarian algorithm; a match counts when IoU > τ (default 0.5). Reward = matches / max(#predicted,
 * #reference): extra boxes cost as much as missing ones, so spraying boxes cannot win. Invalid boxes (outside the
 * range, inverted, degenerate) count as unmatched predictions.
 */
import { z } from 'zod';
import { boxProblem, iou, parseBoxes } from '../../io/answer/geometry.js';
import { maxWeightAssignment } from '../hungarian.js';
import type { Verifier } from '../types.js';
import { fail } from './common.js';

export const GroundingParams = z
  .object({
    iouThreshold: z.number().min(0).max(1).default(0.5),
    /** Coordinate range: `grounding` 0–1000 (default) or `gui` 0–999. */
    system: z.enum(['grounding', 'gui']).default('grounding'),
    /** More predicted boxes than this is wrong outright (giant outputs). */
    maxBoxes: z.number().int().positive().default(100),
  })
  .strict();
export type GroundingParams = z.infer<typeof GroundingParams>;

export const groundingVerifier: Verifier<GroundingParams> = {
  type: 'grounding',
  params: GroundingParams,
  boxed: true,
  judgeKind: 'vqa',
  async verify(ctx) {
    const p = ctx.params;
    const refs = parseBoxes(ctx.sample.answer, { system: p.system });
    if (refs.length === 0)
      throw new Error(`grounding reference "${ctx.sample.answer.slice(0, 80)}": expected [x1,y1,x2,y2] box(es)`);
    const bad = refs.find((b) => b.problem);
    if (bad) throw new Error(`grounding reference box ${bad.raw}: ${bad.problem}`);
    const preds = parseBoxes(ctx.answer, { system: p.system });
    if (preds.length === 0) return fail('grounding:none', 'no box in the answer');
    if (preds.length > p.maxBoxes) return fail('grounding:too_many', `${preds.length} boxes > ${p.maxBoxes}`);
    const valid = preds.filter((b) => !b.problem && !boxProblem(b.box, p.system));
    const invalid = preds.length - valid.length;
    // Weight matches above τ far more than IoU itself, so the assignment maximises the number of matches first.
    const big = refs.length + 1;
    const ious = valid.map((v) => refs.map((r) => iou(v.box, r.box)));
    const weights = ious.map((row) => row.map((x) => (x > p.iouThreshold ? big + x : 0)));
    const assign = maxWeightAssignment(weights);
    let matched = 0;
    const matchedIous: number[] = [];
    assign.forEach((j, i) => {
      if (j >= 0 && ious[i]![j]! > p.iouThreshold) {
        matched++;
        matchedIous.push(ious[i]![j]!);
      }
    });
    const denom = Math.max(preds.length, refs.length);
    const score = matched / denom;
    const parts = [`${matched}/${denom} matched at IoU > ${p.iouThreshold}`];
    if (invalid > 0)
      parts.push(
        `${invalid} invalid box(es): ${preds
          .filter((b) => b.problem)
          .map((b) => b.problem)
          .join(', ')}`,
      );
    if (matchedIous.length)
      parts.push(`mean matched IoU ${(matchedIous.reduce((a, b) => a + b, 0) / matchedIous.length).toFixed(3)}`);
    return { score, correct: score === 1, confident: true, reason: parts.join('; '), path: 'grounding:hungarian' };
  },
};
