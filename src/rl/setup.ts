/**
 * Builds what a run needs from its config: the prompts (data sources), the policy (toy: fresh + format cold start,
 * or loaded weights), the rollout engine and the reward router. The CLI, the benchmark and the tests share it.
 */

import { openDataset } from '../data/formats/index.js';
import type { Sample } from '../data/sample.js';
import { loadSafetensors } from '../engine/index.js';
import { loadRewardConfig, RewardRouter } from '../reward/index.js';
import { GlmvClient } from '../serve/client.js';
import { Progress } from '../util/progress.js';
import type { RlConfig } from './config.js';
import { GlmPolicy, GlmRolloutEngine } from './glm.js';
import { ServerRolloutEngine } from './rollout/openai.js';
import { ToyRolloutEngine } from './rollout/toy.js';
import { coldStart, ToyPolicy, toySamples } from './toy.js';
import type { Policy, RolloutEngine } from './types.js';

/** Every prompt of the configured sources (ids must be unique across them). */
export async function loadPrompts(config: RlConfig): Promise<Sample[]> {
  const out: Sample[] = [];
  for (const [i, src] of config.data.sources.entries()) {
    if (src.kind === 'toy') {
      out.push(
        ...toySamples({ task: src.task, max: src.max, ...(src.maxSum !== undefined ? { maxSum: src.maxSum } : {}) }),
      );
      continue;
    }
    const ds = await openDataset(src.path, { ...(src.limit ? { limit: src.limit } : {}) });
    let n = 0;
    for await (const s of ds) {
      if (src.split && s.split !== src.split) continue;
      out.push(s);
      n++;
    }
    if (n === 0)
      throw new Error(`data.sources[${i}] ${src.path}: no samples${src.split ? ` of split ${src.split}` : ''}`);
  }
  return out;
}

export interface PolicyBuildOptions {
  /** Skip the cold start (a resumed run loads its weights from the checkpoint). */
  skipInit?: boolean;
  quiet?: boolean;
  log?: (line: string) => void;
}

/**
 * The policy of the config: a GLM checkpoint (loaded as it is: the cold start is the SFT stage's job), or the toy
 * model initialised by its format cold start or `init` weights (unless skipInit: a resume loads the checkpoint).
 */
export async function buildPolicy(
  config: RlConfig,
  prompts: readonly Sample[],
  opts: PolicyBuildOptions = {},
): Promise<Policy> {
  const p = config.policy;
  if (p.kind === 'glm') {
    const policy = await GlmPolicy.load(p.path);
    opts.log?.(
      `policy: ${policy.name} from ${p.path}, ${(policy.chat.model.numParameters() / 1e6).toFixed(1)}M parameters (float32 for training)`,
    );
    return policy;
  }
  const policy = ToyPolicy.create({ dim: p.dim, layers: p.layers, heads: p.heads, maxLen: p.maxLen }, config.run.seed);
  if (opts.skipInit) return policy;
  if (p.init) {
    policy.loadStateDict(loadSafetensors(p.init));
    opts.log?.(`policy: toy weights from ${p.init}`);
    return policy;
  }
  const cs = p.coldStart;
  if (cs.steps > 0) {
    const bar = new Progress({ label: 'cold start', total: cs.steps, quiet: opts.quiet });
    const loss = coldStart(policy, prompts, {
      steps: cs.steps,
      batch: cs.batch,
      lr: cs.lr,
      maxThink: cs.maxThink,
      correctShare: cs.correctShare,
      style: config.rollout.style,
      seed: config.run.seed + 1,
      onStep: (s, l) => bar.update(s + 1, `loss ${l.toFixed(3)}`),
    });
    bar.stop();
    opts.log?.(
      `policy: toy TinyGpt ${(policy.model.numParameters() / 1e3).toFixed(0)}k parameters, format cold start ${cs.steps} steps (loss ${loss.toFixed(3)})`,
    );
  }
  return policy;
}

export function buildEngine(config: RlConfig, policy: Policy | null): RolloutEngine {
  const r = config.rollout;
  if (r.engine === 'local') {
    if (policy instanceof ToyPolicy) return new ToyRolloutEngine(policy, { batchSize: r.batchSize });
    if (policy instanceof GlmPolicy) return new GlmRolloutEngine(policy, { batchSize: r.batchSize });
    throw new Error('rollout.engine local: needs a local policy (policy.kind toy or glm)');
  }
  const s = r.server!;
  const apiKey = s.apiKeyEnv ? process.env[s.apiKeyEnv] : undefined;
  if (s.apiKeyEnv && !apiKey)
    throw new Error(`rollout.server.apiKeyEnv: environment variable ${s.apiKeyEnv} is not set`);
  const client = new GlmvClient({
    baseURL: s.baseURL,
    ...(s.model ? { model: s.model } : {}),
    ...(apiKey ? { apiKey } : {}),
    timeoutMs: s.timeoutMs,
    maxRetries: s.maxRetries,
    extract: 'strict',
  });
  // Without a policy (offline pass@k) there is nothing to keep the server in step with.
  if (s.onPolicy && policy && !(policy instanceof GlmPolicy))
    throw new Error('rollout.server.onPolicy: needs the GLM policy (policy.kind glm) whose weights go to the server');
  return new ServerRolloutEngine({
    client,
    ...(s.onPolicy && policy instanceof GlmPolicy && apiKey ? { onPolicy: { policy, apiKey } } : {}),
    concurrency: s.concurrency,
    retries: s.retries,
    continuation: s.continuation,
    maxErrorShare: s.maxErrorShare,
    ...(s.thinking !== undefined ? { thinking: s.thinking } : {}),
    ...(policy ? { encodeText: (t: string) => policy.encodeText(t) } : {}),
  });
}

export function buildRouter(config: RlConfig): RewardRouter {
  return new RewardRouter(typeof config.reward === 'string' ? loadRewardConfig(config.reward) : config.reward);
}
