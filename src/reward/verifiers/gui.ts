/**
 * GUI actions (AndroidWorld JSON, OSWorld calls, WebVoyager commands): the action type must match; the target
 * must hit the reference (centre of the predicted box inside the reference box, or IoU ≥ τ); typed text scores by
 * edit similarity; every other argument must match exactly. The reward is the product of the parts (as released);
 * unexpected keys (a JSON action with extra keys) are wrong unless allowed, and boxes outside 0–999 or inverted are
 * wrong (released AndroidWorld rule).
 */
import { distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { type Box, boxCenter, boxProblem, iou, type Point, pointInBox } from '../../io/answer/geometry.js';
import { type GuiAction, parseGuiAction } from '../../io/answer/gui-action.js';
import type { Verifier } from '../types.js';
import { fail, pass } from './common.js';

export const GuiParams = z
  .object({
    /** `center`: the predicted box centre (or point) inside the reference box; `iou`: IoU ≥ iouThreshold. */
    match: z.enum(['center', 'iou']).default('center'),
    iouThreshold: z.number().min(0).max(1).default(0.5),
    /** Keys in the predicted JSON action that the reference does not have are wrong (default false). */
    allowExtraKeys: z.boolean().default(false),
    /** Text similarity counted as correct (default 1: identical after trimming and case folding). */
    textPass: z.number().min(0).max(1).default(1),
    /** Point-to-point credit (OSWorld): full within `pointRadius`, linear to zero at `pointZero` (normalised units). */
    pointRadius: z.number().min(0).default(20),
    pointZero: z.number().positive().default(50),
  })
  .strict();
export type GuiParams = z.infer<typeof GuiParams>;

/** Keys that describe the target or the text; everything else is compared exactly. */
const GEOMETRY = new Set(['box_2d', 'start_box', 'end_box', 'start_point', 'end_point', 'point']);
const TEXT = new Set(['text', 'content']);
const INFO = new Set(['element_info']); // free-form description: not scored

function textSimilarity(a: string, b: string): number {
  const x = a.trim().toLowerCase();
  const y = b.trim().toLowerCase();
  const m = Math.max(x.length, y.length);
  return m === 0 ? 1 : 1 - distance(x, y) / m;
}

function pointCredit(p: Point, ref: Point, radius: number, zero: number): number {
  const d = Math.hypot(p[0] - ref[0], p[1] - ref[1]);
  if (d <= radius) return 1 - (0.2 * d) / Math.max(radius, 1e-9);
  return Math.max(0, 1 - d / zero);
}

export const guiVerifier: Verifier<GuiParams> = {
  type: 'gui',
  params: GuiParams,
  boxed: true,
  judgeKind: 'gui',
  async verify(ctx) {
    const p = ctx.params;
    const refParse = parseGuiAction(ctx.sample.answer);
    if (!refParse.ok) throw new Error(`gui reference: ${refParse.error}`);
    const ref = refParse.action;
    const got = parseGuiAction(ctx.answer);
    if (!got.ok) return fail('gui:parse', got.error);
    const a = got.action;
    if (a.type !== ref.type) return fail('gui:type', `action ${a.type}, reference ${ref.type}`);
    const system = a.format === 'json' ? 'gui' : 'grounding';

    const refKeys = Object.keys(ref.args).filter((k) => !INFO.has(k));
    const gotKeys = Object.keys(a.args).filter((k) => !INFO.has(k));
    const extra = gotKeys.filter((k) => !refKeys.includes(k));
    if (extra.length > 0 && !p.allowExtraKeys) return fail('gui:keys', `unexpected key(s): ${extra.join(', ')}`);
    const missing = refKeys.filter((k) => !gotKeys.includes(k) && !(k === 'action' || k === 'action_type'));
    if (missing.length > 0) return fail('gui:keys', `missing key(s): ${missing.join(', ')}`);

    const parts: string[] = [];
    let score = 1;
    let correct = true;

    // Target.
    if (ref.box) {
      const target: Box | null = a.box ?? null;
      if (a.box) {
        const problem = boxProblem(a.box, system);
        if (problem) return fail('gui:box', `box ${JSON.stringify(a.box)} is ${problem.replace(/_/g, ' ')}`);
      }
      const pt: Point | null = target ? boxCenter(target) : (a.point ?? null);
      if (!pt) return fail('gui:target', 'the action has no target');
      const hit = p.match === 'center' || !target ? pointInBox(pt, ref.box) : iou(target, ref.box) >= p.iouThreshold;
      if (!hit)
        return fail(
          'gui:target',
          p.match === 'center' || !target ? 'target outside the reference element' : 'IoU below threshold',
        );
      parts.push('target hit');
    } else if (ref.point) {
      if (!a.point) return fail('gui:target', 'the action has no point');
      const credit = pointCredit(a.point, ref.point, p.pointRadius, p.pointZero);
      score *= credit;
      correct = correct && credit >= 0.8; // within pointRadius
      parts.push(`point credit ${credit.toFixed(3)}`);
    }
    if (ref.endPoint) {
      if (!a.endPoint) return fail('gui:target', 'the action has no end point');
      const credit = pointCredit(a.endPoint, ref.endPoint, p.pointRadius, p.pointZero);
      score = Math.sqrt(score * credit); // geometric mean of start and end, as released for drags
      correct = correct && credit >= 0.8;
      parts.push(`end point credit ${credit.toFixed(3)}`);
    }

    // Text.
    if (ref.text !== undefined && (refKeys.some((k) => TEXT.has(k)) || ref.format === 'webvoyager')) {
      const sim = textSimilarity(a.text ?? '', ref.text);
      score *= sim;
      correct = correct && sim >= p.textPass;
      parts.push(`text similarity ${sim.toFixed(3)}`);
    }

    // Everything else: exact.
    for (const k of refKeys) {
      if (GEOMETRY.has(k) || TEXT.has(k) || k === 'action_type' || k === 'action') continue;
      const norm = (v: unknown) => (typeof v === 'string' ? v.trim().toLowerCase() : JSON.stringify(v));
      if (norm(a.args[k]) !== norm(ref.args[k]))
        return fail('gui:arg', `${k}: ${JSON.stringify(a.args[k])} ≠ ${JSON.stringify(ref.args[k])}`);
    }
    if (ref.element !== undefined && a.element !== ref.element)
      return fail('gui:element', `element ${a.element} ≠ ${ref.element}`);

    if (score >= 1 && correct) return pass('gui:action', parts.join('; ') || 'same action');
    return { score, correct, confident: true, reason: parts.join('; '), path: 'gui:action' };
  },
};

export type { GuiAction };
