/**
 * General (non-verifiable) questions: the whole answer part is judged against the reference. Box markers in such
 * an answer are gated to the minimum reward before this runs (docs/design.md G). Exact matches skip the judge.
 */

import { normalizeVqa } from '../text.js';
import type { Verifier } from '../types.js';
import { judgeVerdict, pass } from './common.js';
import { JudgeOnlyParams } from './long_doc.js';

export const generalVerifier: Verifier<Record<string, never>> = {
  type: 'general',
  params: JudgeOnlyParams as never,
  boxed: false,
  judgeKind: 'general',
  async verify(ctx) {
    if (normalizeVqa(ctx.answer) === normalizeVqa(ctx.sample.answer) && ctx.judgeMode !== 'always')
      return pass('general:exact');
    return judgeVerdict(ctx, 'general', 'open-ended answers need the judge');
  },
};
