import { describe, expect, it } from 'vitest';
import {
  anls,
  bootstrapCI,
  circularGroups,
  exactMatch,
  iouHit,
  meanSd,
  normalizedLevenshtein,
  ocrbenchScore,
  pairedBootstrapDiff,
  quantile,
  relaxedAccuracy,
  relaxedCorrectness,
  rotateChoices,
  vqaNormalize,
  vqaScore,
  xywhToXyxy,
} from '../../src/eval/metrics.js';
import { pointInBox } from '../../src/io/answer/geometry.js';

describe('meanSd', () => {
  it('mean and sample standard deviation, hand-computed', () => {
    // 2, 4, 9: mean 5, squared deviations 9 + 1 + 16 = 26, / (3 − 1) = 13
    const r = meanSd([2, 4, 9]);
    expect(r.mean).toBe(5);
    expect(r.sd).toBeCloseTo(Math.sqrt(13), 12);
    expect(meanSd([0.25])).toEqual({ mean: 0.25, sd: 0 });
    expect(Number.isNaN(meanSd([]).mean)).toBe(true);
  });
});

describe('ANLS', () => {
  it('hand-computed cases (paper convention)', () => {
    expect(anls('hello  World ', ['Hello World'])).toBe(1);
    // one substitution in 4 characters: NL 0.25
    expect(anls('stoo', ['stop'])).toBeCloseTo(0.75, 12);
    // NL exactly 0.5 is not below τ: 0 in the paper's definition
    expect(anls('13', ['12'])).toBe(0);
    expect(anls('xyz', ['abc'])).toBe(0);
    // best ground truth wins: "aple" vs "apple" is 1 deletion in 5
    expect(anls('aple', ['pear', 'apple'])).toBeCloseTo(0.8, 12);
    expect(anls('', [''])).toBe(1);
  });

  it('harness convention keeps NL = 0.5 and measures raw lengths', () => {
    expect(anls('13', ['12'], { convention: 'harness' })).toBe(0.5);
    // raw pred "ac  " has length 4: NL = 1/4
    expect(normalizedLevenshtein('ab', 'ac  ', 'harness')).toBe(0.25);
    expect(normalizedLevenshtein('ab', 'ac  ', 'paper')).toBe(0.5);
    expect(anls('ac  ', ['ab'], { convention: 'harness' })).toBe(0.75);
  });

  it('a custom threshold and an empty answer list', () => {
    expect(anls('stoo', ['stop'], { threshold: 0.2 })).toBe(0);
    expect(() => anls('x', [])).toThrow(/at least one ground-truth/);
  });
});

describe('VQA score', () => {
  const ten = (k: number, ans: string) => [...Array(k).fill(ans), ...Array(10 - k).fill('other')];
  it('leave-one-out averaging: 1, 2, 3, 4 matching annotators give 0.3, 0.6, 0.9, 1', () => {
    expect(vqaScore('cat', ten(1, 'cat'))).toBeCloseTo(0.3, 12);
    expect(vqaScore('cat', ten(2, 'cat'))).toBeCloseTo(0.6, 12);
    expect(vqaScore('cat', ten(3, 'cat'))).toBeCloseTo(0.9, 12);
    expect(vqaScore('cat', ten(4, 'cat'))).toBe(1);
    expect(vqaScore('dog', ten(4, 'cat'))).toBe(0);
  });

  it('official normalisation: numbers, articles, punctuation, contractions', () => {
    expect(vqaNormalize('Two')).toBe('2');
    expect(vqaNormalize('The cat.')).toBe('cat');
    expect(vqaNormalize('dont')).toBe("don't");
    expect(vqaNormalize('yes!')).toBe('yes');
    expect(vqaNormalize('3,000')).toBe('3000');
    expect(vqaNormalize('1.5')).toBe('1.5');
    expect(vqaNormalize('black-and-white')).toBe('black and white');
    expect(vqaNormalize('x - y')).toBe('x y');
    expect(vqaNormalize('a\tdog\n')).toBe('dog');
    // normalised prediction matches normalised annotators
    expect(vqaScore('Two.', ten(3, 'two'))).toBeCloseTo(0.9, 12);
  });
});

describe('ChartQA relaxed accuracy', () => {
  it('5% relative change, percent as a fraction, zero target compares text', () => {
    expect(relaxedCorrectness('42', '40')).toBe(true); // exactly 5%
    expect(relaxedCorrectness('43', '40')).toBe(false); // 7.5%
    expect(relaxedCorrectness('12%', '0.12')).toBe(true);
    expect(relaxedCorrectness(' 0.119 ', '12%')).toBe(true);
    expect(relaxedCorrectness('0', '0')).toBe(true);
    expect(relaxedCorrectness('0.0', '0')).toBe(false); // target 0: exact string
    expect(relaxedCorrectness('Yes', 'yes')).toBe(true);
    expect(relaxedCorrectness('1,000', '1000')).toBe(false); // "1,000" is not a float: text compare
    expect(relaxedAccuracy('2019', ['2018', '2019'])).toBe(1);
    expect(relaxedAccuracy('2021', ['2018'])).toBe(1); // years are numbers here: 0.15% off
  });
});

