/**
 * Edges of the GRPO math found by an independent float64 check (issue 23): KL estimators at extreme log-ratios and
 * Dr.GRPO's scale against verl's `agg_loss`. References are float64 formulas written out here (verl's
 * `kl_penalty` / `agg_loss` definitions), never the code under test.
 */
import { describe, expect, it } from 'vitest';
import { fromArray, type Tensor } from '../../src/engine/index.js';
import { parseRlConfig, toyPreset } from '../../src/rl/config.js';
import {
  aggNorm,
  aggregationWeights,
  DEFAULT_LOSS,
  KL_ESTIMATORS,
  type KlEstimator,
  klEstimate,
  klValue,
  policyLoss,
} from '../../src/rl/grpo.js';

const leaf = (vals: number[], shape: number[]): Tensor => fromArray(Float32Array.from(vals), shape).requireGrad();

/** verl's kl_penalty in float64: value and derivative with respect to d = logp − ref (torch clamp semantics). */
function klRef(d: number, est: KlEstimator): { value: number; grad: number } {
  if (est === 'k1') return { value: d, grad: 1 };
  if (est === 'k2') return { value: 0.5 * d * d, grad: d };
  const raw = -d;
  const kl = Math.min(20, Math.max(-20, raw));
  const kld = Math.exp(kl) - kl - 1;
  const value = Math.min(10, Math.max(-10, kld));
  // torch.clamp passes the gradient where min ≤ x ≤ max and stops it outside.
  const pass = raw >= -20 && raw <= 20 && kld >= -10 && kld <= 10;
  return { value, grad: pass ? 1 - Math.exp(-d) : 0 };
}

const close = (a: number, b: number, rel = 1e-5) =>
  expect(Math.abs(a - b)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(b)));

describe('KL to the reference at extreme log-ratios (d = ±100)', () => {
  // Tokens: d = −100, d = +100, d = 0.5 (all trained, weight 1/3 each), and d ≈ −119.8 on an inserted token (weight
  // 0, the case that used to turn the whole gradient into NaN).
  const logp = [-101, -1, -0.5, -120];
  const ref = [-1, -101, -1, -0.2];
  const mask = Uint8Array.from([1, 1, 1, 0]);
  const A = 0.7;
  const coef = 0.1;

  for (const est of KL_ESTIMATORS)
    it(`${est}: finite loss and gradient, equal to verl's float64 definition`, () => {
      const lp = leaf(logp, [1, 4]);
      const weights = aggregationWeights([mask], 4, 'seq-mean-token-mean', aggNorm([mask], 4));
      const { loss } = policyLoss(
        {
          logprobs: lp,
          oldLogprobs: Float32Array.from(logp), // ratio 1: the surrogate's gradient is −A·w per trained token
          advantages: Float32Array.from([A]),
          weights,
          refLogprobs: Float32Array.from(ref),
        },
        { ...DEFAULT_LOSS, klCoef: coef, klEstimator: est },
      );
      loss.backward();
      const grad = lp.grad!.toArray();
      let lossRef = 0;
      const gradRef = logp.map((x, t) => {
        const w = mask[t] ? 1 / 3 : 0;
        const k = klRef(Math.fround(x - ref[t]!), est);
        lossRef += w * (-A + coef * k.value);
        return w * (-A + coef * k.grad);
      });
      expect(Number.isFinite(loss.item())).toBe(true);
      close(loss.item(), lossRef);
      for (const [t, g] of grad.entries()) {
        expect(Number.isFinite(g)).toBe(true);
        close(g, gradRef[t]!);
      }
      // The inserted token's gradient is exactly zero, not NaN.
      expect(Math.abs(grad[3]!)).toBe(0);
    });

  it('k3 (verl low_var_kl): the tensor and the number estimators equal the float64 clamps around ±20 and ±100', () => {
    const ds = [-100, -20.5, -19.5, -2, 0, 0.5, 19.5, 20.5, 100];
    const lp = fromArray(Float32Array.from(ds), [1, ds.length]);
    const zero = fromArray(new Float32Array(ds.length), [1, ds.length]);
    const t = klEstimate(lp, zero, 'k3').toArray();
    for (const [i, d] of ds.entries()) {
      close(t[i]!, klRef(d, 'k3').value);
      close(klValue(d, 0, 'k3'), klRef(d, 'k3').value, 1e-12);
    }
    // Both ends saturate at the estimate clamp.
    expect(klValue(-100, 0, 'k3')).toBe(10);
    expect(klValue(100, 0, 'k3')).toBe(10);
  });
});

describe("Dr.GRPO's scale (seq-mean-token-sum-norm)", () => {
  const masks = [Uint8Array.from([1, 1, 0]), Uint8Array.from([1, 1, 1])];
  const lossMat = [0.3, -1.2, 9, 0.5, 2, -0.25]; // the padded position holds junk: the mask must drop it
  const L = 8;
  // verl agg_loss: seq_losses = Σ_t loss·mask; loss = Σ seq_losses / L
  const verlLoss = masks.reduce((a, m, b) => a + m.reduce((s, x, t) => s + x * lossMat[b * 3 + t]!, 0), 0) / L;

  const aggregate = (scale: 'paper' | 'verl') => {
    const w = aggregationWeights(masks, 3, 'seq-mean-token-sum-norm', aggNorm(masks, L, scale));
    return w.reduce((a, x, i) => a + x * lossMat[i]!, 0);
  };

  it("verl's scale is Σ_i Σ_t / L, as verl's agg_loss", () => {
    close(aggregate('verl'), verlLoss, 1e-6);
  });

  it('the paper scale (default) is Σ_i Σ_t / (B·L): verl divided by the number of sequences', () => {
    close(aggregate('paper'), verlLoss / 2, 1e-6);
    const def = aggregationWeights(masks, 3, 'seq-mean-token-sum-norm', aggNorm(masks, L));
    expect([...def]).toEqual([...aggregationWeights(masks, 3, 'seq-mean-token-sum-norm', aggNorm(masks, L, 'paper'))]);
  });

  it('is a config field; an unknown scale is named in the error', () => {
    const base = toyPreset('/tmp/unused-run');
    const c = parseRlConfig({
      ...base,
      grpo: { ...base.grpo, lossAgg: 'seq-mean-token-sum-norm', drGrpoScale: 'verl' },
    });
    expect(c.grpo.drGrpoScale).toBe('verl');
    expect(parseRlConfig(base).grpo.drGrpoScale).toBe('paper');
    expect(() => parseRlConfig({ ...base, grpo: { ...base.grpo, drGrpoScale: 'torch' } })).toThrow(/grpo\.drGrpoScale/);
    expect(() =>
      aggregationWeights(masks, 3, 'seq-mean-token-sum-norm', {
        ...aggNorm(masks, L),
        drGrpoScale: 'x' as unknown as 'paper',
      }),
    ).toThrow(/drGrpoScale must be one of paper, verl, got "x"/);
  });
});
