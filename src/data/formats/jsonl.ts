/**
 * JSONL + image folder. Two record shapes:
 * - `sample`: our own manifest lines (a full `Sample`, validated field by field);
 * - `generic`: the common ad-hoc shape `{id?, image|images|image_path, question|prompt|query, answer|label|...,
 *   options|choices?}` with image paths relative to an image folder.
 * `auto` (default) decides from the first record: if it has `verifier`, `domain` and `source`, it is `sample`.
 */
import { createReadStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import type { Sample } from '../sample.js';
import { parseSample } from '../schema.js';
import {
  checkDefaults,
  type LoadOptions,
  type RawRow,
  RowError,
  resolveImagePath,
  SampleStream,
  sourceName,
} from './common.js';
import { genericRecordToSample } from './generic.js';

export interface JsonlOptions extends LoadOptions {
  mode?: 'auto' | 'sample' | 'generic';
  /** Make media paths absolute (resolved against imageRoot) and check that the files exist (default true). */
  resolvePaths?: boolean;
}

/** Lines of a text file as rows (1-based line numbers), skipping blank lines. */
export async function* jsonLines(file: string): AsyncGenerator<RawRow> {
  const rl = createInterface({
    input: createReadStream(file, { encoding: 'utf8' }),
    crlfDelay: Number.POSITIVE_INFINITY,
  });
  let line = 0;
  for await (const text of rl) {
    line++;
    if (text.trim() === '') continue;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (e) {
      value = new RowError(file, line, '(line)', `not valid JSON: ${(e as Error).message}`);
    }
    yield { row: line, value };
  }
}

export function openJsonl(file: string, opts: JsonlOptions = {}): SampleStream {
  checkDefaults(opts, file);
  const root = resolve(opts.imageRoot ?? dirname(file));
  const resolvePaths = opts.resolvePaths ?? true;
  let mode = opts.mode ?? 'auto';
  const source = opts.source ?? sourceName(file);
  const convert = ({ row, value }: RawRow): Sample[] => {
    if (value instanceof RowError) throw value;
    if (value === null || typeof value !== 'object' || Array.isArray(value)) {
      throw new RowError(
        file,
        row,
        '(record)',
        `expected a JSON object, found ${Array.isArray(value) ? 'an array' : JSON.stringify(value)}`,
      );
    }
    const rec = value as Record<string, unknown>;
    if (mode === 'auto') mode = 'verifier' in rec && 'domain' in rec && 'source' in rec ? 'sample' : 'generic';
    if (mode === 'sample') {
      const s = parseSample(rec, file, row);
      if (resolvePaths) {
        s.images = s.images.map((p, i) => resolveImagePath(p, root, file, row, `images.${i}`));
        if (s.video?.frames)
          s.video.frames = s.video.frames.map((p, i) => resolveImagePath(p, root, file, row, `video.frames.${i}`));
        if (s.video?.path) s.video.path = resolveImagePath(s.video.path, root, file, row, 'video.path');
      }
      return [s];
    }
    return [genericRecordToSample(rec, { file, row, root, source, opts, checkFiles: resolvePaths })];
  };
  return new SampleStream(file, 'jsonl', () => jsonLines(file), convert, opts);
}
