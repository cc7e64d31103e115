/**
 * Child process of `npm run bench:rl -- --baseline DIR`: times the GLM rollout engine of another checkout of this
 * repository (DIR, with its native addon built and node_modules in place) on the prompts and settings the parent uses,
 * so section 4 can put the rollout code as it was at an earlier commit beside today's, measured on the same machine in
 * the same run. Prints one JSON line: { ms, cpuMs, tokens } (bench/rollout-timing.ts: medians over the timed calls).
 *
 *   tsx bench/rollouts-child.ts '{"tree":DIR,"model":MODEL_DIR,"data":DATASET_DIR,"groupSize":8,"reps":3,"params":{…}}'
 */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { medianTiming, type RolloutTiming, type TimedEngine, timeRolloutCall } from './rollout-timing.js';

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
const engine = new GlmRolloutEngine(policy, { batchSize: 256 }) as TimedEngine;
await engine.generate(prompts, job.groupSize, { ...job.params, seed: 99 });
const timed: RolloutTiming[] = [];
for (let rep = 0; rep < job.reps; rep++)
  timed.push(await timeRolloutCall(engine, prompts, job.groupSize, { ...job.params, seed: rep + 1 }));
console.log(JSON.stringify(medianTiming(timed)));
