/**
 * Shared machinery of the loaders: a streaming `SampleStream` that counts rows, turns malformed rows into
 * `RowError`s (thrown, or skipped and reported — never dropped silently), and helpers for embedded images.
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, writeFileSync } from 'node:fs';
import { basename, extname, resolve } from 'node:path';
import type { Domain, Sample, VerifierSpec } from '../sample.js';
import { DOMAINS, VERIFIER_TYPES } from '../sample.js';
import { RowError } from '../schema.js';

export { RowError };

export interface LoadOptions {
  /** 'throw' (default): the first malformed row stops loading; 'skip': skip it and record it in `report`. */
  onError?: 'throw' | 'skip';
  /** Stop after this many samples. */
  limit?: number;
  /** Defaults for fields external data lacks. */
  split?: Sample['split'];
  domain?: Domain;
  source?: string;
  verifier?: VerifierSpec;
  /** Folder relative image paths are resolved against (default: the data file's folder). */
  imageRoot?: string;
  /** Where embedded images (base64 / bytes) are written (default: `<file>.images/` beside the data file). */
  cacheDir?: string;
  /** Keep at most this many RowErrors in the report (all are counted). */
  maxErrorsKept?: number;
}

export interface LoadReport {
  file: string;
  format: string;
  /** Data rows read (header excluded). */
  rows: number;
  samples: number;
  skipped: number;
  errors: RowError[];
}

export interface RawRow {
  /** 1-based data row number (for JSON arrays: element index + 1; for text formats: the line of the record). */
  row: number;
  value: unknown;
}

export type Convert = (raw: RawRow) => Sample[] | Promise<Sample[]>;

export class SampleStream implements AsyncIterable<Sample> {
  readonly report: LoadReport;
  private used = false;

