/**
 * Built-in benchmark definitions: the paper's benchmark families with their standard metrics (users supply the
 * data files; the names below are what VLMEvalKit / lmms-eval distribute), and one synthetic held-out benchmark per
 * data domain, generated here, so every model we train gets a per-domain table.
 *
 * Reference scores are the paper's Table 2 (thinking mode, percent) where the benchmark appears there.
 */
import { GENERATOR_NAMES, LAB_GENERATOR_NAMES } from '../../data/generators/index.js';
import { type Benchmark, type BenchmarkInput, parseBenchmark } from '../benchmark.js';

const MCQ_PROMPT = "{question}{options}\nAnswer with the option's letter from the given choices.";
const SHORT = '{question}\nAnswer the question using a single word or phrase.';

const ref = (glm41v: number, glm45v: number) => ({ 'GLM-4.1V-9B-Thinking': glm41v, 'GLM-4.5V': glm45v });

const EXTERNAL: BenchmarkInput[] = [
  {
    name: 'mmbench',
    family: 'General VQA',
    description: 'MMBench v1.1 dev (VLMEvalKit MMBench_DEV_EN_V11.tsv, base64 images, circular copies as rows).',
    data: { format: 'tsv', path: 'MMBench_DEV_EN_V11.tsv' },
    prompt: { template: MCQ_PROMPT },
    metric: { name: 'mcq', circular: 'data' },
    judge: 'never',
    groupBy: ['category', 'l2-category'],
    reference: ref(85.8, 88.2),
  },
  {
    name: 'mmstar',
    family: 'General VQA',
    description: 'MMStar (VLMEvalKit MMStar.tsv).',
    data: { format: 'tsv', path: 'MMStar.tsv' },
    prompt: { template: MCQ_PROMPT },
    metric: { name: 'mcq' },
    judge: 'never',
    groupBy: ['category', 'l2_category'],
    reference: ref(72.9, 75.3),
  },
  {
    name: 'mmmu',
    family: 'STEM',
    description:
      'MMMU validation (VLMEvalKit MMMU_DEV_VAL.tsv); open questions are checked as math with a judge fallback.',
    data: { format: 'tsv', path: 'MMMU_DEV_VAL.tsv', domain: 'stem', verifier: { type: 'math' } },
    prompt: { template: '{question}{options}' },
    metric: { name: 'reward' },
    groupBy: ['split', 'category'],
    reference: ref(68.0, 75.4),
  },
  {
    name: 'mathvista',
    family: 'STEM',
    description:
      'MathVista testmini (VLMEvalKit MathVista_MINI.tsv); extraction from the box, math equivalence, judge fallback.',
    data: { format: 'tsv', path: 'MathVista_MINI.tsv', domain: 'stem', verifier: { type: 'math' } },
    prompt: { template: '{question}{options}' },
    metric: { name: 'reward' },
    groupBy: ['task', 'skills'],
    reference: ref(80.7, 84.6),
  },
  {
    name: 'mathverse',
    family: 'STEM',
    description: 'MathVerse testmini (VLMEvalKit MathVerse_MINI.tsv); math equivalence with judge fallback.',
    data: { format: 'tsv', path: 'MathVerse_MINI.tsv', domain: 'stem', verifier: { type: 'math' } },
    prompt: { template: '{question}{options}' },
    metric: { name: 'reward' },
    groupBy: ['problem_version'],
    reference: ref(68.4, 72.1),
  },
  {
    name: 'chartqa',
    family: 'OCR & Chart',
    description: 'ChartQA test (VLMEvalKit ChartQA_TEST.tsv); relaxed accuracy (5%).',
    data: { format: 'tsv', path: 'ChartQA_TEST.tsv', domain: 'chart' },
    prompt: { template: SHORT },
    metric: { name: 'relaxed_accuracy' },
    judge: 'never',
    groupBy: ['split'],
  },
  {
    name: 'docvqa',
    family: 'OCR & Chart',
    description: 'DocVQA validation (VLMEvalKit DocVQA_VAL.tsv, answers as a list); ANLS.',
    data: { format: 'tsv', path: 'DocVQA_VAL.tsv', domain: 'ocr' },
    prompt: { template: SHORT },
    metric: { name: 'anls' },
    judge: 'never',
  },
  {
    name: 'infovqa',
    family: 'OCR & Chart',
    description: 'InfographicVQA validation (VLMEvalKit InfoVQA_VAL.tsv, answers as a list); ANLS.',
    data: { format: 'tsv', path: 'InfoVQA_VAL.tsv', domain: 'ocr' },
    prompt: { template: SHORT },
    metric: { name: 'anls' },
    judge: 'never',
  },
  {
    name: 'textvqa',
    family: 'OCR & Chart',
    description: 'TextVQA validation (VLMEvalKit TextVQA_VAL.tsv, 10 annotator answers as a list); VQA score.',
    data: { format: 'tsv', path: 'TextVQA_VAL.tsv', domain: 'ocr' },
    prompt: { template: SHORT },
    metric: { name: 'vqa_score' },
    judge: 'never',
  },
  {
    name: 'ocrbench',
    family: 'OCR & Chart',
    description: 'OCRBench (VLMEvalKit OCRBench.tsv); a ground truth contained in the answer, per category.',
    data: { format: 'tsv', path: 'OCRBench.tsv', domain: 'ocr' },
    prompt: { template: '{question}' },
    metric: { name: 'ocrbench' },
    judge: 'never',
    groupBy: ['category'],
    reference: ref(84.2, 86.5),
  },
  {
    name: 'refcoco',
    family: 'Grounding',
    description:
      'RefCOCO val as JSONL + images: {"image": PATH, "question": REFERRING EXPRESSION, "answer": "[x1,y1,x2,y2]" in pixels}; hit when IoU ≥ 0.5 with the predicted 0–1000 box.',
    data: { format: 'jsonl', path: 'refcoco_val.jsonl', domain: 'grounding' },
    prompt: { template: 'Help me to locate {question} in the image and give me its bounding boxes.' },
    metric: { name: 'iou', threshold: 0.5, pred: 'norm1000', gt: 'pixel', gtFormat: 'xyxy' },
    judge: 'never',
    reference: ref(85.3, 91.3),
  },
  {
    name: 'screenspot',
    family: 'GUI Agents',
    description:
      'ScreenSpot (VLMEvalKit ScreenSpot_Mobile/Desktop/Web TSV; instruction in "question", pixel box [x,y,w,h] in "bbox"); hit when the predicted point lies in the box.',
    data: { format: 'tsv', path: 'ScreenSpot.tsv', domain: 'gui', fields: { answer: 'bbox' } },
    prompt: {
      template:
        'In this screenshot, where should I click to: {question}? Answer with the point [x, y] in thousandths (0-999) of the width and height.',
    },
    metric: { name: 'point_in_box', pred: 'norm1000', gt: 'pixel', gtFormat: 'xywh', inclusive: true },
    judge: 'never',
    groupBy: ['data_type', 'data_source'],
  },
  {
    name: 'videomme',
    family: 'Video',
    description:
      'Video-MME without subtitles (VLMEvalKit Video-MME.tsv: videoID, question, candidates "A. …", answer letter; videos in video/<videoID>.mp4).',
    data: {
      format: 'tsv',
      path: 'Video-MME.tsv',
      domain: 'video',
      fields: { options: 'candidates' },
      stripOptionLetters: true,
      video: { field: 'videoID', root: 'video', ext: '.mp4' },
    },
    prompt: { template: MCQ_PROMPT },
    metric: { name: 'mcq' },
    judge: 'never',
    groupBy: ['duration', 'task_type'],
    reference: ref(68.2, 74.6),
  },
  {
    name: 'mvbench',
    family: 'Video',
    description:
      'MVBench as JSONL (lmms-eval task JSONs concatenated: video, question, candidates, answer text; videos under video/).',
    data: {
      format: 'jsonl',
      path: 'mvbench.jsonl',
      domain: 'video',
      fields: { options: 'candidates' },
      video: { field: 'video', root: 'video', ext: '' },
    },
    prompt: { template: MCQ_PROMPT },
    metric: { name: 'mcq' },
    judge: 'never',
    groupBy: ['task'],
    reference: ref(68.4, 73.0),
  },
];

