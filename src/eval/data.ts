/**
 * Turns a benchmark definition into evaluation items: loads the data with the shared loaders (src/data/formats),
 * renders synthetic held-out sets, checks every row against what the metric needs, and builds the prompts.
 * Malformed rows never stop a run: each becomes a `DataError` naming the file, the row and the field.
 */
import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { generateDataset } from '../data/dataset.js';
import { openDataset, parseListLiteral } from '../data/formats/index.js';
import { getGenerator } from '../data/generators/index.js';
import type { Sample } from '../data/sample.js';
import { listShards, readSamples } from '../data/store.js';
import { checkSample } from '../reward/router.js';
import { type Benchmark, resolveDataPath } from './benchmark.js';
import { LETTERS, rotateChoices } from './metrics.js';

export interface EvalPrompt {
  system?: string;
  text: string;
  /** Absolute image paths in prompt order. */
  images: string[];
  video?: { path?: string; frames?: string[]; fps?: number };
  /** The text before the media (the sample's `questionFirst`). */
  questionFirst?: boolean;
}

export interface EvalItem {
  /** Unique within the benchmark. */
  id: string;
  /** Aggregation unit: the circular group, otherwise the id. */
  group: string;
  /** 1-based row of the data file (synthetic: sample index + 1). */
  row: number;
  sample: Sample;
  prompt: EvalPrompt;
  /** Ground-truth answers for list metrics (ANLS, VQA score, relaxed accuracy, OCRBench, exact match). */
  answers: string[];
  /** Reference box `[a, b, c, d]` as written, for grounding metrics. */
  refBox?: [number, number, number, number];
}

export interface DataError {
  file: string;
  row: number;
  field: string;
  detail: string;
}

export interface PreparedBenchmark {
  bench: Benchmark;
  file: string;
  items: EvalItem[];
  errors: DataError[];
  /** Data rows read (malformed ones included). */
  rows: number;
}

export interface PrepareOptions {
  /** Folders relative data paths resolve against, in order. */
  dataDirs: string[];
  /** Data path override for this benchmark (`--data NAME=PATH`). */
  dataPath?: string;
  /** First N usable rows (circular `generate`: N questions, each with all its rotations). */
  limit?: number;
  /** Where synthetic sets are rendered (reused across runs). */
  syntheticDir: string;
  /** Where images embedded in data files (base64, parquet bytes) are written (default: beside the data file). */
  imageCacheDir?: string;
  quiet?: boolean;
}

/** Ground-truth answers of a sample: a list literal in `answer`, `meta.answers`, or the answer itself. */
export function answersOf(s: Sample): string[] {
  const metaAnswers = s.meta?.answers;
  if (Array.isArray(metaAnswers) && metaAnswers.length > 0) return metaAnswers.map(String);
  const t = s.answer.trim();
  if (t.startsWith('[')) {
    const list = parseListLiteral(t);
    if (list) return list;
  }
  return t === '' ? [] : [s.answer];
}

/** The value of a `groupBy` key for a sample (meta keys, `task`, `difficulty`, `domain`, `source`). */
export function groupValue(s: Sample, key: string): string | null {
  if (key === 'difficulty') return s.difficulty === undefined ? null : String(s.difficulty);
  if (key === 'domain') return s.domain;
  if (key === 'source') return s.source;
  const v = s.meta?.[key];
  return v === undefined || v === null || v === '' ? null : String(v);
}

export function buildPrompt(b: Benchmark, s: Sample): EvalPrompt {
  const options = s.options?.length
    ? s.options.map((o, i) => b.prompt.option.replaceAll('{letter}', LETTERS[i]!).replaceAll('{text}', o)).join('')
    : '';
  const text = b.prompt.template.replaceAll('{question}', s.question.trim()).replaceAll('{options}', options);
  const p: EvalPrompt = { text, images: [...s.images] };
  if (b.prompt.system) p.system = b.prompt.system;
  if (s.video) p.video = { ...s.video };
  if (s.questionFirst) p.questionFirst = true;
  return p;
}

const NUM_RE = /[-+]?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][-+]?\d+)?/g;

/** Four numbers of a reference box, or an error message. */
export function parseRefBox(text: string, format: 'xyxy' | 'xywh'): [number, number, number, number] | string {
  const nums = (text.match(NUM_RE) ?? []).map(Number);
  if (nums.length !== 4)
    return `expected a box of 4 numbers, found ${nums.length} in ${JSON.stringify(text.slice(0, 60))}`;
  const b = nums as [number, number, number, number];
  if (!b.every(Number.isFinite)) return `box has non-finite values: ${JSON.stringify(text)}`;
  if (format === 'xywh' ? b[2] <= 0 || b[3] <= 0 : b[2] <= b[0] || b[3] <= b[1])
    return `expected a non-empty ${format} box, found ${JSON.stringify(text)}`;
  return b;
}

