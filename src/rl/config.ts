import { z } from 'zod';
import { applyOverrides, readConfigFile as readUtilConfig } from '../util/config.js';
import { DR_GRPO_SCALES, KL_ESTIMATORS, LOSS_AGG_MODES } from './grpo.js';
import { LENGTH_CONTROL_OFF, validateLengthControl } from './length.js';
import { DEFAULT_CURRICULUM, DEFAULT_TIER_WEIGHTS, TIERS } from './rlcs.js';
import { TOY_TASKS } from './toy.js';

const pos = () => z.number().int().positive();
const nonneg = () => z.number().int().nonnegative();

const TierWeightsSchema = z
  .object(Object.fromEntries(TIERS.map((t) => [t, z.number().min(0)])) as Record<(typeof TIERS)[number], z.ZodNumber>)
  .strict();

const ToyPolicySchema = z
  .object({
    kind: z.literal('toy'),
    dim: pos().default(64),
    layers: pos().default(2),
    heads: pos().default(4),
    maxLen: pos().default(48),
    /** Start from these weights (safetensors) instead of a fresh model + cold start. */
    init: z.string().optional(),
    /** Format-only supervised warm-up before RL (skipped with `init` or on resume). */
    coldStart: z
      .object({
        steps: nonneg().default(300),
        batch: pos().default(32),
        lr: z.number().positive().default(3e-3),
        maxThink: nonneg().default(6),
        /** Share of cold-start targets with the right answer in the box (the rest random): 0 = format only. */
        correctShare: z.number().min(0).max(1).default(0.5),
      })
      .strict()
      .default({ steps: 300, batch: 32, lr: 3e-3, maxThink: 6, correctShare: 0.5 }),
  })
  .strict();

const GlmPolicySchema = z
  .object({
    kind: z.literal('glm'),
    /** A checkpoint folder (config.json, safetensors, tokenizer). */
    path: z.string(),
  })
  .strict();

const ServerSchema = z
  .object({
    /** OpenAI-compatible base URL including /v1 (vLLM, SGLang, glmv serve). */
    baseURL: z.string(),
    model: z.string().optional(),
    /** Environment variable holding the API key (never the key itself in a config file). */
    apiKeyEnv: z.string().optional(),
    /** Requests in flight. */
    concurrency: pos().default(16),
    /** Per-request timeout. */
    timeoutMs: pos().default(600_000),
    /** SDK retries (connection errors, 408/409/429/5xx) per request. */
    maxRetries: nonneg().default(3),
    /** Extra attempts of a whole request after the SDK gives up (timeouts, malformed replies). */
    retries: nonneg().default(1),
    /** How the forced answer continues: chat continuation (images allowed) or /v1/completions (text only). */
    continuation: z.enum(['chat', 'completions']).default('chat'),
    /** Send enable_thinking (GLM-4.5V hybrid models); absent: the server's default. */
    thinking: z.boolean().optional(),
    /** Fail the step when more than this share of requests errored (the server is down, not one bad prompt). */
    maxErrorShare: z.number().min(0).max(1).default(0.5),
    /**
     * The server is `glmv serve --weight-updates` (same API key): the trainer sends its weights before each step's
     * rollouts and checks every response's policy_version, so rollouts stay on-policy (docs/serve.md).
     */
    onPolicy: z.boolean().default(false),
  })
  .strict();

const RolloutSchema = z
  .object({
    engine: z.enum(['local', 'server']).default('local'),
    /** Responses per prompt (G). */
    groupSize: z.number().int().min(2).default(8),
    temperature: z.number().positive().default(1),
    /** 1 = off: the paper found 0.9 harmful (§5.3.2). */
    topP: z.number().gt(0).max(1).default(1),
    topK: nonneg().default(0),
    maxThinkingTokens: pos().default(8192),
    maxAnswerTokens: pos().default(1024),
    forceAnswer: z.boolean().default(true),
    style: z.enum(['glm41v', 'glm45v']).default('glm41v'),
    /** Local engines: responses decoded per forward pass. */
    batchSize: pos().default(256),
    server: ServerSchema.optional(),
  })
  .strict();

const ToySourceSchema = z
  .object({
    kind: z.literal('toy'),
    task: z.enum(TOY_TASKS),
    max: pos(),
    maxSum: nonneg().optional(),
  })
  .strict();

