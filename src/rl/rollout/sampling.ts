/**
 * Token sampling from one row of logits, and the per-response state machine that local engines share: the thinking
 * budget, force answering (docs/design.md D.6: insert `</think>` — plus `<answer>` for GLM-4.1V — when thinking reaches the
 * budget, then let the model answer), the answer budget and end-of-sequence handling.
 */
import { THINK_CLOSE } from '../../io/answer/tags.js';
import type { Rng } from '../../util/rng.js';
import type { AnswerStyle, FinishReason, Rollout, SamplingParams } from '../types.js';

/** What force answering appends, as text (the serving client's two-phase call uses the same strings). */
export function forcedSuffix(style: AnswerStyle): string {
  return style === 'glm41v' ? `${THINK_CLOSE}<answer>` : `${THINK_CLOSE}\n`;
}

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

/**
 * Samples one token from `logits` (length V) with temperature, top-k and top-p. Returns the token and its
 * log-probability under the tempered, untruncated distribution — the quantity a trainer recomputes (with top-p < 1
 * the behaviour policy is the truncated one; top-p = 1, the default, makes them equal).
 */
export function sampleToken(
  logits: ArrayLike<number>,
  opts: { temperature: number; topP: number; topK: number },
  rng: Rng,
): { token: number; logprob: number } {
  const V = logits.length;
  if (V === 0) throw new Error('sampleToken: empty logits');
  const inv = 1 / opts.temperature;
  let mx = Number.NEGATIVE_INFINITY;
  for (let i = 0; i < V; i++) {
    const v = logits[i]! * inv;
    if (Number.isNaN(v)) throw new Error(`sampleToken: logit ${i} is NaN (the model produced NaN; check the weights)`);
    if (v > mx) mx = v;
  }
  const p = new Float64Array(V);
  let z = 0;
  for (let i = 0; i < V; i++) {
    p[i] = Math.exp(logits[i]! * inv - mx);
    z += p[i]!;
  }
  const logZ = mx + Math.log(z);
  for (let i = 0; i < V; i++) p[i]! /= z;
  let token: number;
  if (opts.topP >= 1 && (opts.topK === 0 || opts.topK >= V)) {
    token = V - 1;
    let r = rng.random();
    for (let i = 0; i < V; i++) {
      r -= p[i]!;
      if (r < 0) {
        token = i;
        break;
      }
    }
  } else {
    // Sort descending (ties by lower id), keep the top-k, then the smallest prefix with mass >= topP.
    const order = Array.from({ length: V }, (_, i) => i).sort((a, b) => p[b]! - p[a]! || a - b);
    const k = opts.topK > 0 ? Math.min(opts.topK, V) : V;
    let keep = 0;
    let mass = 0;
    while (keep < k) {
      mass += p[order[keep]!]!;
      keep++;
      if (mass >= opts.topP) break;
    }
    let r = rng.random() * mass;
    token = order[keep - 1]!;
    for (let j = 0; j < keep; j++) {
      r -= p[order[j]!]!;
      if (r < 0) {
        token = order[j]!;
        break;
      }
    }
  }
  return { token, logprob: logits[token]! * inv - logZ };
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
 * One response being generated. `next()` says what the engine must do; `push()` records a sampled token.
 * Counting: every sampled token before `</think>` is a thinking token (the sampled `</think>` too); sampled tokens
 * after it are answer tokens; inserted tokens count as neither.
 */
export class ResponseBuilder {
  readonly tokens: number[] = [];
  readonly mask: number[] = [];
  readonly logprobs: number[] = [];
  thinking = true;
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
    if (this.thinking && this.thinkingTokens >= this.params.maxThinkingTokens) {
      if (!this.params.forceAnswer) {
        this.finish = 'length';
        return;
      }
      for (const t of this.control.forced) {
        this.tokens.push(t);
        this.mask.push(0);
        this.logprobs.push(0);
      }
      this.forced = true;
      this.thinking = false;
    }
    if (!this.thinking && this.answerTokens >= this.params.maxAnswerTokens) this.finish = 'length';
  }

  push(token: number, logprob: number): void {
    if (this.done) throw new Error('ResponseBuilder.push: the response is already finished');
    this.tokens.push(token);
    this.mask.push(1);
    this.logprobs.push(logprob);
    if (this.thinking) {
      this.thinkingTokens++;
      if (token === this.control.thinkClose) this.thinking = false;
    } else this.answerTokens++;
    if (this.control.eos.includes(token)) this.finish = 'stop';
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
