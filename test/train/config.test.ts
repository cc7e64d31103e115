/** Config validation (clear errors), overrides, the shipped examples and the field reference. */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  applyOverrides,
  configDifferences,
  configFieldPaths,
  loadTrainConfig,
  parseTrainConfig,
  readConfigFile,
  STAGES,
} from '../../src/train/config.js';

const base = () => ({
  run: { dir: 'runs/x', steps: 10 },
  model: { tokenizer: 'tok' },
  data: { sources: [{ path: 'data/pretrain' }] },
});

describe('validation', () => {
  it('fills documented defaults', () => {
    const c = parseTrainConfig(base(), 'pretrain');
    if (c.stage === 'tokenizer') throw new Error('unreachable');
    expect(c.pack.seqLen).toBe(1024);
    expect(c.batch).toEqual({ rows: 8, microRows: 2 });
    expect(c.optim.schedule).toBe('cosine');
    expect(c.model.arch.vision.patchSize).toBe(14);
    expect(c.precision).toBe('fp32');
  });

  it('names the field, what was expected and what was found', () => {
    const bad =
      (patch: object, stage: 'pretrain' | 'sft' = 'pretrain') =>
      () =>
        parseTrainConfig({ ...base(), ...patch }, stage, 'train config t.yaml');
    expect(bad({ pack: { seqLen: -3 } })).toThrow(/train config t\.yaml: pack\.seqLen: .*(too small|>0).*\(found -3\)/);
    expect(bad({ optim: { lrr: 1 } })).toThrow(/optim: unknown field "lrr"/);
    expect(bad({ precision: 'fp16' })).toThrow(/precision: .*"fp32".*"bf16".*\(found "fp16"\)/);
    expect(bad({ run: { dir: 'x' } })).toThrow(/run\.steps: .*\(found nothing \(the field is missing\)\)/);
    expect(bad({ data: { sources: [] } })).toThrow(/data\.sources: .*\(found \[\]\)/);
    expect(bad({ batch: { rows: 6, microRows: 4 } })).toThrow(
      /batch\.rows \(6\) must be a multiple of batch\.microRows \(4\)/,
    );
    expect(bad({ model: {} })).toThrow(/model\.init is "scratch", so model\.tokenizer must name a tokenizer folder/);
    expect(bad({ model: { tokenizer: 't', arch: { hiddenSize: 100, heads: 4 } } })).toThrow(
      /head dim hiddenSize \/ heads = 25/,
    );
    expect(bad({ pack: { isolation: 'sequence' }, optim: { lossAverage: 'sample' } })).toThrow(
      /lossAverage "sample" needs pack\.isolation "sample"/,
    );
    expect(bad({ optim: { warmupSteps: 20 } })).toThrow(/optim\.warmupSteps \(20\) exceeds run\.steps \(10\)/);
    expect(bad({ sft: { filter: { minPassRate: 0.5, maxPassRate: 0.5 } } }, 'sft')).toThrow(
      /minPassRate \(0\.5\) must be below maxPassRate/,
    );
    expect(bad({ sft: { nothinkShare: 0.2 } })).toThrow(/unknown field "sft"/);
    expect(() => parseTrainConfig({ ...base(), stage: 'sft' }, 'pretrain', 'f.yaml')).toThrow(
      /f\.yaml: the file is a "sft" config but the command trains stage "pretrain"/,
    );
    expect(() => parseTrainConfig([1], 'pretrain')).toThrow(/expected a mapping of fields/);
    expect(() => parseTrainConfig({ run: { dir: 'x' } }, 'tokenizer')).toThrow(
      /data\.sources and data\.corpora are both empty/,
    );
  });

  it('reports unreadable and malformed files', () => {
    expect(() => readConfigFile('/nonexistent/x.yaml')).toThrow(/train config \/nonexistent\/x\.yaml: cannot read/);
    const p = join(tmpdir(), `glmv-bad-${process.pid}.json`);
    writeFileSync(p, '{"run": ');
    expect(() => readConfigFile(p)).toThrow(/not valid JSON/);
  });
});

describe('--set overrides', () => {
  it('sets nested fields with YAML-typed values, creating maps and list slots', () => {
    const raw = applyOverrides(base(), [
      'optim.lr=3e-4',
      'precision=bf16',
      'data.sources.0.weight=2',
      'data.sources.1.path=data/more',
      'optim.betas=[0.9, 0.99]',
      'data.mixture.caption=3',
    ]);
    const c = parseTrainConfig(raw, 'pretrain');
    if (c.stage === 'tokenizer') throw new Error('unreachable');
    expect(c.optim.lr).toBe(3e-4);
    expect(c.precision).toBe('bf16');
    expect(c.data.sources.map((s) => [s.path, s.weight])).toEqual([
      ['data/pretrain', 2],
      ['data/more', 1],
    ]);
    expect(c.optim.betas).toEqual([0.9, 0.99]);
    expect(c.data.mixture).toEqual({ caption: 3 });
    expect(base().run.dir).toBe('runs/x'); // the input is not mutated
  });

  it('refuses malformed overrides and reports unknown keys through validation', () => {
    expect(() => applyOverrides(base(), ['optim.lr'])).toThrow(/--set "optim\.lr": expected key\.path=value/);
    expect(() => applyOverrides(base(), ['run..dir=x'])).toThrow(/empty key/);
    expect(() => applyOverrides(base(), ['run.dir.x=1'])).toThrow(/run\.dir is "runs\/x", not a mapping/);
    expect(() => parseTrainConfig(applyOverrides(base(), ['optim.lrate=1']), 'pretrain')).toThrow(
      /unknown field "lrate"/,
    );
  });
});

