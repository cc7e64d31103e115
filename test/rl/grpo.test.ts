import { describe, expect, it } from 'vitest';
import { fromArray, noGrad, scope, type Tensor } from '../../src/engine/index.js';
import {
  aggNorm,
  aggregationWeights,
  DEFAULT_LOSS,
  groupAdvantages,
  klEstimate,
  klValue,
  type PolicyLossConfig,
  policyLoss,
  unbiasedStd,
} from '../../src/rl/grpo.js';
import { ToyPolicy } from '../../src/rl/toy.js';
import type { PolicyItem } from '../../src/rl/types.js';
import { maxRelDiff } from '../helpers/close.js';

const leaf = (vals: number[], shape: number[]): Tensor => fromArray(Float32Array.from(vals), shape).requireGrad();

describe('group advantages', () => {
  it('normalises by the group mean and the unbiased std', () => {
    // mean 0.25; unbiased std sqrt((0.5625 + 3·0.0625)/3) = 0.5
    const [a] = groupAdvantages([[1, 0, 0, 0]]);
    expect(a![0]).toBeCloseTo(1.5, 5);
    for (const x of a!.slice(1)) expect(x).toBeCloseTo(-0.5, 5);
    expect(unbiasedStd([1, 0, 0, 0])).toBeCloseTo(0.5, 12);
  });

  it('without std (Dr.GRPO) subtracts the mean only', () => {
    const [a] = groupAdvantages([[1, 0, 0, 0]], { normStd: false });
    expect(a).toEqual([0.75, -0.25, -0.25, -0.25]);
  });

  it('gives exactly zero to groups with identical rewards and to lone rewards', () => {
    expect(groupAdvantages([[1, 1, 1, 1], [0, 0, 0], [0.3, 0.3], [1]])).toEqual([[0, 0, 0, 0], [0, 0, 0], [0, 0], [0]]);
  });

  it('leaves unusable rewards (null) out of the statistics', () => {
    // usable: 1 and 0 → mean 0.5, std 0.7071
    const [a] = groupAdvantages([[1, null, 0]]);
    expect(a![0]).toBeCloseTo(0.5 / Math.SQRT1_2, 4);
    expect(a![1]).toBe(0);
    expect(a![2]).toBeCloseTo(-0.5 / Math.SQRT1_2, 4);
  });

  it('uses the batch std when asked', () => {
    // batch rewards [1,0,1,1]: mean .75, unbiased std 0.5; group means 0.5 and 1
    const adv = groupAdvantages(
      [
        [1, 0],
        [1, 1],
      ],
      { stdScope: 'batch' },
    );
    expect(adv[0]![0]).toBeCloseTo(1, 5);
    expect(adv[0]![1]).toBeCloseTo(-1, 5);
    expect(adv[1]).toEqual([0, 0]);
  });

  it('RLOO: each reward against the mean of the others', () => {
    const [a] = groupAdvantages([[1, 0, 0, 0]], { estimator: 'rloo' });
    expect(a![0]).toBeCloseTo(1, 12);
    for (const x of a!.slice(1)) expect(x).toBeCloseTo(-1 / 3, 12);
    expect(groupAdvantages([[2, 2, 2]], { estimator: 'rloo' })).toEqual([[0, 0, 0]]);
  });

  it('rejects non-finite rewards with their position', () => {
    expect(() => groupAdvantages([[1, Number.NaN]])).toThrow(/reward \[0\]\[1\]/);
  });
});

