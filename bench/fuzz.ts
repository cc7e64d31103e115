/**
 * `npm run bench:fuzz` — the long run of the fuzz suite (test/fuzz/harness.ts) for nightly use: every target (answer
 * parser, math checker, each verifier, safetensors loader, both servers' request bodies) with many more inputs and
 * a fresh seed. Each call runs under a hard deadline; a failure prints the target, the seed and the input, and the
 * run goes on with the next target. Exits 1 when any target failed. One JSON line per target in --metrics
 * (runs/bench-fuzz.jsonl): inputs, seconds, failure.
 *
 * Options: --runs <n> inputs per target (2000), --seed <n> (time-based), --deadline <ms> (4000), --only <substring>
 * (targets whose name contains it), --no-servers (skip the server targets).
 */
import { cpus } from 'node:os';
import { MetricsWriter, Progress } from '../src/util/progress.js';
import { fuzzPool, runTarget, type Servers, startServers, targets } from '../test/fuzz/harness.js';

const args = process.argv.slice(2);
const opt = (name: string, def: string) => {
  const i = args.indexOf(name);
  return i >= 0 && args[i + 1] ? args[i + 1]! : def;
};
const runs = Number(opt('--runs', '2000'));
const seed = Number(opt('--seed', String(Date.now() % 2 ** 31)));
const deadlineMs = Number(opt('--deadline', '4000'));
const only = opt('--only', '');
if (!Number.isInteger(runs) || runs < 1)
  throw new Error(`--runs: expected a positive integer, found ${opt('--runs', '')}`);
if (!(deadlineMs > 0)) throw new Error(`--deadline: expected a positive number of ms, found ${opt('--deadline', '')}`);

console.log(
  `CPU: ${cpus()[0]?.model} (${cpus().length} cores); seed ${seed}, ${runs} inputs per target, deadline ${deadlineMs} ms`,
);
const pool = fuzzPool(deadlineMs);
await pool.warmup({ op: 'echo' });
const servers: Servers | null = args.includes('--no-servers') ? null : await startServers();
const list = targets(pool, servers, deadlineMs).filter((t) => t.name.includes(only));
const metrics = new MetricsWriter(opt('--metrics', 'runs/bench-fuzz.jsonl'));
const progress = new Progress({ label: 'fuzz', total: list.length * runs });
let failed = 0;
for (const t of list) {
  const t0 = performance.now();
  let n = 0;
  let failure: string | null = null;
  try {
    await runTarget(t, {
      seed,
      numRuns: runs,
      deadlineMs,
      onRun: () => {
        n++;
        progress.increment(1, t.name);
      },
    });
  } catch (e) {
    failure = (e as Error).message;
    failed++;
    progress.increment(runs - n, t.name);
  }
  const s = (performance.now() - t0) / 1000;
  metrics.write({ target: t.name, seed, inputs: n, seconds: +s.toFixed(2), failure });
  if (failure) console.error(`\nFAIL ${t.name} (seed ${seed}):\n${failure.slice(0, 4000)}\n`);
}
progress.stop();
console.log(`${list.length - failed}/${list.length} targets held for ${runs} inputs each (seed ${seed})`);
await servers?.close();
await pool.close();
process.exitCode = failed ? 1 : 0;
