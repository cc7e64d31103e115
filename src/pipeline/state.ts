/**
 * A pipeline run folder: the stages in order, the folder layout (`runPaths`), the state file that records each
 * finished stage (so a rerun resumes), and the summaries the report reads back. The runner writes them and the report
 * reads them; both import them from here.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeTextAtomic } from '../model/checkpoint.js';
import type { PipelineConfig } from './config.js';

export const STAGES = [
  'data',
  'tokenizer',
  'pretrain',
  'eval-pretrain',
  'longctx',
  'sft',
  'eval-sft',
  'headroom',
  'rl',
  'eval-rl',
  'rl-seeds',
  'report',
  'ship',
] as const;
export type PipelineStage = (typeof STAGES)[number];

export interface StageRecord {
  stage: PipelineStage;
  status: 'done' | 'skipped';
  seconds: number;
  finishedAt: string;
  /** Stage-specific summary (training result, evaluation, data counts, …). */
  summary: Record<string, unknown>;
}

export interface PipelineState {
  config: PipelineConfig;
  startedAt: string;
  stages: Partial<Record<PipelineStage, StageRecord>>;
}

/** Paths inside a run folder. */
export function runPaths(out: string) {
  const data = join(out, 'data');
  return {
    state: join(out, 'pipeline.json'),
    metrics: join(out, 'metrics.jsonl'),
    report: join(out, 'report.html'),
    data: {
      pretrain: join(data, 'pretrain'),
      pretrainHeldout: join(data, 'pretrain-heldout'),
      sft: join(data, 'sft'),
      text: join(data, 'text'),
      rl: join(data, 'rl'),
      heldout: join(data, 'heldout'),
    },
    tokenizer: join(out, 'tokenizer'),
    stage: (s: 'pretrain' | 'longctx' | 'sft' | 'rl') => join(out, s),
    final: (s: 'pretrain' | 'longctx' | 'sft' | 'rl') => join(out, s, 'final'),
    /** The k-th extra RL seed's run folder (k ≥ 1; the RL stage itself is seed 0). */
    rlSeed: (k: number) => join(out, `rl-seed${k}`),
    eval: (s: string) => join(out, 'eval', s),
  };
}

/** The run's state file, or null before the first stage finished. */
export function readState(out: string): PipelineState | null {
  const p = runPaths(out).state;
  if (!existsSync(p)) return null;
  try {
    return JSON.parse(readFileSync(p, 'utf8')) as PipelineState;
  } catch (e) {
    throw new Error(`pipeline: ${p} is not valid JSON (${(e as Error).message}); remove it to start the run over`);
  }
}

/** Writes the state file atomically (a crash mid-write leaves the previous state). */
export function writeState(out: string, s: PipelineState): void {
  writeTextAtomic(runPaths(out).state, JSON.stringify(s, null, 2));
}

export interface HeadroomSummary {
  model: string;
  k: number;
  prompts: number;
  pass1: number;
  passk: number;
  gap: number;
  minGap: number;
  perDomain: Record<string, { prompts: number; pass1: number; passk: number }>;
  file: string;
}

/** What the seed comparison keeps of an evaluation: the totals and per-domain accuracy. */
export interface SeedScore {
  accuracy: number;
  meanReward: number;
  formatRate: number;
  perDomain: Record<string, number>;
}

export interface SeedRun {
  seed: number;
  model: string;
  modes: Record<string, SeedScore>;
  /** Compute time of an extra seed (its RL steps and evaluations), also when reused from an earlier invocation. */
  seconds?: number;
}
