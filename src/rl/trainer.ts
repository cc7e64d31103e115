/**
 * The RL trainer loop. One iteration:
 *
 *   1. draw ceil(prompts × expansion EMA) prompts from the curriculum (tier-weighted, domain-mixed);
 *   2. roll out G responses each (local or server engine; thinking budget + force answering);
 *   3. score every response with the reward router (gates, verifiers, judge);
 *   4. feed the online pass rates to RLCS and the invalid share to the expansion EMA;
 *   5. keep the `prompts` most balanced groups with reward variance (fewer when fewer are valid: logged, never fatal);
 *   6. group-normalised advantages; π_old recomputed; `epochs` × `miniBatches` clipped-surrogate updates;
 *   7. metrics (JSONL, per domain), rollouts (JSONL, for `glmv rl inspect`), checkpoints (exact resume).
 *
 * Randomness of step t comes only from Rng(seed, t), so a resumed run replays the uninterrupted one exactly.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample } from '../data/sample.js';
import { loadSafetensors, noGrad, optim, saveSafetensors, scope } from '../engine/index.js';
import type { RewardRouter } from '../reward/router.js';
import type { RewardResult } from '../reward/types.js';
import { MetricsWriter, Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint, stepName } from './checkpoint.js';
import { type RlConfig, RlConfigSchema } from './config.js';
import { ExpansionController, type GroupSummary, isInvalidGroup, selectBalanced } from './expansion.js';
import {
  addStats,
  aggNorm,
  aggregationWeights,
  groupAdvantages,
  klValue,
  type PolicyLossConfig,
  type PolicyLossStats,
  policyLoss,
} from './grpo.js';
import { lengthMetrics, lengthPenalty } from './length.js';
import { type OfflineResult, passAtKResults, samplingOf } from './passk.js';
import { Curriculum, TIERS, type Tier } from './rlcs.js';
import type {
  Policy,
  PolicyItem,
  PromptInput,
  Rollout,
  RolloutEngine,
  RolloutPrompt,
  SamplingParams,
} from './types.js';

type AdamW = InstanceType<typeof optim.AdamW>;

/** A seed for (run seed, step, purpose) — independent streams that do not depend on what ran before. */
export function stepSeed(seed: number, step: number, purpose: number): number {
  let h = (seed >>> 0) ^ Math.imul(step + 1, 0x9e3779b1) ^ Math.imul(purpose + 1, 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d);
  h = Math.imul(h ^ (h >>> 15), 0x846ca68b);
  return (h ^ (h >>> 16)) >>> 0;
}

export interface TrainerDeps {
  policy: Policy;
  engine: RolloutEngine;
  router: RewardRouter;
  samples: readonly Sample[];
  /** Where the run's messages go (default: stderr). */
  log?: (line: string) => void;
  /** No progress bar (tests). */
  quiet?: boolean;
}

/** One rollout with everything the logs and the update need. */
interface Scored {
  group: number;
  k: number;
  rollout: Rollout;
  result: RewardResult | null;
  usable: boolean;
  /** What the reward loses under `lengthControl` (0 when off or unusable). */
  penalty: number;
}

/** The reward every group statistic uses: the scored reward less the thinking-length penalty. */
const shapedReward = (s: Scored) => s.result!.reward - s.penalty;

interface TrainItem extends PolicyItem {
  mask: Uint8Array;
  advantage: number;
  old: Float32Array;
  ref: Float32Array | null;
  rolloutLogprobs: Float32Array | null;
}

export interface StepRecord {
  step: number;
  [k: string]: unknown;
}

const mean = (xs: readonly number[]) => (xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : 0);

export class RlTrainer {
  readonly config: RlConfig;
  readonly policy: Policy;
  readonly engine: RolloutEngine;
  readonly router: RewardRouter;
  readonly curriculum: Curriculum;
  readonly expansion: ExpansionController;
  readonly opt: AdamW;
  readonly metrics: MetricsWriter;
  private reference: Policy | null = null;
  private readonly encoded = new Map<string, PromptInput>();
  private readonly log: (line: string) => void;
  private readonly quiet: boolean;
  step = 0;
  skipped = 0;

