/**
 * Continuous batcher: requests that join a running batch mid-flight, leave it early, sample with their own seeds
 * and budgets, or get cancelled each produce exactly what `generate` produces for them alone.
 */
import { describe, expect, it } from 'vitest';
import { randn } from '../../src/engine/index.js';
import { type GenerateOptions, type GenerationInput, generate } from '../../src/io/generate.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { tinyConfig } from '../../src/model/presets.js';
import { ContinuousBatcher, type JobOptions, QueueFullError } from '../../src/serve/batcher.js';

const cfg = tinyConfig('glm4v', { layers: 2 });
const model = Glm4vForConditionalGeneration.random(cfg, { seed: 5 });
model.eval();

const THINK_CLOSE = 506;
const ANSWER = 507;
const base: JobOptions = { maxNewTokens: 8, stopTokenIds: [], seed: 0 };

async function alone(input: GenerationInput, o: Partial<GenerateOptions> & { seed?: number }, copies = 1) {
  const { outputs } = await generate(model, new Array(copies).fill(input), { ...base, ...o });
  return outputs;
}

const steps = (n: number) =>
  new Promise<void>((res) => {
    let k = 0;
    const tick = () => (++k >= n ? res() : setImmediate(tick));
    setImmediate(tick);
  });

describe('ContinuousBatcher', () => {
  it('requests joining and leaving mid-flight each get what generate gives them alone', async () => {
    const b = new ContinuousBatcher(model, { maxBatch: 8 });
    const prompts = [[3, 17, 250, 9, 41, 7, 199], [5, 6, 7], [11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21], [42]];
    const lens = [12, 3, 9, 15];
    const jobs = [b.submit({ inputIds: prompts[0]! }, { ...base, maxNewTokens: lens[0]! })];
    await steps(3);
    jobs.push(b.submit({ inputIds: prompts[1]! }, { ...base, maxNewTokens: lens[1]! }));
    jobs.push(b.submit({ inputIds: prompts[2]! }, { ...base, maxNewTokens: lens[2]! }));
    await steps(5);
    jobs.push(b.submit({ inputIds: prompts[3]! }, { ...base, maxNewTokens: lens[3]! }));
    const results = await Promise.all(jobs.map((j) => j.result));
    for (const [i, r] of results.entries()) {
      const ref = (await alone({ inputIds: prompts[i]! }, { maxNewTokens: lens[i]! }))[0]!;
      expect(r.tokens, `request ${i}`).toEqual(ref.tokens);
      expect(r.finishReason).toBe('length');
      expect(r.promptTokens).toBe(prompts[i]!.length);
    }
    const s = b.stats();
    expect(s.peakBatch).toBeGreaterThanOrEqual(3); // they really overlapped
    expect(s.prefills).toBeGreaterThanOrEqual(3); // three admission rounds: the late ones joined a running batch
    expect(s.finished.length).toBe(4);
    expect(s.running + s.queued).toBe(0);
    await b.close();
  });

  it('finished rows linger until a quarter of the batch is done; gaps between survivors are copied correctly', async () => {
    const b = new ContinuousBatcher(model, { maxBatch: 16, joinEvery: 2 });
    const lens = [3, 20, 5, 20, 7, 20, 9, 20, 4, 18];
    const prompt = (i: number) => Array.from({ length: 2 + ((i * 3) % 7) }, (_, j) => 10 + i * 7 + j);
    const jobs = lens.map((n, i) => b.submit({ inputIds: prompt(i) }, { ...base, maxNewTokens: n }));
    await steps(12);
    // A late joiner lands after survivors with gaps between them (rows 1, 3, 5, 7, 9 remain).
    const late = b.submit({ inputIds: [77, 78, 79] }, { ...base, maxNewTokens: 6 });
    const results = await Promise.all([...jobs, late].map((j) => j.result));
    for (const [i, r] of results.entries()) {
      const ref = i < lens.length ? { inputIds: prompt(i) } : { inputIds: [77, 78, 79] };
      const n = i < lens.length ? lens[i]! : 6;
      expect(r.tokens, `request ${i}`).toEqual((await alone(ref, { maxNewTokens: n }))[0]!.tokens);
    }
    const s = b.stats();
    // Five rows finished at five different steps, plus a join: fewer rebuilds than membership changes.
    expect(s.rebuilds).toBeLessThan(lens.length + 1);
    expect(s.running).toBe(0);
    await b.close();
  });

  it('seeded sampling, choices and thinking budgets are per request, as in generate', async () => {
    const b = new ContinuousBatcher(model, { maxBatch: 4 });
    const p = { inputIds: [3, 17, 250, 9] };
    const sampled = { temperature: 1.3, topP: 0.9, maxNewTokens: 10 };
    const budget = { thinkingBudget: 2, thinkCloseId: THINK_CLOSE, forceAnswerIds: [THINK_CLOSE, ANSWER] };
    const jobs = [
      b.submit(p, { ...base, ...sampled, seed: 7 }),
      b.submit(p, { ...base, ...sampled, seed: 7, choice: 1 }),
      b.submit(p, { ...base, maxNewTokens: 6, ...budget }),
      b.submit({ inputIds: [9, 9, 8] }, { ...base, repetitionPenalty: 1.5, maxNewTokens: 7, returnLogprobs: true }),
    ];
    const [s0, s1, forced, rep] = await Promise.all(jobs.map((j) => j.result));
    const two = await alone(p, { ...sampled, seed: 7 }, 2);
    expect(s0!.tokens).toEqual(two[0]!.tokens);
    expect(s1!.tokens).toEqual(two[1]!.tokens);
    expect(s0!.tokens).not.toEqual(s1!.tokens);
    const f = (await alone(p, { maxNewTokens: 6, ...budget }))[0]!;
    expect(forced!.tokens).toEqual(f.tokens);
    expect(forced!.forced).toBe(f.forced);
    const r = (
      await alone({ inputIds: [9, 9, 8] }, { repetitionPenalty: 1.5, maxNewTokens: 7, returnLogprobs: true })
    )[0]!;
    expect(rep!.tokens).toEqual(r.tokens);
    expect(rep!.logprobs!.map((x) => x.toFixed(4))).toEqual(r.logprobs!.map((x) => x.toFixed(4)));
    await b.close();
  });

  it('an image request joins a text batch and decodes as it does alone', async () => {
    const b = new ContinuousBatcher(model);
    const s = cfg.imageTokenId;
    const ids = [3, 17, cfg.imageStartTokenId, s, s, s, s, s, s, cfg.imageEndTokenId, 88];
    const img: GenerationInput = {
      inputIds: ids,
      pixelValues: randn([24, 1176]).toFloat32(),
      imageGridThw: [[1, 4, 6]],
    };
    const text = b.submit({ inputIds: [1, 2, 3, 4, 5] }, { ...base, maxNewTokens: 12 });
    await steps(2);
    const withImage = b.submit(img, { ...base, maxNewTokens: 6 });
    const [t, i] = await Promise.all([text.result, withImage.result]);
    expect(t.tokens).toEqual((await alone({ inputIds: [1, 2, 3, 4, 5] }, { maxNewTokens: 12 }))[0]!.tokens);
    expect(i.tokens).toEqual((await alone(img, { maxNewTokens: 6 }))[0]!.tokens);
    await b.close();
  });

  it('cancellation frees the slot: the aborted row leaves, the queued one takes its place', async () => {
    const b = new ContinuousBatcher(model, { maxBatch: 1, maxQueue: 1 });
    const ac = new AbortController();
    const long = b.submit({ inputIds: [1, 2, 3] }, { ...base, maxNewTokens: 10_000, signal: ac.signal });
    const waiting = b.submit({ inputIds: [4, 5] }, { ...base, maxNewTokens: 4 });
    expect(() => b.submit({ inputIds: [6] }, base)).toThrow(QueueFullError);
    await steps(4);
    expect(b.stats()).toMatchObject({ running: 1, queued: 1 });
    ac.abort();
    const r = await long.result;
    expect(r.finishReason).toBe('abort');
    expect(r.tokens.length).toBeGreaterThan(0);
    expect(r.tokens.length).toBeLessThan(100);
    const w = await waiting.result;
    expect(w.tokens).toEqual((await alone({ inputIds: [4, 5] }, { maxNewTokens: 4 }))[0]!.tokens);
    // A queued request cancelled before it starts never runs.
    const ac2 = new AbortController();
    const blocker = b.submit({ inputIds: [1] }, { ...base, maxNewTokens: 50 });
    const queued = b.submit({ inputIds: [2] }, { ...base, signal: ac2.signal });
    ac2.abort();
    expect((await queued.result).tokens).toEqual([]);
    expect((await queued.result).finishReason).toBe('abort');
    blocker.end('stop');
    expect((await blocker.result).finishReason).toBe('stop');
    await b.idle();
    expect(b.stats()).toMatchObject({ running: 0, queued: 0 });
    await b.close();
  });

  it('refuses bad options at submission, and a failing prefill fails only its own request', async () => {
    const b = new ContinuousBatcher(model);
    expect(() => b.submit({ inputIds: [] }, base)).toThrow(/no tokens/);
    expect(() => b.submit({ inputIds: [1, 1_000_000] }, base)).toThrow(/outside the vocabulary/);
    expect(() => b.submit({ inputIds: [1] }, { ...base, maxNewTokens: 0 })).toThrow(/maxNewTokens/);
    expect(() => b.submit({ inputIds: [1] }, { ...base, temperature: -1 })).toThrow(/temperature/);
    // Image tokens without pixels: the model refuses; the text request in the same admission round still runs.
    const bad = b.submit({ inputIds: [3, cfg.imageTokenId, 4] }, base);
    const good = b.submit({ inputIds: [3, 4] }, { ...base, maxNewTokens: 3 });
    await expect(bad.result).rejects.toThrow(/generation failed/);
    expect((await good.result).tokens).toEqual((await alone({ inputIds: [3, 4] }, { maxNewTokens: 3 }))[0]!.tokens);
    await b.close();
    expect(() => b.submit({ inputIds: [1] }, base)).toThrow(/closed/);
  });
});