const DatasetSourceSchema = z
  .object({
    kind: z.literal('dataset'),
    /** A glmv dataset folder or any format `glmv data validate` reads (TSV, parquet, JSONL, LLaVA). */
    path: z.string(),
    limit: pos().optional(),
    split: z.enum(['train', 'heldout', 'test', 'val']).optional(),
  })
  .strict();

const ScheduleSchema = z.array(z.object({ step: nonneg(), weights: TierWeightsSchema }).strict()).min(1);

const CurriculumSchema = z
  .object({
    /** false: every prompt weighs the same (domain mixing still applies). */
    enabled: z.boolean().default(true),
    thresholds: z
      .object({ tooHard: z.number(), hard: z.number(), medium: z.number(), easy: z.number() })
      .strict()
      .default(DEFAULT_CURRICULUM.thresholds),
    schedule: ScheduleSchema.default([{ step: 0, weights: DEFAULT_TIER_WEIGHTS }]),
    onlineDecay: z.number().min(0).max(1).default(DEFAULT_CURRICULUM.onlineDecay),
    labelPrior: z
      .object({
        weight: z.number().min(0),
        passRates: z.tuple([z.number(), z.number(), z.number(), z.number(), z.number()]),
      })
      .strict()
      .default(DEFAULT_CURRICULUM.labelPrior),
    offlineWeight: z.number().min(0).default(1),
    /** Domain proportions, e.g. { stem: 0.5, text: 0.5 }; empty = by pool size. */
    mix: z.record(z.string(), z.number().min(0)).default({}),
    /** Offline pass@k of the starting model before step 0: k samples per prompt (0 = skip), or a file from `glmv rl passk`. */
    offlinePassK: z
      .object({ k: nonneg().default(0), maxPrompts: pos().optional(), file: z.string().optional() })
      .strict()
      .default({ k: 0 }),
  })
  .strict();

const GrpoSchema = z
  .object({
    clipLow: z.number().min(0).lt(1).default(0.2),
    clipHigh: z.number().min(0).default(0.28),
    /** token (PPO/GRPO) or sequence (GSPO; use small clips, e.g. 3e-4 / 4e-4). */
    importanceLevel: z.enum(['token', 'sequence']).default('token'),
    /** Dual-clip constant c > 1, or null. */
    dualClip: z.number().gt(1).nullable().default(null),
    /** grpo (group-normalised) or rloo (leave-one-out baseline). */
    estimator: z.enum(['grpo', 'rloo']).default('grpo'),
    normStd: z.boolean().default(true),
    stdScope: z.enum(['group', 'batch']).default('group'),
    eps: z.number().positive().default(1e-6),
    lossAgg: z.enum(LOSS_AGG_MODES).default('seq-mean-token-mean'),
    /** Dr.GRPO's constant length (seq-mean-token-sum-norm); default maxThinkingTokens + maxAnswerTokens. */
    drGrpoLength: pos().optional(),
    /** Dr.GRPO's scale: paper Σ/(B·L) (the Dr.GRPO paper's) or verl Σ/L (verl's agg_loss, B times larger). */
    drGrpoScale: z.enum(DR_GRPO_SCALES).default('paper'),
    /** PPO epochs over each rollout batch, and optimizer steps (mini-batches) per epoch. */
    epochs: pos().default(1),
    miniBatches: pos().default(1),
    /** Sequences per forward/backward (gradient accumulation inside a mini-batch). */
    microBatch: pos().default(64),
    /** π_old: recomputed by the trainer before the update (verl), or the sampler's own logprobs. */
    oldLogprobs: z.enum(['recompute', 'rollout']).default('recompute'),
    kl: z
      .object({
        coef: z.number().min(0).default(0),
        estimator: z.enum(KL_ESTIMATORS).default('k3'),
        /** In the loss (GRPO) or subtracted from the reward before advantages (PPO-style). */
        mode: z.enum(['loss', 'reward']).default('loss'),
      })
      .strict()
      .default({ coef: 0, estimator: 'k3', mode: 'loss' }),
    entropyCoef: z.number().min(0).default(0),
    /** Train nothing on responses cut by the length limit (TRL's mask_truncated_completions); they still count in group statistics. */
    maskTruncated: z.boolean().default(false),
    /** Log the policy entropy of the trained tokens every step (one extra softmax over the vocabulary). */
    logEntropy: z.boolean().default(true),
    lr: z.number().positive().default(1e-6),
    /**
     * The vision tower's lr as a share of `lr` (0 freezes it), as `glmv train`'s `optim.visionLrScale`: an SFT run
     * that trained its tower at a tenth of the text model's lr leaves a tower RL's full lr shakes harder than the
     * rest (the lab's reading drifted down under RL). Needs a policy with named parameters (the GLM policy).
     */
    visionLrScale: z.number().min(0).max(1).default(1),
    weightDecay: z.number().min(0).default(0),
    betas: z.tuple([z.number(), z.number()]).default([0.9, 0.999]),
    warmupSteps: nonneg().default(0),
    maxGradNorm: z.number().positive().default(1),
  })
  .strict();

