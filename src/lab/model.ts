/**
 * The lab's start model and its measurements: lab data (SFT, RL prompts per domain, held-out reasoning at the
 * training levels and one level above, probes), a BPE tokenizer, SFT from scratch on the lab tasks (probes included,
 * so reading is learned with the reasoning), then the start-model checks — probe accuracy, greedy accuracy, and
 * pass@1 / pass@k sampled like rollouts — and the offline pass@k on the RL prompts that RLCS and the offline filter
 * read. Each stage writes its result once; the lab state records it, so a rerun skips it.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { generateDataset } from '../data/dataset.js';
import { LAB_GENERATOR_NAMES } from '../data/generators/index.js';
import type { Sample } from '../data/sample.js';
import { listShards, MANIFEST_FILE, readSamples } from '../data/store.js';
import { deepMerge } from '../pipeline/config.js';
import { RewardRouter } from '../reward/router.js';
import { GlmPolicy, GlmRolloutEngine } from '../rl/glm.js';
import { type OfflineResult, passAtKResults, passKSummary, samplingOf, writePassK } from '../rl/passk.js';
import { stepSeed } from '../rl/trainer.js';
import type { RolloutPrompt } from '../rl/types.js';
import { parseTrainConfig, type SftConfig } from '../train/config.js';
import { runStage, runStageResumable } from '../train/trainer.js';
import type { LabConfig } from './config.js';
import { evaluateLab, type LabExample, type LabScore, labDomain } from './eval.js';

/** The lab folder's layout; `coldStart`: the config runs the cold-start stage (its model is the start model). */
export function labPaths(out: string, coldStart = false) {
  const data = join(out, 'data');
  return {
    state: join(out, 'lab.json'),
    results: join(out, 'results.json'),
    report: join(out, 'report.html'),
    metrics: join(out, 'metrics.jsonl'),
    data: {
      sft: join(data, 'sft'),
      cold: join(data, 'coldstart'),
      hedge: join(data, 'hedge'),
      rl: (gen: string) => join(data, `rl-${gen}`),
      rlFiltered: join(data, 'rl-filtered', 'samples.jsonl'),
      heldout: join(data, 'heldout'),
      hard: join(data, 'hard'),
      probe: join(data, 'probe'),
    },
    tokenizer: join(out, 'tokenizer'),
    sft: join(out, 'sft'),
    coldStart: join(out, 'coldstart'),
    hedge: join(out, 'hedge'),
    hedgeModel: join(out, 'hedge', 'final'),
    startModel: join(out, coldStart ? 'coldstart' : 'sft', 'final'),
    offline: join(out, 'offline-passk.json'),
    /** Step-0 curve points, shared by the runs that start from the same model under the same evaluation. */
    startCurves: join(out, 'start-curves'),
    run: (name: string) => join(out, 'runs', name),
  };
}
export type LabPaths = ReturnType<typeof labPaths>;

export interface StageCtx {
  config: LabConfig;
  paths: LabPaths;
  quiet: boolean;
  log: (l: string) => void;
  signal?: AbortSignal;
}

const LAB = LAB_GENERATOR_NAMES;