describe('resume compatibility', () => {
  it('ignores fields that do not change what is computed and lists the ones that do', () => {
    const a = parseTrainConfig(base(), 'pretrain');
    const b = parseTrainConfig(
      applyOverrides(base(), [
        'run.logEvery=5',
        'run.checkpointEvery=7',
        'eval.every=3',
        'optim.lr=1',
        'pack.seqLen=64',
      ]),
      'pretrain',
    );
    expect(configDifferences(a, b)).toEqual(['pack.seqLen', 'optim.lr']);
  });
});

describe('shipped configs and the field reference', () => {
  const dir = 'configs/train';
  it('every example config is valid for its stage', () => {
    const files = readdirSync(dir).filter((f) => f.endsWith('.yaml'));
    expect(files.sort()).toEqual(['longctx.yaml', 'pretrain.yaml', 'sft.yaml', 'tokenizer.yaml']);
    for (const f of files) {
      const stage = f.replace('.yaml', '') as (typeof STAGES)[number];
      expect(() => loadTrainConfig(join(dir, f), stage), f).not.toThrow();
    }
  });

  it('configs/train/README.md documents every field of every stage', () => {
    const readme = readFileSync(join(dir, 'README.md'), 'utf8');
    for (const stage of STAGES) {
      const paths = configFieldPaths(stage);
      // Leaves (and lists); sections like `optim` are documented through their fields.
      const leaves = paths.filter((p) => !paths.some((q) => q.startsWith(`${p}.`)) || p.endsWith('[]'));
      expect(leaves.length).toBeGreaterThan(10);
      for (const path of leaves) expect(readme.includes(`\`${path}\``), `${stage}: ${path}`).toBe(true);
    }
  });
});

describe('model.visionPositionInit', () => {
  it('starts a from-scratch vision tower with sine-cosine codes, and refuses a trained init', async () => {
    const { fixture, baseConfig } = await import('./helpers.js');
    const { initStageModel } = await import('../../src/train/model.js');
    const { loadTrainConfig } = await import('../../src/train/config.js');
    type Sft = import('../../src/train/config.js').SftConfig;
    const { sinCos2d } = await import('../../src/model/vision.js');
    const f = await fixture();
    const cfg = loadTrainConfig(baseConfig(f, '/unused', {}), 'sft') as Sft;
    const sincos = loadTrainConfig(
      baseConfig(f, '/unused', { model: { ...baseConfig(f, '/unused').model, visionPositionInit: 'sincos' } }),
      'sft',
    ) as Sft;
    const a = await initStageModel(cfg);
    const b = await initStageModel(sincos);
    const v = b.model.model.visual;
    const side = v.config.imageSize / v.config.patchSize;
    expect([...v.embeddings.position_embedding.weight.toFloat32()]).toEqual([...sinCos2d(side, v.config.hiddenSize)]);
    // Every other weight is the same seeded init.
    expect([...b.model.model.visual.patch_embed.proj.weight.toFloat32()]).toEqual([
      ...a.model.model.visual.patch_embed.proj.weight.toFloat32(),
    ]);
    const trained = loadTrainConfig(
      baseConfig(f, '/unused', { model: { init: 'models/glmv-small', visionPositionInit: 'sincos' } }),
      'sft',
    ) as Sft;
    await expect(initStageModel(trained)).rejects.toThrow(/only a model from scratch/);
  });
});

describe('optim.visionLrScale', () => {
  it('puts the vision tower in groups of its own at the scaled lr, and keeps the two-group layout at 1', async () => {
    const { fixture, baseConfig } = await import('./helpers.js');
    const { initStageModel } = await import('../../src/train/model.js');
    const { createOptimizer } = await import('../../src/train/step.js');
    const { loadTrainConfig } = await import('../../src/train/config.js');
    type Sft = import('../../src/train/config.js').SftConfig;
    const f = await fixture();
    const plain = loadTrainConfig(baseConfig(f, '/unused', {}), 'sft') as Sft;
    const scaled = loadTrainConfig(
      baseConfig(f, '/unused', { optim: { lr: 3e-3, warmupSteps: 1, visionLrScale: 0.1 } }),
      'sft',
    ) as Sft;
    const sm = await initStageModel(plain);
    expect(createOptimizer(sm, plain).opt.groups.map((g) => g.lrScale)).toEqual([1, 1]);
    const { opt } = createOptimizer(sm, scaled);
    const visual = new Set(sm.model.model.visual.parameters());
    for (const g of opt.groups) {
      const inVision = g.params.map((p) => visual.has(p));
      expect(new Set(inVision).size).toBe(1);
      expect(g.lrScale).toBe(inVision[0] ? 0.1 : 1);
    }
    opt.setLr(2e-3);
    expect(opt.groups.map((g) => g.lr).sort()).toEqual([2e-4, 2e-4, 2e-3, 2e-3]);
  });
});
