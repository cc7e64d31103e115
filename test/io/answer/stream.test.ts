import { describe, expect, it } from 'vitest';
import { ThinkStreamSplitter } from '../../../src/io/answer/stream.js';

const B = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;

describe('ThinkStreamSplitter', () => {
  const full = `<think>step one</think><answer>It is ${B('4')}</answer>`;

  function run(chunks: string[], opts = {}) {
    const s = new ThinkStreamSplitter(opts);
    let reasoning = '';
    let content = '';
    for (const c of chunks) {
      const d = s.push(c);
      expect(d.reasoning + d.content).not.toMatch(/<\/?thi|<\/th/);
      reasoning += d.reasoning;
      content += d.content;
    }
    const d = s.end();
    return { reasoning: reasoning + d.reasoning, content: content + d.content, s };
  }

  it('gives the same result for every chunking, tags split anywhere', () => {
    for (let size = 1; size <= full.length; size++) {
      const chunks: string[] = [];
      for (let i = 0; i < full.length; i += size) chunks.push(full.slice(i, i + size));
      const r = run(chunks);
      expect(r.reasoning).toBe('step one');
      expect(r.content).toBe(`<answer>It is ${B('4')}</answer>`);
      expect(r.s.reasoningDone).toBe(true);
    }
  });

  it('strips answer tags on request', () => {
    const chars = [...full];
    const r = run(chars, { stripAnswerTags: true });
    expect(r.content).toBe(`It is ${B('4')}`);
  });

  it('no <think>: everything is content; a lone "<" is not swallowed', () => {
    expect(run(['<', 'b>hi'])).toMatchObject({ reasoning: '', content: '<b>hi' });
    expect(run(['<th'])).toMatchObject({ reasoning: '', content: '<th' });
  });

  it('pre-opened thinking and an unclosed think', () => {
    const r = run(['abc</th', 'ink>def'], { startInReasoning: true });
    expect(r).toMatchObject({ reasoning: 'abc', content: 'def' });
    const u = run(['<think>abc </thi'], {});
    expect(u.reasoning).toBe('abc </thi');
    expect(u.s.unclosedThink).toBe(true);
  });
});
