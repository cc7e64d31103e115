/**
 * OCR: `1 − edit distance / max length` (the paper's Table 1 formula) with fastest-levenshtein; whitespace removed
 * and optional case folding as in the released verifier. Continuous reward; `correct` means at or above the pass
 * threshold (default: identical).
 */
import { distance } from 'fastest-levenshtein';
import { z } from 'zod';
import type { Verifier } from '../types.js';
import { fail } from './common.js';

export const OcrParams = z
  .object({
    ignoreCase: z.boolean().default(false),
    ignoreSpaces: z.boolean().default(true),
    /** Similarity at or above this is full reward (default 1: only identical text). */
    upper: z.number().min(0).max(1).default(1),
    /** Similarity at or below this is zero reward. */
    lower: z.number().min(0).max(1).default(0),
    /** Similarity counted as `correct` (default 1). */
    passThreshold: z.number().min(0).max(1).default(1),
    /** Largest len(answer)·len(reference) compared exactly (bit-parallel Levenshtein stays fast below it). */
    maxProduct: z.number().positive().default(2e9),
  })
  .strict();
export type OcrParams = z.infer<typeof OcrParams>;

export function ocrNormalize(s: string, p: Pick<OcrParams, 'ignoreCase' | 'ignoreSpaces'>): string {
  let t = s.normalize('NFKC');
  if (p.ignoreSpaces) t = t.replace(/\s+/g, '');
  if (p.ignoreCase) t = t.toLowerCase();
  return t;
}

export function ocrSimilarity(a: string, b: string, maxProduct = 2e9): number {
  const m = Math.max(a.length, b.length);
  if (m === 0) return 1;
  // The length difference bounds the distance from below: a cheap exit for giant or empty answers.
  const upperBound = 1 - Math.abs(a.length - b.length) / m;
  if (upperBound <= 0) return 0;
  if (a.length * b.length > maxProduct) return 0; // cannot afford an exact distance: no credit
  return 1 - distance(a, b) / m;
}

export const ocrVerifier: Verifier<OcrParams> = {
  type: 'ocr',
  params: OcrParams,
  boxed: true,
  judgeKind: 'ocr',
  async verify(ctx) {
    const p = ctx.params;
    const a = ocrNormalize(ctx.answer, p);
    const b = ocrNormalize(ctx.sample.answer, p);
    if (a.length * b.length > p.maxProduct)
      return fail('ocr:length', `answer of ${a.length} characters is too long to compare`);
    const sim = ocrSimilarity(a, b, p.maxProduct);
    const score = sim >= p.upper ? 1 : sim <= p.lower ? 0 : sim;
    return {
      score,
      correct: sim >= p.passThreshold,
      confident: true,
      reason: `similarity ${sim.toFixed(4)}`,
      path: 'ocr:similarity',
    };
  },
};
