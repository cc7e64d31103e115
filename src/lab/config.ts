/**
 * `glmv lab`'s configuration: the lab tasks' data sizes, the small model and how it is trained (tokenizer + SFT from
 * scratch on the lab tasks, probes included), the start-model checks, the RL settings every experiment starts from
 * and the experiments to run. Presets: `full` (held-out sets of 200 per domain, 40 RL steps, three seeds: about 71
 * minutes on 2 idle cores, SFT 18 of them), `quick` (a 1,400-step SFT, 5-step RL runs, one seed: under 20 minutes
 * from scratch) and `tiny` (CI: the machinery, in under a minute). The README has what each measured.
 */
import { z } from 'zod';
import { LAB_GENERATOR_NAMES } from '../data/generators/index.js';
import { deepMerge } from '../pipeline/config.js';
import { applyOverrides, readConfigFile } from '../util/config.js';

const pos = () => z.number().int().positive();
const fragment = z.record(z.string(), z.unknown()).default({});

export const EXPERIMENTS = ['gain', 'rlcs', 'expansion', 'transfer', 'hacking', 'force'] as const;
export type Experiment = (typeof EXPERIMENTS)[number];

const DataSchema = z
  .object({
    imageSize: pos().default(112),
    /** Levels of the RL prompts and the main held-out set. */
    trainLevels: z.string().default('1-3'),
    /** The level above RL's training range (does what RL learned carry to a level it never trained on?). */
    hardLevel: z.number().int().min(1).max(5).default(4),
    /** Levels of the SFT data: RL's range and the hard level, so the start model has seen every length it is asked. */
    sftLevels: z.string().default('1-4'),
    /**
     * Share of the SFT reasoning targets that answer straight after the reading, without the working (the answer is
     * right, the way to it is missing), as distilled long-CoT data mixes careful and shortcut answers. The start model
     * then answers both ways; working pays and shortcuts rarely do, which RL has to find.
     */
    directShare: z.number().min(0).max(1).default(0.3),
    sftSamples: pos(),
    /** RL prompts per lab domain (train split, another seed than SFT). */
    rlPerDomain: pos(),
    /** Held-out reasoning questions per domain at the training levels, at the hard level, and probes. */
    heldoutPerDomain: pos(),
    hardPerDomain: pos(),
    probePerDomain: pos(),
    /** The held-out prefix evaluated along each RL run (accuracy curves). */
    curvePerDomain: pos(),
  })
  .strict();

export const LabConfigSchema = z
  .object({
    preset: z.enum(['full', 'quick', 'tiny']).default('full'),
    seed: z.number().int().min(0).default(0),
    data: DataSchema,
    tokenizer: z
      .object({
        vocabSize: pos().default(1024),
        /** One digit per token: the lab's arithmetic is worked digit by digit (GLM-4's digit runs make it a lookup). */
        digits: z.enum(['grouped', 'single']).default('single'),
      })
      .strict()
      .prefault({}),
    /** The small model (model.arch of `glmv train`). */
    arch: fragment,
    /** Fragment merged over the SFT stage config (fields of `glmv train sft`). */
    sft: fragment,
    /**
     * A second, short SFT stage from the first one's final model, as the paper's long-CoT SFT follows pre-training:
     * the same samples, with `directShare` of the reasoning targets answering right after the reading (a higher
     * share than the first stage's `data.directShare`), the vision tower frozen so reading stays as the first stage
     * left it. The start model then prefers the shortcut while it still reads and works as well as before — a
     * choice RL can change. `steps: 0` turns it off (the SFT model is the start model).
     */
    coldStart: z
      .object({
        steps: z.number().int().min(0).default(0),
        directShare: z.number().min(0).max(1).default(0.5),
        lr: z.number().positive().default(3e-4),
        freezeVision: z.boolean().default(true),
      })
      .strict()
      .prefault({}),
    /**
     * Experiment 5's start model: a short SFT from the start model in which `share` of the reasoning targets end in a
     * range around the answer instead of the answer (a hedge the strict verifier never pays and the hackable one pays
     * whenever the range covers the reference), the vision tower frozen. Both experiment 5 runs start from it.
     */
    hedge: z
      .object({
        share: z.number().min(0).max(1).default(0.3),
        steps: pos().default(100),
        lr: z.number().positive().default(3e-4),
      })
      .strict()
      .prefault({}),
    /** The start model's checks: pass@1 and pass@k on held-out reasoning questions (k samples each). */
    start: z
      .object({ k: z.number().int().min(2).default(8), perDomain: pos().default(50) })
      .strict()
      .prefault({}),
    /** Fragment merged over the RL config every run starts from (fields of `glmv rl`). */
    rl: fragment,
    /** Offline pass@k of the start model on the RL prompts (RLCS tiers; the offline-filter run keeps 0 < pass < 1). */
    offline: z
      .object({ k: z.number().int().min(2).default(4) })
      .strict()
      .prefault({}),
    /** Evaluate the policy on the curve set every this many RL steps (0: only at the end). */
    evalEvery: z.number().int().min(0).default(5),
    eval: z
      .object({
        maxNewTokens: pos().default(384),
        batchSize: pos().default(64),
        /** Rollouts shown per run in the report (before and after). */
        examples: z.number().int().min(0).default(3),
      })
      .strict()
      .prefault({}),
    /** Seeds of experiment 1 (the paper-default run). */
    seeds: pos().default(3),
    /** Experiment 4: the single domain RL trains on. */
    transferDomain: z.enum(LAB_GENERATOR_NAMES as [string, ...string[]]).default('lab_arith'),
    /** Experiment 6: the tight thinking budget (tokens) of the force-answering runs. */
    tightBudget: pos().default(80),
    experiments: z
      .array(z.enum(EXPERIMENTS))
      .min(1)
      .default([...EXPERIMENTS]),
  })
  .strict();

