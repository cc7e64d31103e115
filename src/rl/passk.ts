/**
 * Offline pass@k: run a model k times on every prompt and score each response with the reward router. The results
 * seed RLCS difficulty tiers (paper §5.1: "offline pass@k with several models or earlier RL checkpoints"); a file
 * written by `glmv rl passk` can be produced with any served model and merged into a run with
 * `curriculum.offlinePassK.file`.
 */
import { writeFileSync } from 'node:fs';
import type { RewardRouter } from '../reward/router.js';
import { Progress } from '../util/progress.js';
import type { RlConfig } from './config.js';
import type { RolloutEngine, RolloutPrompt, SamplingParams } from './types.js';

/** The rollout settings of a run as sampling parameters (what training, pass@k and the headroom check sample with). */
export function samplingOf(r: RlConfig['rollout'], seed: number): SamplingParams {
  return {
    temperature: r.temperature,
    topP: r.topP,
    topK: r.topK,
    maxThinkingTokens: r.maxThinkingTokens,
    maxAnswerTokens: r.maxAnswerTokens,
    forceAnswer: r.forceAnswer,
    style: r.style,
    seed,
  };
}

export interface OfflineResult {
  id: string;
  domain: string;
  /** Correct responses among the k usable ones (unjudged and errored responses are not counted in k). */
  correct: number;
  k: number;
  rewardMean: number;
  forced: number;
}

/** Unbiased pass@k from n samples with c correct (Chen et al. 2021): 1 − C(n−c, k) / C(n, k). */
export function passAtK(n: number, c: number, k: number): number {
  if (!(Number.isInteger(n) && Number.isInteger(c) && Number.isInteger(k)) || c < 0 || c > n || k < 1 || k > n)
    throw new Error(`passAtK: need integers 0 <= c <= n and 1 <= k <= n, got n=${n} c=${c} k=${k}`);
  if (n - c < k) return 1;
  let p = 1;
  for (let i = n - c + 1; i <= n; i++) p *= 1 - k / i;
  return 1 - p;
}

export interface PassKOptions {
  concurrency?: number;
  /** Prompts rolled out per engine call. Default 32. */
  chunk?: number;
  quiet?: boolean;
  label?: string;
}

export async function passAtKResults(
  engine: RolloutEngine,
  router: RewardRouter,
  prompts: readonly RolloutPrompt[],
  k: number,
  params: SamplingParams,
  opts: PassKOptions = {},
): Promise<OfflineResult[]> {
  if (!Number.isInteger(k) || k < 1) throw new Error(`pass@k: k must be a positive integer, got ${k}`);
  const chunk = opts.chunk ?? 32;
  const bar = new Progress({ label: opts.label ?? `pass@${k}`, total: prompts.length, quiet: opts.quiet });
  const out: OfflineResult[] = [];
  let done = 0;
  for (let s = 0; s < prompts.length; s += chunk) {
    const part = prompts.slice(s, s + chunk);
    const groups = await engine.generate(part, k, { ...params, seed: (params.seed + s) >>> 0 });
    const items = part.flatMap((p, i) =>
      groups[i]!.filter((r) => r.finishReason !== 'error').map((r) => ({
        sample: p.sample,
        response: r.text,
        meta: { tokens: r.tokenIds.length || undefined, finishReason: r.finishReason },
        forced: r.forced,
        i,
      })),
    );
    const results = await router.scoreBatch(items, { concurrency: opts.concurrency ?? 16 });
    part.forEach((p, i) => {
      const mine = results.filter((_, j) => items[j]!.i === i);
      const usable = mine.filter((r) => r.status === 'scored' || r.status === 'gated');
      if (!usable.length) return;
      out.push({
        id: p.sample.id,
        domain: p.sample.domain,
        correct: usable.filter((r) => r.correct).length,
        k: usable.length,
        rewardMean: usable.reduce((a, r) => a + r.reward, 0) / usable.length,
        forced: items.filter((it) => it.i === i && it.forced).length,
      });
    });
    done += part.length;
    const mean = out.length ? out.reduce((a, r) => a + r.correct / r.k, 0) / out.length : 0;
    bar.update(done, `mean pass ${(mean * 100).toFixed(1)}%`);
  }
  bar.stop();
  return out;
}

export interface PassKDomain {
  prompts: number;
  /** Mean share of correct samples per prompt: pass@1 at the sampling temperature. */
  passRate: number;
  /** Prompts with at least one correct sample (pass@k with k = the samples drawn). */
  solvedAny: number;
  /** Prompts with every sample correct. */
  solvedAll: number;
}

/** Per-domain pass@1 / pass@k counts of pass@k results, and over all prompts (`*`). */
export function passKSummary(results: readonly OfflineResult[]): Record<string, PassKDomain> {
  const byDomain: Record<string, PassKDomain> = {};
  for (const r of results) {
    for (const key of [r.domain, '*']) {
      byDomain[key] ??= { prompts: 0, passRate: 0, solvedAny: 0, solvedAll: 0 };
      const d = byDomain[key]!;
      d.prompts++;
      d.passRate += r.correct / r.k;
      if (r.correct > 0) d.solvedAny++;
      if (r.correct === r.k) d.solvedAll++;
    }
  }
  for (const d of Object.values(byDomain)) d.passRate /= d.prompts;
  return byDomain;
}

/** Writes results with a per-domain summary (the file `curriculum.offlinePassK.file` reads). */
export function writePassK(path: string, results: readonly OfflineResult[], meta: Record<string, unknown>): void {
  writeFileSync(path, `${JSON.stringify({ ...meta, summary: passKSummary(results), results }, null, 1)}\n`);
}
