import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { configJsonText, configToJson, countParameters, loadConfig, parseConfig } from '../../src/model/config.js';
import { glm41v9bConfig, glm45vConfig, tinyConfig } from '../../src/model/presets.js';
import { FIXTURES } from './helpers.js';

const read = (p: string) => JSON.parse(readFileSync(join(FIXTURES, p), 'utf8'));

describe('config', () => {
  it('reads the transformers 4.57 layout (rope_scaling + rope_theta) and the 5.x layout (rope_parameters) alike', () => {
    const a = loadConfig(join(FIXTURES, 'glm4v'));
    const b = loadConfig(join(FIXTURES, 'glm4v/seed1'));
    expect(a.text).toEqual(b.text);
    expect(a.vision).toEqual(b.vision);
    expect(a.text).toMatchObject({ headDim: 16, rotaryDim: 8, mropeSection: [1, 2, 1], ropeTheta: 10000 });
    expect(a.imageTokenId).toBe(504);
    const m = loadConfig(join(FIXTURES, 'glm4v_moe'));
    expect(m.modelType).toBe('glm4v_moe');
    expect(m.text.moe).toMatchObject({ nRoutedExperts: 8, numExpertsPerTok: 2, nGroup: 2, topkGroup: 1 });
    expect(loadConfig(join(FIXTURES, 'glm4v_moe/seed1')).text).toEqual(m.text);
  });

  it('reads the flat layout (text fields at the top level) as the nested one', () => {
    const nested = read('glm4v/config.json');
    const flat = { ...nested, ...nested.text_config, model_type: 'glm4v' };
    delete flat.text_config;
    const a = parseConfig(nested);
    const b = parseConfig(flat);
    expect(b.text).toEqual(a.text);
    expect(b.vision).toEqual(a.vision);
  });

  it('equals the tiny helper and round-trips through configToJson', () => {
    for (const kind of ['glm4v', 'glm4v_moe'] as const) {
      const fixture = loadConfig(join(FIXTURES, kind));
      const tiny = tinyConfig(kind);
      expect({ ...tiny.text, maxPositionEmbeddings: 0 }).toEqual({ ...fixture.text, maxPositionEmbeddings: 0 });
      expect(tiny.vision).toEqual(fixture.vision);
      expect(parseConfig(configToJson(tiny))).toEqual(tiny);
      // Python-style floats: transformers' strict config classes reject 1 for a float field.
      const text = configJsonText(tiny);
      expect(text).toMatch(/"rope_theta": 10000\.0,/);
      if (kind === 'glm4v_moe') expect(text).toMatch(/"routed_scaling_factor": 1\.0,/);
      expect(parseConfig(JSON.parse(text))).toEqual(tiny);
    }
  });

  it('presets have the real shapes; GLM-4.5V counts exactly the released 107,710,933,120 parameters', () => {
    const c41 = glm41v9bConfig();
    expect(c41.text).toMatchObject({ headDim: 128, rotaryDim: 64, numKeyValueHeads: 2, mropeSection: [8, 12, 12] });
    expect(c41.vision).toMatchObject({ headDim: 128, outHiddenSize: 4096, intermediateSize: 13696 });
    expect(c41.imageTokenId).toBe(151343);
    const n41 = countParameters(c41).total;
    expect(n41).toBeGreaterThan(10.2e9);
    expect(n41).toBeLessThan(10.4e9);
    const c45 = glm45vConfig();
    expect(c45.imageTokenId).toBe(151363);
    expect(countParameters(c45).total).toBe(107_710_933_120);
  });

  it('counts exactly the parameters the model allocates', async () => {
    const { Glm4vForConditionalGeneration } = await import('../../src/model/glm4v.js');
    for (const kind of ['glm4v', 'glm4v_moe'] as const) {
      const cfg = tinyConfig(kind);
      const model = new Glm4vForConditionalGeneration(cfg, { init: 'empty' });
      expect(model.numParameters()).toBe(countParameters(cfg).total);
    }
  });

  it('names the field, what was expected and what was found', () => {
    const base = read('glm4v/config.json');
    const without = structuredClone(base);
    delete without.text_config.hidden_size;
    expect(() => parseConfig(without, 'x.json')).toThrow(
      /text_config\.hidden_size: expected an integer ≥ 1, found nothing/,
    );
    const badSection = structuredClone(base);
    badSection.text_config.rope_scaling.mrope_section = [2, 2, 2];
    expect(() => parseConfig(badSection)).toThrow(
      /mrope_section must be three non-negative integers summing to .* 4.*\[2,2,2\]/,
    );
    expect(() => parseConfig({ ...base, model_type: 'llama', architectures: ['LlamaForCausalLM'] })).toThrow(
      /model_type must be "glm4v" or "glm4v_moe".*"llama"/,
    );
    const noVision = structuredClone(base);
    delete noVision.vision_config;
    expect(() => parseConfig(noVision)).toThrow(/vision_config is missing/);
    const wrongOut = structuredClone(base);
    wrongOut.vision_config.out_hidden_size = 32;
    expect(() => parseConfig(wrongOut)).toThrow(/out_hidden_size \(32\) must equal the text hidden_size \(64\)/);
    const heads = structuredClone(base);
    heads.text_config.num_key_value_heads = 3;
    expect(() => parseConfig(heads)).toThrow(
      /num_attention_heads \(4\) must be a multiple of num_key_value_heads \(3\)/,
    );
    const rope = structuredClone(base);
    rope.text_config.rope_scaling.rope_type = 'yarn';
    expect(() => parseConfig(rope)).toThrow(/rope type "yarn" is not supported/);
    const moe = read('glm4v_moe/config.json');
    moe.text_config.n_group = 3;
    expect(() => parseConfig(moe)).toThrow(/n_routed_experts \(8\) must be divisible by n_group \(3\)/);
    const tok = structuredClone(base);
    tok.image_token_id = 9999;
    expect(() => parseConfig(tok)).toThrow(/image_token_id 9999 is outside the vocabulary \[0, 512\)/);
    expect(() => loadConfig('/nonexistent/dir')).toThrow(/cannot read \/nonexistent\/dir\/config.json/);
  });
});
