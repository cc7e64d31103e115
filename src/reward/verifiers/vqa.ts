/**
 * VQA: normalised exact match, yes/no synonyms (a yes/no question needs a yes/no answer), numbers (digits or
 * words) with hedge rejection, configurable synonym groups, options by letter, then the judge.
 */
import type { Verifier } from '../types.js';
import { verifyChoice } from './multiple_choice.js';
import { VqaParams, verifyVqaText } from './text_answer.js';

export const vqaVerifier: Verifier<VqaParams> = {
  type: 'vqa',
  params: VqaParams,
  boxed: true,
  judgeKind: 'vqa',
  async verify(ctx) {
    if ((ctx.sample.options?.length ?? 0) > 0) return verifyChoice(ctx, true, 'vqa');
    return verifyVqaText(ctx, 'vqa', ctx.params);
  },
};
