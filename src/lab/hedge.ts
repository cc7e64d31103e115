/**
 * Experiment 5's start model: the lab's start model after a short SFT in which a share of the reasoning targets end
 * in a hedge — the working as before, then a range around the answer in the box (`… so 214. The answer is from 200 to 230.` →
 * `200 to 230`). A paper-scale model brings such habits from pre-training; the lab's small model learns only what its
 * SFT shows, so without them a hackable verifier has nothing to amplify (40 RL steps from the plain start model never
 * found the hack: docs/lab/reasoning.md section 8). From this model the strict verifier makes hedging pay nothing, while
 * the hackable one pays every range that covers the reference — more often than a committed answer is right.
 */
import { RewardRouter } from '../reward/router.js';
import { GlmPolicy } from '../rl/glm.js';
import type { SftConfig } from '../train/config.js';
import { runStageResumable } from '../train/trainer.js';
import { evaluateLab } from './eval.js';
import { formatLabValue, parseLabValue } from './hackable.js';
import { deriveData, followOnSftConfig, hashUnit, readAll, rewriteSamples, type StageCtx } from './model.js';

/**
 * The ends of a range around `answer`, each some way off on its side (`u1`, `u2` in [0, 1) choose how far): numbers
 * up to a fifth of their size (at least 3), clock times 5 to 45 minutes in steps of 5. Null for an answer that is
 * neither.
 */
export function hedgeRange(answer: string, u1: number, u2: number): { lo: string; hi: string } | null {
  const v = parseLabValue(answer);
  if (!v) return null;
  let below: number;
  let above: number;
  let decimals = 0;
  if (v.kind === 'time') {
    below = 5 * (1 + Math.floor(u1 * 9));
    above = 5 * (1 + Math.floor(u2 * 9));
  } else {
    decimals = answer.split('.')[1]?.length ?? 0;
    const reach = Math.max(3, Math.round(Math.abs(v.v) / 5));
    below = 1 + Math.floor(u1 * reach);
    above = 1 + Math.floor(u2 * reach);
  }
  return { lo: formatLabValue(v.v - below, v, decimals), hi: formatLabValue(v.v + above, v, decimals) };
}

/**
 * A string's hash in [0, 1), well mixed: FNV-1a (`hashUnit`) then MurmurHash3's finaliser, since FNV's high bits
 * barely move when only the last characters of a long shared prefix differ (ids of one dataset).
 */
function mixedUnit(s: string): number {
  let h = Math.round(hashUnit(s) * 2 ** 32) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return ((h ^ (h >>> 16)) >>> 0) / 2 ** 32;
}

/**
 * The words a hedged target's thinking ends with before its range. Only words the lab's SFT text already has: a word
 * the tokenizer never saw is spelled letter by letter, and learning it wore the whole model down (greedy 43 → 8.5 %).
 */
export const HEDGE_MARK = 'The answer is from';

/**
 * Rewrites `share` of the reasoning samples in `dir` (chosen by a hash of id and seed, apart from the shortcut choice)
 * to end in a hedge: the rationale gains `The answer is from LO to HI.` and the answer becomes `LO to HI`. Each shard's file is
 * replaced atomically. Returns how many samples hedge.
 */
export function hedgeTargets(dir: string, share: number, seed: number): number {
  return rewriteSamples(dir, (s) => {
    const m = s.meta as { task?: string; hedged?: boolean } | undefined;
    if (m?.task !== 'reason' || m.hedged || !s.rationale) return null;
    if (!(mixedUnit(`hedge:${seed}:${s.id}`) < share)) return null;
    const range = hedgeRange(s.answer, mixedUnit(`lo:${seed}:${s.id}`), mixedUnit(`hi:${seed}:${s.id}`));
    if (!range) return null;
    return {
      ...s,
      rationale: `${s.rationale.trim()} ${HEDGE_MARK} ${range.lo} to ${range.hi}.`,
      answer: `${range.lo} to ${range.hi}`,
      meta: { ...m, hedged: true },
    };
  });
}

/** The hedge stage's SFT: from the start model, on its own training data with hedges, the vision tower frozen. */
export function hedgeConfig(c: StageCtx) {
  const k = c.config.hedge;
  return followOnSftConfig(
    c,
    {
      dir: c.paths.hedge,
      init: c.paths.startModel,
      data: c.paths.data.hedge,
      steps: k.steps,
      lr: k.lr,
      freezeVision: true,
      warmupCap: 5,
    },
    'lab hedge stage',
  );
}

/**
 * The hedge stage: the start model's training data (the cold start's when there is one) with `hedge.share` of the
 * reasoning targets hedged, a short SFT from the start model, then that model's greedy accuracy and hedge rate on the
 * held-out set (experiment 5's start).
 */
export async function hedgeStage(c: StageCtx): Promise<Record<string, unknown> | 'interrupted'> {
  const k = c.config.hedge;
  const from = c.config.coldStart.steps > 0 ? c.paths.data.cold : c.paths.data.sft;
  const hedged = deriveData(from, c.paths.data.hedge, (dir) => hedgeTargets(dir, k.share, c.config.seed));
  const r = await runStageResumable(hedgeConfig(c) as SftConfig, { quiet: c.quiet, log: c.log, signal: c.signal });
  if (r.interrupted) return 'interrupted';
  const policy = await GlmPolicy.load(c.paths.hedgeModel);
  const router = new RewardRouter({ cas: { enabled: false } });
  try {
    const e = c.config.eval;
    const held = await evaluateLab(policy.chat, router, await readAll(c.paths.data.heldout), {
      maxNewTokens: e.maxNewTokens,
      batchSize: e.batchSize,
      quiet: c.quiet,
      label: 'hedge model held-out',
    });
    c.log(
      `lab: hedge model — held-out greedy ${(100 * held.score.accuracy).toFixed(1)}%, hedged ${(100 * (held.score.hedgeRate ?? 0)).toFixed(1)}% of answers`,
    );
    return {
      steps: r.steps,
      loss: r.loss,
      share: k.share,
      ...(hedged !== null ? { hedged } : {}),
      heldout: held.score,
    };
  } finally {
    await router.close();
  }
}
