import { describe, expect, it } from 'vitest';
import {
  countThinking,
  forceAnswer,
  forcedSuffix,
  type ThinkingState,
  thinkingBudgetSpent,
  thinkingTokensOf,
} from '../../src/io/force-answer.js';

const CLOSE = 9;
const fresh = (): ThinkingState => ({ thinkClosed: false, thinkingTokens: 0, forced: false });

describe('force answering', () => {
  it('counts tokens before </think> as thinking; </think> closes thinking and is not counted', () => {
    const s = fresh();
    for (const id of [1, 2, CLOSE, 3]) countThinking(s, id, CLOSE);
    expect(s).toEqual({ thinkClosed: true, thinkingTokens: 2, forced: false });
    expect(thinkingTokensOf([1, 2, CLOSE, 3], CLOSE, false)).toBe(2);
    // Never closed: every token, less a final stop token.
    expect(thinkingTokensOf([1, 2, 3], CLOSE, true)).toBe(2);
    expect(thinkingTokensOf([], CLOSE, true)).toBe(0);
  });

  it('fires once, when thinking reaches the budget without </think>, and closes thinking', () => {
    const s = fresh();
    countThinking(s, 1, CLOSE);
    expect(thinkingBudgetSpent(s, 2)).toBe(false);
    countThinking(s, 2, CLOSE);
    expect(thinkingBudgetSpent(s, null)).toBe(false);
    expect(thinkingBudgetSpent(s, 2)).toBe(true);
    expect(forceAnswer(s, [CLOSE, 10])).toEqual([CLOSE, 10]);
    expect(s).toEqual({ thinkClosed: true, thinkingTokens: 2, forced: true });
    expect(thinkingBudgetSpent(s, 2)).toBe(false);
    // A model that closes thinking in its budget-th token is not forced.
    const t = fresh();
    countThinking(t, 1, CLOSE);
    countThinking(t, CLOSE, CLOSE);
    expect(thinkingBudgetSpent(t, 2)).toBe(false);
  });

  it('appends </think><answer> for GLM-4.1V and </think> plus a newline for GLM-4.5V', () => {
    expect(forcedSuffix('glm41v')).toBe('</think><answer>');
    expect(forcedSuffix('glm45v')).toBe('</think>\n');
  });
});
