/**
 * Evaluation inside training: held-out loss (packed, no gradients) and held-out accuracy — the live model answers
 * held-out samples and the reward verifiers grade them, per domain. The same answering code gives the SFT difficulty
 * filter its pass@k. Two prompt formats: `chat` (the chat template, thinking on or off, strict box extraction: what
 * `glmv chat` does with the checkpoint) and `pretrain` (the pre-training instruction format — media, question,
 * newline — for models that have not learned the chat format yet; lenient extraction of the first line).
 */

import type { Sample } from '../data/sample.js';
import { noGrad, scope } from '../engine/index.js';
import { ChatModel } from '../io/chat.js';
import { type GenerationInput, generate } from '../io/generate.js';
import type { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import type { RewardRouter } from '../reward/router.js';
import { concatFloat32 } from '../util/arrays.js';
import type { Encoder, Example } from './encode.js';
import type { StageModel } from './model.js';
import { stageProcessor } from './model.js';
import { assembleRow, Packer, rowInputs } from './packing.js';

export type PromptFormat = 'chat' | 'pretrain';

export interface AnswerOptions {
  prompt: PromptFormat;
  thinking: boolean;
  /** Responses per sample. */
  k: number;
  temperature: number;
  maxNewTokens: number;
  /** Rows decoded together. */
  batchSize: number;
  seed: number;
  signal?: AbortSignal;
  onBatch?: (done: number, total: number) => void;
}

export interface Answer {
  text: string;
  tokens: number;
  finishReason: string;
}

/** k responses per sample from the live model. */
export async function answerSamples(
  sm: Pick<StageModel, 'model' | 'tokenizer' | 'imageConfig' | 'videoConfig'>,
  encoder: Encoder,
  samples: readonly Sample[],
  o: AnswerOptions,
): Promise<Answer[][]> {
  const rows: Array<{ s: number }> = [];
  samples.forEach((_, s) => {
    for (let j = 0; j < o.k; j++) rows.push({ s });
  });
  const out: Answer[][] = samples.map(() => []);
  const chat = o.prompt === 'chat' ? new ChatModel(sm.model, sm.tokenizer, stageProcessor(sm), '(training)') : null;
  const stopIds = chat ? chat.stopIds : sm.tokenizer.stopTokenIds().filter((id) => id < sm.model.config.text.vocabSize);
  const wasTraining = sm.model.training;
  sm.model.eval();
  try {
    for (let b = 0; b < rows.length; b += o.batchSize) {
      if (o.signal?.aborted) break;
      const batch = rows.slice(b, b + o.batchSize);
      const seed = o.seed * 7919 + b;
      if (chat) {
        const convs = batch.map(({ s }) => [encoder.userMessage(samples[s]!)]);
        const res = await chat.chatBatch(convs, {
          thinking: o.thinking,
          maxNewTokens: o.maxNewTokens,
          temperature: o.temperature,
          seed,
        });
        res.forEach((r, i) => {
          out[batch[i]!.s]!.push({ text: r.text, tokens: r.completionTokens, finishReason: r.finishReason });
        });
      } else {
        const inputs: GenerationInput[] = [];
        for (const { s } of batch) {
          const p = await encoder.pretrainPrompt(samples[s]!);
          inputs.push({
            inputIds: p.ids,
            pixelValues: concatFloat32(p.images.map((m) => m.pixelValues)),
            imageGridThw: p.images.length ? p.images.map((m) => m.grid) : null,
            pixelValuesVideos: concatFloat32(p.videos.map((m) => m.pixelValues)),
            videoGridThw: p.videos.length ? p.videos.map((m) => m.grid) : null,
          });
        }
        const { outputs } = await generate(sm.model, inputs, {
          maxNewTokens: o.maxNewTokens,
          stopTokenIds: stopIds,
          temperature: o.temperature,
          seed,
          decoder: sm.tokenizer,
          yieldEvery: 0,
        });
        outputs.forEach((r, i) => {
          // The instruction format answers on one line.
          const text = r.text.split('\n')[0]!.trim();
          out[batch[i]!.s]!.push({ text, tokens: r.tokens.length, finishReason: r.finishReason });
        });
      }
      o.onBatch?.(Math.min(b + o.batchSize, rows.length), rows.length);
    }
  } finally {
    if (wasTraining) sm.model.train();
  }
  return out;
}

/** Correct responses per sample (rewards from the router: strict extraction for chat, lenient for pretrain). */
export async function gradeAnswers(
  router: RewardRouter,
  samples: readonly Sample[],
  answers: readonly Answer[][],
  prompt: PromptFormat,
): Promise<{ correct: number[]; formatted: number[] }> {
  const correct = samples.map(() => 0);
  const formatted = samples.map(() => 0);
  const items = samples.flatMap((sample, s) =>
    answers[s]!.map((a) => ({
      s,
      sample,
      response: a.text,
      meta: {
        extract: prompt === 'chat' ? ('strict' as const) : ('lenient' as const),
        tokens: a.tokens,
        finishReason: a.finishReason,
      },
    })),
  );
  const results = await router.scoreBatch(items, { concurrency: 8 });
  results.forEach((r, i) => {
    const s = items[i]!.s;
    if (r.correct) correct[s]!++;
    if (r.answer !== null) formatted[s]!++;
  });
  return { correct, formatted };
}

export interface DomainAccuracy {
  n: number;
  correct: number;
  accuracy: number;
}

export interface AccuracyReport {
  n: number;
  accuracy: number;
  /** Share of responses with an extractable answer (a box, for the chat format). */
  formatRate: number;
  perDomain: Record<string, DomainAccuracy>;
  seconds: number;
}

/** Greedy held-out accuracy per domain. */
export async function evaluateAccuracy(
  sm: StageModel,
  encoder: Encoder,
  router: RewardRouter,
  samples: readonly Sample[],
  o: Omit<AnswerOptions, 'k' | 'temperature'>,
): Promise<AccuracyReport> {
  const t0 = performance.now();
  const answers = await answerSamples(sm, encoder, samples, { ...o, k: 1, temperature: 0 });
  const { correct, formatted } = await gradeAnswers(router, samples, answers, o.prompt);
  const perDomain: Record<string, DomainAccuracy> = {};
  samples.forEach((s, i) => {
    perDomain[s.domain] ??= { n: 0, correct: 0, accuracy: 0 };
    const d = perDomain[s.domain]!;
    d.n++;
    d.correct += correct[i]!;
  });
  for (const d of Object.values(perDomain)) d.accuracy = d.correct / d.n;
  const total = correct.reduce((a, b) => a + b, 0);
  return {
    n: samples.length,
    accuracy: samples.length ? total / samples.length : 0,
    formatRate: samples.length ? formatted.reduce((a, b) => a + b, 0) / samples.length : 0,
    perDomain,
    seconds: (performance.now() - t0) / 1000,
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
