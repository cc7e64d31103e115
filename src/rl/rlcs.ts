/**
 * RLCS — reinforcement learning with curriculum sampling (paper §5.3).
 *
 * Every prompt carries a pass-rate estimate merged from three kinds of evidence, as pseudo-counts (successes,
 * trials):
 *   1. a human / generator difficulty label (Sample.difficulty 1–5) as a weak prior;
 *   2. an offline pass@k pass of the current model (k samples per prompt, `offlinePassK`);
 *   3. online grading: every group rolled out during training.
 * Each online observation first decays the accumulated evidence (`onlineDecay`), so the estimate follows the model
 * as it improves and priors fade once real rollouts exist. The estimate maps to a tier:
 *
 *   unseen (no evidence) · too_hard (p < tooHard) · hard (< hard) · medium (≤ medium) · easy (≤ easy) · too_easy
 *
 * Sampling is re-weighted every iteration: a prompt's draw weight is its tier's weight at this step (a piecewise
 * linear schedule over steps), so as prompts move between tiers the batch composition moves with them — too-easy
 * and currently-too-hard prompts are down-weighted (never to zero by default, so they can be revisited) and the
 * middle is boosted. Domains are mixed in configured proportions, exactly over time (largest remainder with a
 * carried remainder). The state is plain JSON (resumable) and the tier populations are reported every iteration.
 *
 * The paper gives no tier thresholds or weighting function (docs/design.md G: not published); the defaults here are ours.
 */
import type { Sample } from '../data/sample.js';
import type { Rng } from '../util/rng.js';

export const TIERS = ['unseen', 'too_hard', 'hard', 'medium', 'easy', 'too_easy'] as const;
export type Tier = (typeof TIERS)[number];
export type TierWeights = Record<Tier, number>;

export interface TierThresholds {
  /** p below this: too_hard. */
  tooHard: number;
  /** p below this: hard. */
  hard: number;
  /** p at most this: medium. */
  medium: number;
  /** p at most this: easy; above: too_easy. */
  easy: number;
}

export interface CurriculumOptions {
  thresholds: TierThresholds;
  /** Tier weights over training steps; linear between points, constant outside. At least one point. */
  schedule: Array<{ step: number; weights: TierWeights }>;
  /** Factor applied to accumulated evidence before each online observation (0 = only the latest counts). */
  onlineDecay: number;
  /** Difficulty-label prior: pseudo-trials, and the pass rate assumed for labels 1..5. */
  labelPrior: { weight: number; passRates: [number, number, number, number, number] };
  /** Pseudo-trials per offline sample (1 = an offline rollout counts as much as an online one). */
  offlineWeight: number;
  /** Domain proportions (normalised); empty = proportional to the number of prompts per domain. */
  mix: Record<string, number>;
}

export const DEFAULT_TIER_WEIGHTS: TierWeights = {
  unseen: 1,
  too_hard: 0.1,
  hard: 0.6,
  medium: 1,
  easy: 0.4,
  too_easy: 0.05,
};

export const DEFAULT_CURRICULUM: CurriculumOptions = {
  thresholds: { tooHard: 0.1, hard: 0.35, medium: 0.65, easy: 0.9 },
  schedule: [{ step: 0, weights: DEFAULT_TIER_WEIGHTS }],
  onlineDecay: 0.5,
  labelPrior: { weight: 2, passRates: [0.9, 0.7, 0.5, 0.3, 0.1] },
  offlineWeight: 1,
  mix: {},
};

export interface PromptRecord {
  id: string;
  domain: string;
  /** Decayed pseudo-counts of successes and trials (all evidence merged). */
  succ: number;
  tot: number;
  /** Online observations and the step of the last one (−1: never). */
  seen: number;
  lastStep: number;
  /** Times drawn for a batch. */
  drawn: number;
  offline: { correct: number; k: number } | null;
}

export interface CurriculumState {
  version: 1;
  records: Array<[string, number, number, number, number, number, number | null, number | null]>;
  /** Carried remainders of the domain quotas. */
  debt: Record<string, number>;
}

export interface Drawn {
  sample: Sample;
  tier: Tier;
}

