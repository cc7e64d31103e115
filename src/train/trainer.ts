/**
 * The training loop shared by pre-training, long-context continual training and long-CoT SFT: a deterministic
 * mixture of records → examples (images processed once) → best-fit packing into `batch.rows` sequences of
 * `pack.seqLen` → micro-batches of `batch.microRows` sequences (gradient accumulation) → AdamW with warmup + cosine,
 * gradient clipping, optional bf16 GEMMs. Every step writes a JSONL metrics line; periodic held-out evaluation,
 * atomic checkpoints, and an abort signal (SIGINT in the CLI) that checkpoints before returning. A resumed run
 * continues bit for bit: the data order is a function of the cursor, the schedule a function of the step, and the
 * weights, moments and RNG come back exactly.
 *
 *   const res = await runStage(loadTrainConfig('configs/train/pretrain.yaml', 'pretrain'), { signal });
 *   res.checkpoint   // RUN/final: a model folder for `glmv chat --model`
 */
import { existsSync, mkdirSync, readdirSync, renameSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { clearPool, getMatmulPrecision, getRng, manualSeed, memoryStats, setMatmulPrecision } from '../engine/index.js';
import { writeTextAtomic } from '../model/checkpoint.js';
import { RewardRouter } from '../reward/router.js';
import { BufferRecycler } from '../util/arrays.js';
import { MetricsWriter, Progress, truncateMetricsAfter } from '../util/progress.js';
import {
  findCheckpoint,
  loadOptimizer,
  type NamedParams,
  readTrainerState,
  saveCheckpoint,
  type TrainerState,
  writeCheckpointFolder,
} from './checkpoint.js';
import { configDifferences, type ModelStageConfig, type SftConfig, type TrainConfig } from './config.js';
import { Encoder } from './encode.js';
import { type EvalResult, StageEvaluator } from './evaluate.js';
import { type FilterDecision, type FilterReport, formatFilterReport, runFilter } from './filter.js';
import { initStageModel, type StageModel } from './model.js';
import { microBatches } from './packing.js';
import { StageData } from './stage-data.js';
import { type AdamW, createOptimizer, scheduleFor, trainStep } from './step.js';
import { type TokenizerStageResult, trainTokenizerStage } from './tokenizer.js';

export interface RunOptions {
  /** Aborting finishes the current step, writes a checkpoint and returns (`interrupted: true`). */
  signal?: AbortSignal;
  /** No progress bar. */
  quiet?: boolean;
  /** Human-readable lines (default: stderr). */
  log?: (line: string) => void;
  /** A run folder or checkpoint folder to continue exactly. */
  resume?: string;
  /** Called after every optimizer step (tests, pipelines). */
  onStep?: (m: StepMetrics) => void;
}

export interface StepMetrics {
  step: number;
  loss: number;
  lr: number;
  gradNorm: number;
  /** Real (non-padding) tokens in the step. */
  tokens: number;
  targets: number;
  examples: number;
  stepMs: number;
  dataMs: number;
  tokensPerSecond: number;
  packingEfficiency: number;
}

export interface StageResult {
  stage: ModelStageConfig['stage'];
  runDir: string;
  /** The final model folder (RUN/final), or the checkpoint written on interruption. */
  checkpoint: string;
  /** Optimizer steps completed (over all invocations). */
  steps: number;
  interrupted: boolean;
  resumedFrom: string | null;
  parameters: number;
  /** Mean loss of the last min(20, steps) steps of this invocation. */
  loss: number;
  tokensPerSecond: number;
  meanStepMs: number;
  packingEfficiency: number;
  eval: EvalResult | null;
  filter: FilterReport | null;
  seconds: number;
}

/** Runs one stage. The tokenizer stage returns its own result type. */
export async function runStage(
  config: TrainConfig,
  opts: RunOptions = {},
): Promise<StageResult | TokenizerStageResult> {
  if (config.stage === 'tokenizer') return trainTokenizerStage(config, opts);
  return new StageRunner(config, opts).run();
}

/**
 * A model stage in its run folder as a recipe runs it (the pipeline, the lab): continued exactly from the latest
 * checkpoint an interrupted run left there, otherwise started in a clean folder.
 */
export async function runStageResumable(config: ModelStageConfig, opts: Omit<RunOptions, 'resume'> = {}) {
  const dir = config.run.dir;
  const resume = existsSync(join(dir, 'checkpoints', 'latest')) ? dir : undefined;
  if (!resume && existsSync(dir)) rmSync(dir, { recursive: true, force: true });
  return (await runStage(config, { ...opts, ...(resume ? { resume } : {}) })) as StageResult;
}

class StageRunner {
  private readonly log: (l: string) => void;
  private readonly cfg: ModelStageConfig;
  private sm!: StageModel;
  private data: StageData | null = null;
  private opt!: AdamW;
  private params!: NamedParams;
  private router: RewardRouter | null = null;
  private metrics!: MetricsWriter;
  private evaluator!: StageEvaluator;
  private totals: TrainerState['totals'] = { tokens: 0, targets: 0, examples: 0, dropped: 0, truncated: 0, seconds: 0 };
  private filterReport: FilterReport | null = null;
  private initFrom = 'scratch';

  constructor(
    config: ModelStageConfig,
    private readonly opts: RunOptions,
  ) {
    this.cfg = config;
    this.log = opts.log ?? ((l) => process.stderr.write(`${l}\n`));
  }

  async run(): Promise<StageResult> {
    const c = this.cfg;
    const t0 = performance.now();
    const runDir = c.run.dir;
    let resumeDir: string | null = null;
    let state: TrainerState | null = null;
    if (this.opts.resume) {
      resumeDir = findCheckpoint(this.opts.resume);
      state = readTrainerState(resumeDir);
      if (state.stage !== c.stage)
        throw new Error(`--resume ${resumeDir}: it is a ${state.stage} checkpoint, this is the ${c.stage} stage`);
      const diff = configDifferences(state.config, c);
      if (diff.length)
        throw new Error(
          `--resume ${resumeDir}: the config differs from the checkpoint's in ${diff.join(', ')}; a resumed run must compute the same thing (only run.logEvery/checkpointEvery/keepCheckpoints, eval and data.imageCacheMB may change)`,
        );
      if (state.step >= c.run.steps)
        throw new Error(
          `--resume ${resumeDir}: the checkpoint is at step ${state.step}, run.steps is ${c.run.steps}; nothing left to train`,
        );
    } else if (
      existsSync(join(runDir, 'checkpoints')) &&
      readdirSync(join(runDir, 'checkpoints')).some((n) => n.startsWith('step-'))
    ) {
      throw new Error(
        `run.dir ${runDir} already holds checkpoints; continue it with --resume ${runDir}, or choose another run.dir (nothing is overwritten)`,
      );
    }
    mkdirSync(runDir, { recursive: true });
    writeTextAtomic(join(runDir, 'config.yaml'), toYaml(c));
    // A resumed run replays the steps after its checkpoint: the killed run's lines for them move to a side file.
    if (state) truncateMetricsAfter(join(runDir, 'metrics.jsonl'), state.step);
    this.metrics = new MetricsWriter(join(runDir, 'metrics.jsonl'));

    const prevPrecision = getMatmulPrecision();
    setMatmulPrecision(c.precision === 'bf16' ? 'bfloat16' : 'float32');
    try {
      return await this.train(state, resumeDir, t0);
    } finally {
      setMatmulPrecision(prevPrecision);
      this.data?.close();
      await this.router?.close();
    }
  }

  private getRouter(): RewardRouter {
    this.router ??= new RewardRouter({});
    return this.router;
  }

  /** Model, encoder, data pools and optimizer (restored from `state` when resuming). */
  private async setup(state: TrainerState | null, resumeDir: string | null): Promise<void> {
    const c = this.cfg;
    this.sm = await initStageModel(c, { weightsFrom: resumeDir ?? undefined });
    this.initFrom = state?.initFrom ?? this.sm.initFrom;
    const data = new StageData(c, StageData.encoderFor(c, this.sm), () => this.totals, this.log);
    this.data = data;
    const nParams = this.sm.model.numParameters();
    this.log(
      `train ${c.stage}: ${(nParams / 1e6).toFixed(2)}M parameters (${this.sm.config.modelType}), init ${this.initFrom}${resumeDir ? `, resuming ${resumeDir} at step ${state!.step}` : ''}`,
    );
    await data.open(state, false, c.stage === 'sft' ? () => this.filter(c) : undefined);
    ({ opt: this.opt, params: this.params } = createOptimizer(this.sm, c));
    if (state) {
      loadOptimizer(resumeDir!, state, this.opt, this.params);
      getRng().setState(state.rng);
      this.totals = { ...state.totals };
    } else manualSeed(c.run.seed);
  }

  private async train(state: TrainerState | null, resumeDir: string | null, t0: number): Promise<StageResult> {
    const c = this.cfg;
    await this.setup(state, resumeDir);
    const schedule = scheduleFor(c);

    const data = this.data!;
    this.evaluator = new StageEvaluator(c, {
      sm: this.sm,
      encoder: data.encoder,
      router: () => this.getRouter(),
      metrics: this.metrics,
      log: this.log,
      signal: this.opts.signal,
    });
    await this.evaluator.prepare();

    const start = state?.step ?? 0;
    const progress = new Progress({ label: `train ${c.stage}`, total: c.run.steps, quiet: this.opts.quiet });
    progress.update(start);
    let step = start;
    let interrupted = false;
    const recent: StepMetrics[] = [];
    let lastEval: EvalResult | null = null;
    const accum = c.batch.rows / c.batch.microRows;
    const padId = this.sm.tokenizer.padTokenId ?? data.encoder.ids.eos;
    const target = { cfg: c, sm: this.sm, params: this.params, opt: this.opt };
    const runT0 = performance.now();
    const pixels = new BufferRecycler();
    while (step < c.run.steps) {
      if (this.opts.signal?.aborted) {
        interrupted = true;
        break;
      }
      const ts = performance.now();
      const packer = await data.nextBatch();
      const dataMs = performance.now() - ts;
      data.prefetch(packer.bins.reduce((a, b) => a + b.examples.length, 0));
      // The previous step's rows are done with: their pixel buffers take this step's images.
      pixels.recycle();
      const rows = microBatches(packer.bins, c.batch.microRows, {
        ...data.rowOptions(padId),
        pixelBuffer: pixels.take,
      });
      const m = trainStep(target, rows, step, schedule(step), accum);
      // Records, whether or not a packed sequence joined them into one attention span.
      m.examples = packer.bins.reduce((a, b) => a + b.examples.length, 0);
      step++;
      const stepMs = performance.now() - ts;
      const metrics: StepMetrics = {
        step,
        loss: m.loss,
        lr: m.lr,
        gradNorm: m.gradNorm,
        tokens: m.tokens,
        targets: m.targets,
        examples: m.examples,
        stepMs,
        dataMs,
        tokensPerSecond: (m.tokens / stepMs) * 1000,
        packingEfficiency: packer.efficiency(),
      };
      this.totals.tokens += m.tokens;
      this.totals.targets += m.targets;
      this.totals.examples += m.examples;
      this.totals.seconds += stepMs / 1000;
      recent.push(metrics);
      if (recent.length > 20) recent.shift();
      if (step % c.run.logEvery === 0 || step === c.run.steps)
        this.metrics.write({
          event: 'train',
          stage: c.stage,
          step,
          loss: m.loss,
          lr: m.lr,
          grad_norm: m.gradNorm,
          tokens: m.tokens,
          targets: m.targets,
          examples: m.examples,
          padded_tokens: m.computed - m.tokens,
          packing_efficiency: metrics.packingEfficiency,
          tokens_per_s: metrics.tokensPerSecond,
          step_ms: stepMs,
          data_ms: dataMs,
          peak_mb: memoryStats().peakBytes / 2 ** 20,
          total_tokens: this.totals.tokens,
          dropped: this.totals.dropped,
          truncated: this.totals.truncated,
          ...(data.noRationale ? { no_rationale: data.noRationale } : {}),
          ...(m.aux !== null ? { moe_aux: m.aux } : {}),
        });
      progress.update(
        step,
        `loss ${m.loss.toFixed(3)} lr ${m.lr.toExponential(1)} ${(metrics.tokensPerSecond / 1000).toFixed(1)}k tok/s`,
      );
      this.opts.onStep?.(metrics);
      const done = step >= c.run.steps;
      if (!done && c.run.checkpointEvery > 0 && step % c.run.checkpointEvery === 0) await this.checkpoint(step);
      if (!done && c.eval.every > 0 && step % c.eval.every === 0) lastEval = await this.evaluator.run(step);
    }
    progress.stop();
    let checkpoint: string;
    if (interrupted) {
      checkpoint = await this.checkpoint(step);
      this.log(
        `train ${c.stage}: interrupted after step ${step}; checkpoint ${checkpoint} (continue with --resume ${c.run.dir})`,
      );
    } else {
      lastEval = (await this.evaluator.run(step)) ?? lastEval;
      if (c.run.checkpointEvery > 0) await this.checkpoint(step);
      checkpoint = await this.writeFinal(step);
      this.log(`train ${c.stage}: done, ${step} steps; model ${checkpoint}`);
    }
    const n = recent.length;
    const mean = (f: (m: StepMetrics) => number) => (n ? recent.reduce((a, m) => a + f(m), 0) / n : Number.NaN);
    const runMs = performance.now() - runT0;
    const result: StageResult = {
      stage: c.stage,
      runDir: c.run.dir,
      checkpoint,
      steps: step,
      interrupted,
      resumedFrom: resumeDir,
      parameters: this.sm.model.numParameters(),
      loss: mean((m) => m.loss),
      tokensPerSecond: mean((m) => m.tokens) / (mean((m) => m.stepMs) / 1000),
      meanStepMs: mean((m) => m.stepMs),
      packingEfficiency: mean((m) => m.packingEfficiency),
      eval: lastEval,
      filter: this.filterReport,
      seconds: (performance.now() - t0) / 1000,
    };
    this.metrics.write({ event: 'done', ...result, train_ms: runMs, eval: undefined, filter: undefined });
    return result;
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Checkpoints and evaluation

  private state(step: number): TrainerState {
    return {
      format: 'glmv-trainer-state',
      version: 1,
      stage: this.cfg.stage,
      step,
      data: this.data!.getState(),
      rng: getRng().getState(),
      optimizer: { step: 0, lrs: [], params: [] },
      totals: { ...this.totals },
      config: this.cfg,
      initFrom: this.initFrom,
      time: new Date().toISOString(),
    };
  }

  private async checkpoint(step: number): Promise<string> {
    const t = performance.now();
    const dir = await saveCheckpoint(
      this.cfg.run.dir,
      this.sm,
      this.state(step),
      this.opt,
      this.params,
      this.cfg.run.keepCheckpoints,
    );
    this.metrics.write({ event: 'checkpoint', step, path: dir, ms: performance.now() - t });
    return dir;
  }

  /** RUN/final: the model folder (with its trainer state, without optimizer moments), replaced atomically. */
  private async writeFinal(step: number): Promise<string> {
    const final = join(this.cfg.run.dir, 'final');
    const tmp = join(this.cfg.run.dir, `.final.tmp-${process.pid}`);
    rmSync(tmp, { recursive: true, force: true });
    const state = this.state(step);
    await writeCheckpointFolder(tmp, this.sm, state, null, this.params);
    rmSync(final, { recursive: true, force: true });
    renameSync(tmp, final);
    return final;
  }

  private async filter(c: SftConfig): Promise<Map<string, FilterDecision>> {
    const f = c.sft.filter;
    const modelDir = f.model ?? c.model.init;
    const { report, decisions } = await runFilter(
      {
        runDir: c.run.dir,
        seed: c.run.seed,
        filter: f,
        modelDir,
        sources: this.data!.sources,
        mcq: c.sft.mcq,
        quiet: this.opts.quiet,
        signal: this.opts.signal,
        log: this.log,
      },
      async () => {
        // The stage's own model only while it still holds the previous stage's weights (not on resume).
        const scorer =
          modelDir === this.sm.initFrom
            ? this.sm
            : await initStageModel({ ...c, model: { ...c.model, init: modelDir, tokenizer: undefined } });
        const encoder =
          scorer === this.sm
            ? this.data!.encoder
            : new Encoder({
                ...this.data!.encoder.opts,
                tokenizer: scorer.tokenizer,
                template: scorer.template,
                style: scorer.style,
              });
        return { sm: scorer, encoder };
      },
      this.getRouter(),
    );
    this.filterReport = report;
    clearPool();
    for (const l of formatFilterReport(report)) this.log(l);
    this.metrics.write({ event: 'filter', ...report });
    if (report.kept === 0)
      throw new Error(
        'sft filter: every candidate was dropped; loosen sft.filter.maxPassRate / minPassRate / hardLevel, or disable the filter',
      );
    return decisions;
  }
}
