/** Packing: best fit by hand, row layout, and a packed row computing exactly what its examples compute alone. */
import { beforeAll, describe, expect, it } from 'vitest';
import { noGrad, scope } from '../../src/engine/index.js';
import { CHAT_TEMPLATES } from '../../src/io/template.js';
import { GlmTokenizer } from '../../src/io/tokenizer.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { loadTrainConfig, type ModelStageConfig } from '../../src/train/config.js';
import { Encoder, type Example, IGNORE } from '../../src/train/encode.js';
import { archConfig, defaultProcessorConfigs } from '../../src/train/model.js';
import {
  assembleRow,
  joinExamples,
  microBatches,
  Packer,
  rowInputs,
  withSampleWeights,
} from '../../src/train/packing.js';
import { openRecords } from '../../src/train/records.js';
import { BufferRecycler } from '../../src/util/arrays.js';
import { baseConfig, type Fixture, fixture } from './helpers.js';

function fake(id: string, n: number, targets = n - 1): Example {
  const ids = Int32Array.from({ length: n }, (_, i) => 10 + i);
  const labels = Int32Array.from(ids, (v, i) => (i === 0 || i > targets ? IGNORE : v));
  return { id, group: 'g', ids, labels, targets, images: [], videos: [] };
}

describe('Packer (best fit)', () => {
  it('puts each example in the fullest bin it fits, opens bins up to the limit, then refuses', () => {
    const p = new Packer(10, 2);
    expect(p.add(fake('a', 6))).toBe(true); // bin 0: 6
    expect(p.add(fake('b', 5))).toBe(true); // does not fit bin 0 (4 left) → bin 1: 5
    expect(p.add(fake('c', 4))).toBe(true); // fits both; bin 0 is fuller → bin 0: 10
    expect(p.add(fake('d', 5))).toBe(true); // bin 1: 10
    expect(p.add(fake('e', 1))).toBe(false); // full
    expect(p.bins.map((b) => b.examples.map((e) => e.id))).toEqual([
      ['a', 'c'],
      ['b', 'd'],
    ]);
    expect(p.efficiency()).toBe(1);
  });

  it('rejects an example longer than the sequence with a clear error', () => {
    expect(() => new Packer(8, 1).add(fake('long', 9))).toThrow(
      /example long has 9 tokens, more than the sequence length 8/,
    );
    expect(() => new Packer(1, 1)).toThrow(/seqLen must be an integer ≥ 2/);
  });

  it('lays examples end to end with one segment each and a padding segment without loss', () => {
    const row = assembleRow([fake('a', 5), fake('b', 3)], { padId: 0, padMultiple: 4 });
    expect(row.inputIds.length).toBe(8);
    expect(row.cuSeqlens).toEqual([0, 5, 8]);
    const padded = assembleRow([fake('a', 5), fake('b', 4)], { padId: 0, padMultiple: 4 });
    expect(padded.cuSeqlens).toEqual([0, 5, 9, 12]);
    expect([...padded.inputIds.slice(9)]).toEqual([0, 0, 0]);
    expect([...padded.labels.slice(9)]).toEqual([IGNORE, IGNORE, IGNORE]);
    expect(padded.realTokens).toBe(9);
    expect(padded.targets).toBe(4 + 3);
  });

  it('splits bins into micro-batches in order', () => {
    const p = new Packer(6, 4);
    for (const [i, n] of [5, 5, 5, 5].entries()) p.add(fake(`x${i}`, n));
    const rows = microBatches(p.bins, 2, { padId: 0 });
    expect(rows.map((r) => r.cuSeqlens)).toEqual([
      [0, 5, 10],
      [0, 5, 10],
    ]);
  });
});

