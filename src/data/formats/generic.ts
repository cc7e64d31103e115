/**
 * Maps the ad-hoc record shapes of HF / lmms-eval datasets and hand-made JSONL files to `Sample`s.
 * Field names are looked up in a fixed order (override with `fields`); images may be paths, base64 strings,
 * data URLs or HF `{bytes, path}` structs, single or in lists, or MMMU-style `image_1 … image_N` columns.
 */
import type { Sample, VerifierSpec } from '../sample.js';
import {
  decodeBase64Image,
  defaultCacheDir,
  type LoadOptions,
  parseListLiteral,
  RowError,
  resolveImagePath,
  storeImage,
} from './common.js';

export interface FieldNames {
  id?: string;
  image?: string;
  question?: string;
  answer?: string;
  options?: string;
}

export interface GenericOptions extends LoadOptions {
  fields?: FieldNames;
  /** Rows without an answer are errors unless this is false (test splits without labels). */
  requireAnswer?: boolean;
}

const ID_KEYS = ['id', 'question_id', 'qid', 'index', 'sample_id', 'idx'];
const IMAGE_KEYS = ['images', 'image', 'image_path', 'image_paths', 'img', 'decoded_image', 'image_file'];
const QUESTION_KEYS = ['question', 'prompt', 'query', 'instruction', 'problem', 'text'];
const ANSWER_KEYS = ['answer', 'label', 'gt', 'ground_truth', 'target', 'solution', 'answers'];
const OPTION_KEYS = ['options', 'choices'];
const LETTERS = 'ABCDEFGHIJ';

export interface RecordContext {
  file: string;
  row: number;
  /** Folder relative image paths resolve against. */
  root: string;
  source: string;
  opts: GenericOptions;
  checkFiles: boolean;
}

function firstKey(rec: Record<string, unknown>, keys: readonly string[], override?: string): string | undefined {
  if (override !== undefined) return override in rec ? override : undefined;
  return keys.find((k) => rec[k] !== undefined && rec[k] !== null);
}

/** One image value (path / base64 / data URL / {bytes, path}) → an absolute file path. */
export function imageValueToPath(v: unknown, ctx: RecordContext, field: string): string {
  const cache = ctx.opts.cacheDir ?? defaultCacheDir(ctx.file);
  if (v instanceof Uint8Array) return storeImage(v, cache, ctx.file, ctx.row, field);
  if (typeof v === 'string') {
    const t = v.trim();
    // Long strings of base64 characters are embedded images; paths contain a '.' (the extension) and are short.
    if (
      t.startsWith('data:image/') ||
      (t.length > 256 && !t.includes('.') && /^[A-Za-z0-9+/=\s]+$/.test(t.slice(0, 2048)))
    ) {
      return storeImage(decodeBase64Image(t, ctx.file, ctx.row, field), cache, ctx.file, ctx.row, field);
    }
    if (t === '') throw new RowError(ctx.file, ctx.row, field, 'expected an image path, found an empty string');
    return ctx.checkFiles ? resolveImagePath(t, ctx.root, ctx.file, ctx.row, field) : t;
  }
  if (v && typeof v === 'object') {
    const o = v as { bytes?: unknown; path?: unknown };
    // Some writers store struct bytes as a list of integers.
    if (
      Array.isArray(o.bytes) &&
      o.bytes.length > 0 &&
      o.bytes.every((x) => Number.isInteger(x) && x >= 0 && x < 256)
    ) {
      return storeImage(Uint8Array.from(o.bytes as number[]), cache, ctx.file, ctx.row, `${field}.bytes`);
    }
    if (o.bytes instanceof Uint8Array && o.bytes.length > 0)
      return storeImage(o.bytes, cache, ctx.file, ctx.row, `${field}.bytes`);
    if (typeof o.bytes === 'string' && o.bytes.length > 0) {
      return storeImage(
        decodeBase64Image(o.bytes, ctx.file, ctx.row, `${field}.bytes`),
        cache,
        ctx.file,
        ctx.row,
        `${field}.bytes`,
      );
    }
    if (typeof o.path === 'string' && o.path) return imageValueToPath(o.path, ctx, `${field}.path`);
  }
  throw new RowError(
    ctx.file,
    ctx.row,
    field,
    `expected an image (path, base64 string or {bytes, path}), found ${v === null ? 'null' : typeof v === 'object' ? 'an object without bytes or path' : typeof v}`,
  );
}

function collectImages(rec: Record<string, unknown>, ctx: RecordContext): string[] {
  const key = firstKey(rec, IMAGE_KEYS, ctx.opts.fields?.image);
  const out: string[] = [];
  if (key !== undefined) {
    let v = rec[key];
    if (typeof v === 'string') v = parseListLiteral(v) ?? v;
    if (Array.isArray(v)) {
      for (const [i, x] of v.entries()) out.push(imageValueToPath(x, ctx, `${key}.${i}`));
    } else if (v !== null && v !== undefined) out.push(imageValueToPath(v, ctx, key));
  }
  // MMMU-style numbered columns; empty ones are normal (null).
  for (let i = 1; i <= 16; i++) {
    const v = rec[`image_${i}`];
    if (v !== null && v !== undefined && v !== '') out.push(imageValueToPath(v, ctx, `image_${i}`));
  }
  return out;
}

