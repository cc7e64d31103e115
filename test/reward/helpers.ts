import type { Sample } from '../../src/data/sample.js';
import { parseResponse } from '../../src/io/answer/response.js';
import type { JudgeClient } from '../../src/reward/judge.js';
import type { JudgeMode, Verdict, Verifier, VerifyContext } from '../../src/reward/types.js';

export const B = (s: string) => `<|begin_of_box|>${s}<|end_of_box|>`;
export const R41 = (think: string, answer: string) => `<think>${think}</think><answer>${answer}</answer>`;

export function sample(over: Partial<Sample> = {}): Sample {
  return {
    id: 'test/train/0',
    domain: 'stem',
    source: 'test',
    split: 'train',
    images: [],
    question: 'What is the value?',
    answer: '1',
    verifier: { type: 'math' },
    ...over,
  };
}

/** Calls a verifier directly on an extracted answer, with its params validated like the router does. */
export async function verify<P>(
  v: Verifier<P>,
  answer: string,
  over: Partial<Sample> = {},
  params: Record<string, unknown> = {},
  extra: { judge?: JudgeClient | null; judgeMode?: JudgeMode } = {},
): Promise<Verdict> {
  const s = sample({ verifier: { type: v.type }, ...over });
  const ctx: VerifyContext<P> = {
    sample: s,
    response: parseResponse(R41('thinking', B(answer))),
    answer,
    params: v.params.parse(params),
    cas: null,
    judge: extra.judge ?? null,
    judgeMode: extra.judgeMode ?? 'fallback',
  };
  return v.verify(ctx);
}
