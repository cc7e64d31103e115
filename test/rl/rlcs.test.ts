import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import {
  apportion,
  Curriculum,
  DEFAULT_CURRICULUM,
  DEFAULT_TIER_WEIGHTS,
  TIERS,
  type TierWeights,
  tierOfRate,
  weightsAt,
} from '../../src/rl/rlcs.js';
import { Rng } from '../../src/util/rng.js';

function sample(id: string, domain: Sample['domain'] = 'stem', difficulty?: number): Sample {
  return {
    id,
    domain,
    source: 'test',
    split: 'train',
    images: [],
    question: id,
    answer: '1',
    verifier: { type: 'math' },
    ...(difficulty !== undefined ? { difficulty } : {}),
  };
}

const only = (tier: keyof TierWeights, w = 1): TierWeights => ({
  ...(Object.fromEntries(TIERS.map((t) => [t, 0])) as TierWeights),
  [tier]: w,
});

describe('tiers', () => {
  const th = DEFAULT_CURRICULUM.thresholds; // 0.1 / 0.35 / 0.65 / 0.9

  it('maps pass rates to tiers at the thresholds', () => {
    expect(tierOfRate(null, th)).toBe('unseen');
    expect(tierOfRate(0, th)).toBe('too_hard');
    expect(tierOfRate(0.1, th)).toBe('hard');
    expect(tierOfRate(0.35, th)).toBe('medium');
    expect(tierOfRate(0.65, th)).toBe('medium');
    expect(tierOfRate(0.9, th)).toBe('easy');
    expect(tierOfRate(0.91, th)).toBe('too_easy');
  });

  it('moves a prompt between tiers as online results arrive (label prior, then decayed evidence)', () => {
    const c = new Curriculum([sample('a', 'stem', 3), sample('b')]);
    // label 3 → prior p = 0.5 over 2 pseudo-trials
    expect(c.passRate('a')).toBeCloseTo(0.5, 12);
    expect(c.tierOf('a')).toBe('medium');
    expect(c.tierOf('b')).toBe('unseen');
    c.observe('a', 8, 8, 0); // (0.5·1 + 8) / (0.5·2 + 8)
    expect(c.passRate('a')).toBeCloseTo(8.5 / 9, 12);
    expect(c.tierOf('a')).toBe('too_easy');
    c.observe('a', 0, 8, 1); // (4.25) / (12.5)
    expect(c.passRate('a')).toBeCloseTo(0.34, 12);
    expect(c.tierOf('a')).toBe('hard');
    c.observe('a', 0, 8, 2);
    c.observe('a', 0, 8, 3);
    expect(c.tierOf('a')).toBe('too_hard');
    expect(c.record('a')).toMatchObject({ seen: 4, lastStep: 3 });
  });

  it('merges an offline pass@k result with the prior', () => {
    const c = new Curriculum([sample('a', 'stem', 5)], { offlineWeight: 1 });
    c.setOffline('a', 6, 8); // (2·0.1 + 6) / (2 + 8) = 0.62
    expect(c.passRate('a')).toBeCloseTo(0.62, 12);
    expect(c.tierOf('a')).toBe('medium');
    c.setOffline('a', 0, 8); // a second result does not stack
    expect(c.passRate('a')).toBeCloseTo(0.62, 12);
    expect(() => c.setOffline('a', 9, 8)).toThrow(/correct <= k/);
    expect(c.offlineCount()).toBe(1);
  });
});

describe('weights schedule', () => {
  it('interpolates linearly between points and holds outside', () => {
    const s = [
      { step: 10, weights: only('hard', 0) },
      { step: 20, weights: only('hard', 1) },
    ];
    expect(weightsAt(s, 0).hard).toBe(0);
    expect(weightsAt(s, 15).hard).toBeCloseTo(0.5, 12);
    expect(weightsAt(s, 99).hard).toBe(1);
  });

  it('rejects bad schedules and thresholds', () => {
    expect(() => new Curriculum([sample('a')], { schedule: [] })).toThrow(/at least one/);
    expect(() => new Curriculum([sample('a')], { schedule: [{ step: 0, weights: only('hard', 0) }] })).toThrow(
      /every tier weight is 0/,
    );
    expect(
      () =>
        new Curriculum([sample('a')], {
          schedule: [
            { step: 5, weights: DEFAULT_TIER_WEIGHTS },
            { step: 5, weights: DEFAULT_TIER_WEIGHTS },
          ],
        }),
    ).toThrow(/steps must increase/);
    expect(
      () => new Curriculum([sample('a')], { thresholds: { tooHard: 0.5, hard: 0.3, medium: 0.6, easy: 0.9 } }),
    ).toThrow(/tooHard <= hard/);
    expect(() => new Curriculum([sample('a'), sample('a')])).toThrow(/duplicate sample id "a"/);
    expect(() => new Curriculum([sample('a')], { mix: { ocr: 1 } })).toThrow(
      /domain "ocr" has weight 1 but no prompts/,
    );
  });
});

