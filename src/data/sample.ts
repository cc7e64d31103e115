/**
 * The one record every stage exchanges: generators and loaders produce it, the processor turns its media into
 * pixels, trainers render it with the chat template, the reward router and eval score responses against it.
 * JSONL manifests hold one `Sample` per line; media paths are relative to the manifest's folder.
 */

/** The paper's task domains (Table 1 rows plus the synthetic curriculum's own). */
export const DOMAINS = [
  'vqa', // general VQA: scenes, attributes, counting, spatial relations
  'stem', // arithmetic, equations, geometry, function plots, physics
  'ocr',
  'chart',
  'long_doc',
  'grounding',
  'gui',
  'spatial', // spatial / logic puzzles: mazes, grids, clocks, tangrams
  'video',
  'multi_image',
  'text', // text-only data
] as const;
export type Domain = (typeof DOMAINS)[number];

/** Verifier names understood by the reward router (src/reward). */
export const VERIFIER_TYPES = [
  'math',
  'physics',
  'chemistry',
  'chart',
  'ocr',
  'vqa',
  'multiple_choice',
  'counting',
  'grounding',
  'spatial',
  'gui',
  'video',
  'long_doc',
  'general',
] as const;
export type VerifierType = (typeof VERIFIER_TYPES)[number];

export interface VerifierSpec {
  type: VerifierType;
  /** Verifier-specific parameters, e.g. `{ tolerance: 0.01 }`, `{ iouThreshold: 0.5 }`, `{ unit: 'm/s' }`. */
  params?: Record<string, unknown>;
}

export interface VideoRef {
  /** Either a video file (decoded with ffmpeg) ... */
  path?: string;
  /** ... or a list of frame images. */
  frames?: string[];
  /** Frames per second of `frames` (needed for timestamps). */
  fps?: number;
}

export interface Sample {
  /** Unique and stable: `<source>/<split>/<seed or row>`. */
  id: string;
  domain: Domain;
  /** Generator or dataset name; the reward router's routing key. */
  source: string;
  split: 'train' | 'heldout' | 'test' | 'val';
  /** 1 (easiest) … 5 (hardest); absent for external data. */
  difficulty?: number;
  /** Image paths (PNG/JPEG/…), in the order they appear in the prompt. */
  images: string[];
  video?: VideoRef;
  question: string;
  /** Ground truth exactly as it should appear inside the answer box. */
  answer: string;
  /** Multiple-choice options (text without the letter); `answer` is then the letter. */
  options?: string[];
  verifier: VerifierSpec;
  /** Step-by-step reasoning derived from the ground truth: the `<think>` part of long-CoT SFT targets. */
  rationale?: string;
  /**
   * The user turn puts the question before the media (as in datasets that ask first and show after); default: the
   * media first. The lab uses it so the image sits right before the answer that reads it.
   */
  questionFirst?: boolean;
  /** Anything else a generator knows (scene graph, boxes in pixels, …). */
  meta?: Record<string, unknown>;
}