export async function dataStage(c: StageCtx): Promise<Record<string, unknown>> {
  const d = c.config.data;
  const seed = c.config.seed;
  const size = String(d.imageSize);
  const counts: Record<string, number> = {};
  const gen = async (name: string, out: string, spec: Parameters<typeof generateDataset>[0]) => {
    const have = listShards(out).reduce((a, s) => a + s.count, 0);
    if (have < spec.n) await generateDataset(spec, { out, resume: have > 0, quiet: c.quiet });
    counts[name] = spec.n;
  };
  const all = LAB.join(',');
  await gen('sft', c.paths.data.sft, {
    domains: all,
    n: d.sftSamples,
    split: 'train',
    seed,
    difficulty: d.sftLevels,
    size,
  });
  const direct = directTargets(c.paths.data.sft, d.directShare, seed);
  // RL prompts: the train split under another seed (SFT never saw them), one folder per domain (experiment 4).
  for (const g of LAB)
    await gen(`rl-${g}`, c.paths.data.rl(g), {
      domains: g,
      n: d.rlPerDomain,
      split: 'train',
      seed: seed + 7,
      difficulty: d.trainLevels,
      size,
      tasks: ['reason'],
    });
  const held = (n: number, difficulty: string, tasks: string[]) =>
    ({ domains: all, n: n * LAB.length, split: 'heldout', seed, difficulty, size, tasks }) as const;
  await gen('heldout', c.paths.data.heldout, held(d.heldoutPerDomain, d.trainLevels, ['reason']));
  await gen('hard', c.paths.data.hard, held(d.hardPerDomain, String(d.hardLevel), ['reason']));
  await gen('probe', c.paths.data.probe, held(d.probePerDomain, d.trainLevels, ['probe']));
  return { counts, direct };
}

/** How a shortcut (direct) target hands over to its answer; the lab counts rollouts that take the shortcut by it. */
export const DIRECT_MARK = 'So the answer is';

/**
 * Rewrites a share of the SFT reasoning samples (chosen by a hash of id and seed, so the choice is stable) to answer
 * right after the reading: `<reading> So the answer is X.` (DIRECT_MARK) Idempotent; each shard's file is replaced atomically.
 * Returns how many samples answer directly.
 */
export function directTargets(dir: string, share: number, seed: number): number {
  return rewriteSamples(dir, (s) => {
    const m = s.meta as { task?: string; reading?: string; direct?: boolean } | undefined;
    if (m?.task !== 'reason' || typeof m.reading !== 'string') return null;
    if (!(hashUnit(`${seed}:${s.id}`) < share)) return null;
    return { ...s, rationale: `${m.reading} ${DIRECT_MARK} ${s.answer}.`, meta: { ...m, direct: true } };
  });
}

/**
 * Rewrites the samples of a dataset folder in place: `fn` gives the new sample, or null to keep the line as it is.
 * Each shard's file is replaced atomically. Returns how many samples were rewritten.
 */
export function rewriteSamples(dir: string, fn: (s: Sample) => Sample | null): number {
  let changed = 0;
  for (const shard of listShards(dir)) {
    const file = join(dir, shard.dir, MANIFEST_FILE);
    const lines = readFileSync(file, 'utf8')
      .split('\n')
      .filter((l) => l.trim());
    const out = lines.map((line) => {
      const next = fn(JSON.parse(line) as Sample);
      if (!next) return line;
      changed++;
      return JSON.stringify(next);
    });
    writeFileSync(`${file}.tmp`, `${out.join('\n')}\n`);
    renameSync(`${file}.tmp`, file);
  }
  return changed;
}

/**
 * A stage's own training data: a copy of `from` rewritten by `rewrite`, made in a temporary folder and renamed into
 * place, so an interrupted stage never leaves a half-rewritten folder. An existing folder is kept (null; otherwise
 * what `rewrite` returned).
 */
