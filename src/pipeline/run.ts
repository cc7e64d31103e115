/**
 * `glmv pipeline`: the paper's recipe end to end on this machine — synthetic data → tokenizer → multimodal
 * pre-training → long-context continual training → long-CoT SFT (difficulty-filtered) → RL (GRPO + RLCS) — with a
 * held-out evaluation per domain after each model stage (thinking and /nothink) and an HTML report.
 *
 * Every stage records itself in RUN/pipeline.json when it finishes; running the same command again skips finished
 * stages and resumes an interrupted training stage from its last checkpoint, so a killed run finishes where it left.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { generateDataset } from '../data/dataset.js';
import { generatePretrain } from '../data/pretrain.js';
import type { Sample } from '../data/sample.js';
import { listShards } from '../data/store.js';
import { meanSd } from '../eval/metrics.js';
import { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import { parseRlConfig, type RlConfigInput } from '../rl/config.js';
import { GlmPolicy } from '../rl/glm.js';
import { type PassKDomain, passAtKResults, passKSummary, samplingOf, writePassK } from '../rl/passk.js';
import { buildEngine, buildPolicy, buildRouter, loadPrompts } from '../rl/setup.js';
import { RlTrainer, stepSeed } from '../rl/trainer.js';
import type { RolloutPrompt } from '../rl/types.js';
import { parseTrainConfig, type TrainConfig } from '../train/config.js';
import { runStage, type StageResult } from '../train/trainer.js';
import { MetricsWriter, readMetricsFile } from '../util/progress.js';
import { deepMerge, type PipelineConfig } from './config.js';
import { evaluateStage, type StageEval } from './evaluate.js';
import { writeReport } from './report.js';
import {
  type HeadroomSummary,
  type PipelineStage,
  type PipelineState,
  readState,
  runPaths,
  type SeedRun,
  type SeedScore,
  STAGES,
  type StageRecord,
  writeState,
} from './state.js';

export {
  type HeadroomSummary,
  type PipelineStage,
  type PipelineState,
  readState,
  runPaths,
  type SeedRun,
  type SeedScore,
  STAGES,
  type StageRecord,
} from './state.js';

export interface PipelineOptions {
  out: string;
  signal?: AbortSignal;
  quiet?: boolean;
  log?: (line: string) => void;
  /** Stop after this stage (the run can be continued later with the same command). */
  until?: PipelineStage;
}

export interface PipelineResult {
  state: PipelineState;
  interrupted: boolean;
  report: string | null;
}