describe('aggregation weights', () => {
  const masks = [Uint8Array.from([1, 1, 1]), Uint8Array.from([1, 1])];
  const norm = aggNorm(masks, 4);

  it('counts sequences and tokens', () => {
    expect(norm).toEqual({ seqs: 2, tokens: 5, length: 4 });
  });

  it('token-mean: 1/tokens', () => {
    expect(Array.from(aggregationWeights(masks, 3, 'token-mean', norm))).toEqual(
      [0.2, 0.2, 0.2, 0.2, 0.2, 0].map(Math.fround),
    );
  });

  it('seq-mean-token-mean (per-sample): 1/(n_i · seqs)', () => {
    const w = aggregationWeights(masks, 3, 'seq-mean-token-mean', norm);
    expect(Array.from(w)).toEqual([1 / 6, 1 / 6, 1 / 6, 0.25, 0.25, 0].map(Math.fround));
  });

  it('seq-mean-token-sum: 1/seqs; Dr.GRPO: 1/(seqs · length)', () => {
    expect(Array.from(aggregationWeights(masks, 3, 'seq-mean-token-sum', norm))).toEqual([0.5, 0.5, 0.5, 0.5, 0.5, 0]);
    expect(Array.from(aggregationWeights(masks, 3, 'seq-mean-token-sum-norm', norm))).toEqual([
      0.125, 0.125, 0.125, 0.125, 0.125, 0,
    ]);
  });

  it('excludes inserted tokens (mask 0) from counts and weights', () => {
    const m = [Uint8Array.from([1, 0, 1]), Uint8Array.from([0, 0])];
    const n = aggNorm(m, 3);
    expect(n).toEqual({ seqs: 1, tokens: 2, length: 3 });
    expect(Array.from(aggregationWeights(m, 3, 'seq-mean-token-mean', n))).toEqual([0.5, 0, 0.5, 0, 0, 0]);
  });

  it('rejects unknown modes', () => {
    expect(() => aggregationWeights(masks, 3, 'mean' as never, norm)).toThrow(/token-mean, seq-mean-token-mean/);
  });
});