describe('drawing prompts', () => {
  it('apportions quotas exactly over time with carried remainders', () => {
    const debt: Record<string, number> = {};
    let a = 0;
    let b = 0;
    for (let i = 0; i < 3; i++) {
      const q = apportion(4, { a: 1, b: 2 }, debt);
      expect(q.a! + q.b!).toBe(4);
      a += q.a!;
      b += q.b!;
    }
    expect([a, b]).toEqual([4, 8]);
  });

  it('draws distinct prompts in the configured domain proportions', () => {
    const samples = [
      ...Array.from({ length: 20 }, (_, i) => sample(`s${i}`, 'stem')),
      ...Array.from({ length: 20 }, (_, i) => sample(`o${i}`, 'ocr')),
    ];
    const c = new Curriculum(samples, { mix: { stem: 3, ocr: 1 } });
    const d = c.draw(8, 0, new Rng(1));
    expect(new Set(d.map((x) => x.sample.id)).size).toBe(8);
    expect(d.filter((x) => x.sample.domain === 'stem').length).toBe(6);
  });

  it('re-weights tiers: a zero-weight tier is never drawn and a boosted tier dominates', () => {
    const samples = Array.from({ length: 40 }, (_, i) => sample(`p${i}`));
    const c = new Curriculum(samples, {
      schedule: [{ step: 0, weights: { ...only('medium', 1), too_easy: 0.02, too_hard: 0 } }],
    });
    samples.forEach((s, i) => {
      if (i < 10)
        c.observe(s.id, 8, 8, 0); // too_easy
      else if (i < 20)
        c.observe(s.id, 4, 8, 0); // medium
      else c.observe(s.id, 0, 8, 0); // too_hard
    });
    const tally: Record<string, number> = {};
    for (let step = 0; step < 50; step++)
      for (const x of c.draw(5, step, new Rng(step))) tally[x.tier] = (tally[x.tier] ?? 0) + 1;
    expect(tally.too_hard).toBeUndefined();
    expect(tally.medium).toBeGreaterThan(200);
    expect(tally.too_easy ?? 0).toBeLessThan(30);
    expect(c.populations()['*']).toMatchObject({ too_easy: 10, medium: 10, too_hard: 20 });
  });

  it('hands an exhausted domain’s quota to the others, and returns fewer only when everything is drawn', () => {
    const samples = [sample('s1', 'stem'), ...Array.from({ length: 10 }, (_, i) => sample(`o${i}`, 'ocr'))];
    const c = new Curriculum(samples, { mix: { stem: 1, ocr: 1 } });
    const d = c.draw(6, 0, new Rng(2));
    expect(d.length).toBe(6);
    expect(d.filter((x) => x.sample.domain === 'stem').length).toBe(1);
    expect(c.draw(50, 1, new Rng(3)).length).toBe(11);
  });

  it('state round-trips: a restored curriculum draws exactly what the original draws', () => {
    const samples = Array.from({ length: 30 }, (_, i) => sample(`p${i}`, i % 2 ? 'stem' : 'ocr', (i % 5) + 1));
    const a = new Curriculum(samples, { mix: { stem: 2, ocr: 1 } });
    for (let s = 0; s < 3; s++) for (const x of a.draw(7, s, new Rng(s))) a.observe(x.sample.id, s % 3, 4, s);
    a.setOffline('p3', 2, 4);
    const saved = JSON.parse(JSON.stringify(a.toJSON()));
    const b = new Curriculum(samples, { mix: { stem: 2, ocr: 1 } });
    expect(b.load(saved)).toEqual({ restored: 30, unknown: 0 });
    const da = a.draw(7, 3, new Rng(9)).map((x) => [x.sample.id, x.tier]);
    const db = b.draw(7, 3, new Rng(9)).map((x) => [x.sample.id, x.tier]);
    expect(db).toEqual(da);
    expect(b.populations()).toEqual(a.populations());
    expect(() => b.load({ version: 2 } as never)).toThrow(/version: 1/);
  });
});