export function validateCurriculum(o: CurriculumOptions): void {
  const t = o.thresholds;
  if (!(t.tooHard >= 0 && t.tooHard <= t.hard && t.hard <= t.medium && t.medium <= t.easy && t.easy <= 1))
    throw new Error(
      `curriculum.thresholds: expected 0 <= tooHard <= hard <= medium <= easy <= 1, got ${JSON.stringify(t)}`,
    );
  if (!o.schedule.length) throw new Error('curriculum.schedule: expected at least one { step, weights } point');
  o.schedule.forEach((p, i) => {
    if (!Number.isInteger(p.step) || p.step < 0)
      throw new Error(`curriculum.schedule[${i}].step: expected a non-negative integer, got ${p.step}`);
    if (i > 0 && p.step <= o.schedule[i - 1]!.step)
      throw new Error(`curriculum.schedule: steps must increase, got ${o.schedule[i - 1]!.step} then ${p.step}`);
    for (const tier of TIERS) {
      const w = p.weights[tier];
      if (!(typeof w === 'number' && w >= 0 && Number.isFinite(w)))
        throw new Error(`curriculum.schedule[${i}].weights.${tier}: expected a number >= 0, got ${w}`);
    }
    if (TIERS.every((tier) => p.weights[tier] === 0))
      throw new Error(`curriculum.schedule[${i}].weights: every tier weight is 0, nothing could be sampled`);
  });
  if (!(o.onlineDecay >= 0 && o.onlineDecay <= 1))
    throw new Error(`curriculum.onlineDecay: expected a number in [0, 1], got ${o.onlineDecay}`);
  if (!(o.labelPrior.weight >= 0))
    throw new Error(`curriculum.labelPrior.weight: expected >= 0, got ${o.labelPrior.weight}`);
  if (o.labelPrior.passRates.length !== 5 || o.labelPrior.passRates.some((p) => !(p >= 0 && p <= 1)))
    throw new Error(
      `curriculum.labelPrior.passRates: expected five numbers in [0, 1] (labels 1..5), got ${JSON.stringify(o.labelPrior.passRates)}`,
    );
  if (!(o.offlineWeight >= 0)) throw new Error(`curriculum.offlineWeight: expected >= 0, got ${o.offlineWeight}`);
  for (const [d, w] of Object.entries(o.mix))
    if (!(w >= 0 && Number.isFinite(w))) throw new Error(`curriculum.mix.${d}: expected a number >= 0, got ${w}`);
}

/** Tier weights at `step`: linear interpolation between schedule points. */
export function weightsAt(schedule: CurriculumOptions['schedule'], step: number): TierWeights {
  const first = schedule[0]!;
  if (step <= first.step) return { ...first.weights };
  for (let i = 1; i < schedule.length; i++) {
    const a = schedule[i - 1]!;
    const b = schedule[i]!;
    if (step <= b.step) {
      const f = (step - a.step) / (b.step - a.step);
      const out = {} as TierWeights;
      for (const t of TIERS) out[t] = a.weights[t] + f * (b.weights[t] - a.weights[t]);
      return out;
    }
  }
  return { ...schedule[schedule.length - 1]!.weights };
}

/** Tier of a pass-rate estimate (null = no evidence). */
export function tierOfRate(p: number | null, t: TierThresholds): Tier {
  if (p === null) return 'unseen';
  if (p < t.tooHard) return 'too_hard';
  if (p < t.hard) return 'hard';
  if (p <= t.medium) return 'medium';
  if (p <= t.easy) return 'easy';
  return 'too_easy';
}

/**
 * Integer quotas summing to n from proportions, by largest remainder, with `debt` (what earlier rounding owed each
 * key) added first and updated, so proportions are exact over many calls.
 */
export function apportion(
  n: number,
  props: Record<string, number>,
  debt: Record<string, number>,
): Record<string, number> {
  const keys = Object.keys(props).filter((k) => props[k]! > 0);
  const out: Record<string, number> = {};
  if (n <= 0 || keys.length === 0) return out;
  const total = keys.reduce((s, k) => s + props[k]!, 0);
  const target = keys.map((k) => n * (props[k]! / total) + (debt[k] ?? 0));
  const base = target.map((x) => Math.max(0, Math.floor(x)));
  let left = n - base.reduce((a, b) => a + b, 0);
  const order = keys.map((_, i) => i).sort((a, b) => target[b]! - base[b]! - (target[a]! - base[a]!) || a - b);
  for (let j = 0; left > 0 && j < order.length * 2; j++) {
    base[order[j % order.length]!]!++;
    left--;
  }
  while (left < 0) {
    // Debt can push floors above n: take back from the most over-served keys.
    const i = base.indexOf(Math.max(...base));
    base[i]!--;
    left++;
  }
  keys.forEach((k, i) => {
    out[k] = base[i]!;
    debt[k] = target[i]! - base[i]!;
  });
  return out;
}

export class Curriculum {
  readonly opts: CurriculumOptions;
  private readonly samples = new Map<string, Sample>();
  private readonly records = new Map<string, PromptRecord>();
  private readonly byDomain = new Map<string, string[]>();
  private debt: Record<string, number> = {};

