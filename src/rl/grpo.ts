/**
 * GRPO math: group-normalised advantages, the PPO-style clipped surrogate with decoupled ε_low / ε_high
 * (DAPO clip-higher) and optional dual-clip, optional KL (k1 / k2 / k3) and entropy terms, and the four loss
 * aggregation modes. Conventions follow verl's `core_algos.py` (docs/design.md V) so numbers can be compared:
 *
 * - advantage: (r − mean_group) / (std_group + ε) with the unbiased std (torch.std); without std: r − mean (Dr.GRPO);
 * - ratio = exp(clamp(logp − logp_old, −20, 20)); per token loss = max(−A·ratio, −A·clip(ratio, 1−ε_low, 1+ε_high));
 *   dual-clip (A < 0 only): min(that, −A·c);
 * - aggregation: token-mean (DAPO), seq-mean-token-mean (the paper's per-sample averaging, our default),
 *   seq-mean-token-sum, seq-mean-token-sum-norm (Dr.GRPO: token sums over a constant length L). One difference
 *   from verl: Dr.GRPO's scale. Ours (`drGrpoScale: 'paper'`, the Dr.GRPO paper's) is Σ_i Σ_t / (B·L) over the
 *   B sequences of the mini-batch; verl's `agg_loss` is Σ_i Σ_t / L, B times larger (`drGrpoScale: 'verl'`), and
 *   verl's gradient accumulation further multiplies each micro-batch's loss by 1/(micro-batches per mini-batch);
 * - KL estimators on d = logp − logp_ref: k1 = d, k2 = d²/2, k3 = exp(−d) + d − 1 (verl's low_var_kl: −d clamped to
 *   ±20 before exp, the estimate to ±10; k1 and k2 unclamped, as verl).
 *
 * Aggregation is expressed as per-token weights normalised over a whole mini-batch, so splitting a mini-batch into
 * micro-batches and summing their losses gives exactly the full mini-batch gradient (the paper's §5.4 "gradients
 * averaged weighted by sample count").
 */
import { F, fromArray, type Tensor } from '../engine/index.js';

export const LOSS_AGG_MODES = [
  'token-mean',
  'seq-mean-token-mean',
  'seq-mean-token-sum',
  'seq-mean-token-sum-norm',
] as const;
export type LossAggMode = (typeof LOSS_AGG_MODES)[number];

export const KL_ESTIMATORS = ['k1', 'k2', 'k3'] as const;
export type KlEstimator = (typeof KL_ESTIMATORS)[number];

// ---------------------------------------------------------------------------------------------------------------
// Advantages
// ---------------------------------------------------------------------------------------------------------------

export interface AdvantageOptions {
  /**
   * `grpo` (default): group-normalised; `rloo`: leave-one-out baseline r_i − mean of the other rewards (no std).
   */
  estimator?: 'grpo' | 'rloo';
  /** Divide by the std (GRPO); false gives Dr.GRPO's mean-only baseline. Default true. */
  normStd?: boolean;
  /** Where the std comes from: each group (GRPO) or the whole batch (TRL `scale_rewards: batch`). Default group. */
  stdScope?: 'group' | 'batch';
  /** Added to the std. Default 1e-6 (verl). */
  eps?: number;
}

function meanOf(xs: readonly number[]): number {
  let s = 0;
  for (const x of xs) s += x;
  return s / xs.length;
}

/** Unbiased standard deviation (n − 1), 0 for fewer than two values. */
export function unbiasedStd(xs: readonly number[]): number {
  if (xs.length < 2) return 0;
  const m = meanOf(xs);
  let s = 0;
  for (const x of xs) s += (x - m) * (x - m);
  return Math.sqrt(s / (xs.length - 1));
}

/**
 * Advantages for groups of rewards. `null` marks a rollout without a usable reward (judge outage, scoring error):
 * it is left out of its group's statistics and gets advantage 0. A group with fewer than two usable rewards has no
 * baseline and gets 0 everywhere; a group whose rewards are all equal gets exactly 0 (no gradient).
 */
