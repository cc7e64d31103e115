import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { RewardRouter } from '../../src/reward/router.js';
import { buildRewardServer, responseOf, sampleFromLabel, sampleFromVerl } from '../../src/reward/server.js';
import { B, R41, sample } from './helpers.js';

const router = new RewardRouter(
  { routes: [{ name: 'geo', match: { source: 'geo3k' }, verifier: 'math' }] },
  { cas: null },
);
const known = sample({ id: 'known/1', answer: '42' });
const app = buildRewardServer(router, { samples: new Map([[known.id, known]]) });

beforeAll(async () => {
  await app.ready();
});
afterAll(async () => {
  await app.close();
});

describe('helpers', () => {
  it('finds the response in an OpenRLHF query', () => {
    expect(responseOf('PROMPT<|assistant|>\nRESP<|endoftext|>', 'PROMPT<|assistant|>')).toBe('RESP');
    expect(responseOf('[gMASK]<sop><|user|>\nq<|assistant|>\nRESP<|user|>', 'different prompt')).toBe('RESP');
    expect(responseOf('no markers', 'x')).toBeNull();
  });
  it('resolves labels and verl items', () => {
    expect(sampleFromLabel(JSON.stringify(known))).toMatchObject({ id: 'known/1' });
    expect(sampleFromLabel('known/1', new Map([[known.id, known]]))).toMatchObject({ id: 'known/1' });
    // Anything else is the reference answer itself (OpenRLHF's label column), even when it looks like JSON.
    expect(sampleFromLabel('nope')).toMatchObject({ answer: 'nope', source: 'openrlhf', domain: 'text' });
    expect(sampleFromLabel(' {1, 2} ', undefined, { defaultDomain: 'stem', prompt: 'P' })).toMatchObject({
      answer: '{1, 2}',
      domain: 'stem',
      question: 'P',
      verifier: { type: 'math' },
    });
    expect(sampleFromLabel(42)).toMatchObject({ answer: '42' });
    expect(sampleFromLabel('')).toMatch(/label: empty.*--data.label_key/);
    expect(sampleFromLabel(null)).toMatch(/found null/);
    const s = sampleFromVerl({
      data_source: 'geo3k',
      solution_str: 'x',
      ground_truth: '3',
      extra_info: { index: 7, domain: 'stem' },
    });
    expect(s).toMatchObject({ id: 'geo3k/7', source: 'geo3k', answer: '3', domain: 'stem' });
    expect(
      sampleFromVerl({ data_source: 'x', solution_str: 'x', ground_truth: '3', extra_info: { domain: 'maths' } }),
    ).toMatch(/extra_info.domain/);
  });
});

describe('reward server', () => {
  it('answers the OpenRLHF remote RM protocol', async () => {
    const prompt = '[gMASK]<sop><|user|>\nWhat is 6*7?<|assistant|>\n';
    const res = await app.inject({
      method: 'POST',
      url: '/get_reward',
      payload: {
        query: [`${prompt}${R41('6*7=42', B('42'))}<|user|>`, `${prompt}${R41('guess', B('41'))}`, `${prompt}garbage`],
        prompts: [prompt, prompt, prompt],
        labels: ['known/1', JSON.stringify(known), ''],
      },
    });
    expect(res.statusCode).toBe(200);
    const body = res.json();
    expect(body.rewards).toEqual([1, 0, 0]);
    expect(body.scores).toEqual([1, 0, 0]);
    expect(body.extra_logs.correct).toEqual([1, 0, 0]);
    expect(body.extra_logs.error).toEqual([0, 0, 1]);
    // Floats on the wire, every one of them (Python's json reads 1 as int).
    expect(res.body).toContain('"rewards":[1.0,0.0,0.0]');
    expect(res.body).toContain('"error":[0.0,0.0,1.0]');
  });

  it('rejects malformed OpenRLHF bodies with the field at fault', async () => {
    const res = await app.inject({ method: 'POST', url: '/get_reward', payload: { query: 'x' } });
    expect(res.statusCode).toBe(400);
    expect(res.json().error).toMatch(/query/);
    const mismatch = await app.inject({ method: 'POST', url: '/get_reward', payload: { query: ['a'], labels: [] } });
    expect(mismatch.statusCode).toBe(400);
    expect(mismatch.json().error).toMatch(/labels/);
  });

  it('serves verl compute_score, single and batched, routed by data_source', async () => {
    const one = await app.inject({
      method: 'POST',
      url: '/verl/compute_score',
      payload: {
        data_source: 'geo3k',
        solution_str: R41('x', B('\\frac{1}{2}')),
        ground_truth: '0.5',
        extra_info: { domain: 'stem' },
      },
    });
    expect(one.json()).toMatchObject({ score: 1, acc: true, pred: '\\frac{1}{2}', verifier: 'math', status: 'scored' });
    const batch = await app.inject({
      method: 'POST',
      url: '/verl/compute_score_batch',
      payload: {
        items: [
          { data_source: 'geo3k', solution_str: R41('x', B('3')), ground_truth: '4' },
          { data_source: 'geo3k' },
          {
            data_source: 'other',
            solution_str: R41('x', B('A')),
            ground_truth: JSON.stringify(
              sample({ answer: 'A', verifier: { type: 'multiple_choice' }, options: ['a', 'b'] }),
            ),
          },
        ],
      },
    });
    const results = batch.json().results;
    expect(results.map((r: { score: number }) => r.score)).toEqual([0, 0, 1]);
    expect(results[1]).toMatchObject({ status: 'error', reason: expect.stringMatching(/solution_str/) });
  });

  it('serves the native API and statistics', async () => {
    const one = await app.inject({
      method: 'POST',
      url: '/score',
      payload: { sample: known, response: R41('x', B('42')) },
    });
    expect(one.json()).toMatchObject({ reward: 1, status: 'scored' });
    const batch = await app.inject({
      method: 'POST',
      url: '/score/batch',
      payload: {
        items: [
          { sample: known, response: 'no format' },
          { sample: { id: 'x' } as unknown as Sample, response: '' },
        ],
      },
    });
    expect(batch.json().results.map((r: { status: string }) => r.status)).toEqual(['gated', 'error']);
    const stats = await app.inject({ method: 'GET', url: '/stats' });
    expect(stats.json().domains.find((d: { domain: string }) => d.domain === '*').n).toBeGreaterThan(3);
    expect((await app.inject({ method: 'GET', url: '/health' })).json()).toEqual({ ok: true });
    expect((await app.inject({ method: 'POST', url: '/score', payload: { response: 1 } })).statusCode).toBe(400);
  });
});
