import { describe, expect, it } from 'vitest';
import { extractBox, findLatexBoxed } from '../../../src/io/answer/extract.js';

const B = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;

describe('extractBox (strict)', () => {
  it('extracts exactly one box from the answer part', () => {
    expect(extractBox(`<think>a</think><answer>x ${B(' 12 ')} y</answer>`)).toEqual({
      ok: true,
      value: '12',
      source: 'box',
      count: 1,
    });
    expect(extractBox(`<think>a</think>${B('\\frac{1}{2}')}`)).toMatchObject({ ok: true, value: '\\frac{1}{2}' });
  });

  it.each([
    ['none', '<think>a</think><answer>12</answer>', 'none'],
    ['several', `<think>a</think><answer>${B('1')} or ${B('2')}</answer>`, 'multiple'],
    ['box inside think only', `<think>maybe ${B('5')}</think><answer>5</answer>`, 'only_in_think'],
    ['nested', `<think>a</think><answer><|begin_of_box|>1${B('2')}<|end_of_box|></answer>`, 'nested'],
    ['unclosed', '<think>a</think><answer><|begin_of_box|>1</answer>', 'unclosed'],
    ['stray end', '<think>a</think><answer>1<|end_of_box|></answer>', 'unclosed'],
    ['legacy boxed smuggled', `<think>a</think><answer>${B('1')} \\boxed{2}</answer>`, 'legacy_boxed'],
    ['empty box', `<think>a</think><answer>${B('  ')}</answer>`, 'empty'],
    ['truncated', `<think>thinking ${B('3')}`, 'only_in_think'],
  ])('fails on %s', (_n, text, failure) => {
    const r = extractBox(text);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.failure).toBe(failure);
  });

  it('ignores a box in think when the answer has its own', () => {
    expect(extractBox(`<think>${B('4')}</think><answer>${B('5')}</answer>`)).toMatchObject({ ok: true, value: '5' });
  });
});

describe('extractBox (lenient)', () => {
  it('prefers box tokens, then the last \\boxed, then Answer:, then the last line', () => {
    expect(extractBox(`${B('1')} then ${B('2')}`, 'lenient')).toMatchObject({ value: '2', source: 'box', count: 2 });
    expect(extractBox('so \\boxed{\\frac{1}{2}} and finally \\boxed{x^{2}}', 'lenient')).toMatchObject({
      value: 'x^{2}',
      source: 'boxed',
      count: 2,
    });
    expect(extractBox('work...\nThe final answer is **17**.', 'lenient')).toMatchObject({
      value: '17',
      source: 'answer_line',
    });
    expect(extractBox('Answer: B\nbecause reasons', 'lenient')).toMatchObject({ value: 'B', source: 'answer_line' });
    expect(extractBox('line one\n  42  \n\n', 'lenient')).toMatchObject({ value: '42', source: 'last_line' });
    expect(extractBox('', 'lenient')).toMatchObject({ ok: false, failure: 'none' });
  });

  it('looks into the reasoning of a truncated response', () => {
    expect(extractBox('<think>so \\boxed{9}', 'lenient')).toMatchObject({ value: '9', source: 'boxed' });
  });
});

describe('findLatexBoxed', () => {
  it('brace-matches and skips nested boxes', () => {
    expect(findLatexBoxed('\\boxed{\\frac{a}{b}} x \\boxed{\\{1,2\\}}')).toEqual(['\\frac{a}{b}', '\\{1,2\\}']);
    expect(findLatexBoxed('\\boxed{a \\boxed{b}}')).toEqual(['a \\boxed{b}']);
    expect(findLatexBoxed('\\boxed{unclosed')).toEqual([]);
    expect(findLatexBoxed('\\fbox{3}')).toEqual(['3']);
  });
});
