/**
 * The lab's RL runs: every experiment is a set of named runs from the same start model, each a variant of the paper
 * default (no KL, no entropy bonus, clip-higher, RLCS seeded by offline pass@k, expansion, force answering). A run
 * trains in segments of `evalEvery` steps and evaluates the policy on the curve set after each, so accuracy is known
 * against the rollouts consumed; at the end it is evaluated on the full held-out set, one level above the training
 * range, and (paper runs) the probes. Resumable: the trainer continues from its checkpoint and the curve file keeps
 * what was measured.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hash32 } from '../data/generate.js';
import { LAB_GENERATOR_NAMES } from '../data/generators/index.js';
import { writeJsonAtomic } from '../model/checkpoint.js';
import { deepMerge } from '../pipeline/config.js';
import { RewardRouter } from '../reward/router.js';
import { parseRlConfig, type RlConfigInput } from '../rl/config.js';
import { GlmPolicy, GlmRolloutEngine } from '../rl/glm.js';
import { type RolloutLine, readRollouts, rolloutSteps } from '../rl/inspect.js';
import { loadPrompts } from '../rl/setup.js';
import { RlTrainer } from '../rl/trainer.js';
import { MetricsWriter, readMetricsFile } from '../util/progress.js';
import type { Experiment, LabConfig } from './config.js';
import { atBudget, evaluateLab, type LabExample, type LabScore } from './eval.js';
import { HackableRouter, isHedge } from './hackable.js';
import { DIRECT_MARK, type LabPaths, readAll, rolloutSettings, type StageCtx } from './model.js';

export interface RunSpec {
  name: string;
  what: string;
  /** Merged over the paper-default RL config. */
  rl: RlConfigInput | Record<string, unknown>;
  hackable?: boolean;
  /** Start from experiment 5's hedging model (the hedge stage) instead of the start model. */
  fromHedge?: boolean;
  /**
   * Evaluated under the rollout limits it trained with (experiment 6): the answer must fit in the rollout's thinking
   * budget plus its answer tokens; with force answering the closing tokens are inserted at the budget, without it a
   * response still thinking there is cut. Default: the eval's own length, no budget.
   */
  evalAtBudget?: boolean;
  /** Evaluate the probes after RL (perception unchanged?). */
  probes?: boolean;
}

/** The runs of each experiment (runs shared between experiments run once). */
export function experimentRuns(cfg: LabConfig): Record<Experiment, RunSpec[]> {
  const paper = (k: number): RunSpec => ({
    name: `paper-s${k}`,
    what: `paper defaults, seed ${cfg.seed + k}`,
    rl: { run: { seed: cfg.seed + k } },
    probes: true,
  });
  const tight = cfg.tightBudget;
  return {
    gain: Array.from({ length: cfg.seeds }, (_, k) => paper(k)),
    rlcs: [
      paper(0),
      { name: 'uniform', what: 'uniform sampling (curriculum off)', rl: { curriculum: { enabled: false } } },
      {
        name: 'offline-filter',
        what: 'offline difficulty filter only: prompts with 0 < offline pass < k, uniform sampling',
        rl: { curriculum: { enabled: false }, data: { sources: 'filtered' } },
      },
    ],
    expansion: [
      paper(0),
      { name: 'no-expansion', what: 'expansion off (fixed prompts per step)', rl: { expansion: { enabled: false } } },
    ],
    transfer: [
      paper(0),
      {
        name: `single-${cfg.transferDomain}`,
        what: `RL on ${cfg.transferDomain} only`,
        rl: { data: { sources: cfg.transferDomain } },
      },
    ],
    hacking: [
      { name: 'hedge-strict', what: 'from the hedging model, strict verifier', rl: {}, fromHedge: true },
      {
        name: 'hedge-hackable',
        what: 'from the hedging model, hackable verifier (a covering range or the reference anywhere pays)',
        rl: {},
        hackable: true,
        fromHedge: true,
      },
    ],
    force: [
      {
        name: 'tight-force',
        what: `thinking budget ${tight} tokens, force answering on`,
        rl: { rollout: { maxThinkingTokens: tight, forceAnswer: true } },
        evalAtBudget: true,
      },
      {
        name: 'tight-noforce',
        what: `thinking budget ${tight} tokens, force answering off`,
        rl: { rollout: { maxThinkingTokens: tight, forceAnswer: false } },
        evalAtBudget: true,
      },
    ],
  };
}

