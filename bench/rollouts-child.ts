/**
 * Child process of `npm run bench:rl -- --baseline DIR`: times the GLM rollout engine of another checkout of this
 * repository (DIR, with its native addon built and node_modules in place) on the prompts and settings the parent uses,
 * so section 4 can put the rollout code as it was at an earlier commit beside today's, measured on the same machine in
 * the same run. Prints one JSON line: { ms, cpuMs, tokens } (medians over the timed calls, tokens of the last call).
 *
 *   tsx bench/rollouts-child.ts '{"tree":DIR,"model":MODEL_DIR,"data":DATASET_DIR,"groupSize":8,"reps":3,"params":{…}}'
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

interface Job {
  tree: string;
  model: string;
  data: string;
  groupSize: number;
  reps: number;
  params: Record<string, unknown>;
}

const job = JSON.parse(process.argv[2] ?? '{}') as Job;
if (!job.tree || !job.model || !job.data) throw new Error('rollouts-child: expected a JSON job with tree, model, data');
const from = (p: string) => import(pathToFileURL(join(resolve(job.tree), 'src', p)).href);
const { GlmPolicy, GlmRolloutEngine } = await from('rl/glm.ts');
const { readSamples } = await from('data/store.ts');
const policy = await GlmPolicy.load(job.model);
const prompts = [];
for await (const sample of readSamples(job.data)) prompts.push({ sample, input: await policy.encodePrompt(sample) });
const engine = new GlmRolloutEngine(policy, { batchSize: 256 });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor((xs.length - 1) / 2)]!;
await engine.generate(prompts, job.groupSize, { ...job.params, seed: 99 });
const ms: number[] = [];
const cpu: number[] = [];
let tokens = 0;
for (let rep = 0; rep < job.reps; rep++) {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const out = (await engine.generate(prompts, job.groupSize, { ...job.params, seed: rep + 1 })) as Array<
    Array<{ lossMask: Uint8Array }>
  >;
  ms.push(performance.now() - t0);
  const c = process.cpuUsage(c0);
  cpu.push((c.user + c.system) / 1000);
  tokens = out.flat().reduce((a, r) => a + r.lossMask.reduce((x, y) => x + y, 0), 0);
}
console.log(JSON.stringify({ ms: median(ms), cpuMs: median(cpu), tokens }));
