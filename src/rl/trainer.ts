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
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample } from '../data/sample.js';
import { loadSafetensors, optim, saveSafetensors } from '../engine/index.js';
import type { RewardRouter } from '../reward/router.js';
import { MetricsWriter, Progress } from '../util/progress.js';
import { Rng } from '../util/rng.js';
import { latestCheckpoint, loadCheckpoint, saveCheckpoint } from './checkpoint.js';
import { type RlConfig, RlConfigSchema } from './config.js';
import { ExpansionController, type GroupSummary, isInvalidGroup, selectBalanced } from './expansion.js';
import { groupAdvantages, klValue } from './grpo.js';
import { lengthPenalty } from './length.js';
import { type OfflineResult, passAtKResults, samplingOf } from './passk.js';
import { Curriculum, TIERS, type Tier } from './rlcs.js';
import { assertFreshRunDir, configDiff, truncateRunLogs } from './run-dir.js';
import { mean, type Scored, type StepRecord, shapedReward, stepRecord, writeRollouts } from './step-log.js';
import type { Policy, PromptInput, RolloutEngine, RolloutPrompt, SamplingParams } from './types.js';
import { logprobsNoGrad, policyUpdate, type TrainItem } from './update.js';

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
    this.opt = new optim.AdamW(policyParamGroups(this.policy, g.visionLrScale), {
      lr: g.lr,
      weightDecay: g.weightDecay,
      betas: g.betas,
    });
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
      truncateRunLogs(this.runDir, this.step);
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
    const lpOpts = { microBatch: c.grpo.microBatch, temperature: c.rollout.temperature };
    const oldPass = logprobsNoGrad(
      this.policy,
      flatKept.map((s) => ({
        prompt: prompts[s.group]!.input,
        response: s.rollout.tokenIds,
        mask: s.rollout.lossMask,
      })),
      lpOpts,
      c.grpo.logEntropy,
    );
    const oldLp = oldPass.lp;
    const refLp = this.reference
      ? logprobsNoGrad(
          this.reference,
          flatKept.map((s) => ({ prompt: prompts[s.group]!.input, response: s.rollout.tokenIds })),
          lpOpts,
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
    const target = { config: c, policy: this.policy, opt: this.opt, step: this.step, log: this.log };
    const upd = trainable.length ? policyUpdate(target, trainable, new Rng(stepSeed(seed, t, 4))) : null;
    if (!upd) this.skipped++;
    const msUpdate = performance.now() - t3;

    // 7. metrics and logs
    const rec = stepRecord({
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
      tiers: this.curriculum.populations(),
      hasReference: this.reference !== null,
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
      writeRollouts(
        this.runDir,
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
}

/**
 * The optimizer's parameter groups: one group, or (vision lr scale ≠ 1) the text model's parameters then the vision
 * tower's at `visionLrScale` × the lr. The single-group layout of the default keeps older checkpoints loadable.
 */
function policyParamGroups(policy: Policy, visionLrScale: number) {
  if (visionLrScale === 1) return [{ params: policy.parameters() }];
  if (!policy.namedParameters)
    throw new Error(`grpo.visionLrScale ${visionLrScale}: policy ${policy.name} does not name its parameters (use 1)`);
  const text: ReturnType<Policy['parameters']> = [];
  const vision: ReturnType<Policy['parameters']> = [];
  for (const [n, p] of policy.namedParameters()) (n.startsWith('model.visual.') ? vision : text).push(p);
  if (vision.length === 0)
    throw new Error(`grpo.visionLrScale ${visionLrScale}: policy ${policy.name} has no vision tower (model.visual.*)`);
  return [{ params: text }, { params: vision, lrScale: visionLrScale }];
}
