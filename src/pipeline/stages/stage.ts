/**
 * What every pipeline stage runner gets (the run's config, folder, paths, state, log, abort signal) and returns, and
 * the model-folder files the stages that write a model folder copy from the model it started from.
 */
import { cpSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import type { PipelineConfig } from '../config.js';
import type { PipelineState, runPaths } from '../state.js';

export interface StageContext {
  config: PipelineConfig;
  out: string;
  paths: ReturnType<typeof runPaths>;
  signal?: AbortSignal;
  quiet: boolean;
  log: (l: string) => void;
  state: PipelineState;
}

export type StageOutcome = { skipped?: boolean; summary: Record<string, unknown> } | 'interrupted';

/** Tokenizer, chat template and processor configs of a model folder (everything but config and weights). */
const MODEL_FILES = [
  'tokenizer.json',
  'tokenizer_config.json',
  'chat_template.jinja',
  'preprocessor_config.json',
  'video_preprocessor_config.json',
  'generation_config.json',
];

export function copyModelFiles(from: string, to: string): void {
  for (const f of MODEL_FILES) if (existsSync(join(from, f))) cpSync(join(from, f), join(to, f));
}