/** Thinking-length control (src/rl/length.ts): a price on reaching the thinking budget; off by default. */
const LengthControlSchema = z
  .object({
    /** Subtracted from the reward of a force-answered response. */
    forcedPenalty: z.number().min(0).default(LENGTH_CONTROL_OFF.forcedPenalty),
    /** DAPO soft overlong punishment over the last `overlongBuffer` thinking tokens of the budget; 0 = off. */
    overlongBuffer: nonneg().default(LENGTH_CONTROL_OFF.overlongBuffer),
    /** Penalty reached at the budget (DAPO's penalty_factor). */
    overlongFactor: z.number().min(0).default(LENGTH_CONTROL_OFF.overlongFactor),
  })
  .strict();

const ExpansionSchema = z
  .object({
    enabled: z.boolean().default(true),
    decay: z.number().min(0).lt(1).default(0.8),
    maxRatio: z.number().min(1).default(4),
    initialRatio: z.number().min(1).default(1),
    /** Hard cap of rollouts per step (the fixed budget); default batch.prompts × groupSize × maxRatio. */
    maxRolloutsPerStep: pos().optional(),
  })
  .strict();

export const RlConfigSchema = z
  .object({
    run: z
      .object({
        dir: z.string(),
        seed: nonneg().default(0),
        steps: pos(),
        checkpointEvery: nonneg().default(10),
        keepCheckpoints: pos().default(2),
        /** Write every rollout with its reward and gates to RUN/rollouts/step-N.jsonl (for `glmv rl inspect`). */
        saveRollouts: z.boolean().default(true),
      })
      .strict(),
    policy: z.discriminatedUnion('kind', [ToyPolicySchema, GlmPolicySchema]),
    rollout: RolloutSchema.default(RolloutSchema.parse({})),
    data: z
      .object({ sources: z.array(z.discriminatedUnion('kind', [ToySourceSchema, DatasetSourceSchema])).min(1) })
      .strict(),
    /** Groups trained on per step. */
    batch: z.object({ prompts: pos() }).strict(),
    grpo: GrpoSchema.default(GrpoSchema.parse({})),
    expansion: ExpansionSchema.default(ExpansionSchema.parse({})),
    lengthControl: LengthControlSchema.default(LengthControlSchema.parse({})),
    curriculum: CurriculumSchema.default(CurriculumSchema.parse({})),
    /** Reward routing: a file (YAML/JSON, see src/reward/config.ts) or the object inline. */
    reward: z.union([z.string(), z.record(z.string(), z.unknown())]).default({}),
    /** Responses scored concurrently. */
    rewardConcurrency: pos().default(16),
  })
  .strict();

export type RlConfig = z.infer<typeof RlConfigSchema>;
export type RlConfigInput = z.input<typeof RlConfigSchema>;

function formatIssues(e: z.ZodError): string {
  return e.issues
    .map((i) => {
      const path = i.path.length ? i.path.join('.') : '(root)';
      return `${path}: ${i.message}`;
    })
    .join('; ');
}

/**
 * Validates and checks the arithmetic between fields. `purpose: 'passk'` skips the checks that only matter for
 * training a local policy (a server can grade any prompts without one).
 */
