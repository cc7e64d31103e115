/**
 * Counting: exactly one non-negative integer (digits, English words, Chinese numerals), optionally followed by the
 * counted noun. Any hedge, range, second number or decimal is wrong — the paper's "a correct number between 0 and
 * 10" hack gets nothing.
 */
import { z } from 'zod';
import { detectHedge } from '../hedge.js';
import { chineseNumber, englishNumber } from '../text.js';
import type { Verifier } from '../types.js';
import { fail, pass } from './common.js';

export const CountingParams = z.object({}).strict();

/** The single integer an answer states, or a reason why it does not state exactly one. */
export function parseCount(s: string): { value: number } | { error: string } {
  const t = s
    .normalize('NFKC')
    .trim()
    .replace(/^\$|\$$/g, '')
    .replace(/\\text\{([^}]*)\}/g, '$1')
    .replace(/[.。]$/, '')
    .trim();
  if (t === '') return { error: 'empty answer' };
  if (/\d[.,]\d/.test(t)) return { error: 'not an integer' };
  const digitRuns = t.match(/\d+/g) ?? [];
  if (digitRuns.length > 1) return { error: 'more than one number' };
  if (/-\s*\d/.test(t)) return { error: 'negative or a range' };
  if (digitRuns.length === 1) {
    // The number may be followed (or preceded) by the counted noun, nothing numeric.
    const rest = t.replace(digitRuns[0]!, ' ').trim();
    if (
      rest !== '' &&
      (englishNumber(rest.split(/\s+/)[0] ?? '') !== null || /[零〇一二两三四五六七八九十百千]/.test(rest))
    )
      return { error: 'more than one number' };
    return { value: Number(digitRuns[0]) };
  }
  const zh = /^([零〇一二两三四五六七八九十百千]+)\s*[个只位条张辆件本台棵头匹朵块把座名]?[\u4e00-\u9fff]*$/.exec(t);
  if (zh) {
    const v = chineseNumber(zh[1]!);
    if (v !== null) return { value: v };
  }
  const words = t.toLowerCase().split(/\s+/);
  // Longest leading number phrase, then at most three noun words.
  for (let k = Math.min(words.length, 5); k >= 1; k--) {
    const v = englishNumber(words.slice(0, k).join(' '));
    if (v !== null) {
      const rest = words.slice(k);
      if (rest.length > 3 || rest.some((w) => englishNumber(w) !== null)) return { error: 'more than one number' };
      return { value: v };
    }
  }
  return { error: 'no integer in the answer' };
}

export const countingVerifier: Verifier<z.infer<typeof CountingParams>> = {
  type: 'counting',
  params: CountingParams,
  boxed: true,
  judgeKind: 'counting',
  async verify(ctx) {
    const ref = parseCount(ctx.sample.answer);
    if ('error' in ref)
      throw new Error(`counting reference "${ctx.sample.answer}": expected one integer (${ref.error})`);
    const hedge = detectHedge(ctx.answer, ctx.sample.answer, { ranges: true });
    if (hedge) return fail('counting:hedge', hedge);
    const got = parseCount(ctx.answer);
    if ('error' in got) return fail('counting:parse', got.error);
    return got.value === ref.value ? pass('counting:int') : fail('counting:int', `${got.value} ≠ ${ref.value}`);
  },
};
