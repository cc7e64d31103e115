/**
 * What one RL step leaves behind: the metrics record (rewards, pass rates, selection, expansion, length, update
 * statistics, per domain and per tier; one JSONL line) and the rollouts file `glmv rl inspect` reads.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { RewardResult } from '../reward/types.js';
import { stepName } from './checkpoint.js';
import { type GroupSummary, isInvalidGroup } from './expansion.js';
import { lengthMetrics } from './length.js';
import { type Curriculum, TIERS, type Tier } from './rlcs.js';
import type { Rollout, RolloutPrompt } from './types.js';
import type { UpdateResult } from './update.js';

/** One rollout with everything the logs and the update need. */
export interface Scored {
  group: number;
  k: number;
  rollout: Rollout;
  result: RewardResult | null;
  usable: boolean;
  /** What the reward loses under `lengthControl` (0 when off or unusable). */
  penalty: number;
}

/** The reward every group statistic uses: the scored reward less the thinking-length penalty. */
export const shapedReward = (s: Scored) => s.result!.reward - s.penalty;

export interface StepRecord {
  step: number;
  [k: string]: unknown;
}

export const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export function stepRecord(a: {
  t: number;
  flat: Scored[];
  byGroup: Scored[][];
  prompts: RolloutPrompt[];
  drawn: Tier[];
  summaries: GroupSummary[];
  kept: Set<number>;
  sel: { kept: number[]; validCount: number; short: boolean };
  invalidShare: number;
  exp: { ratio: number; ema: number };
  emaBefore: number;
  nGen: number;
  upd: UpdateResult | null;
  /** The curriculum's tier populations after the step. */
  tiers: ReturnType<Curriculum['populations']>;
  /** A reference policy is loaded (its KL is reported). */
  hasReference: boolean;
  mismatch: number | null;
  policyEntropy: number | null;
  adv: number[];
  ms: Record<string, number>;
}): StepRecord {
  const usable = a.flat.filter((s) => s.usable);
  const respTokens = a.flat.map((s) => s.rollout.tokenIds.length);
  const domains: Record<string, Record<string, number>> = {};
  const byDomain = new Map<string, Scored[]>();
  for (const s of a.flat) {
    const d = a.prompts[s.group]!.sample.domain;
    const list = byDomain.get(d) ?? [];
    list.push(s);
    byDomain.set(d, list);
  }
  for (const [d, list] of [...byDomain.entries()].sort()) {
    const u = list.filter((s) => s.usable);
    const groupsOfD = a.summaries.filter((_, i) => a.prompts[i]!.sample.domain === d);
    domains[d] = {
      n: list.length,
      reward: mean(u.map((s) => s.result!.reward)),
      pass: u.length ? u.filter((s) => s.result!.correct).length / u.length : 0,
      format_fail: list.length
        ? list.filter((s) => s.result?.gates.some((g) => g.name === 'format' && g.tripped)).length / list.length
        : 0,
      forced: list.length ? list.filter((s) => s.rollout.forced).length / list.length : 0,
      response_tokens: mean(list.map((s) => s.rollout.tokenIds.length)),
      thinking_tokens: mean(list.map((s) => s.rollout.thinkingTokens)),
      length_penalty: mean(list.map((s) => s.penalty)),
      groups: groupsOfD.length,
      kept: a.sel.kept.filter((i) => a.prompts[i]!.sample.domain === d).length,
      invalid: groupsOfD.filter(isInvalidGroup).length,
    };
  }
  const tiersDrawn = Object.fromEntries(TIERS.map((t) => [t, a.drawn.filter((x) => x === t).length]));
  const st = a.upd?.stats;
  const tok = st?.tokens ?? 0;
  const sampled = a.flat.reduce((n, s) => n + s.rollout.lossMask.reduce((x, y) => x + y, 0), 0);
  return {
    step: a.t,
    reward_mean: mean(usable.map((s) => s.result!.reward)),
    pass_rate: usable.length ? usable.filter((s) => s.result!.correct).length / usable.length : 0,
    rollouts: a.flat.length,
    unusable: a.flat.length - usable.length,
    errors: a.flat.filter((s) => s.rollout.finishReason === 'error').length,
    prompts_sampled: a.prompts.length,
    prompts_wanted: a.nGen,
    groups_kept: a.sel.kept.length,
    groups_valid: a.sel.validCount,
    short: a.sel.short,
    skipped_update: !a.upd,
    invalid_share: a.invalidShare,
    all_correct_share: a.summaries.length
      ? a.summaries.filter((g) => g.total > 0 && g.correct === g.total).length / a.summaries.length
      : 0,
    all_wrong_share: a.summaries.length ? a.summaries.filter((g) => g.correct === 0).length / a.summaries.length : 0,
    expansion_ratio: a.exp.ratio,
    expansion_ema: a.exp.ema,
    expansion_ema_used: a.emaBefore,
    ...lengthMetrics(
      a.flat.map((s) => ({ rollout: s.rollout, correct: s.usable ? s.result!.correct : null, penalty: s.penalty })),
    ),
    truncated_rate: a.flat.length
      ? a.flat.filter((s) => s.rollout.finishReason === 'length').length / a.flat.length
      : 0,
    format_fail_rate: a.flat.length
      ? a.flat.filter((s) => s.result?.gates.some((g) => g.name === 'format' && g.tripped)).length / a.flat.length
      : 0,
    response_tokens_mean: mean(respTokens),
    thinking_tokens_mean: mean(a.flat.map((s) => s.rollout.thinkingTokens)),
    answer_tokens_mean: mean(a.flat.map((s) => s.rollout.answerTokens)),
    adv_abs_mean: mean(a.adv.map(Math.abs)),
    loss: st ? (st.pgLoss + st.klLoss + st.entropyLoss) / Math.max(1, a.upd!.steps) : null,
    pg_loss: st ? st.pgLoss / Math.max(1, a.upd!.steps) : null,
    kl_loss: st ? st.klLoss / Math.max(1, a.upd!.steps) : null,
    entropy_loss: st ? st.entropyLoss / Math.max(1, a.upd!.steps) : null,
    clip_high_frac: tok ? st!.clipHigh / tok : null,
    clip_low_frac: tok ? st!.clipLow / tok : null,
    dual_clip_frac: tok ? st!.dualClip / tok : null,
    ratio_mean: tok ? st!.ratioSum / tok : null,
    ratio_max: st ? st.ratioMax : null,
    approx_kl: tok ? st!.approxKlSum / tok : null,
    ref_kl: tok && a.hasReference ? st!.refKlSum / tok : null,
    entropy: a.policyEntropy,
    grad_norm: a.upd ? mean(a.upd.gradNorm) : null,
    optimizer_steps: a.upd?.steps ?? 0,
    lr: a.upd?.lr ?? null,
    logprob_mismatch: a.mismatch,
    rollout_tokens: sampled,
    rollout_tok_s: a.ms.generate! > 0 ? sampled / (a.ms.generate! / 1000) : null,
    ms: a.ms,
    domains,
    tiers_drawn: tiersDrawn,
    tiers: a.tiers,
  };
}