export function groupAdvantages(
  groups: ReadonlyArray<ReadonlyArray<number | null>>,
  opts: AdvantageOptions = {},
): number[][] {
  const normStd = opts.normStd ?? true;
  const eps = opts.eps ?? 1e-6;
  const scope = opts.stdScope ?? 'group';
  if (scope !== 'group' && scope !== 'batch')
    throw new Error(`advantages: stdScope must be group or batch, got ${scope}`);
  for (const [i, g] of groups.entries())
    for (const [j, r] of g.entries())
      if (r !== null && !Number.isFinite(r))
        throw new Error(`advantages: reward [${i}][${j}] must be a finite number or null, got ${r}`);
  let batchStd = 0;
  if (scope === 'batch') {
    const all = groups.flatMap((g) => g.filter((r): r is number => r !== null));
    batchStd = unbiasedStd(all);
  }
  const estimator = opts.estimator ?? 'grpo';
  if (estimator !== 'grpo' && estimator !== 'rloo')
    throw new Error(`advantages: estimator must be grpo or rloo, got ${estimator}`);
  return groups.map((g) => {
    const vals = g.filter((r): r is number => r !== null);
    if (vals.length < 2) return g.map(() => 0);
    const m = meanOf(vals);
    const allSame = vals.every((v) => v === vals[0]);
    if (estimator === 'rloo') {
      const n = vals.length;
      const sum = m * n;
      return g.map((r) => (r === null || allSame ? 0 : r - (sum - r) / (n - 1)));
    }
    const std = scope === 'batch' ? batchStd : unbiasedStd(vals);
    return g.map((r) => {
      if (r === null || allSame) return 0;
      return normStd ? (r - m) / (std + eps) : r - m;
    });
  });
}

// ---------------------------------------------------------------------------------------------------------------
// Aggregation weights
// ---------------------------------------------------------------------------------------------------------------

/** Normalisers of one mini-batch: sequences with at least one trained token, and trained tokens. */
export interface AggNorm {
  seqs: number;
  tokens: number;
  /** Dr.GRPO's constant length (seq-mean-token-sum-norm); default: the max response length in the config. */
  length: number;
  /**
   * Dr.GRPO's scale: `paper` (default, also when absent) Σ_i Σ_t / (seqs·length), the Dr.GRPO paper's; `verl`
   * Σ_i Σ_t / length, what
   * verl's `agg_loss` computes for a mini-batch in one micro-batch (seqs times larger).
   */
  drGrpoScale?: DrGrpoScale;
}

export const DR_GRPO_SCALES = ['paper', 'verl'] as const;
export type DrGrpoScale = (typeof DR_GRPO_SCALES)[number];

/** Counts sequences and tokens of a set of loss masks. */
export function aggNorm(masks: readonly Uint8Array[], length: number, drGrpoScale?: DrGrpoScale): AggNorm {
  let seqs = 0;
  let tokens = 0;
  for (const m of masks) {
    let n = 0;
    for (let i = 0; i < m.length; i++) n += m[i]! ? 1 : 0;
    if (n > 0) seqs++;
    tokens += n;
  }
  return { seqs, tokens, length, ...(drGrpoScale ? { drGrpoScale } : {}) };
}

/**
 * Per-token weights [B, T] (row-major) such that Σ weight·loss_token is the aggregated loss of the mini-batch
 * described by `norm`. Rows are padded to T with zero weight.
 */
export function aggregationWeights(
  masks: readonly Uint8Array[],
  T: number,
  mode: LossAggMode,
  norm: AggNorm,
): Float32Array {
  if (!LOSS_AGG_MODES.includes(mode))
    throw new Error(`loss aggregation: expected one of ${LOSS_AGG_MODES.join(', ')}, got ${JSON.stringify(mode)}`);
  const w = new Float32Array(masks.length * T);
  if (norm.seqs === 0 || norm.tokens === 0) return w;
  masks.forEach((m, b) => {
    if (m.length > T) throw new Error(`loss aggregation: row ${b} has ${m.length} tokens, more than T=${T}`);
    let n = 0;
    for (let i = 0; i < m.length; i++) n += m[i]! ? 1 : 0;
    if (n === 0) return;
    let v: number;
    switch (mode) {
      case 'token-mean':
        v = 1 / norm.tokens;
        break;
      case 'seq-mean-token-mean':
        v = 1 / (n * norm.seqs);
        break;
      case 'seq-mean-token-sum':
        v = 1 / norm.seqs;
        break;
      case 'seq-mean-token-sum-norm':
        if (!(norm.length > 0))
          throw new Error(`loss aggregation: Dr.GRPO needs a positive length, got ${norm.length}`);
        if (norm.drGrpoScale === 'verl') v = 1 / norm.length;
        else if ((norm.drGrpoScale ?? 'paper') === 'paper') v = 1 / (norm.seqs * norm.length);
        else
          throw new Error(
            `loss aggregation: drGrpoScale must be one of ${DR_GRPO_SCALES.join(', ')}, got ${JSON.stringify(norm.drGrpoScale)}`,
          );
        break;
    }
    for (let i = 0; i < m.length; i++) if (m[i]) w[b * T + i] = v;
  });
  return w;
}