  constructor(samples: readonly Sample[], opts: Partial<CurriculumOptions> = {}) {
    this.opts = { ...DEFAULT_CURRICULUM, ...opts };
    validateCurriculum(this.opts);
    if (samples.length === 0) throw new Error('curriculum: no prompts (the data sources produced no samples)');
    for (const s of samples) {
      if (this.samples.has(s.id))
        throw new Error(`curriculum: duplicate sample id ${JSON.stringify(s.id)}; ids must be unique across sources`);
      this.samples.set(s.id, s);
      this.records.set(s.id, this.freshRecord(s));
      const list = this.byDomain.get(s.domain) ?? [];
      list.push(s.id);
      this.byDomain.set(s.domain, list);
    }
    for (const d of Object.keys(this.opts.mix)) {
      if (this.opts.mix[d]! > 0 && !this.byDomain.has(d))
        throw new Error(
          `curriculum.mix: domain "${d}" has weight ${this.opts.mix[d]} but no prompts; the data has ${[...this.byDomain.keys()].join(', ')}`,
        );
    }
  }

  private freshRecord(s: Sample): PromptRecord {
    const r: PromptRecord = {
      id: s.id,
      domain: s.domain,
      succ: 0,
      tot: 0,
      seen: 0,
      lastStep: -1,
      drawn: 0,
      offline: null,
    };
    const lp = this.opts.labelPrior;
    if (lp.weight > 0 && typeof s.difficulty === 'number' && s.difficulty >= 1 && s.difficulty <= 5) {
      r.succ = lp.weight * lp.passRates[Math.round(s.difficulty) - 1]!;
      r.tot = lp.weight;
    }
    return r;
  }

  get size(): number {
    return this.samples.size;
  }

  domains(): string[] {
    return [...this.byDomain.keys()].sort();
  }

  sample(id: string): Sample | undefined {
    return this.samples.get(id);
  }

  /** Every prompt, in data order. */
  allSamples(): Sample[] {
    return [...this.samples.values()];
  }

  record(id: string): PromptRecord {
    const r = this.records.get(id);
    if (!r) throw new Error(`curriculum: unknown prompt id ${JSON.stringify(id)}`);
    return r;
  }

  /** Merged pass-rate estimate, or null without evidence. */
  passRate(id: string): number | null {
    const r = this.record(id);
    return r.tot > 0 ? r.succ / r.tot : null;
  }

  tierOf(id: string): Tier {
    return tierOfRate(this.passRate(id), this.opts.thresholds);
  }

  /** Offline pass@k result for a prompt (adds k·offlineWeight pseudo-trials). A second call replaces nothing. */
  setOffline(id: string, correct: number, k: number): void {
    if (!Number.isInteger(k) || k <= 0 || !Number.isInteger(correct) || correct < 0 || correct > k)
      throw new Error(
        `curriculum: offline result for ${id} must be 0 <= correct <= k with k >= 1, got ${correct}/${k}`,
      );
    const r = this.record(id);
    if (r.offline) return;
    r.offline = { correct, k };
    const w = this.opts.offlineWeight;
    r.succ += w * correct;
    r.tot += w * k;
  }

  /** One online group: `correct` of `total` usable responses. Decays older evidence first. */
  observe(id: string, correct: number, total: number, step: number): void {
    if (!Number.isInteger(total) || total < 0 || !Number.isInteger(correct) || correct < 0 || correct > total)
      throw new Error(`curriculum: online result for ${id} must be 0 <= correct <= total, got ${correct}/${total}`);
    if (total === 0) return;
    const r = this.record(id);
    const d = this.opts.onlineDecay;
    r.succ = d * r.succ + correct;
    r.tot = d * r.tot + total;
    r.seen++;
    r.lastStep = step;
  }

  weightsAt(step: number): TierWeights {
    return weightsAt(this.opts.schedule, step);
  }

  /** Domain proportions: configured, else by pool size. */
  private proportions(): Record<string, number> {
    if (Object.keys(this.opts.mix).length) {
      const out: Record<string, number> = {};
      for (const d of this.byDomain.keys()) out[d] = this.opts.mix[d] ?? 0;
      return out;
    }
    const out: Record<string, number> = {};
    for (const [d, ids] of this.byDomain) out[d] = ids.length;
    return out;
  }

