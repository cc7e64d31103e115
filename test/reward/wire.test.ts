import { describe, expect, it } from 'vitest';
import { floatJson, floatLiteral } from '../../src/reward/wire.js';

describe('floatJson', () => {
  it('writes numbers under reward keys as float literals that parse back to the same values', () => {
    const body = {
      rewards: [1, 0, -1, 0.25, 1e21, -0],
      n: 3,
      extra_logs: { correct: [1, 0], nested: { x: 2 } },
      results: [{ score: 1, ms: 4, status: 'ok' }],
      reward: Number.NaN,
    };
    const text = floatJson(body);
    expect(text).toBe(
      '{"rewards":[1.0,0.0,-1.0,0.25,1e+21,0.0],"n":3,"extra_logs":{"correct":[1.0,0.0],"nested":{"x":2.0}},' +
        '"results":[{"score":1.0,"ms":4,"status":"ok"}],"reward":null}',
    );
    expect(JSON.parse(text)).toEqual(JSON.parse(JSON.stringify(body)));
  });
  it('keeps JSON.stringify semantics otherwise', () => {
    const v = { a: undefined, b: [undefined, () => 1], d: new Date(0), s: 'x"y', t: true, z: null };
    expect(floatJson(v)).toBe(JSON.stringify(v));
    expect(floatLiteral(3)).toBe('3.0');
    expect(floatLiteral(Number.POSITIVE_INFINITY)).toBe('null');
  });
});