  constructor(
    file: string,
    format: string,
    private readonly rows: () => AsyncIterable<RawRow>,
    private readonly convert: Convert,
    private readonly opts: LoadOptions = {},
  ) {
    this.report = { file, format, rows: 0, samples: 0, skipped: 0, errors: [] };
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Sample> {
    if (this.used) throw new Error(`${this.report.file}: a SampleStream can be iterated once; open the file again`);
    this.used = true;
    const limit = this.opts.limit ?? Number.POSITIVE_INFINITY;
    const keep = this.opts.maxErrorsKept ?? 100;
    if (this.report.samples >= limit) return;
    for await (const raw of this.rows()) {
      this.report.rows++;
      let out: Sample[];
      try {
        out = await this.convert(raw);
      } catch (e) {
        if (!(e instanceof RowError) || this.opts.onError !== 'skip') throw e;
        this.report.skipped++;
        if (this.report.errors.length < keep) this.report.errors.push(e);
        continue;
      }
      for (const s of out) {
        this.report.samples++;
        yield s;
        if (this.report.samples >= limit) return;
      }
    }
  }

  async toArray(): Promise<Sample[]> {
    const all: Sample[] = [];
    for await (const s of this) all.push(s);
    return all;
  }
}

/** One-line summary of a load report, e.g. for CLI output. */
export function summarizeReport(r: LoadReport): string {
  const head = `${r.file} (${r.format}): ${r.rows} rows, ${r.samples} samples, ${r.skipped} malformed rows skipped`;
  if (r.skipped === 0) return head;
  const shown = r.errors.slice(0, 5).map((e) => `  ${e.message}`);
  const more = r.skipped > shown.length ? [`  … and ${r.skipped - shown.length} more`] : [];
  return [head, ...shown, ...more].join('\n');
}

export function checkDefaults(opts: LoadOptions, file: string): void {
  if (opts.domain !== undefined && !DOMAINS.includes(opts.domain)) {
    throw new Error(`${file}: option domain must be one of ${DOMAINS.join(', ')}, got ${opts.domain}`);
  }
  if (opts.verifier !== undefined && !VERIFIER_TYPES.includes(opts.verifier.type)) {
    throw new Error(`${file}: option verifier must be one of ${VERIFIER_TYPES.join(', ')}, got ${opts.verifier.type}`);
  }
  if (opts.onError !== undefined && opts.onError !== 'throw' && opts.onError !== 'skip') {
    throw new Error(`${file}: option onError must be 'throw' or 'skip', got ${opts.onError}`);
  }
  if (!existsSync(file)) throw new Error(`${file}: no such file`);
}

/** Dataset name from a file path (the default `source`). */
export function sourceName(file: string): string {
  return basename(file, extname(file));
}

/** Image file extension from magic bytes; null when the bytes are not an image we know. */
export function sniffImage(buf: Uint8Array): string | null {
  if (buf.length >= 8 && buf[0] === 0x89 && buf[1] === 0x50 && buf[2] === 0x4e && buf[3] === 0x47) return 'png';
  if (buf.length >= 3 && buf[0] === 0xff && buf[1] === 0xd8 && buf[2] === 0xff) return 'jpg';
  if (buf.length >= 6 && buf[0] === 0x47 && buf[1] === 0x49 && buf[2] === 0x46) return 'gif';
  if (buf.length >= 12 && buf[0] === 0x52 && buf[1] === 0x49 && buf[8] === 0x57 && buf[9] === 0x45) return 'webp';
  if (buf.length >= 2 && buf[0] === 0x42 && buf[1] === 0x4d) return 'bmp';
  if (
    buf.length >= 4 &&
    ((buf[0] === 0x49 && buf[1] === 0x49) || (buf[0] === 0x4d && buf[1] === 0x4d)) &&
    (buf[2] === 42 || buf[3] === 42)
  )
    return 'tif';
  return null;
}

/**
 * Writes embedded image bytes to the cache folder under a content hash (so duplicates are stored once and reruns
 * reuse the files) and returns the absolute path. Throws RowError when the bytes are not an image.
 */
export function storeImage(bytes: Uint8Array, cacheDir: string, file: string, row: number, field: string): string {
  const ext = sniffImage(bytes);
  if (!ext) {
    const head = Buffer.from(bytes.subarray(0, 8)).toString('hex');
    throw new RowError(
      file,
      row,
      field,
      `expected image bytes (PNG/JPEG/GIF/WebP/BMP/TIFF), found ${bytes.length} bytes starting ${head || '(empty)'}`,
    );
  }
  const name = `${createHash('sha1').update(bytes).digest('hex').slice(0, 20)}.${ext}`;
  const path = resolve(cacheDir, name);
  if (!existsSync(path)) {
    mkdirSync(cacheDir, { recursive: true });
    // Write then rename so a killed run never leaves a truncated image that later runs would trust.
    const tmp = `${path}.${process.pid}.tmp`;
    writeFileSync(tmp, bytes);
    renameSync(tmp, path);
  }
  return path;
}

const BASE64_RE = /^[A-Za-z0-9+/\r\n]+={0,2}\s*$/;

/** Decodes a base64 image string (optionally a data: URL); RowError if it is not base64 of an image. */
export function decodeBase64Image(text: string, file: string, row: number, field: string): Uint8Array {
  let t = text.trim();
  const m = /^data:image\/[a-z+.-]+;base64,/i.exec(t);
  if (m) t = t.slice(m[0].length);
  if (t.length === 0) throw new RowError(file, row, field, 'expected a base64-encoded image, found an empty string');
  if (!BASE64_RE.test(t.slice(0, 4096))) {
    throw new RowError(
      file,
      row,
      field,
      `expected a base64-encoded image, found text starting ${JSON.stringify(t.slice(0, 30))}`,
    );
  }
  return Buffer.from(t, 'base64');
}

/** Resolves an image path against a root and checks that the file exists. */
export function resolveImagePath(p: string, root: string, file: string, row: number, field: string): string {
  const abs = resolve(root, p);
  if (!existsSync(abs)) throw new RowError(file, row, field, `image file not found: ${abs}`);
  return abs;
}

/** Default cache folder for a data file's embedded images. */
export function defaultCacheDir(file: string): string {
  return `${resolve(file)}.images`;
}

/**
 * Parses the string form of a Python/JSON list of strings, as pandas writes list columns to TSV
 * (`['a', "b's"]`). Returns null when the text is not such a list.
 */
export function parseListLiteral(text: string): string[] | null {
  const t = text.trim();
  if (!t.startsWith('[') || !t.endsWith(']')) return null;
  try {
    const v = JSON.parse(t);
    if (Array.isArray(v) && v.every((x) => typeof x === 'string' || typeof x === 'number')) return v.map(String);
  } catch {
    // Not JSON: fall through to the Python literal reader.
  }
  const out: string[] = [];
  let i = 1;
  const skipWs = () => {
    while (i < t.length && /\s/.test(t[i]!)) i++;
  };
  skipWs();
  if (t[i] === ']') return i === t.length - 1 ? [] : null;
  for (;;) {
    skipWs();
    const q = t[i];
    if (q !== "'" && q !== '"') return null;
    i++;
    let s = '';
    while (i < t.length && t[i] !== q) {
      if (t[i] === '\\' && i + 1 < t.length) {
        const c = t[i + 1]!;
        s += c === 'n' ? '\n' : c === 't' ? '\t' : c;
        i += 2;
      } else s += t[i++];
    }
    if (i >= t.length) return null;
    i++;
    out.push(s);
    skipWs();
    if (t[i] === ',') {
      i++;
      skipWs();
      if (t[i] === ']' && i === t.length - 1) return out;
      continue;
    }
    if (t[i] === ']' && i === t.length - 1) return out;
    return null;
  }
}