describe('OCRBench, exact match', () => {
  it('containment, case-insensitive; formulas ignore spaces', () => {
    expect(ocrbenchScore('The sign says HELLO world', ['hello'])).toBe(1);
    expect(ocrbenchScore('goodbye', ['hello', 'bye'])).toBe(1);
    expect(ocrbenchScore('x ^ 2', ['x^2'])).toBe(0);
    expect(ocrbenchScore('x ^ 2', ['x^2'], 'Handwritten Mathematical Expression Recognition')).toBe(1);
    expect(exactMatch(' Paris ', ['paris'])).toBe(1);
    expect(exactMatch('Paris', ['paris'], true)).toBe(0);
  });
});

describe('grounding', () => {
  it('IoU ≥ 0.5 and point in box', () => {
    // [0,0,10,10] vs [5,0,15,10]: intersection 50, union 150
    expect(iouHit([0, 0, 10, 10], [5, 0, 15, 10])).toEqual({ iou: 1 / 3, hit: false });
    // [0,0,10,10] vs [0,0,10,20]: 100 / 200
    expect(iouHit([0, 0, 10, 10], [0, 0, 10, 20]).hit).toBe(true);
    expect(pointInBox([10, 10], [0, 0, 10, 10])).toBe(true);
    expect(pointInBox([10.01, 5], [0, 0, 10, 10])).toBe(false);
    expect(xywhToXyxy([10, 20, 5, 5])).toEqual([10, 20, 15, 25]);
    expect(xywhToXyxy([10, 20, 5, 5], true)).toEqual([10, 20, 14, 24]);
  });
});

describe('circular MCQ', () => {
  it('rotations move the answer letter; a group is right only if all copies are', () => {
    expect(rotateChoices(['a', 'b', 'c', 'd'], 'C', 1)).toEqual({ options: ['b', 'c', 'd', 'a'], answer: 'B' });
    expect(rotateChoices(['a', 'b', 'c', 'd'], 'A', 1)).toEqual({ options: ['b', 'c', 'd', 'a'], answer: 'D' });
    expect(rotateChoices(['a', 'b'], 'B', 2)).toEqual({ options: ['a', 'b'], answer: 'B' });
    expect(() => rotateChoices(['a', 'b'], 'C', 1)).toThrow(/letter A–B/);
    const g = circularGroups([
      { group: 'q1', score: 1 },
      { group: 'q2', score: 1 },
      { group: 'q1', score: 1 },
      { group: 'q2', score: 0 },
    ]);
    expect(g).toEqual([
      { group: 'q1', score: 1, size: 2 },
      { group: 'q2', score: 0, size: 2 },
    ]);
  });
});

describe('bootstrap', () => {
  it('constant data gives a point interval; results are seeded', () => {
    expect(bootstrapCI([1, 1, 1])).toEqual({ low: 1, high: 1 });
    const xs = Array.from({ length: 50 }, (_, i) => (i % 3 === 0 ? 1 : 0));
    expect(bootstrapCI(xs, { seed: 7 })).toEqual(bootstrapCI(xs, { seed: 7 }));
    expect(Number.isNaN(bootstrapCI([]).low)).toBe(true);
  });

  it('a fair coin of 400 draws: width near 2·1.96·sqrt(.25/400) ≈ 0.098', () => {
    const xs = Array.from({ length: 400 }, (_, i) => i % 2);
    const ci = bootstrapCI(xs, { samples: 2000, seed: 1 });
    expect(ci.low).toBeLessThan(0.5);
    expect(ci.high).toBeGreaterThan(0.5);
    expect(ci.high - ci.low).toBeGreaterThan(0.085);
    expect(ci.high - ci.low).toBeLessThan(0.11);
  });

  it('paired differences and quantiles', () => {
    expect(pairedBootstrapDiff([1, 0, 1], [1, 0, 1])).toEqual({ diff: 0, low: 0, high: 0 });
    const d = pairedBootstrapDiff([1, 1, 1, 1], [0, 0, 0, 0]);
    expect(d).toEqual({ diff: 1, low: 1, high: 1 });
    expect(() => pairedBootstrapDiff([1], [1, 2])).toThrow(/equal length/);
    expect(quantile([0, 10], 0.25)).toBe(2.5);
    expect(() => bootstrapCI([1], { level: 1 })).toThrow(/level/);
  });
});
