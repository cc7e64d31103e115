/**
 * GGUF (v3) writer and a GLM-4.1V text-decoder → llama.cpp `glm4` converter, for the llama.cpp peer of bench:9b.
 * Bench-only: the product never reads or writes GGUF.
 *
 * File layout (little-endian): magic "GGUF", version u32 = 3, tensor count u64, metadata count u64; metadata
 * entries (key: u64 length + UTF-8, value type u32, value; arrays: item type u32, count u64, items); tensor infos
 * (name, n_dims u32, ne[] u64 innermost first, ggml type u32, data offset u64 relative to the data section); padding
 * to `general.alignment` (32); the data, each tensor starting at a multiple of the alignment.
 *
 * Block formats (ggml): Q8_0 = 32 values as fp16 d = amax/127 + 32 int8 q = round(x/d) (34 bytes);
 * Q4_0 = 32 values as fp16 d = m/−8 (m: the value of largest magnitude, sign kept) + 16 bytes of nibbles
 * q = min(15, ⌊x/d + 8.5⌋), value = (q − 8)·d; byte j holds value j in its low nibble and value j + 16 in its high one.
 *
 * Mapping of the GLM-4.1V decoder (names under model.language_model.) to llama.cpp's glm4 tensors:
 *   embed_tokens → token_embd, norm → output_norm, lm_head → output (omitted when tied),
 *   layers.N.input_layernorm → blk.N.attn_norm, self_attn.{q,k,v}_proj.{weight,bias} → attn_{q,k,v}.{weight,bias},
 *   self_attn.o_proj → attn_output, post_self_attn_layernorm → post_attention_norm,
 *   post_attention_layernorm → ffn_norm, mlp.gate_up_proj → ffn_up (kept fused: llama.cpp's glm4 splits the
 *   [2I, H] projection into gate (first half, SiLU) and up), mlp.down_proj → ffn_down, post_mlp_layernorm → post_ffw_norm.
 * Rotary: GLM-4.1V rotates interleaved pairs (2i, 2i+1) of the first head_dim·partial_rotary_factor dims with
 * frequency θ^(−2i/rotary_dim); llama.cpp's glm4 without M-RoPE sections uses the "normal" rope, the same pairs and
 * frequencies, so no q/k rows are permuted. Text-only positions make the three M-RoPE axes equal, so the plain rope is
 * exact for text (the vision tower is not converted).
 */
import { closeSync, existsSync, openSync, readFileSync, renameSync, rmSync, statfsSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { f32ToBf16, type Tensor } from '../../src/engine/index.js';
import { CheckpointReader, legacyName } from '../../src/model/checkpoint.js';
import { loadConfig } from '../../src/model/config.js';
import { Progress } from '../../src/util/progress.js';

export type GgmlType = 'F32' | 'F16' | 'BF16' | 'Q8_0' | 'Q4_0';

/** ggml type ids, values per block and bytes per block. */
export const GGML_TYPES: Record<GgmlType, { id: number; block: number; bytes: number }> = {
  F32: { id: 0, block: 1, bytes: 4 },
  F16: { id: 1, block: 1, bytes: 2 },
  Q4_0: { id: 2, block: 32, bytes: 18 },
  Q8_0: { id: 8, block: 32, bytes: 34 },
  BF16: { id: 30, block: 1, bytes: 2 },
};

/** llama.cpp's general.file_type for a file whose matrices are mostly of one type. */
const FILE_TYPE: Record<GgmlType, number> = { F32: 0, F16: 1, Q4_0: 2, Q8_0: 7, BF16: 32 };

export const GGUF_MAGIC = 0x46554747;
export const GGUF_VERSION = 3;
export const GGUF_ALIGNMENT = 32;

type Scalar = 'uint8' | 'int8' | 'uint16' | 'int16' | 'uint32' | 'int32' | 'float32' | 'bool' | 'string';
const VALUE_TYPE: Record<Scalar | 'array' | 'uint64' | 'int64' | 'float64', number> = {
  uint8: 0,
  int8: 1,
  uint16: 2,
  int16: 3,
  uint32: 4,
  int32: 5,
  float32: 6,
  bool: 7,
  string: 8,
  array: 9,
  uint64: 10,
  int64: 11,
  float64: 12,
};

export type GgufValue =
  | { type: Exclude<Scalar, 'string' | 'bool'>; value: number }
  | { type: 'bool'; value: boolean }
  | { type: 'string'; value: string }
  | { type: 'array'; itemType: Exclude<Scalar, 'bool'>; value: ReadonlyArray<number | string> };

/** A tensor to write: `shape` row-major (outermost first, as in safetensors); `rows(a, b)` gives rows [a, b). */
export interface GgufTensor {
  name: string;
  shape: readonly number[];
  type: GgmlType;
  /** float32 values of rows [start, end) of the tensor viewed as [rows, shape[last]]. */
  rows: (start: number, end: number) => Float32Array;
}

// ---------------------------------------------------------------------------------------------------------------
// Number formats

const f32Buf = new Float32Array(1);
const u32Buf = new Uint32Array(f32Buf.buffer);

/** float32 → IEEE half bits, round to nearest even (as the F16C instructions ggml uses); overflow → ±inf. */
export function f32ToF16(x: number): number {
  f32Buf[0] = x;
  const b = u32Buf[0] as number;
  const sign = (b >>> 16) & 0x8000;
  const exp = (b >>> 23) & 0xff;
  const mant = b & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  const e = exp - 112; // rebias 127 → 15
  if (e >= 0x1f) return sign | 0x7c00;
  if (e <= 0) {
    // Half subnormal: h = m24 / 2^(14 − e), rounded to nearest even.
    const shift = 14 - e;
    if (shift > 24) return sign;
    const m24 = mant | 0x800000;
    let h = m24 >>> shift;
    const rem = m24 & ((1 << shift) - 1);
    const half = 1 << (shift - 1);
    if (rem > half || (rem === half && h & 1)) h++;
    return sign | h;
  }
  let h = (e << 10) | (mant >>> 13);
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && h & 1)) h++; // a carry into the exponent is the right rounding (up to inf)
  return sign | h;
}