/** The model a run starts from: experiment 5's hedging model, or the start model. */
export function runStartModel(p: LabPaths, spec: RunSpec): string {
  return spec.fromHedge ? p.hedgeModel : p.startModel;
}

/** The RL config of a run: the paper default over the lab's data, the lab's `rl` fragment, then the variant. */
export function runConfig(c: StageCtx, spec: RunSpec) {
  const p = c.paths;
  const r = rolloutSettings(c);
  const base = {
    run: {
      dir: p.run(spec.name),
      seed: c.config.seed,
      steps: 40,
      checkpointEvery: 0,
      keepCheckpoints: 1,
    },
    policy: { kind: 'glm', path: runStartModel(p, spec) },
    data: { sources: LAB_GENERATOR_NAMES.map((g) => ({ kind: 'dataset', path: p.data.rl(g) })) },
    batch: { prompts: 16 },
    rollout: r,
    // A fresh Adam state moves every weight by about the lr while few groups carry signal: 1e-4 cost a start model
    // with 1-3 informative groups per step 8 points in 6 steps and 3e-4 collapsed it (README, "The RL lab"); with a
    // mid-range start model (most groups informative) 5e-5 after a 3-step warmup trains without collapse.
    grpo: { lr: 5e-5, warmupSteps: 3, clipLow: 0.2, clipHigh: 0.28, kl: { coef: 0 }, entropyCoef: 0 },
    expansion: { enabled: true },
    curriculum: { enabled: true, offlinePassK: { file: p.offline } },
    reward: { cas: { enabled: false } },
  };
  const variant = { ...spec.rl } as Record<string, unknown> & { data?: { sources?: unknown } };
  const sources = variant.data?.sources;
  if (typeof sources === 'string') {
    variant.data = {
      sources:
        sources === 'filtered'
          ? [{ kind: 'dataset', path: p.data.rlFiltered }]
          : [{ kind: 'dataset', path: p.data.rl(sources) }],
    };
  }
  const merged = deepMerge(deepMerge(base, c.config.rl), variant) as Record<string, unknown> & {
    run: { steps: number; checkpointEvery: number };
  };
  // Checkpoint where the curve is measured, so a resumed run never repeats an evaluated segment.
  merged.run.checkpointEvery = c.config.evalEvery || merged.run.steps;
  return parseRlConfig(merged, `lab run ${spec.name}`);
}

export interface CurvePoint {
  step: number;
  /** Rollouts generated up to this step (expansion included). */
  rollouts: number;
  accuracy: number;
  perDomain: Record<string, number>;
}

export interface RunResult {
  name: string;
  what: string;
  seed: number;
  steps: number;
  curve: CurvePoint[];
  heldout: LabScore;
  hard: LabScore;
  probe: LabScore | null;
  /** Per step: what the trainer logged (reward, pass rate, zero-advantage share, tiers, lengths, entropy, …). */
  series: Array<Record<string, unknown>>;
  examples: LabExample[];
  /** Hackable runs: per step, the share of rollouts rewarded only by the hack, and some of them. */
  hack?: { perStep: Array<{ step: number; share: number }>; samples: Array<Record<string, unknown>> };
  /** Runs from the hedging model: per step, the share of rollouts whose box holds a range. */
  hedge?: Array<{ step: number; share: number }>;
  seconds: number;
}

/** A run's saved rollouts, one non-empty step at a time (none when the run saved none). */
function savedSteps(runDir: string): RolloutLine[][] {
  if (!existsSync(join(runDir, 'rollouts'))) return [];
  return rolloutSteps(runDir)
    .map((s) => readRollouts(runDir, s).rows)
    .filter((rows) => rows.length > 0);
}

/** The rollouts a hackable verifier rewarded that the strict one would not (paths `hackable:…`). */
function hackStats(runDir: string): NonNullable<RunResult['hack']> {
  const perStep: Array<{ step: number; share: number }> = [];
  const samples: Array<Record<string, unknown>> = [];
  for (const rows of savedSteps(runDir)) {
    const hacked = rows.filter((r) => r.path?.startsWith('hackable:'));
    perStep.push({ step: rows[0]!.step, share: hacked.length / rows.length });
    for (const r of hacked.slice(0, 1))
      if (samples.length < 6)
        samples.push({ step: r.step, question: r.question, reference: r.reference, text: r.text, answer: r.answer });
  }
  return { perStep, samples };
}