export async function runPipeline(config: PipelineConfig, o: PipelineOptions): Promise<PipelineResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  mkdirSync(o.out, { recursive: true });
  const paths = runPaths(o.out);
  let state = readState(o.out);
  if (state) {
    // `ship` only decides where the finished model is copied, and `rlSeeds` how many extra RL seeds are measured:
    // changing either on a finished run is not another run.
    // Runs started before the headroom check existed take today's settings for it.
    state.config.headroom ??= config.headroom;
    const identity = (x: PipelineConfig) => ({ ...x, ship: null, rlSeeds: undefined });
    const changed = configChanges(identity(state.config), identity(config));
    if (changed.length) {
      throw new Error(
        `pipeline: ${o.out} was started with a different config (${changed.slice(0, 6).join('; ')}${changed.length > 6 ? '; …' : ''}); use another --out or the same settings`,
      );
    }
    // Shipping is a cheap copy: asked for again, it runs again (the target may have been changed or deleted).
    if (state.config.ship !== config.ship || (config.ship && state.stages.ship)) {
      state.config = { ...state.config, ship: config.ship };
      delete state.stages.ship;
      writeState(o.out, state);
    }
    // Seeds already measured are kept: continuing a run without --set rlSeeds must not drop its seed comparison.
    if ((state.config.rlSeeds ?? 1) > config.rlSeeds) {
      log(`pipeline: keeping the run's ${state.config.rlSeeds} RL seeds (asked for ${config.rlSeeds})`);
      config = { ...config, rlSeeds: state.config.rlSeeds };
    }
    if ((state.config.rlSeeds ?? 1) !== config.rlSeeds) {
      state.config = { ...state.config, rlSeeds: config.rlSeeds };
      delete state.stages['rl-seeds'];
      delete state.stages.report;
      writeState(o.out, state);
    }
    log(`pipeline: continuing ${o.out} (done: ${Object.keys(state.stages).join(', ') || 'nothing yet'})`);
  } else {
    state = { config, startedAt: new Date().toISOString(), stages: {} };
    writeState(o.out, state);
  }
  const metrics = new MetricsWriter(paths.metrics);
  const ctx: StageContext = { config, out: o.out, paths, signal: o.signal, quiet: !!o.quiet, log, state };
  for (const stage of STAGES) {
    if (state.stages[stage]) continue;
    if (o.signal?.aborted) return { state, interrupted: true, report: null };
    if (stage === 'ship' && !config.ship) continue;
    const t0 = performance.now();
    log(`pipeline: ${stage} …`);
    metrics.write({ event: 'stage_start', stage });
    const res = await STAGE_RUNNERS[stage](ctx);
    if (res === 'interrupted') {
      metrics.write({ event: 'stage_interrupted', stage });
      log(`pipeline: ${stage} interrupted; run the same command again to continue`);
      return { state, interrupted: true, report: null };
    }
    const rec: StageRecord = {
      stage,
      status: res.skipped ? 'skipped' : 'done',
      seconds: (performance.now() - t0) / 1000,
      finishedAt: new Date().toISOString(),
      summary: res.summary,
    };
    state.stages[stage] = rec;
    writeState(o.out, state);
    metrics.write({ event: 'stage_done', stage, seconds: rec.seconds, status: rec.status });
    log(`pipeline: ${stage} ${rec.status} in ${rec.seconds.toFixed(0)} s`);
    if (o.until === stage) break;
  }
  return { state, interrupted: false, report: existsSync(paths.report) ? paths.report : null };
}

interface StageContext {
  config: PipelineConfig;
  out: string;
  paths: ReturnType<typeof runPaths>;
  signal?: AbortSignal;
  quiet: boolean;
  log: (l: string) => void;
  state: PipelineState;
}

type StageOutcome = { skipped?: boolean; summary: Record<string, unknown> } | 'interrupted';

const STAGE_RUNNERS: Record<PipelineStage, (c: StageContext) => Promise<StageOutcome>> = {
  data: dataStage,
  tokenizer: tokenizerStage,
  pretrain: (c) => trainStage(c, 'pretrain'),
  'eval-pretrain': (c) => evalStage(c, 'pretrain'),
  longctx: (c) => trainStage(c, 'longctx'),
  sft: (c) => trainStage(c, 'sft'),
  'eval-sft': (c) => evalStage(c, 'sft'),
  headroom: headroomStage,
  rl: rlStage,
  'eval-rl': (c) => evalStage(c, 'rl'),
  'rl-seeds': rlSeedsStage,
  report: reportStage,
  ship: shipStage,
};

// ---------------------------------------------------------------------------------------------------------------
// data

