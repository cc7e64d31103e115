/**
 * `glmv lab`: the RL lab end to end — lab data → tokenizer → SFT from scratch → start-model checks → offline pass@k →
 * the experiments' RL runs → results JSON and an HTML report. Every stage and every run records itself in RUN/lab.json
 * when it finishes; the same command again skips what is done and resumes an interrupted run from its checkpoint.
 * Every number in the results comes from a run this command performed.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { writeTextAtomic } from '../model/checkpoint.js';
import { RewardRouter } from '../reward/router.js';
import { MetricsWriter } from '../util/progress.js';
import { type LabConfig, LabConfigSchema } from './config.js';
import { atBudget, evaluateLab, type LabScore } from './eval.js';
import { hedgeStage } from './hedge.js';
import {
  coldStartStage,
  dataStage,
  labPaths,
  offlineStage,
  readAll,
  rolloutSettings,
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
  /** Start a new lab folder from another's finished stages (same data, tokenizer, SFT and eval settings). */
  from?: string;
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

/** The lab's JSON files keep their one-space layout (the committed results files have it). */
function writeJson(path: string, v: unknown): void {
  writeTextAtomic(path, JSON.stringify(v, null, 1));
}

export function readLabState(out: string): LabState | null {
  const p = labPaths(out).state;
  if (!existsSync(p)) return null;
  let state: LabState;
  try {
    state = JSON.parse(readFileSync(p, 'utf8')) as LabState;
  } catch (e) {
    throw new Error(`lab: ${p} is not valid JSON (${(e as Error).message}); remove it to start the lab over`);
  }
  // A lab made before a setting existed reads it at its default (what the lab did then, or a stage it never ran).
  const parsed = LabConfigSchema.safeParse(state.config);
  if (parsed.success) state.config = parsed.data;
  return state;
}

/** Settings only the RL runs use: the stages before them (data → offline) do not depend on them. */
const RUN_FIELDS = ['rl', 'evalEvery', 'transferDomain', 'tightBudget', 'experiments', 'seeds'] as const;

/** The config fields the stages' results depend on (the preset's name is not one: only the values it sets are). */
function stageIdentity(c: LabConfig): unknown {
  const rest: Record<string, unknown> = { ...c };
  for (const k of RUN_FIELDS) delete rest[k];
  delete rest.preset;
  // No cold start (steps 0) is what labs from before the stage existed did.
  if (!c.coldStart?.steps) delete rest.coldStart;
  return rest;
}

/** The data settings the SFT samples depend on; the other data fields size and level the RL and held-out sets. */
const SFT_DATA = ['imageSize', 'sftLevels', 'directShare', 'sftSamples'] as const;

/**
 * What each stage's result depends on: groups of config fields, cumulative along the stages. `sftData` and
 * `evalData` split the data settings, so a lab with larger held-out or RL sets keeps the tokenizer, SFT and cold
 * start of another made with the same SFT data, and measures its start model again on its own sets.
 */
const STAGE_DEPS: Record<LabStage, readonly string[]> = (() => {
  const tokenizer = ['seed', 'sftData', 'tokenizer'];
  const sft = [...tokenizer, 'arch', 'sft'];
  const coldstart = [...sft, 'coldStart'];
  const start = [...coldstart, 'evalData', 'start', 'eval'];
  return {
    data: ['seed', 'sftData', 'evalData'],
    tokenizer,
    sft,
    coldstart,
    start,
    offline: [...start, 'offline'],
    hedge: [...start, 'hedge'],
  };
})();

/** The identity split into STAGE_DEPS's groups. */
function depGroups(c: LabConfig): Record<string, unknown> {
  const id = stageIdentity(c) as Record<string, unknown> & { data: Record<string, unknown> };
  const sftData: Record<string, unknown> = {};
  const evalData: Record<string, unknown> = { ...id.data };
  for (const k of SFT_DATA) {
    sftData[k] = id.data[k];
    delete evalData[k];
  }
  return { ...id, sftData, evalData };
}