/** Per step, the share of rollouts whose box holds a range (a hedge). */
function hedgeStats(runDir: string): NonNullable<RunResult['hedge']> {
  return savedSteps(runDir).map((rows) => ({
    step: rows[0]!.step,
    share: rows.filter((r) => isHedge(r.text)).length / rows.length,
  }));
}

export interface ShortcutPoint {
  step: number;
  /** Share of the step's rollouts that answered right after the reading (DIRECT_MARK), without working. */
  share: number;
  /** Pass rate of the rollouts that worked it out, and of those that took the shortcut (null: none of that kind). */
  workedPass: number | null;
  shortcutPass: number | null;
}

/**
 * Per step, how often the rollouts took the shortcut the mixed-quality SFT set taught (`data.directShare`) and how
 * each way paid: what RL has to find is that working pays.
 */
export function shortcutStats(runDir: string): ShortcutPoint[] {
  const pass = (rs: RolloutLine[]) => (rs.length ? rs.filter((r) => r.correct).length / rs.length : null);
  return savedSteps(runDir).map((rows) => {
    const short = rows.filter((r) => r.text.includes(DIRECT_MARK));
    const worked = rows.filter((r) => !r.text.includes(DIRECT_MARK));
    return {
      step: rows[0]!.step,
      share: short.length / rows.length,
      workedPass: pass(worked),
      shortcutPass: pass(short),
    };
  });
}

/** The per-step fields the report plots, from the run's metrics. */
const SERIES_FIELDS = [
  'step',
  'reward_mean',
  'pass_rate',
  'rollouts',
  'invalid_share',
  'all_correct_share',
  'all_wrong_share',
  'truncated_rate',
  'forced_rate',
  'entropy',
  'response_tokens_mean',
  'tiers',
  'expansion_ema',
];

function stepSeries(runDir: string): Array<Record<string, unknown>> {
  return readMetricsFile(join(runDir, 'metrics.jsonl'))
    .filter((r) => typeof r.step === 'number' && r.event === undefined)
    .map((r) => {
      const o: Record<string, unknown> = {};
      for (const f of SERIES_FIELDS) if (r[f] !== undefined) o[f] = r[f];
      const tiers = r.tiers as Record<string, Record<string, number>> | undefined;
      if (tiers) o.tiers = tiers['*'] ?? tiers;
      if (o.response_tokens_mean === undefined && typeof r.response_tokens === 'object')
        o.response_tokens_mean = (r.response_tokens as { mean?: number }).mean;
      return o;
    });
}

function cumulativeRollouts(series: ReadonlyArray<Record<string, unknown>>, step: number): number {
  return series.filter((r) => (r.step as number) < step).reduce((a, r) => a + ((r.rollouts as number) ?? 0), 0);
}

/**
 * The curve's step-0 point: the start model's greedy score on the curve set, the same for every run that starts from
 * that model under the same evaluation settings (greedy decoding is deterministic), so it is measured once and kept in
 * the lab folder. The key holds the model file's size and time, so a start model made again is measured again.
 */
async function sharedStartPoint(
  c: StageCtx,
  spec: RunSpec,
  evalOpts: Record<string, unknown>,
  n: number,
  evaluate: () => Promise<LabScore>,
): Promise<LabScore> {
  const model = join(runStartModel(c.paths, spec), 'model.safetensors');
  const st = existsSync(model) ? statSync(model) : null;
  const { quiet: _q, ...opts } = evalOpts;
  const key = JSON.stringify({ model, size: st?.size, mtime: st?.mtimeMs, opts, n });
  const file = join(c.paths.startCurves, `${hash32(key).toString(16).padStart(8, '0')}.json`);
  if (existsSync(file)) {
    const saved = JSON.parse(readFileSync(file, 'utf8')) as { key: string; score: LabScore };
    if (saved.key === key) return saved.score;
  }
  const score = await evaluate();
  mkdirSync(c.paths.startCurves, { recursive: true });
  writeJsonAtomic(file, { key, score });
  return score;
}

