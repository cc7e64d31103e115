/**
 * Evaluation inside training: held-out loss (packed, no gradients), the stage model as an answerer for held-out
 * accuracy and the SFT difficulty filter (answering and grading live in src/eval/heldout.ts), and the periodic
 * evaluation a stage's `eval` config asks for.
 */

import type { Sample } from '../data/sample.js';
import { clearPool, noGrad, scope } from '../engine/index.js';
import { type AccuracyReport, type Answerer, heldoutAccuracy, type PromptFormat } from '../eval/heldout.js';
import { ChatModel } from '../io/chat.js';
import type { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import type { RewardRouter } from '../reward/router.js';
import { concatFloat32 } from '../util/arrays.js';
import type { MetricsWriter } from '../util/progress.js';
import type { ModelStageConfig, SftConfig } from './config.js';
import { Encoder, type Example, fitExample } from './encode.js';
import { type StageModel, stageProcessor } from './model.js';
import { assembleRow, Packer, rowInputs } from './packing.js';
import { openRecords } from './records.js';

/** The live stage model answering in `prompt` format (the pretrain format through the stage's own encoder). */
export function stageAnswerer(
  sm: Pick<StageModel, 'model' | 'tokenizer' | 'imageConfig' | 'videoConfig'>,
  encoder: Encoder,
  prompt: PromptFormat,
): Answerer {
  if (prompt === 'chat')
    return { prompt, chat: new ChatModel(sm.model, sm.tokenizer, stageProcessor(sm), '(training)') };
  return {
    prompt,
    model: sm.model,
    tokenizer: sm.tokenizer,
    input: async (sample) => {
      const p = await encoder.pretrainPrompt(sample);
      return {
        inputIds: p.ids,
        pixelValues: concatFloat32(p.images.map((m) => m.pixelValues)),
        imageGridThw: p.images.length ? p.images.map((m) => m.grid) : null,
        pixelValuesVideos: concatFloat32(p.videos.map((m) => m.pixelValues)),
        videoGridThw: p.videos.length ? p.videos.map((m) => m.grid) : null,
      };
    },
  };
}

/**
 * Mean token loss of fixed examples, packed into rows of `microRows` sequences of `seqLen`, without gradients.
 * Returns the loss over every counted token and the count.
 */
export function heldoutLoss(
  model: Glm4vForConditionalGeneration,
  examples: readonly Example[],
  seqLen: number,
  microRows: number,
  padId: number,
): { loss: number; tokens: number } {
  let sum = 0;
  let count = 0;
  let i = 0;
  while (i < examples.length) {
    const packer = new Packer(seqLen, microRows);
    while (i < examples.length && packer.add(examples[i]!)) i++;
    const row = assembleRow(
      packer.bins.flatMap((b) => b.examples),
      { padId, padMultiple: 64 },
    );
    sum += noGrad(() =>
      scope(() => {
        const out = model.forward({ ...rowInputs(row), lossReduction: 'sum' });
        return out.loss!.item();
      }),
    );
    count += row.targets;
  }
  return { loss: count ? sum / count : Number.NaN, tokens: count };
}

export interface EvalResult {
  step: number;
  heldoutLoss?: number;
  accuracy?: AccuracyReport;
}

/** What the in-training evaluation uses of the run. */
export interface StageEvalContext {
  sm: StageModel;
  encoder: Encoder;
  router: () => RewardRouter;
  metrics: MetricsWriter;
  log: (l: string) => void;
  signal?: AbortSignal;
}

/**
 * The periodic evaluation of a training stage (`eval` in its config): held-out loss on fixed examples and greedy
 * held-out accuracy per domain, written to the metrics and the log. An interrupt during accuracy records nothing.
 */
export class StageEvaluator {
  private heldout: Example[] | null = null;
  private accuracySamples: Sample[] | null = null;

  constructor(
    private readonly cfg: ModelStageConfig,
    private readonly ctx: StageEvalContext,
  ) {}

  /** Encodes the held-out loss examples and reads the accuracy samples (once, before the first step). */
  async prepare(): Promise<void> {
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
            ex = await this.ctx.encoder.encodeSft(s, !!s.rationale?.trim());
          } else
            ex = await this.ctx.encoder.encodeDoc(
              rec.type === 'doc' ? rec.doc : this.ctx.encoder.sampleAsDoc(rec.sample),
            );
          const fit = fitExample(ex, this.cfg.pack.seqLen, this.cfg.pack.overlong, this.ctx.encoder.ids);
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

  async run(step: number): Promise<EvalResult | null> {
    const e = this.cfg.eval;
    if (!this.heldout && !this.accuracySamples) return null;
    const res: EvalResult = { step };
    const t = performance.now();
    if (this.heldout?.length) {
      const padId = this.ctx.sm.tokenizer.padTokenId ?? this.ctx.encoder.ids.eos;
      res.heldoutLoss = heldoutLoss(
        this.ctx.sm.model,
        this.heldout,
        this.cfg.pack.seqLen,
        this.cfg.batch.microRows,
        padId,
      ).loss;
    }
    if (this.accuracySamples?.length && e.accuracy) {
      const answerer = stageAnswerer(this.ctx.sm, this.ctx.encoder, e.accuracy.prompt);
      res.accuracy = await heldoutAccuracy(answerer, this.ctx.router(), this.accuracySamples, {
        thinking: e.accuracy.thinking,
        maxNewTokens: e.accuracy.maxNewTokens,
        batchSize: e.accuracy.batchSize,
        seed: this.cfg.run.seed,
        signal: this.ctx.signal,
      });
      if (this.ctx.signal?.aborted) {
        // Cut short by an interrupt: a partial accuracy would be wrong, so none is recorded.
        this.ctx.log(`eval @${step}: interrupted, not recorded`);
        return null;
      }
    }
    // Generation leaves its own buffer sizes in the engine pool; drop them so the training shapes pool again.
    clearPool();
    this.ctx.metrics.write({
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
    this.ctx.log(
      `eval @${step}:${res.heldoutLoss !== undefined ? ` held-out loss ${res.heldoutLoss.toFixed(4)}` : ''}${acc}`,
    );
    return res;
  }
}
