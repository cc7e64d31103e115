/**
 * Training configuration for every stage (`tokenizer`, `pretrain`, `longctx`, `sft`): YAML or JSON, validated with
 * zod (unknown keys are errors, so a typo never silently falls back to a default), dotted overrides
 * (`--set optim.lr=3e-4`), and cross-field checks before anything runs. Every field is documented in
 * configs/train/README.md (a test keeps the two in sync). Relative paths are relative to the working directory.
 */
import { z } from 'zod';
import { applyOverrides, readConfigFile as readSharedConfigFile } from '../util/config.js';

export const STAGES = ['tokenizer', 'pretrain', 'longctx', 'sft'] as const;
export type StageName = (typeof STAGES)[number];
/** Stages that train model weights. */
export type ModelStageName = Exclude<StageName, 'tokenizer'>;

const pos = () => z.number().int().positive();
const nonneg = () => z.number().int().nonnegative();

const RunSchema = z
  .object({
    dir: z.string().min(1),
    seed: nonneg().default(0),
    steps: pos(),
    logEvery: pos().default(1),
    checkpointEvery: nonneg().default(100),
    keepCheckpoints: pos().default(2),
  })
  .strict();

const VisionArchSchema = z
  .object({
    depth: pos().default(2),
    hiddenSize: pos().default(64),
    heads: pos().default(2),
    intermediateSize: pos().default(256),
    patchSize: pos().default(14),
    /** Side of the learned position table in pixels (a multiple of patchSize); other sizes are resampled. */
    imageSize: pos().default(112),
    temporalPatchSize: pos().default(2),
    mergeSize: pos().default(2),
  })
  .strict();

const MoeArchSchema = z
  .object({
    experts: pos(),
    perToken: pos(),
    shared: nonneg().default(1),
    intermediateSize: pos(),
    firstDense: nonneg().default(1),
    groups: pos().default(1),
    topkGroups: pos().default(1),
  })
  .strict();

const ArchSchema = z
  .object({
    hiddenSize: pos().default(128),
    layers: pos().default(4),
    heads: pos().default(4),
    kvHeads: pos().default(2),
    intermediateSize: pos().default(384),
    ropeTheta: z.number().positive().default(10000),
    maxPositions: pos().default(32768),
    tieEmbeddings: z.boolean().default(false),
    initStd: z.number().positive().default(0.02),
    vision: VisionArchSchema.prefault({}),
    /** Present: a GLM-4.5V-shaped MoE decoder (model_type glm4v_moe). */
    moe: MoeArchSchema.nullable().default(null),
  })
  .strict();

const ModelSchema = z
  .object({
    /** "scratch" (random init from `arch`) or a checkpoint folder (config.json + weights + tokenizer). */
    init: z.string().min(1).default('scratch'),
    /** Folder with tokenizer.json (e.g. the output of `glmv train tokenizer`); default: the init folder's. */
    tokenizer: z.string().min(1).optional(),
    arch: ArchSchema.prefault({}),
    freezeVision: z.boolean().default(false),
    /**
     * From scratch only: the vision tower's position table starts as 2-D sine-cosine codes ('sincos') instead of the
     * small random init ('random'), so tokens of the same content are told apart by where they are from the start.
     */
    visionPositionInit: z.enum(['random', 'sincos']).default('random'),
    gradientCheckpointing: z.boolean().default(false),
  })
  .strict();

const ProcessorSchema = z
  .object({
    minPixels: pos().optional(),
    maxPixels: pos().optional(),
    videoMaxPixels: pos().optional(),
    videoFps: z.number().positive().optional(),
    /** Cap on the visual tokens of one image. */
    maxImageTokens: pos().optional(),
    maxVideoTokens: pos().optional(),
  })
  .strict();

const SourceSchema = z
  .object({
    path: z.string().min(1),
    weight: z.number().positive().default(1),
    /** Read at most this many records. */
    limit: pos().optional(),
    /** Input format for sample datasets (see `glmv data validate`); glmv dataset folders are detected. */
    format: z.enum(['auto', 'dataset', 'tsv', 'parquet', 'llava', 'jsonl']).default('auto'),
  })
  .strict();

