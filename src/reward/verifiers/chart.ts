/**
 * Chart: numbers within a relative tolerance (2.5e-2 as in the released full_config) — except years, which must
 * match exactly (the released rule, tightened: a non-integer answer to a year question is wrong, not "close").
 * `2019.0` and `2,019` are the year 2019 written differently and count as exact. Text answers match after VQA
 * normalisation, else the judge decides.
 */
import { z } from 'zod';
import { detectHedge } from '../hedge.js';
import { closeEnough } from '../math/compare.js';
import { normalizeVqa, wordNumber } from '../text.js';
import type { Verifier } from '../types.js';
import { fail, judgeVerdict, pass } from './common.js';

export const ChartParams = z
  .object({
    tolerance: z.number().min(0).max(1).default(2.5e-2),
    /** Integers within [yearMin, yearMax] in the reference are years: exact match (default true). */
    yearRule: z.boolean().default(true),
    yearMin: z.number().int().default(1000),
    yearMax: z.number().int().default(3000),
    percentVariants: z.boolean().default(true),
  })
  .strict();
export type ChartParams = z.infer<typeof ChartParams>;

/** A chart number: `1,234`, `12.5%`, `$3.5`, `-4`, `3.5 million`; percent reported separately. */
export function parseChartNumber(s: string): { value: number; percent: boolean; raw: string } | null {
  let t = s
    .trim()
    .replace(/\\%/g, '%')
    .replace(/^\$+|\$+$/g, '')
    .replace(/\\\$/g, '')
    .replace(/^[€£¥$]\s*/, '')
    .replace(/\s*\.$/, '')
    .trim();
  let scale = 1;
  const mult = /^(.*?)\s*(thousand|million|billion|trillion|k|m|bn|b)$/i.exec(t);
  if (mult && /\d/.test(mult[1]!)) {
    const w = mult[2]!.toLowerCase();
    scale = w === 'thousand' || w === 'k' ? 1e3 : w === 'million' || w === 'm' ? 1e6 : w === 'trillion' ? 1e12 : 1e9;
    t = mult[1]!.trim();
  }
  let percent = false;
  if (t.endsWith('%')) {
    percent = true;
    t = t.slice(0, -1).trim();
  }
  const v = wordNumber(t);
  if (v === null || !Number.isFinite(v)) return null;
  return { value: v * scale, percent, raw: t };
}

export const chartVerifier: Verifier<ChartParams> = {
  type: 'chart',
  params: ChartParams,
  boxed: true,
  judgeKind: 'chart',
  async verify(ctx) {
    const p = ctx.params;
    const answer = ctx.answer.trim();
    const ref = ctx.sample.answer.trim();
    if (normalizeVqa(answer) === normalizeVqa(ref) && normalizeVqa(ref) !== '') return pass('chart:exact');
    const g = parseChartNumber(ref);
    if (g) {
      const hedge = detectHedge(answer, ref, { ranges: true });
      if (hedge) return fail('chart:hedge', hedge);
      const a = parseChartNumber(answer);
      if (!a)
        return judgeVerdict(
          ctx,
          'chart',
          'numeric reference, non-numeric answer',
          fail('chart:number', 'the answer is not a number', false),
        );
      const isYear =
        p.yearRule &&
        !g.percent &&
        Number.isInteger(g.value) &&
        !/\./.test(g.raw) &&
        Math.abs(g.value) >= p.yearMin &&
        Math.abs(g.value) <= p.yearMax;
      if (isYear)
        return a.value === g.value && !a.percent
          ? pass('chart:year', 'year matches exactly')
          : fail('chart:year', `years must match exactly: ${a.raw} ≠ ${g.raw}`);
      const tol = { rel: p.tolerance, abs: 1e-12, pct: p.percentVariants };
      let ok = closeEnough(a.value, g.value, tol);
      if (!ok && a.percent !== g.percent && p.percentVariants) {
        const pct = a.percent ? a.value : g.value;
        const other = a.percent ? g.value : a.value;
        ok = closeEnough(pct / 100, other, tol);
      }
      return ok
        ? pass('chart:number', `within ${p.tolerance * 100}%`)
        : fail('chart:number', `${a.raw} is not within ${p.tolerance * 100}% of ${g.raw}`);
    }
    if (detectHedge(answer, ref)) return fail('chart:hedge', detectHedge(answer, ref)!);
    return judgeVerdict(
      ctx,
      'chart',
      'text answers differ after normalisation',
      fail('chart:text', 'text differs from the reference', false),
    );
  },
};