async function dataStage(c: StageContext): Promise<StageOutcome> {
  const d = c.config.data;
  const p = c.paths.data;
  const size = String(d.imageSize);
  const seed = c.config.seed;
  const counts: Record<string, number> = {};
  const gen = async (name: string, out: string, spec: Parameters<typeof generateDataset>[0]) => {
    const have = listShards(out).reduce((a, s) => a + s.count, 0);
    if (have >= spec.n) {
      counts[name] = have;
      return;
    }
    const r = await generateDataset(spec, { out, resume: have > 0, quiet: c.quiet });
    counts[name] = r.info.count;
  };
  const pretrain = async (name: string, out: string, n: number, split: 'train' | 'heldout') => {
    if (listShards(out).reduce((a, s) => a + s.count, 0) >= n) {
      counts[name] = n;
      return;
    }
    rmSync(out, { recursive: true, force: true });
    counts[name] = (
      await generatePretrain({ kinds: 'all', n, split, seed, difficulty: '1-5', size: d.imageSize }, out, c.quiet)
    ).count;
  };
  await pretrain('pretrain', p.pretrain, d.pretrainDocs, 'train');
  await pretrain('pretrain-heldout', p.pretrainHeldout, d.pretrainHeldout, 'heldout');
  await gen('sft', p.sft, {
    domains: d.domains,
    n: d.sftSamples,
    split: 'train',
    seed,
    difficulty: d.difficulty,
    size,
    mcq: 'blank',
  });
  await gen('text', p.text, {
    domains: 'text',
    n: d.textSamples,
    split: 'train',
    seed: seed + 1,
    difficulty: d.difficulty,
  });
  // RL prompts: the train split under another seed, so SFT never saw them.
  await gen('rl', p.rl, {
    domains: d.domains,
    n: d.rlSamples,
    split: 'train',
    seed: seed + 7,
    difficulty: d.difficulty,
    size,
    mcq: 'blank',
  });
  await gen('heldout', p.heldout, {
    domains: d.domains,
    n: d.heldout,
    split: 'heldout',
    seed,
    difficulty: d.difficulty,
    size,
    mcq: 'blank',
  });
  return { summary: { counts } };
}

// ---------------------------------------------------------------------------------------------------------------
// training stages

function stageConfig(c: StageContext, stage: 'tokenizer' | 'pretrain' | 'longctx' | 'sft'): TrainConfig {
  const p = c.paths;
  const cfg = c.config;
  const seed = cfg.seed;
  let base: Record<string, unknown>;
  switch (stage) {
    case 'tokenizer':
      base = {
        stage,
        run: { dir: p.tokenizer, seed },
        data: { sources: [{ path: p.data.pretrain }, { path: p.data.sft }, { path: p.data.text }] },
        tokenizer: { vocabSize: cfg.tokenizer.vocabSize, template: 'glm41v' },
      };
      return parseTrainConfig(base, stage, 'pipeline tokenizer stage');
    case 'pretrain':
      base = {
        stage,
        run: { dir: p.stage('pretrain'), seed, steps: 400, checkpointEvery: 50, keepCheckpoints: 2, logEvery: 1 },
        model: { init: 'scratch', tokenizer: join(p.tokenizer, 'tokenizer'), arch: cfg.arch },
        data: {
          sources: [{ path: p.data.pretrain }],
          mixture: { caption: 3, interleaved: 1, ocr: 1, grounding: 2, instruction: 2, text: 1 },
          // Stage 1 has no video (the paper's recipe); the long-context stage adds it.
          video: false,
        },
        pack: { seqLen: 1024 },
        batch: { rows: 16, microRows: 4 },
        optim: { lr: 2e-3, warmupSteps: 20, minLrRatio: 0.1, weightDecay: 0.1, betas: [0.9, 0.95] },
        precision: 'bf16',
        eval: { every: 0, loss: { path: p.data.pretrainHeldout, n: 64 } },
      };
      break;
    case 'longctx':
      base = {
        stage,
        run: { dir: p.stage('longctx'), seed, steps: 40, checkpointEvery: 20, keepCheckpoints: 2 },
        model: { init: p.final('pretrain') },
        data: {
          sources: [{ path: p.data.pretrain }],
          mixture: { caption: 2, interleaved: 3, ocr: 1, grounding: 1, instruction: 2, video_caption: 3, text: 1 },
        },
        // Documents of a packed sequence attend to each other: 4096-token contexts out of short documents.
        pack: { seqLen: 4096, isolation: 'sequence' },
        batch: { rows: 4, microRows: 1 },
        optim: { lr: 5e-4, warmupSteps: 5, minLrRatio: 0.2 },
        precision: 'bf16',
        eval: { every: 0, loss: { path: p.data.pretrainHeldout, n: 64 } },
      };
      break;
    case 'sft':
      base = {
        stage,
        run: { dir: p.stage('sft'), seed, steps: 300, checkpointEvery: 50, keepCheckpoints: 2 },
        model: { init: p.final('longctx') },
        data: {
          sources: [
            { path: p.data.sft, weight: 1 },
            { path: p.data.text, weight: 0.15 },
          ],
        },
        pack: { seqLen: 1024 },
        batch: { rows: 16, microRows: 4 },
        optim: { lr: 1e-3, warmupSteps: 10, minLrRatio: 0.1, lossAverage: 'token' },
        precision: 'bf16',
        sft: {
          nothinkShare: 0.2,
          mcq: 'blank',
          filter: {
            enabled: true,
            k: 4,
            prompt: 'pretrain',
            maxNewTokens: 24,
            maxPassRate: 1,
            minPassRate: 0,
            hardLevel: 4,
          },
        },
      };
      break;
  }
  const merged = deepMerge(base, cfg[stage]) as { run: { steps: number }; optim: { warmupSteps: number } };
  // The built-in warmup shrinks with short runs unless the config sets it.
  const fragOptim = (cfg[stage] as { optim?: { warmupSteps?: number } }).optim;
  if (fragOptim?.warmupSteps === undefined)
    merged.optim.warmupSteps = Math.min(merged.optim.warmupSteps, Math.floor(merged.run.steps / 10));
  return parseTrainConfig(merged, stage, `pipeline ${stage} stage`);
}

