/**
 * The adversarial suite: every JSON fixture in test/fixtures/reward/adversarial must pass. Each case is a sample,
 * a response (or a generated giant one), optional router config / judge models / response meta, and what must come
 * out (reward bounds, correctness, status, decision path). `hangGuardMs` is a generous per-case test timeout for the
 * giant inputs (a quadratic or exponential path would not finish), not a timed assertion.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { CasPool } from '../../src/reward/cas.js';
import { RewardRouter } from '../../src/reward/router.js';
import type { ResponseMeta } from '../../src/reward/types.js';
import { type MockJudge, startMockJudge } from './mock-judge.js';

type Part = string | { repeat: string; times: number };
interface Case {
  name: string;
  sample: Partial<Sample>;
  response: string | { parts: Part[] };
  expect: { correct?: boolean; minReward?: number; maxReward?: number; status?: string; path?: string };
  config?: Record<string, unknown>;
  judge?: string[];
  meta?: ResponseMeta;
  hangGuardMs?: number;
}

const dir = fileURLToPath(new URL('../fixtures/reward/adversarial/', import.meta.url));
const files = readdirSync(dir).filter((f) => f.endsWith('.json'));
const cases: Array<Case & { file: string }> = files.flatMap((f) =>
  (JSON.parse(readFileSync(join(dir, f), 'utf8')) as Case[]).map((c) => ({ ...c, file: f })),
);

function build(r: Case['response']): string {
  if (typeof r === 'string') return r;
  return r.parts.map((p) => (typeof p === 'string' ? p : p.repeat.repeat(p.times))).join('');
}

let mock: MockJudge;
let cas: CasPool;
beforeAll(async () => {
  mock = await startMockJudge();
  cas = new CasPool({ timeoutMs: 2000 });
  await cas.warmup();
});
afterAll(async () => {
  await mock.close();
  await cas.close();
});

describe('adversarial suite', () => {
  it('has at least 60 cases with unique names', () => {
    expect(cases.length).toBeGreaterThanOrEqual(60);
    expect(new Set(cases.map((c) => c.name)).size).toBe(cases.length);
  });

  for (const c of cases) {
    it(
      `${c.file}: ${c.name}`,
      async () => {
        const config = {
          ...(c.config ?? {}),
          ...(c.judge
            ? { judge: { endpoints: c.judge.map((model) => ({ baseURL: mock.url, model })), retries: 1, backoffMs: 1 } }
            : {}),
        };
        const router = new RewardRouter(config, { cas });
        const sample: Sample = {
          id: `adversarial/${c.name}`,
          domain: 'stem',
          source: 'adversarial',
          split: 'test',
          images: [],
          question: 'Answer the question.',
          answer: '',
          verifier: { type: 'math' },
          ...c.sample,
        } as Sample;
        const res = await router.score(sample, build(c.response), c.meta);
        const e = c.expect;
        const info = `${res.status} ${res.path} reward=${res.reward}: ${res.reason}`;
        if (e.correct !== undefined) expect(res.correct, info).toBe(e.correct);
        if (e.minReward !== undefined) expect(res.reward, info).toBeGreaterThanOrEqual(e.minReward);
        if (e.maxReward !== undefined) expect(res.reward, info).toBeLessThanOrEqual(e.maxReward);
        if (e.status !== undefined) expect(res.status, info).toBe(e.status);
        if (e.path !== undefined) expect(res.path.startsWith(e.path), info).toBe(true);
        expect(res.status === 'error', info).toBe(false);
      },
      c.hangGuardMs,
    );
  }
});
