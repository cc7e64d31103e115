/**
 * One entry point for every data format users bring (and our own datasets): `openDataset(path)` picks the loader
 * from the path (folder → our dataset; .tsv → VLMEvalKit; .parquet → HF/lmms; .json → LLaVA array; .jsonl → LLaVA
 * when its first record has `conversations`, else JSONL samples/generic records) and streams `Sample`s.
 */
import { createReadStream, existsSync, statSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Sample } from '../sample.js';
import { manifestFiles } from '../store.js';
import type { LoadReport } from './common.js';
import type { GenericOptions } from './generic.js';
import { type JsonlOptions, openJsonl } from './jsonl.js';
import { openLlava } from './llava.js';
import { openParquet } from './parquet.js';
import { openTsv } from './tsv.js';

export * from './common.js';
export { openJsonl, openLlava, openParquet, openTsv };

export const FORMATS = ['auto', 'dataset', 'tsv', 'parquet', 'llava', 'jsonl'] as const;
export type Format = (typeof FORMATS)[number];

export interface OpenOptions extends GenericOptions, Pick<JsonlOptions, 'mode' | 'resolvePaths'> {
  format?: Format;
}

export interface SampleSource extends AsyncIterable<Sample> {
  /** One report per file read (filled as iteration proceeds). */
  reports: LoadReport[];
  format: Exclude<Format, 'auto'>;
}

async function firstRecord(file: string): Promise<unknown> {
  const rl = createInterface({ input: createReadStream(file, { encoding: 'utf8' }) });
  try {
    for await (const line of rl) {
      if (!line.trim()) continue;
      try {
        return JSON.parse(line);
      } catch {
        return undefined;
      }
    }
  } finally {
    rl.close();
  }
  return undefined;
}

export async function detectFormat(path: string): Promise<Exclude<Format, 'auto'>> {
  if (!existsSync(path)) throw new Error(`${path}: no such file or folder`);
  if (statSync(path).isDirectory()) return 'dataset';
  const lower = path.toLowerCase();
  if (lower.endsWith('.tsv')) return 'tsv';
  if (lower.endsWith('.parquet')) return 'parquet';
  if (lower.endsWith('.json')) return 'llava';
  if (lower.endsWith('.jsonl')) {
    const rec = await firstRecord(path);
    return rec && typeof rec === 'object' && 'conversations' in rec ? 'llava' : 'jsonl';
  }
  throw new Error(
    `${path}: cannot tell the format from the name; expected a dataset folder, .tsv, .parquet, .json or .jsonl (or pass a format)`,
  );
}

export async function openDataset(path: string, opts: OpenOptions = {}): Promise<SampleSource> {
  const format = !opts.format || opts.format === 'auto' ? await detectFormat(path) : opts.format;
  if (!FORMATS.includes(format)) throw new Error(`format must be one of ${FORMATS.join(', ')}, got ${format}`);
  const reports: LoadReport[] = [];
  const files = format === 'dataset' ? manifestFiles(path) : [path];
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  return {
    reports,
    format,
    async *[Symbol.asyncIterator]() {
      let n = 0;
      for (const file of files) {
        if (n >= limit) return;
        const o = { ...opts, limit: limit - n };
        const stream =
          format === 'tsv'
            ? openTsv(file, o)
            : format === 'parquet'
              ? openParquet(file, o)
              : format === 'llava'
                ? openLlava(file, o)
                : openJsonl(file, { ...o, mode: format === 'dataset' ? 'sample' : (opts.mode ?? 'auto') });
        reports.push(stream.report);
        for await (const s of stream) {
          n++;
          yield s;
        }
      }
    },
  };
}
