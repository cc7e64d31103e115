/**
 * Runtime validation of `Sample` records (zod), with error messages that name the row and the field.
 */
import { z } from 'zod';
import { DOMAINS, type Sample, VERIFIER_TYPES } from './sample.js';

const nonEmpty = z.string().min(1, 'must be a non-empty string');

export const sampleSchema = z
  .object({
    id: nonEmpty,
    domain: z.enum(DOMAINS),
    source: nonEmpty,
    split: z.enum(['train', 'heldout', 'test', 'val']),
    difficulty: z.number().int().min(1).max(5).optional(),
    images: z.array(nonEmpty),
    video: z
      .object({
        path: nonEmpty.optional(),
        frames: z.array(nonEmpty).min(1).optional(),
        fps: z.number().positive().optional(),
      })
      .refine((v) => v.path !== undefined || v.frames !== undefined, 'needs a path or frames')
      .optional(),
    question: z.string(),
    answer: z.string(),
    options: z.array(z.string()).min(2).optional(),
    verifier: z.object({ type: z.enum(VERIFIER_TYPES), params: z.record(z.string(), z.unknown()).optional() }),
    rationale: z.string().optional(),
    questionFirst: z.boolean().optional(),
    meta: z.record(z.string(), z.unknown()).optional(),
  })
  .strict();

/** One malformed input row: where it is and what is wrong. */
export class RowError extends Error {
  readonly field: string;
  readonly detail: string;

  constructor(
    readonly file: string,
    readonly row: number,
    field: string,
    detail: string,
  ) {
    const f = printable(field, 120);
    const d = printable(detail, 500);
    super(`${file}: row ${row}: field "${f}": ${d}`);
    this.field = f;
    this.detail = d;
    this.name = 'RowError';
  }
}

/**
 * Text from a data file made safe for an error line: control characters (terminal escapes included), lone
 * surrogates and replacement characters from undecodable bytes are written as `\u{..}` escapes, and long text is
 * cut at `max` characters.
 */
export function printable(s: string, max = 500): string {
  const cut = s.length > max ? `${s.slice(0, max)}… (${s.length} chars)` : s;
  return cut.replace(/[\p{Cc}\p{Cs}\ufffd]/gu, (c) => (c === '\t' ? c : `\\u{${c.codePointAt(0)!.toString(16)}}`));
}

/** Validates one record; throws a RowError naming the first bad field. */
export function parseSample(value: unknown, file: string, row: number): Sample {
  const r = sampleSchema.safeParse(value);
  if (r.success) return r.data as Sample;
  const issue = r.error.issues[0]!;
  const field = issue.path.length ? issue.path.join('.') : '(record)';
  let found: unknown = value;
  for (const k of issue.path)
    found = found && typeof found === 'object' ? (found as Record<PropertyKey, unknown>)[k as PropertyKey] : undefined;
  const shown = found === undefined ? 'nothing' : JSON.stringify(found)?.slice(0, 80);
  throw new RowError(file, row, field, `${issue.message} (found ${shown})`);
}
