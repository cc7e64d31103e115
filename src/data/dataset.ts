/**
 * Writing a synthetic dataset: a deterministic mixture of generators → shards of JSONL + PNG, with progress, JSONL
 * metrics, per-domain throughput, resume (whole shards are kept; sample i is the same sample on every run) and
 * optional multiple-choice → fill-in-the-blank conversion.
 */
import { existsSync, readdirSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { yieldToEventLoop } from '../util/async.js';
import { MetricsWriter, Progress } from '../util/progress.js';
import { generateOne } from './generate.js';
import { GENERATOR_NAMES, getGenerator } from './generators/index.js';
import type { Split } from './generators/types.js';
import { type MixEntry, mixtureSlots, parseMix } from './mixture.js';
import { toFillInBlank } from './sft.js';
import { type DatasetInfo, listShards, ShardWriter } from './store.js';

export interface DatasetSpec {
  /** "vqa,chart:2" or "all". */
  domains: string;
  n: number;
  split: Split;
  seed: number;
  /** "3" or "1-5". */
  difficulty: string;
  /** "112" (all) or "112,chart=224,long_doc=448"; absent → each generator's default. */
  size?: string;
  tasks?: string[];
  shardSize?: number;
  /** 'choice' keeps multiple-choice items; 'blank' converts them to fill-in-the-blank. */
  mcq?: 'choice' | 'blank';
}

export interface GenerateDatasetOptions {
  out: string;
  resume?: boolean;
  overwrite?: boolean;
  quiet?: boolean;
}

export function parseDifficulty(text: string): number | [number, number] {
  const m = /^\s*([1-5])\s*(?:-\s*([1-5]))?\s*$/.exec(text);
  if (!m) throw new Error(`--difficulty: expected a level 1-5 or a range like 1-5, got "${text}"`);
  if (m[2] === undefined) return Number(m[1]);
  const lo = Number(m[1]);
  const hi = Number(m[2]);
  if (lo > hi) throw new Error(`--difficulty: range ${lo}-${hi} is inverted`);
  return lo === hi ? lo : [lo, hi];
}

/** Per-generator sizes from "112,chart=224". */
export function parseSizes(text: string | undefined, mix: readonly MixEntry[]): Record<string, number | undefined> {
  const out: Record<string, number | undefined> = {};
  let all: number | undefined;
  for (const part of (text ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)) {
    const [k, v] = part.includes('=') ? part.split('=').map((s) => s.trim()) : [undefined, part];
    const n = Number(v);
    if (!Number.isInteger(n) || n < 28 || n % 28 !== 0) {
      throw new Error(`--size: sizes must be multiples of 28 (the processor's grid), got "${v}" in "${text}"`);
    }
    if (k === undefined) all = n;
    else {
      getGenerator(k!);
      out[k!] = n;
    }
  }
  const res: Record<string, number | undefined> = {};
  for (const e of mix) {
    const g = getGenerator(e.name);
    const s = out[e.name] ?? all;
    if (s !== undefined && s < g.minSize) {
      throw new Error(
        `--size: ${e.name} needs at least ${g.minSize} px, got ${s} (give it its own size, e.g. "${all ?? 112},${e.name}=${g.minSize}")`,
      );
    }
    res[e.name] = s;
  }
  return res;
}

export interface GenerateResult {
  info: DatasetInfo;
  /** Samples per second per generator (this run only). */
  rate: Record<string, number>;
  seconds: number;
}

export async function generateDataset(spec: DatasetSpec, o: GenerateDatasetOptions): Promise<GenerateResult> {
  if (!Number.isInteger(spec.n) || spec.n < 1) throw new Error(`--n: expected a positive integer, got ${spec.n}`);
  if (!Number.isInteger(spec.seed) || spec.seed < 0)
    throw new Error(`--seed: expected a non-negative integer, got ${spec.seed}`);
  if (spec.split !== 'train' && spec.split !== 'heldout')
    throw new Error(`--split: expected train or heldout, got ${spec.split}`);
  const mix = parseMix(spec.domains, GENERATOR_NAMES);
  const difficulty = parseDifficulty(spec.difficulty);
  const sizes = parseSizes(spec.size, mix);
  const shardSize = spec.shardSize ?? 1000;
  const mcq = spec.mcq ?? 'choice';
  if (mcq !== 'choice' && mcq !== 'blank') throw new Error(`--mcq: expected choice or blank, got ${mcq}`);
  if (existsSync(o.out) && readdirSync(o.out).length > 0 && !o.resume) {
    if (!o.overwrite)
      throw new Error(`${o.out} is not empty; pass --resume to continue it or --overwrite to replace it`);
    rmSync(o.out, { recursive: true, force: true });
  }
  const existing = o.resume ? listShards(o.out) : [];
  const start = existing.reduce((a, s) => a + s.count, 0);
  if (start > spec.n) throw new Error(`${o.out} already holds ${start} samples, more than --n ${spec.n}`);
  const writer = new ShardWriter(o.out, shardSize, existing);
  const metrics = new MetricsWriter(join(o.out, 'metrics.jsonl'));
  const progress = new Progress({ label: 'data gen', total: spec.n, quiet: o.quiet });
  progress.update(start);
  const time: Record<string, number> = {};
  const count: Record<string, number> = {};
  const t0 = performance.now();
  let lastLog = t0;
  for (const slot of mixtureSlots(mix, start, spec.n)) {
    const name = mix.find((e) => getGenerator(e.name) === slot.gen)!.name;
    const t = performance.now();
    const g = generateOne(slot.gen, {
      seed: spec.seed,
      index: slot.local,
      split: spec.split,
      difficulty,
      size: sizes[name],
      tasks: spec.tasks,
    });
    if (mcq === 'blank' && g.sample.options) {
      const b = toFillInBlank(g.sample);
      if (b) g.sample = b;
    }
    writer.write(g);
    if (slot.index % 32 === 31) await yieldToEventLoop(); // frees the canvases rendered so far
    time[name] = (time[name] ?? 0) + (performance.now() - t);
    count[name] = (count[name] ?? 0) + 1;
    progress.update(slot.index + 1, name);
    if (performance.now() - lastLog > 10_000) {
      lastLog = performance.now();
      metrics.write({ event: 'progress', done: slot.index + 1, total: spec.n, elapsed_s: (lastLog - t0) / 1000 });
    }
  }
  const info = writer.close({ ...spec, generatedBy: 'glmv data gen' });
  progress.stop();
  const rate: Record<string, number> = {};
  for (const k of Object.keys(count)) rate[k] = count[k]! / (time[k]! / 1000);
  const seconds = (performance.now() - t0) / 1000;
  metrics.write({ event: 'done', count: info.count, seconds, samples_per_s: rate, by_domain: info.byDomain });
  return { info, rate, seconds };
}
