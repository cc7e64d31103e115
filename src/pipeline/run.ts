/**
 * `glmv pipeline`: the paper's recipe end to end on this machine — synthetic data → tokenizer → multimodal
 * pre-training → long-context continual training → long-CoT SFT (difficulty-filtered) → RL (GRPO + RLCS) — with a
 * held-out evaluation per domain after each model stage (thinking and /nothink) and an HTML report.
 *
 * Every stage records itself in RUN/pipeline.json when it finishes; running the same command again skips finished
 * stages and resumes an interrupted training stage from its last checkpoint, so a killed run finishes where it left.
 */
import { existsSync, mkdirSync } from 'node:fs';
import { MetricsWriter } from '../util/progress.js';
import { type PipelineConfig, PipelineConfigSchema } from './config.js';
import { dataStage } from './stages/data.js';
import { evalStage } from './stages/eval.js';
import { headroomStage, rlSeedsStage, rlStage } from './stages/rl.js';
import { reportStage, shipStage } from './stages/ship.js';
import type { StageContext, StageOutcome } from './stages/stage.js';
import { tokenizerStage, trainStage } from './stages/train.js';
import {
  type PipelineStage,
  type PipelineState,
  readState,
  runPaths,
  STAGES,
  type StageRecord,
  writeState,
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
    // Fields added since the run started take their defaults (what the run used before they existed).
    const filled = PipelineConfigSchema.safeParse(state.config);
    if (filled.success) state.config = filled.data;
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
