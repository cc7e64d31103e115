/**
 * The GGUF writer of bench:9b's llama.cpp peer (bench/peers/gguf.ts), read back by a small reader written here from
 * the GGUF v3 spec: header, metadata values, tensor infos (dims innermost first, 32-byte aligned offsets, no
 * overlap), and the data: F32 norms exact, BF16 exact for a bf16 checkpoint, F16 within half precision, Q8_0 / Q4_0
 * blocks decoding to the checkpoint's values within the format's rounding (half a step, a full step at Q4_0's
 * clamped end). No llama.cpp needed; with GLMV_LLAMA_CPP set, llama.cpp's logits on the converted model are compared
 * with glmv's.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { convertGlm4vText, encode, f32ToF16 } from '../bench/peers/gguf.js';
import { llamaCppPackage, parity } from '../bench/peers/llama-cpp.js';
import { fromArray } from '../src/engine/index.js';
import { saveSafetensors } from '../src/engine/safetensors.js';
import { CheckpointReader } from '../src/model/checkpoint.js';
import { configJsonText } from '../src/model/config.js';
import { glm45vConfig } from '../src/model/presets.js';

const SMALL = resolve('models/glmv-small');
const work = mkdtempSync(join(tmpdir(), 'glmv-gguf-test-'));
afterAll(() => rmSync(work, { recursive: true, force: true }));

// ---------------------------------------------------------------------------------------------------------------
// An independent GGUF reader

type Value = number | bigint | string | boolean | Value[];
interface Info {
  name: string;
  ne: number[];
  type: number;
  offset: number;
}
interface Gguf {
  version: number;
  meta: Map<string, { type: number; value: Value }>;
  tensors: Info[];
  dataStart: number;
  buf: Buffer;
}

function readGguf(path: string): Gguf {
  const buf = readFileSync(path);
  let p = 0;
  const u32 = () => {
    const v = buf.readUInt32LE(p);
    p += 4;
    return v;
  };
  const u64 = () => {
    const v = Number(buf.readBigUInt64LE(p));
    p += 8;
    return v;
  };
  const str = () => {
    const n = u64();
    const s = buf.toString('utf8', p, p + n);
    p += n;
    return s;
  };
  const value = (type: number): Value => {
    const at = p;
    switch (type) {
      case 0:
        p += 1;
        return buf.readUInt8(at);
      case 1:
        p += 1;
        return buf.readInt8(at);
      case 2:
        p += 2;
        return buf.readUInt16LE(at);
      case 3:
        p += 2;
        return buf.readInt16LE(at);
      case 4:
        return u32();
      case 5:
        p += 4;
        return buf.readInt32LE(at);
      case 6:
        p += 4;
        return buf.readFloatLE(at);
      case 7:
        p += 1;
        return buf.readUInt8(at) !== 0;
      case 8:
        return str();
      case 9: {
        const item = u32();
        const n = u64();
        return Array.from({ length: n }, () => value(item));
      }
      case 10:
        return u64();
      default:
        throw new Error(`unexpected GGUF value type ${type}`);
    }
  };
  expect(buf.toString('latin1', 0, 4)).toBe('GGUF');
  p = 4;
  const version = u32();
  const nTensors = u64();
  const nMeta = u64();
  const meta = new Map<string, { type: number; value: Value }>();
  for (let i = 0; i < nMeta; i++) {
    const key = str();
    const type = u32();
    meta.set(key, { type, value: value(type) });
  }
  const tensors: Info[] = [];
  for (let i = 0; i < nTensors; i++) {
    const name = str();
    const nd = u32();
    const ne = Array.from({ length: nd }, u64);
    tensors.push({ name, ne, type: u32(), offset: u64() });
  }
  const dataStart = Math.ceil(p / 32) * 32;
  return { version, meta, tensors, dataStart, buf };
}

function half(h: number): number {
  const e = (h >> 10) & 31;
  const m = h & 1023;
  const v = e === 0 ? m / 1024 / 16384 : e === 31 ? Number.POSITIVE_INFINITY : (1 + m / 1024) * 2 ** (e - 15);
  return h & 0x8000 ? -v : v;
}

/** Bytes per row of `n` values and the decoder of one row, per ggml type id. */
const TYPES: Record<
  number,
  { rowBytes: (n: number) => number; decode: (b: Buffer, at: number, n: number) => number[] }
