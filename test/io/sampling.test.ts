import { describe, expect, it } from 'vitest';
import { fromArray, scope } from '../../src/engine/index.js';
import { type GenerateOptions, stepRows } from '../../src/io/generate.js';
import { sampleFromProbs, sampleToken, tokenLogProb } from '../../src/io/sampling.js';
import { Rng } from '../../src/util/rng.js';

describe('sampleToken', () => {
  const logits = Float32Array.from([1, 3, 2, 0.5]);
  it('greedy, top-k 1 and a tiny top-p all pick the argmax', () => {
    const rng = new Rng(1);
    expect(sampleToken(logits, new Set(), {}, rng)).toBe(1);
    for (let i = 0; i < 20; i++) {
      expect(sampleToken(logits, new Set(), { temperature: 1, topK: 1 }, rng)).toBe(1);
      expect(sampleToken(logits, new Set(), { temperature: 1, topP: 0.01 }, rng)).toBe(1);
    }
  });

  it('repetition penalty demotes seen tokens', () => {
    expect(sampleToken(logits, new Set([1]), { repetitionPenalty: 2 }, new Rng(1))).toBe(2);
  });

  it('temperature sampling follows the softmax', () => {
    const rng = new Rng(5);
    const counts = [0, 0, 0, 0];
    const N = 20000;
    for (let i = 0; i < N; i++) counts[sampleToken(logits, new Set(), { temperature: 1 }, rng)]!++;
    const z = [...logits].reduce((a, v) => a + Math.exp(v), 0);
    for (const [i, c] of counts.entries()) expect(Math.abs(c / N - Math.exp(logits[i]!) / z)).toBeLessThan(0.015);
  });

  it('top-p keeps the smallest prefix reaching the mass', () => {
    // softmax ≈ [0.087, 0.644, 0.237, 0.032]: top-p 0.7 keeps tokens 1 and 2 only.
    const rng = new Rng(9);
    const seen = new Set<number>();
    for (let i = 0; i < 2000; i++) seen.add(sampleToken(logits, new Set(), { temperature: 1, topP: 0.7 }, rng));
    expect([...seen].sort()).toEqual([1, 2]);
  });

  it('top-p applies to the renormalised top-k mass (the order of HF generate and vLLM)', () => {
    // Top-2 of softmax [0.644, 0.237, 0.087, 0.032] renormalised: [0.731, 0.269]; top-p 0.7 keeps token 0 alone
    // (over the full distribution 0.644 < 0.7 would keep two).
    const l = Float32Array.from([2, 1, 0, -1]);
    const rng = new Rng(4);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(l, new Set(), { temperature: 1, topK: 2, topP: 0.7 }, rng));
    expect([...seen]).toEqual([0]);
  });

  it('top-p keeps the smallest prefix reaching the mass, at another temperature too', () => {
    // p = [.644, .237, .087, .032]: topP 0.85 keeps tokens 0 and 1 only
    const l = Float32Array.from([2, 1, 0, -1]);
    const rng = new Rng(2);
    const seen = new Set<number>();
    for (let i = 0; i < 500; i++) seen.add(sampleToken(l, new Set(), { temperature: 1, topP: 0.85 }, rng));
    expect([...seen].sort()).toEqual([0, 1]);
    // At temperature 0.5 p = [.865, .117, .016, .002]: topP 0.85 keeps token 0 alone.
    const cold = new Set<number>();
    for (let i = 0; i < 500; i++) cold.add(sampleToken(l, new Set(), { temperature: 0.5, topP: 0.85 }, rng));
    expect([...cold]).toEqual([0]);
  });

  it('draws exactly one random number per sampled token and none when greedy', () => {
    const a = new Rng(11);
    const b = new Rng(11);
    for (let i = 0; i < 10; i++) sampleToken(logits, new Set(), { temperature: 0.7, topP: 0.9 }, a);
    for (let i = 0; i < 10; i++) sampleToken(logits, new Set(), {}, a);
    for (let i = 0; i < 10; i++) b.random();
    expect(a.random()).toBe(b.random());
  });

  it('refuses NaN logits, greedy or sampled', () => {
    const bad = Float32Array.from([0, Number.NaN]);
    expect(() => sampleToken(bad, new Set(), { temperature: 1 }, new Rng(1))).toThrow(/logit 1 is NaN/);
    expect(() => sampleToken(bad, new Set(), {}, new Rng(1))).toThrow(/logit 1 is NaN/);
    expect(() => sampleToken(new Float32Array(0), new Set(), {}, new Rng(1))).toThrow(/empty logits/);
  });
});