/** The stages (in order, earlier ones first) whose results another folder's config can lend to this one. */
function reusableStages(from: LabConfig, to: LabConfig): LabStage[] {
  const a = depGroups(from);
  const b = depGroups(to);
  const known = new Set(Object.values(STAGE_DEPS).flat());
  // A field no group names (a new setting) makes nothing reusable rather than being ignored.
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  keys.delete('data');
  if (![...keys].every((k) => known.has(k) || same(a[k], b[k]))) return [];
  return LAB_STAGES.filter((s) => STAGE_DEPS[s].every((k) => same(a[k], b[k])));
}

/** The config fields the RL runs' results depend on (experiments and seeds only choose which runs exist). */
function runIdentity(c: LabConfig): unknown {
  return { rl: c.rl, evalEvery: c.evalEvery, transferDomain: c.transferDomain, tightBudget: c.tightBudget };
}

const same = (a: unknown, b: unknown) => JSON.stringify(a) === JSON.stringify(b);

/**
 * A new lab folder that starts from another folder's finished stages: their files are copied (data, tokenizer, the
 * SFT and cold-start folders without their intermediate checkpoints, the offline pass@k and filter) and their
 * measurements kept, for every stage whose settings (and those of the stages it depends on) are the same — so other
 * RL settings can be tried from the same start model without training it again, another cold start from the same
 * SFT model, or larger held-out and RL sets (the data stage then makes those again, and the start model is measured
 * on them).
 */
function startFrom(from: string, out: string, config: LabConfig, log: (l: string) => void): LabState {
  const src = readLabState(from);
  if (!src) throw new Error(`lab --from: ${from} has no lab.json; is it a lab folder?`);
  const reusable = reusableStages(src.config, config);
  if (reusable.length === 0)
    throw new Error(
      `lab --from: ${from} was made with other SFT data settings (seed, data.${SFT_DATA.join(', data.')}) or tokenizer, so no stage can be reused; only ${RUN_FIELDS.join(', ')}, the held-out and RL set sizes and later stages' settings may differ`,
    );
  if (resolve(from) === resolve(out)) throw new Error('lab --from: expected another folder than --out');
  const a = labPaths(from);
  const b = labPaths(out);
  const copy = (x: string, y: string, filter?: (p: string) => boolean) => {
    if (existsSync(x)) cpSync(x, y, { recursive: true, ...(filter ? { filter } : {}) });
  };
  const stages: LabState['stages'] = {};
  for (const stage of LAB_STAGES) {
    if (!reusable.includes(stage)) {
      // The data stage alone may differ (other held-out or RL sets): the SFT samples, which the tokenizer and SFT
      // were made from, are lent; the data stage runs again and makes the rest.
      if (stage === 'data' && reusable.includes('tokenizer') && src.stages.data) copy(a.data.sft, b.data.sft);
      else if (stage !== 'data') break;
      continue;
    }
    // Labs from before the cold-start stage had none: their SFT model is the start model.
    const done =
      src.stages[stage] ??
      (stage === 'coldstart' && !src.config.coldStart?.steps && src.stages.start
        ? { seconds: 0, summary: { skipped: true } }
        : undefined);
    if (!done) break;
    if (stage === 'data') {
      // The cold-start and hedge data are made by their stages (from this data and their own settings).
      for (const name of readdirSync(join(from, 'data')))
        if (name !== 'rl-filtered' && !name.startsWith('coldstart') && !name.startsWith('hedge'))
          copy(join(from, 'data', name), join(out, 'data', name));
    } else if (stage === 'tokenizer') copy(a.tokenizer, b.tokenizer);
    else if (stage === 'sft') copy(a.sft, b.sft, (p) => !p.startsWith(join(a.sft, 'checkpoints')));
    else if (stage === 'coldstart') {
      copy(a.data.cold, b.data.cold);
      copy(a.coldStart, b.coldStart, (p) => !p.startsWith(join(a.coldStart, 'checkpoints')));
    } else if (stage === 'offline') {
      copy(a.offline, b.offline);
      copy(join(a.data.rlFiltered, '..'), join(b.data.rlFiltered, '..'));
    } else if (stage === 'hedge') {
      copy(a.data.hedge, b.data.hedge);
      copy(a.hedge, b.hedge, (p) => !p.startsWith(join(a.hedge, 'checkpoints')));
    }
    stages[stage] = done;
  }
  log(`lab: starting ${out} from ${from} (stages: ${Object.keys(stages).join(', ') || 'none'})`);
  return { config, startedAt: new Date().toISOString(), stages, runs: {} };
}

