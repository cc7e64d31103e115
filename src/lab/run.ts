/**
 * `glmv lab`: the RL lab end to end — lab data → tokenizer → SFT from scratch → start-model checks → offline pass@k →
 * the experiments' RL runs → results JSON and an HTML report. Every stage and every run records itself in RUN/lab.json
 * when it finishes; the same command again skips what is done and resumes an interrupted run from its checkpoint.
 * Every number in the results comes from a run this command performed.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { isAbsolute, relative, resolve } from 'node:path';
import { meanSd } from '../eval/metrics.js';
import { RewardRouter } from '../reward/router.js';
import { MetricsWriter } from '../util/progress.js';
import { EXPERIMENTS, type Experiment, type LabConfig } from './config.js';
import { evaluateLab, type LabScore } from './eval.js';
import {
  dataStage,
  labPaths,
  offlineStage,
  readAll,
  type StageCtx,
  type StartSummary,
  sftStage,
  startStage,
  tokenizerStage,
} from './model.js';
import { writeLabReport } from './report.js';
import { experimentRuns, type RunResult, type RunSpec, runOne } from './runs.js';

export const LAB_STAGES = ['data', 'tokenizer', 'sft', 'start', 'offline'] as const;
type LabStage = (typeof LAB_STAGES)[number];

export interface LabState {
  config: LabConfig;
  startedAt: string;
  stages: Partial<Record<LabStage, { seconds: number; summary: Record<string, unknown> }>>;
  runs: Record<string, RunResult | { name: string; skipped: string }>;
  /** Experiment 6's reference: the start model at the tight budget, forcing on and off. */
  tightStart?: { force: LabScore; noforce: LabScore };
}

export interface LabOptions {
  out: string;
  signal?: AbortSignal;
  quiet?: boolean;
  log?: (l: string) => void;
}

export interface LabResult {
  state: LabState;
  interrupted: boolean;
  results: string | null;
  report: string | null;
}

function writeJson(path: string, v: unknown): void {
  writeFileSync(`${path}.tmp`, JSON.stringify(v, null, 1));
  renameSync(`${path}.tmp`, path);
}

export function readLabState(out: string): LabState | null {
  const p = labPaths(out).state;
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as LabState;
  } catch (e) {
    throw new Error(`lab: ${p} is not valid JSON (${(e as Error).message}); remove it to start the lab over`);
  }
}

/** The config fields that change what was measured (experiments, seeds and the report may change between calls). */
function identity(c: LabConfig): unknown {
  const { experiments: _e, seeds: _s, ...rest } = c;
  return rest;
}

export async function runLab(config: LabConfig, o: LabOptions): Promise<LabResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  mkdirSync(o.out, { recursive: true });
  const paths = labPaths(o.out);
  let state = readLabState(o.out);
  if (state) {
    if (JSON.stringify(identity(state.config)) !== JSON.stringify(identity(config)))
      throw new Error(
        `lab: ${o.out} was started with other settings (only experiments and seeds may change); use another --out or the same settings`,
      );
    state.config = config;
    log(
      `lab: continuing ${o.out} (done: ${[...Object.keys(state.stages), ...Object.keys(state.runs)].join(', ') || 'nothing yet'})`,
    );
  } else state = { config, startedAt: new Date().toISOString(), stages: {}, runs: {} };
  writeJson(paths.state, state);
  const metrics = new MetricsWriter(paths.metrics);
  const c: StageCtx = { config, paths, quiet: !!o.quiet, log, signal: o.signal };
  const runners: Record<LabStage, () => Promise<Record<string, unknown> | 'interrupted'>> = {
    data: () => dataStage(c),
    tokenizer: () => tokenizerStage(c),
    sft: () => sftStage(c),
    start: async () => (await startStage(c)) as unknown as Record<string, unknown>,
    offline: () => offlineStage(c),
  };
  const interrupted = (): LabResult => ({ state: state!, interrupted: true, results: null, report: null });
  for (const stage of LAB_STAGES) {
    if (state.stages[stage]) continue;
    if (o.signal?.aborted) return interrupted();
    log(`lab: ${stage} …`);
    const t0 = performance.now();
    const summary = await runners[stage]();
    if (summary === 'interrupted' || o.signal?.aborted) return interrupted();
    const seconds = (performance.now() - t0) / 1000;
    state.stages[stage] = { seconds, summary };
    writeJson(paths.state, state);
    metrics.write({ event: 'stage_done', stage, seconds });
  }
  const start = state.stages.start!.summary as unknown as StartSummary;

  // The experiments' runs, each once even when several experiments share it.
  const byExp = experimentRuns(config);
  const specs = new Map<string, RunSpec>();
  for (const e of config.experiments) for (const s of byExp[e]) specs.set(s.name, s);
  for (const spec of specs.values()) {
    if (state.runs[spec.name]) continue;
    if (o.signal?.aborted) return interrupted();
    if (spec.name === 'offline-filter' && (state.stages.offline!.summary.kept as number) === 0) {
      state.runs[spec.name] = { name: spec.name, skipped: 'the offline filter kept no prompt (no 0 < pass < k)' };
      writeJson(paths.state, state);
      continue;
    }
    log(`lab: run ${spec.name} (${spec.what}) …`);
    const r = await runOne(c, spec, start.heldout);
    if (r === 'interrupted') return interrupted();
    state.runs[spec.name] = r;
    writeJson(paths.state, state);
    metrics.write({ event: 'run_done', run: spec.name, seconds: r.seconds, heldout: r.heldout.accuracy });
    // Results and report after every run: a lab stopped half-way still shows what it measured.
    publishLab(o.out, state);
  }
  if (config.experiments.includes('force') && !state.tightStart) {
    state.tightStart = await tightStart(c);
    writeJson(paths.state, state);
  }
  publishLab(o.out, state);
  log(`lab: results ${paths.results}, report ${paths.report}`);
  return { state, interrupted: false, results: paths.results, report: paths.report };
}

