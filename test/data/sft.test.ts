import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { promptText, sampleMessage, sftTarget, toFillInBlank } from '../../src/data/sft.js';
import { checkFormat } from '../../src/io/answer/format.js';

const base: Sample = {
  id: 'x/train/1',
  domain: 'vqa',
  source: 'x',
  split: 'train',
  images: ['a.png'],
  question: 'What color is the circle?',
  answer: 'red',
  verifier: { type: 'vqa' },
  rationale: 'There is one circle. It is red.',
};

describe('SFT targets', () => {
  it('GLM-4.1V thinking form', () => {
    expect(sftTarget(base)).toBe(
      '<think>There is one circle. It is red.</think><answer><|begin_of_box|>red<|end_of_box|></answer>',
    );
    expect(checkFormat(sftTarget(base)).ok).toBe(true);
  });
  it('/nothink keeps the answer with empty thinking and marks the prompt', () => {
    expect(sftTarget(base, { thinking: false })).toBe(
      '<think></think><answer><|begin_of_box|>red<|end_of_box|></answer>',
    );
    expect(promptText(base, { thinking: false })).toBe('What color is the circle?/nothink');
    expect(promptText({ ...base, question: 'Q/nothink' }, { thinking: false })).toBe('Q/nothink');
  });
  it('GLM-4.5V form drops the answer tags', () => {
    expect(sftTarget(base, { style: 'glm45v' })).toBe(
      '<think>There is one circle. It is red.</think>\n<|begin_of_box|>red<|end_of_box|>',
    );
  });
  it('refuses targets that would break the format', () => {
    expect(() => sftTarget({ ...base, rationale: undefined })).toThrow(/x\/train\/1 has no rationale/);
    expect(() => sftTarget({ ...base, rationale: 'a </think> b' })).toThrow(/think\/answer tags/);
    expect(() => sftTarget({ ...base, answer: '<|begin_of_box|>1' })).toThrow(/box tokens/);
  });
  it('names the one spelling of the answer styles when given another', () => {
    const old = 'glm4.1v' as unknown as 'glm41v';
    expect(() => sftTarget(base, { style: old })).toThrow('sftTarget: style must be glm41v or glm45v, got "glm4.1v"');
  });
});

describe('multiple choice', () => {
  const mcq: Sample = {
    ...base,
    options: ['blue', 'red', 'green'],
    answer: 'B',
    verifier: { type: 'multiple_choice' },
    rationale: 'It is red. That is option B.',
    meta: { blank: { answer: 'red', verifier: { type: 'vqa' } } },
  };
  it('prompts list lettered options', () => {
    expect(promptText(mcq)).toBe('What color is the circle?\nA. blue\nB. red\nC. green');
  });
  it('converts to fill-in-the-blank with the recorded verifier', () => {
    const b = toFillInBlank(mcq)!;
    expect(b.options).toBeUndefined();
    expect(b.answer).toBe('red');
    expect(b.verifier).toEqual({ type: 'vqa' });
    expect(b.rationale).toBe('It is red.');
    expect(b.id).toBe('x/train/1#blank');
  });
  it('uses the option text when nothing was recorded, and refuses non-unique options', () => {
    expect(toFillInBlank({ ...mcq, meta: undefined })!.answer).toBe('red');
    expect(toFillInBlank({ ...mcq, options: ['red', 'red', 'x'], answer: 'A' })).toBeNull();
    expect(toFillInBlank({ ...mcq, answer: 'E' })).toBeNull();
    expect(toFillInBlank(base)).toBe(base);
  });
});

const mcSample: Sample = {
  id: 'x/train/1',
  domain: 'vqa',
  source: 'x',
  split: 'train',
  images: ['a.png', 'b.png'],
  question: 'Which is red?',
  options: ['circle', 'square'],
  answer: 'A',
  verifier: { type: 'multiple_choice' },
};

describe('sampleMessage', () => {
  it('images first, then the question with lettered options; /nothink when thinking is off', () => {
    const m = sampleMessage(mcSample);
    expect(m.role).toBe('user');
    const parts = m.content as { type: string; text?: string }[];
    expect(parts.map((p) => p.type)).toEqual(['image', 'image', 'text']);
    const text = parts[2]!.text!;
    expect(text).toMatch(/^Which is red\?/);
    expect(text).toMatch(/A\. circle/);
    expect(text).toMatch(/B\. square/);
    expect(text.endsWith('/nothink')).toBe(false);
    const off = sampleMessage(mcSample, { thinking: false }).content as { type: string; text?: string }[];
    expect(off.at(-1)!.text!.endsWith('/nothink')).toBe(true);
  });

  it('a video comes as its path, or as frames with their rate; neither is a clear error', () => {
    const frames = sampleMessage({ ...mcSample, images: [], video: { frames: ['f0.png', 'f1.png'], fps: 2 } });
    expect((frames.content as unknown[])[0]).toEqual({
      type: 'video',
      video: { frames: ['f0.png', 'f1.png'], fps: 2 },
    });
    const path = sampleMessage({ ...mcSample, images: [], video: { path: 'clip.mp4' } });
    expect((path.content as unknown[])[0]).toEqual({ type: 'video', video: 'clip.mp4' });
    expect(() => sampleMessage({ ...mcSample, images: [], video: {} })).toThrow(
      /x\/train\/1: video has neither path nor frames/,
    );
  });
});
