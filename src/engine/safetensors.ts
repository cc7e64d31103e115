/**
 * The safetensors format (Hugging Face): 8-byte little-endian header length, a JSON header mapping names to
 * {dtype, shape, data_offsets}, then raw little-endian data.
 *
 * Reading maps the file (native addon): a tensor whose stored dtype is one the kernels use as it is (F32, BF16,
 * F64, I32, BOOL/U8) becomes a view of the mapping — no copy, nothing read until a kernel touches it, and the
 * mapping is private, so writing into such a tensor never changes the file. Other dtypes (F16, I64, …) and
 * conversions are read into a new buffer. Without the native addon (or with `mmap: false`) every tensor is read
 * with positioned reads straight into the tensor's own buffer.
 *
 * The header is validated as the reference implementation does before any data is used: valid UTF-8 JSON object,
 * no duplicate keys, known dtypes, offsets that tile the data section exactly (no overlap, no gap, nothing past the
 * end — a truncated file is named as such), plus bounds on header size and entry count so a hostile header is
 * refused in milliseconds. Only regular files are opened (a FIFO would block the open forever). A file changed in
 * place after it was opened is refused on the next read. Writing is atomic (temporary file + rename): a crash never
 * leaves a half-written file under the final name, and a reader that has the old file mapped keeps a consistent
 * copy (the rename gives the new file a new inode).
 */
import {
  closeSync,
  constants,
  fstatSync,
  fsyncSync,
  openSync,
  readSync,
  renameSync,
  type Stats,
  writeSync,
} from 'node:fs';
import { describeFileKind } from '../util/files.js';
import { nativeAddon } from './backends/native/index.js';
import { allocArray, bytesPer, type DType, f16ToF32, type TypedArray } from './dtype.js';
import { fromArray, type Tensor } from './tensor.js';

export type StDType = 'F64' | 'F32' | 'F16' | 'BF16' | 'I64' | 'I32' | 'I16' | 'I8' | 'U8' | 'BOOL';

const ST_BYTES: Record<StDType, number> = {
  F64: 8,
  F32: 4,
  F16: 2,
  BF16: 2,
  I64: 8,
  I32: 4,
  I16: 2,
  I8: 1,
  U8: 1,
  BOOL: 1,
};

export interface TensorInfo {
  dtype: StDType;
  shape: number[];
  /** Byte range relative to the start of the data section. */
  begin: number;
  end: number;
}

/**
 * Bounds on what a header may describe. 16 MiB holds ~100k tensor entries — far above any real checkpoint shard
 * (a 9B model has ~900 tensors, a 355B MoE ~45k over all its shards) — and parses in well under a second.
 */
export const SAFETENSORS_LIMITS = { headerBytes: 16 * 1024 * 1024, entries: 100_000 };

export interface SafetensorsOpenOptions {
  /**
   * Map the file and return views of the mapping where possible. Default: true when the native addon loaded,
   * unless the environment sets GLMV_MMAP=0 (then every command reads checkpoints into memory).
   */
  mmap?: boolean;
  /**
   * Ask the kernel to back the mapping with 2 MiB pages (madvise MADV_HUGEPAGE; Linux with transparent huge pages in
   * `madvise` or `always` mode, on a file system with large folios such as ext4 or XFS; elsewhere a no-op). A decode
   * step reads every weight once, and with 4 KiB pages every 4 KiB of weight costs a TLB miss. Pages already cached in
   * small pieces by another reader stay small until the kernel drops them. Default: true, unless the environment sets
   * GLMV_HUGEPAGES=0.
   */
  hugePages?: boolean;
}

interface Addon {
  mapFd(fd: number, size: number, hugePages: boolean): unknown;
  mapView(handle: unknown, offset: number, length: number): ArrayBuffer;
  mapAdviseScattered(handle: unknown, offset: number, length: number): void;
}

