/**
 * Group decoding (shared prefill, finished rows dropped) against `generate` over the prompts repeated G times with
 * the same row seeds: the same tokens, the same finish reasons and forced answers, and the same log-probs, on a
 * tiny random GLM-4.1V checkpoint with text and image prompts of different lengths.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { fromArray } from '../../src/engine/index.js';
import { ChatModel } from '../../src/io/chat.js';
import { type GenerateOptions, type GenerationInput, generate } from '../../src/io/generate.js';
import { KVCache } from '../../src/model/text.js';
import { GlmPolicy, GlmRolloutEngine } from '../../src/rl/glm.js';
import type { RolloutPrompt } from '../../src/rl/types.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';

let chat: ChatModel;
let inputs: GenerationInput[] = [];
let modelDir = '';
let imagePath = '';

beforeAll(async () => {
  const dir = tinyModelDir({ seed: 3 });
  modelDir = dir;
  const image = join(dir, 'img.png');
  imagePath = image;
  writeFileSync(
    image,
    await sharp({ create: { width: 56, height: 84, channels: 3, background: '#2a6' } })
      .png()
      .toBuffer(),
  );
  chat = await ChatModel.load(dir);
  const convs = [
    [{ role: 'user' as const, content: 'hi' }],
    [
      {
        role: 'user' as const,
        content: [
          { type: 'image' as const, image },
          { type: 'text' as const, text: 'what is this shape and colour?' },
        ],
      },
    ],
    [{ role: 'user' as const, content: 'a somewhat longer question about numbers and cards' }],
  ];
  inputs = await Promise.all(convs.map((m) => chat.prepare(m, true)));
});

/** `generate` over each input repeated G times, one row per call, seeded like the grouped rows. */
async function reference(G: number, o: Omit<GenerateOptions, 'seed'>, seeds: number[]) {
  const rep = inputs.flatMap((inp) => Array.from({ length: G }, () => inp));
  // generate seeds its row 0 with seed * 1000003: one call per row reproduces seeds of that form.
  const outs = [];
  for (const [r, inp] of rep.entries()) {
    const seed = seeds[r]! / 1000003;
    outs.push((await generate(chat.model, [inp], { ...o, seed })).outputs[0]!);
  }
  return outs;
}