function rowOf(s: Sample, fallback: number): number {
  const r = s.meta?.row;
  return typeof r === 'number' && Number.isInteger(r) ? r : fallback;
}

/** Checks one sample against the metric; returns the problem (field, detail) or the derived fields. */
function checkItem(
  b: Benchmark,
  s: Sample,
): { error: { field: string; detail: string } } | { answers: string[]; refBox?: [number, number, number, number] } {
  const m = b.metric;
  switch (m.name) {
    case 'reward': {
      const bad = checkSample(m.verifier ? { ...s, verifier: { type: m.verifier } } : s);
      return bad ? { error: { field: '(record)', detail: bad } } : { answers: [s.answer] };
    }
    case 'mcq': {
      const n = s.options?.length ?? 0;
      if (n < 2)
        return {
          error: { field: 'options', detail: `a multiple-choice benchmark needs at least 2 options, found ${n}` },
        };
      const idx = LETTERS.indexOf(s.answer.trim().toUpperCase());
      if (idx < 0 || idx >= n)
        return {
          error: {
            field: 'answer',
            detail: `expected an option letter A–${LETTERS[n - 1]}, found ${JSON.stringify(s.answer)}`,
          },
        };
      return { answers: [s.answer.trim().toUpperCase()] };
    }
    case 'iou':
    case 'point_in_box': {
      if (s.images.length === 0) return { error: { field: 'image', detail: 'a grounding benchmark needs an image' } };
      const box = parseRefBox(s.answer, m.gtFormat);
      if (typeof box === 'string') return { error: { field: 'answer', detail: box } };
      return { answers: [s.answer], refBox: box };
    }
    default: {
      const answers = answersOf(s).filter((a) => a.trim() !== '');
      if (answers.length === 0)
        return { error: { field: 'answer', detail: 'expected at least one non-empty ground-truth answer' } };
      return { answers };
    }
  }
}

async function syntheticSamples(b: Benchmark, opts: PrepareOptions): Promise<{ file: string; samples: Sample[] }> {
  const d = b.data;
  const gen = getGenerator(d.generator!);
  const want = Math.min(d.n, opts.limit ?? d.n);
  const dir = join(
    resolve(opts.syntheticDir),
    `${d.generator}-heldout-s${d.seed}-d${d.difficulty.replace(/[^0-9-]/g, '')}-px${d.size ?? gen.defaultSize}${d.mcq === 'blank' ? '-blank' : ''}`,
  );
  const have = existsSync(dir) ? listShards(dir).reduce((a, s) => a + s.count, 0) : 0;
  if (have < want) {
    // Sample i is the same sample on every run, so a folder can be extended in place.
    await generateDataset(
      {
        domains: d.generator!,
        n: want,
        split: 'heldout',
        seed: d.seed,
        difficulty: d.difficulty,
        ...(d.size ? { size: String(d.size) } : {}),
        mcq: d.mcq,
      },
      { out: dir, resume: have > 0, quiet: opts.quiet },
    );
  }
  const samples: Sample[] = [];
  for await (const s of readSamples(dir, { limit: want })) samples.push(s);
  return { file: dir, samples };
}