> = {
  0: { rowBytes: (n) => 4 * n, decode: (b, at, n) => Array.from({ length: n }, (_, i) => b.readFloatLE(at + 4 * i)) },
  1: {
    rowBytes: (n) => 2 * n,
    decode: (b, at, n) => Array.from({ length: n }, (_, i) => half(b.readUInt16LE(at + 2 * i))),
  },
  30: {
    rowBytes: (n) => 2 * n,
    decode: (b, at, n) => {
      const f = new Float32Array(1);
      const u = new Uint32Array(f.buffer);
      return Array.from({ length: n }, (_, i) => {
        u[0] = b.readUInt16LE(at + 2 * i) << 16;
        return f[0] as number;
      });
    },
  },
  8: {
    rowBytes: (n) => (n / 32) * 34,
    decode: (b, at, n) => {
      const out: number[] = [];
      for (let k = 0; k < n / 32; k++) {
        const d = half(b.readUInt16LE(at + 34 * k));
        for (let j = 0; j < 32; j++) out.push(b.readInt8(at + 34 * k + 2 + j) * d);
      }
      return out;
    },
  },
  2: {
    rowBytes: (n) => (n / 32) * 18,
    decode: (b, at, n) => {
      const out: number[] = [];
      for (let k = 0; k < n / 32; k++) {
        const o = at + 18 * k;
        const d = half(b.readUInt16LE(o));
        const lo: number[] = [];
        const hi: number[] = [];
        for (let j = 0; j < 16; j++) {
          const q = b.readUInt8(o + 2 + j);
          lo.push(((q & 15) - 8) * d);
          hi.push(((q >> 4) - 8) * d);
        }
        out.push(...lo, ...hi);
      }
      return out;
    },
  },
};

function tensorValues(g: Gguf, name: string, rows?: number): { info: Info; values: number[] } {
  const info = g.tensors.find((t) => t.name === name);
  if (!info) throw new Error(`no tensor ${name}`);
  const cols = info.ne[0] as number;
  const n = rows ?? info.ne.slice(1).reduce((a, b) => a * b, 1);
  const t = TYPES[info.type]!;
  const values: number[] = [];
  for (let r = 0; r < n; r++) values.push(...t.decode(g.buf, g.dataStart + info.offset + r * t.rowBytes(cols), cols));
  return { info, values };
}

const reader = new CheckpointReader(SMALL);
afterAll(() => reader.close());
const source = (name: string, rows?: number): number[] => {
  const t = reader.read(name, 'float32');
  const cols = t.shape[t.shape.length - 1] as number;
  const v = Array.from(t.toFloat32().subarray(0, rows === undefined ? undefined : rows * cols));
  t.dispose();
  return v;
};

// ---------------------------------------------------------------------------------------------------------------

describe('f32ToF16 (round to nearest even, as F16C)', () => {
  it('hand-computed cases', () => {
    expect(f32ToF16(1)).toBe(0x3c00);
    expect(f32ToF16(-2)).toBe(0xc000);
    expect(f32ToF16(65504)).toBe(0x7bff);
    expect(f32ToF16(65520)).toBe(0x7c00); // halfway past the largest half rounds to infinity
    expect(f32ToF16(1 + 2 ** -11)).toBe(0x3c00); // tie → even
    expect(f32ToF16(1 + 3 * 2 ** -11)).toBe(0x3c02); // tie → even (up)
    expect(f32ToF16(2 ** -24)).toBe(0x0001); // smallest subnormal
    expect(f32ToF16(2 ** -25)).toBe(0x0000); // tie → even (zero)
    expect(f32ToF16(1.5 * 2 ** -25)).toBe(0x0001);
    expect(f32ToF16(2 ** -14 - 2 ** -25)).toBe(0x0400); // rounds up into the smallest normal
    expect(f32ToF16(-0)).toBe(0x8000);
    expect(f32ToF16(Number.NEGATIVE_INFINITY)).toBe(0xfc00);
    expect(f32ToF16(Number.NaN) & 0x7c00).toBe(0x7c00);
    expect(f32ToF16(Number.NaN) & 0x3ff).not.toBe(0);
  });
});