  constructor(config: RlConfig, deps: TrainerDeps) {
    this.config = config;
    this.policy = deps.policy;
    this.engine = deps.engine;
    this.router = deps.router;
    this.log = deps.log ?? ((l) => process.stderr.write(`${l}\n`));
    this.quiet = deps.quiet ?? false;
    const cur = config.curriculum;
    const flat = Object.fromEntries(TIERS.map((t) => [t, 1])) as Record<Tier, number>;
    this.curriculum = new Curriculum(deps.samples, {
      thresholds: cur.thresholds,
      schedule: cur.enabled ? cur.schedule : [{ step: 0, weights: flat }],
      onlineDecay: cur.onlineDecay,
      labelPrior: cur.labelPrior,
      offlineWeight: cur.offlineWeight,
      mix: cur.mix,
    });
    this.expansion = new ExpansionController({
      decay: config.expansion.decay,
      maxRatio: config.expansion.maxRatio,
      initialRatio: config.expansion.initialRatio,
    });
    const g = config.grpo;
    this.opt = new optim.AdamW(this.policy.parameters(), { lr: g.lr, weightDecay: g.weightDecay, betas: g.betas });
    mkdirSync(config.run.dir, { recursive: true });
    this.metrics = new MetricsWriter(join(config.run.dir, 'metrics.jsonl'));
  }

  get runDir(): string {
    return this.config.run.dir;
  }

  private get needsReference(): boolean {
    return this.config.grpo.kl.coef > 0;
  }

  /**
   * Prepares a fresh run (config, initial weights, offline pass@k) or resumes the newest checkpoint. Returns the step
   * the run continues from.
   */
  async start(opts: { resume: boolean }): Promise<number> {
    const dir = this.runDir;
    const cfgPath = join(dir, 'config.json');
    const ckpt = latestCheckpoint(dir);
    if (opts.resume) {
      if (!existsSync(cfgPath)) throw new Error(`resume ${dir}: no config.json, so this is not an RL run folder`);
      const raw = JSON.parse(readFileSync(cfgPath, 'utf8')) as unknown;
      // A run saved before a field existed compares with that field's default.
      const parsed = RlConfigSchema.safeParse(raw);
      const saved = parsed.success ? parsed.data : (raw as RlConfig);
      const diff = configDiff(saved, this.config);
      if (diff.length)
        throw new Error(
          `resume ${dir}: the config differs from the run's (${diff.slice(0, 5).join('; ')}); only run.steps may change on resume`,
        );
      if (!ckpt) throw new Error(`resume ${dir}: no checkpoint to resume from (checkpoints/ is empty)`);
      const state = loadCheckpoint(ckpt, this.policy, this.opt);
      const { unknown } = this.curriculum.load(state.curriculum);
      if (unknown) this.log(`resume: ${unknown} prompts of the saved curriculum are not in the data any more`);
      this.expansion.state = { ...state.expansion };
      this.skipped = state.skipped;
      this.step = state.nextStep;
      this.truncateLogs(this.step);
      if (this.needsReference) this.loadReference();
      this.log(`resumed ${dir} from ${ckpt} at step ${this.step}`);
      return this.step;
    }
    assertFreshRunDir(dir);
    writeFileSync(cfgPath, JSON.stringify(this.config, null, 2));
    saveSafetensors(join(dir, 'init.safetensors'), this.policy.stateDict());
    if (this.needsReference) this.loadReference();
    await this.offlinePassK();
    this.step = 0;
    return 0;
  }

  private loadReference(): void {
    const ref = this.policy.snapshot();
    ref.loadStateDict(loadSafetensors(join(this.runDir, 'init.safetensors')));
    this.reference = ref;
  }

  /** Drops metrics and rollout logs of steps at or after `from` (they are replayed after a resume). */
  private truncateLogs(from: number): void {
    const mp = join(this.runDir, 'metrics.jsonl');
    if (existsSync(mp)) {
      const lines = readFileSync(mp, 'utf8').split('\n').filter(Boolean);
      const keep = lines.filter((l) => {
        try {
          const r = JSON.parse(l) as { step?: number };
          return typeof r.step !== 'number' || r.step < from;
        } catch {
          return false;
        }
      });
      writeFileSync(mp, keep.length ? `${keep.join('\n')}\n` : '');
    }
    const rd = join(this.runDir, 'rollouts');
    if (existsSync(rd))
      for (const f of readdirSync(rd)) {
        const m = /^step-(\d+)\.jsonl$/.exec(f);
        if (m && Number(m[1]) >= from) rmSync(join(rd, f));
      }
  }

