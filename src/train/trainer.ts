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
import { hash32 } from '../data/generate.js';
import type { Sample } from '../data/sample.js';
import {
  clearPool,
  F,
  getMatmulPrecision,
  getRng,
  manualSeed,
  memoryStats,
  optim,
  type Parameter,
  resetPeak,
  scope,
  setMatmulPrecision,
  type Tensor,
} from '../engine/index.js';
import { type AccuracyReport, heldoutAccuracy } from '../eval/heldout.js';
import { writeTextAtomic } from '../model/checkpoint.js';
import type { RouterStats } from '../model/text.js';
import { RewardRouter } from '../reward/router.js';
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
import { Encoder, type Example, fitExample } from './encode.js';
import { heldoutLoss, stageAnswerer } from './evaluate.js';
import { type FilterDecision, type FilterReport, formatFilterReport, runFilter } from './filter.js';
import { buildPools, MixtureStream, type Pool, type RecordRef } from './mixture.js';
import {
  describeStageModel,
  initStageModel,
  parameterSummary,
  type StageDescription,
  type StageModel,
} from './model.js';
import { microBatches, type PackedRow, Packer, rowInputs, withSampleWeights } from './packing.js';
import { openRecords, type RecordSource } from './records.js';
import { type TokenizerStageResult, trainTokenizerStage } from './tokenizer.js';

type AdamW = InstanceType<typeof optim.AdamW>;

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