describe('Q8_0 / Q4_0 blocks (ggml layout)', () => {
  it('a hand-computed Q4_0 block: scale from the signed extreme, nibbles j | j+16, the clamped end', () => {
    const x = new Float32Array(32);
    x[0] = -8; // the extreme: d = −8 / −8 = 1, q = −8 + 8 = 0
    x[16] = 8; // the other end: 8 + 8.5 → 16, clamped to 15 → value 7
    x[1] = 2.4; // 2.4 + 8.5 = 10.9 → 10 → 2
    x[17] = -0.5; // −0.5 + 8.5 = 8 → 0
    const b = Buffer.alloc(18);
    encode('Q4_0', x, b);
    expect(half(b.readUInt16LE(0))).toBe(1);
    expect(b[2]).toBe(0 | (15 << 4));
    expect(b[3]).toBe(10 | (8 << 4));
    expect(b[4]).toBe(8 | (8 << 4)); // zeros
  });

  it('a hand-computed Q8_0 block: d = amax/127, round half away from zero', () => {
    const x = new Float32Array(32);
    x[0] = 127;
    x[1] = -2.5; // −2.5 → −3
    x[2] = 0.5; // 0.5 → 1
    const b = Buffer.alloc(34);
    encode('Q8_0', x, b);
    expect(half(b.readUInt16LE(0))).toBe(1);
    expect([b.readInt8(2), b.readInt8(3), b.readInt8(4), b.readInt8(5)]).toEqual([127, -3, 1, 0]);
  });

  it('refuses a row that is not a whole number of blocks', () => {
    expect(() => encode('Q8_0', new Float32Array(48), Buffer.alloc(100))).toThrow(
      /blocks of 32 values, got a row of 48/,
    );
  });
});