describe('clipped surrogate', () => {
  // Row 0: A = +1, ratios 1, 1.5, 0.5. Row 1: A = −1, ratios 0.5, 2, 4.
  const ratios = [1, 1.5, 0.5, 0.5, 2, 4];
  const old = new Float32Array(6).fill(-1);
  const cur = () =>
    leaf(
      ratios.map((r) => Math.log(r) - 1),
      [2, 3],
    );
  const adv = Float32Array.from([1, -1]);
  const w = new Float32Array(6).fill(1 / 6);

  function run(cfg: Partial<PolicyLossConfig>) {
    const lp = cur();
    const { loss, stats } = policyLoss(
      { logprobs: lp, oldLogprobs: old, advantages: adv, weights: w },
      { ...DEFAULT_LOSS, ...cfg },
    );
    loss.backward();
    return { loss: loss.item(), grad: lp.grad!.toArray(), stats };
  }

  it('clips above at 1 + ε_high for positive advantages and below at 1 − ε_low for negative ones', () => {
    const { loss, grad, stats } = run({});
    // Per-token losses: A>0: −r unless r > 1.28 → −1.28; A<0: r unless r < 0.8 → 0.8.
    const tok = [-1, -1.28, -0.5, 0.8, 2, 4];
    expect(loss).toBeCloseTo(tok.reduce((a, b) => a + b) / 6, 5);
    // d/dlogp of −A·r is −A·r·w where unclipped, 0 where the clip is active.
    const g = [-1 / 6, 0, -0.5 / 6, 0, 2 / 6, 4 / 6];
    for (const [i, x] of grad.entries()) expect(x).toBeCloseTo(g[i]!, 5);
    expect(stats.clipHigh).toBe(1);
    expect(stats.clipLow).toBe(1);
    expect(stats.tokens).toBe(6);
    expect(stats.ratioMax).toBeCloseTo(4, 4);
  });

  it('symmetric clip 0.2/0.2 clips the 1.5 ratio at 1.2', () => {
    const { loss } = run({ clipHigh: 0.2 });
    expect(loss).toBeCloseTo((-1 - 1.2 - 0.5 + 0.8 + 2 + 4) / 6, 5);
  });

  it('dual-clip bounds negative-advantage tokens at −A·c and stops their gradient', () => {
    const { loss, grad, stats } = run({ dualClip: 3 });
    expect(loss).toBeCloseTo((-1 - 1.28 - 0.5 + 0.8 + 2 + 3) / 6, 5);
    expect(grad[5]).toBeCloseTo(0, 7);
    expect(grad[4]).toBeCloseTo(2 / 6, 5);
    expect(stats.dualClip).toBe(1);
  });

  it('a zero advantage gives exactly zero gradient', () => {
    const lp = cur();
    const { loss } = policyLoss(
      { logprobs: lp, oldLogprobs: old, advantages: Float32Array.from([0, 0]), weights: w },
      DEFAULT_LOSS,
    );
    loss.backward();
    expect(lp.grad!.toArray().every((x) => x === 0)).toBe(true);
  });

  it('adds β·KL (k3 against the reference) and subtracts c·entropy', () => {
    const lp = leaf([-1, -2], [1, 2]);
    const ent = leaf([0.5, 1.5], [1, 2]);
    const ref = Float32Array.from([-1.5, -2]);
    const { loss, stats } = policyLoss(
      {
        logprobs: lp,
        oldLogprobs: Float32Array.from([-1, -2]),
        advantages: Float32Array.from([0]),
        weights: Float32Array.from([0.5, 0.5]),
        refLogprobs: ref,
        entropy: ent,
      },
      { ...DEFAULT_LOSS, klCoef: 0.1, entropyCoef: 0.01 },
    );
    const k3 = Math.exp(-0.5) + 0.5 - 1; // d = 0.5 on the first token, 0 on the second
    expect(stats.klLoss).toBeCloseTo((0.1 * k3) / 2, 6);
    expect(stats.entropyLoss).toBeCloseTo(-0.01, 6);
    expect(loss.item()).toBeCloseTo((0.1 * k3) / 2 - 0.01, 6);
    loss.backward();
    // dk3/dlogp = 1 − exp(−d)
    expect(lp.grad!.toArray()[0]).toBeCloseTo((0.1 * (1 - Math.exp(-0.5))) / 2, 6);
    expect(ent.grad!.toArray()).toEqual([-0.005, -0.005].map(Math.fround));
  });

  it('GSPO: one clipped ratio per sequence (exp of the mean token log-ratio), its gradient on every token', () => {
    // Row 0 (A = +1): log-ratios ln 1.5 and 0 → s = √1.5 ≈ 1.2247, inside (0.8, 1.28): loss −s per token.
    // Row 1 (A = −1): log-ratios ln 0.5 twice → s = 0.5 < 0.8: clipped, constant 0.8, no gradient.
    const lp = leaf([Math.log(1.5) - 1, -1, Math.log(0.5) - 1, Math.log(0.5) - 1], [2, 2]);
    const w = new Float32Array(4).fill(0.25);
    const { loss, stats } = policyLoss(
      { logprobs: lp, oldLogprobs: new Float32Array(4).fill(-1), advantages: Float32Array.from([1, -1]), weights: w },
      { ...DEFAULT_LOSS, importanceLevel: 'sequence' },
    );
    const s = Math.sqrt(1.5);
    expect(loss.item()).toBeCloseTo((-2 * s + 2 * 0.8) / 4, 5);
    loss.backward();
    const g = lp.grad!.toArray();
    expect(g[0]).toBeCloseTo(-s / 4, 5);
    expect(g[1]).toBeCloseTo(-s / 4, 5);
    expect(g[2]).toBe(0);
    expect(g[3]).toBe(0);
    expect(stats.clipLow).toBe(2);
  });

  it('validates its inputs', () => {
    expect(() =>
      policyLoss({ logprobs: cur(), oldLogprobs: new Float32Array(5), advantages: adv, weights: w }, DEFAULT_LOSS),
    ).toThrow(/oldLogprobs has 5 values, expected 6/);
    expect(() =>
      policyLoss({ logprobs: cur(), oldLogprobs: old, advantages: adv, weights: w }, { ...DEFAULT_LOSS, dualClip: 1 }),
    ).toThrow(/dualClip/);
    expect(() =>
      policyLoss({ logprobs: cur(), oldLogprobs: old, advantages: adv, weights: w }, { ...DEFAULT_LOSS, klCoef: 0.1 }),
    ).toThrow(/refLogprobs/);
  });
});

