import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRewardConfig, matchRoute, parseRewardConfig } from '../../src/reward/config.js';
import { RewardRouter } from '../../src/reward/router.js';
import { B, R41, sample } from './helpers.js';
import { type MockJudge, startMockJudge } from './mock-judge.js';

let mock: MockJudge;
beforeAll(async () => {
  mock = await startMockJudge();
});
afterAll(async () => {
  await mock.close();
});

describe('config', () => {
  it('validates routes, params and gates with paths in the message', () => {
    expect(() => parseRewardConfig({ routes: [{ verifier: 'maths' }] })).toThrow(/routes\.0\.verifier/);
    expect(() => parseRewardConfig({ routes: [{ verifier: 'math', params: { tolerence: 1 } }] })).toThrow(
      /params for math/,
    );
    expect(() => parseRewardConfig({ gates: { format: { style: 'glm5' } } })).toThrow(/invalid gates/);
    expect(() => parseRewardConfig({ routes: [{ verifier: 'general', judge: 'always' }] })).toThrow(/judge: always/);
    expect(() => parseRewardConfig({ minReward: 0.5 })).toThrow(/minReward/);
  });
  it('loads YAML and JSON files and matches globs, domains and verifiers in order', () => {
    const dir = mkdtempSync(join(tmpdir(), 'routes-'));
    const yml = join(dir, 'r.yaml');
    writeFileSync(
      yml,
      'routes:\n  - name: geo\n    match: { source: "geo3k*" }\n    verifier: math\n  - match: { domain: [chart, ocr] }\n    verifier: chart\n',
    );
    const cfg = loadRewardConfig(yml);
    expect(matchRoute(cfg.routes, { source: 'geo3k/train', domain: 'stem' })?.route.name).toBe('geo');
    expect(matchRoute(cfg.routes, { source: 'x', domain: 'ocr' })?.index).toBe(1);
    expect(matchRoute(cfg.routes, { source: 'x', domain: 'vqa' })).toBeNull();
    const bad = join(dir, 'bad.json');
    writeFileSync(bad, '{"routes": [');
    expect(() => loadRewardConfig(bad)).toThrow(/not valid JSON/);
    expect(() => loadRewardConfig(join(dir, 'missing.yaml'))).toThrow(/cannot read/);
  });
});

