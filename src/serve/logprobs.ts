/**
 * Log-probabilities in the two OpenAI shapes: chat (`logprobs.content[]`, each token with its `top_logprobs`, the k
 * most likely tokens at that step) and the legacy completions object (`tokens`, `token_logprobs`, `top_logprobs` as
 * token → log-probability maps that always hold the chosen token as well, `text_offset`). Values are the model's raw
 * distribution (temperature 1, before top-k / top-p), like vLLM's default `raw_logprobs`; vLLM clamps -inf to -9999.
 */
import type { GlmTokenizer } from '../io/tokenizer.js';

export interface TopLogprob {
  token: string;
  logprob: number;
  bytes: number[];
}

export interface LogprobEntry extends TopLogprob {
  top_logprobs: TopLogprob[];
}

const clamp = (v: number) => Math.max(v, -9999);

function tokenOf(tok: GlmTokenizer, id: number, logprob: number): TopLogprob {
  return {
    token: tok.decode([id], { skipSpecialTokens: false }),
    logprob: clamp(logprob),
    bytes: Array.from(tok.decodeBytes([id], { skipSpecialTokens: false })),
  };
}

/** One chat `logprobs.content` entry: the chosen token and the most likely ones (`[id, logprob]`, best first). */
export function logprobEntry(
  tok: GlmTokenizer,
  id: number,
  logprob: number,
  top: ReadonlyArray<readonly [number, number]>,
): LogprobEntry {
  return { ...tokenOf(tok, id, logprob), top_logprobs: top.map(([t, lp]) => tokenOf(tok, t, lp)) };
}

export interface CompletionLogprobs {
  tokens: string[];
  token_logprobs: number[];
  top_logprobs: Array<Record<string, number>>;
  text_offset: number[];
}

/** The legacy `/v1/completions` logprobs object of some chat-shaped entries; `offset`: text before the first one. */
export function completionLogprobs(entries: readonly LogprobEntry[], offset = 0): CompletionLogprobs {
  const out: CompletionLogprobs = { tokens: [], token_logprobs: [], top_logprobs: [], text_offset: [] };
  let at = offset;
  for (const e of entries) {
    out.tokens.push(e.token);
    out.token_logprobs.push(e.logprob);
    const top: Record<string, number> = {};
    for (const t of e.top_logprobs) top[t.token] ??= t.logprob;
    top[e.token] ??= e.logprob;
    out.top_logprobs.push(top);
    out.text_offset.push(at);
    at += e.token.length;
  }
  return out;
}
