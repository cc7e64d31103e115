import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSafetensors, noGrad } from '../../src/engine/index.js';
import { ParamFactory } from '../../src/model/modules.js';
import { glm41v9bConfig } from '../../src/model/presets.js';
import { visionLayout } from '../../src/model/rope.js';
import { Glm4vVisionEmbeddings, sinCos2d } from '../../src/model/vision.js';
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

describe('sine-cosine position codes (from-scratch init)', () => {
  it('code the row in the first half and the column in the second, every position apart from every other', () => {
    const side = 8;
    const dim = 96;
    const t = sinCos2d(side, dim);
    const row = (r: number, c: number) => t.subarray((r * side + c) * dim, (r * side + c + 1) * dim);
    // Hand-computed: position (2, 5), first frequency (1): sin 2, cos 2, sin 5, cos 5.
    const q = dim / 4;
    expect(row(2, 5)[0]).toBeCloseTo(Math.sin(2), 6);
    expect(row(2, 5)[q]).toBeCloseTo(Math.cos(2), 6);
    expect(row(2, 5)[2 * q]).toBeCloseTo(Math.sin(5), 6);
    expect(row(2, 5)[3 * q]).toBeCloseTo(Math.cos(5), 6);
    // Same row → same first half; same column → same second half.
    expect([...row(3, 1).subarray(0, dim / 2)]).toEqual([...row(3, 6).subarray(0, dim / 2)]);
    expect([...row(0, 4).subarray(dim / 2)]).toEqual([...row(7, 4).subarray(dim / 2)]);
    let minDist = Number.POSITIVE_INFINITY;
    for (let a = 0; a < side * side; a++)
      for (let b = a + 1; b < side * side; b++) {
        let d = 0;
        for (let k = 0; k < dim; k++) d += (t[a * dim + k]! - t[b * dim + k]!) ** 2;
        minDist = Math.min(minDist, Math.sqrt(d));
      }
    expect(minDist).toBeGreaterThan(0.5);
    expect(() => sinCos2d(8, 30)).toThrow(/multiple of 4/);
  });

  it('initSinCos sets the table the forward pass resamples', () => {
    const cfg = { ...glm41v9bConfig().vision, hiddenSize: 32, imageSize: 112, patchSize: 14 };
    const emb = new Glm4vVisionEmbeddings(cfg, new ParamFactory('empty', 'float32', null, 0));
    emb.initSinCos();
    expect([...emb.position_embedding.weight.toFloat32()]).toEqual([...sinCos2d(8, 32)]);
    // On the table's own 8×8 grid the bicubic resampling returns the codes themselves.
    const out = noGrad(() => emb.forward(visionLayout([[1, 8, 8]], 2)));
    expect(out.shape).toEqual([64, 32]);
  });
});