export function parseRlConfig(input: unknown, where = 'rl config', purpose: 'train' | 'passk' = 'train'): RlConfig {
  const r = RlConfigSchema.safeParse(input);
  if (!r.success) throw new Error(`${where}: ${formatIssues(r.error)}`);
  const c = r.data;
  const g = c.grpo;
  const rolloutsPerStep = c.batch.prompts * c.rollout.groupSize;
  if (g.miniBatches > rolloutsPerStep)
    throw new Error(
      `${where}: grpo.miniBatches (${g.miniBatches}) exceeds the rollouts trained on per step (batch.prompts × groupSize = ${rolloutsPerStep})`,
    );
  if (c.expansion.initialRatio > c.expansion.maxRatio)
    throw new Error(`${where}: expansion.initialRatio ${c.expansion.initialRatio} > maxRatio ${c.expansion.maxRatio}`);
  if (c.expansion.maxRolloutsPerStep !== undefined && c.expansion.maxRolloutsPerStep < rolloutsPerStep)
    throw new Error(
      `${where}: expansion.maxRolloutsPerStep (${c.expansion.maxRolloutsPerStep}) is below one step's training rollouts (${rolloutsPerStep})`,
    );
  validateLengthControl(c.lengthControl, c.rollout.maxThinkingTokens, `${where}: lengthControl`);
  if (c.rollout.engine === 'server' && !c.rollout.server)
    throw new Error(`${where}: rollout.engine is server but rollout.server { baseURL, ... } is missing`);
  if (purpose === 'passk' && c.rollout.engine === 'server') return c;
  if (c.rollout.engine === 'server' && c.policy.kind === 'toy')
    throw new Error(
      `${where}: rollout.engine server with the toy policy: a server serves a GLM model whose tokens the toy policy cannot score; use rollout.engine local for the toy policy`,
    );
  if (g.oldLogprobs === 'rollout' && c.policy.kind === 'glm' && c.rollout.temperature !== 1)
    throw new Error(
      `${where}: grpo.oldLogprobs rollout with the GLM engine needs rollout.temperature 1 (the generator reports untempered log-probs); use recompute`,
    );
  if (c.rollout.engine === 'server' && c.rollout.server?.onPolicy && !c.rollout.server.apiKeyEnv)
    throw new Error(
      `${where}: rollout.server.onPolicy sends weights to the server, which needs its API key: set rollout.server.apiKeyEnv`,
    );
  if (g.oldLogprobs === 'rollout' && c.rollout.engine === 'server' && !c.rollout.server?.onPolicy)
    throw new Error(
      `${where}: grpo.oldLogprobs rollout needs sampler logprobs, which server rollouts return only with rollout.server.onPolicy; use recompute`,
    );
  if (c.policy.kind === 'toy') {
    for (const [i, s] of c.data.sources.entries())
      if (s.kind !== 'toy')
        throw new Error(
          `${where}: data.sources[${i}] is a ${s.kind}; the toy policy only reads toy sources (text in its small vocabulary)`,
        );
    const longest = c.rollout.maxThinkingTokens + c.rollout.maxAnswerTokens + 4;
    if (longest + 16 > c.policy.maxLen)
      throw new Error(
        `${where}: policy.maxLen ${c.policy.maxLen} cannot hold a prompt plus maxThinkingTokens + maxAnswerTokens (${longest}); raise maxLen or lower the budgets`,
      );
  }
  for (const [i, p] of c.curriculum.schedule.entries())
    if (i > 0 && p.step <= c.curriculum.schedule[i - 1]!.step)
      throw new Error(
        `${where}: curriculum.schedule steps must increase (${c.curriculum.schedule[i - 1]!.step} then ${p.step})`,
      );
  return c;
}

/** Reads a YAML or JSON rl config. */
export function readConfigFile(path: string): unknown {
  return readUtilConfig(path, 'rl config');
}

export { applyOverrides };

/** The built-in toy preset: learns "name → digits" and "a+b" from a format-only cold start in a few CPU minutes. */
export function toyPreset(dir = 'runs/rl-toy'): RlConfigInput {
  return {
    run: { dir, seed: 0, steps: 150, checkpointEvery: 25 },
    policy: {
      kind: 'toy',
      dim: 64,
      layers: 2,
      heads: 4,
      maxLen: 48,
      coldStart: { steps: 300, batch: 32, lr: 3e-3, maxThink: 6, correctShare: 0.5 },
    },
    rollout: {
      engine: 'local',
      groupSize: 8,
      temperature: 1,
      topP: 1,
      maxThinkingTokens: 6,
      maxAnswerTokens: 8,
      style: 'glm41v',
    },
    data: {
      sources: [
        { kind: 'toy', task: 'name', max: 99 },
        { kind: 'toy', task: 'add', max: 9 },
      ],
    },
    batch: { prompts: 16 },
    grpo: { lr: 1e-3, clipLow: 0.2, clipHigh: 0.28, epochs: 1, miniBatches: 2, microBatch: 128 },
    expansion: { enabled: true, decay: 0.8, maxRatio: 4 },
    curriculum: { enabled: true, mix: { text: 0.5, stem: 0.5 }, offlinePassK: { k: 4 } },
    reward: { cas: { enabled: false } },
  };
}

export const PRESETS: Record<string, (dir?: string) => RlConfigInput> = { toy: toyPreset };