/** IEEE half bits → number. */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 0x1f) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

/** C's roundf: halves away from zero. */
const roundAway = (v: number) => (v >= 0 ? Math.floor(v + 0.5) : -Math.floor(-v + 0.5));

/** Encodes `src` (a multiple of the type's block length) into `dst` at byte `at`; returns the bytes written. */
export function encode(type: GgmlType, src: Float32Array, dst: Uint8Array, at = 0): number {
  const { block, bytes } = GGML_TYPES[type];
  if (src.length % block !== 0)
    throw new Error(`gguf: ${type} encodes blocks of ${block} values, got a row of ${src.length}`);
  const n = src.length;
  const out = (n / block) * bytes;
  if (at + out > dst.length) throw new Error(`gguf: ${out} bytes do not fit the buffer at ${at}`);
  const u16 = (o: number, v: number) => {
    dst[o] = v & 0xff;
    dst[o + 1] = v >>> 8;
  };
  switch (type) {
    case 'F32':
      dst.set(new Uint8Array(src.buffer, src.byteOffset, 4 * n), at); // little-endian hosts (x86, arm64)
      break;
    case 'F16':
      for (let i = 0; i < n; i++) u16(at + 2 * i, f32ToF16(src[i] as number));
      break;
    case 'BF16':
      for (let i = 0; i < n; i++) u16(at + 2 * i, f32ToBf16(src[i] as number));
      break;
    case 'Q8_0':
      for (let b = 0, o = at; b < n; b += 32, o += bytes) {
        let amax = 0;
        for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(src[b + j] as number));
        const d = Math.fround(amax / 127);
        const id = d ? Math.fround(1 / d) : 0;
        u16(o, f32ToF16(d));
        for (let j = 0; j < 32; j++) dst[o + 2 + j] = roundAway(Math.fround((src[b + j] as number) * id)) & 0xff;
      }
      break;
    case 'Q4_0':
      for (let b = 0, o = at; b < n; b += 32, o += bytes) {
        let amax = 0;
        let max = 0;
        for (let j = 0; j < 32; j++) {
          const v = src[b + j] as number;
          if (Math.abs(v) > amax) {
            amax = Math.abs(v);
            max = v;
          }
        }
        const d = Math.fround(max / -8);
        const id = d ? Math.fround(1 / d) : 0;
        u16(o, f32ToF16(d));
        // x·id ∈ [−8, 8], so x·id + 8.5 ≥ 0.5 and truncation is the floor.
        for (let j = 0; j < 16; j++) {
          const lo = Math.min(15, Math.trunc(Math.fround(Math.fround((src[b + j] as number) * id) + 8.5)));
          const hi = Math.min(15, Math.trunc(Math.fround(Math.fround((src[b + 16 + j] as number) * id) + 8.5)));
          dst[o + 2 + j] = lo | (hi << 4);
        }
      }
      break;
  }
  return out;
}