export function deriveData(from: string, to: string, rewrite: (dir: string) => number): number | null {
  if (existsSync(join(to, 'dataset.json'))) return null;
  const tmp = `${to}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  cpSync(from, tmp, { recursive: true });
  const n = rewrite(tmp);
  renameSync(tmp, to);
  return n;
}

/** A string's FNV-1a hash as a number in [0, 1). */
export function hashUnit(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return (h >>> 0) / 2 ** 32;
}

export async function readAll(path: string, n = Number.POSITIVE_INFINITY): Promise<Sample[]> {
  const out: Sample[] = [];
  for await (const s of readSamples(path)) {
    if (out.length >= n) break;
    out.push(s);
  }
  if (!out.length) throw new Error(`lab: no samples in ${path}`);
  return out;
}

/** The first `perDomain` samples of each lab domain (held-out sets are mixed in equal proportions). */
export function perDomain(samples: readonly Sample[], n: number): Sample[] {
  const seen: Record<string, number> = {};
  return samples.filter((s) => {
    const d = labDomain(s);
    seen[d] = (seen[d] ?? 0) + 1;
    return seen[d] <= n;
  });
}

export async function tokenizerStage(c: StageCtx): Promise<Record<string, unknown>> {
  const cfg = parseTrainConfig(
    {
      stage: 'tokenizer',
      run: { dir: c.paths.tokenizer, seed: c.config.seed },
      data: { sources: [{ path: c.paths.data.sft }] },
      tokenizer: { vocabSize: c.config.tokenizer.vocabSize, digits: c.config.tokenizer.digits, template: 'glm41v' },
    },
    'tokenizer',
    'lab tokenizer stage',
  );
  const r = await runStage(cfg, { quiet: c.quiet, log: c.log, signal: c.signal });
  return { ...(r as unknown as Record<string, unknown>) };
}

/**
 * The SFT stage config: from scratch on the lab tasks, thinking only (the lab never asks /nothink). The vision tower
 * starts with sine-cosine position codes and trains at a tenth of the lr: at the text lr a from-scratch tower
 * collapses to a near-constant output, and with the small random position init it cannot tell the value cells apart
 * (docs/lab/perception.md has the measurements).
 */
export function sftConfig(c: StageCtx) {
  const base = {
    stage: 'sft',
    run: { dir: c.paths.sft, seed: c.config.seed, steps: 600, checkpointEvery: 50, keepCheckpoints: 2, logEvery: 1 },
    model: {
      init: 'scratch',
      tokenizer: join(c.paths.tokenizer, 'tokenizer'),
      arch: c.config.arch,
      visionPositionInit: 'sincos',
    },
    data: { sources: [{ path: c.paths.data.sft }] },
    pack: { seqLen: 1024 },
    batch: { rows: 8, microRows: 4 },
    optim: { lr: 2e-3, warmupSteps: 20, minLrRatio: 0.05, weightDecay: 0.05, lossAverage: 'token', visionLrScale: 0.1 },
    precision: 'bf16',
    sft: { nothinkShare: 0, filter: { enabled: false } },
  };
  const merged = deepMerge(base, c.config.sft) as typeof base;
  if ((c.config.sft as { optim?: { warmupSteps?: number } }).optim?.warmupSteps === undefined)
    merged.optim.warmupSteps = Math.min(merged.optim.warmupSteps, Math.floor(merged.run.steps / 10));
  return parseTrainConfig(merged, 'sft', 'lab sft stage');
}

export async function sftStage(c: StageCtx): Promise<Record<string, unknown> | 'interrupted'> {
  const r = await runStageResumable(sftConfig(c) as SftConfig, { quiet: c.quiet, log: c.log, signal: c.signal });
  if (r.interrupted) return 'interrupted';
  return {
    steps: r.steps,
    loss: r.loss,
    parameters: r.parameters,
    tokensPerSecond: r.tokensPerSecond,
    seconds: r.seconds,
  };
}

/**
 * A short SFT that continues a lab model (the cold start, the hedge stage): the first stage's packing, batch,
 * precision and optimizer, at its own lr with a short warmup (a tenth of the steps, at most `warmupCap`) and a floor
 * of 0.3 of the lr.
 */
export function followOnSftConfig(
  c: StageCtx,
  o: { dir: string; init: string; data: string; steps: number; lr: number; freezeVision: boolean; warmupCap: number },
  label: string,
) {
  const first = sftConfig(c) as SftConfig;
  return parseTrainConfig(
    {
      stage: 'sft',
      run: { dir: o.dir, seed: c.config.seed, steps: o.steps, checkpointEvery: 50, keepCheckpoints: 1, logEvery: 1 },
      model: { init: o.init, freezeVision: o.freezeVision },
      data: { sources: [{ path: o.data }] },
      pack: first.pack,
      batch: first.batch,
      optim: {
        ...first.optim,
        lr: o.lr,
        warmupSteps: Math.min(o.warmupCap, Math.floor(o.steps / 10)),
        minLrRatio: 0.3,
      },
      precision: first.precision,
      sft: first.sft,
    },
    'sft',
    label,
  );
}

/** The cold-start stage config: SFT from the first stage's final model on the cold-start data (`coldStart`). */
export function coldStartConfig(c: StageCtx) {
  const k = c.config.coldStart;
  return followOnSftConfig(
    c,
    {
      dir: c.paths.coldStart,
      init: join(c.paths.sft, 'final'),
      data: c.paths.data.cold,
      steps: k.steps,
      lr: k.lr,
      freezeVision: k.freezeVision,
      warmupCap: 10,
    },
    'lab cold-start stage',
  );
}

/**
 * The cold-start stage: the SFT samples again with `coldStart.directShare` of the reasoning targets made direct
 * (a superset of the first stage's: the choice is the same hash below a higher share), then a short SFT from the
 * first stage's final model. Off (`steps: 0`): nothing to do, the SFT model is the start model.
 */
export async function coldStartStage(c: StageCtx): Promise<Record<string, unknown> | 'interrupted'> {
  const k = c.config.coldStart;
  if (k.steps === 0) return { skipped: true };
  if (k.directShare < c.config.data.directShare)
    throw new Error(
      `lab: coldStart.directShare ${k.directShare} is below data.directShare ${c.config.data.directShare}; the cold start is meant to add shortcut targets`,
    );
  deriveData(c.paths.data.sft, c.paths.data.cold, (dir) => directTargets(dir, k.directShare, c.config.seed));
  const r = await runStageResumable(coldStartConfig(c) as SftConfig, { quiet: c.quiet, log: c.log, signal: c.signal });
  if (r.interrupted) return 'interrupted';
  return { steps: r.steps, loss: r.loss, directShare: k.directShare, seconds: r.seconds };
}

/** Sampling of the RL rollouts (temperature, budgets) — what pass@k and the offline filter sample with. */
export function rolloutSettings(c: StageCtx) {
  const r = (c.config.rl as { rollout?: Record<string, unknown> }).rollout ?? {};
  return {
    groupSize: 8,
    temperature: 1,
    topP: 1,
    topK: 0,
    maxThinkingTokens: 300,
    maxAnswerTokens: 16,
    forceAnswer: true,
    style: 'glm41v' as const,
    batchSize: 256,
    engine: 'local' as const,
    ...r,
  };
}

async function passK(
  c: StageCtx,
  policy: GlmPolicy,
  router: RewardRouter,
  samples: readonly Sample[],
  k: number,
  purpose: number,
  label: string,
): Promise<OfflineResult[]> {
  const engine = new GlmRolloutEngine(policy, { batchSize: 256 });
  const prompts: RolloutPrompt[] = [];
  for (const s of samples) prompts.push({ sample: s, input: await policy.encodePrompt(s) });
  const r = rolloutSettings(c);
  return passAtKResults(engine, router, prompts, k, samplingOf(r as never, stepSeed(c.config.seed, -1, purpose)), {
    quiet: c.quiet,
    label,
  });
}

export interface StartSummary {
  probe: LabScore;
  heldout: LabScore;
  hard: LabScore;
  /** pass@1 (mean share of correct samples) and pass@k on held-out reasoning prompts, sampled like rollouts. */
  pass1: number;
  passk: number;
  k: number;
  prompts: number;
  passPerDomain: Record<string, { pass1: number; passk: number }>;
  examples: LabExample[];
  /** The requirements on the start model, as measured. */
  checks: { probe90: boolean; pass1MidRange: boolean; gap25: boolean };
}

export async function startStage(c: StageCtx): Promise<StartSummary> {
  const policy = await GlmPolicy.load(c.paths.startModel);
  const router = new RewardRouter({ cas: { enabled: false } });
  const e = c.config.eval;
  const opts = { maxNewTokens: e.maxNewTokens, batchSize: e.batchSize, quiet: c.quiet };
  try {
    const probe = await evaluateLab(policy.chat, router, await readAll(c.paths.data.probe), {
      ...opts,
      label: 'probes',
    });
    const held = await evaluateLab(policy.chat, router, await readAll(c.paths.data.heldout), {
      ...opts,
      label: 'held-out',
      examples: e.examples,
    });
    const hard = await evaluateLab(policy.chat, router, await readAll(c.paths.data.hard), { ...opts, label: 'hard' });
    const k = c.config.start.k;
    const prompts = perDomain(await readAll(c.paths.data.heldout), c.config.start.perDomain);
    const res = await passK(c, policy, router, prompts, k, 11, `start pass@${k}`);
    const byDomain: Record<string, OfflineResult[]> = {};
    for (const r of res) {
      const d = labDomain(prompts.find((p) => p.id === r.id)!);
      byDomain[d] ??= [];
      byDomain[d].push(r);
    }
    const rates = (rs: readonly OfflineResult[]) => {
      const s = passKSummary(rs)['*'] ?? { prompts: 0, passRate: 0, solvedAny: 0, solvedAll: 0 };
      return { pass1: s.passRate, passk: s.prompts ? s.solvedAny / s.prompts : 0 };
    };
    const all = rates(res);
    const summary: StartSummary = {
      probe: probe.score,
      heldout: held.score,
      hard: hard.score,
      ...all,
      k,
      prompts: res.length,
      passPerDomain: Object.fromEntries(Object.entries(byDomain).map(([d, rs]) => [d, rates(rs)])),
      examples: held.examples,
      checks: {
        probe90: probe.score.accuracy >= 0.9,
        pass1MidRange: all.pass1 >= 0.2 && all.pass1 <= 0.5,
        gap25: all.passk - all.pass1 >= 0.25,
      },
    };
    c.log(
      `lab: start model — probes ${(100 * probe.score.accuracy).toFixed(1)}%, held-out greedy ${(100 * held.score.accuracy).toFixed(1)}%, level ${c.config.data.hardLevel} ${(100 * hard.score.accuracy).toFixed(1)}%, pass@1 ${(100 * all.pass1).toFixed(1)}%, pass@${k} ${(100 * all.passk).toFixed(1)}%`,
    );
    return summary;
  } finally {
    await router.close();
  }
}

/**
 * Offline pass@k of the start model on every RL prompt: RLCS's initial tiers (`curriculum.offlinePassK.file`) and the
 * offline-filter run's prompt set (0 < pass < k: neither solved every time nor never).
 */
export async function offlineStage(c: StageCtx): Promise<Record<string, unknown>> {
  const policy = await GlmPolicy.load(c.paths.startModel);
  const router = new RewardRouter({ cas: { enabled: false } });
  try {
    const prompts: Sample[] = [];
    for (const g of LAB) prompts.push(...(await readAll(c.paths.data.rl(g))));
    const k = c.config.offline.k;
    const res = await passK(c, policy, router, prompts, k, 12, `offline pass@${k}`);
    writePassK(c.paths.offline, res, { k, model: c.paths.startModel });
    const keep = new Set(res.filter((r) => r.correct > 0 && r.correct < r.k).map((r) => r.id));
    const file = c.paths.data.rlFiltered;
    mkdirSync(join(file, '..'), { recursive: true });
    const rows = prompts
      .filter((s) => keep.has(s.id))
      .map((s) => JSON.stringify({ ...s, images: s.images.map((p) => relative(join(file, '..'), p)) }));
    writeFileSync(file, rows.length ? `${rows.join('\n')}\n` : '');
    const s = passKSummary(res)['*']!;
    return {
      prompts: res.length,
      k,
      pass1: s.passRate,
      kept: keep.size,
      file: relative(join(c.paths.state, '..'), file),
    };
  } finally {
    await router.close();
  }
}
