/**
 * The sampling settings of a rollout call (checked here), the request seed of each response, and `ResponseBuilder`,
 * the record of one response a local engine decodes: its tokens, loss mask and log-probs, the answer budget and
 * end-of-sequence handling. Tokens are drawn by io/sampling.ts and the thinking budget is io/force-answer.ts (the
 * same rules as generation and serving).
 */
import { countThinking, forceAnswer, type ThinkingState, thinkingBudgetSpent } from '../../io/force-answer.js';
import type { FinishReason, Rollout, SamplingParams } from '../types.js';

/**
 * The request seed of response j to prompt i in a rollout call with seed `seed` and G responses per prompt. Local and
 * server engines seed each response's sampler from it (io/generate `samplerSeed(requestSeed, 0)`), so the same
 * seed gives the same rollouts whichever engine draws them and however they are batched.
 */
export function rolloutRequestSeed(seed: number, i: number, j: number, groupSize: number): number {
  return (seed + i * groupSize + j) >>> 0;
}

export function validateSampling(p: SamplingParams): void {
  if (!(p.temperature > 0 && Number.isFinite(p.temperature)))
    throw new Error(`sampling.temperature: expected a number > 0, got ${p.temperature}`);
  if (!(p.topP > 0 && p.topP <= 1)) throw new Error(`sampling.topP: expected a number in (0, 1], got ${p.topP}`);
  if (!Number.isInteger(p.topK) || p.topK < 0)
    throw new Error(`sampling.topK: expected an integer >= 0, got ${p.topK}`);
  if (!Number.isInteger(p.maxThinkingTokens) || p.maxThinkingTokens < 1)
    throw new Error(`sampling.maxThinkingTokens: expected an integer >= 1, got ${p.maxThinkingTokens}`);
  if (!Number.isInteger(p.maxAnswerTokens) || p.maxAnswerTokens < 1)
    throw new Error(`sampling.maxAnswerTokens: expected an integer >= 1, got ${p.maxAnswerTokens}`);
  if (p.style !== 'glm41v' && p.style !== 'glm45v')
    throw new Error(`sampling.style: expected glm41v or glm45v, got ${JSON.stringify(p.style)}`);
  if (!Number.isInteger(p.seed)) throw new Error(`sampling.seed: expected an integer, got ${p.seed}`);
}

/** Token ids a local engine needs for force answering and stopping. */
export interface ControlTokens {
  /** `</think>`. */
  thinkClose: number;
  /** Ids appended by force answering (`forcedSuffix(style)` tokenised). */
  forced: readonly number[];
  /** Any of these ends the response (the token itself is kept: the policy learns to stop). */
  eos: readonly number[];
}

/**
 * One response being generated. `beforeSample()` applies the budgets (force answering may insert the closing tokens,
 * masked out of the loss), `push()` records a sampled token. Thinking tokens are counted as io/force-answer.ts
 * counts them (before `</think>`, the end-of-sequence token excluded); answer tokens are the sampled tokens after
 * `</think>`; inserted tokens count as neither.
 */
export class ResponseBuilder implements ThinkingState {
  readonly tokens: number[] = [];
  readonly mask: number[] = [];
  readonly logprobs: number[] = [];
  thinkClosed = false;
  forced = false;
  thinkingTokens = 0;
  answerTokens = 0;
  finish: FinishReason | null = null;

  constructor(
    private readonly params: SamplingParams,
    private readonly control: ControlTokens,
  ) {}

  get done(): boolean {
    return this.finish !== null;
  }

  /** Applies the budgets before the next token is sampled (may insert the forced suffix or finish the response). */
  beforeSample(): void {
    if (this.done) return;
    if (thinkingBudgetSpent(this, this.params.maxThinkingTokens)) {
      if (!this.params.forceAnswer) {
        this.finish = 'length';
        return;
      }
      for (const t of forceAnswer(this, this.control.forced)) {
        this.tokens.push(t);
        this.mask.push(0);
        this.logprobs.push(0);
      }
    }
    if (this.thinkClosed && this.answerTokens >= this.params.maxAnswerTokens) this.finish = 'length';
  }

  push(token: number, logprob: number): void {
    if (this.done) throw new Error('ResponseBuilder.push: the response is already finished');
    this.tokens.push(token);
    this.mask.push(1);
    this.logprobs.push(logprob);
    if (this.thinkClosed) this.answerTokens++;
    if (this.control.eos.includes(token)) this.finish = 'stop';
    else countThinking(this, token, this.control.thinkClose);
  }

  /** The finished rollout; `decode` turns ids into text (the end-of-sequence token is not part of the text). */
  build(decode: (ids: number[]) => string): Rollout {
    const textIds = this.finish === 'stop' ? this.tokens.slice(0, -1) : this.tokens;
    return {
      tokenIds: Int32Array.from(this.tokens),
      lossMask: Uint8Array.from(this.mask),
      text: decode(textIds),
      logprobs: Float32Array.from(this.logprobs),
      finishReason: this.finish ?? 'length',
      forced: this.forced,
      thinkingTokens: this.thinkingTokens,
      answerTokens: this.answerTokens,
    };
  }
}