/** The start model on the held-out set at the tight budget, with and without force answering (experiment 6's baseline). */
async function tightStart(c: StageCtx): Promise<{ force: LabScore; noforce: LabScore }> {
  const { GlmPolicy } = await import('../rl/glm.js');
  const policy = await GlmPolicy.load(c.paths.startModel);
  const router = new RewardRouter({ cas: { enabled: false } });
  const samples = await readAll(c.paths.data.heldout);
  const b = c.config.tightBudget;
  const answer = 16;
  try {
    const common = { maxNewTokens: b + answer, batchSize: c.config.eval.batchSize, quiet: c.quiet };
    const force = await evaluateLab(policy.chat, router, samples, {
      ...common,
      thinkingBudget: b,
      label: 'start, tight, force',
    });
    const noforce = await evaluateLab(policy.chat, router, samples, {
      ...common,
      thinkingBudget: null,
      label: 'start, tight',
    });
    return { force: force.score, noforce: noforce.score };
  } finally {
    await router.close();
  }
}

/** Writes RUN/results.json and RUN/report.html from the state (what has been measured so far). */
export function publishLab(out: string, state: LabState): void {
  const paths = labPaths(out);
  if (!state.stages.start) return;
  const results = labResults(state, out);
  writeJson(paths.results, results);
  writeLabReport(paths.report, results, out);
}

type Stat = { mean: number; sd: number; n: number };
const stat = (xs: number[]): Stat => ({ ...meanSd(xs), n: xs.length });