/** Bytes of a tensor's data. */
export function tensorBytes(shape: readonly number[], type: GgmlType): number {
  const { block, bytes } = GGML_TYPES[type];
  const row = shape[shape.length - 1] ?? 1;
  if (row % block !== 0)
    throw new Error(`gguf: ${type} needs rows that are a multiple of ${block} values, got shape [${shape}]`);
  return (shape.reduce((a, b) => a * b, 1) / block) * bytes;
}

const align = (n: number, a: number) => Math.ceil(n / a) * a;

// ---------------------------------------------------------------------------------------------------------------
// Writer

class ByteSink {
  private parts: Buffer[] = [];
  length = 0;
  push(b: Buffer): void {
    this.parts.push(b);
    this.length += b.length;
  }
  u32(v: number): void {
    const b = Buffer.alloc(4);
    b.writeUInt32LE(v);
    this.push(b);
  }
  u64(v: number): void {
    const b = Buffer.alloc(8);
    b.writeBigUInt64LE(BigInt(v));
    this.push(b);
  }
  str(s: string): void {
    const b = Buffer.from(s, 'utf8');
    this.u64(b.length);
    this.push(b);
  }
  scalar(type: Exclude<Scalar, 'bool'> | 'bool', v: number | string | boolean): void {
    if (type === 'string') {
      this.str(String(v));
      return;
    }
    const size = { bool: 1, uint8: 1, int8: 1, uint16: 2, int16: 2, uint32: 4, int32: 4, float32: 4 }[type];
    const b = Buffer.alloc(size);
    const n = Number(v);
    if (type === 'bool' || type === 'uint8') b.writeUInt8(n);
    else if (type === 'int8') b.writeInt8(n);
    else if (type === 'uint16') b.writeUInt16LE(n);
    else if (type === 'int16') b.writeInt16LE(n);
    else if (type === 'uint32') b.writeUInt32LE(n);
    else if (type === 'int32') b.writeInt32LE(n);
    else b.writeFloatLE(n);
    this.push(b);
  }
  concat(): Buffer {
    return Buffer.concat(this.parts, this.length);
  }
}

export interface WriteGgufOptions {
  /** Refuse to start unless the file's folder has this many bytes free beyond the file (default 1 GiB). */
  reserveBytes?: number;
  progress?: boolean;
  label?: string;
}

/** The header (everything before the data section) and the data offset of each tensor. */
export function ggufHeader(
  meta: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly Pick<GgufTensor, 'name' | 'shape' | 'type'>[],
): { header: Buffer; offsets: number[]; dataBytes: number } {
  const h = new ByteSink();
  h.u32(GGUF_MAGIC);
  h.u32(GGUF_VERSION);
  h.u64(tensors.length);
  h.u64(meta.length);
  const keys = new Set<string>();
  for (const [key, v] of meta) {
    if (keys.has(key)) throw new Error(`gguf: metadata key ${key} given twice`);
    keys.add(key);
    h.str(key);
    h.u32(VALUE_TYPE[v.type]);
    if (v.type === 'array') {
      h.u32(VALUE_TYPE[v.itemType]);
      h.u64(v.value.length);
      for (const x of v.value) h.scalar(v.itemType, x);
    } else h.scalar(v.type, v.value);
  }
  const offsets: number[] = [];
  let at = 0;
  for (const t of tensors) {
    if (t.shape.length < 1 || t.shape.length > 4 || t.shape.some((d) => !Number.isInteger(d) || d <= 0))
      throw new Error(`gguf: tensor ${t.name} has shape [${t.shape}]; expected 1 to 4 positive dimensions`);
    h.str(t.name);
    h.u32(t.shape.length);
    for (const d of [...t.shape].reverse()) h.u64(d);
    h.u32(GGML_TYPES[t.type].id);
    h.u64(at);
    offsets.push(at);
    at = align(at + tensorBytes(t.shape, t.type), GGUF_ALIGNMENT);
  }
  const header = h.concat();
  const padded = Buffer.alloc(align(header.length, GGUF_ALIGNMENT));
  header.copy(padded);
  return { header: padded, offsets, dataBytes: at };
}