describe('generate with groupSize (group decoding)', () => {
  const G = 3;
  const seeds = Array.from({ length: 3 * G }, (_, r) => (7 + r) * 1000003);

  it('samples the tokens of per-row generate (temperature 1, force answering, stops, log-probs)', async () => {
    // Many stop ids so rows end at different steps and compaction drops some mid-way.
    const stops = Array.from({ length: 40 }, (_, i) => 20 + 7 * i);
    const o = {
      ...chat.generateOptions({ temperature: 1, thinkingBudget: 5, returnLogprobs: true }),
      maxNewTokens: 12,
      stopTokenIds: stops,
      yieldEvery: 0,
    };
    const ref = await reference(G, o, seeds);
    const { outputs, stats } = await generate(chat.model, inputs, { ...o, rowSeeds: seeds, compactShare: 0.1 }, G);
    expect(new Set(ref.map((r) => r.tokens.length)).size).toBeGreaterThan(1);
    expect(stats.rowSteps).toBeLessThan(stats.decodeSteps * 3 * G);
    for (const [r, out] of outputs.entries()) {
      expect(out.tokens, `row ${r}`).toEqual(ref[r]!.tokens);
      expect(out.finishReason).toBe(ref[r]!.finishReason);
      expect(out.forced).toBe(ref[r]!.forced);
      expect(out.thinkingTokens).toBe(ref[r]!.thinkingTokens);
      expect(out.text).toBe(ref[r]!.text);
      for (const [t, lp] of out.logprobs!.entries()) expect(lp).toBeCloseTo(ref[r]!.logprobs![t]!, 4);
    }
    expect(outputs.some((x) => x.forced)).toBe(true);
  }, 120_000);

  it('decodes greedily like generate, and checks its arguments', async () => {
    const o = { ...chat.generateOptions({ temperature: 0 }), maxNewTokens: 6, yieldEvery: 0 };
    const ref = await reference(2, o, seeds.slice(0, 6));
    const { outputs } = await generate(chat.model, inputs, { ...o, rowSeeds: seeds.slice(0, 6) }, 2);
    expect(outputs.map((x) => x.tokens)).toEqual(ref.map((x) => x.tokens));
    await expect(generate(chat.model, inputs, { ...o, rowSeeds: [1] }, 2)).rejects.toThrow(
      /rowSeeds has 1 seeds for 3 inputs × 2/,
    );
    await expect(generate(chat.model, inputs, { ...o, rowSeeds: [] }, 0)).rejects.toThrow(/groupSize/);
    await expect(generate(chat.model, inputs, { ...o, compactShare: 0 })).rejects.toThrow(/compactShare/);
    await expect(generate(chat.model, inputs, { ...o, compactShare: 1.5 })).rejects.toThrow(/compactShare/);
  }, 120_000);

  it('gives the GLM engine the rollouts of per-response decoding (tokens, loss masks, log-probs)', async () => {
    const policy = await GlmPolicy.load(modelDir);
    const mk = (id: string, question: string, images: string[] = []): Sample => ({
      id,
      domain: 'vqa',
      source: 'test',
      split: 'train',
      images,
      question,
      answer: '1',
      verifier: { type: 'vqa' },
    });
    const prompts: RolloutPrompt[] = [];
    for (const s of [
      mk('a', 'hi'),
      mk('b', 'what is drawn here?', [imagePath]),
      mk('c', 'a longer question, one more'),
    ])
      prompts.push({ sample: s, input: await policy.encodePrompt(s) });
    const params = {
      temperature: 1,
      topP: 1,
      topK: 0,
      maxThinkingTokens: 4,
      maxAnswerTokens: 5,
      forceAnswer: true,
      style: 'glm41v' as const,
      seed: 9,
    };
    // batchSize 4 < 3 prompts × G 3: several calls in both modes, chunked differently.
    const a = await new GlmRolloutEngine(policy, { batchSize: 4, groupDecode: false }).generate(prompts, 3, params);
    const b = await new GlmRolloutEngine(policy, { batchSize: 4 }).generate(prompts, 3, params);
    for (const [i, g] of a.entries())
      for (const [j, r] of g.entries()) {
        const q = b[i]![j]!;
        expect(Array.from(q.tokenIds), `${i}/${j}`).toEqual(Array.from(r.tokenIds));
        expect(Array.from(q.lossMask)).toEqual(Array.from(r.lossMask));
        expect(q.finishReason).toBe(r.finishReason);
        expect(q.forced).toBe(r.forced);
        for (const [t, lp] of q.logprobs!.entries()) expect(lp).toBeCloseTo(r.logprobs![t]!, 4);
      }
    expect(a.flat().some((r) => r.forced)).toBe(true);
  }, 120_000);

  it('KVCache.selectRows repeats rows into new buffers and drops rows in place (stored positions, row state, later steps)', () => {
    const B = 4;
    const H = 2;
    const D = 3;
    const cache = new KVCache(1, 8);
    const val = (b: number, t: number, h: number, d: number, s: number) => s + 1000 * b + 100 * t + 10 * h + d;
    const block = (rows: number[], t0: number, L: number, s: number) =>
      fromArray(
        Float32Array.from({ length: rows.length * L * H * D }, (_, i) => {
          const d = i % D;
          const h = Math.floor(i / D) % H;
          const t = Math.floor(i / (D * H)) % L;
          return val(rows[Math.floor(i / (D * H * L))]!, t0 + t, h, d, s);
        }),
        [rows.length, L, H, D],
      );
    cache.update(0, block([0, 1, 2, 3], 0, 3, 0), block([0, 1, 2, 3], 0, 3, 0.5));
    cache.advance(3, B);
    cache.keyStart = Int32Array.from([0, 1, 2, 0]);
    cache.ropeDeltas = [0, -1, -2, 0];
    const expectRows = (rows: number[], len: number) => {
      const { k, v } = cache.stored(0)!;
      expect(k.shape).toEqual([rows.length, len, H, D]);
      expect(Array.from(k.toFloat32())).toEqual(Array.from(block(rows, 0, len, 0).toFloat32()));
      expect(Array.from(v.toFloat32())).toEqual(Array.from(block(rows, 0, len, 0.5).toFloat32()));
    };
    cache.selectRows([1, 1, 2, 3, 3, 0]); // repeat (new buffers)
    expectRows([1, 1, 2, 3, 3, 0], 3);
    expect(Array.from(cache.keyStart!)).toEqual([1, 1, 2, 0, 0, 0]);
    cache.selectRows([0, 2, 5]); // drop in place: rows 1, 2, 0 of the original
    expectRows([1, 2, 0], 3);
    expect(cache.ropeDeltas).toEqual([-1, -2, 0]);
    expect(cache.batch).toBe(3);
    // A decode step after the compaction appends to the kept rows only.
    const { k } = cache.update(0, block([1, 2, 0], 3, 1, 0), block([1, 2, 0], 3, 1, 0.5));
    cache.advance(1, 3);
    expect(Array.from(k.toFloat32())).toEqual(Array.from(block([1, 2, 0], 0, 4, 0).toFloat32()));
    expect(() => cache.selectRows([3])).toThrow(/outside the batch of 3/);
    cache.dispose();
  });
});
