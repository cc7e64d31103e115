/**
 * Training records with random access: pre-training documents and samples, read from glmv dataset folders through
 * a byte-offset index (one scan that validates every line, then each record is re-read on demand, so a large
 * dataset never sits in memory), or from any other format `openDataset` reads (TSV, parquet, LLaVA, generic JSONL),
 * which are held in memory. Random access is what lets the data order be a pure function of (seed, epoch, cursor),
 * so a resumed run reads exactly the records the uninterrupted one would have read.
 */
import { closeSync, existsSync, openSync, readFileSync, readSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { openDataset } from '../data/formats/index.js';
import { type PretrainDoc, pretrainDocSchema } from '../data/pretrain.js';
import type { Sample } from '../data/sample.js';
import { parseSample, RowError } from '../data/schema.js';
import { manifestFiles, readDatasetInfo } from '../data/store.js';

export type TrainRecord = { type: 'doc'; doc: PretrainDoc } | { type: 'sample'; sample: Sample };

/** A list of records with cheap per-record metadata (no I/O) and on-demand reads. */
export interface RecordSource {
  /** The path it was read from. */
  readonly name: string;
  readonly size: number;
  /** Pre-training kind (docs) or domain (samples). */
  group(i: number): string;
  id(i: number): string;
  /** Difficulty label (samples), if any. */
  difficulty(i: number): number | undefined;
  /** Whether the record has a video. */
  hasVideo(i: number): boolean;
  get(i: number): TrainRecord;
  close(): void;
}

export type SourceFormat = 'auto' | 'dataset' | 'tsv' | 'parquet' | 'llava' | 'jsonl';

/** True for a glmv dataset folder or one of its `.jsonl` manifests (read through the offset index). */
function isGlmvJsonl(path: string, format: SourceFormat): boolean {
  if (format !== 'auto' && format !== 'dataset' && format !== 'jsonl') return false;
  if (!existsSync(path)) throw new Error(`data source ${path}: no such file or folder`);
  if (statSync(path).isDirectory())
    return format !== 'jsonl' && (readDatasetInfo(path) !== null || format === 'dataset' || hasShards(path));
  if (!path.endsWith('.jsonl')) return false;
  // A generic JSONL (no `verifier`/`kind` fields) goes through openDataset's converter.
  const first = readFileSync(path, 'utf8')
    .split('\n')
    .find((l) => l.trim());
  if (!first) return true;
  try {
    const v = JSON.parse(first) as Record<string, unknown>;
    return ('kind' in v && 'content' in v) || ('verifier' in v && 'domain' in v);
  } catch {
    return true; // the scan reports the bad line with its number
  }
}

function hasShards(dir: string): boolean {
  try {
    return manifestFiles(dir).length > 0;
  } catch {
    return false;
  }
}

function resolveDoc(doc: PretrainDoc, base: string): PretrainDoc {
  doc.images = doc.images.map((p) => resolve(base, p));
  if (doc.video?.frames) doc.video.frames = doc.video.frames.map((p) => resolve(base, p));
  if (doc.video?.path) doc.video.path = resolve(base, doc.video.path);
  return doc;
}

function resolveSample(s: Sample, base: string): Sample {
  s.images = s.images.map((p) => resolve(base, p));
  if (s.video?.frames) s.video.frames = s.video.frames.map((p) => resolve(base, p));
  if (s.video?.path) s.video.path = resolve(base, s.video.path);
  return s;
}

function parseLine(text: string, file: string, row: number): TrainRecord {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    throw new RowError(file, row, '(line)', `not valid JSON: ${(e as Error).message}`);
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v))
    throw new RowError(file, row, '(record)', `expected a JSON object, found ${JSON.stringify(v)?.slice(0, 60)}`);
  const o = v as Record<string, unknown>;
  if ('kind' in o && 'content' in o) {
    const r = pretrainDocSchema.safeParse(o);
    if (!r.success) {
      const issue = r.error.issues[0]!;
      throw new RowError(file, row, issue.path.join('.') || '(record)', issue.message);
    }
    return { type: 'doc', doc: r.data as PretrainDoc };
  }
  return { type: 'sample', sample: parseSample(o, file, row) };
}

/** glmv JSONL manifests through a byte-offset index. */
class JsonlSource implements RecordSource {
  readonly size: number;
  private readonly files: string[];
  private readonly fileOf: Uint16Array;
  private readonly start: Float64Array;
  private readonly length: Uint32Array;
  private readonly rowOf: Uint32Array;
  private readonly groups: string[] = [];
  private readonly groupOf: Uint16Array;
  private readonly ids: string[];
  private readonly diffs: Uint8Array;
  private readonly videos: Uint8Array;
  private readonly fds = new Map<number, number>();