const DataSchema = z
  .object({
    sources: z.array(SourceSchema).min(1),
    /** Weights per group: pre-training kind (caption, …) or SFT domain (stem, …). Absent: natural proportions. */
    mixture: z.record(z.string(), z.number().min(0)).optional(),
    /** Decoded, resized images kept in memory across epochs (MiB). */
    imageCacheMB: nonneg().default(512),
    /** Train on records that have a video (the paper's stage 1 has none; stage 2 adds them). */
    video: z.boolean().default(true),
  })
  .strict();

const PackSchema = z
  .object({
    seqLen: pos().default(1024),
    /** A sample longer than seqLen: truncated (text-only part after the last image) or dropped. */
    overlong: z.enum(['truncate', 'drop']).default('truncate'),
    /** Forward rows are the packed sequences concatenated without their tail padding, padded to this multiple. */
    padMultiple: pos().default(64),
    /** Image patches of a row are padded to a multiple of this with a blank image (0 = off): fewer distinct shapes. */
    visionBucket: nonneg().default(256),
    /** sample: attention and positions per sample; sequence: per packed sequence (documents see each other). */
    isolation: z.enum(['sample', 'sequence']).default('sample'),
  })
  .strict();

const BatchSchema = z
  .object({
    /** Packed sequences per optimizer step (the global batch). */
    rows: pos().default(8),
    /** Packed sequences per forward/backward; rows / microRows is the gradient accumulation. */
    microRows: pos().default(2),
  })
  .strict();

const OptimSchema = z
  .object({
    lr: z.number().positive().default(1e-3),
    schedule: z.enum(['cosine', 'linear', 'constant']).default('cosine'),
    warmupSteps: nonneg().default(0),
    minLrRatio: z.number().min(0).max(1).default(0.1),
    weightDecay: z.number().min(0).default(0.1),
    /**
     * The vision tower's lr as a share of the schedule's (from-scratch towers collapse to a constant output at the
     * text model's lr; the RL lab trains its tower at 0.1).
     */
    visionLrScale: z.number().min(0).max(1).default(1),
    betas: z.tuple([z.number().min(0).lt(1), z.number().min(0).lt(1)]).default([0.9, 0.95]),
    eps: z.number().positive().default(1e-8),
    maxGradNorm: z.number().positive().default(1),
    /** token: mean over every counted token of the step; sample: mean per sample, then over samples. */
    lossAverage: z.enum(['token', 'sample']).default('token'),
    /** MoE: loss-free balancing bias update rate and sequence-level auxiliary loss coefficient. */
    moeBiasRate: z.number().min(0).default(1e-3),
    moeAuxCoef: z.number().min(0).default(1e-4),
  })
  .strict();

const EvalLossSchema = z
  .object({
    path: z.string().min(1),
    n: pos().default(64),
  })
  .strict();

const EvalAccuracySchema = z
  .object({
    path: z.string().min(1),
    n: pos().default(64),
    /** chat: the chat template (SFT models); pretrain: the pre-training instruction format, lenient extraction. */
    prompt: z.enum(['chat', 'pretrain']).default('chat'),
    thinking: z.boolean().default(true),
    maxNewTokens: pos().default(256),
    batchSize: pos().default(16),
  })
  .strict();

const EvalSchema = z
  .object({
    /** Evaluate every N steps (0 = only after the last step). */
    every: nonneg().default(0),
    loss: EvalLossSchema.optional(),
    accuracy: EvalAccuracySchema.optional(),
  })
  .strict();

const FilterSchema = z
  .object({
    enabled: z.boolean().default(false),
    /** The scoring model (previous stage); default model.init. */
    model: z.string().min(1).optional(),
    k: pos().default(4),
    temperature: z.number().min(0).default(1),
    maxNewTokens: pos().default(128),
    batchSize: pos().default(32),
    prompt: z.enum(['chat', 'pretrain']).default('pretrain'),
    /** Score at most this many candidates (the rest are kept unscored). */
    maxCandidates: pos().optional(),
    /** Too easy: pass rate ≥ this. */
    maxPassRate: z.number().min(0).max(1).default(1),
    /** Too hard: pass rate ≤ this and difficulty label ≥ hardLevel (unlabelled items: pass rate alone). */
    minPassRate: z.number().min(0).max(1).default(0),
    hardLevel: z.number().int().min(1).max(5).default(4),
  })
  .strict();

