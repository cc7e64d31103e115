/**
 * The pipeline's eval stage: held-out evaluation of a checkpoint folder, per domain, with eval/heldout.ts's answer and
 * grade step (the model answers each sample the way SFT taught it, thinking on or /nothink; the reward router grades
 * with the same strict box extraction and gates as RL). Writes every response to JSONL and returns the summary the
 * report shows.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Sample } from '../data/sample.js';
import { readSamples } from '../data/store.js';
import { answerAndGrade } from '../eval/heldout.js';
import { ChatModel } from '../io/chat.js';
import { RewardRouter } from '../reward/router.js';
import { Progress } from '../util/progress.js';

export interface DomainScore {
  n: number;
  correct: number;
  accuracy: number;
  /** Share of responses in the think/answer/box format with one extractable box. */
  formatRate: number;
  meanReward: number;
}

export interface EvalExample {
  id: string;
  domain: string;
  images: string[];
  question: string;
  reference: string;
  reasoning: string;
  content: string;
  extracted: string | null;
  reward: number;
  correct: boolean;
}

export interface StageEval {
  mode: 'think' | 'nothink';
  n: number;
  accuracy: number;
  formatRate: number;
  meanReward: number;
  /** Force answering fired (thinking hit the token limit). */
  forcedRate: number;
  meanCompletionTokens: number;
  perDomain: Record<string, DomainScore>;
  examples: EvalExample[];
  seconds: number;
  file: string;
}

export interface EvaluateOptions {
  modelDir: string;
  heldout: string;
  n: number;
  mode: 'think' | 'nothink';
  maxNewTokens: number;
  batchSize: number;
  out: string;
  signal?: AbortSignal;
  quiet?: boolean;
  examplesPerDomain?: number;
  /** Think budget: force the answer after this many thinking tokens (default: 3/4 of maxNewTokens). */
  thinkingBudget?: number;
}

export async function readHeldout(path: string, n: number): Promise<Sample[]> {
  const out: Sample[] = [];
  for await (const s of readSamples(path)) {
    out.push(s);
    if (out.length >= n) break;
  }
  if (out.length === 0) throw new Error(`evaluate: no samples in ${path}`);
  return out;
}

export async function evaluateStage(o: EvaluateOptions): Promise<StageEval> {
  const t0 = performance.now();
  const samples = await readHeldout(o.heldout, o.n);
  const chat = await ChatModel.load(o.modelDir);
  const router = new RewardRouter();
  const thinking = o.mode === 'think';
  const budget = o.thinkingBudget ?? Math.floor((o.maxNewTokens * 3) / 4);
  mkdirSync(o.out, { recursive: true });
  const lines: string[] = [];
  const perDomain: Record<string, DomainScore & { formatted: number; rewardSum: number }> = {};
  const examples: EvalExample[] = [];
  const shown: Record<string, number> = {};
  let correct = 0;
  let formatted = 0;
  let rewardSum = 0;
  let forced = 0;
  let tokens = 0;
  const bar = new Progress({ label: `eval ${o.mode}`, total: samples.length, quiet: o.quiet });
  try {
    for (let b = 0; b < samples.length; b += o.batchSize) {
      if (o.signal?.aborted) break;
      const batch = samples.slice(b, b + o.batchSize);
      const { results, scores } = await answerAndGrade(chat, router, batch, {
        thinking,
        maxNewTokens: o.maxNewTokens,
        thinkingBudget: thinking ? budget : null,
      });
      batch.forEach((s, i) => {
        const r = results[i]!;
        const sc = scores[i]!;
        perDomain[s.domain] ??= {
          n: 0,
          correct: 0,
          accuracy: 0,
          formatRate: 0,
          meanReward: 0,
          formatted: 0,
          rewardSum: 0,
        };
        const d = perDomain[s.domain]!;
        d.n++;
        const ok = !!sc.correct;
        const hasBox = sc.answer !== null && r.box.ok;
        if (ok) d.correct++;
        if (hasBox) d.formatted++;
        d.rewardSum += sc.reward;
        correct += ok ? 1 : 0;
        formatted += hasBox ? 1 : 0;
        rewardSum += sc.reward;
        forced += r.forced ? 1 : 0;
        tokens += r.completionTokens;
        const rec: EvalExample = {
          id: s.id,
          domain: s.domain,
          images: s.images,
          question: s.question,
          reference: s.answer,
          reasoning: r.reasoning,
          content: r.content,
          extracted: sc.answer ?? null,
          reward: sc.reward,
          correct: ok,
        };
        lines.push(
          JSON.stringify({
            ...rec,
            difficulty: s.difficulty,
            status: sc.status,
            reason: sc.reason,
            forced: r.forced,
            finish: r.finishReason,
            tokens: r.completionTokens,
          }),
        );
        if ((shown[s.domain] ?? 0) < (o.examplesPerDomain ?? 2)) {
          shown[s.domain] = (shown[s.domain] ?? 0) + 1;
          examples.push(rec);
        }
      });
      bar.update(
        Math.min(b + o.batchSize, samples.length),
        `acc ${((100 * correct) / Math.max(1, b + batch.length)).toFixed(1)}%`,
      );
    }
  } finally {
    bar.stop();
    await router.close();
  }
  const n = Object.values(perDomain).reduce((a, d) => a + d.n, 0);
  const domains: Record<string, DomainScore> = {};
  for (const [k, d] of Object.entries(perDomain).sort()) {
    domains[k] = {
      n: d.n,
      correct: d.correct,
      accuracy: d.correct / d.n,
      formatRate: d.formatted / d.n,
      meanReward: d.rewardSum / d.n,
    };
  }
  const file = join(o.out, 'responses.jsonl');
  writeFileSync(file, lines.length ? `${lines.join('\n')}\n` : '');
  const res: StageEval = {
    mode: o.mode,
    n,
    accuracy: n ? correct / n : 0,
    formatRate: n ? formatted / n : 0,
    meanReward: n ? rewardSum / n : 0,
    forcedRate: n ? forced / n : 0,
    meanCompletionTokens: n ? tokens / n : 0,
    perDomain: domains,
    examples,
    seconds: (performance.now() - t0) / 1000,
    file,
  };
  // Written whole then renamed: a run killed mid-write never leaves a torn summary that a resumed pipeline would read.
  const summary = join(o.out, 'summary.json');
  writeFileSync(`${summary}.tmp`, JSON.stringify({ ...res, examples: undefined }, null, 2));
  renameSync(`${summary}.tmp`, summary);
  return res;
}
