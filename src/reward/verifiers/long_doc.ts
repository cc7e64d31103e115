/**
 * Long documents: normalised exact match, else LLM semantic matching (Table 1). Without a judge the result is
 * `unjudged`, never a silent 0. Numeric references (page numbers, table cells, totals) are decided by rule, as VQA
 * numbers are: a judge adds nothing there, and leaving every wrong number unjudged would grade only the right ones
 * (RL groups lose their negatives, pass@k is inflated). (The released system defines a long_doc config but registers
 * no verifier.)
 */
import { z } from 'zod';
import { normalizeVqa, wordNumber } from '../text.js';
import type { Verifier } from '../types.js';
import { judgeVerdict, pass } from './common.js';
import { verifyVqaText } from './text_answer.js';

export const JudgeOnlyParams = z.object({}).strict();

export const longDocVerifier: Verifier<z.infer<typeof JudgeOnlyParams>> = {
  type: 'long_doc',
  params: JudgeOnlyParams,
  boxed: true,
  judgeKind: 'long_doc',
  async verify(ctx) {
    if (normalizeVqa(ctx.answer) === normalizeVqa(ctx.sample.answer) && ctx.judgeMode !== 'always')
      return pass('long_doc:exact');
    if (ctx.judgeMode !== 'always' && wordNumber(normalizeVqa(ctx.sample.answer)) !== null)
      return verifyVqaText(ctx, 'long_doc');
    return judgeVerdict(ctx, 'long_doc', 'semantic matching needs the judge');
  },
};