/** An open safetensors file: the header is parsed and validated; tensors are mapped or read on demand. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  /** True when tensors are views of a memory mapping. */
  readonly mapped: boolean;
  private fd: number;
  private map: unknown = null;
  private readonly dataStart: number;
  private readonly stat: Stats;

  constructor(
    readonly path: string,
    opts: SafetensorsOpenOptions = {},
  ) {
    try {
      // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer forever; regular files ignore it.
      this.fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
    } catch (e) {
      throw new Error(`safetensors: cannot open ${path}: ${(e as Error).message}`);
    }
    try {
      this.stat = fstatSync(this.fd);
      if (!this.stat.isFile())
        throw new Error(
          `is not a regular file (${describeFileKind(this.stat)}); a checkpoint file must be a regular file`,
        );
      const size = this.stat.size;
      const header = parseHeader(this.fd, size, path);
      this.dataStart = header.dataStart;
      Object.assign(this.metadata, header.metadata);
      for (const [name, info] of header.tensors) this.tensors.set(name, info);
      const mmap = opts.mmap ?? process.env.GLMV_MMAP !== '0';
      const addon = mmap ? (nativeAddon() as unknown as Addon | null) : null;
      const huge = opts.hugePages ?? process.env.GLMV_HUGEPAGES !== '0';
      if (addon && size > 0) this.map = addon.mapFd(this.fd, size, huge);
      this.mapped = this.map !== null;
    } catch (e) {
      closeSync(this.fd);
      throw new Error(`safetensors: ${path}: ${(e as Error).message}`);
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /**
   * For a tensor read in scattered rows (an embedding table), before it is first touched: map it with 4 KiB pages and
   * fault its pages in one at a time, without readahead. The kernel maps a whole page-cache folio on a fault, so with
   * 2 MiB folios every row a prompt touches would bring the 2 MiB around it into the RSS. Pages another reader cached
   * in large folios still map whole. A no-op when the file is not mapped.
   */
  adviseScatteredReads(name: string): void {
    const info = this.tensors.get(name);
    if (!info || !this.map) return;
    (nativeAddon() as unknown as Addon).mapAdviseScattered(
      this.map,
      this.dataStart + info.begin,
      info.end - info.begin,
    );
  }

  /**
   * One tensor. F32/BF16/F64/I32/BOOL keep their type (views of the mapping when mapped); F16 becomes float32;
   * I64/I16/I8/U8 become int32 (values outside int32 throw). `as` converts floats on the way in.
   */
  read(name: string, as?: DType): Tensor {
    const info = this.tensors.get(name);
    if (!info) throw new Error(`safetensors: ${this.path} has no tensor '${name}'`);
    if (this.fd < 0) throw new Error(`safetensors: ${this.path} is closed`);
    this.checkUnchanged();
    const n = info.shape.reduce((a, b) => a * b, 1);
    const pos = this.dataStart + info.begin;
    const bytes = info.end - info.begin;
    const native = nativeType(info.dtype);
    let t: Tensor;
    switch (info.dtype) {
      case 'F64':
      case 'F32':
      case 'BF16':
      case 'I32':
      case 'BOOL': {
        const view = this.view(native, pos, n, bytes);
        if (view) {
          t = fromArray(view, info.shape, native);
          break;
        }
        // Straight into the tensor's own buffer: no second copy.
        const arr = allocArray(native, n);
        readInto(this.fd, new Uint8Array(arr.buffer, arr.byteOffset, bytes), pos, this.path, name);
        t = fromArray(arr, info.shape, native);
        break;
      }
      case 'F16': {
        const raw = new Uint16Array(n);
        readInto(this.fd, new Uint8Array(raw.buffer, 0, bytes), pos, this.path, name);
        const out = new Float32Array(n);
        for (let i = 0; i < n; i++) out[i] = f16ToF32(raw[i] as number);
        t = fromArray(out, info.shape, 'float32');
        break;
      }
      default: {
        const raw = new Uint8Array(bytes);
        readInto(this.fd, raw, pos, this.path, name);
        t = fromArray(convertInts(info.dtype, raw, n, name), info.shape, 'int32');
      }
    }
    return as && as !== t.dtype ? t.to(as) : t;
  }

  /** A typed-array view of the mapping, or null (not mapped, or the data is not aligned for its element type). */
  private view(dtype: DType, pos: number, n: number, bytes: number): TypedArray | null {
    if (!this.map || pos % bytesPer(dtype) !== 0) return null;
    const ab = (nativeAddon() as unknown as Addon).mapView(this.map, pos, bytes);
    const Ctor = allocArray(dtype, 0).constructor as new (b: ArrayBuffer, o: number, n: number) => TypedArray;
    return new Ctor(ab, 0, n);
  }

  /** A file rewritten in place (not replaced by rename) since it was opened would give torn or faulting reads. */
  private checkUnchanged(): void {
    const now = fstatSync(this.fd);
    if (now.size !== this.stat.size || now.mtimeMs !== this.stat.mtimeMs)
      throw new Error(
        `safetensors: ${this.path} changed since it was opened (size ${this.stat.size} → ${now.size} bytes, ` +
          `modified ${new Date(now.mtimeMs).toISOString()}); reopen the checkpoint`,
      );
  }

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
    // Views already handed out keep the mapping alive; it is unmapped when the last of them is collected.
    this.map = null;
  }
}