async function tokenizerStage(c: StageContext): Promise<StageOutcome> {
  const cfg = stageConfig(c, 'tokenizer');
  const r = await runStage(cfg, { quiet: c.quiet, log: c.log, signal: c.signal });
  return { summary: { ...(r as unknown as Record<string, unknown>) } };
}

async function trainStage(c: StageContext, stage: 'pretrain' | 'longctx' | 'sft'): Promise<StageOutcome> {
  const cfg = stageConfig(c, stage);
  const runDir = c.paths.stage(stage);
  // An interrupted stage left checkpoints: continue it exactly.
  const resume = existsSync(join(runDir, 'checkpoints', 'latest')) ? runDir : undefined;
  if (!resume && existsSync(runDir)) rmSync(runDir, { recursive: true, force: true });
  const r = (await runStage(cfg, {
    quiet: c.quiet,
    log: c.log,
    signal: c.signal,
    ...(resume ? { resume } : {}),
  })) as StageResult;
  if (r.interrupted) return 'interrupted';
  return {
    summary: {
      steps: r.steps,
      loss: r.loss,
      tokensPerSecond: r.tokensPerSecond,
      meanStepMs: r.meanStepMs,
      packingEfficiency: r.packingEfficiency,
      parameters: r.parameters,
      seconds: r.seconds,
      checkpoint: r.checkpoint,
      eval: r.eval,
      filter: r.filter,
      resumedFrom: r.resumedFrom,
    },
  };
}

