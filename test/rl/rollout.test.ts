import { describe, expect, it } from 'vitest';
import { parseResponse } from '../../src/io/answer/response.js';
import { forcedSuffix } from '../../src/io/force-answer.js';
import { RewardRouter } from '../../src/reward/index.js';
import { type ControlTokens, ResponseBuilder } from '../../src/rl/rollout/sampling.js';
import { ToyRolloutEngine } from '../../src/rl/rollout/toy.js';
import { coldStart, ToyCodec, ToyPolicy, toySamples } from '../../src/rl/toy.js';
import type { SamplingParams } from '../../src/rl/types.js';

const params = (o: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 1,
  topP: 1,
  topK: 0,
  maxThinkingTokens: 4,
  maxAnswerTokens: 6,
  forceAnswer: true,
  style: 'glm41v',
  seed: 1,
  ...o,
});

describe('force answering (the response state machine)', () => {
  const codec = new ToyCodec();
  const control: ControlTokens = {
    thinkClose: codec.id('</think>'),
    forced: codec.encode(forcedSuffix('glm41v')),
    eos: [codec.eos],
  };
  const dot = codec.id('.');

  it('inserts </think><answer> when thinking reaches the budget; inserted tokens are masked out', () => {
    const b = new ResponseBuilder(params({ maxThinkingTokens: 3 }), control);
    for (const t of [codec.id('<think>'), dot, dot]) {
      b.beforeSample();
      b.push(t, -0.1);
    }
    b.beforeSample();
    expect(b.forced).toBe(true);
    for (const t of codec.encode('<|begin_of_box|>7<|end_of_box|></answer>')) {
      b.beforeSample();
      b.push(t, -0.2);
    }
    b.beforeSample();
    b.push(codec.eos, -0.3);
    const r = b.build((ids) => codec.decode(ids));
    expect(r.text).toBe('<think>..</think><answer><|begin_of_box|>7<|end_of_box|></answer>');
    expect(Array.from(r.lossMask)).toEqual([1, 1, 1, 0, 0, 1, 1, 1, 1, 1]);
    expect(r).toMatchObject({ forced: true, finishReason: 'stop', thinkingTokens: 3, answerTokens: 5 });
    expect(parseResponse(r.text).box).toMatchObject({ ok: true, value: '7' });
  });

  it('4.5V style inserts </think> and a newline', () => {
    expect(forcedSuffix('glm45v')).toBe('</think>\n');
    expect(codec.decode(codec.encode(forcedSuffix('glm45v')))).toBe('</think>\n');
  });

  it('without force answering a thinking overrun ends the response as truncated', () => {
    const b = new ResponseBuilder(params({ maxThinkingTokens: 2, forceAnswer: false }), control);
    for (const t of [codec.id('<think>'), dot]) {
      b.beforeSample();
      b.push(t, 0);
    }
    b.beforeSample();
    expect(b.done).toBe(true);
    expect(b.build((ids) => codec.decode(ids))).toMatchObject({
      forced: false,
      finishReason: 'length',
      text: '<think>.',
    });
  });

  it('a model that closes thinking itself is not forced, and the answer budget truncates', () => {
    const b = new ResponseBuilder(params({ maxThinkingTokens: 4, maxAnswerTokens: 2 }), control);
    for (const t of [codec.id('<think>'), control.thinkClose, codec.id('<answer>'), dot]) {
      b.beforeSample();
      b.push(t, 0);
    }
    b.beforeSample();
    // Thinking counts the tokens before `</think>` (io/force-answer.ts, as the GLM engine and servers count them).
    expect(b.build((ids) => codec.decode(ids))).toMatchObject({
      forced: false,
      finishReason: 'length',
      thinkingTokens: 1,
      answerTokens: 2,
    });
  });
});

describe('toy rollout engine', () => {
  const samples = toySamples({ task: 'name', max: 9 });

  it('forces answers from a model that thinks past the budget, and the forced answers are scored', async () => {
    const policy = ToyPolicy.create({ dim: 32, layers: 1, heads: 2, maxLen: 40 }, 4);
    // Teach long thinking (8–10 fillers) so a 5-token budget always trips.
    coldStart(policy, samples, {
      steps: 60,
      batch: 32,
      lr: 5e-3,
      maxThink: 10,
      style: 'glm41v',
      correctShare: 1,
      seed: 3,
    });
    const engine = new ToyRolloutEngine(policy, { batchSize: 7 });
    const prompts = samples.map((s) => ({ sample: s, input: policy.encodePrompt(s) }));
    const out = await engine.generate(prompts, 4, params({ maxThinkingTokens: 5, maxAnswerTokens: 8 }));
    const all = out.flat();
    expect(all.length).toBe(40);
    const forced = all.filter((r) => r.forced);
    expect(forced.length).toBeGreaterThan(10);
    const c = policy.codec;
    for (const r of forced) {
      // exactly two inserted tokens, right after the 5 thinking tokens
      expect(Array.from(r.lossMask.slice(5, 7))).toEqual([0, 0]);
      expect(r.lossMask.reduce((a, b) => a + b, 0)).toBe(r.tokenIds.length - 2);
      expect(c.decode(r.tokenIds.slice(5, 7))).toBe('</think><answer>');
      expect(r.thinkingTokens).toBe(5);
      expect(r.text.includes('</think><answer>')).toBe(true);
    }
    const router = new RewardRouter({ cas: { enabled: false } });
    const res = await router.scoreBatch(forced.map((r) => ({ sample: samples[0]!, response: r.text })));
    // forced answers go through the verifiers like any other (not rejected by the format gate)
    expect(res.filter((x) => x.status === 'scored').length).toBeGreaterThan(forced.length / 2);
    await router.close();
  });

  it('is deterministic for a seed whatever the batch size, and logprobs match the policy', async () => {
    const policy = ToyPolicy.create({ dim: 16, layers: 1, heads: 2, maxLen: 32 }, 1);
    const prompts = samples.slice(0, 3).map((s) => ({ sample: s, input: policy.encodePrompt(s) }));
    const a = await new ToyRolloutEngine(policy, { batchSize: 2 }).generate(prompts, 3, params({ seed: 9 }));
    const b = await new ToyRolloutEngine(policy, { batchSize: 64 }).generate(prompts, 3, params({ seed: 9 }));
    expect(b.map((g) => g.map((r) => r.text))).toEqual(a.map((g) => g.map((r) => r.text)));
    const r = a[1]![2]!;
    const lp = policy.logProbs([{ prompt: prompts[1]!.input, response: r.tokenIds }]).logprobs.toFloat32();
    for (let i = 0; i < r.tokenIds.length; i++) if (r.lossMask[i]) expect(lp[i]).toBeCloseTo(r.logprobs![i]!, 4);
    await expect(new ToyRolloutEngine(policy).generate(prompts, 2, params({ temperature: 0 }))).rejects.toThrow(
      /temperature/,
    );
  });
});
