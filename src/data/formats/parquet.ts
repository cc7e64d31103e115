/**
 * HF datasets / lmms-eval parquet files, read with hyparquet one row group at a time (never the whole file).
 * Image columns are HF `{bytes, path}` structs, raw bytes, or paths; field names follow the generic mapping.
 */
import { dirname, resolve } from 'node:path';
import { asyncBufferFromFile, parquetMetadataAsync, parquetReadObjects } from 'hyparquet';
import type { Sample } from '../sample.js';
import {
  checkDefaults,
  defaultCacheDir,
  type RawRow,
  RowError,
  SampleStream,
  sniffImage,
  sourceName,
} from './common.js';
import { type GenericOptions, genericRecordToSample } from './generic.js';

export type ParquetOptions = GenericOptions;

async function* parquetRows(file: string): AsyncGenerator<RawRow> {
  const buf = await asyncBufferFromFile(file);
  let meta: Awaited<ReturnType<typeof parquetMetadataAsync>>;
  try {
    meta = await parquetMetadataAsync(buf);
  } catch (e) {
    throw new Error(`${file}: not a readable parquet file (${(e as Error).message})`);
  }
  let start = 0;
  for (const rg of meta.row_groups) {
    const end = start + Number(rg.num_rows);
    let rows: Record<string, unknown>[];
    try {
      rows = (await parquetReadObjects({
        file: buf,
        metadata: meta,
        rowStart: start,
        rowEnd: end,
        utf8: false,
      })) as Record<string, unknown>[];
    } catch (e) {
      throw new Error(
        `${file}: cannot decode rows ${start + 1}-${end} (${(e as Error).message}); compressed columns need snappy or no compression`,
      );
    }
    for (let i = 0; i < rows.length; i++) yield { row: start + i + 1, value: rows[i] };
    start = end;
  }
}

export function openParquet(file: string, opts: ParquetOptions = {}): SampleStream {
  checkDefaults(opts, file);
  const source = opts.source ?? sourceName(file);
  const root = resolve(opts.imageRoot ?? dirname(file));
  const cacheDir = opts.cacheDir ?? defaultCacheDir(file);
  const convert = ({ row, value }: RawRow): Sample[] => {
    if (value === null || typeof value !== 'object') throw new RowError(file, row, '(row)', 'expected a record');
    const rec = value as Record<string, unknown>;
    // Binary columns stay bytes (utf8: false keeps image bytes intact); unannotated text columns are decoded here.
    for (const [k, v] of Object.entries(rec)) {
      if (v instanceof Uint8Array && !sniffImage(v)) rec[k] = Buffer.from(v).toString('utf8');
    }
    return [genericRecordToSample(rec, { file, row, root, source, opts: { ...opts, cacheDir }, checkFiles: true })];
  };
  return new SampleStream(file, 'parquet', () => parquetRows(file), convert, opts);
}
