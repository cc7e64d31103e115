/** The one-call parse of a response: think/answer split, strict format check and box extraction over one tag scan. */
import { type BoxExtraction, type ExtractMode, extractWithTags } from './extract.js';
import { checkFormatWithTags, type FormatCheck, type FormatOptions, withPrefill } from './format.js';
import { scanTags } from './tags.js';
import { splitWithTags, type ThinkSplit } from './think.js';

export interface ParsedResponse extends ThinkSplit {
  format: FormatCheck;
  box: BoxExtraction;
  /** The extracted answer, or null when extraction failed (see `box.failure`). */
  answer: string | null;
}

export interface ParseOptions extends FormatOptions {
  /** Extraction mode, `strict` by default. */
  mode?: ExtractMode;
}

/** Split, format check and box extraction in one pass over the tags. Never throws. */
export function parseResponse(text: string, opts: ParseOptions = {}): ParsedResponse {
  text = withPrefill(text, opts);
  const tags = scanTags(text);
  const split = splitWithTags(text, tags);
  const format = checkFormatWithTags(text, tags, split, opts);
  const box = extractWithTags(text, tags, split, opts.mode ?? 'strict');
  return { ...split, format, box, answer: box.ok ? box.value : null };
}
