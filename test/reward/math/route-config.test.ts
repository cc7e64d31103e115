/**
 * The equivalence switches travel per route: the reward config's `params` reach checkMath through the math verifier,
 * a route can loosen or tighten them, and invalid values are refused when the config is parsed.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../../src/data/sample.js';
import { parseRewardConfig } from '../../../src/reward/config.js';
import { RewardRouter } from '../../../src/reward/router.js';

const sample = (source: string, answer: string): Sample =>
  ({
    id: `route-config/${source}`,
    domain: 'stem',
    source,
    split: 'test',
    images: [],
    question: 'Answer the question.',
    answer,
    verifier: { type: 'math' },
  }) as Sample;
const response = (box: string) =>
  `<think>Let me work through this carefully step by step before answering.</think><answer><|begin_of_box|>${box}<|end_of_box|></answer>`;

const router = new RewardRouter(
  {
    cas: { enabled: false },
    isolation: { enabled: false },
    routes: [
      { name: 'two-places', match: { source: 'linalg*' }, verifier: 'math', params: { floatRounding: 2 } },
      { name: 'strict', match: { source: 'olympiad*' }, verifier: 'math', params: { setMatchesElement: false } },
      { name: 'names-free', match: { source: 'algebra*' }, verifier: 'math', params: { strictVariables: false } },
      { name: 'sets', match: { source: 'ineq*' }, verifier: 'math', params: { relationAsSet: true } },
    ],
  },
  { cas: null },
);
afterAll(() => router.close());

describe('equivalence switches per route', () => {
  const matrix = '\\begin{pmatrix} \\frac{2}{3} & 1 \\\\ \\frac{1}{3} & 2 \\end{pmatrix}';
  const rounded = '\\begin{pmatrix} 0.67 & 1 \\\\ 0.33 & 2 \\end{pmatrix}';

  it.each([
    ['linalg/1', matrix, rounded, true],
    ['default/1', matrix, rounded, false],
    ['olympiad/1', '\\{3\\}', '3', false],
    ['default/2', '\\{3\\}', '3', true],
    ['algebra/1', 'x^2 + 1', 'y^2 + 1', true],
    ['default/3', 'x^2 + 1', 'y^2 + 1', false],
    ['ineq/1', '[1, 4]', '1 \\le t \\le 4', true],
    ['default/4', '[1, 4]', '1 \\le t \\le 4', false],
  ] as const)('%s: %s against %s → %s', async (source, gold, answer, correct) => {
    const r = await router.score(sample(source, gold), response(answer));
    expect(r.correct, `${r.route} ${r.path}: ${r.reason}`).toBe(correct);
  });

  it('refuses invalid switches when the config is parsed, naming the route and the field', () => {
    expect(() =>
      parseRewardConfig({ routes: [{ name: 'bad', verifier: 'math', params: { floatRounding: 40 } }] }),
    ).toThrow(/routes\[0\] \(bad\).*floatRounding/);
    expect(() => parseRewardConfig({ routes: [{ verifier: 'math', params: { relationSwapp: false } }] })).toThrow(
      /relationSwapp/,
    );
  });
});
