import { describe, expect, it } from 'vitest';
import { splitThinking } from '../../../src/io/answer/think.js';

const B = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;

describe('splitThinking', () => {
  it('splits GLM-4.1V style', () => {
    const s = splitThinking(`<think>reason here</think><answer>The result is ${B('42')}.</answer>`);
    expect(s.reasoning).toBe('reason here');
    expect(s.content).toBe(`The result is ${B('42')}.`);
    expect(s.style).toBe('glm41v');
    expect(s.hasAnswerTags).toBe(true);
    expect(s.issues).toEqual([]);
  });

  it('splits GLM-4.5V style (no answer tags)', () => {
    const s = splitThinking(`<think>\nstep 1\n</think>\nIt is ${B('7')}`);
    expect(s.reasoning).toBe('step 1');
    expect(s.content).toBe(`It is ${B('7')}`);
    expect(s.style).toBe('glm45v');
  });

  it('reports a missing </think> and recovers a following <answer>', () => {
    const s = splitThinking(`<think>thinking...<answer>${B('3')}</answer>`);
    expect(s.thinkClosed).toBe(false);
    expect(s.issues).toContain('unclosed_think');
    expect(s.reasoning).toBe('thinking...');
    expect(s.content).toBe(B('3'));
  });

  it('a truncated response has reasoning and no content', () => {
    const s = splitThinking('<think>long long reasoning that got cut');
    expect(s.content).toBe('');
    expect(s.reasoning).toBe('long long reasoning that got cut');
    expect(s.thinkClosed).toBe(false);
  });

  it('handles a pre-opened think (missing <think>)', () => {
    const s = splitThinking('reasoning</think>answer');
    expect(s.reasoning).toBe('reasoning');
    expect(s.content).toBe('answer');
    expect(s.issues).toContain('missing_think_open');
  });

  it('plain text has no reasoning', () => {
    const s = splitThinking('just an answer');
    expect(s.reasoning).toBeNull();
    expect(s.style).toBe('plain');
    expect(s.content).toBe('just an answer');
  });

  it('is case-insensitive on tags and notes empty think', () => {
    const s = splitThinking('<THINK></Think><Answer>x</ANSWER>');
    expect(s.reasoning).toBe('');
    expect(s.content).toBe('x');
    expect(s.issues).toContain('empty_think');
  });
});
