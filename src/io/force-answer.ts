/**
 * Force answering (docs/design.md D.6) and the thinking count it rests on: when a response has thought for the
 * budget without writing `</think>`, the closing tokens are inserted — `</think><answer>` for GLM-4.1V, `</think>`
 * for GLM-4.5V — and the model goes on to answer. The one rule for every local decoder: io/generate.ts (and through
 * it the serving batcher, chat, eval and the GLM RL engine) and the toy RL engine.
 *
 * Counting: tokens before the first `</think>` are thinking tokens; `</think>` itself, a stop token and the tokens
 * force answering inserts are not.
 */
import { THINK_CLOSE } from './answer/tags.js';
import type { AnswerStyle } from './answer/think.js';

/** What force answering appends, as text (the serving client's two-phase call and server rollouts use it too). */
export function forcedSuffix(style: AnswerStyle): string {
  return style === 'glm41v' ? `${THINK_CLOSE}<answer>` : `${THINK_CLOSE}\n`;
}

/** The thinking part of a response being decoded. */
export interface ThinkingState {
  /** `</think>` was taken (chosen by the model or inserted). */
  thinkClosed: boolean;
  thinkingTokens: number;
  /** Force answering fired. */
  forced: boolean;
}

/** Counts a token the response took (not a stop token): a thinking token until `</think>`, which closes thinking. */
export function countThinking(s: ThinkingState, id: number, thinkCloseId: number | undefined): void {
  if (thinkCloseId !== undefined && id === thinkCloseId) s.thinkClosed = true;
  if (!s.thinkClosed) s.thinkingTokens++;
}

/** Whether thinking has used up `budget` tokens without `</think>` (null: no budget), so the answer must be forced. */
export function thinkingBudgetSpent(s: ThinkingState, budget: number | null | undefined): boolean {
  return budget != null && !s.thinkClosed && !s.forced && s.thinkingTokens >= budget;
}

/** Forces the answer: closes thinking and returns the ids to insert next (context for the model, not its choice). */
export function forceAnswer(s: ThinkingState, forceAnswerIds: readonly number[]): number[] {
  s.forced = true;
  s.thinkClosed = true;
  return [...forceAnswerIds];
}

/**
 * `thinkingTokens` of a finished response recovered from its tokens: those before the first `</think>` (with force
 * answering, the inserted one), or all of them when it never came; a final stop token never counts.
 */
export function thinkingTokensOf(tokens: readonly number[], thinkCloseId: number, endsWithStop: boolean): number {
  const close = tokens.indexOf(thinkCloseId);
  return close >= 0 ? close : tokens.length - (endsWithStop && tokens.length > 0 ? 1 : 0);
}