export interface EvalResult {
  step: number;
  heldoutLoss?: number;
  accuracy?: AccuracyReport;
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

export interface StagePlan {
  config: ModelStageConfig;
  modelType: string;
  parameters: { vision: number; text: number; lmHead: number; total: number };
  trainable: number;
  tokenizerSize: number;
  pools: Array<{ name: string; source: string; group: string; records: number; weight: number }>;
  /** Capacity: batch.rows × pack.seqLen. */
  tokensPerStep: number;
  accumulation: number;
  /** The first step's batch from the real data. */
  firstStep: { examples: number; realTokens: number; targets: number; packingEfficiency: number; dataMs: number };
  /** Forward + backward of one micro-batch, measured (null when not measured). */
  microBatchMs: number | null;
  /** Compute of one step: micro-batch time × accumulation (data loading and the AdamW update come on top). */
  estimatedStepMs: number | null;
  estimatedRunSeconds: number | null;
  filter: { candidates: number; k: number } | null;
}

/** What a run would do, without training or writing anything: the `--dry-run` of the CLI. */
export async function planStage(
  config: ModelStageConfig,
  opts: { measure?: boolean; log?: (l: string) => void } = {},
): Promise<StagePlan> {
  return new StageRunner(config, { quiet: true, log: opts.log }).plan(opts.measure ?? true);
}

/** Weight decay for matrices and embeddings, none for norms and biases (1-D parameters). */
function paramGroups(params: NamedParams, weightDecay: number) {
  const decay = params.filter(([, p]) => p.ndim >= 2).map(([, p]) => p);
  const none = params.filter(([, p]) => p.ndim < 2).map(([, p]) => p);
  return [
    { params: decay, weightDecay },
    { params: none, weightDecay: 0 },
  ].filter((g) => g.params.length > 0);
}

function scheduleFor(c: ModelStageConfig): (step: number) => number {
  const o = { lr: c.optim.lr, warmupSteps: c.optim.warmupSteps, totalSteps: c.run.steps, minRatio: c.optim.minLrRatio };
  if (c.optim.schedule === 'linear') return optim.linearSchedule(o);
  if (c.optim.schedule === 'constant') return optim.constantSchedule(o);
  return optim.cosineSchedule(o);
}

/** Deterministic per-sample, per-epoch draw: is this draw trained as `/nothink`? */
export function isNothink(seed: number, id: string, epoch: number, share: number): boolean {
  if (share <= 0) return false;
  if (share >= 1) return true;
  return hash32(`nothink|${seed}|${id}|${epoch}`) / 2 ** 32 < share;
}

class StageRunner {
  private readonly log: (l: string) => void;
  private readonly cfg: ModelStageConfig;
  private sm!: StageModel;
  private encoder!: Encoder;
  private sources: RecordSource[] = [];
  private stream!: MixtureStream;
  private pools: Pool[] = [];
  private opt!: AdamW;
  private params!: NamedParams;
  private pending: { ref: RecordRef; example: Example | null } | null = null;
  private router: RewardRouter | null = null;
  private metrics!: MetricsWriter;
  private totals: TrainerState['totals'] = { tokens: 0, targets: 0, examples: 0, dropped: 0, truncated: 0, seconds: 0 };
  private noRationale = 0;
  private heldout: Example[] | null = null;
  private accuracySamples: Sample[] | null = null;
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
      for (const s of this.sources) s.close();
      await this.router?.close();
    }
  }

  private getRouter(): RewardRouter {
    this.router ??= new RewardRouter({});
    return this.router;
  }

  /** The encoder for a described (or built) model. */
  private makeEncoder(d: StageDescription): Encoder {
    const c = this.cfg;
    return new Encoder({
      tokenizer: d.tokenizer,
      imageConfig: d.imageConfig,
      videoConfig: d.videoConfig,
      maxImageTokens: c.processor.maxImageTokens,
      maxVideoTokens: c.processor.maxVideoTokens,
      template: d.template,
      style: d.style,
      endToken: c.stage === 'sft' ? c.sft.endToken : '<|endoftext|>',
      imageCacheBytes: c.data.imageCacheMB * 2 ** 20,
    });
  }

  /** Sources and pools (after the SFT filter, which needs the model), and the cursor. */
  private async setupData(state: TrainerState | null, dryRun: boolean): Promise<void> {
    const c = this.cfg;
    for (const s of c.data.sources) this.sources.push(await openRecords(s.path, { format: s.format, limit: s.limit }));
    let keep: ((src: RecordSource, i: number) => boolean) | undefined = c.data.video
      ? undefined
      : (src, i) => !src.hasVideo(i);
    if (c.stage === 'sft') {
      for (const s of this.sources)
        if (s.size > 0 && s.get(0).type !== 'sample')
          throw new Error(`data source ${s.name}: holds pre-training documents; the sft stage trains on samples`);
      if (c.sft.filter.enabled && !dryRun) {
        const decisions = await this.filter(c);
        const media = keep;
        keep = (src, i) => {
          const d = decisions.get(`${this.sources.indexOf(src)}:${i}`);
          return (d === undefined || d === 'keep' || d === 'unscored') && (!media || media(src, i));
        };
      }
    }
    this.pools = buildPools(
      this.sources.map((source, k) => ({ source, weight: c.data.sources[k]!.weight, key: `s${k}` })),
      c.data.mixture,
      keep,
    );
    this.stream = new MixtureStream(this.pools, c.run.seed, state?.data);
    if (!dryRun)
      this.log(
        `data: ${this.pools.length} pools: ${this.pools.map((p) => `${p.group} ${p.members.length} (w ${p.weight.toFixed(2)})`).join(', ')}`,
      );
  }

  /** Model, encoder, data pools and optimizer (restored from `state` when resuming). */
  private async setup(state: TrainerState | null, resumeDir: string | null): Promise<void> {
    const c = this.cfg;
    this.sm = await initStageModel(c, { weightsFrom: resumeDir ?? undefined });
    this.initFrom = state?.initFrom ?? this.sm.initFrom;
    this.encoder = this.makeEncoder(this.sm);
    const nParams = this.sm.model.numParameters();
    this.log(
      `train ${c.stage}: ${(nParams / 1e6).toFixed(2)}M parameters (${this.sm.config.modelType}), init ${this.initFrom}${resumeDir ? `, resuming ${resumeDir} at step ${state!.step}` : ''}`,
    );
    await this.setupData(state, false);
    // Optimizer.
    this.params = this.sm.model.namedParameters().filter(([, p]) => p.requiresGrad);
    this.opt = new optim.AdamW(paramGroups(this.params, c.optim.weightDecay), {
      lr: c.optim.lr,
      betas: c.optim.betas,
      eps: c.optim.eps,
    });
    // Parameters in optimizer (group) order, which is the order of its state dict.
    this.params = orderedLike(this.params, this.opt);
    if (state) {
      loadOptimizer(resumeDir!, state, this.opt, this.params);
      getRng().setState(state.rng);
      this.totals = { ...state.totals };
    } else manualSeed(c.run.seed);
  }

  /**
   * The dry run: resolved setup, data pools, the first step's packing and, when `measure`, one timed micro-batch
   * (the model is only built then; models above 1B parameters are never built here).
   */
  async plan(measure: boolean): Promise<StagePlan> {
    const c = this.cfg;
    const prevPrecision = getMatmulPrecision();
    setMatmulPrecision(c.precision === 'bf16' ? 'bfloat16' : 'float32');
    try {
      const d = await describeStageModel(c);
      const counts = parameterSummary(d.config);
      const build = measure && counts.total <= 1e9;
      this.encoder = this.makeEncoder(d);
      await this.setupData(null, true);
      const t = performance.now();
      const packer = await this.nextBatch();
      const dataMs = performance.now() - t;
      const padId = d.tokenizer.padTokenId ?? this.encoder.ids.eos;
      const rows = microBatches(packer.bins, c.batch.microRows, this.rowOptions(padId));
      let microMs: number | null = null;
      let trainable = c.model.freezeVision ? counts.total - counts.vision : counts.total;
      if (build) {
        const sm = await initStageModel(c);
        trainable = sm.model.numParameters(true);
        // Warm-up, then a timed forward + backward of the first micro-batch (no update).
        const times: number[] = [];
        for (let i = 0; i < 2; i++) {
          const t0 = performance.now();
          scope(() => {
            sm.model.forward({ ...rowInputs(rows[0]!), lossReduction: 'sum' }).loss!.backward();
            sm.model.zeroGrad();
          });
          times.push(performance.now() - t0);
        }
        microMs = times[times.length - 1]!;
      }
      const accum = c.batch.rows / c.batch.microRows;
      return {
        config: c,
        modelType: d.config.modelType,
        parameters: counts,
        trainable,
        tokenizerSize: d.tokenizer.vocabSize,
        pools: this.pools.map((p) => ({
          name: p.name,
          source: p.source.name,
          group: p.group,
          records: p.members.length,
          weight: p.weight,
        })),
        tokensPerStep: c.batch.rows * c.pack.seqLen,
        accumulation: accum,
        firstStep: {
          examples: packer.bins.reduce((a, b) => a + b.examples.length, 0),
          realTokens: rows.reduce((a, r) => a + r.realTokens, 0),
          targets: rows.reduce((a, r) => a + r.targets, 0),
          packingEfficiency: packer.efficiency(),
          dataMs,
        },
        microBatchMs: microMs,
        estimatedStepMs: microMs === null ? null : microMs * rows.length,
        estimatedRunSeconds: microMs === null ? null : ((microMs * rows.length) / 1000) * c.run.steps,
        filter:
          c.stage === 'sft' && c.sft.filter.enabled
            ? {
                candidates: Math.min(
                  this.sources.reduce((a, s) => a + s.size, 0),
                  c.sft.filter.maxCandidates ?? Number.POSITIVE_INFINITY,
                ),
                k: c.sft.filter.k,
              }
            : null,
      };
    } finally {
      setMatmulPrecision(prevPrecision);
      for (const s of this.sources) s.close();
    }
  }

  private async train(state: TrainerState | null, resumeDir: string | null, t0: number): Promise<StageResult> {
    const c = this.cfg;
    await this.setup(state, resumeDir);
    const schedule = scheduleFor(c);

    await this.prepareEval();

    const start = state?.step ?? 0;
    const progress = new Progress({ label: `train ${c.stage}`, total: c.run.steps, quiet: this.opts.quiet });
    progress.update(start);
    let step = start;
    let interrupted = false;
    const recent: StepMetrics[] = [];
    let lastEval: EvalResult | null = null;
    const accum = c.batch.rows / c.batch.microRows;
    const padId = this.sm.tokenizer.padTokenId ?? this.encoder.ids.eos;
    const runT0 = performance.now();
    while (step < c.run.steps) {
      if (this.opts.signal?.aborted) {
        interrupted = true;
        break;
      }
      const ts = performance.now();
      const packer = await this.nextBatch();
      const dataMs = performance.now() - ts;
      this.prefetch(packer.bins.reduce((a, b) => a + b.examples.length, 0));
      const rows = microBatches(packer.bins, c.batch.microRows, this.rowOptions(padId));
      const m = this.step(rows, step, schedule(step), accum);
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
          ...(this.noRationale ? { no_rationale: this.noRationale } : {}),
          ...(m.aux !== null ? { moe_aux: m.aux } : {}),
        });
      progress.update(
        step,
        `loss ${m.loss.toFixed(3)} lr ${m.lr.toExponential(1)} ${(metrics.tokensPerSecond / 1000).toFixed(1)}k tok/s`,
      );
      this.opts.onStep?.(metrics);
      const done = step >= c.run.steps;
      if (!done && c.run.checkpointEvery > 0 && step % c.run.checkpointEvery === 0) await this.checkpoint(step);
      if (!done && c.eval.every > 0 && step % c.eval.every === 0) lastEval = await this.evaluate(step);
    }
    progress.stop();
    let checkpoint: string;
    if (interrupted) {
      checkpoint = await this.checkpoint(step);
      this.log(
        `train ${c.stage}: interrupted after step ${step}; checkpoint ${checkpoint} (continue with --resume ${c.run.dir})`,
      );
    } else {
      lastEval = (await this.evaluate(step)) ?? lastEval;
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
  // Data

  private async encode(ref: RecordRef): Promise<Example | null> {
    const c = this.cfg;
    const rec = ref.source.get(ref.index);
    let ex: Example;
    if (c.stage === 'sft') {
      if (rec.type !== 'sample') throw new Error(`data source ${ref.source.name}: record ${ref.index} is not a sample`);
      const s = Encoder.prepareSft(rec.sample, (c as SftConfig).sft.mcq);
      let thinking = !isNothink(c.run.seed, s.id, ref.epoch, (c as SftConfig).sft.nothinkShare);
      if (thinking && !s.rationale?.trim()) {
        // No reasoning to train on: the item can only teach the direct answer.
        thinking = false;
        if (this.noRationale++ === 0)
          this.log(
            `data: sample ${s.id} has no rationale; samples without one are trained as /nothink (counted in metrics)`,
          );
      }
      ex = await this.withContext(s.id, ref, () => this.encoder.encodeSft(s, thinking));
    } else {
      const doc = rec.type === 'doc' ? rec.doc : this.encoder.sampleAsDoc(rec.sample);
      ex = await this.withContext(doc.id, ref, () => this.encoder.encodeDoc(doc));
    }
    const fit = fitExample(ex, c.pack.seqLen, c.pack.overlong, this.encoder.ids);
    if (!fit || fit.targets <= 0) return null;
    if (fit.truncated) this.totals.truncated++;
    return fit;
  }

  /** How micro-batch rows are laid out (padding, vision bucket, isolation). */
  private rowOptions(padId: number): Parameters<typeof microBatches>[2] {
    const c = this.cfg;
    const I = this.encoder.ids;
    return {
      padId,
      padMultiple: c.pack.padMultiple,
      isolation: c.pack.isolation,
      visionBucket: {
        bucket: c.pack.visionBucket,
        imageId: I.image,
        beginImageId: I.beginImage,
        endImageId: I.endImage,
        beginVideoId: I.beginVideo,
        endVideoId: I.endVideo,
        mergeSize: this.encoder.opts.imageConfig.mergeSize,
      },
    };
  }

  /** Errors while encoding a record name the record and its source (a missing image, an unreadable video…). */
  private async withContext<T>(id: string, ref: RecordRef, fn: () => Promise<T>): Promise<T> {
    try {
      return await fn();
    } catch (e) {
      throw new Error(`data source ${ref.source.name}, record ${id}: ${(e as Error).message}`);
    }
  }

  /** Starts decoding the images of roughly the next step's records (they decode during this step's compute). */
  private prefetch(n: number): void {
    const paths: string[] = [];
    for (const ref of this.stream.peekAhead(Math.ceil(n * 1.25) + 1)) {
      const rec = ref.source.get(ref.index);
      const r = rec.type === 'doc' ? rec.doc : rec.sample;
      paths.push(...r.images, ...(r.video?.frames ?? []));
    }
    this.encoder.prefetch(paths);
  }

  /** Fills `batch.rows` sequences; the first example that fits nowhere waits for the next step. */
  private async nextBatch(): Promise<Packer> {
    const c = this.cfg;
    const packer = new Packer(c.pack.seqLen, c.batch.rows);
    let guard = 0;
    for (;;) {
      let cur = this.pending;
      if (!cur) {
        const ref = this.stream.peek();
        cur = { ref, example: await this.encode(ref) };
        this.pending = cur;
      }
      if (!cur.example) {
        this.totals.dropped++;
        this.stream.advance();
        this.pending = null;
        if (++guard > 10_000)
          throw new Error(
            `data: 10000 records in a row were longer than pack.seqLen ${c.pack.seqLen} with overlong ${c.pack.overlong} (or had no loss tokens); raise pack.seqLen`,
          );
        continue;
      }
      if (!packer.add(cur.example)) return packer;
      this.stream.advance();
      this.pending = null;
    }
  }

  // ---------------------------------------------------------------------------------------------------------------
  // One optimizer step

  private step(
    rows: PackedRow[],
    step: number,
    lr: number,
    accum: number,
  ): {
    loss: number;
    lr: number;
    gradNorm: number;
    tokens: number;
    computed: number;
    targets: number;
    examples: number;
    aux: number | null;
  } {
    const c = this.cfg;
    const model = this.sm.model;
    const moe = !!this.sm.config.text.moe;
    const T = rows.reduce((a, r) => a + r.targets, 0);
    const S = rows.reduce((a, r) => a + r.examples, 0);
    const perSample = c.optim.lossAverage === 'sample';
    // Objective: token mean over the step (sum / T), or per-sample means averaged over the step's S samples.
    let lossSum = 0;
    let auxSum = 0;
    const stats: RouterStats[] = [];
    resetPeak();
    const gradNorm = scope(() => {
      for (const row0 of rows) {
        // Per-sample averaging: each sample's tokens weigh 1 / (its targets · samples in the step).
        const row = perSample ? withSampleWeights(row0, S) : row0;
        scope(() => {
          const out = model.forward({
            ...rowInputs(row),
            lossReduction: 'sum',
            auxLoss: moe && c.optim.moeAuxCoef > 0,
            outputRouterStats: moe,
          });
          let loss: Tensor = perSample ? out.loss! : F.mul(out.loss!, 1 / T);
          if (out.auxLoss) {
            auxSum += out.auxLoss.item();
            loss = F.add(loss, F.mul(out.auxLoss, c.optim.moeAuxCoef / accum));
          }
          if (out.routerStats)
            for (const s of out.routerStats) stats.push({ ...s, auxLoss: null, topk: new Int32Array(0) });
          loss.backward();
          lossSum += out.loss!.item();
        });
      }
      let norm: number;
      try {
        norm = optim.clipGradNorm(
          this.params.map(([, p]) => p),
          c.optim.maxGradNorm,
        );
      } catch (e) {
        this.opt.zeroGrad();
        throw new Error(
          `step ${step + 1}: ${(e as Error).message}. The last checkpoint is intact; lower optim.lr or raise optim.warmupSteps and resume`,
        );
      }
      this.opt.setLr(lr);
      this.opt.step();
      this.opt.zeroGrad();
      return norm;
    });
    if (moe && c.optim.moeBiasRate > 0 && stats.length) model.updateRouterBiases(stats, c.optim.moeBiasRate);
    return {
      loss: perSample ? lossSum : lossSum / T,
      lr,
      gradNorm,
      tokens: rows.reduce((a, r) => a + r.realTokens, 0),
      computed: rows.reduce((a, r) => a + r.inputIds.length, 0),
      targets: T,
      examples: S,
      aux: moe ? auxSum / rows.length : null,
    };
  }

  // ---------------------------------------------------------------------------------------------------------------
  // Checkpoints and evaluation

  private state(step: number): TrainerState {
    return {
      format: 'glmv-trainer-state',
      version: 1,
      stage: this.cfg.stage,
      step,
      data: this.stream.getState(),
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

  private async prepareEval(): Promise<void> {
    const e = this.cfg.eval;
    if (e.loss) {
      const src = await openRecords(e.loss.path, { limit: e.loss.n });
      const exs: Example[] = [];
      try {
        for (let i = 0; i < src.size; i++) {
          const rec = src.get(i);
          let ex: Example;
          if (this.cfg.stage === 'sft') {
            if (rec.type !== 'sample')
              throw new Error(`eval.loss.path ${e.loss.path}: the sft stage evaluates on samples`);
            const s = Encoder.prepareSft(rec.sample, (this.cfg as SftConfig).sft.mcq);
            ex = await this.encoder.encodeSft(s, !!s.rationale?.trim());
          } else ex = await this.encoder.encodeDoc(rec.type === 'doc' ? rec.doc : this.encoder.sampleAsDoc(rec.sample));
          const fit = fitExample(ex, this.cfg.pack.seqLen, this.cfg.pack.overlong, this.encoder.ids);
          if (fit && fit.targets > 0) exs.push(fit);
        }
      } finally {
        src.close();
      }
      this.heldout = exs;
    }
    if (e.accuracy) {
      const src = await openRecords(e.accuracy.path, { limit: e.accuracy.n });
      const samples: Sample[] = [];
      try {
        for (let i = 0; i < src.size; i++) {
          const rec = src.get(i);
          if (rec.type !== 'sample')
            throw new Error(
              `eval.accuracy.path ${e.accuracy.path}: holds pre-training documents; accuracy needs samples`,
            );
          samples.push(
            Encoder.prepareSft(rec.sample, this.cfg.stage === 'sft' ? (this.cfg as SftConfig).sft.mcq : 'choice'),
          );
        }
      } finally {
        src.close();
      }
      this.accuracySamples = samples;
    }
  }

  private async evaluate(step: number): Promise<EvalResult | null> {
    const e = this.cfg.eval;
    if (!this.heldout && !this.accuracySamples) return null;
    const res: EvalResult = { step };
    const t = performance.now();
    if (this.heldout?.length) {
      const padId = this.sm.tokenizer.padTokenId ?? this.encoder.ids.eos;
      res.heldoutLoss = heldoutLoss(
        this.sm.model,
        this.heldout,
        this.cfg.pack.seqLen,
        this.cfg.batch.microRows,
        padId,
      ).loss;
    }
    if (this.accuracySamples?.length && e.accuracy) {
      const answerer = stageAnswerer(this.sm, this.encoder, e.accuracy.prompt);
      res.accuracy = await heldoutAccuracy(answerer, this.getRouter(), this.accuracySamples, {
        thinking: e.accuracy.thinking,
        maxNewTokens: e.accuracy.maxNewTokens,
        batchSize: e.accuracy.batchSize,
        seed: this.cfg.run.seed,
        signal: this.opts.signal,
      });
      if (this.opts.signal?.aborted) {
        // Cut short by an interrupt: a partial accuracy would be wrong, so none is recorded.
        this.log(`eval @${step}: interrupted, not recorded`);
        return null;
      }
    }
    // Generation leaves its own buffer sizes in the engine pool; drop them so the training shapes pool again.
    clearPool();
    this.metrics.write({
      event: 'eval',
      stage: this.cfg.stage,
      step,
      heldout_loss: res.heldoutLoss,
      accuracy: res.accuracy?.accuracy,
      format_rate: res.accuracy?.formatRate,
      per_domain: res.accuracy
        ? Object.fromEntries(Object.entries(res.accuracy.perDomain).map(([d, v]) => [d, v.accuracy]))
        : undefined,
      ms: performance.now() - t,
    });
    const acc = res.accuracy
      ? ` accuracy ${(100 * res.accuracy.accuracy).toFixed(1)}% (format ${(100 * res.accuracy.formatRate).toFixed(0)}%; ${Object.entries(
          res.accuracy.perDomain,
        )
          .map(([d, v]) => `${d} ${(100 * v.accuracy).toFixed(0)}`)
          .join(', ')})`
      : '';
    this.log(
      `eval @${step}:${res.heldoutLoss !== undefined ? ` held-out loss ${res.heldoutLoss.toFixed(4)}` : ''}${acc}`,
    );
    return res;
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
        sources: this.sources,
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
            ? this.encoder
            : new Encoder({
                ...this.encoder.opts,
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

/** The named parameters in the optimizer's group order. */
function orderedLike(params: NamedParams, opt: AdamW): NamedParams {
  const byParam = new Map<Parameter, string>(params.map(([n, p]) => [p, n]));
  return opt.groups.flatMap((g) => g.params.map((p) => [byParam.get(p)!, p] as [string, Parameter]));
}