describe('a packed row equals its examples one by one', () => {
  let f: Fixture;
  let examples: Example[];
  let model: Glm4vForConditionalGeneration;
  let tokenizer: GlmTokenizer;
  beforeAll(async () => {
    f = await fixture();
    const cfg = loadTrainConfig(baseConfig(f, '/unused'), 'pretrain') as ModelStageConfig;
    tokenizer = await GlmTokenizer.fromPretrained(f.tokenizer);
    const pc = defaultProcessorConfigs(cfg.model.arch);
    const enc = new Encoder({
      tokenizer,
      imageConfig: pc.image,
      videoConfig: pc.video,
      template: CHAT_TEMPLATES.glm41v,
      style: 'glm41v',
    });
    const src = await openRecords(f.docs);
    examples = [];
    // Documents with one image, several images and none.
    for (let i = 0; examples.length < 6 && i < src.size; i++) {
      const r = src.get(i);
      if (r.type === 'doc' && !r.doc.video) examples.push(await enc.encodeDoc(r.doc));
    }
    // And a video (temporal groups with timestamps) in the middle of the row.
    for (let i = 0; i < src.size; i++) {
      const r = src.get(i);
      if (r.type === 'doc' && r.doc.video) {
        examples.splice(3, 0, await enc.encodeDoc(r.doc));
        break;
      }
    }
    src.close();
    model = Glm4vForConditionalGeneration.random(archConfig(cfg.model.arch, tokenizer), { seed: 5 });
  });

  const lossOf = (exs: Example[]) =>
    noGrad(() =>
      scope(() => {
        const row = assembleRow(exs, { padId: 0, padMultiple: 16 });
        return model
          .forward({
            ...rowInputs(row),
            lossReduction: 'sum',
          })
          .loss!.item();
      }),
    );

  it('gives the same summed loss as the examples alone (images, a video, text only)', () => {
    expect(examples.some((e) => e.images.length > 1)).toBe(true);
    expect(examples.some((e) => e.images.length === 0 && e.videos.length === 0)).toBe(true);
    expect(examples[3]!.videos.length).toBe(1);
    const alone = examples.map((e) => lossOf([e]));
    const packed = lossOf(examples);
    const sum = alone.reduce((a, b) => a + b, 0);
    expect(Math.abs(packed - sum) / sum).toBeLessThan(1e-5);
    // Reordering the examples in the row changes nothing either.
    const reversed = lossOf([...examples].reverse());
    expect(Math.abs(reversed - sum) / sum).toBeLessThan(1e-5);
  });

  it('per-sample averaging: the weighted sum is the mean over examples of their mean token losses', () => {
    const S = examples.length;
    const mean = (ex: Example) =>
      noGrad(() =>
        scope(() => {
          const row = assembleRow([ex], { padId: 0 });
          return model
            .forward({
              ...rowInputs(row),
            })
            .loss!.item();
        }),
      );
    const expected = examples.reduce((a, e) => a + mean(e), 0) / S;
    const row = withSampleWeights(assembleRow(examples, { padId: 0, padMultiple: 16 }), S);
    const got = noGrad(() =>
      scope(() => {
        return model
          .forward({
            ...rowInputs(row), // row.weights are the per-sample label weights
            lossReduction: 'sum',
          })
          .loss!.item();
      }),
    );
    expect(Math.abs(got - expected) / expected).toBeLessThan(1e-5);
    // And it differs from the token mean (examples have different lengths) by far more than the tolerance above.
    const tokenMean = lossOf(examples) / examples.reduce((a, e) => a + e.targets, 0);
    expect(Math.abs(tokenMean - expected) / expected).toBeGreaterThan(1e-4);
  });

  it('blank media rounding the vision batches to a bucket change neither the loss nor the gradients', () => {
    const tok = (t: string) => tokenizer.id(t);
    const vb = {
      bucket: 100,
      imageId: tok('<|image|>'),
      beginImageId: tok('<|begin_of_image|>'),
      endImageId: tok('<|end_of_image|>'),
      beginVideoId: tok('<|begin_of_video|>'),
      endVideoId: tok('<|end_of_video|>'),
      mergeSize: 2,
    };
    const plain = assembleRow(examples, { padId: 0, padMultiple: 16 });
    const bucketed = assembleRow(examples, { padId: 0, padMultiple: 16, visionBucket: vb });
    const patches = (grids: typeof plain.imageGridThw) => grids.reduce((a, g) => a + g[0] * g[1] * g[2], 0);
    for (const k of ['imageGridThw', 'videoGridThw'] as const) {
      expect(patches(bucketed[k]) % 100, k).toBe(0);
      expect(patches(bucketed[k]), k).toBeGreaterThan(patches(plain[k]));
    }
    expect(bucketed.imageGridThw.at(-1)![1]).toBe(2);
    expect(bucketed.realTokens).toBe(plain.realTokens);
    expect(bucketed.targets).toBe(plain.targets);
    const run = (r: typeof plain) => {
      model.zeroGrad();
      const loss = scope(() => {
        const out = model.forward({
          ...rowInputs(r),
          lossReduction: 'sum',
        });
        out.loss!.backward();
        return out.loss!.item();
      });
      const g = new Map(model.namedParameters().map(([n, p]) => [n, p.grad ? p.grad.toFloat32() : null]));
      model.zeroGrad();
      return { loss, g };
    };
    const a = run(plain);
    const b = run(bucketed);
    expect(Math.abs(a.loss - b.loss) / a.loss).toBeLessThan(1e-5);
    for (const [n, ga] of a.g) {
      const gb = b.g.get(n)!;
      let num = 0;
      let den = 0;
      for (let i = 0; i < ga!.length; i++) {
        num += (ga![i]! - gb![i]!) ** 2;
        den += ga![i]! ** 2;
      }
      expect(Math.sqrt(num / Math.max(den, 1e-30)), n).toBeLessThan(1e-4);
    }
    // Rows without images stay without.
    const textOnly = examples.filter((e) => !e.images.length && !e.videos.length);
    expect(assembleRow(textOnly, { padId: 0, visionBucket: vb }).imageGridThw).toEqual([]);
  });

  it('rows built into recycled pixel buffers hold the same values as fresh rows, and the buffers are reused', () => {
    const withImages = examples.filter((e) => e.images.length || e.videos.length);
    expect(withImages.length).toBeGreaterThan(1);
    const pixels = new BufferRecycler();
    const fresh = assembleRow(withImages, { padId: 0, padMultiple: 16 });
    const first = assembleRow(withImages, { padId: 0, padMultiple: 16, pixelBuffer: pixels.take });
    for (const k of ['pixelValues', 'pixelValuesVideos'] as const) expect(first[k], k).toEqual(fresh[k]);
    const round1 = [first.pixelValues, first.pixelValuesVideos].filter((a) => a).map((a) => a!.buffer);
    pixels.recycle();
    // A smaller row next round takes one of those buffers, overwritten with its own values.
    const one = withImages.filter((e) => e.images.length).slice(0, 1);
    const second = assembleRow(one, { padId: 0, pixelBuffer: pixels.take });
    expect(round1).toContain(second.pixelValues!.buffer);
    expect(second.pixelValues).toEqual(assembleRow(one, { padId: 0 }).pixelValues);
    // Within a round a buffer is handed out once.
    expect(pixels.take(4).buffer).not.toBe(second.pixelValues!.buffer);
  });

  it('sequence isolation: one attention span per packed sequence, the same as the documents joined into one', () => {
    const p = new Packer(2048, 2);
    for (const e of examples) p.add(e);
    const rows = microBatches(p.bins, 2, { padId: 0, isolation: 'sequence' });
    expect(rows).toHaveLength(1);
    expect(rows[0]!.cuSeqlens.length - 1).toBe(
      p.bins.length + (rows[0]!.inputIds.length > rows[0]!.realTokens ? 1 : 0),
    );
    const joined = p.bins.map((b) => joinExamples(b.examples));
    expect(joined[0]!.targets).toBe(p.bins[0]!.examples.reduce((a, e) => a + e.targets, 0));
    const spans = lossOf(joined);
    const isolated = lossOf(examples);
    // Documents now see their neighbours: a different loss from isolated packing.
    expect(Math.abs(spans - isolated) / isolated).toBeGreaterThan(1e-4);
    const alone = joined.map((j) => lossOf([j])).reduce((a, b) => a + b, 0);
    expect(Math.abs(spans - alone) / alone).toBeLessThan(1e-5);
  });

  it('gives the same gradients as the examples accumulated one by one', () => {
    const grad = (batches: Example[][]) => {
      model.zeroGrad();
      for (const exs of batches)
        scope(() => {
          const row = assembleRow(exs, { padId: 0 });
          model
            .forward({
              ...rowInputs(row),
              lossReduction: 'sum',
            })
            .loss!.backward();
        });
      const out = new Map<string, Float32Array>();
      for (const [n, p] of model.namedParameters())
        if (
          n.endsWith('embed_tokens.weight') ||
          n.includes('visual.blocks.0.attn.qkv.weight') ||
          n === 'lm_head.weight'
        )
          out.set(n, p.grad!.toFloat32());
      model.zeroGrad();
      return out;
    };
    const a = grad(examples.map((e) => [e]));
    const b = grad([examples]);
    for (const [n, g] of a) {
      const h = b.get(n)!;
      let num = 0;
      let den = 0;
      for (let i = 0; i < g.length; i++) {
        num += (g[i]! - h[i]!) ** 2;
        den += g[i]! ** 2;
      }
      expect(Math.sqrt(num / den), n).toBeLessThan(1e-4);
    }
  });
});
