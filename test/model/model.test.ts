/** Behaviour of the model beyond the reference fixtures: cache, padding, packing, loss, gradients, routing, errors. */
import { describe, expect, it } from 'vitest';
import { F, fromArray, noGrad, randn, type Tensor } from '../../src/engine/index.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { ParamFactory } from '../../src/model/modules.js';
import { tinyConfig } from '../../src/model/presets.js';
import { Glm4vMoeTextMoE, Glm4vMoeTextTopkRouter, KVCache, type TextContext } from '../../src/model/text.js';
import { Rng } from '../../src/util/rng.js';
import { maxRelDiff } from '../helpers/close.js';
import { maxAbsDiff } from './helpers.js';

const IMG = 504;
const image = (n: number) => [500, ...new Array(n).fill(IMG), 501];
const pixels = (rows: number, seed: number) => randn([rows, 1176], { rng: new Rng(seed) });
const TOL = 1e-4;

// A prompt with an image (grid 1×4×4 → 4 tokens) and a continuation.
const PROMPT = [3, 17, 250, ...image(4), 310, 41, 7, 199, 88, 12, 13];
const GRID = [[1, 4, 4]];

function rowLogits(t: Tensor, b: number, from: number, to: number): Tensor {
  return t.select(0, b).slice(0, from, to);
}

