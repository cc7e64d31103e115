/**
 * What an RL config runs, end to end: a training run (fresh or resumed exactly) and an offline pass@k of a model over
 * the config's prompts. The `glmv rl` command parses options and prints; the work is here.
 */
import { applyOverrides, PRESETS, parseRlConfig, type RlConfig, readConfigFile } from './config.js';
import { type OfflineResult, passAtKResults, samplingOf } from './passk.js';
import { assertFreshRunDir } from './run-dir.js';
import { buildEngine, buildPolicy, buildRouter, loadPrompts } from './setup.js';
import type { StepRecord } from './step-log.js';
import { RlTrainer, stepSeed } from './trainer.js';
import type { RolloutPrompt } from './types.js';

/** A config from a file or a preset name, with `--set` overrides applied and validated. */
export function loadRlConfig(source: string, sets: string[], purpose: 'train' | 'passk' = 'train'): RlConfig {
  const preset = Object.hasOwn(PRESETS, source) ? PRESETS[source] : undefined;
  const raw = preset ? preset() : readConfigFile(source);
  const withSets = applyOverrides(raw, sets);
  return parseRlConfig(withSets, preset ? `preset ${source}` : `rl config ${source}`, purpose);
}

export interface TrainRunOptions {
  /** Continue the run in run.dir from its newest checkpoint. */
  resume?: boolean;
  /** Stop (with a checkpoint) after this many steps. */
  stopAfter?: number;
  quiet?: boolean;
  /** Polled between steps: true finishes the step, writes a checkpoint and stops. */
  shouldStop?: () => boolean;
  /** Called once everything is built, just before the first step (the CLI installs its Ctrl-C handler here). */
  onReady?: () => void;
  log: (line: string) => void;
}

export interface TrainRunResult {
  /** First step of this invocation. */
  start: number;
  /** Last step run. */
  end: number;
  records: StepRecord[];
  /** Updates skipped over the whole run (no group with reward variance). */
  skipped: number;
}

/** Trains (or resumes) the run of `config`: prompts, policy, rollout engine, reward router, then the GRPO loop. */
export async function trainRl(config: RlConfig, o: TrainRunOptions): Promise<TrainRunResult> {
  const { log } = o;
  if (!o.resume) assertFreshRunDir(config.run.dir); // before the (possibly long) cold start
  const prompts = await loadPrompts(config);
  log(`rl: ${prompts.length} prompts from ${config.data.sources.length} source(s); run folder ${config.run.dir}`);
  const policy = await buildPolicy(config, prompts, { skipInit: !!o.resume, quiet: o.quiet, log });
  if (config.rollout.engine === 'server')
    log(
      'rl: server rollouts — the server keeps the weights it loaded; this trainer does not push its updates to it, so rollouts drift off-policy as training goes (reload the server from RUN/checkpoints to resync)',
    );
  const engine = buildEngine(config, policy);
  const router = buildRouter(config);
  const trainer = new RlTrainer(config, { policy, engine, router, samples: prompts, log, quiet: o.quiet });
  o.onReady?.();
  try {
    const start = await trainer.start({ resume: !!o.resume });
    const records = await trainer.run({
      ...(o.shouldStop ? { shouldStop: o.shouldStop } : {}),
      ...(o.stopAfter ? { stopAfter: o.stopAfter } : {}),
    });
    return { start, end: trainer.step - 1, records, skipped: trainer.skipped };
  } finally {
    await engine.close?.();
    await router.close();
  }
}

export interface PassKRunOptions {
  /** Samples per prompt. */
  k: number;
  /** Only the first n prompts. */
  limit?: number;
  quiet?: boolean;
  log: (line: string) => void;
}

/**
 * Offline pass@k of the config's rollout engine over its prompts (seeds RLCS difficulty tiers). A server needs no
 * local policy to be graded; the toy local engine does.
 */
export async function passKRun(
  config: RlConfig,
  o: PassKRunOptions,
): Promise<{ results: OfflineResult[]; prompts: number; engine: string }> {
  let prompts = await loadPrompts(config);
  if (o.limit !== undefined) prompts = prompts.slice(0, o.limit);
  const policy =
    config.rollout.engine === 'local' ? await buildPolicy(config, prompts, { quiet: o.quiet, log: o.log }) : null;
  const engine = buildEngine(config, policy);
  const router = buildRouter(config);
  try {
    const rp: RolloutPrompt[] = [];
    for (const s of prompts)
      rp.push({ sample: s, input: policy ? await policy.encodePrompt(s) : { ids: new Int32Array(0) } });
    const results = await passAtKResults(
      engine,
      router,
      rp,
      o.k,
      samplingOf(config.rollout, stepSeed(config.run.seed, -1, 8)),
      { concurrency: config.rewardConcurrency, quiet: o.quiet },
    );
    return { results, prompts: prompts.length, engine: engine.name };
  } finally {
    await engine.close?.();
    await router.close();
  }
}
