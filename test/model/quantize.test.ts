/**
 * Quantised checkpoints: glmv quantize's writer and fromPretrained's reader round-trip (single file and shards,
 * bf16 and float32 sources), the loaded layers equal an in-memory quantisation of the same weights, logits stay close
 * to the float model, the config follows compressed-tensors, and unsupported or inconsistent folders are refused.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  dequantizeWeight,
  Linear,
  noGrad,
  QuantLinear,
  quantizeWeight,
  saveSafetensors,
  setQuantActivations,
  withBackend,
} from '../../src/engine/index.js';
import { CheckpointReader, INDEX_FILE } from '../../src/model/checkpoint.js';
import { logicalParameters } from '../../src/model/compressed.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { tinyConfig } from '../../src/model/presets.js';
import { quantizeCheckpoint } from '../../src/model/quantize.js';
import { maxAbsDiff } from './helpers.js';

const root = mkdtempSync(join(tmpdir(), 'glmv-quant-'));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;
const fresh = () => join(root, `d${n++}`);

const ids = [[5, 9, 17, 33, 2, 71, 100, 4]];
const logitsOf = (m: Glm4vForConditionalGeneration) => noGrad(() => m.forward({ inputIds: ids })).logits.toFloat32();
function relErr(a: Float32Array, b: Float32Array): number {
  let num = 0;
  let den = 0;
  for (let i = 0; i < a.length; i++) {
    num += (a[i]! - b[i]!) ** 2;
    den += b[i]! ** 2;
  }
  return Math.sqrt(num / den);
}

describe('quantised checkpoints', () => {
  const ref = Glm4vForConditionalGeneration.random(tinyConfig('glm4v'), { seed: 3 });
  const refLogits = logitsOf(ref);
  const linears = ref.namedModules().filter(([name, m]) => m instanceof Linear && name !== 'lm_head') as Array<
    [string, Linear]
  >;

  it('int8 and int4 round-trip: compressed-tensors names and config, layers equal in-memory quantisation', () => {
    const src = fresh();
    ref.save(src);
    writeFileSync(join(src, 'tokenizer.json'), '{}');
    for (const [bits, group, tol] of [
      [8, null, 0.02],
      [4, 32, 0.35], // random N(0, 0.02) weights: a flat distribution is int4's worst case
    ] as const) {
      const out = fresh();
      const r = quantizeCheckpoint(src, out, { bits, groupSize: group, progress: false });
      expect(r.quantized).toBe(linears.length);
      expect(r.skipped).toEqual([]);
      expect(readdirSync(out).sort()).toEqual(['config.json', 'model.safetensors', 'tokenizer.json']);
      const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
      expect(cfg.quantization_config).toMatchObject({
        quant_method: 'compressed-tensors',
        format: 'pack-quantized',
        ignore: ['lm_head'],
        config_groups: {
          group_0: {
            targets: ['Linear'],
            weights: { num_bits: bits, type: 'int', symmetric: true, strategy: group ? 'group' : 'channel' },
          },
        },
      });
      const reader = new CheckpointReader(out);
      const q = 'model.language_model.layers.0.self_attn.q_proj';
      expect(reader.tensors.get(`${q}.weight_packed`)?.dtype).toBe('I32');
      expect(reader.tensors.get(`${q}.weight_shape`)).toMatchObject({ dtype: 'I64', shape: [2] });
      expect(reader.tensors.get(`${q}.weight_scale`)?.dtype).toBe('F32');
      expect(reader.tensors.has(`${q}.weight`)).toBe(false);
      expect(reader.tensors.has(`${q}.bias`)).toBe(true);
      reader.close();

      const { model, report } = Glm4vForConditionalGeneration.fromPretrained(out);
      expect(report.quantized).toEqual({ layers: linears.length, bits: [bits], groupSizes: [group] });
      expect(report.missing).toEqual([]);
      const mods = new Map(model.namedModules());
      for (const [name, lin] of linears) {
        const ql = mods.get(name);
        expect(ql, name).toBeInstanceOf(QuantLinear);
        const expected = dequantizeWeight(quantizeWeight(lin.weight, bits, group, 'float32'));
        expect(maxAbsDiff(dequantizeWeight((ql as QuantLinear).quantized), expected), name).toBe(0);
      }
      expect(logicalParameters(model)).toBe(ref.numParameters());
      const err = relErr(logitsOf(model), refLogits);
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThan(tol);
    }
  });

  it('shards stay shards (index names the packed tensors); bf16 sources keep bf16 scales; --no-vision keeps the tower', () => {
    const src = fresh();
    const bf = Glm4vForConditionalGeneration.random(tinyConfig('glm4v'), { seed: 3, dtype: 'bfloat16' });
    bf.save(src, { shardBytes: 60_000 });
    const out = fresh();
    const r = quantizeCheckpoint(src, out, { bits: 4, groupSize: 32, vision: false, progress: false });
    const visual = linears.filter(([nm]) => nm.startsWith('model.visual.'));
    expect(visual.length).toBeGreaterThan(0);
    expect(r.skipped.map((s) => s.name).sort()).toEqual(visual.map(([nm]) => nm).sort());
    expect(r.quantized).toBe(linears.length - visual.length);
    const index = JSON.parse(readFileSync(join(out, INDEX_FILE), 'utf8'));
    const shards = new Set(Object.values(index.weight_map));
    expect(shards.size).toBeGreaterThan(2);
    expect(index.weight_map['model.language_model.layers.1.mlp.down_proj.weight_packed']).toMatch(/^model-0000\d-of/);
    const { model } = Glm4vForConditionalGeneration.fromPretrained(out);
    const mods = new Map(model.namedModules());
    expect(mods.get('model.visual.blocks.0.attn.qkv')).toBeInstanceOf(Linear);
    const down = mods.get('model.language_model.layers.1.mlp.down_proj') as QuantLinear;
    expect(down).toBeInstanceOf(QuantLinear);
    expect(down.weight_scale.dtype).toBe('bfloat16');
    const err = relErr(logitsOf(model), logitsOf(bf));
    expect(err).toBeLessThan(0.35);
  });

  it('keeps layers the group size does not divide, and lists them in ignore', () => {
    const src = fresh();
    ref.save(src);
    const out = fresh();
    const r = quantizeCheckpoint(src, out, { bits: 4, progress: false }); // group 128
    const divisible = linears.filter(([, l]) => l.inFeatures % 128 === 0).map(([nm]) => nm);
    expect(divisible.length).toBeGreaterThan(0);
    expect(r.quantized).toBe(divisible.length);
    expect(r.skipped.length).toBe(linears.length - divisible.length);
    for (const x of r.skipped) expect(x.reason).toMatch(/^\d+ inputs are not a multiple of the group size 128$/);
    const cfg = JSON.parse(readFileSync(join(out, 'config.json'), 'utf8'));
    expect(cfg.quantization_config.ignore).toEqual(['lm_head', ...r.skipped.map((x) => x.name)]);
    expect(cfg.quantization_config.ignore).toContain('model.language_model.layers.0.self_attn.q_proj');
    const { model } = Glm4vForConditionalGeneration.fromPretrained(out);
    const mods = new Map(model.namedModules());
    for (const [nm] of linears) expect(mods.get(nm), nm).toBeInstanceOf(divisible.includes(nm) ? QuantLinear : Linear);
  });

  it('lmHead quantises the output projection too: loaded as QuantLinear, logits as with its dequantised weight', () => {
    expect(ref.lm_head).not.toBeNull();
    const src = fresh();
    ref.save(src);
    for (const [bits, group] of [
      [8, null],
      [4, 32],
    ] as const) {
      const withHead = fresh();
      const r = quantizeCheckpoint(src, withHead, { bits, groupSize: group, lmHead: true, progress: false });
      expect(r.quantized).toBe(linears.length + 1);
      const cfg = JSON.parse(readFileSync(join(withHead, 'config.json'), 'utf8'));
      expect(cfg.quantization_config.ignore).toEqual([]);
      const reader = new CheckpointReader(withHead);
      expect(reader.tensors.has('lm_head.weight')).toBe(false);
      expect(reader.tensors.get('lm_head.weight_shape')).toMatchObject({ dtype: 'I64', shape: [2] });
      reader.close();
      const { model, report } = Glm4vForConditionalGeneration.fromPretrained(withHead);
      expect(model.lm_head).toBeInstanceOf(QuantLinear);
      expect(report.quantized?.layers).toBe(linears.length + 1);
      expect(report.missing).toEqual([]);
      expect(() => model.outputWeight).toThrow(/lm_head is quantised/);
      expect(logicalParameters(model)).toBe(ref.numParameters());
      const refHead = ref.outputWeight;
      const deq = dequantizeWeight(quantizeWeight(refHead, bits, group, 'float32'));
      expect(maxAbsDiff(dequantizeWeight((model.lm_head as QuantLinear).quantized), deq)).toBe(0);
      // The same decoder with a float head holding the dequantised weight gives the same logits.
      const plainDir = fresh();
      quantizeCheckpoint(src, plainDir, { bits, groupSize: group, progress: false });
      const plain = Glm4vForConditionalGeneration.fromPretrained(plainDir).model;
      // On the reference backend with float activations: its quantised matmul is then exact float32 (the native
      // decode kernels round x to bf16 or, by default, quantise it to int8).
      const refLogitsOf = (m: Glm4vForConditionalGeneration) => {
        const old = setQuantActivations('float');
        try {
          return withBackend('ref', () => logitsOf(m));
        } finally {
          setQuantActivations(old);
        }
      };
      const floatHead = refLogitsOf(plain);
      plain.outputWeight.copy_(deq);
      const a = refLogitsOf(model);
      const b = refLogitsOf(plain);
      const scale = b.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      expect(maxAbsDiff(a, b)).toBeLessThan(1e-4 * scale);
      expect(maxAbsDiff(a, floatHead)).toBeGreaterThan(1e-3 * scale); // the head's own quantisation shows
    }
  });

  it('refuses unsupported schemes and inconsistent folders with clear errors', () => {
    const src = fresh();
    ref.save(src);
    const out = fresh();
    quantizeCheckpoint(src, out, { bits: 8, progress: false });
    expect(() => quantizeCheckpoint(src, out, { bits: 8, progress: false })).toThrow(/exists and is not empty/);
    expect(() => quantizeCheckpoint(out, fresh(), { bits: 4, progress: false })).toThrow(/already quantised/);
    expect(() => quantizeCheckpoint(src, fresh(), { bits: 3 as 4, progress: false })).toThrow(/--bits must be 4 or 8/);
    const cfgPath = join(out, 'config.json');
    const good = readFileSync(cfgPath, 'utf8');
    interface Qc {
      format: string;
      ignore: string[];
      config_groups: { group_0: { weights: { symmetric: boolean }; input_activations: unknown } };
    }
    const edit = (f: (qc: Qc) => void) => {
      const c = JSON.parse(good);
      f(c.quantization_config);
      writeFileSync(cfgPath, JSON.stringify(c));
    };
    edit((qc) => {
      qc.config_groups.group_0.weights.symmetric = false;
    });
    expect(() => Glm4vForConditionalGeneration.fromPretrained(out)).toThrow(/asymmetric weights \(zero points\)/);
    edit((qc) => {
      qc.format = 'marlin-24';
    });
    expect(() => Glm4vForConditionalGeneration.fromPretrained(out)).toThrow(/format "marlin-24" is not supported/);
    edit((qc) => {
      qc.config_groups.group_0.input_activations = { num_bits: 8 };
    });
    expect(() => Glm4vForConditionalGeneration.fromPretrained(out)).toThrow(/quantises activations/);
    edit((qc) => {
      qc.ignore.push('re:.*layers\\.0\\.self_attn\\.q_proj$');
    });
    expect(() => Glm4vForConditionalGeneration.fromPretrained(out)).toThrow(
      /layers\.0\.self_attn\.q_proj is stored packed but no quantization_config group targets it/,
    );
    writeFileSync(cfgPath, good);
    // A weight_shape that disagrees with the config's layer size.
    const reader = new CheckpointReader(out);
    const tensors = new Map(reader.names().map((nm) => [nm, reader.read(nm)]));
    reader.close();
    const bad = new Map<string, unknown>(tensors);
    const name = 'model.language_model.layers.0.mlp.down_proj.weight_shape';
    bad.set(name, { dtype: 'I64', shape: [2], bytes: new Uint8Array(BigInt64Array.from([64n, 999n]).buffer) });
    saveSafetensors(join(out, 'model.safetensors'), bad as Parameters<typeof saveSafetensors>[1]);
    expect(() => Glm4vForConditionalGeneration.fromPretrained(out)).toThrow(
      /down_proj\.weight_shape is \[64,999\], but the layer is \[64, 128\]/,
    );
  });
});
