/**
 * Dynamic sampling expansion via a ratio EMA (paper §5.3.1).
 *
 * After each iteration: `ratio = 1 / (1 − invalid_share)`, where invalid = groups whose rollouts were all correct or
 * all wrong, smoothed by an EMA. The next iteration rolls out `ceil(prompts × ema)` prompts — a count fixed before
 * generation, unlike DAPO's generate-until-full loop — and keeps the `prompts` groups whose correct/incorrect split
 * is most balanced. When fewer valid groups come back than wanted, the step trains on the valid ones and says so
 * (graceful degradation) instead of failing.
 *
 * The EMA decay is not published (docs/design.md G: not published); 0.8 is our default. The first observation initialises the EMA
 * (no bias towards the initial value), and a fully invalid iteration counts as `maxRatio`.
 */

export interface ExpansionOptions {
  /** EMA decay β in ema ← β·ema + (1 − β)·ratio. */
  decay: number;
  /** Upper bound of the ratio (an all-invalid iteration gives this). */
  maxRatio: number;
  /** The EMA before any observation. */
  initialRatio: number;
}

export const DEFAULT_EXPANSION: ExpansionOptions = { decay: 0.8, maxRatio: 4, initialRatio: 1 };

export interface ExpansionState {
  ema: number;
  /** Observations so far. */
  updates: number;
  /** The last raw ratio. */
  lastRatio: number | null;
  lastInvalidShare: number | null;
}

/** 1 / (1 − s), capped at maxRatio (s = 1 gives maxRatio). */
export function expansionRatio(invalidShare: number, maxRatio: number): number {
  if (!(invalidShare >= 0 && invalidShare <= 1))
    throw new Error(`expansion: invalid share must be in [0, 1], got ${invalidShare}`);
  if (invalidShare >= 1) return maxRatio;
  return Math.min(maxRatio, 1 / (1 - invalidShare));
}

export class ExpansionController {
  readonly opts: ExpansionOptions;
  state: ExpansionState;

  constructor(opts: Partial<ExpansionOptions> = {}, state?: ExpansionState) {
    this.opts = { ...DEFAULT_EXPANSION, ...opts };
    const o = this.opts;
    if (!(o.decay >= 0 && o.decay < 1)) throw new Error(`expansion.decay: expected a number in [0, 1), got ${o.decay}`);
    if (!(o.maxRatio >= 1)) throw new Error(`expansion.maxRatio: expected a number >= 1, got ${o.maxRatio}`);
    if (!(o.initialRatio >= 1 && o.initialRatio <= o.maxRatio))
      throw new Error(
        `expansion.initialRatio: expected a number in [1, maxRatio=${o.maxRatio}], got ${o.initialRatio}`,
      );
    this.state = state ? { ...state } : { ema: o.initialRatio, updates: 0, lastRatio: null, lastInvalidShare: null };
  }

  /** Records the invalid share of the last iteration; returns the raw ratio and the new EMA. */
  observe(invalidShare: number): { ratio: number; ema: number } {
    const ratio = expansionRatio(invalidShare, this.opts.maxRatio);
    const s = this.state;
    s.ema = s.updates === 0 ? ratio : this.opts.decay * s.ema + (1 - this.opts.decay) * ratio;
    s.updates++;
    s.lastRatio = ratio;
    s.lastInvalidShare = invalidShare;
    return { ratio, ema: s.ema };
  }

  /**
   * Prompts to roll out for `trainPrompts` training groups: ceil(trainPrompts × ema), at least trainPrompts, and at
   * most what `maxRollouts` allows at `groupSize` responses each.
   */
  promptsToSample(trainPrompts: number, groupSize: number, maxRollouts?: number): number {
    const want = Math.max(trainPrompts, Math.ceil(trainPrompts * this.state.ema - 1e-9));
    if (maxRollouts === undefined) return want;
    return Math.max(1, Math.min(want, Math.floor(maxRollouts / groupSize)));
  }
}

/** What the selection needs to know about a group. */
export interface GroupSummary {
  /** Responses judged correct and usable responses in total (unjudged / errored ones excluded). */
  correct: number;
  total: number;
  /** Std of the usable rewards: zero means no gradient. */
  rewardStd: number;
}

/** The paper's invalid group: all correct or all wrong (a group with no usable response counts too). */
export function isInvalidGroup(g: GroupSummary): boolean {
  return g.total === 0 || g.correct === 0 || g.correct === g.total;
}

/** |correct − incorrect| / total: 0 is perfectly balanced, 1 is all one way. */
export function imbalance(g: GroupSummary): number {
  return g.total === 0 ? 1 : Math.abs(2 * g.correct - g.total) / g.total;
}

export interface Selection {
  /** Indices of the kept groups, most balanced first. */
  kept: number[];
  /** Groups that carry gradient (reward variance > 0). */
  validCount: number;
  /** Kept fewer than asked: trained on what was valid. */
  short: boolean;
}

/**
 * Keeps up to `keep` groups, most balanced first; groups with zero reward variance never qualify (they give no
 * gradient). Ties: larger reward std first, then `tieBreak` (a random key per group, for unbiased choice).
 */
export function selectBalanced(groups: readonly GroupSummary[], keep: number, tieBreak: readonly number[]): Selection {
  if (!Number.isInteger(keep) || keep < 0)
    throw new Error(`selectBalanced: keep must be a non-negative integer, got ${keep}`);
  if (tieBreak.length !== groups.length)
    throw new Error(`selectBalanced: ${tieBreak.length} tie-break keys for ${groups.length} groups`);
  const valid = groups.map((g, i) => ({ g, i })).filter(({ g }) => g.rewardStd > 0 && g.total >= 2);
  valid.sort(
    (a, b) =>
      imbalance(a.g) - imbalance(b.g) || b.g.rewardStd - a.g.rewardStd || tieBreak[a.i]! - tieBreak[b.i]! || a.i - b.i,
  );
  const kept = valid.slice(0, keep).map((v) => v.i);
  return { kept, validCount: valid.length, short: kept.length < keep };
}
