/**
 * The safetensors format (Hugging Face): 8-byte little-endian header length, a JSON header mapping names to
 * {dtype, shape, data_offsets}, then raw little-endian data. Reading is streamed per tensor with positioned reads
 * into the tensor's own buffer, so a checkpoint bigger than half of RAM loads without a second copy. Writing is
 * atomic (temporary file + rename): a crash never leaves a half-written file under the final name.
 */
import { closeSync, fstatSync, fsyncSync, openSync, readSync, renameSync, writeSync } from 'node:fs';
import { allocArray, bytesPer, type DType, f16ToF32 } from './dtype.js';
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

const MAX_HEADER = 512 * 1024 * 1024;

/** An open safetensors file: the header is parsed and validated; tensors are read on demand. */
export class SafetensorsFile {
  readonly tensors = new Map<string, TensorInfo>();
  readonly metadata: Record<string, string> = {};
  private fd: number;
  private readonly dataStart: number;

  constructor(readonly path: string) {
    try {
      this.fd = openSync(path, 'r');
    } catch (e) {
      throw new Error(`safetensors: cannot open ${path}: ${(e as Error).message}`);
    }
    try {
      const size = fstatSync(this.fd).size;
      if (size < 8) throw new Error(`file is ${size} bytes, too small for a header`);
      const lenBuf = Buffer.alloc(8);
      readSync(this.fd, lenBuf, 0, 8, 0);
      const n = Number(lenBuf.readBigUInt64LE(0));
      if (n <= 0 || n > MAX_HEADER || 8 + n > size)
        throw new Error(`header length ${n} is invalid for a ${size}-byte file`);
      const hb = Buffer.alloc(n);
      readSync(this.fd, hb, 0, n, 8);
      let header: Record<string, unknown>;
      try {
        header = JSON.parse(hb.toString('utf8'));
      } catch (e) {
        throw new Error(`header is not valid JSON (${(e as Error).message})`);
      }
      if (typeof header !== 'object' || header === null || Array.isArray(header))
        throw new Error('header is not a JSON object');
      this.dataStart = 8 + n;
      const dataLen = size - this.dataStart;
      for (const [name, v] of Object.entries(header)) {
        if (name === '__metadata__') {
          Object.assign(this.metadata, v as object);
          continue;
        }
        const info = v as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
        if (typeof info.dtype !== 'string' || !(info.dtype in ST_BYTES))
          throw new Error(`tensor '${name}': unsupported dtype ${JSON.stringify(info.dtype)}`);
        if (!Array.isArray(info.shape) || info.shape.some((d) => !Number.isInteger(d) || d < 0))
          throw new Error(`tensor '${name}': invalid shape ${JSON.stringify(info.shape)}`);
        const off = info.data_offsets;
        if (
          !Array.isArray(off) ||
          off.length !== 2 ||
          !off.every((x) => Number.isInteger(x) && x >= 0) ||
          off[0] > off[1] ||
          off[1] > dataLen
        ) {
          throw new Error(
            `tensor '${name}': data_offsets ${JSON.stringify(off)} outside the ${dataLen}-byte data section`,
          );
        }
        const dt = info.dtype as StDType;
        const expected = (info.shape as number[]).reduce((a, b) => a * b, 1) * ST_BYTES[dt];
        if (off[1] - off[0] !== expected)
          throw new Error(
            `tensor '${name}': ${off[1] - off[0]} bytes for shape [${info.shape}] ${dt} (expected ${expected})`,
          );
        this.tensors.set(name, { dtype: dt, shape: info.shape as number[], begin: off[0], end: off[1] });
      }
    } catch (e) {
      closeSync(this.fd);
      throw new Error(`safetensors: ${path}: ${(e as Error).message}`);
    }
  }

  names(): string[] {
    return [...this.tensors.keys()];
  }

  /**
   * Reads one tensor. F32/BF16/F64/I32/BOOL keep their type; F16 becomes float32 (or bfloat16 when asked);
   * I64/I16/I8/U8 become int32 (values outside int32 throw). `as` converts floats on the way in.
   */
  read(name: string, as?: DType): Tensor {
    const info = this.tensors.get(name);
    if (!info) throw new Error(`safetensors: ${this.path} has no tensor '${name}'`);
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

  close(): void {
    if (this.fd >= 0) closeSync(this.fd);
    this.fd = -1;
  }
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
    if (got <= 0) throw new Error(`safetensors: ${path}: unexpected end of file while reading '${name}'`);
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

/**
 * Writes tensors (in the given order) to `path` atomically. The header is space-padded so the data section starts
 * 8-byte aligned, as the reference writer does.
 */
export function saveSafetensors(
  path: string,
  tensors: Map<string, Tensor> | Record<string, Tensor>,
  metadata: Record<string, string> = {},
): void {
  const entries = tensors instanceof Map ? [...tensors.entries()] : Object.entries(tensors);
  const header: Record<string, unknown> = {};
  if (Object.keys(metadata).length) header.__metadata__ = metadata;
  let off = 0;
  const chunks: Array<{ t: Tensor; bytes: number }> = [];
  for (const [name, t] of entries) {
    t.assertAlive('saveSafetensors');
    const bytes = t.size * bytesPer(t.dtype);
    header[name] = { dtype: stType(t.dtype), shape: [...t.shape], data_offsets: [off, off + bytes] };
    chunks.push({ t, bytes });
    off += bytes;
  }
  let json = JSON.stringify(header);
  while ((8 + Buffer.byteLength(json)) % 8 !== 0) json += ' ';
  const tmp = `${path}.tmp-${process.pid}-${Date.now()}`;
  const fd = openSync(tmp, 'w');
  try {
    const len = Buffer.alloc(8);
    len.writeBigUInt64LE(BigInt(Buffer.byteLength(json)));
    writeSync(fd, len);
    writeSync(fd, Buffer.from(json, 'utf8'));
    for (const { t } of chunks) {
      const c = t.contiguous();
      const b = c.buf('saveSafetensors');
      writeSync(fd, new Uint8Array(b.buffer, b.byteOffset, b.byteLength));
    }
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
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
