/** The GLM policy and its KV-cache rollout engine on a tiny random GLM-4.1V-shaped checkpoint. */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { noGrad, scope } from '../../src/engine/index.js';
import { parseRlConfig } from '../../src/rl/config.js';
import { cutAtVisionToken, GlmPolicy, GlmRolloutEngine } from '../../src/rl/glm.js';
import { RlTrainer } from '../../src/rl/trainer.js';
import type { RolloutPrompt, SamplingParams } from '../../src/rl/types.js';
import { stubRouter } from '../helpers/stubRouter.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';

let dir = '';
let image = '';
const params = (o: Partial<SamplingParams> = {}): SamplingParams => ({
  temperature: 1,
  topP: 1,
  topK: 0,
  maxThinkingTokens: 3,
  maxAnswerTokens: 4,
  forceAnswer: true,
  style: 'glm41v',
  seed: 5,
  ...o,
});
const sample = (id: string, question: string, images: string[] = []): Sample => ({
  id,
  domain: images.length ? 'vqa' : 'text',
  source: 'test',
  split: 'train',
  images,
  question,
  answer: '1',
  verifier: { type: 'vqa' },
});

beforeAll(async () => {
  dir = tinyModelDir({ seed: 11 });
  image = join(dir, 'red.png');
  writeFileSync(
    image,
    await sharp({ create: { width: 64, height: 48, channels: 3, background: '#d00' } })
      .png()
      .toBuffer(),
  );
});

describe('GLM policy', () => {
  it('recomputes exactly the sampler’s log-probs (left padding, images, forced tokens masked)', async () => {
    const policy = await GlmPolicy.load(dir);
    const engine = new GlmRolloutEngine(policy, { batchSize: 4 });
    const samples = [
      sample('a', 'hi'),
      sample('b', 'a much longer question than the first one'),
      sample('c', 'what?', [image]),
    ];
    const prompts: RolloutPrompt[] = [];
    for (const s of samples) prompts.push({ sample: s, input: await policy.encodePrompt(s) });
    expect(prompts[2]!.input.extra).toMatchObject({ imageGridThw: [[1, expect.any(Number), expect.any(Number)]] });
    const out = await engine.generate(prompts, 2, params());
    const flat = out.flatMap((g, i) => g.map((r) => ({ r, i })));
    expect(flat.length).toBe(6);
    const tok = policy.chat.tokenizer;
    const forcedIds = [tok.id('</think>'), tok.id('<answer>')];
    let forced = 0;
    for (const { r } of flat) {
      expect(r.logprobs).not.toBeNull();
      if (!r.forced) continue;
      forced++;
      const at = r.thinkingTokens;
      expect(at).toBe(3);
      expect(Array.from(r.tokenIds.slice(at, at + 2))).toEqual(forcedIds);
      expect(Array.from(r.lossMask.slice(at, at + 2))).toEqual([0, 0]);
      expect(r.text).toContain('</think><answer>');
    }
    expect(forced).toBeGreaterThan(0);
    // All rollouts in one batch (mixed lengths, one with an image) against the sampler's own log-probs.
    const lp = noGrad(() =>
      scope(() => {
        const o = policy.logProbs(flat.map(({ r, i }) => ({ prompt: prompts[i]!.input, response: r.tokenIds })));
        return { data: o.logprobs.toFloat32(), T: o.logprobs.shape[1]! };
      }),
    );
    for (const [b, { r }] of flat.entries())
      for (let t = 0; t < r.tokenIds.length; t++)
        if (r.lossMask[t]) expect(lp.data[b * lp.T + t]).toBeCloseTo(r.logprobs![t]!, 3);
  });

  // Adam's first step moves every weight with a gradient by lr × its group's scale (m̂ / √v̂ = ±1): the vision
  // tower's largest move is visionLrScale × lr, the text model's lr.
  it.each([1, 0.1, 0])(
    'trains through the RL trainer: an update moves the weights, vision tower at lr × %s',
    async (visionLrScale) => {
      const policy = await GlmPolicy.load(dir);
      const engine = new GlmRolloutEngine(policy);
      const samples = [sample('p1', 'one', [image]), sample('p2', 'two'), sample('p3', 'three', [image])];
      const runDir = mkdtempSync(join(tmpdir(), 'rl-glm-'));
      const cfg = parseRlConfig({
        run: { dir: join(runDir, 'run'), steps: 1, checkpointEvery: 0 },
        policy: { kind: 'glm', path: dir },
        rollout: { groupSize: 3, maxThinkingTokens: 3, maxAnswerTokens: 3 },
        data: { sources: [{ kind: 'dataset', path: join(runDir, 'unused.jsonl') }] },
        batch: { prompts: 3 },
        grpo: { lr: 1e-3, microBatch: 4, visionLrScale },
        curriculum: { mix: {} },
      });
      // A stand-in reward with variance inside every group (a random model is never right): longer answers win.
      let calls = 0;
      const router = stubRouter(() => (calls++ % 3) / 2);
      const before = new Map(
        policy.chat.model.namedParameters().map(([n, p]) => [n, Float32Array.from(p.toFloat32())] as const),
      );
      const trainer = new RlTrainer(cfg, { policy, engine, router, samples, quiet: true, log: () => {} });
      await trainer.start({ resume: false });
      const [rec] = await trainer.run();
      expect(rec!.skipped_update).toBe(false);
      expect(rec!.groups_kept).toBe(3);
      expect(rec!.optimizer_steps).toBe(1);
      const maxMove = (prefix: string) => {
        let m = 0;
        for (const [n, p] of policy.chat.model.namedParameters().filter(([n]) => n.startsWith(prefix)))
          p.toFloat32().forEach((v, i) => {
            m = Math.max(m, Math.abs(v - before.get(n)![i]!));
          });
        return m;
      };
      expect(maxMove('model.language_model.')).toBeCloseTo(1e-3, 5);
      if (visionLrScale === 0) expect(maxMove('model.visual.')).toBe(0);
      else expect(maxMove('model.visual.') / (visionLrScale * 1e-3)).toBeCloseTo(1, 2);
    },
  );
});

describe('vision placeholders in responses', () => {
  it('cuts a response before a sampled vision token and says so', () => {
    const out = cutAtVisionToken(
      {
        tokens: [10, 11, 503, 12],
        text: 'x',
        reasoning: '',
        content: '',
        finishReason: 'stop',
        forced: true,
        thinkingTokens: 3,
        logprobs: [-1, -2, -3, -4],
        promptTokens: 5,
      },
      new Set([503]),
      (ids) => ids.join(','),
    );
    expect(out).toMatchObject({
      tokens: [10, 11],
      text: '10,11',
      finishReason: 'length',
      forced: false,
      thinkingTokens: 2,
    });
    expect(out.logprobs).toEqual([-1, -2]);
    expect(out.note).toMatch(/cut at token 2: the model emitted vision placeholder 503/);
  });
});
