import { describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { sampleMessage } from '../../src/io/chat.js';

const base: Sample = {
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
    const m = sampleMessage(base);
    expect(m.role).toBe('user');
    const parts = m.content as { type: string; text?: string }[];
    expect(parts.map((p) => p.type)).toEqual(['image', 'image', 'text']);
    const text = parts[2]!.text!;
    expect(text).toMatch(/^Which is red\?/);
    expect(text).toMatch(/A\. circle/);
    expect(text).toMatch(/B\. square/);
    expect(text.endsWith('/nothink')).toBe(false);
    const off = sampleMessage(base, { thinking: false }).content as { type: string; text?: string }[];
    expect(off.at(-1)!.text!.endsWith('/nothink')).toBe(true);
  });

  it('a video comes as its path, or as frames with their rate; neither is a clear error', () => {
    const frames = sampleMessage({ ...base, images: [], video: { frames: ['f0.png', 'f1.png'], fps: 2 } });
    expect((frames.content as unknown[])[0]).toEqual({
      type: 'video',
      video: { frames: ['f0.png', 'f1.png'], fps: 2 },
    });
    const path = sampleMessage({ ...base, images: [], video: { path: 'clip.mp4' } });
    expect((path.content as unknown[])[0]).toEqual({ type: 'video', video: 'clip.mp4' });
    expect(() => sampleMessage({ ...base, images: [], video: {} })).toThrow(
      /x\/train\/1: video has neither path nor frames/,
    );
  });
});