for (const kind of ['glm4v', 'glm4v_moe'] as const) {
  describe(`model ${kind}`, () => {
    const model = Glm4vForConditionalGeneration.random(tinyConfig(kind), { seed: 5 });
    const px = pixels(16, 1);

    it('KV cache: prefill + decode steps (one and several tokens, with growth) equal the full forward', () => {
      const full = noGrad(() => model.forward({ inputIds: [PROMPT], pixelValues: px, imageGridThw: GRID })).logits;
      const cache = new KVCache(2, 4); // capacity 4 forces growth during prefill and decoding
      const P = 9;
      const a = model.forward({ inputIds: [PROMPT.slice(0, P)], pixelValues: px, imageGridThw: GRID, cache });
      expect(maxAbsDiff(a.logits, rowLogits(full, 0, 0, P))).toBeLessThan(TOL);
      let at = P;
      for (const n of [1, 2, 1]) {
        const step = model.forward({ inputIds: [PROMPT.slice(at, at + n)], cache });
        expect(step.positionIds[0]).toBe(at + a.ropeDeltas[0]!);
        expect(maxAbsDiff(step.logits, rowLogits(full, 0, at, at + n))).toBeLessThan(TOL);
        at += n;
      }
      expect(cache.length).toBe(at);
      expect(cache.capacity).toBeGreaterThanOrEqual(at);
      cache.dispose();
      expect(() => cache.update(0, randn([1, 1, 2, 16]), randn([1, 1, 2, 16]))).toThrow(/disposed/);
    });

    it('left padding with a cache: every row equals its own unpadded run', () => {
      const short = [5, 6, 7, 8];
      const ids = [PROMPT.slice(0, 12), [0, 0, 0, 0, 0, 0, 0, 0, ...short]];
      const mask = [new Array(12).fill(1), [...new Array(8).fill(0), 1, 1, 1, 1]];
      const cache = model.newCache();
      const pre = model.forward({ inputIds: ids, attentionMask: mask, pixelValues: px, imageGridThw: GRID, cache });
      const next = [[PROMPT[12]!], [9]];
      const step = model.forward({ inputIds: next, cache, attentionMask: mask.map((r) => [...r, 1]) });
      const solo0 = noGrad(() =>
        model.forward({ inputIds: [PROMPT.slice(0, 13)], pixelValues: px, imageGridThw: GRID }),
      ).logits;
      const solo1 = noGrad(() => model.forward({ inputIds: [[...short, 9]] })).logits;
      expect(maxAbsDiff(rowLogits(pre.logits, 0, 0, 12), rowLogits(solo0, 0, 0, 12))).toBeLessThan(TOL);
      expect(maxAbsDiff(rowLogits(pre.logits, 1, 8, 12), rowLogits(solo1, 0, 0, 4))).toBeLessThan(TOL);
      expect(maxAbsDiff(step.logits.select(0, 0), rowLogits(solo0, 0, 12, 13))).toBeLessThan(TOL);
      expect(maxAbsDiff(step.logits.select(0, 1), rowLogits(solo1, 0, 4, 5))).toBeLessThan(TOL);
      expect(() =>
        model.forward({
          inputIds: [[1], [1]],
          cache,
          attentionMask: [
            [1, 1],
            [0, 1],
          ],
        }),
      ).toThrow(/expected \[2, 14\] \(past \+ new\) or \[2, 1\]/);
      const badMask = mask.map((r) => [...r, 1, 1]);
      badMask[0]![0] = 0;
      expect(() => model.forward({ inputIds: [[1], [1]], cache, attentionMask: badMask })).toThrow(
        /row 0 position 0 is 0, but with a KV cache only the left padding/,
      );
      cache.dispose();
    });

    it('right padding without a cache: real positions equal the unpadded rows; pads never count in the loss', () => {
      const a = [4, 5, 6, 7, 8, 9];
      const b = [10, 11, 12];
      const ids = [a, [...b, 0, 0, 0]];
      const mask = [a.map(() => 1), [1, 1, 1, 0, 0, 0]];
      const out = noGrad(() =>
        model.forward({ inputIds: ids, attentionMask: mask, labels: ids, lossReduction: 'sum' }),
      );
      const sa = noGrad(() => model.forward({ inputIds: [a], labels: [a], lossReduction: 'sum' }));
      const sb = noGrad(() => model.forward({ inputIds: [b], labels: [b], lossReduction: 'sum' }));
      expect(maxAbsDiff(rowLogits(out.logits, 1, 0, 3), sb.logits.select(0, 0))).toBeLessThan(TOL);
      expect(out.loss!.item()).toBeCloseTo(sa.loss!.item() + sb.loss!.item(), 3);
    });

    it('packed samples (cuSeqlens) equal separate forwards, images included; no loss across the boundary', () => {
      const s1 = [3, 4, ...image(4), 5, 6];
      const s2 = [7, ...image(6), 8, 9, 10];
      const px2 = pixels(24, 2);
      const both = fromArray(Float32Array.from([...px.toFloat32(), ...px2.toFloat32()]), [40, 1176]);
      const packed = noGrad(() =>
        model.forward({
          inputIds: [[...s1, ...s2]],
          cuSeqlens: [0, s1.length, s1.length + s2.length],
          pixelValues: both,
          imageGridThw: [GRID[0]!, [1, 4, 6]],
          labels: [[...s1, ...s2]],
          lossReduction: 'sum',
        }),
      );
      const o1 = noGrad(() =>
        model.forward({ inputIds: [s1], pixelValues: px, imageGridThw: GRID, labels: [s1], lossReduction: 'sum' }),
      );
      const o2 = noGrad(() =>
        model.forward({
          inputIds: [s2],
          pixelValues: px2,
          imageGridThw: [[1, 4, 6]],
          labels: [s2],
          lossReduction: 'sum',
        }),
      );
      expect(maxAbsDiff(rowLogits(packed.logits, 0, 0, s1.length), o1.logits.select(0, 0))).toBeLessThan(TOL);
      expect(
        maxAbsDiff(rowLogits(packed.logits, 0, s1.length, s1.length + s2.length), o2.logits.select(0, 0)),
      ).toBeLessThan(TOL);
      expect(packed.loss!.item()).toBeCloseTo(o1.loss!.item() + o2.loss!.item(), 3);
    });

    it('loss: shifted cross-entropy over non-ignored labels, with weights and per-token output', () => {
      const ids = [[3, 4, 5, 6, 7]];
      const labels = [[-100, 4, -100, 6, 7]];
      const out = noGrad(() => model.forward({ inputIds: ids, labels }));
      const lp = F.logSoftmax(out.logits, -1).select(0, 0);
      const nll = (pos: number, tok: number) => -lp.select(0, pos).select(0, tok).item();
      // position l predicts labels[l + 1]
      const want = [nll(0, 4), nll(2, 6), nll(3, 7)];
      expect(out.loss!.item()).toBeCloseTo((want[0]! + want[1]! + want[2]!) / 3, 5);
      const none = noGrad(() => model.forward({ inputIds: ids, labels, lossReduction: 'none' })).loss!;
      expect(none.shape).toEqual([1, 5]);
      const per = none.toArray();
      expect(per[0]).toBeCloseTo(want[0]!, 5);
      expect(per[1]).toBe(0);
      expect(per[4]).toBe(0);
      const w = fromArray(Float32Array.from([0, 2, 0, 1, 1]), [1, 5]);
      const weighted = noGrad(() => model.forward({ inputIds: ids, labels, labelWeights: w })).loss!.item();
      expect(weighted).toBeCloseTo((2 * want[0]! + want[1]! + want[2]!) / 4, 5);
    });

    it('backward reaches every trainable parameter (vision and text) and gradient checkpointing gives the same', () => {
      const ids = [PROMPT];
      const labels = [PROMPT.map((t) => (t === IMG ? -100 : t))];
      const m = Glm4vForConditionalGeneration.random(tinyConfig(kind), { seed: 9 });
      const run = () => {
        m.zeroGrad();
        const out = m.forward({ inputIds: ids, labels, pixelValues: px, imageGridThw: GRID });
        out.loss!.backward();
        return new Map(m.namedParameters().map(([n, p]) => [n, p.grad ? p.grad.toFloat32() : null]));
      };
      const plain = run();
      for (const [name, g] of plain) {
        const p = m.namedParameters().find(([n]) => n === name)![1];
        if (!p.requiresGrad) {
          expect(name).toMatch(/e_score_correction_bias$/);
          expect(g).toBeNull();
        } else if (!/\.experts\.\d+\./.test(name)) {
          expect(g, name).not.toBeNull();
          expect(
            g!.some((v) => v !== 0),
            name,
          ).toBe(true);
        }
      }
      m.gradientCheckpointing = true;
      const ck = run();
      for (const [name, g] of plain) {
        if (!g) continue;
        expect(maxRelDiff(ck.get(name)!, g), name).toBeLessThan(1e-5);
      }
    });

    it('rejects bad input with messages that name it', () => {
      const f = (x: Parameters<typeof model.forward>[0]) => () => noGrad(() => model.forward(x));
      expect(f({ inputIds: [[1, 600]] })).toThrow(
        /inputIds: token id 600 at \[0, 1\] is outside the vocabulary \[0, 512\)/,
      );
      expect(f({ inputIds: [[1, 2], [3]] })).toThrow(/row 1 has 1 entries, expected 2/);
      expect(f({ inputIds: [PROMPT] })).toThrow(/inputIds contain 4 image token\(s\) but no pixelValues\/imageEmbeds/);
      expect(f({ inputIds: [PROMPT], pixelValues: pixels(24, 3), imageGridThw: [[1, 4, 6]] })).toThrow(
        /getRopeIndex|inputIds contain 4 image token\(s\) but the vision features have 6 rows/,
      );
      expect(f({ inputIds: [PROMPT], pixelValues: px, imageGridThw: [[1, 4, 6]] })).toThrow(
        /describes 24 patches but the pixel values have 16 rows/,
      );
      expect(f({ inputIds: [[1, 2, 3]], attentionMask: [[1, 0, 1]] })).toThrow(/padding between tokens \(position 1\)/);
      expect(f({ inputIds: [[1, 2, 3]], cuSeqlens: [0, 2] })).toThrow(
        /cuSeqlens: expected strictly increasing offsets from 0 to the row length 3/,
      );
      expect(f({ inputIds: [[1, 2, 3]], labels: [[1, 2]] })).toThrow(/labels: .*row|labels: expected \[1, 3\]/);
      expect(f({ inputIds: [[1, 2, 3]], labels: [[1, 2, 900]] })).toThrow(/labels: value 900 at \[0, 2\]/);
      expect(f({ inputIds: [[1, 2, 3]], labels: [[1, 2, 3]], logitsToKeep: 1 })).toThrow(
        /labels need logits for every position/,
      );
      const cache = model.newCache();
      expect(f({ inputIds: [[1, 2, 0]], attentionMask: [[1, 1, 0]], cache })).toThrow(/right-padded; with a KV cache/);
      model.forward({ inputIds: [[1, 2]], cache });
      expect(f({ inputIds: [[IMG]], pixelValues: px, imageGridThw: GRID, cache })).toThrow(
        /pixel values go with the first forward \(prefill\)/,
      );
      expect(f({ inputIds: [[1, 2]], cuSeqlens: [0, 1, 2], cache })).toThrow(/cannot be combined with a KV cache/);
      cache.dispose();
    });
  });
}