export function writeRollouts(
  runDir: string,
  t: number,
  flat: Scored[],
  prompts: RolloutPrompt[],
  tiers: Tier[],
  kept: Set<number>,
  adv: Map<Scored, number>,
): void {
  const dir = join(runDir, 'rollouts');
  mkdirSync(dir, { recursive: true });
  const lines = flat.map((s) => {
    const smp = prompts[s.group]!.sample;
    const r = s.result;
    return JSON.stringify({
      step: t,
      id: smp.id,
      domain: smp.domain,
      source: smp.source,
      question: smp.question.length > 2000 ? `${smp.question.slice(0, 2000)}…` : smp.question,
      reference: smp.answer,
      tier: tiers[s.group],
      group: s.group,
      k: s.k,
      kept: kept.has(s.group),
      advantage: adv.has(s) ? adv.get(s) : null,
      text: s.rollout.text,
      reward: r?.reward ?? null,
      correct: r?.correct ?? false,
      status: r?.status ?? 'error',
      path: r?.path ?? null,
      reason: r?.reason ?? s.rollout.error ?? null,
      note: s.rollout.note ?? null,
      answer: r?.answer ?? null,
      gates: (r?.gates ?? []).filter((g) => g.tripped).map((g) => ({ name: g.name, detail: g.detail ?? null })),
      forced: s.rollout.forced,
      length_penalty: s.penalty,
      finish: s.rollout.finishReason,
      // The weights that sampled it: the server's report, else this step's policy (local rollouts).
      policy_version: s.rollout.policyVersion ?? t,
      tokens: s.rollout.tokenIds.length,
      thinking_tokens: s.rollout.thinkingTokens,
      answer_tokens: s.rollout.answerTokens,
    });
  });
  writeFileSync(join(dir, `${stepName(t)}.jsonl`), lines.length ? `${lines.join('\n')}\n` : '');
}
