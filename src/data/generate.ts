/**
 * The generation driver: seeds, the train/held-out partition, and turning a generator's output into a `Sample`
 * with its PNG files. Sample `index` of (generator, split, seed) is always the same sample, whatever else is
 * generated alongside it, so generation can be sharded, resumed and parallelised without changing the data.
 */
import { createHash } from 'node:crypto';
import { Rng } from '../util/rng.js';
import type { GenConfig, Generator, Split } from './generators/types.js';
import { toPng } from './render.js';
import type { Sample } from './sample.js';

/** One in HELDOUT_MODULUS semantic keys belongs to the held-out split; the rest to train. */
export const HELDOUT_MODULUS = 8;
const MAX_ATTEMPTS = 2000;

export interface MediaFile {
  /** Path relative to the manifest folder. */
  path: string;
  png: Buffer;
}

export interface Generated {
  sample: Sample;
  media: MediaFile[];
}

export interface GenerateOptions {
  seed: number;
  index: number;
  split: Split;
  /** A level 1–5, or a [lo, hi] range drawn per sample. */
  difficulty: number | [number, number];
  /** Long side in px; the generator's default when absent. */
  size?: number;
  tasks?: readonly string[];
}

export function hash32(text: string): number {
  return createHash('sha1').update(text).digest().readUInt32BE(0);
}

/** True when a semantic key belongs to the held-out split (a fixed partition of the key space). */
export function isHeldoutKey(generatorName: string, key: string): boolean {
  return hash32(`${generatorName}\u0000${key}`) % HELDOUT_MODULUS === 0;
}

/** True when a value (a word, a label) is reserved for the held-out split's parameter pools. */
export function isHeldoutValue(pool: string, value: string): boolean {
  return hash32(`pool:${pool}\u0000${value}`) % HELDOUT_MODULUS === 0;
}

export function validateOptions(gen: Generator, o: GenerateOptions): { cfgBase: Omit<GenConfig, 'difficulty'> } {
  if (!Number.isInteger(o.seed) || o.seed < 0)
    throw new Error(`generate: seed must be a non-negative integer, got ${o.seed}`);
  if (!Number.isInteger(o.index) || o.index < 0)
    throw new Error(`generate: index must be a non-negative integer, got ${o.index}`);
  if (o.split !== 'train' && o.split !== 'heldout')
    throw new Error(`generate: split must be train or heldout, got ${o.split}`);
  const levels = Array.isArray(o.difficulty) ? o.difficulty : [o.difficulty, o.difficulty];
  for (const d of levels) {
    if (!Number.isInteger(d) || d < 1 || d > 5)
      throw new Error(`generate: difficulty must be an integer 1..5, got ${d}`);
  }
  if (levels[0]! > levels[1]!) throw new Error(`generate: difficulty range ${levels[0]}-${levels[1]} is inverted`);
  const size = o.size ?? gen.defaultSize;
  if (!Number.isInteger(size) || size < gen.minSize || size > 4096 || size % 28 !== 0) {
    throw new Error(
      `generate: size for ${gen.name} must be a multiple of 28 in ${gen.minSize}..4096 (the processor's 28-px grid), got ${size}`,
    );
  }
  if (o.tasks) {
    const bad = o.tasks.filter((t) => !gen.tasks.includes(t));
    if (bad.length === o.tasks.length) {
      throw new Error(`generate: ${gen.name} has no task ${bad.join(', ')}; its tasks are ${gen.tasks.join(', ')}`);
    }
  }
  return { cfgBase: { split: o.split, size, tasks: o.tasks } };
}

/** Draws the accepted plan for one sample (no rendering): used by `generateOne` and by caption/corpus builders. */
export function planOne<P>(
  gen: Generator<P>,
  o: GenerateOptions,
): { plan: P; cfg: GenConfig; rng: Rng; attempts: number } {
  const { cfgBase } = validateOptions(gen as Generator, o);
  const base = `${gen.name}|${o.split}|${o.seed}|${o.index}`;
  const dRng = new Rng(hash32(`${base}|difficulty`));
  const difficulty = Array.isArray(o.difficulty) ? dRng.int(o.difficulty[0], o.difficulty[1]) : o.difficulty;
  const cfg: GenConfig = { ...cfgBase, difficulty };
  for (let attempt = 0; attempt < MAX_ATTEMPTS; attempt++) {
    const rng = new Rng(hash32(`${base}|${attempt}`));
    const plan = gen.plan(rng, cfg);
    const key = gen.key ? gen.key(plan) : JSON.stringify(plan);
    if (isHeldoutKey(gen.name, key) === (o.split === 'heldout')) return { plan, cfg, rng, attempts: attempt + 1 };
  }
  throw new Error(
    `generate: ${gen.name} found no ${o.split} plan in ${MAX_ATTEMPTS} draws at difficulty ${difficulty}; its key space is too small`,
  );
}

/** Safe file stem from a sample id. */
export function fileStem(id: string): string {
  return id.replace(/[^A-Za-z0-9._-]+/g, '-');
}

export function generateOne<P>(gen: Generator<P>, o: GenerateOptions): Generated {
  const { plan, cfg, rng } = planOne(gen, o);
  const built = gen.build(plan, cfg, rng);
  const id = `${gen.name}/${o.split}/${o.seed}-${o.index}`;
  const stem = fileStem(id);
  const media: MediaFile[] = built.images.map((c, i) => ({ path: `img/${stem}-${i}.png`, png: toPng(c) }));
  const sample: Sample = {
    id,
    domain: gen.domain,
    source: gen.name,
    split: o.split,
    difficulty: cfg.difficulty,
    images: media.map((m) => m.path),
    question: built.question,
    answer: built.answer,
    verifier: built.verifier,
    rationale: built.rationale,
  };
  if (built.options) sample.options = built.options;
  if (built.questionFirst) sample.questionFirst = true;
  if (built.video) {
    const frames = built.video.frames.map((c, i) => ({
      path: `img/${stem}-f${String(i).padStart(2, '0')}.png`,
      png: toPng(c),
    }));
    media.push(...frames);
    sample.video = { frames: frames.map((f) => f.path), fps: built.video.fps };
  }
  sample.meta = {
    task: built.task,
    size: cfg.size,
    ...(built.blank ? { blank: built.blank } : {}),
    ...built.meta,
    scene: plan,
  };
  return { sample, media };
}
