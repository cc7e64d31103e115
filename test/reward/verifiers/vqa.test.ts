import { describe, expect, it } from 'vitest';
import { normalizeVqa, yesNo } from '../../../src/reward/text.js';
import {
  multipleChoiceVerifier,
  parseLetters,
  selectedLetters,
} from '../../../src/reward/verifiers/multiple_choice.js';
import { vqaVerifier } from '../../../src/reward/verifiers/vqa.js';
import { verify } from '../helpers.js';

const vqa = { domain: 'vqa' as const };

describe('text normalisation', () => {
  it('normalises like the VQA evaluation', () => {
    expect(normalizeVqa('The Red car!')).toBe('red car');
    expect(normalizeVqa('Two dogs.')).toBe('2 dogs');
    expect(normalizeVqa('3.5')).toBe('3.5');
    expect(normalizeVqa("it's")).toBe('it');
  });
  it('maps yes/no synonyms and refuses both', () => {
    expect(yesNo('Yes, it is.')).toBe('yes');
    expect(yesNo('是的')).toBe('yes');
    expect(yesNo('False')).toBe('no');
    expect(yesNo('yes or no')).toBeNull();
    expect(yesNo('red')).toBeNull();
  });
});

describe('vqa verifier', () => {
  it('exact, yes/no, numbers and synonyms', async () => {
    expect((await verify(vqaVerifier, 'The red car.', { ...vqa, answer: 'red car' })).correct).toBe(true);
    expect((await verify(vqaVerifier, 'True', { ...vqa, answer: 'yes' })).correct).toBe(true);
    expect((await verify(vqaVerifier, 'No', { ...vqa, answer: 'yes' })).correct).toBe(false);
    expect((await verify(vqaVerifier, 'maybe', { ...vqa, answer: 'yes' })).correct).toBe(false);
    expect((await verify(vqaVerifier, 'two', { ...vqa, answer: '2' })).correct).toBe(true);
    expect((await verify(vqaVerifier, '2 or 3', { ...vqa, answer: '2' })).correct).toBe(false);
    expect(
      (await verify(vqaVerifier, 'couch', { ...vqa, answer: 'sofa' }, { synonyms: [['sofa', 'couch']] })).correct,
    ).toBe(true);
  });
  it('numbers with thousands separators compare as numbers, on either side', async () => {
    expect((await verify(vqaVerifier, '1,250', { ...vqa, answer: '1250' })).correct).toBe(true);
    expect((await verify(vqaVerifier, '1250', { ...vqa, answer: '1,250' })).correct).toBe(true);
    expect(await verify(vqaVerifier, '1,205', { ...vqa, answer: '1250' })).toMatchObject({
      correct: false,
      confident: true,
    });
  });
  it('falls back to the judge (none here: wrong, not confident)', async () => {
    expect(await verify(vqaVerifier, 'crimson', { ...vqa, answer: 'red' })).toMatchObject({
      correct: false,
      confident: false,
    });
  });
  it('delegates to multiple choice when options exist', async () => {
    expect((await verify(vqaVerifier, 'B', { ...vqa, answer: 'B', options: ['cat', 'dog'] })).correct).toBe(true);
  });
});

describe('multiple choice verifier', () => {
  const opts = ['red', 'green', 'blue', 'yellow'];
  const mc = { ...vqa, options: opts, answer: 'C' };
  it('parses reference letters', () => {
    expect(parseLetters('(B)', 4)).toEqual(['B']);
    expect(parseLetters('D, b', 4)).toEqual(['B', 'D']);
    expect(parseLetters('E', 4)).toBeNull();
  });
  it.each(['C', '(C)', 'C.', 'Option C', 'The answer is C', 'C. blue', 'blue', '答案是C'])('accepts %s', async (a) => {
    expect((await verify(multipleChoiceVerifier, a, mc)).correct).toBe(true);
  });
  it.each(['B', 'C or D', 'C, D', 'C. red', 'green', 'E', 'none of them', 'CD'])('rejects %s', async (a) => {
    expect((await verify(multipleChoiceVerifier, a, mc)).correct).toBe(false);
  });
  it('supports multi-answer references and fill-in-the-blank (no options)', async () => {
    expect((await verify(multipleChoiceVerifier, 'A, C', { ...mc, answer: 'AC' })).correct).toBe(true);
    expect((await verify(multipleChoiceVerifier, 'A', { ...mc, answer: 'AC' })).correct).toBe(false);
    expect((await verify(multipleChoiceVerifier, 'Blue', { ...vqa, answer: 'blue' })).correct).toBe(true);
    expect(selectedLetters('C. red', opts, true)).toEqual({ error: 'letter C with the text of option A' });
  });
});
