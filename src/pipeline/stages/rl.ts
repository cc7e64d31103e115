/**
 * The pipeline's RL stages: the headroom check (pass@1 vs pass@k of the SFT model on RL prompts), the RL run (its
 * final policy written as a complete model folder), and more RL seeds from the same SFT model, each evaluated, so the
 * RL gain is a mean over seeds with its spread.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample } from '../../data/sample.js';
import { meanSd } from '../../eval/metrics.js';
import { parseRlConfig, type RlConfigInput } from '../../rl/config.js';
import { GlmPolicy } from '../../rl/glm.js';
import { type PassKDomain, passAtKResults, passKSummary, samplingOf, writePassK } from '../../rl/passk.js';
import { buildEngine, buildPolicy, buildRouter, loadPrompts } from '../../rl/setup.js';
import { RlTrainer, stepSeed } from '../../rl/trainer.js';
import type { RolloutPrompt } from '../../rl/types.js';
import { readMetricsFile } from '../../util/progress.js';
import { deepMerge } from '../config.js';
import type { StageEval } from '../evaluate.js';
import type { HeadroomSummary, SeedRun, SeedScore, StageRecord } from '../state.js';
import { evaluateModel } from './eval.js';
import { copyModelFiles, type StageContext, type StageOutcome } from './stage.js';

/** The RL stage's config; `extraSeed` k ≥ 1 is the same run with seed + k in RUN/rl-seed<k>. */
function rlConfig(c: StageContext, extraSeed = 0): RlConfigInput {
  const p = c.paths;
  const base: RlConfigInput = {
    run: { dir: p.stage('rl'), seed: c.config.seed, steps: 40, checkpointEvery: 10, keepCheckpoints: 2 },
    policy: { kind: 'glm', path: p.final('sft') },
    data: { sources: [{ kind: 'dataset', path: p.data.rl }] },
    batch: { prompts: 16 },
    rollout: { groupSize: 8, temperature: 1, topP: 1, maxThinkingTokens: 160, maxAnswerTokens: 32, style: 'glm41v' },
    grpo: { lr: 5e-5 },
  } as RlConfigInput;
  const merged = deepMerge(base, c.config.rl) as RlConfigInput & { run: { seed: number } };
  if (extraSeed === 0) return merged;
  return deepMerge(merged, { run: { dir: p.rlSeed(extraSeed), seed: merged.run.seed + extraSeed } });
}

/** Prompts taken in turn from each domain (in pool order), so a small check sees every domain. */
function balancedPrompts(samples: readonly Sample[], n: number): Sample[] {
  const byDomain = new Map<string, Sample[]>();
  for (const s of samples) {
    const l = byDomain.get(s.domain);
    if (l) l.push(s);
    else byDomain.set(s.domain, [s]);
  }
  const lists = [...byDomain.values()];
  const out: Sample[] = [];
  for (let i = 0; out.length < n && lists.some((l) => i < l.length); i++)
    for (const l of lists) if (i < l.length && out.length < n) out.push(l[i]!);
  return out;
}

/** pass@1 vs pass@k of the SFT model on RL prompts: does RL have anything to sharpen? (the RL stage reads the verdict) */
export async function headroomStage(c: StageContext): Promise<StageOutcome> {
  const h = c.config.headroom;
  if (h.n === 0) return { skipped: true, summary: { reason: 'headroom.n is 0' } };
  const raw = rlConfig(c) as Record<string, unknown>;
  if (raw.skip === true) return { skipped: true, summary: { reason: 'rl.skip is set' } };
  const config = parseRlConfig(raw, 'pipeline headroom check');
  const prompts = balancedPrompts(await loadPrompts(config), h.n);
  const policy = await buildPolicy(config, prompts, { quiet: c.quiet });
  const engine = buildEngine(config, policy);
  const router = buildRouter(config);
  try {
    const rp: RolloutPrompt[] = [];
    for (const s of prompts) rp.push({ sample: s, input: await policy.encodePrompt(s) });
    const results = await passAtKResults(
      engine,
      router,
      rp,
      h.k,
      samplingOf(config.rollout, stepSeed(config.run.seed, -1, 9)),
      { concurrency: config.rewardConcurrency, quiet: c.quiet, label: `headroom pass@${h.k}` },
    );
    if (c.signal?.aborted) return 'interrupted';
    const file = `${c.paths.eval('headroom-sft')}.json`;
    mkdirSync(join(c.out, 'eval'), { recursive: true });
    writePassK(file, results, { k: h.k, model: config.policy.kind === 'glm' ? config.policy.path : null });
    const rates = (v: PassKDomain) => ({ prompts: v.prompts, pass1: v.passRate, passk: v.solvedAny / v.prompts });
    const { '*': all, ...domains } = passKSummary(results);
    const total = all ? rates(all) : { prompts: 0, pass1: 0, passk: 0 };
    const summary: HeadroomSummary = {
      model: c.paths.final('sft'),
      k: h.k,
      ...total,
      gap: total.passk - total.pass1,
      minGap: h.minGap,
      perDomain: Object.fromEntries(Object.entries(domains).map(([d, v]) => [d, rates(v)])),
      file,
    };
    c.log(
      `pipeline: RL headroom of the SFT model on ${summary.prompts} RL prompts: pass@1 ${(100 * summary.pass1).toFixed(1)}%, pass@${h.k} ${(100 * summary.passk).toFixed(1)}% (gap ${(100 * summary.gap).toFixed(1)} points; RL needs ${(100 * h.minGap).toFixed(1)})`,
    );
    return { summary: summary as unknown as Record<string, unknown> };
  } finally {
    await engine.close?.();
    await router.close();
  }
}

