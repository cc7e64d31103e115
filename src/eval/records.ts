/**
 * What an eval run writes and reads back: the thinking modes, the per-sample records (`<bench>/<mode>/samples.jsonl`)
 * and the summary with its per-mode results and think vs no-think comparisons. The harness produces them, the
 * reports render them; both import them from here, so the arrows run one way (harness → report → records).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { DataError } from './data.js';
import type { Generation } from './model.js';
import type { ScoreResult } from './score.js';

export type Mode = 'think' | 'nothink';
export const MODES: readonly Mode[] = ['think', 'nothink'];

export interface Counts {
  items: number;
  scored: number;
  correct: number;
  noAnswer: number;
  gated: number;
  unjudged: number;
  scoreErrors: number;
  /** Requests that failed after retries (not cached; a rerun retries them). */
  failed: number;
  cached: number;
  truncated: number;
  forced: number;
  unclosedThink: number;
}

export interface BreakdownRow {
  value: string;
  score: number;
  n: number;
}

export interface ModeResult {
  bench: string;
  family: string;
  domain: string | null;
  metric: string;
  mode: Mode;
  /** Percent (0–100). OCRBench-style totals are in `total`. */
  score: number;
  ci: { low: number; high: number };
  /** Aggregation units (circular groups or items). */
  units: number;
  total?: number;
  counts: Counts;
  /** Request success rate (the paper requires ≥ 95 %). */
  successRate: number;
  meanCompletionTokens: number | null;
  meanLatencyMs: number | null;
  breakdown: Record<string, BreakdownRow[]>;
  reference: Record<string, number>;
}

export interface Comparison {
  bench: string;
  think: number;
  nothink: number;
  /** think − nothink, percentage points, over the units both modes scored. */
  diff: number;
  ci: { low: number; high: number };
  pairedUnits: number;
}

export interface EvalSummary {
  version: 1;
  created: string;
  model: Record<string, unknown>;
  settings: Record<string, unknown>;
  results: ModeResult[];
  comparisons: Comparison[];
  data: Array<{ bench: string; file: string; rows: number; items: number; errors: number; firstErrors: DataError[] }>;
  interrupted: boolean;
}

export interface SampleRecord {
  bench: string;
  mode: Mode;
  id: string;
  group: string;
  row: number;
  prompt: { system?: string; text: string; images: string[]; video?: string };
  reference: string;
  answers: string[];
  groups: Record<string, string>;
  raw: string | null;
  reasoning: string | null;
  content: string | null;
  extracted: string | null;
  score: number;
  correct: boolean;
  status: ScoreResult['status'] | 'failed';
  reason: string;
  path: string;
  judge?: ScoreResult['judge'];
  detail?: Record<string, unknown>;
  finishReason: string | null;
  thinkClosed: boolean | null;
  forcedAnswer: boolean;
  truncatedThinking: boolean;
  usage?: Generation['usage'];
  latencyMs: number | null;
  cached: boolean;
  cacheKey: string;
}

/** Where the per-sample records of one benchmark and mode live. */
export function samplesPath(out: string, bench: string, mode: Mode): string {
  return join(resolve(out), bench, mode, 'samples.jsonl');
}

/** Writes the per-sample records of a mode (one JSON object a line). */
export function writeSamples(out: string, bench: string, mode: Mode, records: SampleRecord[]): void {
  const file = samplesPath(out, bench, mode);
  mkdirSync(join(resolve(out), bench, mode), { recursive: true });
  writeFileSync(file, records.map((r) => JSON.stringify(r)).join('\n') + (records.length ? '\n' : ''));
}

/** Reads the per-sample records of a finished mode (the report uses them too). */
export function readSamples(out: string, bench: string, mode: Mode): SampleRecord[] {
  const file = samplesPath(out, bench, mode);
  if (!existsSync(file)) return [];
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as SampleRecord);
}
