import { describe, expect, it } from 'vitest';
import { checkFormat } from '../../../src/io/answer/format.js';

const B = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;

describe('checkFormat', () => {
  const good41 = `<think>ok</think>\n<answer>so ${B('1')}</answer>`;
  it('accepts the canonical formats', () => {
    expect(checkFormat(good41)).toMatchObject({ ok: true, style: 'glm41v', violations: [] });
    expect(checkFormat(`<think>ok</think>\nso ${B('1')}`)).toMatchObject({ ok: true, style: 'glm45v' });
    expect(checkFormat(`  ${good41}\n`).ok).toBe(true);
    expect(checkFormat('<think>a</think><answer>no box is fine for format</answer>').ok).toBe(true);
  });

  it.each([
    ['no think', `<answer>${B('1')}</answer>`, 'missing_think'],
    ['unclosed think', '<think>abc', 'unclosed_think'],
    ['text before think', `hi <think>a</think><answer>${B('1')}</answer>`, 'text_before_think'],
    ['text between think and answer', `<think>a</think>hmm<answer>${B('1')}</answer>`, 'text_outside_answer'],
    ['text after answer', `<think>a</think><answer>${B('1')}</answer> extra`, 'text_outside_answer'],
    ['two think blocks', `<think>a</think><think>b</think><answer>${B('1')}</answer>`, 'nested_tags'],
    ['nested answer', `<think>a</think><answer><answer>${B('1')}</answer></answer>`, 'nested_tags'],
    ['answer inside think', `<think>a<answer>1</answer></think><answer>${B('1')}</answer>`, 'nested_tags'],
    ['two boxes', `<think>a</think><answer>${B('1')} ${B('2')}</answer>`, 'multiple_box_markers'],
    ['box begin only', '<think>a</think><answer><|begin_of_box|>1</answer>', 'unbalanced_box'],
    ['box reversed', '<think>a</think><answer><|end_of_box|>1<|begin_of_box|></answer>', 'unbalanced_box'],
    ['legacy boxed', '<think>a</think><answer>\\boxed{1}</answer>', 'legacy_boxed'],
    ['legacy boxed with space', '<think>a</think><answer>\\boxed {1}</answer>', 'legacy_boxed'],
    ['empty answer', '<think>a</think><answer>  </answer>', 'empty_answer'],
    ['unclosed answer', `<think>a</think><answer>${B('1')}`, 'unclosed_answer'],
  ])('rejects %s', (_name, text, violation) => {
    const f = checkFormat(text);
    expect(f.ok).toBe(false);
    expect(f.violations).toContain(violation);
  });

  it('enforces the requested style', () => {
    expect(checkFormat(`<think>a</think>${B('1')}`, { style: 'glm41v' }).violations).toContain('missing_answer_tags');
    expect(checkFormat(good41, { style: 'glm45v' }).violations).toContain('unexpected_answer_tags');
  });

  it('a box inside think still counts toward the one-box limit (released rule)', () => {
    expect(checkFormat(`<think>${B('1')}</think><answer>${B('1')}</answer>`).violations).toContain(
      'multiple_box_markers',
    );
  });

  it('notes an empty think without failing', () => {
    const f = checkFormat(`<think></think>${B('1')}`);
    expect(f.ok).toBe(true);
    expect(f.notes).toContain('empty_think');
  });

  it('prefilledThink assumes the opening tag', () => {
    expect(checkFormat(`abc</think>${B('1')}`).ok).toBe(false);
    expect(checkFormat(`abc</think>${B('1')}`, { prefilledThink: true }).ok).toBe(true);
    expect(checkFormat(`<think>abc</think>${B('1')}`, { prefilledThink: true }).ok).toBe(true);
  });
});
