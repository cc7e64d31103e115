import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { CasPool } from '../../src/reward/cas.js';

const spin = fileURLToPath(new URL('../fixtures/reward/spin-worker.mjs', import.meta.url));

describe('CAS pool', () => {
  const pools: CasPool[] = [];
  afterAll(async () => {
    await Promise.all(pools.map((p) => p.close()));
  });

  it('kills a task that runs past its limit and keeps serving', async () => {
    const p = new CasPool({ filename: spin, timeoutMs: 300 });
    pools.push(p);
    // The spin task never ends on its own: the pool's kill is what lets this test finish, the test timeout is
    // only a generous hang guard (no timed assertion, a loaded CI must not flake).
    expect(await p.run({ op: 'spin' })).toMatchObject({ status: 'timeout' });
    expect(await p.run({ op: 'echo', value: 5 })).toEqual({ status: 'done', value: { echo: 5 } });
    expect(p.stats.timeouts).toBe(1);
  }, 30_000);

  it('survives a worker that exhausts its heap', async () => {
    const p = new CasPool({ filename: spin, timeoutMs: 10_000, maxHeapMb: 64 });
    pools.push(p);
    expect(await p.run({ op: 'alloc' })).toMatchObject({ status: 'error' });
    expect(await p.run({ op: 'echo', value: 1 })).toMatchObject({ status: 'done' });
  });

  it('runs math checks with simplify in the real worker', async () => {
    const p = new CasPool({ timeoutMs: 5000 });
    pools.push(p);
    const deep = `${'('.repeat(60)}x+1${')'.repeat(60)}`;
    expect(await p.check({ pred: deep, gold: '1+x' })).toMatchObject({ status: 'done', equal: true });
    expect(await p.check({ pred: '2', gold: '3' })).toMatchObject({ status: 'done', equal: false });
  });

  it('rejects a bad timeout', () => {
    expect(() => new CasPool({ filename: spin, timeoutMs: 0 })).toThrow(/timeoutMs/);
  });
});
