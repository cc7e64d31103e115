import { describe, expect, it } from 'vitest';
import { countingVerifier, parseCount } from '../../../src/reward/verifiers/counting.js';
import { verify } from '../helpers.js';

const c = { domain: 'vqa' as const, question: 'How many apples are there?', answer: '7' };

describe('counting verifier', () => {
  it.each([
    ['7', 7],
    ['seven', 7],
    ['7 apples', 7],
    ['There are 7.', 7],
    ['twenty-one', 21],
    ['七', 7],
    ['十二个', 12],
  ])('parses %s', (s, n) => {
    expect(parseCount(s)).toEqual({ value: n });
  });
  it.each(['7.5', '7 or 8', '6-8', 'between 5 and 10', 'about 7', 'a few', '7, 8', '', 'seven or eight'])(
    'rejects %s',
    async (s) => {
      expect((await verify(countingVerifier, s, c)).correct).toBe(false);
    },
  );
  it('accepts exactly the reference integer', async () => {
    expect((await verify(countingVerifier, 'seven', c)).correct).toBe(true);
    expect((await verify(countingVerifier, '8', c)).correct).toBe(false);
  });
  it('reports a broken reference as an error', async () => {
    await expect(verify(countingVerifier, '7', { ...c, answer: 'several' })).rejects.toThrow(/counting reference/);
  });
});