export async function prepareBenchmark(b: Benchmark, opts: PrepareOptions): Promise<PreparedBenchmark> {
  const errors: DataError[] = [];
  let file: string;
  let raw: Array<{ sample: Sample; row: number }> = [];
  let rows = 0;
  if (opts.limit !== undefined && (!Number.isInteger(opts.limit) || opts.limit < 1))
    throw new Error(`--limit: expected a positive integer, found ${opts.limit}`);

  if (b.data.format === 'synthetic') {
    const syn = await syntheticSamples(b, opts);
    file = syn.file;
    raw = syn.samples.map((sample, i) => ({ sample, row: i + 1 }));
    rows = raw.length;
  } else {
    file = resolveDataPath(b, opts.dataDirs, opts.dataPath);
    const d = b.data;
    const src = await openDataset(file, {
      format: d.format === 'synthetic' ? 'auto' : d.format,
      onError: 'skip',
      maxErrorsKept: 10_000,
      source: b.name,
      split: 'test',
      ...(d.domain ? { domain: d.domain } : {}),
      ...(d.verifier ? { verifier: d.verifier } : {}),
      ...(d.fields ? { fields: d.fields } : {}),
      ...(d.imageRoot ? { imageRoot: resolve(dirname(file), d.imageRoot) } : {}),
      ...(opts.imageCacheDir ? { cacheDir: opts.imageCacheDir } : {}),
    });
    let i = 0;
    // The limit counts usable rows (some may fail the metric's checks), so read a margin past it; circular data
    // copies may sit anywhere in the file, so those files are read whole.
    const enough =
      opts.limit === undefined || (b.metric.name === 'mcq' && b.metric.circular === 'data')
        ? Number.POSITIVE_INFINITY
        : opts.limit * 2 + 32;
    for await (const sample of src) {
      i++;
      raw.push({ sample, row: rowOf(sample, i) });
      if (raw.length >= enough) break;
    }
    for (const r of src.reports) {
      rows += r.rows;
      for (const e of r.errors) errors.push({ file: e.file, row: e.row, field: e.field, detail: e.detail });
      const unkept = r.skipped - r.errors.length;
      if (unkept > 0)
        errors.push({ file: r.file, row: 0, field: '(rows)', detail: `${unkept} more malformed rows not listed` });
    }
  }

  const items: EvalItem[] = [];
  const circular = b.metric.name === 'mcq' ? b.metric.circular : 'none';
  const seen = new Set<string>();
  for (const { sample: s0, row } of raw) {
    if (opts.limit !== undefined && circular === 'none' && items.length >= opts.limit) break;
    if (opts.limit !== undefined && circular === 'generate' && seen.size >= opts.limit) break;
    let s = s0;
    if (b.data.stripOptionLetters && s.options)
      s = { ...s, options: s.options.map((o) => o.replace(/^\s*\(?[A-J][.):]\s*/, '')) };
    if (b.data.video) {
      const v = b.data.video;
      const name = s.meta?.[v.field];
      if (typeof name !== 'string' || name.trim() === '') {
        errors.push({
          file,
          row,
          field: v.field,
          detail: `expected a video name, found ${JSON.stringify(name ?? null)}`,
        });
        continue;
      }
      const path = resolve(dirname(file), v.root, `${name.trim()}${v.ext}`);
      if (!existsSync(path)) {
        errors.push({ file, row, field: v.field, detail: `video file not found: ${path}` });
        continue;
      }
      s = { ...s, video: { path } };
    }
    const checked = checkItem(b, s);
    if ('error' in checked) {
      errors.push({ file, row, ...checked.error });
      continue;
    }
    if (circular === 'data') {
      const idx = Number(s.id.slice(s.id.lastIndexOf('/') + 1));
      if (!Number.isInteger(idx)) {
        errors.push({
          file,
          row,
          field: 'index',
          detail: `circular evaluation needs an integer index, found ${JSON.stringify(s.id)}`,
        });
        continue;
      }
      // VLMEvalKit: copy k of question i has index i + k·1e6.
      const group = `${b.name}/${idx % 1_000_000}`;
      items.push({ id: s.id, group, row, sample: s, prompt: buildPrompt(b, s), answers: checked.answers });
    } else if (circular === 'generate') {
      seen.add(s.id);
      const n = s.options!.length;
      for (let k = 0; k < n; k++) {
        const r = rotateChoices(s.options!, s.answer, k);
        const rs: Sample = { ...s, id: `${s.id}@r${k}`, options: r.options, answer: r.answer };
        items.push({ id: rs.id, group: s.id, row, sample: rs, prompt: buildPrompt(b, rs), answers: [r.answer] });
      }
    } else {
      const item: EvalItem = {
        id: s.id,
        group: s.id,
        row,
        sample: s,
        prompt: buildPrompt(b, s),
        answers: checked.answers,
      };
      if (checked.refBox) item.refBox = checked.refBox;
      items.push(item);
    }
  }
  // Circular data: the limit counts questions (groups), each with every copy the file holds.
  let kept = items;
  if (circular === 'data' && opts.limit !== undefined) {
    const groups = new Set<string>();
    for (const it of items) if (groups.size < opts.limit) groups.add(it.group);
    kept = items.filter((it) => groups.has(it.group));
  }
  // Ids must be unique: the cache and the per-sample records are keyed by them.
  const dup = new Map<string, number>();
  const unique: EvalItem[] = [];
  for (const it of kept) {
    if (dup.has(it.id)) {
      errors.push({
        file,
        row: it.row,
        field: 'id',
        detail: `duplicate id ${JSON.stringify(it.id)} (first at row ${dup.get(it.id)})`,
      });
      continue;
    }
    dup.set(it.id, it.row);
    unique.push(it);
  }
  return { bench: b, file, items: unique, errors, rows };
}