const SftSchema = z
  .object({
    /** Share of samples trained as `/nothink` (empty thinking, the same answer). */
    nothinkShare: z.number().min(0).max(1).default(0.2),
    /** Unique-answer multiple choice becomes fill-in-the-blank (paper §5.1). */
    mcq: z.enum(['blank', 'choice']).default('blank'),
    /** Appended after each assistant turn and trained on. */
    endToken: z.string().min(1).default('<|endoftext|>'),
    filter: FilterSchema.prefault({}),
  })
  .strict();

const ModelStageFields = {
  run: RunSchema,
  model: ModelSchema.prefault({}),
  processor: ProcessorSchema.prefault({}),
  data: DataSchema,
  pack: PackSchema.prefault({}),
  batch: BatchSchema.prefault({}),
  optim: OptimSchema.prefault({}),
  /** fp32, or bf16: bf16 GEMM inputs with float32 accumulation, float32 master weights and gradients. */
  precision: z.enum(['fp32', 'bf16']).default('fp32'),
  eval: EvalSchema.prefault({}),
};

const PretrainSchema = z.object({ stage: z.literal('pretrain'), ...ModelStageFields }).strict();
const LongctxSchema = z.object({ stage: z.literal('longctx'), ...ModelStageFields }).strict();
const SftStageSchema = z.object({ stage: z.literal('sft'), ...ModelStageFields, sft: SftSchema.prefault({}) }).strict();

const TokenizerStageSchema = z
  .object({
    stage: z.literal('tokenizer'),
    run: z.object({ dir: z.string().min(1), seed: nonneg().default(0) }).strict(),
    data: z
      .object({
        sources: z.array(SourceSchema).default([]),
        /** Plain text files (one document per line). */
        corpora: z.array(z.string().min(1)).default([]),
      })
      .strict()
      .prefault({}),
    tokenizer: z
      .object({
        vocabSize: pos().default(4096),
        minFrequency: pos().default(2),
        /** Chat template stored with the tokenizer: glm41v (answer tags) or glm45v. */
        template: z.enum(['glm41v', 'glm45v']).default('glm41v'),
        /** Numbers as runs of up to three digits (GLM-4's pre-tokenizer) or one digit per token (for arithmetic). */
        digits: z.enum(['grouped', 'single']).default('grouped'),
      })
      .strict()
      .prefault({}),
  })
  .strict();

export const TrainConfigSchema = z.discriminatedUnion('stage', [
  TokenizerStageSchema,
  PretrainSchema,
  LongctxSchema,
  SftStageSchema,
]);

export type TrainConfig = z.infer<typeof TrainConfigSchema>;
export type TrainConfigInput = z.input<typeof TrainConfigSchema>;
export type TokenizerConfig = z.infer<typeof TokenizerStageSchema>;
export type PretrainConfig = z.infer<typeof PretrainSchema>;
export type SftConfig = z.infer<typeof SftStageSchema>;
export type ModelStageConfig = z.infer<typeof PretrainSchema> | z.infer<typeof LongctxSchema> | SftConfig;
export type ArchConfig = z.infer<typeof ArchSchema>;
export type SourceConfig = z.infer<typeof SourceSchema>;
export type EvalConfig = z.infer<typeof EvalSchema>;
export type FilterConfig = z.infer<typeof FilterSchema>;

/** The schema of one stage (for documentation checks and tools). */
export function stageSchema(stage: StageName): z.ZodObject {
  return { tokenizer: TokenizerStageSchema, pretrain: PretrainSchema, longctx: LongctxSchema, sft: SftStageSchema }[
    stage
  ] as unknown as z.ZodObject;
}

function valueAt(root: unknown, path: readonly PropertyKey[]): unknown {
  let v = root;
  for (const k of path) v = v && typeof v === 'object' ? (v as Record<PropertyKey, unknown>)[k] : undefined;
  return v;
}

