/**
 * The lab's evaluation of a model in memory (the start model, or an RL policy between steps): greedy answers with
 * thinking, graded by the strict reward router, per lab domain and per level; plus a few rollouts kept for the report.
 */
import type { Sample } from '../data/sample.js';
import { answerAndGrade } from '../eval/heldout.js';
import type { ChatModel } from '../io/chat.js';
import type { RewardRouter } from '../reward/router.js';
import { Progress } from '../util/progress.js';
import { boxedRange } from './hackable.js';

export interface LabScore {
  n: number;
  accuracy: number;
  perDomain: Record<string, { n: number; accuracy: number }>;
  /** Share of answers whose thinking hit the budget (force answering fired). */
  forcedRate: number;
  formatRate: number;
  meanTokens: number;
  /** Share of answers whose box holds a range (`200 to 230`): hedges, never right for the strict verifier. */
  hedgeRate?: number;
}

export interface LabExample {
  id: string;
  domain: string;
  image: string | null;
  question: string;
  reference: string;
  response: string;
  extracted: string | null;
  correct: boolean;
}

export interface LabEvalOptions {
  maxNewTokens: number;
  batchSize: number;
  /** Thinking budget before force answering (default 3/4 of maxNewTokens); null: no forcing. */
  thinkingBudget?: number | null;
  examples?: number;
  label?: string;
  quiet?: boolean;
}

/**
 * Evaluation under a rollout's limits (experiment 6 and its start-model baseline): the answer must fit in the thinking
 * budget plus the answer tokens; with force answering the closing tokens are inserted at the budget, without it a
 * response still thinking there is cut.
 */
export function atBudget(
  budget: number,
  answerTokens: number,
  forceAnswer: boolean,
): Pick<LabEvalOptions, 'maxNewTokens' | 'thinkingBudget'> {
  return { maxNewTokens: budget + answerTokens, thinkingBudget: forceAnswer ? budget : null };
}

/** The lab domain of a sample: its generator's registry name (`lab/arith` → `lab_arith`). */
export function labDomain(s: Sample): string {
  return s.source.replace('/', '_');
}

export async function evaluateLab(
  chat: ChatModel,
  router: RewardRouter,
  samples: readonly Sample[],
  o: LabEvalOptions,
): Promise<{ score: LabScore; examples: LabExample[] }> {
  const per: Record<string, { n: number; correct: number }> = {};
  const examples: LabExample[] = [];
  const shown: Record<string, number> = {};
  let correct = 0;
  let forced = 0;
  let formatted = 0;
  let tokens = 0;
  let hedged = 0;
  const budget = o.thinkingBudget === undefined ? Math.floor((o.maxNewTokens * 3) / 4) : o.thinkingBudget;
  const bar = new Progress({ label: o.label ?? 'eval', total: samples.length, quiet: o.quiet });
  try {
    for (let b = 0; b < samples.length; b += o.batchSize) {
      const batch = samples.slice(b, b + o.batchSize);
      const { results, scores } = await answerAndGrade(chat, router, batch, {
        thinking: true,
        maxNewTokens: o.maxNewTokens,
        thinkingBudget: budget,
      });
      batch.forEach((s, i) => {
        const d = labDomain(s);
        const ok = !!scores[i]!.correct;
        per[d] ??= { n: 0, correct: 0 };
        per[d].n++;
        if (ok) per[d].correct++;
        correct += ok ? 1 : 0;
        forced += results[i]!.forced ? 1 : 0;
        formatted += scores[i]!.answer !== null && results[i]!.box.ok ? 1 : 0;
        tokens += results[i]!.completionTokens;
        const box = results[i]!.box; // the chat result's strict extraction, as `isHedge` would do again
        hedged += box.ok && boxedRange(box.value) ? 1 : 0;
        if ((shown[d] ?? 0) < (o.examples ?? 0)) {
          shown[d] = (shown[d] ?? 0) + 1;
          examples.push({
            id: s.id,
            domain: d,
            image: s.images[0] ?? null,
            question: s.question,
            reference: s.answer,
            response: results[i]!.text,
            extracted: scores[i]!.answer ?? null,
            correct: ok,
          });
        }
      });
      bar.update(
        Math.min(b + o.batchSize, samples.length),
        `acc ${((100 * correct) / (b + batch.length)).toFixed(1)}%`,
      );
    }
  } finally {
    bar.stop();
  }
  const n = samples.length;
  return {
    score: {
      n,
      accuracy: n ? correct / n : 0,
      perDomain: Object.fromEntries(
        Object.entries(per)
          .sort()
          .map(([d, v]) => [d, { n: v.n, accuracy: v.correct / v.n }]),
      ),
      forcedRate: n ? forced / n : 0,
      formatRate: n ? formatted / n : 0,
      meanTokens: n ? tokens / n : 0,
      hedgeRate: n ? hedged / n : 0,
    },
    examples,
  };
}