interface Header {
  dataStart: number;
  metadata: Record<string, string>;
  tensors: Array<[string, TensorInfo]>;
}

function parseHeader(fd: number, size: number, path: string): Header {
  if (size < 8) throw new Error(`file is ${size} bytes, too small for a safetensors header`);
  const lenBuf = Buffer.alloc(8);
  readSync(fd, lenBuf, 0, 8, 0);
  const n64 = lenBuf.readBigUInt64LE(0);
  const limit = SAFETENSORS_LIMITS.headerBytes;
  if (n64 > BigInt(limit))
    throw new Error(`header length ${n64} bytes exceeds the limit of ${limit} bytes (not a checkpoint, or hostile)`);
  const n = Number(n64);
  if (n < 2) throw new Error(`header length ${n} is too small for a JSON object`);
  if (8 + n > size)
    throw new Error(
      `header length ${n} runs past the end of the ${size}-byte file (truncated file or not safetensors)`,
    );
  const hb = Buffer.alloc(n);
  readInto(fd, hb, 8, path, 'the header');
  if (hb[0] !== 0x7b) throw new Error('header does not start with "{"');
  let text: string;
  try {
    text = new TextDecoder('utf-8', { fatal: true }).decode(hb);
  } catch {
    throw new Error('header is not valid UTF-8');
  }
  let header: Record<string, unknown>;
  try {
    header = JSON.parse(text);
  } catch (e) {
    throw new Error(`header is not valid JSON (${(e as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    throw new Error('header is not a JSON object');
  const keys = Object.keys(header);
  if (keys.length > SAFETENSORS_LIMITS.entries + 1)
    throw new Error(`header lists ${keys.length} entries, more than the limit of ${SAFETENSORS_LIMITS.entries}`);
  const dup = duplicateKey(text);
  if (dup !== null) throw new Error(`header has the key ${JSON.stringify(dup)} more than once`);

  const dataStart = 8 + n;
  const dataLen = size - dataStart;
  const metadata: Record<string, string> = {};
  const tensors: Array<[string, TensorInfo]> = [];
  for (const name of keys) {
    const v = header[name];
    if (name === '__metadata__') {
      if (typeof v !== 'object' || v === null || Array.isArray(v))
        throw new Error('__metadata__ must be an object of strings');
      for (const [k, s] of Object.entries(v)) {
        if (typeof s !== 'string') throw new Error(`__metadata__ '${k}' must be a string, got ${JSON.stringify(s)}`);
        metadata[k] = s;
      }
      continue;
    }
    if (typeof v !== 'object' || v === null || Array.isArray(v))
      throw new Error(`tensor '${name}': expected {dtype, shape, data_offsets}, got ${JSON.stringify(v)}`);
    const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (typeof info.dtype !== 'string' || !Object.hasOwn(ST_BYTES, info.dtype))
      throw new Error(`tensor '${name}': unsupported dtype ${JSON.stringify(info.dtype)}`);
    if (!Array.isArray(info.shape) || info.shape.some((d) => !Number.isSafeInteger(d) || d < 0))
      throw new Error(`tensor '${name}': invalid shape ${JSON.stringify(info.shape)}`);
    const off = info.data_offsets;
    if (
      !Array.isArray(off) ||
      off.length !== 2 ||
      !off.every((x) => Number.isSafeInteger(x) && x >= 0) ||
      off[0] > off[1]
    )
      throw new Error(`tensor '${name}': invalid data_offsets ${JSON.stringify(off)}`);
    if (off[1] > dataLen)
      throw new Error(
        `tensor '${name}': data_offsets ${JSON.stringify(off)} outside the ${dataLen}-byte data section (truncated file?)`,
      );
    const dt = info.dtype as StDType;
    const expected = (info.shape as number[]).reduce((a, b) => a * b, 1) * ST_BYTES[dt];
    if (off[1] - off[0] !== expected)
      throw new Error(
        `tensor '${name}': ${off[1] - off[0]} bytes for shape [${info.shape}] ${dt} (expected ${expected})`,
      );
    tensors.push([name, { dtype: dt, shape: info.shape as number[], begin: off[0], end: off[1] }]);
  }
  // As the reference: sorted by offset, every tensor starts where the previous one ended, and the last one ends
  // where the file does. Overlapping or duplicated ranges would alias two tensors; gaps hide data.
  const order = [...tensors].sort((a, b) => a[1].begin - b[1].begin || a[1].end - b[1].end);
  let at = 0;
  let prev = '';
  for (const [name, info] of order) {
    if (info.begin < at)
      throw new Error(`tensor '${name}': data_offsets [${info.begin}, ${info.end}] overlap tensor '${prev}'`);
    if (info.begin > at)
      throw new Error(
        `tensor '${name}': data_offsets [${info.begin}, ${info.end}] leave ${info.begin - at} unused bytes after ` +
          (prev ? `tensor '${prev}'` : 'the header'),
      );
    at = info.end;
    prev = name;
  }
  if (at !== dataLen)
    throw new Error(`the data section has ${dataLen - at} bytes after the last tensor (the header describes ${at})`);
  return { dataStart, metadata, tensors };
}

/**
 * The first key that appears twice in one object of a JSON text (JSON.parse keeps the last silently), or null.
 * Runs on text JSON.parse accepted, so only strings and brackets need tracking.
 */
export function duplicateKey(json: string): string | null {
  const stack: Array<Set<string> | null> = [];
  let expectKey = false;
  for (let i = 0; i < json.length; i++) {
    const c = json.charCodeAt(i);
    if (c === 0x22) {
      let j = i + 1;
      let escaped = false;
      for (; j < json.length; j++) {
        const d = json.charCodeAt(j);
        if (d === 0x5c) {
          escaped = true;
          j++;
        } else if (d === 0x22) break;
      }
      const top = stack[stack.length - 1];
      if (expectKey && top) {
        const key = escaped ? (JSON.parse(json.slice(i, j + 1)) as string) : json.slice(i + 1, j);
        if (top.has(key)) return key;
        top.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b) {
      stack.push(new Set());
      expectKey = true;
    } else if (c === 0x5b) {
      stack.push(null);
      expectKey = false;
    } else if (c === 0x7d || c === 0x5d) {
      stack.pop();
      expectKey = false;
    } else if (c === 0x2c) {
      expectKey = stack[stack.length - 1] != null;
    }
  }
  return null;
}

function nativeType(d: StDType): DType {
  switch (d) {
    case 'F64':
      return 'float64';
    case 'F32':
      return 'float32';
    case 'BF16':
      return 'bfloat16';
    case 'F16':
      return 'float32';
    case 'BOOL':
      return 'bool';
    default:
      return 'int32';
  }
}

function readInto(fd: number, dst: Uint8Array, pos: number, path: string, name: string): void {
  let done = 0;
  const CHUNK = 1 << 30;
  while (done < dst.length) {
    const len = Math.min(CHUNK, dst.length - done);
    const got = readSync(fd, dst, done, len, pos + done);
    if (got <= 0) throw new Error(`safetensors: ${path}: unexpected end of file while reading '${name}' (truncated?)`);
    done += got;
  }
}

function convertInts(d: StDType, raw: Uint8Array, n: number, name: string): Int32Array {
  const bytes = new Uint8Array(raw.buffer, raw.byteOffset, n * ST_BYTES[d]);
  const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let v: number;
    if (d === 'I64') {
      const big = dv.getBigInt64(i * 8, true);
      if (big > 2147483647n || big < -2147483648n)
        throw new Error(`safetensors: '${name}' has an int64 value ${big} outside int32`);
      v = Number(big);
    } else if (d === 'I16') v = dv.getInt16(i * 2, true);
    else if (d === 'I8') v = dv.getInt8(i);
    else v = dv.getUint8(i);
    out[i] = v;
  }
  return out;
}

function stType(d: DType): StDType {
  switch (d) {
    case 'float32':
      return 'F32';
    case 'float64':
      return 'F64';
    case 'bfloat16':
      return 'BF16';
    case 'int32':
      return 'I32';
    case 'bool':
      return 'BOOL';
  }
}

/** Bytes to store as they are under a safetensors dtype the engine has no tensor type for (e.g. I64 shapes). */
export interface RawTensor {
  dtype: StDType;
  shape: number[];
  bytes: Uint8Array;
}

/** An int64 tensor of small integers as raw safetensors bytes (compressed-tensors' weight_shape). */
export function int64Raw(values: readonly number[]): RawTensor {
  const a = BigInt64Array.from(values.map((v) => BigInt(v)));
  return { dtype: 'I64', shape: [values.length], bytes: new Uint8Array(a.buffer) };
}

function isRaw(t: Tensor | RawTensor): t is RawTensor {
  return (
    (t as RawTensor).bytes instanceof Uint8Array && typeof (t as RawTensor).dtype === 'string' && !('_storage' in t)
  );
}

/**
 * Writes tensors to `path` atomically. The header lists them in the given order; the header is space-padded so the
 * data section starts 64-byte aligned (the reference writer pads to 8), and the data of tensors whose size is a
 * multiple of 64 bytes comes first, in the given order, then the rest: every weight of a checkpoint then starts on a
 * cache line, in the file and so in its memory mapping, where the decode kernels stream it (their 64-byte loads
 * would otherwise each straddle two lines).
 */
export function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor | RawTensor> | Record<string, Tensor | RawTensor>,
  metadata: Record<string, string> = {},
): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  const sizes = entries.map(([name, t]) => {
    if (!isRaw(t)) {
      t.assertAlive('saveSafetensors');
      return t.size * bytesPer(t.dtype);
    }
    const want = t.shape.reduce((a, b) => a * b, 1) * ST_BYTES[t.dtype];
    if (t.bytes.byteLength !== want)
      throw new Error(
        `saveSafetensors: '${name}' has ${t.bytes.byteLength} bytes for [${t.shape}] ${t.dtype} (expected ${want})`,
      );
    return want;
  });
  const whole = (i: number) => sizes[i]! % 64 === 0;
  const keys = [...entries.keys()];
  const order = [...keys.filter(whole), ...keys.filter((i) => !whole(i))];
  const start = new Array<number>(entries.length);
  let off = 0;
  for (const i of order) {
    start[i] = off;
    off += sizes[i]!;
  }
  for (const [i, [name, t]] of entries.entries())
    header[name] = {
      dtype: isRaw(t) ? t.dtype : stType(t.dtype),
      shape: [...t.shape],
      data_offsets: [start[i]!, start[i]! + sizes[i]!],
    };
  let json = JSON.stringify(header);
  json += ' '.repeat((64 - ((8 + Buffer.byteLength(json)) % 64)) % 64);
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, 'utf8'));
    for (const i of order) {
      const t = entries[i]![1];
      if (isRaw(t)) {
        writeAll(fd, t.bytes);
        continue;
      }
      const b = t.contiguous().buf('saveSafetensors');
      writeAll(fd, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

function writeAll(fd: number, b: Uint8Array): void {
  let done = 0;
  while (done < b.byteLength) done += writeSync(fd, b, done, Math.min(1 << 30, b.byteLength - done));
}

/** Reads every tensor of a file into a Map (small files; use SafetensorsFile for streaming). */
export function loadSafetensors(path: string, as?: DType): Map<string, Tensor> {
  const f = new SafetensorsFile(path);
  try {
    return new Map(f.names().map((n) => [n, f.read(n, as)]));
  } finally {
    f.close();
  }
}