/**
 * Writes a GGUF file (to `path.tmp`, renamed when complete). Tensor data is produced and encoded in chunks of rows,
 * so a 9B checkpoint converts in bounded memory.
 */
export function writeGguf(
  path: string,
  meta: ReadonlyArray<readonly [string, GgufValue]>,
  tensors: readonly GgufTensor[],
  opts: WriteGgufOptions = {},
): { bytes: number; seconds: number } {
  const t0 = performance.now();
  const { header, offsets, dataBytes } = ggufHeader(meta, tensors);
  const total = header.length + dataBytes;
  const reserve = opts.reserveBytes ?? 1024 ** 3;
  const fs = statfsSync(dirname(path));
  const free = fs.bavail * fs.bsize;
  if (free < total + reserve)
    throw new Error(
      `gguf: ${path} needs ${(total / 1e9).toFixed(2)} GB and ${(reserve / 1e9).toFixed(1)} GB must stay free; ` +
        `the disk has ${(free / 1e9).toFixed(2)} GB free`,
    );
  const tmp = `${path}.tmp`;
  const fd = openSync(tmp, 'w');
  const bar = opts.progress === false ? null : new Progress({ label: opts.label ?? 'gguf', total: tensors.length });
  try {
    writeSync(fd, header);
    let pos = 0;
    tensors.forEach((t, i) => {
      if (pos < (offsets[i] as number)) writeSync(fd, Buffer.alloc((offsets[i] as number) - pos));
      pos = offsets[i] as number;
      const cols = t.shape[t.shape.length - 1] as number;
      const nRows = t.shape.slice(0, -1).reduce((a, b) => a * b, 1);
      const rowBytes = tensorBytes([cols], t.type);
      const chunk = Math.max(1, Math.floor((4 << 20) / cols));
      const buf = Buffer.alloc(chunk * rowBytes);
      for (let r = 0; r < nRows; r += chunk) {
        const end = Math.min(nRows, r + chunk);
        const src = t.rows(r, end);
        if (src.length !== (end - r) * cols)
          throw new Error(
            `gguf: ${t.name} rows [${r}, ${end}) gave ${src.length} values, expected ${(end - r) * cols}`,
          );
        const n = encode(t.type, src, buf);
        writeSync(fd, buf, 0, n);
        pos += n;
      }
      bar?.update(i + 1, t.name);
    });
    if (pos < dataBytes) writeSync(fd, Buffer.alloc(dataBytes - pos));
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    bar?.stop();
    throw e;
  }
  closeSync(fd);
  bar?.stop();
  renameSync(tmp, path);
  return { bytes: total, seconds: (performance.now() - t0) / 1000 };
}

// ---------------------------------------------------------------------------------------------------------------
// GLM-4.1V text decoder → llama.cpp glm4

export interface ConvertOptions {
  /** Type of the attention and MLP matrices. */
  weights: GgmlType;
  /** Type of token_embd (default: `weights`). */
  embeddings?: GgmlType;
  /** Type of output (lm_head) (default: `weights`). */
  head?: GgmlType;
  reserveBytes?: number;
  progress?: boolean;
}

/** Rows [a, b) of a checkpoint tensor viewed as [rows, last dim], as float32 (bf16 widened bit-exactly). */
function tensorRows(t: Tensor): (a: number, b: number) => Float32Array {
  const cols = t.shape[t.shape.length - 1] as number;
  const data = t.buf('gguf');
  const bf16 = t.dtype === 'bfloat16';
  if (!bf16 && t.dtype !== 'float32') throw new Error(`gguf: expected bf16 or float32 weights, got ${t.dtype}`);
  return (a, b) => {
    const src = data.subarray(a * cols, b * cols);
    if (!bf16) return Float32Array.from(src as Float32Array);
    const out = new Float32Array(src.length);
    const bits = new Uint32Array(out.buffer);
    for (let i = 0; i < src.length; i++) bits[i] = (src[i] as number) << 16;
    return out;
  };
}