  private async offlinePassK(): Promise<void> {
    const o = this.config.curriculum.offlinePassK;
    if (o.file) {
      const data = JSON.parse(readFileSync(o.file, 'utf8')) as { results?: OfflineResult[] };
      if (!Array.isArray(data.results))
        throw new Error(`curriculum.offlinePassK.file ${o.file}: expected { results: [...] }`);
      let applied = 0;
      for (const r of data.results)
        if (this.curriculum.sample(r.id)) {
          this.curriculum.setOffline(r.id, r.correct, r.k);
          applied++;
        }
      this.log(`offline pass@k: ${applied} of ${data.results.length} results from ${o.file} match prompts of this run`);
      this.metrics.write({ event: 'offline_passk', source: o.file, applied, tiers: this.curriculum.populations() });
      return;
    }
    if (o.k <= 0) return;
    const rng = new Rng(stepSeed(this.config.run.seed, -1, 7));
    let ids = this.curriculum.allSamples().map((x) => x.id);
    if (o.maxPrompts && ids.length > o.maxPrompts) ids = rng.shuffle(ids).slice(0, o.maxPrompts);
    const prompts: RolloutPrompt[] = [];
    for (const id of ids) prompts.push(await this.prompt(this.curriculum.sample(id)!));
    const results = await passAtKResults(
      this.engine,
      this.router,
      prompts,
      o.k,
      this.sampling(stepSeed(this.config.run.seed, -1, 8)),
      {
        concurrency: this.config.rewardConcurrency,
        quiet: this.quiet,
      },
    );
    for (const r of results) this.curriculum.setOffline(r.id, r.correct, r.k);
    const pass = mean(results.map((r) => r.correct / r.k));
    this.log(`offline pass@${o.k}: ${results.length} prompts, mean pass rate ${(pass * 100).toFixed(1)}%`);
    this.metrics.write({
      event: 'offline_passk',
      k: o.k,
      prompts: results.length,
      pass_rate: pass,
      tiers: this.curriculum.populations(),
    });
  }

  private async prompt(sample: Sample): Promise<RolloutPrompt> {
    let input = this.encoded.get(sample.id);
    if (!input) {
      input = await this.policy.encodePrompt(sample);
      // Text-only prompts are cheap to keep; image prompts hold pixel rows, so only the ids are cached for them.
      if (!input.extra) this.encoded.set(sample.id, input);
    }
    return { sample, input };
  }

  sampling(seed: number): SamplingParams {
    return samplingOf(this.config.rollout, seed);
  }