// ---------------------------------------------------------------------------------------------------------------
// The loss
// ---------------------------------------------------------------------------------------------------------------

export interface PolicyLossConfig {
  /** ε_low: the ratio is clipped below at 1 − ε_low. Default 0.2. */
  clipLow: number;
  /** ε_high: clipped above at 1 + ε_high. Default 0.28 (DAPO clip-higher). */
  clipHigh: number;
  /** Dual-clip constant c > 1 (bounds the loss of negative-advantage tokens at −A·c), or null for none. */
  dualClip: number | null;
  /** KL-to-reference coefficient in the loss; 0 = off (the paper's default). */
  klCoef: number;
  klEstimator: KlEstimator;
  /** Entropy bonus coefficient; 0 = off (the paper's default: it caused garbled output). */
  entropyCoef: number;
  /**
   * Importance ratio per token (PPO / GRPO, default) or per sequence (GSPO: exp of the mean log-ratio over the
   * sequence's weighted tokens, clipped as a whole; its gradient reaches every token as s_i·∇log π).
   */
  importanceLevel?: 'token' | 'sequence';
}

export const DEFAULT_LOSS: PolicyLossConfig = {
  clipLow: 0.2,
  clipHigh: 0.28,
  dualClip: null,
  klCoef: 0,
  klEstimator: 'k3',
  entropyCoef: 0,
};

export function validateLossConfig(c: PolicyLossConfig): void {
  if (!(c.clipLow >= 0 && c.clipLow < 1))
    throw new Error(`grpo.clipLow: expected a number in [0, 1), got ${c.clipLow}`);
  if (!(c.clipHigh >= 0)) throw new Error(`grpo.clipHigh: expected a number >= 0, got ${c.clipHigh}`);
  if (c.dualClip !== null && !(c.dualClip > 1))
    throw new Error(`grpo.dualClip: expected a number > 1 (or null), got ${c.dualClip}`);
  if (!(c.klCoef >= 0)) throw new Error(`grpo.kl.coef: expected a number >= 0, got ${c.klCoef}`);
  if (!KL_ESTIMATORS.includes(c.klEstimator))
    throw new Error(
      `grpo.kl.estimator: expected one of ${KL_ESTIMATORS.join(', ')}, got ${JSON.stringify(c.klEstimator)}`,
    );
  if (!(c.entropyCoef >= 0)) throw new Error(`grpo.entropyCoef: expected a number >= 0, got ${c.entropyCoef}`);
}

/** Per-token KL estimate of the current policy against the reference (differentiable in `logp`). */
export function klEstimate(logp: Tensor, refLogp: Tensor, estimator: KlEstimator): Tensor {
  const d = logp.sub(refLogp);
  switch (estimator) {
    case 'k1':
      return d;
    case 'k2':
      return d.square().mul(0.5);
    case 'k3': {
      // exp(ref − logp) − (ref − logp) − 1 = exp(−d) + d − 1: unbiased, non-negative, low variance (Schulman).
      // As verl: the log-ratio is clamped to ±20 before exp and the estimate to ±10. Without the first clamp a
      // log-ratio below ≈ −88.7 overflows float32 exp, and the outer clamp's zero gradient times ∞ is NaN — even on a
      // token whose aggregation weight is 0.
      const kl = d.neg().clamp(-K3_LOG_RATIO_CLAMP, K3_LOG_RATIO_CLAMP);
      return kl.exp().sub(kl).sub(1).clamp(-K3_CLAMP, K3_CLAMP);
    }
  }
}

/** verl's `low_var_kl` clamps: the log-ratio ref − logp to ±20, the estimate to ±10. */
export const K3_LOG_RATIO_CLAMP = 20;
export const K3_CLAMP = 10;