export async function runOne(c: StageCtx, spec: RunSpec, startScore: LabScore): Promise<RunResult | 'interrupted'> {
  const t0 = performance.now();
  const config = runConfig(c, spec);
  const dir = config.run.dir;
  const curveFile = join(dir, 'curve.json');
  const resume = existsSync(join(dir, 'checkpoints', 'latest'));
  if (!resume && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  const prompts = await loadPrompts(config);
  const policy = await GlmPolicy.load(runStartModel(c.paths, spec));
  const engine = new GlmRolloutEngine(policy, { batchSize: config.rollout.batchSize });
  const router = spec.hackable
    ? new HackableRouter({ cas: { enabled: false } })
    : new RewardRouter({ cas: { enabled: false } });
  const strict = new RewardRouter({ cas: { enabled: false } });
  const trainer = new RlTrainer(config, { policy, engine, router, samples: prompts, log: c.log, quiet: c.quiet });
  const e = c.config.eval;
  // The tight runs are graded under the budget they trained with (the start model's tight scores are measured the
  // same way): a run without forcing is cut at budget + answer tokens, not given the eval's full length.
  const r = config.rollout;
  const evalOpts = {
    batchSize: e.batchSize,
    quiet: c.quiet,
    ...(spec.evalAtBudget
      ? atBudget(r.maxThinkingTokens, r.maxAnswerTokens, r.forceAnswer)
      : { maxNewTokens: e.maxNewTokens }),
  };
  const metrics = new MetricsWriter(c.paths.metrics);
  try {
    await trainer.start({ resume });
    const curveSet = (await readAll(c.paths.data.heldout)).filter((_, i, all) => {
      // The held-out set is mixed in equal proportions: its prefix is balanced over domains.
      return i < c.config.data.curvePerDomain * LAB_GENERATOR_NAMES.length && i < all.length;
    });
    let curve: CurvePoint[] = existsSync(curveFile)
      ? (JSON.parse(readFileSync(curveFile, 'utf8')) as CurvePoint[])
      : [];
    curve = curve.filter((p) => p.step <= trainer.step);
    const measure = async (step: number) => {
      const evaluate = async () =>
        (await evaluateLab(policy.chat, strict, curveSet, { ...evalOpts, label: `${spec.name} @${step}` })).score;
      const score =
        step === 0 ? await sharedStartPoint(c, spec, evalOpts, curveSet.length, evaluate) : await evaluate();
      const point: CurvePoint = {
        step,
        rollouts: cumulativeRollouts(stepSeries(dir), step),
        accuracy: score.accuracy,
        perDomain: Object.fromEntries(Object.entries(score.perDomain).map(([d, v]) => [d, v.accuracy])),
      };
      curve.push(point);
      writeFileSync(curveFile, JSON.stringify(curve));
      metrics.write({ event: 'curve', run: spec.name, ...point });
      c.log(
        `lab: ${spec.name} step ${step}: curve accuracy ${(100 * score.accuracy).toFixed(1)}% after ${point.rollouts} rollouts`,
      );
    };
    if (!curve.some((p) => p.step === trainer.step)) await measure(trainer.step);
    const every = c.config.evalEvery || config.run.steps;
    while (trainer.step < config.run.steps) {
      await trainer.run({ stopAfter: every, shouldStop: () => !!c.signal?.aborted });
      if (c.signal?.aborted) return 'interrupted';
      await measure(trainer.step);
    }
    const ev = (set: string, label: string, examples = 0) =>
      readAll(set).then((s) => evaluateLab(policy.chat, strict, s, { ...evalOpts, label, examples }));
    const held = await ev(c.paths.data.heldout, `${spec.name} held-out`, e.examples);
    const hard = await ev(c.paths.data.hard, `${spec.name} level ${c.config.data.hardLevel}`);
    const probe = spec.probes ? (await ev(c.paths.data.probe, `${spec.name} probes`)).score : null;
    c.log(
      `lab: ${spec.name}: held-out ${(100 * startScore.accuracy).toFixed(1)} → ${(100 * held.score.accuracy).toFixed(1)}%, level ${c.config.data.hardLevel} ${(100 * hard.score.accuracy).toFixed(1)}%`,
    );
    return {
      name: spec.name,
      what: spec.what,
      seed: config.run.seed,
      steps: trainer.step,
      curve,
      heldout: held.score,
      hard: hard.score,
      probe,
      series: stepSeries(dir),
      examples: held.examples,
      ...(spec.hackable ? { hack: hackStats(dir) } : {}),
      ...(spec.fromHedge ? { hedge: hedgeStats(dir) } : {}),
      seconds: (performance.now() - t0) / 1000,
    };
  } finally {
    await router.close();
    await strict.close();
  }
}