  constructor(
    readonly name: string,
    limit: number,
  ) {
    this.files = manifestFiles(name);
    const fileOf: number[] = [];
    const start: number[] = [];
    const length: number[] = [];
    const rowOf: number[] = [];
    const groupOf: number[] = [];
    const ids: string[] = [];
    const diffs: number[] = [];
    const videos: number[] = [];
    const groupIndex = new Map<string, number>();
    outer: for (const [f, file] of this.files.entries()) {
      const buf = readFileSync(file);
      let pos = 0;
      let row = 0;
      while (pos < buf.length) {
        let end = buf.indexOf(0x0a, pos);
        if (end < 0) end = buf.length;
        row++;
        const text = buf.toString('utf8', pos, end);
        if (text.trim()) {
          if (ids.length >= limit) break outer;
          const rec = parseLine(text, file, row);
          const group = rec.type === 'doc' ? rec.doc.kind : rec.sample.domain;
          let g = groupIndex.get(group);
          if (g === undefined) {
            g = this.groups.length;
            this.groups.push(group);
            groupIndex.set(group, g);
          }
          fileOf.push(f);
          start.push(pos);
          length.push(end - pos);
          rowOf.push(row);
          groupOf.push(g);
          ids.push(rec.type === 'doc' ? rec.doc.id : rec.sample.id);
          diffs.push(rec.type === 'sample' ? (rec.sample.difficulty ?? 0) : 0);
          videos.push((rec.type === 'doc' ? rec.doc.video : rec.sample.video) ? 1 : 0);
        }
        pos = end + 1;
      }
    }
    this.size = ids.length;
    this.fileOf = Uint16Array.from(fileOf);
    this.start = Float64Array.from(start);
    this.length = Uint32Array.from(length);
    this.rowOf = Uint32Array.from(rowOf);
    this.groupOf = Uint16Array.from(groupOf);
    this.ids = ids;
    this.diffs = Uint8Array.from(diffs);
    this.videos = Uint8Array.from(videos);
  }

  group(i: number): string {
    return this.groups[this.groupOf[i]!]!;
  }

  id(i: number): string {
    return this.ids[i]!;
  }

  difficulty(i: number): number | undefined {
    return this.diffs[i] || undefined;
  }

  hasVideo(i: number): boolean {
    return this.videos[i] === 1;
  }

  get(i: number): TrainRecord {
    if (!(i >= 0 && i < this.size))
      throw new Error(`data source ${this.name}: record ${i} out of range [0, ${this.size})`);
    const f = this.fileOf[i]!;
    const file = this.files[f]!;
    let fd = this.fds.get(f);
    if (fd === undefined) {
      fd = openSync(file, 'r');
      this.fds.set(f, fd);
    }
    const buf = Buffer.allocUnsafe(this.length[i]!);
    const n = readSync(fd, buf, 0, buf.length, this.start[i]!);
    if (n !== buf.length)
      throw new Error(`data source ${file}: row ${this.rowOf[i]} changed on disk while training (short read)`);
    const rec = parseLine(buf.toString('utf8'), file, this.rowOf[i]!);
    const base = dirname(file);
    return rec.type === 'doc'
      ? { type: 'doc', doc: resolveDoc(rec.doc, base) }
      : { type: 'sample', sample: resolveSample(rec.sample, base) };
  }

  close(): void {
    for (const fd of this.fds.values()) closeSync(fd);
    this.fds.clear();
  }
}

/** Samples of any other format, held in memory. */
class MemorySource implements RecordSource {
  constructor(
    readonly name: string,
    private readonly samples: Sample[],
  ) {}

  get size(): number {
    return this.samples.length;
  }

  group(i: number): string {
    return this.samples[i]!.domain;
  }

  id(i: number): string {
    return this.samples[i]!.id;
  }

  difficulty(i: number): number | undefined {
    return this.samples[i]!.difficulty;
  }

  hasVideo(i: number): boolean {
    return !!this.samples[i]!.video;
  }

  get(i: number): TrainRecord {
    const s = this.samples[i];
    if (!s) throw new Error(`data source ${this.name}: record ${i} out of range [0, ${this.size})`);
    return { type: 'sample', sample: structuredClone(s) };
  }

  close(): void {}
}

/** Opens a data source; glmv datasets are indexed, other formats are loaded. Empty sources are an error. */
export async function openRecords(
  path: string,
  opts: { format?: SourceFormat; limit?: number } = {},
): Promise<RecordSource> {
  const format = opts.format ?? 'auto';
  const limit = opts.limit ?? Number.POSITIVE_INFINITY;
  let src: RecordSource;
  if (isGlmvJsonl(path, format)) src = new JsonlSource(path, limit);
  else {
    const samples: Sample[] = [];
    for await (const s of await openDataset(path, { format, limit })) samples.push(s);
    src = new MemorySource(path, samples);
  }
  if (src.size === 0) throw new Error(`data source ${path}: no records found`);
  return src;
}