/** Everything the report shows, derived from the state (which holds only measured values). */
export function labResults(state: LabState, out?: string) {
  const cfg = state.config;
  // Example images relative to the lab folder, so results travel with it (the report resolves them against it).
  const rel = <T extends { image: string | null }>(xs: readonly T[]): T[] =>
    xs.map((e) => ({ ...e, image: e.image && out && isAbsolute(e.image) ? relative(resolve(out), e.image) : e.image }));
  const s0 = state.stages.start?.summary as unknown as StartSummary | undefined;
  const start = (s0 ? { ...s0, examples: rel(s0.examples) } : s0) as StartSummary;
  const runs = Object.fromEntries(
    Object.entries(state.runs)
      .filter((e): e is [string, RunResult] => !('skipped' in e[1]))
      .map(([k, r]) => [k, { ...r, examples: rel(r.examples) }]),
  );
  const skipped = Object.fromEntries(
    Object.entries(state.runs)
      .filter(([, r]) => 'skipped' in r)
      .map(([k, r]) => [k, (r as { skipped: string }).skipped]),
  );
  const byExp = experimentRuns(cfg);
  const have = (names: string[]) => names.filter((n) => runs[n]);
  const experiments: Partial<Record<Experiment, Record<string, unknown>>> = {};
  for (const e of cfg.experiments) {
    const names = have(byExp[e].map((s) => s.name));
    if (!names.length) continue;
    const final = Object.fromEntries(
      names.map((n) => [
        n,
        { heldout: runs[n]!.heldout.accuracy, hard: runs[n]!.hard.accuracy, steps: runs[n]!.steps },
      ]),
    );
    const x: Record<string, unknown> = { runs: names, final };
    if (e === 'gain') {
      x.heldoutGain = stat(names.map((n) => runs[n]!.heldout.accuracy - start.heldout.accuracy));
      x.hardGain = stat(names.map((n) => runs[n]!.hard.accuracy - start.hard.accuracy));
      x.heldout = stat(names.map((n) => runs[n]!.heldout.accuracy));
      x.hard = stat(names.map((n) => runs[n]!.hard.accuracy));
      x.probeAfter = stat(names.flatMap((n) => (runs[n]!.probe ? [runs[n]!.probe!.accuracy] : [])));
    }
    if (e === 'rlcs' || e === 'expansion') {
      // Rollouts each run needed to reach the reference run's final curve accuracy (uniform / expansion off).
      const refName = e === 'rlcs' ? 'uniform' : 'no-expansion';
      const refCurve = runs[refName]?.curve;
      const ref = refCurve?.at(-1)?.accuracy;
      // Only meaningful when the reference run improved on where every run starts (its step-0 point).
      if (ref !== undefined && ref > (refCurve![0]?.accuracy ?? 0))
        x.rolloutsToReference = Object.fromEntries(
          names.map((n) => [n, runs[n]!.curve.find((p) => p.accuracy >= ref)?.rollouts ?? null]),
        );
      else if (ref !== undefined) x.referenceNote = `${refName} did not improve on the start model`;
      x.reference = refName;
      x.zeroAdvantageShare = Object.fromEntries(
        names.map((n) => [n, stat(runs[n]!.series.map((r) => (r.invalid_share as number) ?? 0))]),
      );
      x.rollouts = Object.fromEntries(names.map((n) => [n, runs[n]!.curve.at(-1)?.rollouts ?? 0]));
    }
    if (e === 'transfer')
      x.perDomain = Object.fromEntries([
        ['start', Object.fromEntries(Object.entries(start.heldout.perDomain).map(([d, v]) => [d, v.accuracy]))],
        ...names.map((n) => [
          n,
          Object.fromEntries(Object.entries(runs[n]!.heldout.perDomain).map(([d, v]) => [d, v.accuracy])),
        ]),
      ]);
    if (e === 'hacking') {
      const h = runs.hackable;
      if (h?.hack) {
        const first = h.hack.perStep.find((p) => p.share >= 0.1);
        x.hackShare = h.hack.perStep;
        x.hackAppearsAtStep = first?.step ?? null;
        x.trainPassVsStrict = Object.fromEntries(
          names.map((n) => [
            n,
            { trainPass: runs[n]!.series.at(-1)?.pass_rate ?? null, strict: runs[n]!.heldout.accuracy },
          ]),
        );
      }
    }
    if (e === 'force') {
      x.truncated = Object.fromEntries(
        names.map((n) => [n, stat(runs[n]!.series.map((r) => (r.truncated_rate as number) ?? 0))]),
      );
      x.forced = Object.fromEntries(
        names.map((n) => [n, stat(runs[n]!.series.map((r) => (r.forced_rate as number) ?? 0))]),
      );
      if (state.tightStart)
        x.start = { force: state.tightStart.force.accuracy, noforce: state.tightStart.noforce.accuracy };
      x.evalForced = Object.fromEntries(names.map((n) => [n, runs[n]!.heldout.forcedRate]));
    }
    experiments[e] = x;
  }
  const seconds =
    Object.values(state.stages).reduce((a, s) => a + (s?.seconds ?? 0), 0) +
    Object.values(runs).reduce((a, r) => a + r.seconds, 0);
  return {
    preset: cfg.preset,
    config: cfg,
    machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version },
    startedAt: state.startedAt,
    seconds,
    stages: Object.fromEntries(Object.entries(state.stages).map(([k, v]) => [k, { seconds: v!.seconds }])),
    sft: state.stages.sft?.summary ?? null,
    offline: state.stages.offline?.summary ?? null,
    start,
    runs,
    skipped,
    experiments,
    allExperiments: EXPERIMENTS,
  };
}
export type LabResults = ReturnType<typeof labResults>;
