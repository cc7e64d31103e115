import { describe, expect, it } from 'vitest';
import { generalVerifier } from '../../../src/reward/verifiers/general.js';
import { longDocVerifier } from '../../../src/reward/verifiers/long_doc.js';
import { parseTemporal, parseTime, videoVerifier } from '../../../src/reward/verifiers/video.js';
import { verify } from '../helpers.js';

const video = { domain: 'video' as const };

describe('video verifier', () => {
  it('parses times and spans', () => {
    expect(parseTime('1:23.5')).toBe(83.5);
    expect(parseTime('0:01:23')).toBe(83);
    expect(parseTime('12s')).toBe(12);
    expect(parseTemporal('[3.0, 7.5]')).toEqual({ span: [3, 7.5] });
    expect(parseTemporal('from 3s to 7.5s')).toEqual({ span: [3, 7.5] });
    expect(parseTemporal('7 to 3')).toBeNull();
  });
  it('times within tolerance, spans by temporal IoU', async () => {
    expect((await verify(videoVerifier, '12.8s', { ...video, answer: '12s' })).correct).toBe(true);
    expect((await verify(videoVerifier, '14s', { ...video, answer: '12s' })).correct).toBe(false);
    expect((await verify(videoVerifier, 'around 12s', { ...video, answer: '12s' })).correct).toBe(false);
    expect((await verify(videoVerifier, '[3, 8]', { ...video, answer: '[3.0, 7.5]' })).correct).toBe(true);
    expect((await verify(videoVerifier, '[0, 20]', { ...video, answer: '[3.0, 7.5]' })).correct).toBe(false);
    const cont = await verify(videoVerifier, '[3, 6]', { ...video, answer: '[3.0, 7.5]' }, { spanReward: 'iou' });
    expect(cont.score).toBeCloseTo(3 / 4.5);
  });
  it('non-temporal answers use options or text', async () => {
    expect((await verify(videoVerifier, 'A', { ...video, answer: 'A', options: ['run', 'walk'] })).correct).toBe(true);
    expect((await verify(videoVerifier, 'a dog', { ...video, answer: 'dog' })).correct).toBe(true);
  });
});

describe('long_doc numbers', () => {
  it('a numeric reference is decided by rule: wrong numbers and hedges are confident failures', async () => {
    const doc = { domain: 'long_doc' as const, answer: '3' };
    expect(await verify(longDocVerifier, '2', doc)).toMatchObject({ correct: false, confident: true });
    expect((await verify(longDocVerifier, 'three', doc)).correct).toBe(true);
    expect(await verify(longDocVerifier, '2 or 3', doc)).toMatchObject({ correct: false, confident: true });
  });
});

describe('judge-only verifiers', () => {
  it('exact matches pass; anything else without a judge is unjudged, never a silent 0', async () => {
    expect((await verify(longDocVerifier, 'Paris', { domain: 'long_doc', answer: 'paris' })).correct).toBe(true);
    expect(
      await verify(longDocVerifier, 'The capital is Paris', { domain: 'long_doc', answer: 'Paris' }),
    ).toMatchObject({
      status: 'unjudged',
      confident: false,
    });
    expect(await verify(generalVerifier, 'A fine poem', { domain: 'text', answer: 'Roses' })).toMatchObject({
      status: 'unjudged',
    });
    expect(generalVerifier.boxed).toBe(false);
  });
});
