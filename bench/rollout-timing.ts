/**
 * One timed rollout call, shared by `bench:rl` section 4 and its `--baseline` child (bench/rollouts-child.ts), so
 * today's engines and another checkout's are timed the same way: wall time, process CPU time (all threads) and the
 * sampled tokens of the call.
 */

import { median } from './stats.js';

/** What section 4 needs of a rollout engine (another checkout's engine class satisfies it structurally). */
export interface TimedEngine<P = unknown, S = object> {
  generate(prompts: readonly P[], groupSize: number, params: S): Promise<Array<Array<{ lossMask: Uint8Array }>>>;
}

export interface RolloutTiming {
  ms: number;
  cpuMs: number;
  /** Tokens the rollouts sampled (loss-masked ones). */
  tokens: number;
}

export async function timeRolloutCall<P, S>(
  engine: TimedEngine<P, S>,
  prompts: readonly P[],
  groupSize: number,
  params: S,
): Promise<RolloutTiming> {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  const out = await engine.generate(prompts, groupSize, params);
  const ms = performance.now() - t0;
  const c = process.cpuUsage(c0);
  const tokens = out.flat().reduce((a, r) => a + r.lossMask.reduce((x, y) => x + y, 0), 0);
  return { ms, cpuMs: (c.user + c.system) / 1000, tokens };
}

/** Medians of several timed calls of one engine (tokens of the last call). */
export function medianTiming(ts: RolloutTiming[]): RolloutTiming {
  return { ms: median(ts.map((t) => t.ms)), cpuMs: median(ts.map((t) => t.cpuMs)), tokens: ts.at(-1)?.tokens ?? 0 };
}
