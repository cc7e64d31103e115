import { evaluate as mathjsEvaluate, parse } from 'mathjs';
import { describe, expect, it } from 'vitest';
import { compileNode } from '../../../src/reward/math/evaluate.js';

// Reference: mathjs's own evaluation of the same trees.
const EXPRS = [
  'x^2 + 2*x + 1',
  '(x + 1)^3 / (x - 2)',
  'sqrt(x^2 + 1)',
  'sqrt(x)',
  'sin(x)^2 + cos(x)',
  'tan(x) * sec(x) - csc(x) + cot(x)',
  'exp(2*x) * log(abs(x) + 1)',
  'log(x)',
  'log(8, 2) + log10(1000) + log2(16)',
  'nthRoot(27, 3) + nthRoot(-8, 3)',
  'e^(i*pi)',
  'x^(1/3)',
  '(-x)^2.5',
  'asin(0.5) + acos(0.2) + atan(x)',
  'sinh(x) + cosh(x) - tanh(x)',
  'floor(x) + ceil(x)',
  'combinations(10, 3) + factorial(5) + 4!',
  '-x + +x - (-(x))',
];

describe('compileNode', () => {
  it.each(EXPRS)('matches mathjs on %s', (src) => {
    const node = parse(src);
    const f = compileNode(node);
    for (const x of [0.7, -1.3, 2.9]) {
      const want = mathjsEvaluate(src, { x }) as number | { re: number; im: number };
      const got = f({ x });
      const w = typeof want === 'number' ? { re: want, im: 0 } : want;
      if (Number.isNaN(w.re)) {
        expect(Number.isNaN(got.re) || Number.isNaN(got.im)).toBe(true);
        continue;
      }
      expect(got.re).toBeCloseTo(w.re, 9);
      expect(got.im).toBeCloseTo(w.im, 9);
    }
  });

  it('rejects nodes outside the whitelist', () => {
    expect(() => compileNode(parse('ones(3)'))).toThrow(/unsupported function/);
    expect(() => compileNode(parse('[1, 2]'))).toThrow(/unsupported node/);
  });
});
