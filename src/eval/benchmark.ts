/**
 * Declarative benchmark definitions (YAML or JSON files, or the built-ins in ./benchmarks/): where the data is
 * and in which format, how the prompt is written, how the answer is extracted, which metric scores it, judge use
 * and generation overrides. Validated with zod: every problem is reported with its path.
 *
 * ```yaml
 * name: my_chartqa
 * data: { format: tsv, path: ChartQA_TEST.tsv }          # relative to this file, then to --data-dir
 * prompt: { template: "{question}\nAnswer with a single word or number." }
 * metric: { name: relaxed_accuracy }
 * groupBy: [split]
 * ```
 */
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { z } from 'zod';
import { DOMAINS, VERIFIER_TYPES } from '../data/sample.js';
import { readConfigFile } from '../util/config.js';

const fieldsSchema = z
  .object({
    id: z.string().min(1),
    image: z.string().min(1),
    question: z.string().min(1),
    answer: z.string().min(1),
    options: z.string().min(1),
  })
  .partial()
  .strict();

export const DataSchema = z
  .object({
    /** `auto` picks the loader from the path (see src/data/formats); `synthetic` renders a held-out set. */
    format: z.enum(['auto', 'tsv', 'parquet', 'jsonl', 'llava', 'dataset', 'synthetic']).default('auto'),
    /** File or folder. Relative paths resolve against the definition's folder, then `--data-dir`. */
    path: z.string().min(1).optional(),
    /** Field name overrides for the generic record mapping. */
    fields: fieldsSchema.optional(),
    domain: z.enum(DOMAINS).optional(),
    /** Verifier for rows without options (rows with options get `multiple_choice`). */
    verifier: z
      .object({ type: z.enum(VERIFIER_TYPES), params: z.record(z.string(), z.unknown()).optional() })
      .strict()
      .optional(),
    /** Folder relative image paths resolve against (default: the data file's folder). */
    imageRoot: z.string().optional(),
    /** Videos named by a column: `root/<value><ext>`. */
    video: z
      .object({ field: z.string().min(1), root: z.string().default('.'), ext: z.string().default('') })
      .strict()
      .optional(),
    /** Option texts carry their own letter ("A. cat"): strip it (Video-MME candidates). */
    stripOptionLetters: z.boolean().default(false),
    /** Synthetic held-out set: generator name, size, seed, difficulty (`3` or `1-5`), image size. */
    generator: z.string().min(1).optional(),
    n: z.number().int().positive().default(200),
    seed: z.number().int().min(0).default(20250701),
    difficulty: z.string().default('1-5'),
    size: z.number().int().positive().optional(),
    /** Synthetic multiple choice kept as choice, or converted to fill-in-the-blank as SFT trains it. */
    mcq: z.enum(['choice', 'blank']).default('choice'),
  })
  .strict()
  .superRefine((d, ctx) => {
    if (d.format === 'synthetic' && !d.generator)
      ctx.addIssue({ code: 'custom', path: ['generator'], message: 'a synthetic benchmark needs a generator name' });
    if (d.format !== 'synthetic' && !d.path)
      ctx.addIssue({ code: 'custom', path: ['path'], message: 'expected the data file or folder (path)' });
  });

const PLACEHOLDERS = ['question', 'options'] as const;

export const PromptSchema = z
  .object({
    /** User text; `{question}` and `{options}` (the formatted option lines, empty without options). */
    template: z.string().default('{question}{options}'),
    /** One option line; `{letter}` and `{text}`. */
    option: z.string().default('\n{letter}. {text}'),
    system: z.string().optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    for (const m of p.template.matchAll(/\{(\w+)\}/g))
      if (!(PLACEHOLDERS as readonly string[]).includes(m[1]!))
        ctx.addIssue({
          code: 'custom',
          path: ['template'],
          message: `unknown placeholder {${m[1]}}; expected ${PLACEHOLDERS.map((x) => `{${x}}`).join(', ')}`,
        });
    for (const m of p.option.matchAll(/\{(\w+)\}/g))
      if (m[1] !== 'letter' && m[1] !== 'text')
        ctx.addIssue({
          code: 'custom',
          path: ['option'],
          message: `unknown placeholder {${m[1]}}; expected {letter}, {text}`,
        });
  });

const coords = z.enum(['norm1000', 'norm1', 'pixel']);