function synthetic(gen: string, lab = false): BenchmarkInput {
  return {
    name: `synth_${gen}`,
    family: lab ? 'RL lab held-out' : 'Synthetic held-out',
    description: `Held-out split of the synthetic ${gen} generator (never seen in training), scored by its own verifiers.`,
    data: { format: 'synthetic', generator: gen, n: 200, seed: 20250701, difficulty: '1-5' },
    extraction: 'strict',
    metric: { name: 'reward' },
    groupBy: ['task', 'difficulty'],
  };
}

const ALL: Benchmark[] = [
  ...EXTERNAL,
  ...GENERATOR_NAMES.map((g) => synthetic(g)),
  ...LAB_GENERATOR_NAMES.map((g) => synthetic(g, true)),
].map((b) => parseBenchmark(b, `built-in ${b.name}`));

export const BUILTIN_BENCHMARKS: ReadonlyMap<string, Benchmark> = new Map(ALL.map((b) => [b.name, b]));

/**
 * Names accepted by `--bench` besides files: each built-in, `synthetic` (the curriculum's synth_*), `lab` (the RL
 * lab's synth_lab_*, reasoning and probe questions), `paper` (all external).
 */
export function expandBenchNames(spec: string): string[] {
  const out: string[] = [];
  for (const raw of spec.split(',')) {
    const name = raw.trim();
    if (!name) continue;
    if (name === 'synthetic') out.push(...GENERATOR_NAMES.map((g) => `synth_${g}`));
    else if (name === 'lab') out.push(...LAB_GENERATOR_NAMES.map((g) => `synth_${g}`));
    else if (name === 'paper') out.push(...EXTERNAL.map((b) => b.name!));
    else out.push(name);
  }
  return [...new Set(out)];
}