/** tokenizer.json of `dir` as GGUF tokenizer metadata (gpt2 BPE, pre-tokenizer glm4), padded to `vocab` ids. */
export function tokenizerMetadata(dir: string, vocab: number, padId: number | null): Array<[string, GgufValue]> {
  const path = join(dir, 'tokenizer.json');
  if (!existsSync(path))
    throw new Error(`gguf: ${dir} has no tokenizer.json; llama.cpp needs the vocabulary in the GGUF file`);
  const tok = JSON.parse(readFileSync(path, 'utf8')) as {
    model?: { type?: string; vocab?: Record<string, number>; merges?: Array<string | [string, string]> };
    added_tokens?: Array<{ id: number; content: string; special?: boolean }>;
  };
  if (tok.model?.type !== 'BPE' || !tok.model.vocab || !tok.model.merges)
    throw new Error(`gguf: ${path}: expected a BPE model with vocab and merges, got type ${tok.model?.type}`);
  const tokens: string[] = new Array(vocab);
  const types = new Array<number>(vocab).fill(5); // UNUSED until named
  const put = (id: number, text: string, type: number) => {
    if (!Number.isInteger(id) || id < 0 || id >= vocab)
      throw new Error(`gguf: ${path}: token ${JSON.stringify(text)} has id ${id}, outside the model's ${vocab} ids`);
    tokens[id] = text;
    types[id] = type;
  };
  for (const [text, id] of Object.entries(tok.model.vocab)) put(id, text, 1); // NORMAL
  const special = new Map<string, number>();
  for (const a of tok.added_tokens ?? []) {
    put(a.id, a.content, a.special ? 3 : 4); // CONTROL / USER_DEFINED
    special.set(a.content, a.id);
  }
  for (let i = 0; i < vocab; i++) if (tokens[i] === undefined) tokens[i] = `[PAD${i}]`;
  const merges = tok.model.merges.map((m) => (Array.isArray(m) ? `${m[0]} ${m[1]}` : m));
  const meta: Array<[string, GgufValue]> = [
    ['tokenizer.ggml.model', { type: 'string', value: 'gpt2' }],
    ['tokenizer.ggml.pre', { type: 'string', value: 'glm4' }],
    ['tokenizer.ggml.tokens', { type: 'array', itemType: 'string', value: tokens }],
    ['tokenizer.ggml.token_type', { type: 'array', itemType: 'int32', value: types }],
    ['tokenizer.ggml.merges', { type: 'array', itemType: 'string', value: merges }],
  ];
  const eos = special.get('<|endoftext|>');
  if (eos !== undefined) {
    // As llama.cpp's own GLM-4 conversion: <|endoftext|> is eos, bos and unk; <|user|> ends a turn.
    meta.push(['tokenizer.ggml.eos_token_id', { type: 'uint32', value: eos }]);
    meta.push(['tokenizer.ggml.bos_token_id', { type: 'uint32', value: eos }]);
    meta.push(['tokenizer.ggml.unknown_token_id', { type: 'uint32', value: eos }]);
  }
  const eot = special.get('<|user|>');
  if (eot !== undefined) meta.push(['tokenizer.ggml.eot_token_id', { type: 'uint32', value: eot }]);
  if (padId !== null) meta.push(['tokenizer.ggml.padding_token_id', { type: 'uint32', value: padId }]);
  meta.push(['tokenizer.ggml.add_bos_token', { type: 'bool', value: false }]);
  return meta;
}

/**
 * Converts the text decoder of a GLM-4.1V checkpoint folder (config.json, *.safetensors, tokenizer.json; bf16,
 * f16 or f32 weights) into a GGUF file for llama.cpp's glm4 architecture. Norms and biases are stored F32.
 */
