/**
 * RL through `glmv serve` stays on-policy: the trainer sends its weights before each step's rollouts, every response
 * reports the version it was sampled with, and with the same seed the run is the local run — the same rollouts,
 * the same per-step policy versions, the same loss curve.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { ChatModel } from '../../src/io/chat.js';
import { stepName } from '../../src/rl/checkpoint.js';
import { parseRlConfig } from '../../src/rl/config.js';
import { GlmPolicy, GlmRolloutEngine } from '../../src/rl/glm.js';
import { ServerRolloutEngine } from '../../src/rl/rollout/openai.js';
import { buildEngine } from '../../src/rl/setup.js';
import { RlTrainer } from '../../src/rl/trainer.js';
import type { Policy, RolloutEngine } from '../../src/rl/types.js';
import { GlmvClient } from '../../src/serve/client.js';
import { createServer, type GlmvServer } from '../../src/serve/server.js';
import { stubRouter } from '../helpers/stubRouter.js';
import { tinyModelDir } from '../helpers/tinyModelDir.js';

const STEPS = 3;
const KEY = 'rl-secret';
let dir = '';
let samples: Sample[] = [];
let server: GlmvServer;
let url = '';

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

/** A reward that depends on the response text only, with variance inside groups: the same text, the same reward. */
const router = stubRouter((response) => {
  let h = 7;
  for (const ch of response) h = (h * 31 + ch.charCodeAt(0)) % 1009;
  return (h % 3) / 2;
});

beforeAll(async () => {
  dir = tinyModelDir({ seed: 17 });
  const image = join(dir, 'blue.png');
  writeFileSync(
    image,
    await sharp({ create: { width: 56, height: 56, channels: 3, background: '#24d' } })
      .png()
      .toBuffer(),
  );
  samples = [sample('p1', 'What colour is it?', [image]), sample('p2', 'Add 2 and 2.'), sample('p3', 'Name a prime.')];
  // The server holds its own copy of the starting weights; only the trainer's weight pushes change it.
  server = await createServer({ chat: await ChatModel.load(dir), modelName: 'tiny', apiKey: KEY, weightUpdates: true });
  url = await server.listen(0, '127.0.0.1');
});
afterAll(async () => {
  await server?.close(0);
});

interface Run {
  /** Per step: loss, gradient norm and mean reward (the curves). */
  curves: Array<{ loss: number; grad: number; reward: number }>;
  versions: number[][];
  texts: string[][];
}

async function train(kind: 'local' | 'server'): Promise<Run> {
  const policy = await GlmPolicy.load(dir);
  const engine: RolloutEngine =
    kind === 'local'
      ? new GlmRolloutEngine(policy, { batchSize: 4 })
      : new ServerRolloutEngine({
          client: new GlmvClient({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0, extract: 'strict' }),
          concurrency: 3,
          onPolicy: { policy, apiKey: KEY },
        });
  const runDir = join(mkdtempSync(join(tmpdir(), `rl-onpolicy-${kind}-`)), 'run');
  const cfg = parseRlConfig({
    run: { dir: runDir, steps: STEPS, checkpointEvery: 0, seed: 3 },
    policy: { kind: 'glm', path: dir },
    rollout: { groupSize: 3, maxThinkingTokens: 4, maxAnswerTokens: 3 },
    data: { sources: [{ kind: 'dataset', path: join(runDir, 'unused.jsonl') }] },
    batch: { prompts: 3 },
    // Two epochs of three mini-batches: later updates are off-policy, so the loss is not the on-policy zero.
    grpo: { lr: 2e-3, microBatch: 4, epochs: 2, miniBatches: 3 },
    curriculum: { mix: {} },
  });
  const trainer = new RlTrainer(cfg, { policy, engine, router, samples, quiet: true, log: () => {} });
  await trainer.start({ resume: false });
  const records = await trainer.run();
  const versions: number[][] = [];
  const texts: string[][] = [];
  for (let t = 0; t < STEPS; t++) {
    const lines = readFileSync(join(runDir, 'rollouts', `${stepName(t)}.jsonl`), 'utf8')
      .trim()
      .split('\n');
    const rows = lines.map((l) => JSON.parse(l) as { policy_version: number; text: string; finish: string });
    expect(rows.every((r) => r.finish !== 'error')).toBe(true);
    versions.push(rows.map((r) => r.policy_version));
    texts.push(rows.map((r) => r.text));
  }
  const curves = records.map((r) => ({
    loss: r.loss as number,
    grad: r.grad_norm as number,
    reward: r.reward_mean as number,
  }));
  return { curves, versions, texts };
}

