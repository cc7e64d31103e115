import { describe, expect, it } from 'vitest';
import { ocrSimilarity, ocrVerifier } from '../../../src/reward/verifiers/ocr.js';
import { verify } from '../helpers.js';

const ocr = { domain: 'ocr' as const };

describe('ocr verifier', () => {
  it('computes 1 − edit distance / max length', () => {
    expect(ocrSimilarity('kitten', 'sitting')).toBeCloseTo(1 - 3 / 7);
    expect(ocrSimilarity('', '')).toBe(1);
    expect(ocrSimilarity('abc', '')).toBe(0);
  });
  it('gives continuous reward, full only for identical text (spaces ignored)', async () => {
    expect(await verify(ocrVerifier, 'Hello World', { ...ocr, answer: 'HelloWorld' })).toMatchObject({
      score: 1,
      correct: true,
    });
    const v = await verify(ocrVerifier, 'Hello Wor1d', { ...ocr, answer: 'Hello World' });
    expect(v.score).toBeCloseTo(1 - 1 / 10);
    expect(v.correct).toBe(false);
    expect(
      (await verify(ocrVerifier, 'hello world', { ...ocr, answer: 'Hello World' }, { ignoreCase: true })).correct,
    ).toBe(true);
  });
  // A quadratic edit distance on the 2M-character answer would not finish: the test timeout is a generous hang
  // guard, not a timed assertion.
  it('applies lower/upper thresholds and stays linear on giant answers', async () => {
    expect((await verify(ocrVerifier, 'Hello Wor1d', { ...ocr, answer: 'Hello World' }, { upper: 0.85 })).score).toBe(
      1,
    );
    expect((await verify(ocrVerifier, 'Hxllx Wxrxd', { ...ocr, answer: 'Hello World' }, { lower: 0.7 })).score).toBe(0);
    const v = await verify(ocrVerifier, 'x'.repeat(2_000_000), { ...ocr, answer: 'Hello World' });
    expect(v.score).toBeLessThan(1e-4);
  }, 30_000);
});
