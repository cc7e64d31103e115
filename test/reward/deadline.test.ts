/**
 * Hard deadlines on reward work (issue #20 items 2 and 5): a verifier call that never returns is killed and
 * answered `unjudged`; pools are sized to the cores, their queues capped, and checks that cannot start in time are
 * answered at once instead of queueing.
 */
import { availableParallelism } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CasPool } from '../../src/reward/cas.js';
import { RewardRouter } from '../../src/reward/router.js';
import { VerifierPool } from '../../src/reward/verifier-pool.js';
import { B, R41, sample } from './helpers.js';

const fixture = (name: string) => fileURLToPath(new URL(`../fixtures/reward/${name}`, import.meta.url));
const closers: Array<() => Promise<void>> = [];
afterAll(async () => {
  await Promise.all(closers.map((c) => c()));
});

describe('verifier deadline (item 2)', () => {
  it('the issue input through RewardRouter.score with a boxed answer is decided, in a killable worker', async () => {
    const router = new RewardRouter({ isolation: { timeoutMs: 5000 } });
    closers.push(() => router.close());
    // 43 characters that took 82 s in the unit-word stripper: now either decided or stopped at the deadline.
    const answer = '1 word word word word word word word word !';
    expect(answer.length).toBe(43);
    const r = await router.score(sample({ answer: '1' }), R41('t', B(answer)));
    expect(['scored', 'unjudged']).toContain(r.status);
    if (r.status === 'unjudged') expect(r.reason).toMatch(/exceeded its 5000 ms deadline/);
  });

  it('a verifier call that never returns is killed at its deadline and answered unjudged; the pool keeps serving', async () => {
    const pool = new VerifierPool({ filename: fixture('spin-verifier.mjs'), timeoutMs: 300, threads: 1 });
    closers.push(() => pool.close());
    const router = new RewardRouter({}, { verifierPool: pool });
    const hung = await router.score(sample({ answer: '1' }), R41('t', B('spin')));
    expect(hung).toMatchObject({ status: 'unjudged', reward: 0, correct: false, path: 'deadline' });
    expect(hung.reason).toMatch(
      /math verifier: exceeded its 300 ms deadline and was stopped \(answer of 4 characters\)/,
    );
    expect(pool.stats.timeouts).toBe(1);
    const ok = await router.score(sample({ answer: '1' }), R41('t', B('1')));
    expect(ok).toMatchObject({ status: 'scored', correct: true, path: 'fixture' });
  });

  it('behind a full queue a call is answered unjudged at once', async () => {
    const pool = new VerifierPool({ filename: fixture('spin-verifier.mjs'), timeoutMs: 500, threads: 1, maxQueue: 0 });
    closers.push(() => pool.close());
    const router = new RewardRouter({}, { verifierPool: pool });
    const first = router.score(sample(), R41('t', B('spin')));
    await new Promise((r) => setTimeout(r, 50));
    const second = await router.score(sample(), R41('t', B('2')));
    expect(second).toMatchObject({ status: 'unjudged', path: 'busy' });
    expect(second.reason).toMatch(/verifier call pool busy: 1 running and 0 waiting \(the queue limit\)/);
    expect((await first).status).toBe('unjudged');
  });

  it('verifier exceptions stay error results naming the sample', async () => {
    const router = new RewardRouter({}, { verifierPool: null });
    const r = await router.score(sample({ verifier: { type: 'math', params: { nope: 1 } } }), R41('t', B('1')));
    expect(r.status).toBe('error');
  });
});

describe('CAS pool sizing and queue (item 5)', () => {
  it('defaults to one thread per core', async () => {
    const p = new CasPool({ filename: fixture('spin-worker.mjs') });
    closers.push(() => p.close());
    expect(p.threads).toBe(availableParallelism());
  });

  it('10 concurrent slow checks: one runs to its limit, the rest are answered by the limit, not queued for 30 s', async () => {
    const p = new CasPool({ filename: fixture('spin-worker.mjs'), timeoutMs: 400, threads: 1, maxQueue: 4 });
    closers.push(() => p.close());
    await p.warmup();
    const out = await Promise.all(Array.from({ length: 10 }, () => p.run({ op: 'spin' })));
    const statuses = out.map((o) => o.status);
    // 1 thread + 4 queue places: 5 are refused at once, the queued ones give up when their own limit passes
    // (one of them may get the thread as the first is killed, and then time out itself).
    expect(statuses.filter((s) => s === 'busy').length).toBeGreaterThanOrEqual(8);
    expect(statuses.every((s) => s === 'busy' || s === 'timeout')).toBe(true);
    expect(out.filter((o) => o.status === 'busy' && /queue limit/.test(o.reason)).length).toBe(5);
    expect(await p.run({ op: 'echo', value: 3 })).toEqual({ status: 'done', value: { echo: 3 } });
  });

  it('an over-budget CAS check is unjudged, not a confident 0', async () => {
    const cas = new CasPool({ filename: fixture('spin-cas.mjs'), timeoutMs: 200, threads: 1 });
    closers.push(() => cas.close());
    const router = new RewardRouter({}, { cas, verifierPool: null });
    // Nesting beyond the in-process limits goes to the CAS pool, whose (fixture) worker never answers.
    const deep = `${'('.repeat(60)}x+1${')'.repeat(60)}`;
    const r = await router.score(sample({ answer: '1+x' }), R41('t', B(deep)));
    expect(r.status).toBe('unjudged');
    expect(r.reason).toMatch(/CAS check exceeded 200 ms and its worker was killed/);
  });
});