  private lossConfig(): PolicyLossConfig {
    const g = this.config.grpo;
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

  /** Runs from the current step to run.steps; checkpoints on schedule, at the end and when `shouldStop` turns true. */
  async run(opts: { shouldStop?: () => boolean; stopAfter?: number } = {}): Promise<StepRecord[]> {
    const total = this.config.run.steps;
    const bar = new Progress({ label: 'rl', total, quiet: this.quiet });
    bar.update(this.step);
    const records: StepRecord[] = [];
    let ran = 0;
    while (this.step < total) {
      const rec = await this.runStep();
      records.push(rec);
      ran++;
      const dom = rec.domains as Record<string, { pass: number }>;
      bar.update(
        this.step,
        `reward ${(rec.reward_mean as number).toFixed(3)} pass ${((rec.pass_rate as number) * 100).toFixed(0)}% ` +
          `ema ${(rec.expansion_ema as number).toFixed(2)} ${Object.entries(dom)
            .map(([d, v]) => `${d} ${(v.pass * 100).toFixed(0)}%`)
            .join(' ')}`,
      );
      const every = this.config.run.checkpointEvery;
      const stop = opts.shouldStop?.() || (opts.stopAfter !== undefined && ran >= opts.stopAfter);
      if ((every > 0 && this.step % every === 0) || this.step === total || stop) this.checkpoint();
      if (stop) break;
    }
    bar.stop();
    return records;
  }

  checkpoint(): string {
    return saveCheckpoint(
      this.runDir,
      this.step,
      this.policy,
      this.opt,
      {
        nextStep: this.step,
        curriculum: this.curriculum.toJSON(),
        expansion: { ...this.expansion.state },
        skipped: this.skipped,
      },
      this.config.run.keepCheckpoints,
    );
  }

  /** One RL iteration; advances `step`. */
  async runStep(): Promise<StepRecord> {
    const c = this.config;
    const t = this.step;
    const seed = c.run.seed;
    const tStart = performance.now();
    const G = c.rollout.groupSize;
    const N = c.batch.prompts;
    const maxRollouts = c.expansion.maxRolloutsPerStep ?? Math.ceil(N * G * c.expansion.maxRatio);
    const nGen = c.expansion.enabled ? this.expansion.promptsToSample(N, G, maxRollouts) : N;
    const emaBefore = this.expansion.state.ema;

    // 1. prompts
    const drawn = this.curriculum.draw(nGen, t, new Rng(stepSeed(seed, t, 1)));
    if (drawn.length === 0) {
      const pops = this.curriculum.populations()['*']!;
      const w = this.curriculum.weightsAt(t);
      throw new Error(
        `step ${t}: the curriculum drew no prompt — every prompt sits in a tier whose weight is 0 at this step ` +
          `(populations ${JSON.stringify(pops)}, weights ${JSON.stringify(w)}); give those tiers a weight in curriculum.schedule`,
      );
    }
    const prompts: RolloutPrompt[] = [];
    for (const d of drawn) prompts.push(await this.prompt(d.sample));

    // 2. rollouts (an engine sampling from a copy of the weights gets this step's first)
    const t0 = performance.now();
    if (this.engine.syncPolicy && prompts.length) await this.engine.syncPolicy(this.policy, t);
    const groups = prompts.length ? await this.engine.generate(prompts, G, this.sampling(stepSeed(seed, t, 2))) : [];
    const msGen = performance.now() - t0;

    // 3. rewards
    const t1 = performance.now();
    const flat: Scored[] = [];
    for (const [i, g] of groups.entries())
      for (const [k, rollout] of g.entries())
        flat.push({ group: i, k, rollout, result: null, usable: false, penalty: 0 });
    const toScore = flat.filter((s) => s.rollout.finishReason !== 'error');
    const results = await this.router.scoreBatch(
      toScore.map((s) => ({
        sample: prompts[s.group]!.sample,
        response: s.rollout.text,
        meta: { tokens: s.rollout.tokenIds.length || undefined, finishReason: s.rollout.finishReason },
      })),
      { concurrency: c.rewardConcurrency },
    );
    toScore.forEach((s, i) => {
      s.result = results[i]!;
      s.usable = s.result.status === 'scored' || s.result.status === 'gated';
      if (s.usable) s.penalty = lengthPenalty(s.rollout, c.lengthControl, c.rollout.maxThinkingTokens).total;
    });
    const msReward = performance.now() - t1;

    // 4. curriculum + expansion
    const byGroup: Scored[][] = prompts.map(() => []);
    for (const s of flat) byGroup[s.group]!.push(s);
    const summaries: GroupSummary[] = byGroup.map((g) => {
      const u = g.filter((s) => s.usable);
      const rewards = u.map(shapedReward);
      const m = mean(rewards);
      const std =
        rewards.length > 1 ? Math.sqrt(rewards.reduce((a, r) => a + (r - m) ** 2, 0) / (rewards.length - 1)) : 0;
      return { correct: u.filter((s) => s.result!.correct).length, total: u.length, rewardStd: std };
    });
    for (const [i, g] of summaries.entries()) this.curriculum.observe(prompts[i]!.sample.id, g.correct, g.total, t);
    const invalid = summaries.filter(isInvalidGroup).length;
    const invalidShare = summaries.length ? invalid / summaries.length : 1;
    // An iteration whose every rollout failed says nothing about difficulty: the EMA is left alone.
    const informative = summaries.some((g) => g.total > 0);
    const exp =
      c.expansion.enabled && informative
        ? this.expansion.observe(invalidShare)
        : {
            ratio: c.expansion.enabled ? (this.expansion.state.lastRatio ?? 1) : 1,
            ema: c.expansion.enabled ? this.expansion.state.ema : 1,
          };

    // 5. selection
    const tieRng = new Rng(stepSeed(seed, t, 3));
    const sel = selectBalanced(
      summaries,
      N,
      summaries.map(() => tieRng.random()),
    );
    const kept = new Set(sel.kept);

    // 6. update
    const items: TrainItem[] = [];
    const advByScored = new Map<Scored, number>();
    // Advantages over every usable rollout of a kept group, the set selection judged. A rollout without token ids
    // (a server response that re-encoded to nothing, a GLM response cut at token 0) keeps its place in its group's
    // baseline but has nothing to train on: it gets no log-probs and no update item.
    const keptGroups = sel.kept.map((i) => byGroup[i]!.filter((s) => s.usable));
    const t2 = performance.now();
    // π_old (and the reference) for every kept rollout with tokens, before any update.
    const flatKept = keptGroups.flat().filter((s) => s.rollout.tokenIds.length > 0);
    const lpIndex = new Map(flatKept.map((s, i) => [s, i]));
    const oldPass = this.logprobsNoGrad(
      this.policy,
      flatKept.map((s) => ({
        prompt: prompts[s.group]!.input,
        response: s.rollout.tokenIds,
        mask: s.rollout.lossMask,
      })),
      c.grpo.logEntropy,
    );
    const oldLp = oldPass.lp;
    const refLp = this.reference
      ? this.logprobsNoGrad(
          this.reference,
          flatKept.map((s) => ({ prompt: prompts[s.group]!.input, response: s.rollout.tokenIds })),
        ).lp
      : null;
    let mismatch = 0;
    let mismatchN = 0;
    flatKept.forEach((s, i) => {
      const lp = s.rollout.logprobs;
      if (!lp) return;
      for (let j = 0; j < lp.length; j++)
        if (s.rollout.lossMask[j]) {
          mismatch += Math.abs(lp[j]! - oldLp[i]![j]!);
          mismatchN++;
        }
    });
    // Rewards (less the length penalty), with the KL penalty subtracted in reward mode.
    const shaped = keptGroups.map((g) =>
      g.map((s) => {
        let r = shapedReward(s);
        const i = lpIndex.get(s);
        if (refLp && c.grpo.kl.mode === 'reward' && i !== undefined) {
          let kl = 0;
          const o = oldLp[i]!;
          const rf = refLp[i]!;
          for (let j = 0; j < o.length; j++)
            if (s.rollout.lossMask[j]) kl += klValue(o[j]!, rf[j]!, c.grpo.kl.estimator);
          r -= c.grpo.kl.coef * kl;
        }
        return r;
      }),
    );
    const adv = groupAdvantages(shaped, {
      estimator: c.grpo.estimator,
      normStd: c.grpo.normStd,
      stdScope: c.grpo.stdScope,
      eps: c.grpo.eps,
    });
    for (const [gi, g] of keptGroups.entries())
      for (const [k, s] of g.entries()) {
        advByScored.set(s, adv[gi]![k]!);
        const i = lpIndex.get(s);
        if (i === undefined) continue;
        items.push({
          prompt: prompts[s.group]!.input,
          response: s.rollout.tokenIds,
          mask:
            c.grpo.maskTruncated && s.rollout.finishReason === 'length'
              ? new Uint8Array(s.rollout.lossMask.length)
              : s.rollout.lossMask,
          advantage: adv[gi]![k]!,
          old: c.grpo.oldLogprobs === 'rollout' && s.rollout.logprobs ? s.rollout.logprobs : oldLp[i]!,
          ref: refLp ? refLp[i]! : null,
          rolloutLogprobs: s.rollout.logprobs,
        });
      }
    const msOld = performance.now() - t2;
    const t3 = performance.now();
    // Rollouts with nothing to train on (all tokens masked: truncated with maskTruncated) stay out of the update.
    const trainable = items.filter((it) => it.mask.some((m) => m === 1));
    const upd = trainable.length ? this.update(trainable, new Rng(stepSeed(seed, t, 4))) : null;
    if (!upd) this.skipped++;
    const msUpdate = performance.now() - t3;

    // 7. metrics and logs
    const rec = this.stepRecord({
      t,
      flat,
      byGroup,
      prompts,
      drawn: drawn.map((d) => d.tier),
      summaries,
      kept,
      sel,
      invalidShare,
      exp,
      emaBefore,
      nGen,
      upd,
      mismatch: mismatchN ? mismatch / mismatchN : null,
      policyEntropy: oldPass.entropy,
      adv: [...advByScored.values()],
      ms: {
        generate: msGen,
        reward: msReward,
        old_logprobs: msOld,
        update: msUpdate,
        total: performance.now() - tStart,
      },
    });
    if (!upd)
      this.log(
        sel.kept.length === 0
          ? `step ${t}: no group with reward variance among ${summaries.length} (all correct or all wrong); update skipped, expansion EMA now ${exp.ema.toFixed(2)}`
          : `step ${t}: the ${sel.kept.length} kept groups have no trainable tokens (truncated responses masked, or empty); update skipped`,
      );
    else if (sel.kept.length < N / 2)
      this.log(
        `step ${t}: only ${sel.kept.length} of ${N} groups carried gradient; trained on those (expansion EMA ${exp.ema.toFixed(2)})`,
      );
    this.metrics.write(rec);
    if (c.run.saveRollouts)
      this.writeRollouts(
        t,
        flat,
        prompts,
        drawn.map((d) => d.tier),
        kept,
        advByScored,
      );
    this.step = t + 1;
    return rec;
  }

  /**
   * Per-token log-probs (no graph) for many items, micro-batched; one Float32Array per item. With `entropy`, also
   * the mean entropy over the items' trained tokens.
   */
  private logprobsNoGrad(
    policy: Policy,
    items: Array<PolicyItem & { mask?: Uint8Array }>,
    entropy = false,
  ): { lp: Float32Array[]; entropy: number | null } {
    const out: Float32Array[] = [];
    let entSum = 0;
    let entN = 0;
    const mb = this.config.grpo.microBatch;
    for (let s = 0; s < items.length; s += mb) {
      const chunk = items.slice(s, s + mb);
      const flat = noGrad(() =>
        scope(() => {
          const o = policy.logProbs(chunk, { temperature: this.config.rollout.temperature, entropy });
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
  private update(
    items: TrainItem[],
    rng: Rng,
  ): { stats: PolicyLossStats; gradNorm: number[]; lr: number; steps: number } | null {
    const g = this.config.grpo;
    const lossCfg = this.lossConfig();
    const needEntropy = g.entropyCoef > 0;
    const length = g.drGrpoLength ?? this.config.rollout.maxThinkingTokens + this.config.rollout.maxAnswerTokens;
    const lr = g.warmupSteps > 0 ? g.lr * Math.min(1, (this.step + 1) / g.warmupSteps) : g.lr;
    this.opt.setLr(lr);
    const params = this.policy.parameters();
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
        this.opt.zeroGrad();
        for (let s = 0; s < mb.length; s += g.microBatch) {
          const micro = mb.slice(s, s + g.microBatch);
          const st = scope(() => {
            const out = this.policy.logProbs(micro, {
              temperature: this.config.rollout.temperature,
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
          this.log(`step ${this.step}: gradient norm ${gn}; optimizer step skipped`);
          this.opt.zeroGrad();
          continue;
        }
        this.opt.step();
        this.opt.zeroGrad();
        steps++;
      }
    }
    return stats ? { stats, gradNorm: norms, lr, steps } : null;
  }

  private stepRecord(a: {
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
    upd: { stats: PolicyLossStats; gradNorm: number[]; lr: number; steps: number } | null;
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
      ref_kl: tok && this.reference ? st!.refKlSum / tok : null,
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
      tiers: this.curriculum.populations(),
    };
  }

  private writeRollouts(
    t: number,
    flat: Scored[],
    prompts: RolloutPrompt[],
    tiers: Tier[],
    kept: Set<number>,
    adv: Map<Scored, number>,
  ): void {
    const dir = join(this.runDir, 'rollouts');
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
}

/** Throws when `dir` already holds a run (a fresh start would mix two runs' logs). */
export function assertFreshRunDir(dir: string): void {
  const metrics = join(dir, 'metrics.jsonl');
  if (latestCheckpoint(dir) || (existsSync(metrics) && readFileSync(metrics, 'utf8').trim()))
    throw new Error(`${dir} already holds a run; pass --resume to continue it or choose another run.dir`);
}

/** Paths where two configs differ, ignoring run.steps (a resumed run may be extended). */
export function configDiff(a: unknown, b: unknown, path = ''): string[] {
  if (path === 'run.steps') return [];
  if (typeof a !== typeof b || Array.isArray(a) !== Array.isArray(b) || (a === null) !== (b === null))
    return [`${path || '(root)'}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
  if (a && typeof a === 'object') {
    const keys = new Set([...Object.keys(a as object), ...Object.keys(b as object)]);
    return [...keys].flatMap((k) =>
      configDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], path ? `${path}.${k}` : k),
    );
  }
  return a === b ? [] : [`${path}: ${JSON.stringify(a)} vs ${JSON.stringify(b)}`];
}
