/**
 * VLMEvalKit benchmark TSV: columns `index, image (base64) | image_path, question, [hint], [A, B, …], answer,
 * [category, l2-category, split]`, written by pandas (quoted fields may hold tabs and newlines). Images are decoded
 * into a cache folder once. As in VLMEvalKit, an `image` cell of at most 64 characters refers to the image of the row
 * with that `index` (used by circular MCQ copies); in a stream the referenced row must come earlier.
 */
import { createReadStream } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { CsvError, parse } from 'csv-parse';
import type { Sample } from '../sample.js';
import {
  checkDefaults,
  defaultCacheDir,
  parseListLiteral,
  type RawRow,
  RowError,
  SampleStream,
  sourceName,
} from './common.js';
import { type GenericOptions, genericRecordToSample, imageValueToPath } from './generic.js';

export type TsvOptions = GenericOptions;

/**
 * Records with their 1-based data row (header excluded), bad ones included. csv-parse reports a skipped record
 * (`on_skip`) as soon as it parses it, possibly before good records parsed earlier reach this loop, and its own
 * `records` counter leaves skipped ones out: so rows are numbered here, merging good and skipped records by the
 * file line they end on.
 */
async function* tsvRows(file: string, skipBad: boolean): AsyncGenerator<RawRow> {
  const skipped: Array<{ line: number; message: string }> = [];
  let row = 0;
  const parser = createReadStream(file).pipe(
    parse({
      delimiter: '\t',
      columns: (header: string[]) => header.map((h) => h.trim()),
      bom: true,
      info: true,
      relax_quotes: true,
      skip_empty_lines: true,
      skip_records_with_error: skipBad,
      on_skip: (err: CsvError | undefined) => {
        if (err)
          skipped.push({ line: Number((err as CsvError & { lines?: number }).lines ?? 0), message: err.message });
      },
    }),
  );
  const flush = function* (beforeLine: number): Generator<RawRow> {
    while (skipped.length && skipped[0]!.line < beforeLine) {
      const e = skipped.shift()!;
      row++;
      yield { row, value: new RowError(file, row, '(row)', e.message) };
    }
  };
  try {
    for await (const item of parser as AsyncIterable<{ record: Record<string, string>; info: { lines: number } }>) {
      yield* flush(item.info.lines);
      row++;
      yield { row, value: item.record };
    }
  } catch (e) {
    if (e instanceof CsvError) {
      yield* flush(Number.POSITIVE_INFINITY);
      throw new RowError(file, row + 1, '(row)', e.message);
    }
    throw e;
  }
  yield* flush(Number.POSITIVE_INFINITY);
}

export function openTsv(file: string, opts: TsvOptions = {}): SampleStream {
  checkDefaults(opts, file);
  const source = opts.source ?? sourceName(file);
  const root = resolve(opts.imageRoot ?? dirname(file));
  const cacheDir = opts.cacheDir ?? defaultCacheDir(file);
  const byIndex = new Map<string, string[]>();
  const convert = ({ row, value }: RawRow): Sample[] => {
    if (value instanceof RowError) throw value;
    const rec = { ...(value as Record<string, unknown>) };
    for (const [k, v] of Object.entries(rec)) if (v === '' || v === 'nan' || v === 'NaN') rec[k] = null;
    const ctx = { file, row, root, source, opts: { ...opts, cacheDir }, checkFiles: true };
    const index = rec.index === null || rec.index === undefined ? undefined : String(rec.index);
    const img = rec.image;
    if (typeof img === 'string' && img.trim().length <= 64) {
      const ref = byIndex.get(img.trim());
      if (!ref) {
        throw new RowError(
          file,
          row,
          'image',
          `refers to the image of index ${JSON.stringify(img.trim())}, which no earlier row has (expected base64 image data or the index of an earlier row)`,
        );
      }
      rec.image = null;
      rec.images = ref;
    } else if (typeof img === 'string') {
      rec.image = null;
      // Decode here (not in the generic mapper) so later rows can refer to this row's files.
      const list = img.trim().startsWith('[') ? parseListLiteral(img) : [img];
      if (!list)
        throw new RowError(
          file,
          row,
          'image',
          `expected base64 image data or a list of it, found text starting ${JSON.stringify(img.slice(0, 30))}`,
        );
      rec.images = list.map((b, i) => imageValueToPath(b, ctx, list.length > 1 ? `image.${i}` : 'image'));
    }
    if (typeof rec.image_path === 'string' && rec.images === undefined) rec.images = rec.image_path;
    const s = genericRecordToSample(rec, ctx);
    if (index !== undefined) {
      byIndex.set(index, s.images);
      s.id = `${source}/${index}`;
    }
    return [s];
  };
  return new SampleStream(file, 'tsv', () => tsvRows(file, opts.onError === 'skip'), convert, opts);
}