function formatIssues(e: z.ZodError, input: unknown): string {
  return e.issues
    .slice(0, 8)
    .map((i) => {
      const path = i.path.length ? i.path.join('.') : '(root)';
      if (i.code === 'unrecognized_keys') {
        const where = i.path.length ? `${path}: ` : '';
        return `${where}unknown field${i.keys.length > 1 ? 's' : ''} ${i.keys.map((k) => JSON.stringify(k)).join(', ')}`;
      }
      const found = valueAt(input, i.path);
      const shown = found === undefined ? 'nothing (the field is missing)' : JSON.stringify(found)?.slice(0, 80);
      return `${path}: ${i.message} (found ${shown})`;
    })
    .join('; ');
}

/**
 * Validates a raw config object for `stage` (the config's own `stage` field, when present, must agree) and checks
 * the arithmetic between fields. `where` names the source in error messages.
 */
export function parseTrainConfig(raw: unknown, stage: StageName, where = 'train config'): TrainConfig {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw))
    throw new Error(
      `${where}: expected a mapping of fields (run, model, data, …), found ${Array.isArray(raw) ? 'a list' : JSON.stringify(raw)}`,
    );
  const obj = raw as Record<string, unknown>;
  if (obj.stage !== undefined && obj.stage !== stage)
    throw new Error(
      `${where}: the file is a ${JSON.stringify(obj.stage)} config but the command trains stage "${stage}"`,
    );
  const input = { ...obj, stage };
  const r = TrainConfigSchema.safeParse(input);
  if (!r.success) throw new Error(`${where}: ${formatIssues(r.error, input)}`);
  const c = r.data;
  if (c.stage === 'tokenizer') {
    if (c.data.sources.length === 0 && c.data.corpora.length === 0)
      throw new Error(`${where}: data.sources and data.corpora are both empty; the tokenizer needs text to learn from`);
    return c;
  }
  checkModelStage(c, where);
  return c;
}

function checkModelStage(c: ModelStageConfig, where: string): void {
  const { batch, pack, model, optim, run } = c;
  if (batch.rows % batch.microRows !== 0)
    throw new Error(
      `${where}: batch.rows (${batch.rows}) must be a multiple of batch.microRows (${batch.microRows}); the accumulation is rows / microRows`,
    );
  if (c.pack.isolation === 'sequence' && optim.lossAverage === 'sample')
    throw new Error(
      `${where}: optim.lossAverage "sample" needs pack.isolation "sample" (with "sequence" the documents of a packed sequence form one sample)`,
    );
  if (optim.warmupSteps > run.steps)
    throw new Error(`${where}: optim.warmupSteps (${optim.warmupSteps}) exceeds run.steps (${run.steps})`);
  if (model.init === 'scratch') {
    if (!model.tokenizer)
      throw new Error(
        `${where}: model.init is "scratch", so model.tokenizer must name a tokenizer folder (train one with \`glmv train tokenizer\`)`,
      );
    const a = model.arch;
    if (a.hiddenSize % a.heads !== 0)
      throw new Error(`${where}: model.arch.hiddenSize (${a.hiddenSize}) must be divisible by heads (${a.heads})`);
    if (a.heads % a.kvHeads !== 0)
      throw new Error(`${where}: model.arch.heads (${a.heads}) must be a multiple of kvHeads (${a.kvHeads})`);
    const headDim = a.hiddenSize / a.heads;
    if (headDim % 8 !== 0)
      throw new Error(
        `${where}: model.arch head dim hiddenSize / heads = ${headDim}; it must be a multiple of 8 (half of it rotates, split over 3 rope axes in pairs)`,
      );
    const v = a.vision;
    if (v.hiddenSize % v.heads !== 0 || (v.hiddenSize / v.heads) % 4 !== 0)
      throw new Error(
        `${where}: model.arch.vision.hiddenSize / heads = ${v.hiddenSize / v.heads}; it must be an integer divisible by 4 (2D rotary)`,
      );
    if (v.imageSize % (v.patchSize * v.mergeSize) !== 0)
      throw new Error(
        `${where}: model.arch.vision.imageSize (${v.imageSize}) must be a multiple of patchSize × mergeSize (${v.patchSize * v.mergeSize})`,
      );
    if (a.maxPositions < pack.seqLen)
      throw new Error(`${where}: model.arch.maxPositions (${a.maxPositions}) is below pack.seqLen (${pack.seqLen})`);
  }
  if (c.stage === 'sft') {
    const f = c.sft.filter;
    if (f.minPassRate >= f.maxPassRate)
      throw new Error(
        `${where}: sft.filter.minPassRate (${f.minPassRate}) must be below maxPassRate (${f.maxPassRate}); nothing could be kept`,
      );
    if (f.enabled && !f.model && model.init === 'scratch')
      throw new Error(
        `${where}: sft.filter is enabled but there is no previous-stage model to score with; set sft.filter.model or model.init to a checkpoint`,
      );
  }
  if (c.eval.accuracy && c.eval.accuracy.thinking === false && c.eval.accuracy.prompt === 'pretrain')
    throw new Error(`${where}: eval.accuracy.thinking applies to the chat prompt only; remove it or use prompt: chat`);
}

