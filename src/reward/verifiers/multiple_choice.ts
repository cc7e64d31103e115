/**
 * Multiple choice: the answer selects exactly the reference option(s), by letter (`B`, `(B)`, `B.`, `Option B`,
 * `B. <option text>`) or by the option's text. Naming several letters when one is expected, or a letter whose
 * attached text belongs to another option, is wrong. Without options (the paper converts unique-answer
 * multiple choice into fill-in-the-blank), the reference text is compared like VQA.
 */
import { z } from 'zod';
import { normalizeVqa } from '../text.js';
import type { Verdict, Verifier, VerifyContext } from '../types.js';
import { fail, pass } from './common.js';
import { verifyVqaText } from './text_answer.js';

export const MultipleChoiceParams = z
  .object({
    /** Accept the option text instead of the letter (default true). */
    allowOptionText: z.boolean().default(true),
  })
  .strict();
export type MultipleChoiceParams = z.infer<typeof MultipleChoiceParams>;

const LETTERS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ';

/** Reference letters: `B`, `B, D`, `BD`, `(B)`. */
export function parseLetters(s: string, n: number): string[] | null {
  const t = s
    .trim()
    .replace(/[()（）.\s]/g, '')
    .replace(/(?:and|和|&|、|,|，|;)/gi, '');
  if (t === '' || !/^[A-Za-z]+$/.test(t)) return null;
  const letters = [...new Set(t.toUpperCase().split(''))].sort();
  if (letters.some((l) => LETTERS.indexOf(l) >= n)) return null;
  return letters;
}

/** The letters an answer selects, or an error. */
export function selectedLetters(
  answer: string,
  options: string[],
  allowText: boolean,
): { letters: string[] } | { error: string } {
  const n = options.length;
  const t = answer
    .normalize('NFKC')
    .trim()
    .replace(/^\$|\$$/g, '')
    .replace(/\\text\{([^}]*)\}/g, '$1')
    .replace(/^\*\*|\*\*$/g, '')
    .trim();
  const stripped = t.replace(
    /^(?:the\s+)?(?:correct\s+)?(?:answer|option|choice)\s*(?:is|:)?\s*|^(?:答案|选项)\s*(?:是|为|:|：)?\s*/i,
    '',
  );
  // Letters only: `B`, `(B)`, `B.`, `A, C`, `AC`.
  const only = parseLetters(stripped, n);
  if (only && /^[\s(（]*[A-Z][\s)）.]*(?:(?:,|，|、|and|&|\s)\s*[(（]?[A-Z][)）.]?)*\s*$|^[A-Z]{2,}$/.test(stripped))
    return { letters: only };
  // Letter followed by text: `B. 42`, `(B) 42`, `B: 42`.
  const withText = /^[(（]?([A-Z])[)）.:：]\s*(.+)$/s.exec(stripped);
  if (withText) {
    const idx = LETTERS.indexOf(withText[1]!);
    if (idx >= n) return { error: `option ${withText[1]} does not exist` };
    const text = normalizeVqa(withText[2]!);
    const own = normalizeVqa(options[idx]!);
    if (text === own || own.startsWith(text) || text.startsWith(own)) return { letters: [withText[1]!] };
    const other = options.findIndex((o, i) => i !== idx && normalizeVqa(o) === text);
    if (other >= 0) return { error: `letter ${withText[1]} with the text of option ${LETTERS[other]}` };
    return { letters: [withText[1]!] };
  }
  if (allowText) {
    const norm = normalizeVqa(stripped);
    const hits = options
      .map((o, i) => (normalizeVqa(o) === norm ? LETTERS[i]! : null))
      .filter((x): x is string => x !== null);
    if (hits.length === 1) return { letters: hits };
    if (hits.length > 1) return { error: 'the text matches several options' };
  }
  return { error: 'no option selected' };
}

export async function verifyChoice(ctx: VerifyContext<unknown>, allowText: boolean, domain: string): Promise<Verdict> {
  const options = ctx.sample.options ?? [];
  if (options.length === 0) return verifyVqaText(ctx, domain === 'video' ? 'video' : 'multiple_choice');
  const ref = parseLetters(ctx.sample.answer, options.length);
  if (!ref) {
    throw new Error(
      `${domain} reference "${ctx.sample.answer}": expected option letter(s) among A–${LETTERS[options.length - 1]}`,
    );
  }
  const sel = selectedLetters(ctx.answer, options, allowText);
  if ('error' in sel) return fail(`${domain}:choice`, sel.error);
  if (sel.letters.length !== ref.length || sel.letters.some((l, i) => l !== ref[i]))
    return fail(`${domain}:choice`, `selected ${sel.letters.join(',')}, reference ${ref.join(',')}`);
  return pass(`${domain}:choice`, `selected ${sel.letters.join(',')}`);
}

export const multipleChoiceVerifier: Verifier<MultipleChoiceParams> = {
  type: 'multiple_choice',
  params: MultipleChoiceParams,
  boxed: true,
  judgeKind: 'multiple_choice',
  verify: (ctx) => verifyChoice(ctx, ctx.params.allowOptionText, 'multiple_choice'),
};
