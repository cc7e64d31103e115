import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { ServerRolloutEngine, sampleMessages } from '../../src/rl/rollout/openai.js';
import { ToyCodec } from '../../src/rl/toy.js';
import type { SamplingParams } from '../../src/rl/types.js';
import { GlmvClient } from '../../src/serve/client.js';
import { chatJson, lastUserText, type MockServer, startMockOpenAI } from '../eval/mock-openai.js';

const params = (o: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 1,
  topP: 1,
  topK: 0,
  maxThinkingTokens: 16,
  maxAnswerTokens: 8,
  forceAnswer: true,
  style: 'glm41v',
  seed: 100,
  ...o,
});

const sample = (id: string, question: string): Sample => ({
  id,
  domain: 'stem',
  source: 'test',
  split: 'train',
  images: [],
  question,
  answer: '7',
  verifier: { type: 'math' },
});

const codec = new ToyCodec();

describe('server rollout engine', () => {
  let server: MockServer;
  let inFlight = 0;
  let maxInFlight = 0;

  beforeAll(async () => {
    server = await startMockOpenAI(() => ({ json: chatJson({ content: '' }) }));
  });
  afterAll(() => server.close());

  /** Phase 1: a truncated reasoning for "long" questions, a complete answer otherwise; phase 2: the answer. */
  function glmLike() {
    server.setHandler(async (body) => {
      inFlight++;
      maxInFlight = Math.max(maxInFlight, inFlight);
      await new Promise((r) => setTimeout(r, 15));
      inFlight--;
      const q = lastUserText(body);
      if (body.continue_final_message)
        return { json: chatJson({ content: '<|begin_of_box|>7<|end_of_box|></answer>' }) };
      if (q.startsWith('long'))
        return { json: chatJson({ reasoning_content: 'one two three', content: '' }, 'length') };
      return {
        json: chatJson({ reasoning_content: 'short', content: '<answer><|begin_of_box|>7<|end_of_box|></answer>' }),
      };
    });
  }

  it('forces the answer after the thinking budget and masks exactly the inserted tokens', async () => {
    glmLike();
    const engine = new ServerRolloutEngine({
      client: new GlmvClient({ baseURL: server.url, maxRetries: 0 }),
      concurrency: 3,
      encodeText: (t) => codec.encode(t),
    });
    const prompts = [sample('a', 'long one'), sample('b', 'quick')].map((s) => ({
      sample: s,
      input: { ids: new Int32Array(0) },
    }));
    const out = await engine.generate(prompts, 4, params());
    expect(out.map((g) => g.length)).toEqual([4, 4]);
    const f = out[0]![0]!;
    expect(f.forced).toBe(true);
    expect(f.text).toBe('<think>one two three</think><answer><|begin_of_box|>7<|end_of_box|></answer>');
    expect(codec.decode(f.tokenIds)).toBe(f.text);
    const before = codec.encode('<think>one two three').length;
    const mask = Array.from(f.lossMask);
    expect(mask.slice(before, before + 2)).toEqual([0, 0]);
    expect(mask.filter((m) => m === 0).length).toBe(2);
    expect(codec.decode(f.tokenIds.slice(before, before + 2))).toBe('</think><answer>');
    expect(f.thinkingTokens).toBe(before);
    expect(f.logprobs).toBeNull();
    const n = out[1]![0]!;
    expect(n.forced).toBe(false);
    expect(Array.from(n.lossMask).every((m) => m === 1)).toBe(true);
    expect(maxInFlight).toBeLessThanOrEqual(3);
    expect(maxInFlight).toBeGreaterThan(1);
    // distinct seeds per response; sampling parameters forwarded
    const first = server.requests.filter((r) => !r.body.continue_final_message);
    expect(new Set(first.map((r) => r.body.seed)).size).toBe(8);
    expect(first[0]!.body).toMatchObject({ temperature: 1, top_p: 1, max_tokens: 16 });
  });

  it('retries failed requests, then turns persistent failures into error rollouts (or throws past maxErrorShare)', async () => {
    let calls = 0;
    server.setHandler((body) => {
      calls++;
      const q = lastUserText(body);
      if (q === 'flaky' && calls % 2 === 1) return { status: 400, body: { error: { message: 'transient' } } };
      if (q === 'broken') return { status: 400, body: { error: { message: 'bad prompt' } } };
      return { json: chatJson({ reasoning_content: 'ok', content: '<|begin_of_box|>7<|end_of_box|>' }) };
    });
    const engine = new ServerRolloutEngine({
      client: new GlmvClient({ baseURL: server.url, maxRetries: 0 }),
      concurrency: 1,
      retries: 1,
      backoffMs: 1,
      maxErrorShare: 0.6,
    });
    const ok = await engine.generate(
      [sample('f', 'flaky'), sample('g', 'broken')].map((s) => ({ sample: s, input: { ids: new Int32Array(0) } })),
      2,
      params({ forceAnswer: false }),
    );
    expect(ok[0]!.every((r) => r.finishReason === 'stop')).toBe(true);
    expect(ok[1]!.every((r) => r.finishReason === 'error' && /bad prompt/.test(r.error ?? ''))).toBe(true);
    await expect(
      engine.generate(
        [{ sample: sample('g', 'broken'), input: { ids: new Int32Array(0) } }],
        2,
        params({ forceAnswer: false }),
      ),
    ).rejects.toThrow(/2 of 2 requests failed.*bad prompt/);
  });

  it('sends images as data URLs and explains missing media', () => {
    const dir = mkdtempSync(join(tmpdir(), 'rl-openai-'));
    const png = join(dir, 'a.png');
    writeFileSync(png, Buffer.from([0x89, 0x50, 0x4e, 0x47]));
    const m = sampleMessages({ ...sample('i', 'what?'), images: [png] });
    const parts = (m[0] as { content: Array<{ type: string; image_url?: { url: string }; text?: string }> }).content;
    expect(parts[0]!.image_url!.url).toBe('data:image/png;base64,iVBORw==');
    expect(parts[1]).toEqual({ type: 'text', text: 'what?' });
    expect(() => sampleMessages({ ...sample('j', 'q'), images: [join(dir, 'missing.png')] })).toThrow(
      /sample j: cannot read image/,
    );
    expect(() => sampleMessages({ ...sample('k', 'q'), video: { frames: ['a.png'] } })).toThrow(/video.path/);
  });
});