  /**
   * Draws up to n distinct prompts for `step`: domain quotas from the mix, then weighted sampling without replacement
   * inside each domain (Efraimidis–Spirakis keys u^(1/w)). A domain that runs out of drawable prompts hands its
   * remaining quota to the others; fewer than n come back only when the whole pool is exhausted.
   */
  draw(n: number, step: number, rng: Rng): Drawn[] {
    if (!Number.isInteger(n) || n < 0) throw new Error(`curriculum.draw: n must be a non-negative integer, got ${n}`);
    const w = this.weightsAt(step);
    const ranked = new Map<string, Array<{ id: string; key: number; tier: Tier }>>();
    for (const d of [...this.byDomain.keys()].sort()) {
      const list: Array<{ id: string; key: number; tier: Tier }> = [];
      for (const id of this.byDomain.get(d)!) {
        const tier = this.tierOf(id);
        const wt = w[tier];
        const u = rng.random();
        if (wt > 0) list.push({ id, key: Math.log(u || Number.MIN_VALUE) / wt, tier });
      }
      list.sort((a, b) => b.key - a.key);
      ranked.set(d, list);
    }
    const props = this.proportions();
    const quotas = apportion(n, props, this.debt);
    const out: Drawn[] = [];
    const taken = new Map<string, number>();
    let shortfall = 0;
    for (const d of Object.keys(quotas).sort()) {
      const avail = ranked.get(d) ?? [];
      const q = quotas[d]!;
      const k = Math.min(q, avail.length);
      taken.set(d, k);
      shortfall += q - k;
    }
    // Hand unfilled quota to domains with prompts left, in proportion, until filled or exhausted.
    while (shortfall > 0) {
      const open: Record<string, number> = {};
      for (const [d, list] of ranked) if ((taken.get(d) ?? 0) < list.length && (props[d] ?? 0) > 0) open[d] = props[d]!;
      if (!Object.keys(open).length) for (const [d, list] of ranked) if ((taken.get(d) ?? 0) < list.length) open[d] = 1;
      if (!Object.keys(open).length) break;
      const extra = apportion(shortfall, open, {});
      let moved = 0;
      for (const [d, e] of Object.entries(extra)) {
        const have = taken.get(d) ?? 0;
        const k = Math.min(e, ranked.get(d)!.length - have);
        taken.set(d, have + k);
        moved += k;
      }
      if (moved === 0) break;
      shortfall -= moved;
    }
    for (const d of [...taken.keys()].sort()) {
      for (const e of ranked.get(d)!.slice(0, taken.get(d))) {
        this.records.get(e.id)!.drawn++;
        out.push({ sample: this.samples.get(e.id)!, tier: e.tier });
      }
    }
    return out;
  }

  /** Prompts per tier, per domain and over all (`*`). */
  populations(): Record<string, Record<Tier, number>> {
    const out: Record<string, Record<Tier, number>> = {};
    const zero = (): Record<Tier, number> => Object.fromEntries(TIERS.map((t) => [t, 0])) as Record<Tier, number>;
    out['*'] = zero();
    for (const [d, ids] of this.byDomain) {
      out[d] = zero();
      for (const id of ids) {
        const t = this.tierOf(id);
        out[d]![t]++;
        out['*']![t]++;
      }
    }
    return out;
  }

  toJSON(): CurriculumState {
    return {
      version: 1,
      records: [...this.records.values()].map((r) => [
        r.id,
        r.succ,
        r.tot,
        r.seen,
        r.lastStep,
        r.drawn,
        r.offline?.correct ?? null,
        r.offline?.k ?? null,
      ]),
      debt: { ...this.debt },
    };
  }

  /**
   * Restores a saved state. Prompts the state does not know keep their fresh records; saved prompts that are no
   * longer in the data are counted and ignored.
   */
  load(state: CurriculumState): { restored: number; unknown: number } {
    if (state?.version !== 1 || !Array.isArray(state.records))
      throw new Error(
        `curriculum state: expected { version: 1, records: [...] }, got ${JSON.stringify(state)?.slice(0, 80)}`,
      );
    let restored = 0;
    let unknown = 0;
    for (const row of state.records) {
      const [id, succ, tot, seen, lastStep, drawn, oc, ok] = row;
      const r = this.records.get(id);
      if (!r) {
        unknown++;
        continue;
      }
      r.succ = succ;
      r.tot = tot;
      r.seen = seen;
      r.lastStep = lastStep;
      r.drawn = drawn;
      r.offline = oc !== null && ok !== null ? { correct: oc, k: ok } : null;
      restored++;
    }
    this.debt = { ...(state.debt ?? {}) };
    return { restored, unknown };
  }

  /** Prompts with an offline result. */
  offlineCount(): number {
    let n = 0;
    for (const r of this.records.values()) if (r.offline) n++;
    return n;
  }
}
