/**
 * The lab's results: everything the report shows, derived from the lab state (which holds only measured values) —
 * the start model, each run, and per experiment the comparisons of the issue (gain over seeds with its spread,
 * rollouts to a reference accuracy, zero-advantage shares, per-domain transfer, the hack's share, truncation).
 */
import { cpus } from 'node:os';
import { isAbsolute, join, relative, resolve } from 'node:path';
import { meanSd } from '../eval/metrics.js';
import { EXPERIMENTS, type Experiment, type LabConfig } from './config.js';
import type { LabScore } from './eval.js';
import type { StartSummary } from './model.js';
import { experimentRuns, type RunResult, type ShortcutPoint, shortcutStats } from './runs.js';

export const LAB_STAGES = ['data', 'tokenizer', 'sft', 'coldstart', 'start', 'offline', 'hedge'] as const;
export type LabStage = (typeof LAB_STAGES)[number];

export interface LabState {
  config: LabConfig;
  startedAt: string;
  stages: Partial<Record<LabStage, { seconds: number; summary: Record<string, unknown> }>>;
  runs: Record<string, RunResult | { name: string; skipped: string }>;
  /** Experiment 6's reference: the start model at the tight budget, forcing on and off. */
  tightStart?: { force: LabScore; noforce: LabScore };
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
  const byExp = experimentRuns(cfg);
  // Only the runs of the experiments asked for: a lab folder keeps runs an earlier design of an experiment made.
  const asked = new Set(cfg.experiments.flatMap((e) => byExp[e].map((r) => r.name)));
  const runs = Object.fromEntries(
    Object.entries(state.runs)
      .filter((e): e is [string, RunResult] => !('skipped' in e[1]) && asked.has(e[0]))
      .map(([k, r]) => [k, { ...r, examples: rel(r.examples) }]),
  );
  const skipped = Object.fromEntries(
    Object.entries(state.runs)
      .filter(([, r]) => 'skipped' in r)
      .map(([k, r]) => [k, (r as { skipped: string }).skipped]),
  );
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
      // Both runs start from the hedging model: its held-out accuracy and hedge rate are where they start.
      const hedge = state.stages.hedge?.summary as { share?: number; heldout?: LabScore } | undefined;
      if (hedge?.heldout)
        x.start = { heldout: hedge.heldout.accuracy, hedgeRate: hedge.heldout.hedgeRate ?? null, share: hedge.share };
      x.hedgeRate = Object.fromEntries(names.map((n) => [n, runs[n]!.heldout.hedgeRate ?? null]));
      x.hedgeShare = Object.fromEntries(names.map((n) => [n, runs[n]!.hedge ?? []]));
      const h = names.map((n) => runs[n]!).find((r) => r.hack);
      if (h?.hack) {
        x.hackShare = h.hack.perStep;
        x.hackAppearsAtStep = hackOnset(h.hack.perStep);
        // Where the hackable run's strict-graded curve peaked, and where it ended (a collapse is a fall from the peak).
        const peak = h.curve.reduce((a, p) => (p.accuracy > a.accuracy ? p : a), h.curve[0]!);
        x.hackableCurve = { peakStep: peak.step, peak: peak.accuracy, end: h.curve.at(-1)!.accuracy };
      }
      x.trainPassVsStrict = Object.fromEntries(
        names.map((n) => [
          n,
          { trainPass: runs[n]!.series.at(-1)?.pass_rate ?? null, strict: runs[n]!.heldout.accuracy },
        ]),
      );
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
  // What RL changed in how the policy answers: per run and step, the shortcut share (read from the saved rollouts).
  const shortcut: Record<string, ShortcutPoint[]> = out
    ? Object.fromEntries(Object.keys(runs).map((n) => [n, shortcutStats(join(out, 'runs', n))]))
    : {};
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
    coldStart: state.stages.coldstart?.summary ?? null,
    offline: state.stages.offline?.summary ?? null,
    start,
    runs,
    skipped,
    experiments,
    shortcut,
    allExperiments: EXPERIMENTS,
  };
}
export type LabResults = ReturnType<typeof labResults>;

/**
 * The step at which the hack takes hold: the first step from which the share of rollouts paid only by the hack stays
 * at least twice its step-0 share (and at least 10 %) for `hold` steps in a row (to the run's end when fewer remain),
 * or null when it never does. A start model may already hedge now and then, so a fixed threshold alone would date
 * the hack to step 0 or 1; "twice where it started, and kept" marks the policy learning it.
 */
export function hackOnset(perStep: Array<{ step: number; share: number }>, hold = 3): number | null {
  if (perStep.length < 2) return null;
  const threshold = Math.max(0.1, 2 * perStep[0]!.share);
  for (let i = 1; i < perStep.length; i++) {
    const window = perStep.slice(i, i + hold);
    if (window.every((p) => p.share >= threshold)) return perStep[i]!.step;
  }
  return null;
}
