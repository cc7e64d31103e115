/**
 * The policy update of one RL step: π_old (and the reference) log-probs without a graph, and the PPO epochs ×
 * mini-batches of clipped-surrogate updates (gradient accumulation over micro-batches, clipping, a skipped optimizer
 * step on a non-finite gradient norm).
 */
import { noGrad, optim, scope } from '../engine/index.js';
import type { Rng } from '../util/rng.js';
import type { RlConfig } from './config.js';
import {
  addStats,
  aggNorm,
  aggregationWeights,
  type PolicyLossConfig,
  type PolicyLossStats,
  policyLoss,
} from './grpo.js';
import type { Policy, PolicyItem } from './types.js';

type AdamW = InstanceType<typeof optim.AdamW>;

/** One rollout as the update trains it. */
export interface TrainItem extends PolicyItem {
  mask: Uint8Array;
  advantage: number;
  old: Float32Array;
  ref: Float32Array | null;
  rolloutLogprobs: Float32Array | null;
}

/** What an update works on. */
export interface UpdateTarget {
  config: RlConfig;
  policy: Policy;
  opt: AdamW;
  /** The step being trained (warmup, messages). */
  step: number;
  log: (line: string) => void;
}

export interface UpdateResult {
  stats: PolicyLossStats;
  gradNorm: number[];
  lr: number;
  steps: number;
}

export function lossConfig(g: RlConfig['grpo']): PolicyLossConfig {
  return {
    clipLow: g.clipLow,
    clipHigh: g.clipHigh,
    dualClip: g.dualClip,
    klCoef: g.kl.mode === 'loss' ? g.kl.coef : 0,
    klEstimator: g.kl.estimator,
    entropyCoef: g.entropyCoef,
    importanceLevel: g.importanceLevel,
  };
}

/**
 * Per-token log-probs (no graph) for many items, micro-batched; one Float32Array per item. With `entropy`, also
 * the mean entropy over the items' trained tokens.
 */
export function logprobsNoGrad(
  policy: Policy,
  items: Array<PolicyItem & { mask?: Uint8Array }>,
  opts: { microBatch: number; temperature: number },
  entropy = false,
): { lp: Float32Array[]; entropy: number | null } {
  const out: Float32Array[] = [];
  let entSum = 0;
  let entN = 0;
  const mb = opts.microBatch;
  for (let s = 0; s < items.length; s += mb) {
    const chunk = items.slice(s, s + mb);
    const flat = noGrad(() =>
      scope(() => {
        const o = policy.logProbs(chunk, { temperature: opts.temperature, entropy });
        return { data: o.logprobs.toFloat32(), ent: o.entropy?.toFloat32() ?? null, T: o.logprobs.shape[1]! };
      }),
    );
    for (const [b, it] of chunk.entries()) {
      out.push(flat.data.slice(b * flat.T, b * flat.T + it.response.length));
      if (flat.ent)
        for (let j = 0; j < it.response.length; j++)
          if (!it.mask || it.mask[j]) {
            entSum += flat.ent[b * flat.T + j]!;
            entN++;
          }
    }
  }
  return { lp: out, entropy: entN ? entSum / entN : null };
}

/** PPO epochs × mini-batches over the items; returns summed statistics. */
export function policyUpdate(t: UpdateTarget, items: TrainItem[], rng: Rng): UpdateResult | null {
  const { config, policy, opt, step, log } = t;
  const g = config.grpo;
  const lossCfg = lossConfig(g);
  const needEntropy = g.entropyCoef > 0;
  const length = g.drGrpoLength ?? config.rollout.maxThinkingTokens + config.rollout.maxAnswerTokens;
  const lr = g.warmupSteps > 0 ? g.lr * Math.min(1, (step + 1) / g.warmupSteps) : g.lr;
  opt.setLr(lr);
  const params = policy.parameters();
  let stats: PolicyLossStats | null = null;
  const norms: number[] = [];
  let steps = 0;
  for (let e = 0; e < g.epochs; e++) {
    const order = rng.shuffle(items.map((_, i) => i));
    const M = Math.min(g.miniBatches, order.length);
    for (let m = 0; m < M; m++) {
      const mbIdx = order.slice(Math.floor((m * order.length) / M), Math.floor(((m + 1) * order.length) / M));
      const mb = mbIdx.map((i) => items[i]!);
      const norm = aggNorm(
        mb.map((it) => it.mask),
        length,
        g.drGrpoScale,
      );
      opt.zeroGrad();
      for (let s = 0; s < mb.length; s += g.microBatch) {
        const micro = mb.slice(s, s + g.microBatch);
        const st = scope(() => {
          const out = policy.logProbs(micro, {
            temperature: config.rollout.temperature,
            entropy: needEntropy,
          });
          const T = out.logprobs.shape[1]!;
          const pad = (arrs: Array<Float32Array | null>) => {
            const a = new Float32Array(micro.length * T);
            arrs.forEach((x, b) => {
              if (x) a.set(x.subarray(0, Math.min(x.length, T)), b * T);
            });
            return a;
          };
          const { loss, stats } = policyLoss(
            {
              logprobs: out.logprobs,
              oldLogprobs: pad(micro.map((it) => it.old)),
              advantages: Float32Array.from(micro, (it) => it.advantage),
              weights: aggregationWeights(
                micro.map((it) => it.mask),
                T,
                g.lossAgg,
                norm,
              ),
              ...(lossCfg.klCoef > 0 ? { refLogprobs: pad(micro.map((it) => it.ref)) } : {}),
              ...(out.entropy ? { entropy: out.entropy } : {}),
            },
            lossCfg,
          );
          loss.backward();
          return stats;
        });
        stats = addStats(stats, st);
      }
      const gn = optim.clipGradNorm(params, g.maxGradNorm, { errorIfNonfinite: false });
      norms.push(gn);
      if (!Number.isFinite(gn)) {
        log(`step ${step}: gradient norm ${gn}; optimizer step skipped`);
        opt.zeroGrad();
        continue;
      }
      opt.step();
      opt.zeroGrad();
      steps++;
    }
  }
  return stats ? { stats, gradNorm: norms, lr, steps } : null;
}