describe('convertGlm4vText: GLM-4.1V text decoder → llama.cpp glm4 GGUF', () => {
  const mixed = join(work, 'mixed.gguf');
  const bf16 = join(work, 'bf16.gguf');
  beforeAll(() => {
    convertGlm4vText(SMALL, mixed, { weights: 'Q8_0', embeddings: 'F16', head: 'Q4_0', progress: false });
    convertGlm4vText(SMALL, bf16, { weights: 'BF16', progress: false });
  });
  const cfg = JSON.parse(readFileSync(join(SMALL, 'config.json'), 'utf8')).text_config;
  const tok = JSON.parse(readFileSync(join(SMALL, 'tokenizer.json'), 'utf8'));

  it('header, hyperparameters and tokenizer metadata', () => {
    const g = readGguf(mixed);
    expect(g.version).toBe(3);
    const m = (k: string) => g.meta.get(k)?.value;
    expect(m('general.architecture')).toBe('glm4');
    expect(m('general.alignment')).toBe(32);
    expect(g.meta.get('glm4.block_count')).toEqual({ type: 4, value: cfg.num_hidden_layers });
    expect(m('glm4.embedding_length')).toBe(cfg.hidden_size);
    expect(m('glm4.feed_forward_length')).toBe(cfg.intermediate_size);
    expect(m('glm4.attention.head_count')).toBe(cfg.num_attention_heads);
    expect(m('glm4.attention.head_count_kv')).toBe(cfg.num_key_value_heads);
    expect(m('glm4.attention.key_length')).toBe(cfg.head_dim);
    expect(m('glm4.context_length')).toBe(cfg.max_position_embeddings);
    expect(m('glm4.rope.dimension_count')).toBe(cfg.head_dim * cfg.partial_rotary_factor);
    expect(g.meta.get('glm4.rope.freq_base')).toEqual({ type: 6, value: cfg.rope_theta });
    expect(g.meta.get('glm4.attention.layer_norm_rms_epsilon')?.type).toBe(6);
    expect(m('glm4.attention.layer_norm_rms_epsilon')).toBeCloseTo(cfg.rms_norm_eps, 10);
    expect(g.meta.has('glm4.rope.dimension_sections')).toBe(false); // plain rope: text positions
    expect(m('tokenizer.ggml.model')).toBe('gpt2');
    expect(m('tokenizer.ggml.pre')).toBe('glm4');
    const tokens = m('tokenizer.ggml.tokens') as string[];
    const types = m('tokenizer.ggml.token_type') as number[];
    expect(tokens.length).toBe(cfg.vocab_size);
    expect(types.length).toBe(cfg.vocab_size);
    for (const [text, id] of Object.entries(tok.model.vocab as Record<string, number>).slice(0, 500)) {
      expect(tokens[id]).toBe(text);
      expect(types[id]).toBe(1);
    }
    const eos = (tok.added_tokens as Array<{ id: number; content: string }>).find(
      (a) => a.content === '<|endoftext|>',
    )!;
    expect(tokens[eos.id]).toBe('<|endoftext|>');
    expect(types[eos.id]).toBe(3);
    expect(m('tokenizer.ggml.eos_token_id')).toBe(eos.id);
    const merges = m('tokenizer.ggml.merges') as string[];
    expect(merges.length).toBe(tok.model.merges.length);
    expect(merges[0]).toBe((tok.model.merges[0] as string[]).join(' '));
  });

  it('tensor infos: names, dims innermost first, aligned non-overlapping data that fills the file', () => {
    const g = readGguf(mixed);
    const L = cfg.num_hidden_layers as number;
    expect(g.tensors.length).toBe(3 + 13 * L);
    const byName = new Map(g.tensors.map((t) => [t.name, t]));
    const H = cfg.hidden_size;
    const D = cfg.head_dim;
    expect(byName.get('token_embd.weight')).toMatchObject({ ne: [H, cfg.vocab_size], type: 1 });
    expect(byName.get('output.weight')).toMatchObject({ ne: [H, cfg.vocab_size], type: 2 });
    expect(byName.get('output_norm.weight')).toMatchObject({ ne: [H], type: 0 });
    expect(byName.get('blk.0.attn_q.weight')).toMatchObject({ ne: [H, cfg.num_attention_heads * D], type: 8 });
    expect(byName.get('blk.0.attn_k.bias')).toMatchObject({ ne: [cfg.num_key_value_heads * D], type: 0 });
    expect(byName.get('blk.0.ffn_up.weight')).toMatchObject({ ne: [H, 2 * cfg.intermediate_size], type: 8 });
    expect(byName.get('blk.0.ffn_down.weight')).toMatchObject({ ne: [cfg.intermediate_size, H], type: 8 });
    for (const n of ['attn_norm', 'post_attention_norm', 'ffn_norm', 'post_ffw_norm'])
      expect(byName.get(`blk.${L - 1}.${n}.weight`)).toMatchObject({ ne: [H], type: 0 });
    expect(g.dataStart % 32).toBe(0);
    let end = 0;
    for (const t of g.tensors) {
      expect(t.offset % 32, t.name).toBe(0);
      expect(t.offset, t.name).toBeGreaterThanOrEqual(end);
      const rows = t.ne.slice(1).reduce((a, b) => a * b, 1);
      end = t.offset + rows * TYPES[t.type]!.rowBytes(t.ne[0] as number);
    }
    expect(g.buf.length).toBe(g.dataStart + Math.ceil(end / 32) * 32);
  });

  it('data: F32 and BF16 exact, F16 to half precision, Q8_0 / Q4_0 within the rounding of their blocks', () => {
    const g = readGguf(mixed);
    const P = 'model.language_model.';
    expect(tensorValues(g, 'blk.1.post_ffw_norm.weight').values).toEqual(
      source(`${P}layers.1.post_mlp_layernorm.weight`),
    );
    expect(tensorValues(g, 'blk.2.attn_v.bias').values).toEqual(source(`${P}layers.2.self_attn.v_proj.bias`));
    const emb = source(`${P}embed_tokens.weight`, 64);
    tensorValues(g, 'token_embd.weight', 64).values.forEach((v, i) => {
      expect(Math.abs(v - emb[i]!)).toBeLessThanOrEqual(Math.abs(emb[i]!) * 2 ** -11 + 2 ** -25);
    });
    const blocks = (x: number[], y: number[], bound: (block: number[]) => number) => {
      for (let b = 0; b < x.length; b += 32) {
        const blk = x.slice(b, b + 32);
        const tol = bound(blk);
        for (let j = 0; j < 32; j++) expect(Math.abs(y[b + j]! - blk[j]!)).toBeLessThanOrEqual(tol);
      }
    };
    const amax = (blk: number[]) => Math.max(...blk.map(Math.abs));
    const gu = source(`${P}layers.3.mlp.gate_up_proj.weight`);
    const q8 = tensorValues(g, 'blk.3.ffn_up.weight').values;
    expect(q8.length).toBe(gu.length);
    blocks(gu, q8, (blk) => (amax(blk) / 127) * (0.5 + 128 * 2 ** -11) + 1e-12);
    const head = source('lm_head.weight', 200);
    const q4 = tensorValues(g, 'output.weight', 200).values;
    blocks(head, q4, (blk) => (amax(blk) / 8) * (1 + 8 * 2 ** -11) + 1e-12);
    // Not all within half a step: the clamp at +8 is Q4_0's, and the test's bound must be the real one.
    let over = 0;
    for (let i = 0; i < head.length; i++)
      if (Math.abs(q4[i]! - head[i]!) > 0.51 * (amax(head.slice(i - (i % 32), i - (i % 32) + 32)) / 8)) over++;
    expect(over).toBeGreaterThan(0);
    const exact = readGguf(bf16);
    expect(tensorValues(exact, 'blk.0.attn_output.weight').values).toEqual(
      source(`${P}layers.0.self_attn.o_proj.weight`),
    );
    expect(tensorValues(exact, 'output.weight', 10).values).toEqual(source('lm_head.weight', 10));
  });

  it('clear errors: a MoE checkpoint, no tokenizer, quantised weights, not enough disk', () => {
    const moe = join(work, 'moe');
    mkdirSync(moe);
    writeFileSync(join(moe, 'config.json'), configJsonText(glm45vConfig()));
    expect(() => convertGlm4vText(moe, join(work, 'x.gguf'), { weights: 'Q8_0' })).toThrow(/glm4v_moe checkpoint/);
    const bare = join(work, 'bare');
    mkdirSync(bare);
    writeFileSync(join(bare, 'config.json'), readFileSync(join(SMALL, 'config.json')));
    symlinkSync(join(SMALL, 'model.safetensors'), join(bare, 'model.safetensors'));
    expect(() => convertGlm4vText(bare, join(work, 'x.gguf'), { weights: 'Q8_0' })).toThrow(/no tokenizer\.json/);
    const packed = join(work, 'packed');
    mkdirSync(packed);
    writeFileSync(join(packed, 'config.json'), readFileSync(join(SMALL, 'config.json')));
    saveSafetensors(join(packed, 'model.safetensors'), {
      'model.language_model.layers.0.mlp.down_proj.weight_packed': fromArray(new Int32Array(4), [4], 'int32'),
    });
    expect(() => convertGlm4vText(packed, join(work, 'x.gguf'), { weights: 'Q8_0' })).toThrow(/quantised/);
    expect(() =>
      convertGlm4vText(SMALL, join(work, 'x.gguf'), { weights: 'Q8_0', reserveBytes: 1e18, progress: false }),
    ).toThrow(/must stay free; the disk has/);
  });
});

const pkg = llamaCppPackage();
describe('llama.cpp runs the converted decoder like glmv', () => {
  if ('missing' in pkg) console.log(`bench-gguf: llama.cpp parity skipped: ${pkg.missing}`);
  it.skipIf('missing' in pkg)(
    'next-token logits on four prompts: F32 equal to float rounding, Q8_0 close, same top-1',
    async () => {
      const rows = await parity((pkg as { dir: string }).dir, SMALL, ['F32', 'Q8_0']);
      const f32 = rows.find((r) => r.type === 'F32')!;
      const q8 = rows.find((r) => r.type === 'Q8_0')!;
      expect(f32.maxRel).toBeLessThan(1e-4);
      expect(f32.top1).toBe(f32.prompts);
      expect(q8.maxRel).toBeLessThan(0.1);
      expect(q8.top1).toBe(q8.prompts);
    },
    120_000,
  );
});
