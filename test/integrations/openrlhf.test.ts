/**
 * OpenRLHF against `glmv reward serve`, with OpenRLHF's own client path replayed in Python (see
 * openrlhf_replay.py): the query decoded from prompt + response tokens with special tokens kept, one request per
 * rollout (0.9+) and one batched request (older releases), the reply parsed by Python's json, and the reward
 * shaping of `--algo.advantage.estimator group_norm | rloo | reinforce_baseline` run on the tensors it builds.
 * Labels are what OpenRLHF sends: the bare reference answer of `--data.label_key`, and a JSON sample.
 */
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { renderChat } from '../../src/io/template.js';
import { GlmTokenizer } from '../../src/io/tokenizer.js';
import { RewardRouter } from '../../src/reward/router.js';
import { buildRewardServer } from '../../src/reward/server.js';
import { B, R41, sample } from '../reward/helpers.js';
import { listen, ROOT, runPython } from './helpers.js';

const N = 4;
let tok: GlmTokenizer;
const router = new RewardRouter({ gates: { overlong: { maxTokens: 120 } } }, { cas: null });
const withTokens = () => buildRewardServer(router, { defaultDomain: 'stem', countTokens: (t) => tok.encode(t).length });
const apps = { tokens: null as ReturnType<typeof withTokens> | null, plain: buildRewardServer(router) };
let url = '';

beforeAll(async () => {
  tok = await GlmTokenizer.fromPretrained(join(ROOT, 'models/glmv-small'));
  apps.tokens = withTokens();
  url = await listen(apps.tokens);
});
afterAll(async () => {
  await apps.tokens?.close();
  await apps.plain.close();
  await router.close();
});

/** What OpenRLHF's SingleTurnAgentExecutor sends: decode(prompt ids + response ids + stop token), specials kept. */
function query(prompt: string, response: string): string {
  const ids = [...tok.encode(prompt), ...tok.encode(response), tok.id('<|user|>')];
  return tok.decode(ids, { skipSpecialTokens: false });
}

const promptOf = (q: string) => renderChat('glm41v', [{ role: 'user', content: q }], { addGenerationPrompt: true });
const right = R41('6 times 7 is 42', B('42'));
const wrong = R41('6 times 7 is 41', B('41'));
const emptyBox = R41('hmm', B(''));
// Long but not repetitive (the repetition gate would trip on a repeated phrase).
const long = R41(Array.from({ length: 40 }, (_, i) => `${i} plus ${i * 7 + 3} gives ${i * 8 + 3};`).join(' '), B('42'));

interface Shaped {
  dtype?: string;
  advantages?: number[];
  error?: string;
}
interface Replay {
  torch: boolean;
  per_request: Record<string, Shaped>;
  batched: Record<string, Shaped>;
  scores_dtype: string;
  extra_logs_dtype: Record<string, string>;
  extra_logs_mean: Record<string, number>;
}

describe('OpenRLHF remote reward (--reward.remote_url / --remote_rm_url)', () => {
  it('bare-answer and JSON-sample labels, floats on the wire: group_norm, rloo and reinforce_baseline all run', async () => {
    const p1 = promptOf('What is 6*7?');
    const p2 = promptOf('What is 40+2?');
    const js = JSON.stringify(sample({ id: 's/2', answer: '42', question: 'What is 40+2?' }));
    // Group 1 (bare label "42"): right, wrong, an empty box (a format failure), right. Group 2 (JSON sample): all right.
    const rows = [
      [p1, right, '42'],
      [p1, wrong, '42'],
      [p1, emptyBox, '42'],
      [p1, right, '42'],
      [p2, right, js],
      [p2, right, js],
      [p2, right, js],
      [p2, right, js],
    ];
    const out = await runPython<Replay>('test/integrations/openrlhf_replay.py', {
      url: `${url}/get_reward`,
      n_samples_per_prompt: N,
      queries: rows.map(([p, r]) => query(p!, r!)),
      prompts: rows.map(([p]) => p),
      labels: rows.map(([, , l]) => l),
      estimators: ['group_norm', 'rloo', 'reinforce_baseline'],
    });
    // Hand-computed from rewards [1, 0, 0, 1 | 1, 1, 1, 1]: group mean 0.5, unbiased std √(1/3).
    const sd = Math.sqrt(1 / 3);
    const want: Record<string, number[]> = {
      group_norm: [0.5 / sd, -0.5 / sd, -0.5 / sd, 0.5 / sd, 0, 0, 0, 0],
      rloo: [1 - 1 / 3, -2 / 3, -2 / 3, 1 - 1 / 3, 0, 0, 0, 0],
      reinforce_baseline: [0.5, -0.5, -0.5, 0.5, 0, 0, 0, 0],
    };
    for (const path of ['per_request', 'batched'] as const)
      for (const [est, adv] of Object.entries(want)) {
        const got = out[path][est]!;
        expect(got.error, `${path} ${est}`).toBeUndefined();
        expect(got.dtype).toBe('float32');
        for (const [i, x] of got.advantages!.entries()) expect(x, `${path} ${est} [${i}]`).toBeCloseTo(adv[i]!, 4);
      }
    expect(out.scores_dtype).toBe('float32');
    for (const [k, d] of Object.entries(out.extra_logs_dtype)) expect(d, `extra_logs.${k}`).toBe('float32');
    expect(out.extra_logs_mean.correct).toBeCloseTo(6 / 8, 12);
    // The empty box is counted as a format failure.
    expect(out.extra_logs_mean.format_fail).toBeCloseTo(1 / 8, 12);
  }, 120_000);

  it('integer rewards would have failed OpenRLHF (the replay is not vacuous)', async () => {
    // The same replay against a stand-in that answers like JSON.stringify does: ints for whole numbers.
    const { default: Fastify } = await import('fastify');
    const ints = Fastify();
    ints.post('/get_reward', async (req) => {
      const n = (req.body as { query: string[] }).query.length;
      const r = Array.from({ length: n }, (_, i) => i % 2);
      return { rewards: r, scores: r, extra_logs: { correct: r } };
    });
    const base = await listen(ints);
    try {
      const out = await runPython<Replay>('test/integrations/openrlhf_replay.py', {
        url: `${base}/get_reward`,
        n_samples_per_prompt: 2,
        queries: ['a', 'b', 'c', 'd'],
        prompts: ['', '', '', ''],
        labels: ['', '', '', ''],
        estimators: ['group_norm'],
      });
      expect(out.per_request.group_norm!.error).toMatch(/std and var only support floating point/);
      expect(out.batched.group_norm!.error).toMatch(/std and var only support floating point/);
    } finally {
      await ints.close();
    }
  }, 60_000);

  it('the overlong gate counts response tokens with the server tokenizer when the client sends none', async () => {
    const p = promptOf('What is 6*7?');
    const payload = { query: [query(p, long), query(p, right)], prompts: [p, p], labels: ['42', '42'] };
    expect(tok.encode(long).length).toBeGreaterThan(120);
    expect(long.length).toBeLessThan(4096); // the character fallback would have let it through
    const counted = await apps.tokens!.inject({ method: 'POST', url: '/get_reward', payload });
    expect(counted.json().rewards).toEqual([0, 1]);
    const uncounted = await apps.plain.inject({
      method: 'POST',
      url: '/get_reward',
      payload: {
        ...payload,
        labels: [JSON.stringify(sample({ answer: '42' })), JSON.stringify(sample({ answer: '42' }))],
      },
    });
    expect(uncounted.json().rewards).toEqual([1, 1]);
  });
});