describe('tokenLogProb', () => {
  const logits = Float32Array.from([2, 1, 0, -1]);
  const logZ = (t: number) => Math.log([...logits].reduce((a, x) => a + Math.exp(x / t), 0));

  it('is the tempered, untruncated log-softmax, whether or not the sampler just saw the row', () => {
    const rng = new Rng(5);
    const counts = [0, 0, 0, 0];
    const n = 20000;
    for (let i = 0; i < n; i++) {
      const token = sampleToken(logits, new Set(), { temperature: 1 }, rng);
      counts[token]!++;
      expect(tokenLogProb(logits, token)).toBeCloseTo(logits[token]! - logZ(1), 6);
    }
    for (const [i, l] of logits.entries()) expect(counts[i]! / n).toBeCloseTo(Math.exp(l - logZ(1)), 1);
    const t2 = sampleToken(logits, new Set(), { temperature: 2 }, new Rng(1));
    expect(tokenLogProb(logits, t2, 2)).toBeCloseTo(logits[t2]! / 2 - logZ(2), 6);
    // A fresh row (no cached normaliser) gives the same values.
    expect(tokenLogProb(Float32Array.from(logits), 3, 2)).toBeCloseTo(-1 / 2 - logZ(2), 6);
    expect(() => tokenLogProb(logits, 0, 0)).toThrow(/temperature/);
  });
});

describe('plain sampling from engine probabilities (stepRows + sampleFromProbs)', () => {
  const base: GenerateOptions = { maxNewTokens: 1, stopTokenIds: [0] };
  const V = 512;
  const B = 6;
  const rng0 = new Rng(11);
  const raw = Float32Array.from({ length: B * V }, () => (rng0.random() - 0.5) * 12);
  const logits = () => fromArray(raw, [B, 1, V], 'float32');
  const row = (r: number) => raw.subarray(r * V, (r + 1) * V);

  it('draws the token sampleToken draws from the same uniform, but for draws within rounding of a boundary', () => {
    for (const T of [1, 0.6, 1.7]) {
      const rows = scope(() => stepRows(logits(), () => ({ ...base, temperature: T })));
      let same = 0;
      let n = 0;
      for (let r = 0; r < B; r++) {
        const a = new Rng(100 + r);
        const b = new Rng(100 + r);
        for (let i = 0; i < 500; i++, n++)
          if (sampleFromProbs(rows[r]!.probs!, a) === sampleToken(row(r), new Set(), { temperature: T }, b)) same++;
      }
      // float32 probabilities against float64 exps: a differing draw needs the uniform within ~1e-6 of a boundary.
      expect(same / n).toBeGreaterThan(0.999);
    }
  });

  it('gives probabilities and temperature-1 log-probs equal to the float64 reference, per row options', () => {
    const opts = (r: number) =>
      r % 3 === 0
        ? { ...base, temperature: 0.8, returnLogprobs: true }
        : r % 3 === 1
          ? { ...base, temperature: 1, topK: 5 }
          : { ...base, temperature: 0 };
    const rows = scope(() => stepRows(logits(), opts));
    for (let r = 0; r < B; r++) {
      const x = row(r);
      if (r % 3 === 0) {
        expect(rows[r]!.logits).toBeNull();
        const mx = Math.max(...x);
        const z = x.reduce((a, v) => a + Math.exp((v - mx) / 0.8), 0);
        for (let i = 0; i < V; i += 37) {
          expect(rows[r]!.probs![i]).toBeCloseTo(Math.exp((x[i]! - mx) / 0.8) / z, 6);
          expect(rows[r]!.logprobs![i]).toBeCloseTo(tokenLogProb(x, i, 1), 4);
        }
      } else {
        // Top-k and greedy rows keep their logits for the general sampler.
        expect(rows[r]!.probs).toBeNull();
        expect([...rows[r]!.logits!]).toEqual([...x]);
      }
    }
  });

  it('refuses rows whose logits hold NaN', () => {
    const bad = Float32Array.from([0.5, Number.NaN, 1]);
    const rows = scope(() => stepRows(fromArray(bad, [1, 1, 3], 'float32'), () => ({ ...base, temperature: 1 })));
    expect(() => sampleFromProbs(rows[0]!.probs!, new Rng(1))).toThrow(/NaN or infinite/);
  });
});
