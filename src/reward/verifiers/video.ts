/**
 * Video: temporal answers (a time, or a time span) compared with a tolerance in seconds or by temporal IoU;
 * options by letter; otherwise the VQA text path and then the judge.
 */
import { z } from 'zod';
import { detectHedge } from '../hedge.js';
import type { Verifier } from '../types.js';
import { fail, pass } from './common.js';
import { verifyChoice } from './multiple_choice.js';
import { verifyVqaText } from './text_answer.js';

export const VideoParams = z
  .object({
    /** Tolerance for a single time, in seconds (default 1). */
    toleranceSec: z.number().min(0).default(1),
    /** Temporal IoU needed for a span (default 0.5). */
    iouThreshold: z.number().min(0).max(1).default(0.5),
    /** Span reward: `binary` (IoU ≥ threshold) or `iou` (continuous). */
    spanReward: z.enum(['binary', 'iou']).default('binary'),
    /** `auto`: temporal when the reference is written as a time (`1:23`, `12.5s`, `[3.0, 7.5]`). */
    temporal: z.enum(['auto', 'always', 'never']).default('auto'),
  })
  .strict();
export type VideoParams = z.infer<typeof VideoParams>;

const TIME = String.raw`(?:\d+:)?\d+:\d+(?:\.\d+)?|\d+(?:\.\d+)?\s*(?:s|sec|secs|seconds?|秒)?`;

/** Seconds from `83`, `83.5s`, `1:23`, `01:23.5`, `0:01:23`. */
export function parseTime(s: string): number | null {
  const t = s.trim().toLowerCase();
  const hms = /^(?:(\d+):)?(\d+):(\d+(?:\.\d+)?)$/.exec(t);
  if (hms) return (hms[1] ? Number(hms[1]) * 3600 : 0) + Number(hms[2]) * 60 + Number(hms[3]);
  const sec = /^(\d+(?:\.\d+)?)\s*(?:s|sec|secs|seconds?|秒)?$/.exec(t);
  return sec ? Number(sec[1]) : null;
}

/** A time or a span `[a, b]`, `a-b`, `a to b`, `from a to b`; null when neither. */
export function parseTemporal(s: string): { at: number } | { span: [number, number] } | null {
  const t = s
    .trim()
    .replace(/^from\s+/i, '')
    .replace(/[.。]$/, '');
  const span = new RegExp(String.raw`^[\[(]?\s*(${TIME})\s*(?:,|-|–|~|to|至|到)\s*(${TIME})\s*[\])]?$`, 'i').exec(t);
  if (span) {
    const a = parseTime(span[1]!);
    const b = parseTime(span[2]!);
    if (a !== null && b !== null && b >= a) return { span: [a, b] };
    return null;
  }
  const at = parseTime(t);
  return at === null ? null : { at };
}

/** Written as a time: a colon, a seconds suffix, or a bracketed/ranged pair of numbers. */
function looksTemporal(s: string): boolean {
  return /\d:\d|\d\s*(?:s|sec|secs|seconds?|秒)\b|^\s*[[(]\s*\d+(?:\.\d+)?\s*,\s*\d+(?:\.\d+)?\s*[\])]\s*$/i.test(s);
}

export const videoVerifier: Verifier<VideoParams> = {
  type: 'video',
  params: VideoParams,
  boxed: true,
  judgeKind: 'video',
  async verify(ctx) {
    const p = ctx.params;
    if ((ctx.sample.options?.length ?? 0) > 0) return verifyChoice(ctx, true, 'video');
    const temporal = p.temporal === 'always' || (p.temporal === 'auto' && looksTemporal(ctx.sample.answer));
    if (temporal) {
      const ref = parseTemporal(ctx.sample.answer);
      if (!ref) throw new Error(`video reference "${ctx.sample.answer}": expected a time or a time span`);
      const got = parseTemporal(ctx.answer);
      if ('at' in ref) {
        const hedge = detectHedge(ctx.answer, ctx.sample.answer);
        if (hedge) return fail('video:hedge', hedge);
        if (!got || !('at' in got)) return fail('video:time', 'the answer is not a single time');
        const d = Math.abs(got.at - ref.at);
        return d <= p.toleranceSec
          ? pass('video:time', `off by ${d.toFixed(2)} s`)
          : fail('video:time', `off by ${d.toFixed(2)} s > ${p.toleranceSec} s`);
      }
      if (!got || !('span' in got)) return fail('video:span', 'the answer is not a time span');
      const [a0, a1] = got.span;
      const [r0, r1] = ref.span;
      const inter = Math.max(0, Math.min(a1, r1) - Math.max(a0, r0));
      const union = Math.max(a1, r1) - Math.min(a0, r0);
      const tiou = union > 0 ? inter / union : a0 === r0 && a1 === r1 ? 1 : 0;
      const ok = tiou >= p.iouThreshold;
      return {
        score: p.spanReward === 'iou' ? tiou : ok ? 1 : 0,
        correct: ok,
        confident: true,
        reason: `temporal IoU ${tiou.toFixed(3)}`,
        path: 'video:span',
      };
    }
    return verifyVqaText(ctx, 'video');
  },
};
