/**
 * The end-to-end recipe's configuration: data sizes, the small model's architecture, and each stage's settings as
 * fragments that are merged over the stage configs the pipeline builds (so every `glmv train` / `glmv rl` field is
 * reachable). Three presets: `default` (about an hour on 2 cores), `quick` (about 10 minutes) and `tiny` (CI).
 */
import { z } from 'zod';
import { applyOverrides, readConfigFile } from '../train/config.js';

const pos = () => z.number().int().positive();

const DataSchema = z
  .object({
    /** Side of every generated image (multiple of 28); 112 px = 16 visual tokens. */
    imageSize: pos().default(112),
    /** Generator mixture for SFT / RL / eval samples ("all" or "vqa,chart:2,…"). */
    domains: z.string().default('all'),
    pretrainDocs: pos(),
    pretrainHeldout: pos(),
    sftSamples: pos(),
    textSamples: pos(),
    /** Prompts for RL (train split, their own seed so SFT never saw them). */
    rlSamples: pos(),
    /** Held-out samples over all domains (per-domain accuracy after each stage). */
    heldout: pos(),
    /** Difficulty levels of SFT / RL / held-out samples. */
    difficulty: z.string().default('1-5'),
  })
  .strict();

const EvalSchema = z
  .object({
    /** Held-out samples answered per evaluation (a prefix of data.heldout; all domains). */
    n: pos(),
    maxNewTokens: pos().default(256),
    /** Evaluate with thinking and with /nothink. */
    modes: z
      .array(z.enum(['think', 'nothink']))
      .min(1)
      .default(['think', 'nothink']),
    batchSize: pos().default(32),
    /** Rollouts kept per domain for the report. */
    examplesPerDomain: z.number().int().min(0).default(2),
  })
  .strict();

const fragment = z.record(z.string(), z.unknown()).default({});

/**
 * Before RL, is there anything for it to find? pass@1 against pass@k of the SFT model, sampled like RL rollouts, on
 * `n` RL prompts balanced over domains. When pass@k − pass@1 is under `minGap` the samples rarely disagree, GRPO's
 * groups would carry no gradient, and the RL stage is skipped with that reason. n = 0 skips the check.
 */
const HeadroomSchema = z
  .object({
    n: z.number().int().min(0).default(220),
    k: z.number().int().min(2).default(8),
    minGap: z.number().min(0).max(1).default(0.05),
  })
  .strict();

export const PipelineConfigSchema = z
  .object({
    preset: z.enum(['default', 'quick', 'tiny']).default('default'),
    seed: z.number().int().min(0).default(0),
    data: DataSchema,
    tokenizer: z
      .object({
        vocabSize: pos().default(4096),
        /** Numbers as runs of up to three digits (GLM-4's pre-tokenizer) or one digit per token (the lab's choice). */
        digits: z.enum(['grouped', 'single']).default('grouped'),
      })
      .strict()
      .prefault({}),
    /** The small model (model.arch of `glmv train`). */
    arch: fragment,
    /** Fragments merged over the stage configs the pipeline builds (fields of `glmv train <stage>`). */
    pretrain: fragment,
    longctx: fragment,
    sft: fragment,
    /** Fragment merged over the RL config (fields of `glmv rl`); `{ skip: true }` leaves RL out. */
    rl: fragment,
    /**
     * RL runs from the same SFT model: the RL stage (seed `rl.run.seed`, the one evaluated as "rl" and shipped) and
     * `rlSeeds - 1` more with the next seeds (RUN/rl-seed1, …), each evaluated, so the RL gain is reported as a mean
     * over seeds with its spread. Not part of a run's identity: raising it on a finished run adds the missing seeds.
     */
    rlSeeds: pos().default(1),
    headroom: HeadroomSchema.prefault({}),
    eval: EvalSchema,
    /** Copy the final model here (bf16 weights) — the embedded default is `models/glmv-small`. */
    ship: z.string().nullable().default(null),
  })
  .strict();

export type PipelineConfig = z.infer<typeof PipelineConfigSchema>;
export type PipelineConfigInput = z.input<typeof PipelineConfigSchema>;

/** ~4.2M parameters: a GLM-4.1V-shaped decoder (4 layers, width 192, GQA 6/2) and a 3-block ViT on 112 px images. */
const SMALL_ARCH = {
  hiddenSize: 192,
  layers: 4,
  heads: 6,
  kvHeads: 2,
  intermediateSize: 512,
  maxPositions: 8192,
  vision: { depth: 3, hiddenSize: 128, heads: 4, intermediateSize: 512, patchSize: 14, imageSize: 112 },
};