/** Same estimators on plain numbers (metrics and the in-reward KL penalty). */
export function klValue(logp: number, refLogp: number, estimator: KlEstimator): number {
  const d = logp - refLogp;
  if (estimator === 'k1') return d;
  if (estimator === 'k2') return 0.5 * d * d;
  const kl = Math.min(K3_LOG_RATIO_CLAMP, Math.max(-K3_LOG_RATIO_CLAMP, -d));
  return Math.min(K3_CLAMP, Math.max(-K3_CLAMP, Math.exp(kl) - kl - 1));
}

export interface PolicyLossInput {
  /** [B, T] current log-probs (differentiable). */
  logprobs: Tensor;
  /** [B·T] log-probs of the policy that sampled (or the recomputed old policy). */
  oldLogprobs: Float32Array;
  /** [B] sequence advantages (outcome reward: every token of a response shares it). */
  advantages: Float32Array;
  /** [B·T] aggregation weights from `aggregationWeights` (zero on padding and inserted tokens). */
  weights: Float32Array;
  /** [B·T] reference log-probs, needed when klCoef > 0. */
  refLogprobs?: Float32Array;
  /** [B, T] entropy (differentiable), needed when entropyCoef > 0. */
  entropy?: Tensor;
}

/** Sums over the weighted tokens of one call; the trainer adds them across micro-batches. */
export interface PolicyLossStats {
  /** Σ weight·(policy-gradient loss): the surrogate part of the loss. */
  pgLoss: number;
  klLoss: number;
  entropyLoss: number;
  /** Tokens with weight > 0. */
  tokens: number;
  /** Of those: upper clip active (A > 0, ratio > 1 + ε_high), lower clip active (A < 0, ratio < 1 − ε_low), dual-clip. */
  clipHigh: number;
  clipLow: number;
  dualClip: number;
  /** Σ over tokens of ratio, max ratio, Σ (logp_old − logp) (verl's ppo_kl), Σ kl to reference, Σ entropy. */
  ratioSum: number;
  ratioMax: number;
  approxKlSum: number;
  refKlSum: number;
  entropySum: number;
}

/**
 * The GRPO objective for one batch: returns the scalar loss (to call `.backward()` on) and token statistics.
 * Rows are sequences; an advantage of exactly 0 gives exactly zero policy gradient for that row.
 */
