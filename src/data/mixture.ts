/**
 * Deterministic mixtures over generators: global sample i goes to the domain whose share is furthest behind its
 * weight (exact proportions at every prefix, no randomness), and gets that domain's next per-domain index. So the
 * per-domain streams are the same whatever the mixture, and a run resumed at any i reproduces the rest exactly.
 */
import { getGenerator, LAB_GENERATOR_NAMES } from './generators/index.js';
import type { Generator as DataGenerator } from './generators/types.js';

export interface MixEntry {
  name: string;
  weight: number;
}

/** Parses "vqa,chart:2,ocr:0.5" (weights default to 1), "all" (the curriculum) or "lab" (the RL lab's tasks). */
export function parseMix(text: string, all: readonly string[]): MixEntry[] {
  const t = text.trim();
  if (t === '') throw new Error('--domains: expected a comma-separated list like "vqa,chart:2", found an empty string');
  if (t === 'all') return all.map((name) => ({ name, weight: 1 }));
  if (t === 'lab') return LAB_GENERATOR_NAMES.map((name) => ({ name, weight: 1 }));
  const out: MixEntry[] = [];
  for (const part of t.split(',')) {
    const [name, w] = part.split(':').map((s) => s.trim());
    if (!name) throw new Error(`--domains: empty entry in "${text}"`);
    getGenerator(name);
    const weight = w === undefined ? 1 : Number(w);
    if (!(weight > 0) || !Number.isFinite(weight))
      throw new Error(`--domains: weight of ${name} must be a positive number, got "${w}"`);
    if (out.some((e) => e.name === name)) throw new Error(`--domains: ${name} is listed twice`);
    out.push({ name, weight });
  }
  return out;
}

export interface Slot {
  /** Global index in the mixture. */
  index: number;
  gen: DataGenerator;
  /** Index within this generator's stream. */
  local: number;
}

/** The slots for global indices [start, end). */
export function* mixtureSlots(mix: readonly MixEntry[], start: number, end: number): Generator<Slot> {
  const total = mix.reduce((a, e) => a + e.weight, 0);
  const counts = mix.map(() => 0);
  const gens = mix.map((e) => getGenerator(e.name));
  for (let i = 0; i < end; i++) {
    let best = 0;
    let bestDeficit = Number.NEGATIVE_INFINITY;
    for (let d = 0; d < mix.length; d++) {
      const deficit = ((i + 1) * mix[d]!.weight) / total - counts[d]!;
      if (deficit > bestDeficit + 1e-12) {
        best = d;
        bestDeficit = deficit;
      }
    }
    if (i >= start) yield { index: i, gen: gens[best]!, local: counts[best]! };
    counts[best]!++;
  }
}
