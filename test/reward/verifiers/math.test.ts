import { describe, expect, it } from 'vitest';
import { mathVerifier } from '../../../src/reward/verifiers/math.js';
import { spatialVerifier } from '../../../src/reward/verifiers/spatial.js';
import { verify } from '../helpers.js';

describe('math verifier', () => {
  it('accepts equivalent forms', async () => {
    expect(await verify(mathVerifier, '0.5', { answer: '\\frac{1}{2}' })).toMatchObject({
      score: 1,
      correct: true,
      confident: true,
    });
    expect(await verify(mathVerifier, 'x = 2, x = -2'.replace(/x = /g, ''), { answer: '\\pm 2' })).toMatchObject({
      correct: true,
    });
    expect((await verify(mathVerifier, '\\frac12', { answer: '\\frac12' })).path).toBe('math:exact');
  });

  it('rejects hedges, except "or" between the solutions of a multi-valued reference', async () => {
    expect(await verify(mathVerifier, '3 or 4', { answer: '3' })).toMatchObject({ correct: false, path: 'math:hedge' });
    expect(await verify(mathVerifier, 'approximately 3', { answer: '3' })).toMatchObject({ correct: false });
    expect(await verify(mathVerifier, '2 or 3', { answer: '2, 3' })).toMatchObject({ correct: true });
    expect(await verify(mathVerifier, '2 or 4', { answer: '2, 3' })).toMatchObject({ correct: false });
  });

  it('applies the tolerance parameter', async () => {
    expect((await verify(mathVerifier, '3.1416', { answer: '\\pi' })).correct).toBe(false);
    expect((await verify(mathVerifier, '3.1416', { answer: '\\pi' }, { tolerance: 1e-4 })).correct).toBe(true);
  });

  it('is undecided (no judge: wrong, not confident) for text it cannot compare', async () => {
    const v = await verify(mathVerifier, 'the golden ratio', { answer: '\\frac{1+\\sqrt5}{2}' });
    expect(v).toMatchObject({ correct: false, confident: false });
    expect(v.reason).toMatch(/no judge/);
  });

  it('rejects giant answers without parsing them', async () => {
    const v = await verify(mathVerifier, `${'1+'.repeat(5000)}1`, { answer: '5001' });
    expect(v).toMatchObject({ correct: false, path: 'math:length' });
  });

  it('spatial uses the same equivalence (degrees dropped) and text matching', async () => {
    expect((await verify(spatialVerifier, '90^\\circ', { answer: '90', domain: 'spatial' })).correct).toBe(true);
    expect((await verify(spatialVerifier, 'Left', { answer: 'left', domain: 'spatial' })).correct).toBe(true);
  });
});
