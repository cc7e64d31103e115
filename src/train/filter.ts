/**
 * The SFT difficulty filter (paper §4.1/§5.1: "the pre-trained model filters out too-easy and too-hard items"): the
 * previous-stage model answers each candidate k times, the reward verifiers grade the answers, and pass rate decides.
 * Too easy: pass rate ≥ maxPassRate. Too hard: pass rate ≤ minPassRate and, when the item carries a difficulty label,
 * a label ≥ hardLevel (the paper merges pass@k with difficulty labels; an unlabelled item is judged on pass rate
 * alone). Results go to RUN/filter.jsonl (one line per candidate after a header with the settings), which a resumed
 * or repeated run with the same settings reuses instead of scoring again.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { hash32 } from '../data/generate.js';
import type { Sample } from '../data/sample.js';
import { answerSamples, gradeAnswers } from '../eval/heldout.js';
import type { RewardRouter } from '../reward/router.js';
import { Progress } from '../util/progress.js';
import type { FilterConfig } from './config.js';
import { Encoder } from './encode.js';
import { stageAnswerer } from './evaluate.js';
import type { StageModel } from './model.js';
import type { RecordSource } from './records.js';

export type FilterDecision = 'keep' | 'too_easy' | 'too_hard' | 'unscored';

export interface FilterEntry {
  /** `sourceIndex:recordIndex`. */
  key: string;
  id: string;
  domain: string;
  difficulty?: number;
  k: number;
  correct: number;
  decision: FilterDecision;
}

export interface DomainFilterStats {
  candidates: number;
  scored: number;
  kept: number;
  tooEasy: number;
  tooHard: number;
  /** Mean pass rate of the scored candidates. */
  meanPassRate: number;
}

export interface FilterReport {
  model: string;
  k: number;
  candidates: number;
  kept: number;
  tooEasy: number;
  tooHard: number;
  perDomain: Record<string, DomainFilterStats>;
  seconds: number;
  /** True when the results came from an earlier run's filter.jsonl. */
  reused: boolean;
}

export function decide(correct: number, k: number, difficulty: number | undefined, f: FilterConfig): FilterDecision {
  const rate = correct / k;
  if (rate >= f.maxPassRate) return 'too_easy';
  if (rate <= f.minPassRate && (difficulty === undefined || difficulty >= f.hardLevel)) return 'too_hard';
  return 'keep';
}

export function summarize(
  entries: readonly FilterEntry[],
  model: string,
  k: number,
  seconds: number,
  reused: boolean,
): FilterReport {
  const perDomain: Record<string, DomainFilterStats> = {};
  const rates: Record<string, number> = {};
  for (const e of entries) {
    perDomain[e.domain] ??= { candidates: 0, scored: 0, kept: 0, tooEasy: 0, tooHard: 0, meanPassRate: 0 };
    const d = perDomain[e.domain]!;
    d.candidates++;
    if (e.decision !== 'unscored') {
      d.scored++;
      rates[e.domain] = (rates[e.domain] ?? 0) + e.correct / e.k;
    }
    if (e.decision === 'keep' || e.decision === 'unscored') d.kept++;
    if (e.decision === 'too_easy') d.tooEasy++;
    if (e.decision === 'too_hard') d.tooHard++;
  }
  for (const [name, d] of Object.entries(perDomain)) d.meanPassRate = d.scored ? (rates[name] ?? 0) / d.scored : 0;
  const sum = (f: (d: DomainFilterStats) => number) => Object.values(perDomain).reduce((a, d) => a + f(d), 0);
  return {
    model,
    k,
    candidates: entries.length,
    kept: sum((d) => d.kept),
    tooEasy: sum((d) => d.tooEasy),
    tooHard: sum((d) => d.tooHard),
    perDomain,
    seconds,
    reused,
  };
}

/** One line per domain: "stem: 120 candidates, 80 kept, 25 too easy, 15 too hard (mean pass 0.41)". */
export function formatFilterReport(r: FilterReport): string[] {
  const scored = Object.values(r.perDomain).reduce((a, d) => a + d.scored, 0);
  const lines = [
    `difficulty filter (pass@${r.k} by ${r.model}${r.reused ? ', reused from filter.jsonl' : ''}): ${r.candidates} candidates${scored < r.candidates ? ` (${scored} scored, the rest kept unscored)` : ''}, ${r.kept} kept, ${r.tooEasy} too easy, ${r.tooHard} too hard`,
  ];
  for (const [d, s] of Object.entries(r.perDomain).sort())
    lines.push(
      `  ${d.padEnd(12)} ${String(s.candidates).padStart(6)} candidates ${String(s.kept).padStart(6)} kept ${String(s.tooEasy).padStart(5)} too easy ${String(s.tooHard).padStart(5)} too hard  mean pass ${s.meanPassRate.toFixed(2)}`,
    );
  return lines;
}

