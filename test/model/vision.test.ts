import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSafetensors, noGrad } from '../../src/engine/index.js';
import { ParamFactory } from '../../src/model/modules.js';
import { glm41v9bConfig } from '../../src/model/presets.js';
import { visionLayout } from '../../src/model/rope.js';
import { Glm4vVisionEmbeddings } from '../../src/model/vision.js';
import { FIXTURES, maxAbsDiff } from './helpers.js';

describe('vision position table', () => {
  it('resamples the real 24×24 table to real-size grids exactly as the reference (bicubic, border)', () => {
    const ref = loadSafetensors(join(FIXTURES, 'glm4v/seed1/resample.safetensors'));
    const table = ref.get('table')!;
    const cfg = { ...glm41v9bConfig().vision, hiddenSize: table.shape[1] as number };
    const emb = new Glm4vVisionEmbeddings(cfg, new ParamFactory('empty', 'float32', null, 0));
    emb.position_embedding.weight.copy_(table);
    const names = [...ref.keys()].filter((k) => k !== 'table');
    expect(names.length).toBe(6);
    for (const name of names) {
      const grid = name.split('x').map(Number);
      const ours = noGrad(() => emb.forward(visionLayout([grid], 2)));
      expect(ours.shape).toEqual(ref.get(name)!.shape);
      expect(maxAbsDiff(ours, ref.get(name)!), name).toBeLessThan(1e-5);
    }
  });
});