describe('KL estimators', () => {
  it('k1, k2, k3 by hand', () => {
    expect(klValue(-1, -1.5, 'k1')).toBeCloseTo(0.5, 12);
    expect(klValue(-1, -1.5, 'k2')).toBeCloseTo(0.125, 12);
    expect(klValue(-1, -1.5, 'k3')).toBeCloseTo(Math.exp(-0.5) - 0.5, 12);
    expect(klValue(-1, -1, 'k3')).toBe(0);
    const t = noGrad(() =>
      klEstimate(
        fromArray(Float32Array.from([-1, -3]), [2]),
        fromArray(Float32Array.from([-1.5, -1]), [2]),
        'k3',
      ).toArray(),
    );
    expect(t[0]).toBeCloseTo(Math.exp(-0.5) - 0.5, 6);
    expect(t[1]).toBeCloseTo(Math.exp(2) - 3, 5);
  });
});

describe('with a real policy', () => {
  const policy = ToyPolicy.create({ dim: 16, layers: 1, heads: 2, maxLen: 24 }, 3);
  const c = policy.codec;
  const prompt = { ids: Int32Array.from(c.encode('<|user|>seven<|assistant|>')) };
  const resp = (t: string) => Int32Array.from(c.encode(t));
  const items: PolicyItem[] = [
    { prompt, response: resp('<think>..</think><answer>7') },
    { prompt, response: resp('<think></think><answer>3') },
    { prompt: { ids: Int32Array.from(c.encode('<|user|>1+2<|assistant|>')) }, response: resp('<think>.</think>') },
    { prompt, response: resp('<think>...</think><answer>77') },
  ];
  const masks = items.map((it) => new Uint8Array(it.response.length).fill(1));
  masks[0]![2] = 0; // an inserted token

  const gradOf = (chunks: number[][], mode: 'seq-mean-token-mean' | 'token-mean') =>
    scope(() => {
      policy.model.zeroGrad();
      const norm = aggNorm(masks, 16);
      const old = noGrad(() => policy.logProbs(items).logprobs.toFloat32());
      const T = Math.max(...items.map((i) => i.response.length));
      for (const idx of chunks) {
        const sub = idx.map((i) => items[i]!);
        const out = policy.logProbs(sub);
        const t = out.logprobs.shape[1]!;
        const o = new Float32Array(sub.length * t);
        for (const [b, i] of idx.entries()) o.set(old.subarray(i * T, i * T + items[i]!.response.length), b * t);
        policyLoss(
          {
            logprobs: out.logprobs,
            oldLogprobs: o,
            advantages: Float32Array.from(idx, (i) => [1.2, -0.4, 0.7, -1.5][i]!),
            weights: aggregationWeights(
              idx.map((i) => masks[i]!),
              t,
              mode,
              norm,
            ),
          },
          DEFAULT_LOSS,
        ).loss.backward();
      }
      return policy.parameters().map((p) => Float32Array.from(p.grad!.toFloat32()));
    });

  it('micro-batches sum to the full mini-batch gradient (to float32 rounding)', () => {
    for (const mode of ['seq-mean-token-mean', 'token-mean'] as const) {
      const full = gradOf([[0, 1, 2, 3]], mode);
      const split = gradOf([[0, 2], [3], [1]], mode);
      // The same terms summed in another order: equal up to rounding relative to the gradient's scale (an absolute
      // 5e-7 failed by 5.4e-7 on AVX-512 CPUs whose GEMM kernels order the sums differently).
      for (const [i, g] of full.entries()) {
        expect(g.some((x) => x !== 0)).toBe(true);
        expect(maxRelDiff(split[i]!, g), `parameter ${i} (${mode})`).toBeLessThan(1e-5);
      }
    }
  });

  it('groups with identical rewards contribute no gradient at all', () => {
    const adv = groupAdvantages([[1, 1, 1, 1]])[0]!;
    scope(() => {
      policy.model.zeroGrad();
      const out = policy.logProbs(items);
      const T = out.logprobs.shape[1]!;
      const old = noGrad(() => out.logprobs.toFloat32());
      policyLoss(
        {
          logprobs: out.logprobs,
          oldLogprobs: old,
          advantages: Float32Array.from(adv),
          weights: aggregationWeights(masks, T, 'seq-mean-token-mean', aggNorm(masks, 16)),
        },
        DEFAULT_LOSS,
      ).loss.backward();
      for (const p of policy.parameters()) expect(p.grad!.toArray().every((x) => x === 0)).toBe(true);
    });
  });
});