export function convertGlm4vText(dir: string, out: string, opts: ConvertOptions): { bytes: number; seconds: number } {
  const cfg = loadConfig(dir);
  if (cfg.modelType !== 'glm4v' || cfg.text.moe)
    throw new Error(
      `gguf: ${dir} is a ${cfg.modelType} checkpoint; this converter writes GLM-4.1V's dense decoder (llama.cpp glm4)`,
    );
  const t = cfg.text;
  const reader = new CheckpointReader(dir);
  const byName = new Map<string, string>();
  for (const n of reader.names()) byName.set(legacyName(n) ?? n, n);
  const held: Tensor[] = [];
  const tensors: GgufTensor[] = [];
  const add = (src: string, name: string, type: GgmlType, shape: readonly number[]) => {
    const actual = byName.get(src);
    if (!actual) throw new Error(`gguf: ${dir} has no tensor ${src}`);
    const x = reader.read(actual);
    held.push(x);
    if (x.shape.length !== shape.length || x.shape.some((d, i) => d !== shape[i]))
      throw new Error(`gguf: ${dir}: ${src} has shape [${x.shape}], the config implies [${shape}]`);
    tensors.push({ name, shape, type, rows: tensorRows(x) });
  };
  const { hiddenSize: H, intermediateSize: I, numAttentionHeads: Hq, numKeyValueHeads: Hkv, headDim: D } = t;
  const P = 'model.language_model.';
  try {
    if ([...byName.keys()].some((n) => n.endsWith('.weight_packed')))
      throw new Error(`gguf: ${dir} holds quantised (compressed-tensors) weights; convert the bf16 folder instead`);
    add(`${P}embed_tokens.weight`, 'token_embd.weight', opts.embeddings ?? opts.weights, [t.vocabSize, H]);
    for (let l = 0; l < t.numHiddenLayers; l++) {
      const L = `${P}layers.${l}.`;
      const B = `blk.${l}.`;
      add(`${L}input_layernorm.weight`, `${B}attn_norm.weight`, 'F32', [H]);
      for (const [p, rows] of [
        ['q', Hq * D],
        ['k', Hkv * D],
        ['v', Hkv * D],
      ] as const) {
        add(`${L}self_attn.${p}_proj.weight`, `${B}attn_${p}.weight`, opts.weights, [rows, H]);
        if (t.attentionBias) add(`${L}self_attn.${p}_proj.bias`, `${B}attn_${p}.bias`, 'F32', [rows]);
      }
      add(`${L}self_attn.o_proj.weight`, `${B}attn_output.weight`, opts.weights, [H, Hq * D]);
      add(`${L}post_self_attn_layernorm.weight`, `${B}post_attention_norm.weight`, 'F32', [H]);
      add(`${L}post_attention_layernorm.weight`, `${B}ffn_norm.weight`, 'F32', [H]);
      add(`${L}mlp.gate_up_proj.weight`, `${B}ffn_up.weight`, opts.weights, [2 * I, H]);
      add(`${L}mlp.down_proj.weight`, `${B}ffn_down.weight`, opts.weights, [H, I]);
      add(`${L}post_mlp_layernorm.weight`, `${B}post_ffw_norm.weight`, 'F32', [H]);
    }
    add(`${P}norm.weight`, 'output_norm.weight', 'F32', [H]);
    if (!cfg.tieWordEmbeddings) add('lm_head.weight', 'output.weight', opts.head ?? opts.weights, [t.vocabSize, H]);
    const A = 'glm4';
    const u32 = (value: number): GgufValue => ({ type: 'uint32', value });
    const meta: Array<[string, GgufValue]> = [
      ['general.architecture', { type: 'string', value: A }],
      ['general.name', { type: 'string', value: `glmv text decoder (${opts.weights})` }],
      ['general.file_type', u32(FILE_TYPE[opts.weights])],
      ['general.quantization_version', u32(2)],
      ['general.alignment', u32(GGUF_ALIGNMENT)],
      [`${A}.vocab_size`, u32(t.vocabSize)],
      [`${A}.context_length`, u32(t.maxPositionEmbeddings)],
      [`${A}.embedding_length`, u32(H)],
      [`${A}.block_count`, u32(t.numHiddenLayers)],
      [`${A}.feed_forward_length`, u32(I)],
      [`${A}.attention.head_count`, u32(Hq)],
      [`${A}.attention.head_count_kv`, u32(Hkv)],
      [`${A}.attention.key_length`, u32(D)],
      [`${A}.attention.value_length`, u32(D)],
      [`${A}.attention.layer_norm_rms_epsilon`, { type: 'float32', value: t.rmsNormEps }],
      [`${A}.rope.dimension_count`, u32(t.rotaryDim)],
      [`${A}.rope.freq_base`, { type: 'float32', value: t.ropeTheta }],
      ...tokenizerMetadata(dir, t.vocabSize, cfg.padTokenId),
    ];
    return writeGguf(out, meta, tensors, {
      reserveBytes: opts.reserveBytes,
      progress: opts.progress,
      label: `gguf ${opts.weights}`,
    });
  } finally {
    for (const x of held) x.dispose();
    reader.close();
  }
}