export interface FilterInputs {
  runDir: string;
  seed: number;
  filter: FilterConfig;
  /** The scoring model's folder (for the report and the cache header). */
  modelDir: string;
  sources: readonly RecordSource[];
  mcq: 'blank' | 'choice';
  quiet?: boolean;
  signal?: AbortSignal;
  log?: (line: string) => void;
}

const FILE = 'filter.jsonl';

/** Runs (or reuses) the filter; `load` builds the scoring model only when scoring is needed. */
export async function runFilter(
  inp: FilterInputs,
  load: () => Promise<{ sm: StageModel; encoder: Encoder }>,
  router: RewardRouter,
): Promise<{ report: FilterReport; decisions: Map<string, FilterDecision> }> {
  const f = inp.filter;
  const header = {
    event: 'filter-settings',
    model: inp.modelDir,
    seed: inp.seed,
    mcq: inp.mcq,
    k: f.k,
    temperature: f.temperature,
    maxNewTokens: f.maxNewTokens,
    prompt: f.prompt,
    maxCandidates: f.maxCandidates ?? null,
    maxPassRate: f.maxPassRate,
    minPassRate: f.minPassRate,
    hardLevel: f.hardLevel,
    sources: inp.sources.map((s) => ({ path: s.name, size: s.size })),
  };
  const path = join(inp.runDir, FILE);
  const reuse = readCache(path, header);
  if (reuse) {
    const decisions = new Map(reuse.map((e) => [e.key, e.decision]));
    return { report: summarize(reuse, inp.modelDir, f.k, 0, true), decisions };
  }
  const t0 = performance.now();
  // Candidates in a seeded order; maxCandidates takes a prefix of it, so the scored subset is a fair sample.
  const all: Array<{ key: string; src: number; index: number; order: number }> = [];
  inp.sources.forEach((s, si) => {
    for (let i = 0; i < s.size; i++)
      all.push({ key: `${si}:${i}`, src: si, index: i, order: hash32(`filter|${inp.seed}|${s.id(i)}|${si}:${i}`) });
  });
  all.sort((a, b) => a.order - b.order || (a.key < b.key ? -1 : 1));
  const n = Math.min(all.length, f.maxCandidates ?? all.length);
  const entries: FilterEntry[] = [];
  const scored = all.slice(0, n);
  const { sm, encoder } = await load();
  const progress = new Progress({ label: 'sft filter', total: scored.length * f.k, quiet: inp.quiet });
  const chunk = Math.max(1, Math.floor(f.batchSize / f.k)) * 8;
  for (let c = 0; c < scored.length; c += chunk) {
    if (inp.signal?.aborted) throw new Error('sft filter: interrupted before it finished (nothing was trained yet)');
    const part = scored.slice(c, c + chunk);
    const samples: Sample[] = part.map(({ src, index }) => {
      const rec = inp.sources[src]!.get(index);
      if (rec.type !== 'sample')
        throw new Error(`sft filter: ${inp.sources[src]!.name} holds pre-training documents; SFT needs samples`);
      return Encoder.prepareSft(rec.sample, inp.mcq);
    });
    const answers = await answerSamples(stageAnswerer(sm, encoder, f.prompt), samples, {
      thinking: true,
      k: f.k,
      temperature: f.temperature,
      maxNewTokens: f.maxNewTokens,
      batchSize: f.batchSize,
      seed: inp.seed + c,
      signal: inp.signal,
      onBatch: (done) => progress.update(c * f.k + done),
    });
    const { correct } = await gradeAnswers(router, samples, answers, f.prompt);
    part.forEach((p, i) => {
      const s = samples[i]!;
      entries.push({
        key: p.key,
        id: s.id,
        domain: s.domain,
        ...(s.difficulty !== undefined ? { difficulty: s.difficulty } : {}),
        k: f.k,
        correct: correct[i]!,
        decision: decide(correct[i]!, f.k, s.difficulty, f),
      });
    });
  }
  progress.stop();
  for (const p of all.slice(n)) {
    const s = inp.sources[p.src]!;
    entries.push({ key: p.key, id: s.id(p.index), domain: s.group(p.index), k: f.k, correct: 0, decision: 'unscored' });
  }
  writeFileSync(path, `${[header, ...entries].map((e) => JSON.stringify(e)).join('\n')}\n`);
  const decisions = new Map(entries.map((e) => [e.key, e.decision]));
  return { report: summarize(entries, inp.modelDir, f.k, (performance.now() - t0) / 1000, false), decisions };
}

function readCache(path: string, header: Record<string, unknown>): FilterEntry[] | null {
  if (!existsSync(path)) return null;
  const lines = readFileSync(path, 'utf8')
    .split('\n')
    .filter((l) => l.trim());
  try {
    const h = JSON.parse(lines[0] ?? '{}');
    if (JSON.stringify(h) !== JSON.stringify(header)) return null;
    return lines.slice(1).map((l) => JSON.parse(l) as FilterEntry);
  } catch {
    return null;
  }
}
