/**
 * `glmv lab`: the RL lab end to end — lab data → tokenizer → SFT from scratch → start-model checks → offline pass@k →
 * the experiments' RL runs → results JSON and an HTML report. Every stage and every run records itself in RUN/lab.json
 * when it finishes; the same command again skips what is done and resumes an interrupted run from its checkpoint.
 * Every number in the results comes from a run this command performed.
 */
import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { RewardRouter } from '../reward/router.js';
import { MetricsWriter } from '../util/progress.js';
import type { LabConfig } from './config.js';
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
import { LAB_STAGES, type LabStage, type LabState, labResults } from './results.js';
import { experimentRuns, type RunSpec, runOne } from './runs.js';

export { LAB_STAGES, type LabState };

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
