/**
 * Super-linear backtracking guard for the answer and reward paths (issue #20 item 2): the exact 43-character answer
 * that took 82 s in the old unit-word regex, through checkMath and through the router with a boxed answer, and a
 * family of inputs shaped to make any nested or adjacent quantifier in the math parser, extractor or surface-form
 * scanner retry quadratically. The time bound is a hang guard (seconds for work that takes milliseconds).
 */
import { describe, expect, it } from 'vitest';
import type { Sample } from '../../../src/data/sample.js';
import { checkMath } from '../../../src/reward/math/equivalence.js';
import { extractAnswer, extractChoice } from '../../../src/reward/math/extract.js';
import { joinDigitGroups, normalizeNumberToken, stripSurface } from '../../../src/reward/math/surface.js';
import { RewardRouter } from '../../../src/reward/router.js';

const HANG_GUARD_MS = 5000;

function timed<T>(fn: () => T): { value: T; ms: number } {
  const t0 = performance.now();
  const value = fn();
  return { value, ms: performance.now() - t0 };
}

describe('no catastrophic backtracking in the math answer path', () => {
  it("checkMath('1 word word word word word word word word !', '1') returns at once (issue #20 item 2)", () => {
    const { value, ms } = timed(() => checkMath('1 word word word word word word word word !', '1'));
    expect(ms).toBeLessThan(HANG_GUARD_MS);
    expect(value.equal).not.toBeNull();
  });

  it('the same answer through RewardRouter.score with a boxed answer', async () => {
    // In process (no verifier worker): the regex path itself must be fast, not just bounded by a deadline.
    const router = new RewardRouter({ cas: { enabled: false }, isolation: { enabled: false } });
    const sample: Sample = {
      id: 'issue20-item2',
      domain: 'stem',
      source: 'regression',
      split: 'test',
      images: [],
      question: 'How many?',
      answer: '1',
      verifier: { type: 'math' },
    } as Sample;
    const response =
      '<think>Let me work through this carefully step by step before answering.</think>' +
      '<answer><|begin_of_box|>1 word word word word word word word word !<|end_of_box|></answer>';
    const t0 = performance.now();
    const r = await router.score(sample, response);
    expect(performance.now() - t0).toBeLessThan(HANG_GUARD_MS);
    expect(r.status).not.toBe('error');
    await router.close();
  });

  const n = 20_000;
  const hostile: Array<[string, string]> = [
    ['unit words', `1 ${'word '.repeat(n / 5)}!`],
    ['unit words with powers', `1 ${'cm^2 '.repeat(n / 5)}x`],
    ['spaces after a number', `1${' '.repeat(n)}x`],
    ['digit run', `${'1'.repeat(n)}x`],
    ['digit run with dots', `${'1.'.repeat(n / 2)}x`],
    ['comma groups', `${'1,'.repeat(n / 2)}x`],
    ['space groups', `1${' 000'.repeat(n / 4)}x`],
    ['letters', 'a'.repeat(n)],
    ['answer words', `${'answer '.repeat(n / 7)}`],
    ['answer colon spaces', `answer${' '.repeat(n)}:`],
    ['since clauses', `The answer is 5${' '.repeat(n)}x`],
    ['dollar signs', '$'.repeat(n)],
    ['open boxes', '\\boxed{'.repeat(n / 7)],
    ['brackets', `${'\\('.repeat(n / 2)}`],
    ['trailing punctuation', `The answer is 5${'.'.repeat(n)}x`],
    ['percent words', `5 ${'per '.repeat(n / 4)}x`],
    ['choice letters', `A${' '.repeat(n)}x`],
    ['option words', `option${' '.repeat(n)}is${' '.repeat(n)}x`],
    ['approximations', `${'1 \\approx '.repeat(n / 10)}1`],
    ['fractions', `1${' '.repeat(n / 2)}${'\\frac12'.repeat(n / 14)}`],
  ];

  it.each(hostile)('%s (%#)', (_name, text) => {
    const { ms } = timed(() => {
      checkMath(text, '5', { goldCache: false });
      checkMath('5', text, { goldCache: false });
      extractAnswer(text);
      extractChoice(text);
      stripSurface(text);
      joinDigitGroups(text);
      normalizeNumberToken(text);
    });
    expect(ms).toBeLessThan(HANG_GUARD_MS);
  });
});