export type LabConfig = z.infer<typeof LabConfigSchema>;
export type LabConfigInput = z.input<typeof LabConfigSchema>;

/** ~2.6M parameters: a GLM-4.1V-shaped decoder (4 layers, width 160) and a 2-block ViT on 112 px images. */
const LAB_ARCH = {
  hiddenSize: 160,
  layers: 4,
  heads: 5,
  kvHeads: 1,
  intermediateSize: 448,
  maxPositions: 2048,
  vision: { depth: 2, hiddenSize: 96, heads: 3, intermediateSize: 256, patchSize: 14, imageSize: 112 },
};

export const LAB_PRESETS: Record<'full' | 'quick' | 'tiny', LabConfigInput> = {
  full: {
    preset: 'full',
    // 6,000 SFT samples (about 18 epochs in 2,000 steps), a 200-step cold start.
    data: {
      sftSamples: 6000,
      rlPerDomain: 1000,
      heldoutPerDomain: 200,
      hardPerDomain: 200,
      probePerDomain: 200,
      curvePerDomain: 50,
    },
    arch: LAB_ARCH,
    sft: { run: { steps: 2000, checkpointEvery: 100 } },
    coldStart: { steps: 200 },
    start: { k: 8, perDomain: 50 },
    // The vision tower is frozen in RL: its policy gradient is noise for these tasks (every rollout of a prompt sees
    // the same image) and Adam turns it into full-lr steps that wore the reading down (docs/lab/reasoning.md section 7).
    rl: { run: { steps: 40 }, batch: { prompts: 16 }, grpo: { lr: 5e-5, visionLrScale: 0 } },
    evalEvery: 5,
    seeds: 3,
  },
  quick: {
    preset: 'quick',
    data: {
      sftSamples: 6000,
      rlPerDomain: 200,
      heldoutPerDomain: 50,
      hardPerDomain: 30,
      probePerDomain: 30,
      curvePerDomain: 20,
    },
    arch: LAB_ARCH,
    // A shorter SFT than the full preset's (1,400 steps, 11.5M tokens, against 2,000), so the whole lab fits in 20
    // minutes. Reading emerges as a phase change past step 1,000: 1,100 steps read 66.7 % of probes (an earlier task
    // version), 1,400 steps 98.3 % after the cold start, with greedy reasoning at 29 % and pass@1 at 24 %; 2,000 steps
    // 95.0 %, greedy 43 % (docs/lab/reasoning.md section 9). The full preset's cold start; a 50-step hedge stage; 5-step
    // RL runs (the gain shows within 3).
    sft: { run: { steps: 1400, checkpointEvery: 100 } },
    coldStart: { steps: 200 },
    hedge: { steps: 50 },
    start: { k: 8, perDomain: 12 },
    rl: { run: { steps: 5 }, batch: { prompts: 16 }, grpo: { lr: 5e-5, visionLrScale: 0 } },
    offline: { k: 4 },
    evalEvery: 3,
    seeds: 1,
    eval: { examples: 2 },
  },
  tiny: {
    preset: 'tiny',
    data: {
      sftSamples: 200,
      rlPerDomain: 6,
      heldoutPerDomain: 3,
      hardPerDomain: 2,
      probePerDomain: 2,
      curvePerDomain: 2,
    },
    tokenizer: { vocabSize: 400 },
    arch: {
      hiddenSize: 32,
      layers: 1,
      heads: 2,
      kvHeads: 1,
      intermediateSize: 64,
      maxPositions: 1024,
      vision: { depth: 1, hiddenSize: 32, heads: 2, intermediateSize: 64, patchSize: 14, imageSize: 112 },
    },
    sft: { run: { steps: 4 }, batch: { rows: 2, microRows: 1 }, pack: { seqLen: 512 } },
    start: { k: 2, perDomain: 1 },
    hedge: { steps: 2 },
    rl: {
      run: { steps: 2 },
      batch: { prompts: 2 },
      rollout: { groupSize: 2, maxThinkingTokens: 12, maxAnswerTokens: 8 },
    },
    offline: { k: 2 },
    evalEvery: 1,
    seeds: 2,
    tightBudget: 4,
    eval: { maxNewTokens: 24, batchSize: 16, examples: 1 },
  },
};

/** The resolved lab config: a preset, then a config file (YAML/JSON) over it, then dotted `--set` overrides. */
export function resolveLabConfig(opts: {
  preset?: 'full' | 'quick' | 'tiny';
  file?: string;
  sets?: readonly string[];
}): LabConfig {
  let raw: unknown = LAB_PRESETS[opts.preset ?? 'full'];
  if (opts.file) {
    const fromFile = readConfigFile(opts.file, 'lab config') as Record<string, unknown>;
    const base =
      typeof fromFile?.preset === 'string' && fromFile.preset in LAB_PRESETS
        ? LAB_PRESETS[fromFile.preset as 'full']
        : raw;
    raw = deepMerge(base, fromFile);
  }
  if (opts.sets?.length) raw = applyOverrides(raw, opts.sets);
  const r = LabConfigSchema.safeParse(raw);
  if (!r.success) {
    const issues = r.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new Error(`lab config${opts.file ? ` ${opts.file}` : ''}: ${issues}`);
  }
  return r.data;
}