export async function rlStage(c: StageContext): Promise<StageOutcome> {
  const raw = rlConfig(c) as Record<string, unknown>;
  if (raw.skip === true) return { skipped: true, summary: { reason: 'rl.skip is set' } };
  const hr = c.state.stages.headroom;
  if (hr?.status === 'done') {
    const h = hr.summary as unknown as HeadroomSummary;
    if (h.gap < h.minGap)
      return {
        skipped: true,
        summary: {
          reason: `no RL headroom: pass@${h.k} − pass@1 of the SFT model is ${(100 * h.gap).toFixed(1)} points, under headroom.minGap ${(100 * h.minGap).toFixed(1)}`,
        },
      };
  }
  const r = await trainRl(c, raw, c.paths.final('rl'));
  if (r === 'interrupted') return r;
  return { summary: r };
}

/** Trains (or resumes) one RL run and writes its final policy as a complete model folder at `final`. */
async function trainRl(
  c: StageContext,
  raw: Record<string, unknown>,
  final: string,
): Promise<Record<string, unknown> | 'interrupted'> {
  const config = parseRlConfig(raw, 'pipeline rl stage');
  const runDir = config.run.dir;
  const resume = existsSync(join(runDir, 'checkpoints', 'latest'));
  if (!resume && existsSync(runDir)) rmSync(runDir, { recursive: true, force: true });
  const prompts = await loadPrompts(config);
  const policy = await buildPolicy(config, prompts, { skipInit: resume, quiet: c.quiet, log: c.log });
  const engine = buildEngine(config, policy);
  const router = buildRouter(config);
  const trainer = new RlTrainer(config, { policy, engine, router, samples: prompts, log: c.log, quiet: c.quiet });
  try {
    await trainer.start({ resume });
    const records = await trainer.run({ shouldStop: () => !!c.signal?.aborted });
    if (c.signal?.aborted) return 'interrupted';
    // The final policy as a complete model folder (what eval, chat and ship read): weights from the policy, the
    // tokenizer, template and processor config from the SFT model it started from.
    if (!(policy instanceof GlmPolicy)) throw new Error('pipeline: the RL stage needs the GLM policy');
    const tmp = `${final}.tmp-${process.pid}`;
    rmSync(tmp, { recursive: true, force: true });
    policy.chat.model.save(tmp);
    copyModelFiles(c.paths.final('sft'), tmp);
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    const last = records[records.length - 1] ?? null;
    return { seed: config.run.seed, steps: trainer.step, skippedUpdates: trainer.skipped, last, final };
  } finally {
    await engine.close?.();
    await router.close();
  }
}

/** RL step time from the seed's metrics plus its evaluations' time. */
function seedSeconds(runDir: string, modes: Record<string, StageEval>): number {
  const stepMs = readMetricsFile(join(runDir, 'metrics.jsonl')).reduce(
    (a, r) => a + ((r.ms as { total?: number } | undefined)?.total ?? 0),
    0,
  );
  return stepMs / 1000 + Object.values(modes).reduce((a, e) => a + (e.seconds ?? 0), 0);
}

