/**
 * The standing fuzz suite in CI (issue #20): a fixed seed and a small budget per target, each call under a hard
 * deadline (a call over it fails with its input printed). `npm run bench:fuzz` runs the same targets long.
 */
import { afterAll, beforeAll, describe, it } from 'vitest';
import type { DeadlinePool } from '../../src/reward/deadline-pool.js';
import { fuzzPool, runTarget, type Servers, startServers, type Target, targets } from './harness.js';

/** Fixed budget: inputs per target and the hard limit of one call. */
const RUNS = 40;
const DEADLINE_MS = 4000;
const SEED = 20_2026;

let pool: DeadlinePool;
let servers: Servers;
let list: Target[] = [];
beforeAll(async () => {
  pool = fuzzPool(DEADLINE_MS);
  await pool.warmup({ op: 'echo' });
  servers = await startServers();
  list = targets(pool, servers, DEADLINE_MS);
}, 300_000);
afterAll(async () => {
  await servers?.close();
  await pool?.close();
});

describe('fuzz (fixed seed, small budget)', () => {
  const names = targets(null as never, { reward: '', serve: '', close: async () => {} }, DEADLINE_MS).map(
    (t) => t.name,
  );
  for (const name of names)
    it(name, async () => {
      const t = list.find((x) => x.name === name)!;
      await runTarget(t, { seed: SEED, numRuns: RUNS, deadlineMs: DEADLINE_MS });
    }, 600_000);
});