export function policyLoss(input: PolicyLossInput, cfg: PolicyLossConfig): { loss: Tensor; stats: PolicyLossStats } {
  validateLossConfig(cfg);
  const lp = input.logprobs;
  if (lp.ndim !== 2) throw new Error(`policyLoss: logprobs must be [B, T], got [${lp.shape}]`);
  const [B, T] = lp.shape as [number, number];
  const n = B * T;
  const check = (name: string, a: ArrayLike<number> | undefined, len: number) => {
    if (a && a.length !== len)
      throw new Error(`policyLoss: ${name} has ${a.length} values, expected ${len} (B=${B}, T=${T})`);
  };
  check('oldLogprobs', input.oldLogprobs, n);
  check('advantages', input.advantages, B);
  check('weights', input.weights, n);
  check('refLogprobs', input.refLogprobs, n);
  if (cfg.klCoef > 0 && !input.refLogprobs) throw new Error('policyLoss: klCoef > 0 needs refLogprobs');
  if (cfg.entropyCoef > 0 && !input.entropy) throw new Error('policyLoss: entropyCoef > 0 needs entropy');

  const old = fromArray(input.oldLogprobs, [B, T]);
  const negAdv = fromArray(
    Float32Array.from(input.advantages, (a) => -a),
    [B, 1],
  );
  let logRatio: Tensor;
  const seqLogRatio = new Float32Array(B);
  if ((cfg.importanceLevel ?? 'token') === 'sequence') {
    const v = lp.toFloat32();
    for (let b = 0; b < B; b++) {
      let s = 0;
      let n = 0;
      for (let t = 0; t < T; t++)
        if (input.weights[b * T + t]! > 0) {
          s += v[b * T + t]! - input.oldLogprobs[b * T + t]!;
          n++;
        }
      seqLogRatio[b] = n ? s / n : 0;
    }
    // Value: the sequence's mean log-ratio on every token; gradient: ∇log π of the token (stop-gradient trick).
    logRatio = lp.sub(lp.detach()).add(fromArray(seqLogRatio, [B, 1]));
  } else logRatio = lp.sub(old);
  const ratio = logRatio.clamp(-20, 20).exp();
  const pg1 = ratio.mul(negAdv);
  const pg2 = ratio.clamp(1 - cfg.clipLow, 1 + cfg.clipHigh).mul(negAdv);
  let pg = F.maximum(pg1, pg2);
  if (cfg.dualClip !== null) {
    const bound = negAdv.mul(cfg.dualClip);
    const negMask = fromArray(
      Uint8Array.from(input.advantages, (a) => (a < 0 ? 1 : 0)),
      [B, 1],
      'bool',
    );
    pg = F.where(negMask, F.minimum(pg, bound), pg);
  }
  const w = fromArray(input.weights, [B, T]);
  let loss = pg.mul(w).sum();
  const pgLoss = loss.item();
  let klLoss = 0;
  let entropyLoss = 0;
  if (cfg.klCoef > 0 && input.refLogprobs) {
    const kl = klEstimate(lp, fromArray(input.refLogprobs, [B, T]), cfg.klEstimator)
      .mul(w)
      .sum();
    klLoss = kl.item() * cfg.klCoef;
    loss = loss.add(kl.mul(cfg.klCoef));
  }
  if (cfg.entropyCoef > 0 && input.entropy) {
    const ent = input.entropy.mul(w).sum();
    entropyLoss = -ent.item() * cfg.entropyCoef;
    loss = loss.sub(ent.mul(cfg.entropyCoef));
  }

  // Statistics on plain numbers (no graph).
  const lpv = lp.toFloat32();
  const entv = input.entropy?.toFloat32();
  const stats: PolicyLossStats = {
    pgLoss,
    klLoss,
    entropyLoss,
    tokens: 0,
    clipHigh: 0,
    clipLow: 0,
    dualClip: 0,
    ratioSum: 0,
    ratioMax: 0,
    approxKlSum: 0,
    refKlSum: 0,
    entropySum: 0,
  };
  for (let b = 0; b < B; b++) {
    const a = input.advantages[b]!;
    for (let t = 0; t < T; t++) {
      const i = b * T + t;
      if (!(input.weights[i]! > 0)) continue;
      const d =
        (cfg.importanceLevel ?? 'token') === 'sequence'
          ? Math.min(20, Math.max(-20, seqLogRatio[b]!))
          : Math.min(20, Math.max(-20, lpv[i]! - input.oldLogprobs[i]!));
      const r = Math.exp(d);
      stats.tokens++;
      stats.ratioSum += r;
      if (r > stats.ratioMax) stats.ratioMax = r;
      stats.approxKlSum += -d;
      if (a > 0 && r > 1 + cfg.clipHigh) stats.clipHigh++;
      if (a < 0 && r < 1 - cfg.clipLow) stats.clipLow++;
      // For A < 0 the clipped loss is −A·max(r, 1 − ε_low), so the dual bound −A·c binds exactly when r > c.
      if (a < 0 && cfg.dualClip !== null && r > cfg.dualClip) stats.dualClip++;
      if (input.refLogprobs) stats.refKlSum += klValue(lpv[i]!, input.refLogprobs[i]!, cfg.klEstimator);
      if (entv) stats.entropySum += entv[i]!;
    }
  }
  return { loss, stats };
}

/** Adds micro-batch statistics into an accumulator. */
export function addStats(acc: PolicyLossStats | null, s: PolicyLossStats): PolicyLossStats {
  if (!acc) return { ...s };
  return {
    pgLoss: acc.pgLoss + s.pgLoss,
    klLoss: acc.klLoss + s.klLoss,
    entropyLoss: acc.entropyLoss + s.entropyLoss,
    tokens: acc.tokens + s.tokens,
    clipHigh: acc.clipHigh + s.clipHigh,
    clipLow: acc.clipLow + s.clipLow,
    dualClip: acc.dualClip + s.dualClip,
    ratioSum: acc.ratioSum + s.ratioSum,
    ratioMax: Math.max(acc.ratioMax, s.ratioMax),
    approxKlSum: acc.approxKlSum + s.approxKlSum,
    refKlSum: acc.refKlSum + s.refKlSum,
    entropySum: acc.entropySum + s.entropySum,
  };
}
