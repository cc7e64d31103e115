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
import { benchProgram, integer, positiveInt, positiveNumber } from './cli.js';

const opts = benchProgram({
  name: 'fuzz',
  description:
    'the long run of the fuzz suite (test/fuzz/harness.ts): every target with many inputs and a fresh seed, each ' +
    'call under a hard deadline; a failure prints the target, seed and input, and the run goes on. Exits 1 when any ' +
    'target failed',
  examples: [
    'npm run bench:fuzz',
    'npm run bench:fuzz -- --runs 200 --no-servers',
    'npm run bench:fuzz -- --only verifier --seed 1234',
    'npm run bench:fuzz -- --runs 10000 --deadline 8000 --metrics runs/fuzz-nightly.jsonl',
  ],
})
  .option('--runs <n>', 'inputs per target', positiveInt, 2000)
  .option('--seed <n>', 'fast-check seed (default: time-based, printed)', integer)
  .option('--deadline <ms>', 'hard deadline per call', positiveNumber, 4000)
  .option('--only <substring>', 'only the targets whose name contains it', '')
  .option('--no-servers', 'skip the server targets')
  .option('--metrics <file>', 'JSONL metrics file, one line per target', 'runs/bench-fuzz.jsonl')
  .parse()
  .opts<{ runs: number; seed?: number; deadline: number; only: string; servers: boolean; metrics: string }>();
const runs = opts.runs;
const seed = opts.seed ?? Date.now() % 2 ** 31;
const deadlineMs = opts.deadline;
const only = opts.only;

console.log(
  `CPU: ${cpus()[0]?.model} (${cpus().length} cores); seed ${seed}, ${runs} inputs per target, deadline ${deadlineMs} ms`,
);
const pool = fuzzPool(deadlineMs);
await pool.warmup({ op: 'echo' });
const servers: Servers | null = opts.servers ? await startServers() : null;
const list = targets(pool, servers, deadlineMs).filter((t) => t.name.includes(only));
const metrics = new MetricsWriter(opts.metrics);
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
