/**
 * Held-out accuracy of a model in memory: it answers a set of samples, the reward router grades the answers, scores
 * add up per domain. The one home of "answer a set and score it" for a live model — the training loop's periodic
 * accuracy and the SFT difficulty filter's pass@k (src/train), the pipeline's eval stages (src/pipeline/evaluate.ts)
 * and the RL lab all call it; the benchmark harness (./harness.ts) does the same for benchmark items through a
 * `ModelUnderTest`.
 *
 * Two prompt formats:
 * - `chat`: the chat template with the sample's user turn exactly as SFT trains it (`sampleMessage`: thinking on, or
 *   `/nothink`), graded with strict box extraction (the answer must be the one box inside `<answer>`) and the same
 *   gates as RL: what `glmv chat` does with the checkpoint;
 * - `pretrain`: the pre-training instruction format (media, question, newline) for models that have not learned the
 *   chat format yet; the first line is the answer, graded with lenient extraction.
 */
import type { Sample } from '../data/sample.js';
import { sampleMessage } from '../data/sft.js';
import type { ChatModel, ChatResult } from '../io/chat.js';
import { type GenerationInput, generate } from '../io/generate.js';
import type { GlmTokenizer } from '../io/tokenizer.js';
import type { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import type { RewardRouter } from '../reward/router.js';
import type { RewardResult } from '../reward/types.js';

export type PromptFormat = 'chat' | 'pretrain';

/** The model that answers, in one of the two prompt formats. */
export type Answerer =
  | { prompt: 'chat'; chat: ChatModel }
  | {
      prompt: 'pretrain';
      model: Glm4vForConditionalGeneration;
      tokenizer: GlmTokenizer;
      /** The sample in the pre-training instruction format, ready to generate from. */
      input: (sample: Sample) => Promise<GenerationInput>;
    };

export interface AnswerOptions {
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

/** Chat answers to a batch of samples, one per sample: each sample's user turn as SFT trains it. */
export function answerChat(
  chat: ChatModel,
  batch: readonly Sample[],
  o: { thinking: boolean; maxNewTokens: number; temperature: number; thinkingBudget?: number | null; seed?: number },
): Promise<ChatResult[]> {
  return chat.chatBatch(
    batch.map((s) => [sampleMessage(s, { thinking: o.thinking })]),
    {
      thinking: o.thinking,
      maxNewTokens: o.maxNewTokens,
      temperature: o.temperature,
      thinkingBudget: o.thinkingBudget ?? null,
      ...(o.seed !== undefined ? { seed: o.seed } : {}),
    },
  );
}

/** k responses per sample, decoded `batchSize` rows at a time (stops early, with what it has, when aborted). */
export async function answerSamples(m: Answerer, samples: readonly Sample[], o: AnswerOptions): Promise<Answer[][]> {
  const rows: number[] = [];
  samples.forEach((_, s) => {
    for (let j = 0; j < o.k; j++) rows.push(s);
  });
  const out: Answer[][] = samples.map(() => []);
  const model = m.prompt === 'chat' ? m.chat.model : m.model;
  const wasTraining = model.training;
  model.eval();
  try {
    for (let b = 0; b < rows.length; b += o.batchSize) {
      if (o.signal?.aborted) break;
      const batch = rows.slice(b, b + o.batchSize);
      const seed = o.seed * 7919 + b;
      if (m.prompt === 'chat') {
        const res = await answerChat(
          m.chat,
          batch.map((s) => samples[s]!),
          { thinking: o.thinking, maxNewTokens: o.maxNewTokens, temperature: o.temperature, seed },
        );
        res.forEach((r, i) => {
          out[batch[i]!]!.push({ text: r.text, tokens: r.completionTokens, finishReason: r.finishReason });
        });
      } else {
        const inputs: GenerationInput[] = [];
        for (const s of batch) inputs.push(await m.input(samples[s]!));
        const { outputs } = await generate(m.model, inputs, {
          maxNewTokens: o.maxNewTokens,
          stopTokenIds: m.tokenizer.stopTokenIds().filter((id) => id < m.model.config.text.vocabSize),
          temperature: o.temperature,
          seed,
          decoder: m.tokenizer,
          yieldEvery: 0,
        });
        outputs.forEach((r, i) => {
          // The instruction format answers on one line.
          const text = r.text.split('\n')[0]!.trim();
          out[batch[i]!]!.push({ text, tokens: r.tokens.length, finishReason: r.finishReason });
        });
      }
      o.onBatch?.(Math.min(b + o.batchSize, rows.length), rows.length);
    }
  } finally {
    if (wasTraining) model.train();
  }
  return out;
}

/** Router scores of responses to samples: strict extraction for the chat format, lenient for pretrain. */
export function gradeResponses(
  router: RewardRouter,
  items: ReadonlyArray<{ sample: Sample; text: string; tokens: number; finishReason: string }>,
  prompt: PromptFormat,
): Promise<RewardResult[]> {
  return router.scoreBatch(
    items.map((it) => ({
      sample: it.sample,
      response: it.text,
      meta: {
        extract: prompt === 'chat' ? ('strict' as const) : ('lenient' as const),
        tokens: it.tokens,
        finishReason: it.finishReason,
      },
    })),
    { concurrency: 8 },
  );
}

/** Correct responses per sample, and responses with an extractable answer. */
export async function gradeAnswers(
  router: RewardRouter,
  samples: readonly Sample[],
  answers: readonly Answer[][],
  prompt: PromptFormat,
): Promise<{ correct: number[]; formatted: number[] }> {
  const correct = samples.map(() => 0);
  const formatted = samples.map(() => 0);
  const items = samples.flatMap((sample, s) => answers[s]!.map((a) => ({ s, sample, ...a })));
  const results = await gradeResponses(router, items, prompt);
  results.forEach((r, i) => {
    const s = items[i]!.s;
    if (r.correct) correct[s]!++;
    if (r.answer !== null) formatted[s]!++;
  });
  return { correct, formatted };
}

/**
 * Greedy chat answers to a batch of samples, graded with strict extraction: the step every held-out accuracy of the
 * pipeline and the lab counts (the full results, for records that show reasoning, forcing and format).
 */
export async function answerAndGrade(
  chat: ChatModel,
  router: RewardRouter,
  batch: readonly Sample[],
  o: { thinking: boolean; maxNewTokens: number; thinkingBudget: number | null },
): Promise<{ results: ChatResult[]; scores: RewardResult[] }> {
  const results = await answerChat(chat, batch, { ...o, temperature: 0 });
  const scores = await gradeResponses(
    router,
    batch.map((sample, i) => ({
      sample,
      text: results[i]!.text,
      tokens: results[i]!.completionTokens,
      finishReason: results[i]!.finishReason,
    })),
    'chat',
  );
  return { results, scores };
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
export async function heldoutAccuracy(
  m: Answerer,
  router: RewardRouter,
  samples: readonly Sample[],
  o: Omit<AnswerOptions, 'k' | 'temperature'>,
): Promise<AccuracyReport> {
  const t0 = performance.now();
  const answers = await answerSamples(m, samples, { ...o, k: 1, temperature: 0 });
  const { correct, formatted } = await gradeAnswers(router, samples, answers, m.prompt);
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