// ---------------------------------------------------------------------------------------------------------------
// RL

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
async function headroomStage(c: StageContext): Promise<StageOutcome> {
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

async function rlStage(c: StageContext): Promise<StageOutcome> {
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

/** Tokenizer, chat template and processor configs of a model folder (everything but config and weights). */
const MODEL_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'preprocessor_config.json',
  'video_preprocessor_config.json',
  'generation_config.json',
];

function copyModelFiles(from: string, to: string): void {
  for (const f of MODEL_FILES) if (existsSync(join(from, f))) cpSync(join(from, f), join(to, f));
}

// ---------------------------------------------------------------------------------------------------------------
// evaluation, report, ship

async function evalStage(c: StageContext, model: 'pretrain' | 'sft' | 'rl'): Promise<StageOutcome> {
  if (model === 'rl' && c.state.stages.rl?.status === 'skipped')
    return { skipped: true, summary: { reason: 'no RL stage' } };
  const out = await evaluateModel(c, c.paths.final(model), model);
  if (out === 'interrupted') return out;
  return { summary: { model: c.paths.final(model), modes: out } };
}

/** The held-out evaluation of one model folder in every configured mode (RUN/eval/<name>-<mode>). */
async function evaluateModel(
  c: StageContext,
  modelDir: string,
  name: string,
): Promise<Record<string, StageEval> | 'interrupted'> {
  const e = c.config.eval;
  const out: Record<string, StageEval> = {};
  for (const mode of e.modes) {
    const r = await evaluateStage({
      modelDir,
      heldout: c.paths.data.heldout,
      n: e.n,
      mode,
      maxNewTokens: e.maxNewTokens,
      batchSize: e.batchSize,
      out: c.paths.eval(`${name}-${mode}`),
      signal: c.signal,
      quiet: c.quiet,
      examplesPerDomain: e.examplesPerDomain,
    });
    if (c.signal?.aborted) return 'interrupted';
    out[mode] = r;
    c.log(
      `pipeline: ${name} model, ${mode}: accuracy ${(100 * r.accuracy).toFixed(1)}%, format ${(100 * r.formatRate).toFixed(1)}%`,
    );
  }
  return out;
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
async function rlSeedsStage(c: StageContext): Promise<StageOutcome> {
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

async function reportStage(c: StageContext): Promise<StageOutcome> {
  const file = writeReport(c.out);
  return { summary: { file } };
}

/** An evaluation summary without what points into the run folder (sample files, example images). */
function cardEval(summary: Record<string, unknown>): Record<string, unknown> {
  const modes = (summary.modes ?? {}) as Record<string, Record<string, unknown>>;
  return {
    modes: Object.fromEntries(Object.entries(modes).map(([m, { examples: _e, file: _f, ...rest }]) => [m, rest])),
  };
}

/** Copies the final model into the package as bf16 weights (the embedded default is models/glmv-small). */
async function shipStage(c: StageContext): Promise<StageOutcome> {
  const target = c.config.ship!;
  const src = c.state.stages.rl?.status === 'done' ? c.paths.final('rl') : c.paths.final('sft');
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const { model } = Glm4vForConditionalGeneration.fromPretrained(src);
  model.toDtype('bfloat16');
  model.save(tmp);
  copyModelFiles(src, tmp);
  const card = {
    source: src,
    pipeline: c.out,
    preset: c.config.preset,
    evaluation: Object.fromEntries(
      (['eval-pretrain', 'eval-sft', 'eval-rl'] as const)
        .filter((s) => c.state.stages[s])
        .map((s) => [s, cardEval(c.state.stages[s]!.summary)]),
    ),
  };
  writeFileSync(join(tmp, 'training_summary.json'), JSON.stringify(card, null, 2));
  // Swap by renames (same folder), so an interruption never leaves the embedded model missing or half-written.
  const old = `${target}.old-${process.pid}`;
  rmSync(old, { recursive: true, force: true });
  if (existsSync(target)) renameSync(target, old);
  renameSync(tmp, target);
  rmSync(old, { recursive: true, force: true });
  return { summary: { target, from: src } };
}

/** Paths of leaves that differ between two configs (for refusing to continue a run under other settings). */
function configChanges(a: unknown, b: unknown, prefix = ''): string[] {
  if (JSON.stringify(a) === JSON.stringify(b)) return [];
  if (
    typeof a !== 'object' ||
    typeof b !== 'object' ||
    a === null ||
    b === null ||
    Array.isArray(a) ||
    Array.isArray(b)
  ) {
    return [`${prefix || '(root)'}: ${JSON.stringify(a)} → ${JSON.stringify(b)}`];
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) =>
    configChanges((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], prefix ? `${prefix}.${k}` : k),
  );
}
