import { describe, expect, it } from 'vitest';
import {
  ExpansionController,
  expansionRatio,
  imbalance,
  isInvalidGroup,
  selectBalanced,
} from '../../src/rl/expansion.js';

describe('expansion ratio', () => {
  it('is 1 / (1 − invalid share), capped at maxRatio', () => {
    expect(expansionRatio(0, 4)).toBe(1);
    expect(expansionRatio(0.5, 4)).toBe(2);
    expect(expansionRatio(0.75, 4)).toBe(4);
    expect(expansionRatio(0.8, 4)).toBe(4);
    expect(expansionRatio(1, 3)).toBe(3);
    expect(() => expansionRatio(1.5, 4)).toThrow(/\[0, 1\]/);
  });

  it('EMA: the first observation initialises, later ones blend with the decay', () => {
    const e = new ExpansionController({ decay: 0.8, maxRatio: 4 });
    expect(e.state.ema).toBe(1);
    expect(e.observe(0.5)).toEqual({ ratio: 2, ema: 2 });
    expect(e.observe(0.75).ema).toBeCloseTo(0.8 * 2 + 0.2 * 4, 12);
    expect(e.observe(0).ema).toBeCloseTo(0.8 * 2.4 + 0.2 * 1, 12);
    expect(e.state.updates).toBe(3);
    expect(e.state.lastInvalidShare).toBe(0);
  });

  it('turns the EMA into a prompt count within the fixed rollout budget', () => {
    const e = new ExpansionController({ decay: 0.5, maxRatio: 4 });
    expect(e.promptsToSample(16, 8)).toBe(16);
    e.observe(1 / 3); // ratio 1.5
    expect(e.promptsToSample(16, 8)).toBe(24);
    expect(e.promptsToSample(16, 8, 160)).toBe(20); // 160 rollouts / 8 per prompt
    e.observe(1);
    expect(e.state.ema).toBeCloseTo(2.75, 12);
    expect(e.promptsToSample(16, 8)).toBe(44);
  });

  it('resumes from a saved state', () => {
    const a = new ExpansionController({ decay: 0.9 });
    a.observe(0.6);
    a.observe(0.2);
    const b = new ExpansionController({ decay: 0.9 }, a.state);
    expect(b.observe(0.4)).toEqual(a.observe(0.4));
  });

  it('rejects bad options', () => {
    expect(() => new ExpansionController({ decay: 1 })).toThrow(/decay/);
    expect(() => new ExpansionController({ maxRatio: 0.5 })).toThrow(/maxRatio/);
    expect(() => new ExpansionController({ initialRatio: 5, maxRatio: 4 })).toThrow(/initialRatio/);
  });
});

describe('balanced selection', () => {
  const g = (correct: number, total = 8, rewardStd = correct > 0 && correct < total ? 0.5 : 0) => ({
    correct,
    total,
    rewardStd,
  });

  it('invalid = all correct or all wrong; imbalance = |c − w| / n', () => {
    expect(isInvalidGroup(g(0))).toBe(true);
    expect(isInvalidGroup(g(8))).toBe(true);
    expect(isInvalidGroup(g(3))).toBe(false);
    expect(imbalance(g(4))).toBe(0);
    expect(imbalance(g(1))).toBe(0.75);
  });

  it('keeps the most balanced groups and never a zero-variance one', () => {
    const groups = [g(4), g(1), g(8), g(0), g(3), g(5), g(7)];
    const sel = selectBalanced(groups, 4, [0, 0, 0, 0, 0.2, 0.1, 0]);
    // 4/8 first; then 3/8 and 5/8 (tie on balance and std → tie-break keys 0.1 < 0.2); then 1/8 vs 7/8 (index order)
    expect(sel.kept).toEqual([0, 5, 4, 1]);
    expect(sel.validCount).toBe(5);
    expect(sel.short).toBe(false);
  });

  it('prefers the larger reward spread on equal balance (continuous rewards)', () => {
    const sel = selectBalanced([g(2, 4, 0.2), g(2, 4, 0.6)], 1, [0, 0]);
    expect(sel.kept).toEqual([1]);
  });

  it('degrades gracefully: fewer valid groups than wanted, or none', () => {
    const few = selectBalanced([g(0), g(3), g(8)], 4, [0, 0, 0]);
    expect(few).toEqual({ kept: [1], validCount: 1, short: true });
    const none = selectBalanced([g(0), g(8)], 2, [0, 0]);
    expect(none).toEqual({ kept: [], validCount: 0, short: true });
  });

  it('a group whose rewards vary although every response is wrong still carries gradient', () => {
    // e.g. OCR partial credit: all below the pass threshold, rewards differ
    const sel = selectBalanced([{ correct: 0, total: 4, rewardStd: 0.3 }], 1, [0]);
    expect(sel.kept).toEqual([0]);
  });
});
