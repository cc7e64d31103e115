/**
 * Thinking-length control. Force answering (docs/design.md D.6) keeps rollouts that reach the thinking budget usable: the
 * engine inserts `</think>` (+ `<answer>`) and the model answers. The inserted tokens are never trained on and the
 * forced answer is rewarded like any other, so reaching the budget costs the policy nothing, and a policy can learn
 * to make the budget its normal way to stop (the built-in toy run: forced share 22 % → 91 % in 40 steps). The paper
 * forces answers so as not to lose truncated rollouts, not to make the budget the stopping rule.
 *
 * This module gives the budget a price the user turns on (config `lengthControl`, off by default):
 *
 * - `forcedPenalty` p: a force-answered response's reward loses p;
 * - DAPO's soft overlong punishment (DAPO §3.4, verl's `overlong_buffer`), on thinking tokens against the thinking
 *   budget B: with a buffer b > 0, a response whose thinking t passes B − b loses (t − (B − b)) / b × `overlongFactor`,
 *   linearly up to the full factor at B, where forcing happens.
 *
 * Both act on the reward before any group statistic, so group selection (reward spread) and advantages see the shaped
 * reward, while correctness (RLCS pass rates, the all-correct / all-wrong test of expansion) is left as scored. Note
 * that with std-normalised advantages any penalty inside an otherwise all-correct group becomes a full-size advantage
 * (the std is small); `grpo.normStd: false` (Dr.GRPO) keeps the advantage proportional to the penalty.
 */
import type { Rollout } from './types.js';

export interface LengthControlConfig {
  /** Subtracted from the reward of a force-answered response; 0 = off. */
  forcedPenalty: number;
  /** DAPO soft overlong buffer in thinking tokens (the last `overlongBuffer` tokens of the budget); 0 = off. */
  overlongBuffer: number;
  /** Penalty reached at the budget (DAPO's penalty_factor). */
  overlongFactor: number;
}

export const LENGTH_CONTROL_OFF: LengthControlConfig = { forcedPenalty: 0, overlongBuffer: 0, overlongFactor: 1 };

export function lengthControlEnabled(c: LengthControlConfig): boolean {
  return c.forcedPenalty > 0 || (c.overlongBuffer > 0 && c.overlongFactor > 0);
}

/** Throws naming the field when the control cannot work with this thinking budget. */
export function validateLengthControl(
  c: LengthControlConfig,
  maxThinkingTokens: number,
  where = 'lengthControl',
): void {
  if (!(Number.isFinite(c.forcedPenalty) && c.forcedPenalty >= 0))
    throw new Error(`${where}.forcedPenalty: expected a number >= 0, got ${c.forcedPenalty}`);
  if (!(Number.isInteger(c.overlongBuffer) && c.overlongBuffer >= 0))
    throw new Error(`${where}.overlongBuffer: expected an integer >= 0, got ${c.overlongBuffer}`);
  if (!(Number.isFinite(c.overlongFactor) && c.overlongFactor >= 0))
    throw new Error(`${where}.overlongFactor: expected a number >= 0, got ${c.overlongFactor}`);
  // A buffer as long as the budget would punish every thinking token, not just the ones near the budget.
  if (c.overlongBuffer >= maxThinkingTokens)
    throw new Error(
      `${where}.overlongBuffer ${c.overlongBuffer} must be smaller than rollout.maxThinkingTokens ${maxThinkingTokens} (it is the last part of the budget that is punished)`,
    );
}

export interface LengthPenalty {
  /** The forced-answer part. */
  forced: number;
  /** The soft overlong part. */
  overlong: number;
  /** forced + overlong: what the reward loses (≥ 0). */
  total: number;
}

/** What a rollout's reward loses under the control, given the thinking budget. */
export function lengthPenalty(
  r: Pick<Rollout, 'forced' | 'thinkingTokens'>,
  c: LengthControlConfig,
  maxThinkingTokens: number,
): LengthPenalty {
  const forced = r.forced ? c.forcedPenalty : 0;
  let overlong = 0;
  if (c.overlongBuffer > 0 && c.overlongFactor > 0) {
    const exceed = r.thinkingTokens - (maxThinkingTokens - c.overlongBuffer);
    // Capped at the factor: a server's re-encoded count can pass the budget by a token or two.
    overlong = Math.min(c.overlongFactor, Math.max(0, (exceed / c.overlongBuffer) * c.overlongFactor));
  }
  return { forced, overlong, total: forced + overlong };
}

/** One scored rollout as the length metrics see it. */
export interface LengthItem {
  rollout: Pick<Rollout, 'forced' | 'thinkingTokens' | 'answerTokens' | 'tokenIds'>;
  /** null when the rollout has no usable reward. */
  correct: boolean | null;
  penalty: number;
}

const meanOf = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

function quantile(xs: readonly number[], q: number): number {
  if (!xs.length) return 0;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))]!;
}

/**
 * Thinking-length metrics of a step: how often the budget forced the answer, whether forced answers are still
 * rewarded as often as unforced ones (if so, reaching the budget is free), lengths and the penalty paid.
 */
export function lengthMetrics(items: readonly LengthItem[]): Record<string, number | null> {
  const forced = items.filter((x) => x.rollout.forced);
  const rate = (xs: readonly LengthItem[]) => {
    const u = xs.filter((x) => x.correct !== null);
    return u.length ? u.filter((x) => x.correct).length / u.length : null;
  };
  const think = items.map((x) => x.rollout.thinkingTokens);
  return {
    forced_rate: items.length ? forced.length / items.length : 0,
    forced_pass_rate: rate(forced),
    unforced_pass_rate: rate(items.filter((x) => !x.rollout.forced)),
    thinking_tokens_p50: quantile(think, 0.5),
    thinking_tokens_p90: quantile(think, 0.9),
    response_tokens_max: items.length ? Math.max(...items.map((x) => x.rollout.tokenIds.length)) : 0,
    length_penalty_mean: meanOf(items.map((x) => x.penalty)),
    length_penalized_rate: items.length ? items.filter((x) => x.penalty > 0).length / items.length : 0,
  };
}
