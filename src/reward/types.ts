/**
 * Contracts of the reward library: what a verifier receives and returns, and what `score` reports.
 * Rewards know nothing of tensors; everything is strings and numbers.
 */
import type { z } from 'zod';
import type { Domain, Sample, VerifierType } from '../data/sample.js';
import type { ParsedResponse } from '../io/answer/response.js';
import type { CasPool } from './cas.js';
import type { JudgeClient, JudgeKind, JudgeProvenance } from './judge.js';

/** How a route uses the LLM judge: only when rules cannot decide (default), never, or always after the rules. */
export type JudgeMode = 'fallback' | 'never' | 'always';

/**
 * - `scored`: a verifier decided (rules or judge);
 * - `gated`: a gate (format, repetition, …) set the minimum reward before verification;
 * - `unjudged`: the decision needed a judge that was unavailable (outage, not configured, tie): exclude the sample
 *   from training signals and pass rates instead of counting it as wrong;
 * - `error`: bad input (unknown verifier, invalid params, unparsable reference) — a data bug to fix.
 */
export type RewardStatus = 'scored' | 'gated' | 'unjudged' | 'error';

export interface GateReport {
  name: string;
  tripped: boolean;
  detail?: string;
}

export interface RewardResult {
  /** The sample id. */
  id: string;
  /** The reward to train on: in [minReward, 1]. */
  reward: number;
  /** Binary correctness (continuous verifiers: reward at or above their pass threshold). */
  correct: boolean;
  domain: Domain;
  verifier: VerifierType;
  /** Why, in words a person can act on. */
  reason: string;
  /** True when the decision is reliable: a rule decided, or judges agreed. */
  confident: boolean;
  status: RewardStatus;
  /** Which route matched (its name, or `sample` when the sample's own verifier spec was used). */
  route: string;
  /** The extracted answer, or null when extraction failed. */
  answer: string | null;
  /** The decision path, e.g. `math:int`, `chart:year`, `judge`, `gate:format`. */
  path: string;
  /** Every gate that ran, tripped or not. */
  gates: GateReport[];
  /** Judge provenance when a judge was consulted. */
  judge?: JudgeProvenance;
  /** Wall time of this score in milliseconds. */
  ms: number;
}

/** Extra facts about a response that only the generator knows. */
export interface ResponseMeta {
  /** Generated token count, for the overlong gate (characters are used when absent). */
  tokens?: number;
  /** Why generation stopped (`length` = truncated). */
  finishReason?: string;
  /**
   * Answer extraction: `strict` (default, the GLM reward rule: exactly one box in the answer part) or `lenient`
   * (eval of any model: last box, then `\\boxed{}`, `Answer:` line, last line; see io/answer/extract.ts).
   */
  extract?: 'strict' | 'lenient';
}

export interface Verdict {
  /** Score in [0, 1] before gates and scaling. */
  score: number;
  correct: boolean;
  confident: boolean;
  reason: string;
  path: string;
  /** Set to `unjudged` when a needed judge was unavailable. */
  status?: 'scored' | 'unjudged';
  judge?: JudgeProvenance;
}

export interface VerifyContext<P = Record<string, unknown>> {
  sample: Sample;
  response: ParsedResponse;
  /** The extracted answer: box content for verifiable routes, the whole answer part otherwise. */
  answer: string;
  params: P;
  cas: CasPool | null;
  judge: JudgeClient | null;
  judgeMode: JudgeMode;
}

export interface Verifier<P = Record<string, unknown>> {
  type: VerifierType;
  /** zod schema of the params (strict: unknown keys are errors). */
  params: z.ZodType<P>;
  /** Verifiable answers are boxed; judge-only domains (general, long-doc) read the whole answer part. */
  boxed: boolean;
  /** The judge rubric used when this verifier asks for a judge. */
  judgeKind: JudgeKind;
  verify(ctx: VerifyContext<P>): Promise<Verdict>;
}