function seedScore(ev: StageEval): SeedScore {
  return {
    accuracy: ev.accuracy,
    meanReward: ev.meanReward,
    formatRate: ev.formatRate,
    perDomain: Object.fromEntries(Object.entries(ev.perDomain).map(([d, v]) => [d, v.accuracy])),
  };
}

/**
 * RL from the same SFT model with more seeds (config.rlSeeds), each trained and evaluated like the RL stage, so the
 * RL gain over SFT is a mean over seeds with its spread rather than one draw. Seeds already evaluated are reused, so
 * an interrupted stage (or a raised rlSeeds) only runs what is missing.
 */
export async function rlSeedsStage(c: StageContext): Promise<StageOutcome> {
  const n = c.config.rlSeeds;
  if (n <= 1) return { skipped: true, summary: { reason: 'rlSeeds is 1' } };
  const rl = c.state.stages.rl;
  const evalRl = c.state.stages['eval-rl'];
  if (rl?.status !== 'done' || evalRl?.status !== 'done') return { skipped: true, summary: { reason: 'no RL stage' } };
  const modesOf = (rec: StageRecord | undefined) => (rec?.summary.modes ?? {}) as Record<string, StageEval>;
  const toScores = (m: Record<string, StageEval>) =>
    Object.fromEntries(Object.entries(m).map(([mode, ev]) => [mode, seedScore(ev)]));
  const runs: SeedRun[] = [
    {
      // Runs from before the seed was recorded used the configured one.
      seed: (rl.summary.seed as number | undefined) ?? (rlConfig(c) as { run: { seed: number } }).run.seed,
      model: c.paths.final('rl'),
      modes: toScores(modesOf(evalRl)),
    },
  ];
  for (let k = 1; k < n; k++) {
    const raw = rlConfig(c, k) as Record<string, unknown> & { run: { dir: string; seed: number } };
    const final = join(raw.run.dir, 'final');
    const name = `rl-seed${k}`;
    const summaries = c.config.eval.modes.map((m) => join(c.paths.eval(`${name}-${m}`), 'summary.json'));
    let modes: Record<string, StageEval>;
    if (existsSync(final) && summaries.every((f) => existsSync(f))) {
      modes = Object.fromEntries(
        c.config.eval.modes.map((m, i) => [m, JSON.parse(readFileSync(summaries[i]!, 'utf8')) as StageEval]),
      );
    } else {
      c.log(`pipeline: RL seed ${raw.run.seed} (${k + 1} of ${n}) → ${raw.run.dir}`);
      if (!existsSync(final)) {
        const r = await trainRl(c, raw, final);
        if (r === 'interrupted') return r;
      }
      const ev = await evaluateModel(c, final, name);
      if (ev === 'interrupted') return ev;
      modes = ev;
    }
    runs.push({ seed: raw.run.seed, model: final, modes: toScores(modes), seconds: seedSeconds(raw.run.dir, modes) });
  }
  const sft = toScores(modesOf(c.state.stages['eval-sft']));
  const mean: Record<string, Record<string, { mean: number; sd: number }>> = {};
  for (const mode of c.config.eval.modes) {
    const got = runs.map((r) => r.modes[mode]).filter((x): x is SeedScore => !!x);
    if (got.length !== runs.length) continue;
    const stats: Record<string, { mean: number; sd: number }> = {
      accuracy: meanSd(got.map((g) => g.accuracy)),
      meanReward: meanSd(got.map((g) => g.meanReward)),
      formatRate: meanSd(got.map((g) => g.formatRate)),
    };
    if (sft[mode]) {
      stats.accuracyGain = meanSd(got.map((g) => g.accuracy - sft[mode]!.accuracy));
      stats.rewardGain = meanSd(got.map((g) => g.meanReward - sft[mode]!.meanReward));
    }
    mean[mode] = stats;
    const g = stats.rewardGain;
    c.log(
      `pipeline: RL over ${runs.length} seeds, ${mode}: accuracy ${(100 * stats.accuracy!.mean).toFixed(1)} ± ${(100 * stats.accuracy!.sd).toFixed(1)}%` +
        (g
          ? `, mean reward ${g.mean >= 0 ? '+' : ''}${(100 * g.mean).toFixed(1)} ± ${(100 * g.sd).toFixed(1)} points over SFT`
          : ''),
    );
  }
  const computeSeconds = runs.reduce((a, r) => a + (r.seconds ?? 0), 0);
  return { summary: { seeds: runs, sft, mean, computeSeconds } };
}