describe('RL over glmv serve rollouts', () => {
  it('matches local rollouts step by step: policy versions, rollouts and loss curve', async () => {
    const local = await train('local');
    const served = await train('server');
    // Every server response was sampled with the weights of its step (the server saw each update).
    expect(served.versions).toEqual(Array.from({ length: STEPS }, (_, t) => new Array(9).fill(t)));
    expect(served.versions).toEqual(local.versions);
    expect(served.texts).toEqual(local.texts);
    // The curves: real updates every step (a gradient, a loss away from the on-policy zero) that agree to float
    // rounding (the server batches rows differently from the local engine).
    for (let t = 0; t < STEPS; t++) {
      const a = local.curves[t]!;
      const b = served.curves[t]!;
      expect(a.grad).toBeGreaterThan(0);
      expect(b.reward).toBe(a.reward);
      expect(Math.abs(b.loss - a.loss)).toBeLessThanOrEqual(1e-4 * Math.max(1e-3, Math.abs(a.loss)));
      expect(Math.abs(b.grad - a.grad)).toBeLessThanOrEqual(1e-3 * a.grad);
    }
    expect(local.curves.some((c) => Math.abs(c.loss) > 1e-6)).toBe(true);
    expect(server.batcher.policyVersion).toBe(STEPS - 1);
  }, 300_000);

  it('config: onPolicy needs the API key variable and the GLM policy', async () => {
    const base = {
      run: { dir: join(tmpdir(), 'unused-onpolicy'), steps: 1 },
      policy: { kind: 'glm', path: dir },
      rollout: { engine: 'server', groupSize: 2, server: { baseURL: `${url}/v1`, onPolicy: true } },
      data: { sources: [{ kind: 'dataset', path: 'unused.jsonl' }] },
      batch: { prompts: 1 },
      curriculum: { mix: {} },
    };
    expect(() => parseRlConfig(base)).toThrow(/onPolicy sends weights to the server.*apiKeyEnv/);
    process.env.GLMV_ONPOLICY_TEST_KEY = KEY;
    const cfg = parseRlConfig({
      ...base,
      rollout: { ...base.rollout, server: { ...base.rollout.server, apiKeyEnv: 'GLMV_ONPOLICY_TEST_KEY' } },
    });
    expect(() => buildEngine(cfg, { name: 'toy' } as unknown as Policy)).toThrow(/onPolicy: needs the GLM policy/);
    // Offline pass@k has no policy to keep in step: a plain server engine.
    expect(buildEngine(cfg, null).name).toBe('server');
    const engine = buildEngine(cfg, await GlmPolicy.load(dir));
    expect(engine.syncPolicy).toBeTypeOf('function');
  });

  it('refuses weight pushes without the key and rollouts from weights the trainer did not send', async () => {
    const policy = await GlmPolicy.load(dir);
    const bad = new ServerRolloutEngine({
      client: new GlmvClient({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 }),
      onPolicy: { policy, apiKey: 'wrong' },
    });
    await expect(bad.syncPolicy(policy, 7)).rejects.toThrow(/401.*invalid_api_key/s);
    const good = new ServerRolloutEngine({
      client: new GlmvClient({ baseURL: `${url}/v1`, apiKey: KEY, maxRetries: 0 }),
      onPolicy: { policy, apiKey: KEY },
      maxErrorShare: 1,
    });
    await good.syncPolicy(policy, 7);
    // Someone else moves the server on: the engine's rollouts are now off-policy and fail loudly.
    await server.batcher.updateWeights(() => {}, 8);
    const out = await good.generate([{ sample: samples[1]!, input: { ids: new Int32Array(0) } }], 1, {
      temperature: 1,
      topP: 1,
      topK: 0,
      maxThinkingTokens: 2,
      maxAnswerTokens: 2,
      forceAnswer: true,
      style: 'glm41v',
      seed: 1,
    });
    expect(out[0]![0]!.finishReason).toBe('error');
    expect(out[0]![0]!.error).toMatch(/policy_version 8, expected 7/);
  }, 60_000);
});