function collectOptions(rec: Record<string, unknown>, ctx: RecordContext): string[] | undefined {
  const key = firstKey(rec, OPTION_KEYS, ctx.opts.fields?.options);
  if (key !== undefined) {
    let v = rec[key];
    if (typeof v === 'string' && v.trim() === '') return undefined;
    if (typeof v === 'string') {
      const parsed = parseListLiteral(v);
      if (!parsed)
        throw new RowError(
          ctx.file,
          ctx.row,
          key,
          `expected a list of options, found ${JSON.stringify(v.slice(0, 60))}`,
        );
      v = parsed;
    }
    if (!Array.isArray(v)) throw new RowError(ctx.file, ctx.row, key, `expected a list of options, found ${typeof v}`);
    const opts = v.map(String);
    if (opts.length === 0) return undefined;
    if (opts.length < 2)
      throw new RowError(ctx.file, ctx.row, key, `expected at least 2 options, found ${opts.length}`);
    return opts;
  }
  // VLMEvalKit-style letter columns A, B, C, …: contiguous from A.
  const letters: string[] = [];
  for (const L of LETTERS) {
    const v = rec[L];
    if (v === undefined || v === null || (typeof v === 'string' && (v.trim() === '' || v === 'nan'))) break;
    letters.push(String(v));
  }
  return letters.length >= 2 ? letters : undefined;
}

/** Normalises an MCQ answer to its letter; RowError if it matches no option. */
export function answerLetter(answer: string, options: string[], file: string, row: number, field: string): string {
  const a = answer.trim();
  const up = a.toUpperCase().replace(/^\(?([A-J])[).:]?$/, '$1');
  if (/^[A-J]$/.test(up) && LETTERS.indexOf(up) < options.length) return up;
  if (/^\d+$/.test(a) && Number(a) < options.length && !options.includes(a)) return LETTERS[Number(a)]!;
  const idx = options.findIndex((o) => o.trim() === a);
  if (idx >= 0) return LETTERS[idx]!;
  throw new RowError(
    file,
    row,
    field,
    `expected an option letter A-${LETTERS[options.length - 1]}, an option index or one of the option texts, found ${JSON.stringify(a.slice(0, 60))}`,
  );
}

function scalarMeta(rec: Record<string, unknown>, used: Set<string>): Record<string, unknown> {
  const meta: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(rec)) {
    if (used.has(k) || /^image_\d+$/.test(k) || /^[A-J]$/.test(k)) continue;
    if (typeof v === 'string' && v.length <= 500) meta[k] = v;
    else if (typeof v === 'number' || typeof v === 'boolean') meta[k] = v;
    else if (typeof v === 'bigint') meta[k] = Number(v);
  }
  return meta;
}

export function genericRecordToSample(rec: Record<string, unknown>, ctx: RecordContext): Sample {
  const { file, row, opts } = ctx;
  const used = new Set<string>();
  const qKey = firstKey(rec, QUESTION_KEYS, opts.fields?.question);
  if (qKey === undefined || typeof rec[qKey] !== 'string') {
    throw new RowError(
      file,
      row,
      opts.fields?.question ?? 'question',
      `expected a question string (one of ${QUESTION_KEYS.join(', ')}), found ${qKey === undefined ? 'nothing' : typeof rec[qKey]}`,
    );
  }
  used.add(qKey);
  let question = (rec[qKey] as string).replace(/<image>\s*/g, '').trim();
  if (typeof rec.hint === 'string' && rec.hint.trim() && rec.hint !== 'nan') {
    question = `Hint: ${rec.hint.trim()}\n${question}`;
    used.add('hint');
  }
  const images = collectImages(rec, ctx);
  const options = collectOptions(rec, ctx);
  const aKey = firstKey(rec, ANSWER_KEYS, opts.fields?.answer);
  let answer = '';
  const meta: Record<string, unknown> = {};
  if (aKey === undefined) {
    if (opts.requireAnswer !== false) {
      throw new RowError(
        file,
        row,
        opts.fields?.answer ?? 'answer',
        `expected an answer (one of ${ANSWER_KEYS.join(', ')}), found nothing`,
      );
    }
  } else {
    used.add(aKey);
    const v = rec[aKey];
    if (Array.isArray(v)) {
      if (v.length === 0) throw new RowError(file, row, aKey, 'expected an answer, found an empty list');
      answer = String(v[0]);
      meta.answers = v.map(String);
    } else if (typeof v === 'string' || typeof v === 'number' || typeof v === 'bigint' || typeof v === 'boolean')
      answer = String(v);
    else throw new RowError(file, row, aKey, `expected a string or number answer, found ${typeof v}`);
  }
  if (options && answer !== '') answer = answerLetter(answer, options, file, row, aKey ?? 'answer');
  const idKey = firstKey(rec, ID_KEYS, opts.fields?.id);
  if (idKey) used.add(idKey);
  const id = idKey ? `${ctx.source}/${String(rec[idKey])}` : `${ctx.source}/${row}`;
  const verifier: VerifierSpec = options ? { type: 'multiple_choice' } : (opts.verifier ?? { type: 'general' });
  const rationaleKey = ['rationale', 'explanation'].find((k) => typeof rec[k] === 'string');
  if (rationaleKey) used.add(rationaleKey);
  for (const k of [...IMAGE_KEYS, ...OPTION_KEYS]) used.add(k);
  const sample: Sample = {
    id,
    domain: opts.domain ?? 'vqa',
    source: ctx.source,
    split: opts.split ?? 'test',
    images,
    question,
    answer,
    verifier,
    meta: { ...scalarMeta(rec, used), ...meta, row },
  };
  if (options) sample.options = options;
  if (rationaleKey) sample.rationale = rec[rationaleKey] as string;
  return sample;
}