describe('MoE routing', () => {
  // hidden = E = 8 and W = identity·1, so router logits equal the input and choices are hand-checkable.
  const cfg = tinyConfig('glm4v_moe');
  const moe = { ...cfg.text.moe!, nRoutedExperts: 8, numExpertsPerTok: 2, nGroup: 2, topkGroup: 1 };
  const router = new Glm4vMoeTextTopkRouter(moe, 8, new ParamFactory('empty', 'float32', null, 0.02));
  const eye = new Float32Array(64);
  for (let i = 0; i < 8; i++) eye[i * 9] = 1;
  router.weight.copy_(fromArray(eye, [8, 8]));
  const logit = (p: number) => Math.log(p / (1 - p));

  it('ranks groups by their top-2 biased scores, picks top-k inside, weights by unbiased normalised scores', () => {
    // Group 0 = experts 0..3, group 1 = 4..7. Scores: expert 0 is the single best, but group 1's top-2 sum wins.
    const s = [0.95, 0.1, 0.1, 0.1, 0.6, 0.7, 0.1, 0.1];
    router.e_score_correction_bias.copy_(fromArray(new Float32Array(8), [8]));
    const x = fromArray(Float32Array.from(s.map(logit)), [1, 8]);
    const r = router.route(x);
    expect(Array.from(r.indices)).toEqual([5, 4]);
    const w = r.weights.toArray();
    expect(w[0]).toBeCloseTo(0.7 / 1.3, 5);
    expect(w[1]).toBeCloseTo(0.6 / 1.3, 5);
    // The bias changes the choice (experts 6 and 7 win inside group 1) but not the weights' source scores.
    router.e_score_correction_bias.copy_(fromArray(Float32Array.from([0, 0, 0, 0, 0, 0, 0.8, 0.75]), [8]));
    const r2 = router.route(x);
    expect(Array.from(r2.indices)).toEqual([6, 7]);
    expect(r2.weights.toArray()[0]).toBeCloseTo(0.5, 5);
  });

  it('loss-free balancing moves each router bias against its expert load', () => {
    const m = Glm4vForConditionalGeneration.random(tinyConfig('glm4v_moe'), { seed: 2 });
    const out = noGrad(() => m.forward({ inputIds: [[3, 4, 5, 6, 7, 8, 9, 10]], outputRouterStats: true }));
    const st = out.routerStats!;
    expect(st.map((s) => s.layer)).toEqual([1]);
    const counts = st[0]!.counts;
    expect(counts.reduce((a, b) => a + b, 0)).toBe(16);
    expect(m.updateRouterBiases(st, 0.01)).toBe(1);
    const bias = (m.model.language_model.layers[1]!.mlp as Glm4vMoeTextMoE).gate.e_score_correction_bias.toArray();
    counts.forEach((c, i) => {
      expect(bias[i]).toBeCloseTo(c > 2 ? -0.01 : c < 2 ? 0.01 : 0, 6);
    });
    expect(() => m.updateRouterBiases([{ layer: 0, counts, topk: new Int32Array(0), auxLoss: null }])).toThrow(
      /layer 0 has no MoE router/,
    );
  });

  it('sequence-level balance loss = Σᵢ fᵢ·Pᵢ averaged over sequences', () => {
    const c = tinyConfig('glm4v_moe');
    const layer = new Glm4vMoeTextMoE(c.text, 1, new ParamFactory('normal', 'float32', new Rng(3), 0.3));
    const x = randn([1, 6, c.text.hiddenSize], { rng: new Rng(4) });
    const ctx = {
      cos: fromArray(new Float32Array(0), [0]),
      sin: fromArray(new Float32Array(0), [0]),
      cuSeqlens: null,
      keyStart: null,
      cache: null,
      routerStats: [],
      auxSequences: [
        { start: 0, end: 4, mask: null },
        { start: 4, end: 6, mask: null },
      ],
    } as TextContext;
    noGrad(() => layer.forward(x, ctx));
    const got = ctx.routerStats![0]!.auxLoss!.item();
    const { scores, indices } = noGrad(() => layer.gate.route(F.reshape(x, [6, c.text.hiddenSize])));
    const s = scores.toFloat32();
    const E = 8;
    const k = 2;
    let want = 0;
    for (const [a, b] of [
      [0, 4],
      [4, 6],
    ] as const) {
      const T = b - a;
      for (let e = 0; e < E; e++) {
        let cnt = 0;
        let P = 0;
        for (let t = a; t < b; t++) {
          for (let j = 0; j < k; j++) if (indices[t * k + j] === e) cnt++;
          let sum = 0;
          for (let q = 0; q < E; q++) sum += s[t * E + q]!;
          P += s[t * E + e]! / sum / T;
        }
        want += ((E / (k * T)) * cnt * P) / 2;
      }
    }
    expect(got).toBeCloseTo(want, 5);
    expect(Array.from(ctx.routerStats![0]!.counts).reduce((p, q) => p + q, 0)).toBe(12);
  });
});