export const PRESETS: Record<'default' | 'quick' | 'tiny', PipelineConfigInput> = {
  default: {
    preset: 'default',
    data: {
      pretrainDocs: 40000,
      pretrainHeldout: 400,
      sftSamples: 20000,
      textSamples: 3000,
      rlSamples: 4000,
      heldout: 1100,
    },
    tokenizer: { vocabSize: 4096 },
    arch: SMALL_ARCH,
    pretrain: { run: { steps: 450 }, optim: { lr: 2e-3, warmupSteps: 25 } },
    longctx: { run: { steps: 20 } },
    sft: { run: { steps: 400 }, sft: { filter: { maxCandidates: 1500 } } },
    rl: { run: { steps: 20 } },
    eval: { n: 440 },
  },
  quick: {
    preset: 'quick',
    data: {
      pretrainDocs: 8000,
      pretrainHeldout: 200,
      sftSamples: 4000,
      textSamples: 600,
      rlSamples: 800,
      heldout: 330,
    },
    tokenizer: { vocabSize: 2048 },
    arch: SMALL_ARCH,
    pretrain: { run: { steps: 80 }, optim: { lr: 2e-3, warmupSteps: 8 } },
    longctx: { run: { steps: 4 } },
    sft: { run: { steps: 60 }, sft: { filter: { maxCandidates: 300 } } },
    rl: { run: { steps: 4 } },
    headroom: { n: 110 },
    eval: { n: 110 },
  },
  tiny: {
    preset: 'tiny',
    data: { pretrainDocs: 300, pretrainHeldout: 40, sftSamples: 300, textSamples: 60, rlSamples: 60, heldout: 44 },
    tokenizer: { vocabSize: 512 },
    arch: {
      hiddenSize: 64,
      layers: 2,
      heads: 4,
      kvHeads: 2,
      intermediateSize: 128,
      maxPositions: 4096,
      vision: { depth: 1, hiddenSize: 32, heads: 2, intermediateSize: 64, patchSize: 14, imageSize: 112 },
    },
    pretrain: { run: { steps: 20 }, batch: { rows: 2, microRows: 1 }, pack: { seqLen: 512 }, optim: { lr: 3e-3 } },
    longctx: { run: { steps: 2 }, batch: { rows: 1, microRows: 1 }, pack: { seqLen: 1024 } },
    sft: {
      // Enough to learn the answer format on any trajectory. At 160 steps the greedy model put nothing in its answer
      // box on most runs (format rate 0-14 % or 86 % by seed and ISA alike: the same seed gave 14 % with AVX512-BF16
      // GEMMs, 86 % with float32-widened ones, 0 % in float32), so the outcome test passed or failed by chance.
      run: { steps: 400 },
      batch: { rows: 2, microRows: 1 },
      pack: { seqLen: 512 },
      optim: { lr: 5e-3 },
      sft: { filter: { maxCandidates: 16, k: 2 } },
    },
    rl: {
      run: { steps: 2 },
      batch: { prompts: 2 },
      rollout: { groupSize: 2, maxThinkingTokens: 24, maxAnswerTokens: 12 },
    },
    // minGap 0: the tiny model's RL runs whatever its headroom (CI checks the stages, not the model)
    headroom: { n: 11, k: 2, minGap: 0 },
    eval: { n: 22, maxNewTokens: 96, batchSize: 22, examplesPerDomain: 1 },
  },
};

/** Deep merge of plain objects (arrays and scalars from `b` replace those of `a`). */
export function deepMerge<T>(a: T, b: unknown): T {
  if (b === undefined) return a;
  if (!isPlain(a) || !isPlain(b)) return b as T;
  const out: Record<string, unknown> = { ...(a as Record<string, unknown>) };
  for (const [k, v] of Object.entries(b)) out[k] = k in out ? deepMerge(out[k], v) : v;
  return out as T;
}

function isPlain(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * The resolved pipeline config: a preset, then a config file (YAML/JSON) over it, then dotted `--set` overrides.
 */
export function resolvePipelineConfig(opts: {
  preset?: 'default' | 'quick' | 'tiny';
  file?: string;
  sets?: readonly string[];
}): PipelineConfig {
  let raw: unknown = PRESETS[opts.preset ?? 'default'];
  if (opts.file) {
    const fromFile = readConfigFile(opts.file) as Record<string, unknown>;
    const base =
      typeof fromFile?.preset === 'string' && fromFile.preset in PRESETS ? PRESETS[fromFile.preset as 'default'] : raw;
    raw = deepMerge(base, fromFile);
  }
  if (opts.sets?.length) raw = applyOverrides(raw, opts.sets);
  const r = PipelineConfigSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`pipeline config${opts.file ? ` ${opts.file}` : ''}: ${issues}`);
  }
  return r.data;
}
