import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { F, nativeLoadError, noGrad, saveSafetensors, type Tensor } from '../../src/engine/index.js';
import { CheckpointReader, INDEX_FILE } from '../../src/model/checkpoint.js';
import { configToJson } from '../../src/model/config.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { tinyConfig } from '../../src/model/presets.js';
import { mappingFlags } from '../helpers/smaps.js';
import { FIXTURES, loadFixture, maxAbsDiff } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'glmv-ckpt-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);

/** A checkpoint directory from a config and a tensor map. */
function writeDir(cfg: object, tensors: Map<string, Tensor>): string {
  const dir = fresh();
  const m = Glm4vForConditionalGeneration.random(tinyConfig('glm4v'));
  m.save(dir);
  writeFileSync(join(dir, 'config.json'), JSON.stringify(cfg));
  saveSafetensors(join(dir, 'model.safetensors'), tensors);
  return dir;
}

const params = (m: Glm4vForConditionalGeneration) => new Map(m.namedParameters().map(([k, p]) => [k, p as Tensor]));

describe('checkpoints', () => {
  const fixture = join(FIXTURES, 'glm4v_moe');
  const { model: ref } = Glm4vForConditionalGeneration.fromPretrained(fixture);
  const imageCase = loadFixture(fixture).find((c) => c.name === 'image')!;
  const refLogits = noGrad(() => ref.forward(imageCase.inputs)).logits;

  it('save → fromPretrained round-trips every tensor and the config', () => {
    const dir = fresh();
    const res = ref.save(dir);
    expect(res.files.sort()).toEqual(['config.json', 'model.safetensors']);
    const { model, config, report } = Glm4vForConditionalGeneration.fromPretrained(dir);
    expect(report).toMatchObject({ missing: [], unexpected: [], loaded: ref.namedParameters().length });
    expect(config).toEqual({ ...ref.config, dtype: 'float32' });
    const a = params(model);
    for (const [k, t] of params(ref)) expect(maxAbsDiff(a.get(k)!, t), k).toBe(0);
    const hf = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8'));
    expect(hf.architectures).toEqual(['Glm4vMoeForConditionalGeneration']);
    expect(
      new CheckpointReader(dir).tensors.get('model.language_model.layers.1.mlp.gate.e_score_correction_bias')?.dtype,
    ).toBe('F32');
  });

  it('maps the embedding table with small pages and the rest with 2 MiB pages', (ctx) => {
    if (nativeLoadError() !== null || !existsSync('/sys/kernel/mm/transparent_hugepage/enabled')) ctx.skip();
    // A vocabulary of 16k: a 4 MiB table, and a file large enough for 2 MiB blocks outside it.
    const dir = fresh();
    Glm4vForConditionalGeneration.random(tinyConfig('glm4v', { vocabSize: 16384 })).save(dir);
    const file = join(dir, 'model.safetensors');
    const { model } = Glm4vForConditionalGeneration.fromPretrained(dir);
    const emb = params(model).get('model.language_model.embed_tokens.weight')!;
    expect(emb.shape).toEqual([16384, 64]);
    const table = emb.size * (emb.dtype === 'bfloat16' ? 2 : 4);
    const areas = mappingFlags(file);
    const small = areas.filter((a) => a.flags.includes('nh')).reduce((n, a) => n + a.bytes, 0);
    expect(small).toBeGreaterThanOrEqual(table); // the 2 MiB blocks that hold embed_tokens …
    expect(small).toBeLessThanOrEqual(table + (4 << 20)); // … and no more
    expect(areas.some((a) => a.flags.includes('hg'))).toBe(true);
  });

  it('shards with an index above shardBytes, loads identically, and removes stale shards on the next save', () => {
    const dir = fresh();
    const res = ref.save(dir, { shardBytes: 200_000 });
    const shards = readdirSync(dir).filter((f) => /^model-\d{5}-of-\d{5}\.safetensors$/.test(f));
    expect(shards.length).toBeGreaterThan(3);
    expect(existsSync(join(dir, INDEX_FILE))).toBe(true);
    expect(existsSync(join(dir, 'model.safetensors'))).toBe(false);
    const index = JSON.parse(readFileSync(join(dir, INDEX_FILE), 'utf8'));
    expect(Object.keys(index.weight_map).length).toBe(ref.namedParameters().length);
    expect(index.metadata.total_size).toBe(res.bytes);
    const { model } = Glm4vForConditionalGeneration.fromPretrained(dir);
    expect(maxAbsDiff(noGrad(() => model.forward(imageCase.inputs)).logits, refLogits)).toBe(0);
    ref.save(dir); // single file now: shards and index go
    expect(readdirSync(dir).sort()).toEqual(['config.json', 'model.safetensors']);
  });

  it('strict load names missing and unexpected tensors; lenient load reports them and initialises the missing', () => {
    const state = params(ref);
    const t = new Map(state);
    t.delete('model.language_model.layers.0.input_layernorm.weight');
    t.delete('model.visual.blocks.1.attn.qkv.weight');
    t.set('model.language_model.layers.0.self_attn.q_norm.weight', state.get('model.language_model.norm.weight')!);
    const dir = writeDir(configToJson(ref.config), t);
    expect(() => Glm4vForConditionalGeneration.fromPretrained(dir)).toThrow(
      /2 missing and 1 unexpected tensor\(s\).*\n.*missing: model\.visual\.blocks\.1\.attn\.qkv\.weight, model\.language_model\.layers\.0\.input_layernorm\.weight\n.*unexpected: model\.language_model\.layers\.0\.self_attn\.q_norm\.weight/,
    );
    const { model, report } = Glm4vForConditionalGeneration.fromPretrained(dir, { strict: false });
    expect(report.missing.sort()).toEqual([
      'model.language_model.layers.0.input_layernorm.weight',
      'model.visual.blocks.1.attn.qkv.weight',
    ]);
    expect(report.unexpected).toEqual(['model.language_model.layers.0.self_attn.q_norm.weight']);
    const p = params(model);
    expect(
      p
        .get('model.language_model.layers.0.input_layernorm.weight')!
        .toArray()
        .every((v) => v === 1),
    ).toBe(true);
    const qkv = p.get('model.visual.blocks.1.attn.qkv.weight')!.toFloat32();
    const std = Math.sqrt(qkv.reduce((a, v) => a + v * v, 0) / qkv.length);
    expect(std).toBeGreaterThan(0.015);
    expect(std).toBeLessThan(0.025);
  });

  it('refuses shape mismatches, naming the tensor and both shapes', () => {
    const t = new Map(params(ref));
    t.set(
      'model.language_model.norm.weight',
      F.concat([t.get('model.language_model.norm.weight')!, t.get('model.language_model.norm.weight')!]),
    );
    const dir = writeDir(configToJson(ref.config), t);
    expect(() => Glm4vForConditionalGeneration.fromPretrained(dir, { strict: false })).toThrow(
      /shape mismatch for 1 tensor\(s\).*\n\s+model\.language_model\.norm\.weight: checkpoint \[128\] .* vs model \[64\]/,
    );
  });

  it('accepts fused expert tensors (transformers 5.x), legacy prefixes, and skips the MTP layer', () => {
    const src = params(ref);
    const t = new Map<string, Tensor>();
    const E = 8;
    for (const [k, v] of src) {
      if (/\.experts\.\d+\./.test(k)) continue;
      // Legacy layout: language model under model.*, vision under visual.*
      t.set(k.replace('model.language_model.', 'model.').replace('model.visual.', 'visual.'), v);
    }
    const pre = 'model.language_model.layers.1.mlp.experts';
    const gu: Tensor[] = [];
    const dn: Tensor[] = [];
    for (let e = 0; e < E; e++) {
      gu.push(F.concat([src.get(`${pre}.${e}.gate_proj.weight`)!, src.get(`${pre}.${e}.up_proj.weight`)!], 0));
      dn.push(src.get(`${pre}.${e}.down_proj.weight`)!);
    }
    t.set('model.layers.1.mlp.experts.gate_up_proj', F.stack(gu, 0));
    t.set('model.layers.1.mlp.experts.down_proj', F.stack(dn, 0));
    t.set('model.layers.2.eh_proj.weight', src.get('model.language_model.norm.weight')!); // MTP (num_hidden_layers = 2)
    const dir = writeDir(configToJson(ref.config), t);
    const { model, report } = Glm4vForConditionalGeneration.fromPretrained(dir);
    expect(report.ignored).toEqual(['model.layers.2.eh_proj.weight']);
    expect(report.converted).toBeGreaterThan(50);
    expect(maxAbsDiff(noGrad(() => model.forward(imageCase.inputs)).logits, refLogits)).toBe(0);
  });

  it('bf16 checkpoints stay bf16 (router bias float32) and give logits close to float32; dtype float32 converts', () => {
    const dir = fresh();
    const bf = Glm4vForConditionalGeneration.fromPretrained(fixture, { dtype: 'bfloat16' }).model;
    bf.save(dir);
    expect(JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).torch_dtype).toBe('bfloat16');
    const onDisk = new CheckpointReader(dir);
    expect(onDisk.tensors.get('model.language_model.layers.1.mlp.gate.e_score_correction_bias')!.dtype).toBe('F32');
    expect(onDisk.tensors.get('model.language_model.layers.1.mlp.gate.weight')!.dtype).toBe('BF16');
    onDisk.close();
    const { model } = Glm4vForConditionalGeneration.fromPretrained(dir);
    const p = params(model);
    expect(p.get('model.language_model.embed_tokens.weight')!.dtype).toBe('bfloat16');
    expect(p.get('model.visual.patch_embed.proj.weight')!.dtype).toBe('bfloat16');
    expect(p.get('model.language_model.layers.1.mlp.gate.e_score_correction_bias')!.dtype).toBe('float32');
    const dense = Glm4vForConditionalGeneration.fromPretrained(join(FIXTURES, 'glm4v')).model;
    const dcase = loadFixture(join(FIXTURES, 'glm4v')).find((c) => c.name === 'image')!;
    const d32 = noGrad(() => dense.forward(dcase.inputs)).logits;
    dense.toDtype('bfloat16');
    const d16 = noGrad(() => dense.forward(dcase.inputs)).logits;
    expect(d16.dtype).toBe('float32');
    const scale = maxAbsDiff(d32, new Float32Array(d32.size));
    const rel = maxAbsDiff(d16, d32) / scale;
    expect(rel).toBeGreaterThan(0); // really computed in bf16
    expect(rel).toBeLessThan(0.05);
    const { model: f32 } = Glm4vForConditionalGeneration.fromPretrained(dir, { dtype: 'float32' });
    expect(params(f32).get('model.language_model.embed_tokens.weight')!.dtype).toBe('float32');
  });

  it('explains broken checkpoint directories', () => {
    expect(() => new CheckpointReader(join(root, 'nope'))).toThrow(/does not exist/);
    const empty = fresh();
    ref.save(empty);
    rmSync(join(empty, 'model.safetensors'));
    expect(() => Glm4vForConditionalGeneration.fromPretrained(empty)).toThrow(
      /no model\.safetensors or model\.safetensors\.index\.json/,
    );
    const sharded = fresh();
    ref.save(sharded, { shardBytes: 400_000 });
    const shard = readdirSync(sharded).find((f) => f.startsWith('model-00002'))!;
    rmSync(join(sharded, shard));
    expect(() => Glm4vForConditionalGeneration.fromPretrained(sharded)).toThrow(
      new RegExp(`shard .*${shard} is missing`),
    );
    writeFileSync(join(sharded, INDEX_FILE), '{"weight_map": ');
    expect(() => Glm4vForConditionalGeneration.fromPretrained(sharded)).toThrow(/index\.json is not valid JSON/);
    writeFileSync(join(sharded, INDEX_FILE), JSON.stringify({ weight_map: { a: '../x.safetensors' } }));
    expect(() => Glm4vForConditionalGeneration.fromPretrained(sharded)).toThrow(/maps 'a' to "\.\.\/x\.safetensors"/);
    const liar = fresh();
    ref.save(liar, { shardBytes: 400_000 });
    const index = JSON.parse(readFileSync(join(liar, INDEX_FILE), 'utf8'));
    const first = Object.values<string>(index.weight_map).find((f) => f.startsWith('model-00001'))!;
    index.weight_map['lm_head.weight'] = first;
    writeFileSync(join(liar, INDEX_FILE), JSON.stringify(index));
    expect(() => Glm4vForConditionalGeneration.fromPretrained(liar)).toThrow(
      /maps 'lm_head\.weight' to model-00001.*no such tensor/,
    );
    const truncated = fresh();
    ref.save(truncated);
    const bytes = readFileSync(join(truncated, 'model.safetensors'));
    writeFileSync(join(truncated, 'model.safetensors'), bytes.subarray(0, bytes.length - 1000));
    expect(() => Glm4vForConditionalGeneration.fromPretrained(truncated)).toThrow(/safetensors/);
  });
});
