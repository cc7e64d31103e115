/**
 * On-disk datasets: `DIR/dataset.json` (index) + `DIR/shard-00000/samples.jsonl` with the shard's PNGs under
 * `shard-00000/img/`. Media paths in a manifest are relative to its shard folder. A shard is written into
 * `shard-NNNNN.partial/` and renamed when complete, so a killed run leaves only whole shards (resume skips them).
 * Readers stream line by line; nothing loads a whole dataset into memory.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import type { LoadOptions, LoadReport } from './formats/common.js';
import { openJsonl } from './formats/jsonl.js';
import type { Generated } from './generate.js';
import type { Sample } from './sample.js';

export const DATASET_FILE = 'dataset.json';
export const MANIFEST_FILE = 'samples.jsonl';

export interface ShardInfo {
  dir: string;
  count: number;
}

export interface DatasetInfo {
  format: 'glmv-dataset';
  version: 1;
  /** What was generated (the command's options), so a dataset documents itself. */
  spec: Record<string, unknown>;
  count: number;
  byDomain: Record<string, number>;
  shards: ShardInfo[];
}

export function shardName(i: number): string {
  return `shard-${String(i).padStart(5, '0')}`;
}

/** Complete shards already in a folder (partial ones excluded), in order. */
export function listShards(dir: string): ShardInfo[] {
  if (!existsSync(dir)) return [];
  const names = readdirSync(dir)
    .filter((n) => /^shard-\d{5}$/.test(n) && existsSync(join(dir, n, MANIFEST_FILE)))
    .sort();
  return names.map((n) => ({ dir: n, count: countLines(join(dir, n, MANIFEST_FILE)) }));
}

function countLines(file: string): number {
  const text = readFileSync(file, 'utf8');
  let n = 0;
  for (const line of text.split('\n')) if (line.trim()) n++;
  return n;
}

/** Writes generated samples into shards of `shardSize`; PNGs go straight to disk, manifest lines per shard. */
export class ShardWriter {
  private lines: string[] = [];
  private shardIndex: number;
  private readonly shards: ShardInfo[];
  private current: string | null = null;
  readonly byDomain: Record<string, number> = {};

  constructor(
    readonly outDir: string,
    readonly shardSize: number,
    existing: ShardInfo[] = [],
  ) {
    if (!Number.isInteger(shardSize) || shardSize < 1)
      throw new Error(`ShardWriter: shardSize must be a positive integer, got ${shardSize}`);
    mkdirSync(outDir, { recursive: true });
    this.shards = [...existing];
    this.shardIndex = existing.length;
    // Leftovers of a killed run are incomplete by construction.
    for (const n of readdirSync(outDir))
      if (n.endsWith('.partial')) rmSync(join(outDir, n), { recursive: true, force: true });
  }

  get count(): number {
    return this.shards.reduce((a, s) => a + s.count, 0) + this.lines.length;
  }

  write(g: Generated): void {
    this.writeRecord(g.sample, g.media, g.sample.domain);
  }

  /** Writes any JSON record (a Sample, a pre-training document) with its media files. */
  writeRecord(record: object, media: Generated['media'], domain: string): void {
    if (this.current === null) {
      this.current = join(this.outDir, `${shardName(this.shardIndex)}.partial`);
      mkdirSync(join(this.current, 'img'), { recursive: true });
    }
    for (const m of media) {
      const p = join(this.current, m.path);
      if (dirname(p) !== join(this.current, 'img')) mkdirSync(dirname(p), { recursive: true });
      writeFileSync(p, m.png);
    }
    this.lines.push(JSON.stringify(record));
    this.byDomain[domain] = (this.byDomain[domain] ?? 0) + 1;
    if (this.lines.length >= this.shardSize) this.flush();
  }

  /** Completes the current shard (manifest written, folder renamed). */
  flush(): void {
    if (this.current === null) return;
    writeFileSync(join(this.current, MANIFEST_FILE), `${this.lines.join('\n')}\n`);
    const final = join(this.outDir, shardName(this.shardIndex));
    rmSync(final, { recursive: true, force: true });
    renameSync(this.current, final);
    this.shards.push({ dir: shardName(this.shardIndex), count: this.lines.length });
    this.shardIndex++;
    this.current = null;
    this.lines = [];
  }

  /** Flushes and writes dataset.json. */
  close(spec: Record<string, unknown>): DatasetInfo {
    this.flush();
    const byDomain: Record<string, number> = {};
    for (const s of this.shards) {
      for (const line of readFileSync(join(this.outDir, s.dir, MANIFEST_FILE), 'utf8').split('\n')) {
        const m = /"(?:domain|kind)":"([a-z_]+)"/.exec(line);
        if (m) byDomain[m[1]!] = (byDomain[m[1]!] ?? 0) + 1;
      }
    }
    const info: DatasetInfo = {
      format: 'glmv-dataset',
      version: 1,
      spec,
      count: this.shards.reduce((a, s) => a + s.count, 0),
      byDomain,
      shards: this.shards,
    };
    writeFileSync(join(this.outDir, DATASET_FILE), `${JSON.stringify(info, null, 2)}\n`);
    return info;
  }
}

export function readDatasetInfo(dir: string): DatasetInfo | null {
  const p = join(dir, DATASET_FILE);
  if (!existsSync(p)) return null;
  let info: DatasetInfo;
  try {
    info = JSON.parse(readFileSync(p, 'utf8'));
  } catch (e) {
    throw new Error(`${p}: not valid JSON (${(e as Error).message})`);
  }
  if (info.format !== 'glmv-dataset' || !Array.isArray(info.shards)) {
    throw new Error(
      `${p}: expected {"format": "glmv-dataset", "shards": [...]}, found format ${JSON.stringify(info.format)}`,
    );
  }
  return info;
}

/** Manifest files of a dataset folder, or the file itself when given a .jsonl manifest. */
export function manifestFiles(path: string): string[] {
  const abs = resolve(path);
  if (!existsSync(abs)) throw new Error(`${abs}: no such file or folder`);
  if (abs.endsWith('.jsonl')) return [abs];
  const info = readDatasetInfo(abs);
  const shards = info ? info.shards.map((s) => s.dir) : listShards(abs).map((s) => s.dir);
  const files = shards.map((d) => join(abs, d, MANIFEST_FILE));
  if (files.length === 0) {
    const flat = join(abs, MANIFEST_FILE);
    if (existsSync(flat)) return [flat];
    throw new Error(
      `${abs}: not a dataset (expected ${DATASET_FILE}, shard-NNNNN/${MANIFEST_FILE} or ${MANIFEST_FILE})`,
    );
  }
  for (const f of files) if (!existsSync(f)) throw new Error(`${abs}: ${DATASET_FILE} lists ${f}, which is missing`);
  return files;
}

/**
 * Streams every Sample of a dataset folder or manifest, with media paths made absolute. With `onError: 'skip'`,
 * malformed lines are skipped and collected in `reports` (one per manifest).
 */
export async function* readSamples(
  path: string,
  opts: LoadOptions & { reports?: LoadReport[] } = {},
): AsyncGenerator<Sample> {
  let left = opts.limit ?? Number.POSITIVE_INFINITY;
  for (const file of manifestFiles(path)) {
    if (left <= 0) return;
    const stream = openJsonl(file, { ...opts, mode: 'sample', limit: left });
    opts.reports?.push(stream.report);
    for await (const s of stream) {
      left--;
      yield s;
    }
  }
}