export const MetricSchema = z.discriminatedUnion('name', [
  z
    .object({
      /** The reward router's verifier (the sample's own, or `verifier`) as the score. */
      name: z.literal('reward'),
      verifier: z.enum(VERIFIER_TYPES).optional(),
      params: z.record(z.string(), z.unknown()).default({}),
    })
    .strict(),
  z
    .object({
      /** Multiple choice through the `multiple_choice` verifier; CircularEval over rotations. */
      name: z.literal('mcq'),
      /** `data`: rotations are rows of the file (VLMEvalKit, group = index mod 1e6); `generate`: made here. */
      circular: z.enum(['none', 'data', 'generate']).default('none'),
      allowOptionText: z.boolean().default(true),
    })
    .strict(),
  z.object({ name: z.literal('relaxed_accuracy'), maxRelativeChange: z.number().min(0).default(0.05) }).strict(),
  z
    .object({
      name: z.literal('anls'),
      threshold: z.number().min(0).max(1).default(0.5),
      convention: z.enum(['paper', 'harness']).default('paper'),
    })
    .strict(),
  z.object({ name: z.literal('vqa_score') }).strict(),
  z.object({ name: z.literal('ocrbench'), categoryField: z.string().default('category') }).strict(),
  z.object({ name: z.literal('exact_match'), caseSensitive: z.boolean().default(false) }).strict(),
  z
    .object({
      /** Hit when IoU ≥ threshold (RefCOCO). */
      name: z.literal('iou'),
      threshold: z.number().min(0).max(1).default(0.5),
      /** Frame of the predicted box (GLM: 0–1000). */
      pred: coords.default('norm1000'),
      /** Frame and layout of the reference box. */
      gt: coords.default('pixel'),
      gtFormat: z.enum(['xyxy', 'xywh']).default('xyxy'),
    })
    .strict(),
  z
    .object({
      /** Hit when the predicted point (or a predicted box's centre) lies in the reference box (ScreenSpot). */
      name: z.literal('point_in_box'),
      pred: coords.default('norm1000'),
      gt: coords.default('pixel'),
      gtFormat: z.enum(['xyxy', 'xywh']).default('xyxy'),
      /** `[x, y, w, h]` → `x + w − 1` (VLMEvalKit's pixel-index convention). */
      inclusive: z.boolean().default(false),
    })
    .strict(),
]);

export const JudgeUseSchema = z.enum(['never', 'fallback', 'always']);

export const BenchmarkSchema = z
  .object({
    name: z
      .string()
      .regex(/^[A-Za-z0-9_.-]+$/, 'letters, digits, _ . - only (it names output folders)')
      .min(1),
    description: z.string().default(''),
    /** The paper's benchmark family (report grouping). */
    family: z.string().default('custom'),
    data: DataSchema,
    prompt: PromptSchema.default({ template: '{question}{options}', option: '\n{letter}. {text}' }),
    /** `lenient` (default): box tokens, then `\boxed{}`, `Answer:`, last line; `strict`: exactly one box. */
    extraction: z.enum(['strict', 'lenient']).default('lenient'),
    metric: MetricSchema,
    /** When the verifiers may ask the LLM judge (it must be configured with `--judge`). */
    judge: JudgeUseSchema.default('fallback'),
    /** Sample fields (meta keys, `task`, `difficulty`, `domain`) for per-group breakdowns. */
    groupBy: z.array(z.string().min(1)).default([]),
    generation: z
      .object({
        maxTokens: z.number().int().positive(),
        thinkingBudget: z.number().int().positive(),
        temperature: z.number().min(0).max(2),
      })
      .partial()
      .strict()
      .default({}),
    /** Published scores (percent) for the report's reference column. */
    reference: z.record(z.string(), z.number()).default({}),
  })
  .strict();

export type BenchmarkInput = z.input<typeof BenchmarkSchema>;
export type Benchmark = z.infer<typeof BenchmarkSchema> & {
  /** Folder relative data paths resolve against first (the definition file's folder), if any. */
  baseDir?: string;
};
export type Metric = z.infer<typeof MetricSchema>;

/** Formats zod issues as `path: message; …`. */
export function zodMessage(e: z.ZodError): string {
  return e.issues
    .map((i) => `${i.path.length ? i.path.join('.') : '(top level)'}: ${i.message}`)
    .slice(0, 8)
    .join('; ');
}

export function parseBenchmark(input: unknown, where: string): Benchmark {
  const r = BenchmarkSchema.safeParse(input);
  if (!r.success) throw new Error(`${where}: invalid benchmark definition: ${zodMessage(r.error)}`);
  return r.data;
}

/** Reads a YAML or JSON definition file: one benchmark, or a list of them. */
export function loadBenchmarkFile(path: string): Benchmark[] {
  const data = readConfigFile(path, 'benchmark file');
  const list = Array.isArray(data) ? data : [data];
  if (list.length === 0) throw new Error(`benchmark file ${path}: the list of benchmarks is empty`);
  const baseDir = dirname(resolve(path));
  return list.map((d, i) => ({
    ...parseBenchmark(d, `benchmark file ${path}${Array.isArray(data) ? ` (entry ${i + 1})` : ''}`),
    baseDir,
  }));
}

/**
 * Resolves a definition's data path: absolute as is; relative against the definition's folder, then each data
 * folder. A missing file is an error that says where it looked and what the benchmark expects.
 */
export function resolveDataPath(b: Benchmark, dataDirs: readonly string[], override?: string): string {
  const p = override ?? b.data.path;
  if (!p) throw new Error(`benchmark ${b.name}: no data path`);
  // A path given on the command line (`--data NAME=PATH`) is relative to the working directory first.
  const candidates = isAbsolute(p)
    ? [p]
    : [
        ...(override !== undefined ? [resolve(p)] : []),
        ...(b.baseDir ? [resolve(b.baseDir, p)] : []),
        ...dataDirs.map((d) => resolve(d, p)),
      ];
  const hit = candidates.find((c) => existsSync(c));
  if (hit) return hit;
  const fmt = b.data.format === 'auto' ? 'data file' : `${b.data.format} file`;
  throw new Error(
    `benchmark ${b.name}: ${fmt} ${p} not found (looked in ${candidates.join(', ') || '(no folders)'}). ` +
      `${b.description ? `${b.description} ` : ''}Put the file there, pass --data-dir DIR, or --data ${b.name}=PATH.`,
  );
}
