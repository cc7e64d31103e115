/**
 * The contract every domain generator implements. A generator works in two phases so that the train/held-out
 * partition is cheap: `plan` draws a JSON-serialisable scene + question (no pixels), the driver accepts or redraws it
 * by the hash of its semantic `key`, and only then `build` renders images and writes question, answer and rationale.
 */

import type { Rng } from '../../util/rng.js';
import type { Canvas } from '../render.js';
import type { Domain, VerifierSpec } from '../sample.js';

export type Split = 'train' | 'heldout';

export interface GenConfig {
  split: Split;
  /** 1 (easiest) … 5 (hardest). */
  difficulty: number;
  /** Long side of the image in pixels (multiple of 28). */
  size: number;
  /** Restrict to these sub-tasks (names from `Generator.tasks`); all when absent. */
  tasks?: readonly string[];
}

export interface Built {
  task: string;
  question: string;
  /** Exactly what belongs inside the answer box. */
  answer: string;
  options?: string[];
  verifier: VerifierSpec;
  rationale: string;
  /** For multiple-choice items: the option text and the verifier to use in fill-in-the-blank form. */
  blank?: { answer: string; verifier: VerifierSpec };
  images: Canvas[];
  video?: { frames: Canvas[]; fps: number };
  /** Ask the question before showing the media (Sample.questionFirst). */
  questionFirst?: boolean;
  meta?: Record<string, unknown>;
}

/** A labelled region of the scene in pixels of the first image (grounding pairs for pre-training). */
export interface Region {
  label: string;
  box: { x1: number; y1: number; x2: number; y2: number };
}

export interface Generator<P = unknown> {
  domain: Domain;
  /** Routing key and id prefix, e.g. `synth/vqa`. */
  name: string;
  description: string;
  tasks: readonly string[];
  /** Default long side for real-model use, and the smallest size that still gives sensible images. */
  defaultSize: number;
  minSize: number;
  plan(rng: Rng, cfg: GenConfig): P;
  /** Semantic identity used for the train/held-out partition (default: the whole plan). */
  key?(plan: P): string;
  build(plan: P, cfg: GenConfig, rng: Rng): Built;
  /** Dense caption of the scene, derived from the plan (pre-training captions). */
  describe(plan: P, cfg: GenConfig): string;
  /** Labelled regions for grounding pairs; absent where the domain has none. */
  regions?(plan: P, cfg: GenConfig): Region[];
}

/** How many draws `planUntil` makes before it gives up. */
export const PLAN_TRIES = 500;

/**
 * The generators' plan-and-retry loop: `draw` returns a plan, or null for a draw that cannot be used (an ambiguous
 * question, a crowded scene) and is redrawn; after PLAN_TRIES unusable draws it throws `failure`, which names the
 * generator and the settings it could not plan for.
 */
export function planUntil<P>(draw: () => P | null | undefined, failure: string): P {
  for (let t = 0; t < PLAN_TRIES; t++) {
    const p = draw();
    if (p) return p;
  }
  throw new Error(failure);
}

/** Picks one allowed task; clear error when a requested task does not exist. */
export function pickTask<T extends string>(
  rng: Rng,
  all: readonly T[],
  cfg: GenConfig,
  weights?: readonly number[],
): T {
  const allowed = cfg.tasks?.length ? all.filter((t) => cfg.tasks!.includes(t)) : all;
  if (allowed.length === 0) {
    throw new Error(`tasks: none of [${cfg.tasks?.join(', ')}] exists here; expected some of [${all.join(', ')}]`);
  }
  if (!weights) return rng.pick(allowed);
  const w = allowed.map((t) => weights[all.indexOf(t)] ?? 1);
  return allowed[rng.weighted(w)]!;
}

/** Formats a number without floating-point noise (at most `digits` decimals, trailing zeros removed). */
export function fmt(n: number, digits = 4): string {
  if (!Number.isFinite(n)) throw new Error(`fmt: not a finite number: ${n}`);
  const s = n.toFixed(digits);
  const t = s.includes('.') ? s.replace(/0+$/, '').replace(/\.$/, '') : s;
  return t === '-0' ? '0' : t;
}

export function cap(s: string): string {
  return s.charAt(0).toUpperCase() + s.slice(1);
}

export function plural(n: number, word: string, pluralWord = `${word}s`): string {
  return `${n} ${n === 1 ? word : pluralWord}`;
}

/** Letters for multiple-choice options. */
export const LETTERS = ['A', 'B', 'C', 'D', 'E', 'F'];

/** Shuffles `correct` into distinct distractors; returns options and the answer letter. */
export function makeOptions(
  rng: Rng,
  correct: string,
  distractors: string[],
  n = 4,
): { options: string[]; letter: string } {
  const pool = [...new Set(distractors.filter((d) => d !== correct))];
  rng.shuffle(pool);
  const options = rng.shuffle([correct, ...pool.slice(0, n - 1)]);
  return { options, letter: LETTERS[options.indexOf(correct)]! };
}
