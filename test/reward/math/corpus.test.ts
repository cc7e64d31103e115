/**
 * The hand-written equivalence corpus (test/fixtures/reward/math-equivalence.yaml): every case of every family must
 * agree with checkMath — equal cases must be judged equal, near-misses must not be. The benchmark reports the same
 * agreement by family (`npm run bench:reward`).
 */
import { describe, expect, it } from 'vitest';
import { checkMath } from '../../../src/reward/math/equivalence.js';
import { loadCorpus } from './corpus.js';

const corpus = loadCorpus();

describe('math equivalence corpus', () => {
  it('has several hundred cases in every family, both equal and not equal', () => {
    const all = Object.values(corpus).flat();
    expect(all.length).toBeGreaterThanOrEqual(400);
    for (const [family, cases] of Object.entries(corpus)) {
      expect(
        cases.some((c) => c.equal),
        family,
      ).toBe(family !== 'hack');
      expect(
        cases.some((c) => !c.equal),
        family,
      ).toBe(true);
    }
  });

  for (const [family, cases] of Object.entries(corpus)) {
    describe(family, () => {
      it.each(cases.map((c) => [`${c.equal ? '≡' : '≢'} ${c.gold} | ${c.pred}`, c] as const))('%s', (_l, c) => {
        const r = checkMath(c.pred, c.gold, c.options);
        const info = `${r.equal} ${r.path} ${r.detail ?? r.parseError ?? ''}`;
        if (c.equal) expect(r.equal, info).toBe(true);
        else expect(r.equal, info).not.toBe(true);
      });
    });
  }
});