/** Reads a YAML (.yaml/.yml) or JSON train config (the shared reader, naming the file in errors). */
export function readConfigFile(path: string): unknown {
  return readSharedConfigFile(path, 'train config');
}

/** `--set key.path=value` overrides (the shared implementation; also re-exported for the pipeline). */
export { applyOverrides };

/** Reads a config file (or takes an object), applies overrides and validates it for a stage. */
export function loadTrainConfig(source: string | object, stage: StageName, sets: readonly string[] = []): TrainConfig {
  const raw = typeof source === 'string' ? readConfigFile(source) : source;
  const where = typeof source === 'string' ? `train config ${source}` : 'train config';
  return parseTrainConfig(applyOverrides(raw, sets), stage, where);
}

/**
 * Fields that may change between a run and its resumption: they do not affect what is computed. Any other
 * difference would make the resumed run diverge from the uninterrupted one, so it is refused.
 */
const RESUMABLE_FIELDS = [
  'run.logEvery',
  'run.checkpointEvery',
  'run.keepCheckpoints',
  'run.dir',
  'eval',
  'data.imageCacheMB',
  'sft.filter.batchSize',
];

/** Dotted paths where two resolved configs differ (ignoring the resumable fields). */
export function configDifferences(a: unknown, b: unknown, prefix = ''): string[] {
  if (RESUMABLE_FIELDS.includes(prefix.replace(/\.$/, ''))) return [];
  if (a === b) return [];
  const isObj = (x: unknown): x is Record<string, unknown> => typeof x === 'object' && x !== null;
  if (!isObj(a) || !isObj(b) || Array.isArray(a) !== Array.isArray(b)) {
    return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix.replace(/\.$/, '') || '(root)'];
  }
  const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
  return [...keys].flatMap((k) => configDifferences(a[k], b[k], `${prefix}${k}.`));
}

/** Unwraps defaults, optionals, nullables and arrays to the schema underneath. */
function inner(s: z.ZodType): z.ZodType {
  let cur = s as z.ZodType & { _zod: { def: { innerType?: z.ZodType; element?: z.ZodType; type: string } } };
  for (;;) {
    const def = cur._zod.def;
    if (def.innerType) cur = def.innerType as typeof cur;
    else if (def.type === 'array' && def.element) cur = def.element as typeof cur;
    else return cur;
  }
}

/** Every dotted field path of a stage's config (array elements as `[]`), e.g. `data.sources[].weight`. */
export function configFieldPaths(stage: StageName): string[] {
  const out: string[] = [];
  const walk = (s: z.ZodType, prefix: string) => {
    const t = inner(s);
    const def = (t as unknown as { _zod: { def: { type: string } } })._zod.def;
    if (def.type === 'object') {
      for (const [k, v] of Object.entries((t as z.ZodObject).shape)) {
        const path = prefix ? `${prefix}.${k}` : k;
        const arr = isArrayOf(v as z.ZodType);
        out.push(arr ? `${path}[]` : path);
        walk(v as z.ZodType, arr ? `${path}[]` : path);
      }
    }
  };
  walk(stageSchema(stage), '');
  return out.filter((p) => p !== 'stage');
}

function isArrayOf(s: z.ZodType): boolean {
  let cur = s as unknown as { _zod: { def: { type: string; innerType?: unknown } } };
  while (cur._zod.def.innerType) cur = cur._zod.def.innerType as typeof cur;
  return cur._zod.def.type === 'array';
}