export async function runLab(config: LabConfig, o: LabOptions): Promise<LabResult> {
  const log = o.log ?? ((l: string) => process.stderr.write(`${l}\n`));
  mkdirSync(o.out, { recursive: true });
  const paths = labPaths(o.out, config.coldStart.steps > 0);
  let state = readLabState(o.out);
  if (state && o.from && Object.keys(state.stages).length === 0) state = null;
  if (state) {
    if (!same(stageIdentity(state.config), stageIdentity(config)))
      throw new Error(
        `lab: ${o.out} was started with other data, tokenizer, model, SFT or eval settings; use another --out or the same settings`,
      );
    const runsStarted = Object.keys(state.runs).length > 0 || existsSync(join(o.out, 'runs'));
    if (runsStarted && !same(runIdentity(state.config), runIdentity(config)))
      throw new Error(
        `lab: ${o.out} has RL runs made with other RL settings (rl, evalEvery, transferDomain, tightBudget); to try new ones from the same start model, use --from ${o.out} --out <new folder>`,
      );
    state.config = config;
    log(
      `lab: continuing ${o.out} (done: ${[...Object.keys(state.stages), ...Object.keys(state.runs)].join(', ') || 'nothing yet'})`,
    );
  } else if (o.from) state = startFrom(o.from, o.out, config, log);
  else state = { config, startedAt: new Date().toISOString(), stages: {}, runs: {} };
  writeJson(paths.state, state);
  const metrics = new MetricsWriter(paths.metrics);
  const c: StageCtx = { config, paths, quiet: !!o.quiet, log, signal: o.signal };
  const runners: Record<LabStage, () => Promise<Record<string, unknown> | 'interrupted'>> = {
    data: () => dataStage(c),
    tokenizer: () => tokenizerStage(c),
    sft: () => sftStage(c),
    coldstart: () => coldStartStage(c),
    start: async () => (await startStage(c)) as unknown as Record<string, unknown>,
    offline: () => offlineStage(c),
    hedge: () => hedgeStage(c),
  };
  const interrupted = (): LabResult => ({ state: state!, interrupted: true, results: null, report: null });
  for (const stage of LAB_STAGES) {
    if (state.stages[stage]) continue;
    // Only experiment 5 starts from the hedging model.
    if (stage === 'hedge' && !config.experiments.includes('hacking')) continue;
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
    // Experiment 5's runs start from the hedging model, so their log line compares with its score.
    const from = spec.fromHedge ? (state.stages.hedge!.summary.heldout as LabScore) : start.heldout;
    const r = await runOne(c, spec, from);
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
  const answer = rolloutSettings(c).maxAnswerTokens; // the tight runs' own cap: budget + answer tokens
  try {
    const common = { batchSize: c.config.eval.batchSize, quiet: c.quiet };
    const force = await evaluateLab(policy.chat, router, samples, {
      ...common,
      ...atBudget(b, answer, true),
      label: 'start, tight, force',
    });
    const noforce = await evaluateLab(policy.chat, router, samples, {
      ...common,
      ...atBudget(b, answer, false),
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