describe('RewardRouter', () => {
  it('never throws on bad input and names the problem', async () => {
    const r = new RewardRouter({}, { cas: null });
    expect(await r.score(null as never, 'x')).toMatchObject({
      status: 'error',
      reason: expect.stringMatching(/expected an object/),
    });
    expect(await r.score(sample({ domain: 'nope' as never }), 'x')).toMatchObject({
      status: 'error',
      reason: expect.stringMatching(/domain/),
    });
    expect(await r.score(sample(), 42 as never)).toMatchObject({
      status: 'error',
      reason: expect.stringMatching(/response/),
    });
    expect(await r.score(sample({ verifier: { type: 'magic' as never } }), R41('a', B('1')))).toMatchObject({
      status: 'error',
    });
    expect(
      await r.score(sample({ verifier: { type: 'math', params: { tolerance: 'high' } } }), R41('a', B('1'))),
    ).toMatchObject({
      status: 'error',
      reason: expect.stringMatching(/tolerance/),
    });
    const broken = await r.score(sample({ verifier: { type: 'counting' }, answer: 'lots' }), R41('a', B('3')));
    expect(broken).toMatchObject({ status: 'error', reason: expect.stringMatching(/counting reference/) });
  });

  it('reports every gate that ran and the route used', async () => {
    const r = new RewardRouter(
      { routes: [{ name: 'm', match: { source: 'test' }, params: { tolerance: 0.1 } }] },
      { cas: null },
    );
    const res = await r.score(sample({ answer: '10' }), R41('think', B('10.5')));
    expect(res).toMatchObject({ status: 'scored', correct: true, route: 'm', answer: '10.5', verifier: 'math' });
    expect(res.gates.map((g) => g.name)).toEqual([
      'overlong',
      'format',
      'thinking',
      'repetition',
      'language',
      'injection',
      'echo',
    ]);
  });

  it('sample params override route params; route verifier overrides the sample', async () => {
    const r = new RewardRouter(
      { routes: [{ match: { domain: 'chart' }, verifier: 'chart', params: { tolerance: 0.001 } }] },
      { cas: null },
    );
    const s = sample({ domain: 'chart', answer: '100', verifier: { type: 'chart', params: { tolerance: 0.1 } } });
    expect((await r.score(s, R41('x', B('105')))).correct).toBe(true);
    const s2 = sample({ domain: 'chart', answer: '100', verifier: { type: 'math' } });
    expect(await r.score(s2, R41('x', B('105')))).toMatchObject({ verifier: 'chart', correct: false });
  });

  it('applies minReward to gates, the soft overlong penalty to scores', async () => {
    const r = new RewardRouter({ minReward: -1, gates: { overlong: { maxTokens: 100, buffer: 50 } } }, { cas: null });
    expect((await r.score(sample(), 'no format at all')).reward).toBe(-1);
    const soft = await r.score(sample({ answer: '1' }), R41('x', B('1')), { tokens: 75 });
    expect(soft.reward).toBeCloseTo(0.5);
    expect(soft.correct).toBe(true);
  });

  it('uses the judge when rules cannot decide, and reports outages as unjudged', async () => {
    const judged = new RewardRouter(
      { judge: { endpoints: [{ baseURL: mock.url, model: 'always-correct' }] } },
      { cas: null },
    );
    const s = sample({ domain: 'vqa', answer: 'red', verifier: { type: 'vqa' }, question: 'What colour is it?' });
    const res = await judged.score(s, R41('x', B('crimson')));
    expect(res).toMatchObject({ status: 'scored', correct: true, path: 'judge' });
    expect(res.judge?.votes[0]?.model).toBe('always-correct');
    const down = new RewardRouter(
      { judge: { endpoints: [{ baseURL: mock.url, model: 'down' }], retries: 1, backoffMs: 1 } },
      { cas: null },
    );
    const out = await down.score(s, R41('x', B('crimson')));
    expect(out).toMatchObject({ status: 'unjudged', reward: 0, correct: false, confident: false });
    const never = new RewardRouter(
      {
        judge: { endpoints: [{ baseURL: mock.url, model: 'always-correct' }] },
        routes: [{ match: {}, judge: 'never' }],
      },
      { cas: null },
    );
    expect(await never.score(s, R41('x', B('crimson')))).toMatchObject({ correct: false, confident: false });
  });

  it('sends limit-exceeding math to the CAS pool', async () => {
    const r = new RewardRouter({ cas: { timeoutMs: 5000 } });
    const deep = `${'('.repeat(40)}x+1${')'.repeat(40)}`;
    const res = await r.score(sample({ answer: 'x+1' }), R41('x', B(deep)));
    expect(res).toMatchObject({ correct: true, path: 'math:expr:cas' });
    await r.close();
  });

  it('scores batches in order and keeps per-domain statistics', async () => {
    const r = new RewardRouter({}, { cas: null });
    const items = [
      { sample: sample({ answer: '1' }), response: R41('x', B('1')) },
      { sample: sample({ answer: '2' }), response: R41('x', B('3')) },
      { sample: sample({ domain: 'ocr', answer: 'abc', verifier: { type: 'ocr' } }), response: 'bad format' },
      { sample: sample({ domain: 'text', answer: 'x', verifier: { type: 'general' } }), response: R41('x', 'y') },
    ];
    const seen: number[] = [];
    const res = await r.scoreBatch(items, { concurrency: 3, onResult: (_, i) => seen.push(i) });
    expect(res.map((x) => x.reward)).toEqual([1, 0, 0, 0]);
    expect(seen.sort()).toEqual([0, 1, 2, 3]);
    const rows = Object.fromEntries(r.stats.snapshot().map((s) => [s.domain, s]));
    expect(rows.stem).toMatchObject({ n: 2, passRate: 0.5, rewardMean: 0.5 });
    expect(rows.ocr).toMatchObject({ n: 1, formatFailRate: 1, gateTrips: { format: 1 } });
    expect(rows.text).toMatchObject({ unjudgedRate: 1, passRate: 0 });
    expect(rows['*']!.n).toBe(4);
    expect(r.stats.table()).toMatch(/ALL/);
  });
});

describe('extraction modes and judge: always', () => {
  let judgeMock: MockJudge;
  beforeAll(async () => {
    judgeMock = await startMockJudge();
  });
  afterAll(async () => {
    await judgeMock.close();
  });

  it('lenient extraction scores other models (route setting or per response)', async () => {
    const other = '<think>work</think>So the final answer is \\boxed{\\frac{1}{2}}.';
    const s = sample({ answer: '0.5' });
    const strict = new RewardRouter({ gates: { format: { enabled: false } } }, { cas: null });
    expect((await strict.score(s, other)).path).toBe('gate:extract');
    expect((await strict.score(s, other, { extract: 'lenient' })).correct).toBe(true);
    const lenient = new RewardRouter({ gates: { format: { enabled: false, extraction: 'lenient' } } }, { cas: null });
    expect((await lenient.score(s, 'Answer: 0.5')).correct).toBe(true);
  });

  it('judge: always lets the judge overrule the rules', async () => {
    const r = new RewardRouter(
      {
        judge: { endpoints: [{ baseURL: judgeMock.url, model: 'always-incorrect' }] },
        routes: [{ match: {}, judge: 'always' }],
      },
      { cas: null },
    );
    const res = await r.score(
      sample({ domain: 'chart', answer: '100', verifier: { type: 'chart' } }),
      R41('x', B('100.5')),
    );
    expect(res).toMatchObject({ correct: false, path: 'judge' });
    expect(res.reason).toMatch(/rules said correct/);
  });
});
