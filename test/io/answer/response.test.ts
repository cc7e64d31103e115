import { describe, expect, it } from 'vitest';
import { parseResponse } from '../../../src/io/answer/response.js';

const B = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;

describe('parseResponse', () => {
  it('combines split, format and extraction', () => {
    const r = parseResponse(`<think>r</think><answer>${B('x=1')}</answer>`);
    expect(r.answer).toBe('x=1');
    expect(r.format.ok).toBe(true);
    expect(r.reasoning).toBe('r');
  });
  // 200k near-miss closing tags: a quadratic scan would not finish, so the test timeout is a generous hang guard
  // rather than a timed assertion.
  it('a giant response is parsed in linear time', () => {
    const big = `<think>${'</think'.repeat(200_000)}</think><answer>${B('1')}</answer>`;
    const r = parseResponse(big);
    expect(r.answer).toBe('1');
  }, 30_000);
});
