import { describe, expect, it } from 'vitest';
import { maxWeightAssignment } from '../../../src/reward/hungarian.js';
import { groundingVerifier } from '../../../src/reward/verifiers/grounding.js';
import { verify } from '../helpers.js';

function bruteForce(w: number[][]): number {
  const rows = w.length;
  const cols = w[0]!.length;
  let best = 0;
  const used = new Array(cols).fill(false);
  const rec = (i: number, acc: number) => {
    if (i === rows) {
      best = Math.max(best, acc);
      return;
    }
    rec(i + 1, acc);
    for (let j = 0; j < cols; j++)
      if (!used[j]) {
        used[j] = true;
        rec(i + 1, acc + w[i]![j]!);
        used[j] = false;
      }
  };
  rec(0, 0);
  return best;
}

describe('Hungarian assignment', () => {
  it('matches brute force on random matrices', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 16807) % 2147483647;
      return seed / 2147483647;
    };
    for (let t = 0; t < 40; t++) {
      const rows = 1 + Math.floor(rnd() * 5);
      const cols = 1 + Math.floor(rnd() * 5);
      const w = Array.from({ length: rows }, () => Array.from({ length: cols }, () => Math.round(rnd() * 100) / 10));
      const a = maxWeightAssignment(w);
      const total = a.reduce((s, j, i) => s + (j >= 0 ? w[i]![j]! : 0), 0);
      expect(total).toBeCloseTo(bruteForce(w));
      const cols_ = a.filter((j) => j >= 0);
      expect(new Set(cols_).size).toBe(cols_.length);
    }
  });
});

describe('grounding verifier', () => {
  const g = { domain: 'grounding' as const, answer: '[[100,100,200,200],[500,500,600,700]]' };
  it('matches boxes one to one in any bracket style', async () => {
    expect(await verify(groundingVerifier, '(505,498,602,699) and <98,101,199,203>', g)).toMatchObject({
      score: 1,
      correct: true,
    });
    expect((await verify(groundingVerifier, '[100,100,200,200]', g)).score).toBe(0.5);
  });
  it('penalises extra, duplicate, invalid and off-target boxes', async () => {
    // The same box twice can match only once.
    expect((await verify(groundingVerifier, '[[100,100,200,200],[100,100,200,200]]', g)).score).toBe(0.5);
    // Spraying boxes: 2 matches over 4 predictions.
    const spray = '[[100,100,200,200],[500,500,600,700],[0,0,50,50],[900,900,950,950]]';
    expect((await verify(groundingVerifier, spray, g)).score).toBe(0.5);
    expect((await verify(groundingVerifier, '[[200,200,100,100],[500,500,600,700]]', g)).reason).toMatch(/inverted/);
    expect((await verify(groundingVerifier, '[[100,100,200,200],[500,500,600,1700]]', g)).score).toBe(0.5);
    expect((await verify(groundingVerifier, 'no idea', g)).path).toBe('grounding:none');
  });
  it('uses the IoU threshold (strictly greater)', async () => {
    const one = { domain: 'grounding' as const, answer: '[0,0,100,100]' };
    // IoU = 50/100 * ... : [0,0,100,50] has IoU exactly 0.5.
    expect((await verify(groundingVerifier, '[0,0,100,50]', one)).score).toBe(0);
    expect((await verify(groundingVerifier, '[0,0,100,50]', one, { iouThreshold: 0.4 })).score).toBe(1);
  });
});
