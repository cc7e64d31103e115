/**
 * Training checkpoints: each one a complete model folder (`glmv chat --model DIR` loads it) plus what an exact resume
 * needs — `trainer_state.json` (step, data cursor, RNG state, progress counters, the resolved config) and
 * `optimizer.safetensors` (AdamW moments by parameter name). Written into a temporary folder and renamed, then
 * `latest` is replaced atomically, so a crash at any moment leaves the previous checkpoint whole; the newest K are kept.
 *
 *   RUN/checkpoints/step-000200/{config.json, model.safetensors, tokenizer.json, …, trainer_state.json, optimizer.safetensors}
 *   RUN/checkpoints/latest
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, type optim, type Parameter, saveSafetensors, type Tensor } from '../engine/index.js';
import { writeJsonAtomic, writeTextAtomic } from '../model/checkpoint.js';
import type { TrainConfig } from './config.js';
import type { MixtureState } from './mixture.js';
import { type StageModel, writeModelFolder } from './model.js';

type AdamW = InstanceType<typeof optim.AdamW>;

export const STATE_FILE = 'trainer_state.json';
export const OPTIMIZER_FILE = 'optimizer.safetensors';

export interface TrainerState {
  format: 'glmv-trainer-state';
  version: 1;
  stage: string;
  /** Optimizer steps completed. */
  step: number;
  data: MixtureState;
  /** The engine's global generator (`getRng().getState()`). */
  rng: Array<number | null>;
  optimizer: { step: number; lrs: number[]; params: string[] };
  /** Running totals, continued by a resumed run. */
  totals: { tokens: number; targets: number; examples: number; dropped: number; truncated: number; seconds: number };
  /** The resolved config of the run (a resume must not change what is computed). */
  config: TrainConfig;
  /** Where the first weights came from. */
  initFrom: string;
  time: string;
}

export function stepName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** Named trainable parameters in optimizer order. */
export type NamedParams = Array<[string, Parameter]>;

/** Writes the model folder and, when `opt` is given, the optimizer moments and trainer state into `dir` (fresh). */
export async function writeCheckpointFolder(
  dir: string,
  sm: StageModel,
  state: TrainerState | null,
  opt: AdamW | null,
  params: NamedParams,
): Promise<void> {
  mkdirSync(dir, { recursive: true });
  await writeModelFolder(dir, sm);
  if (opt) {
    const sd = opt.stateDict();
    const moments = new Map<string, Tensor>();
    const names: string[] = [];
    sd.moments.forEach((m, i) => {
      const name = params[i]?.[0];
      if (name === undefined) throw new Error(`checkpoint: optimizer parameter ${i} has no name`);
      names.push(name);
      if (!m) return;
      moments.set(`exp_avg.${name}`, m.m);
      moments.set(`exp_avg_sq.${name}`, m.v);
    });
    saveSafetensors(join(dir, OPTIMIZER_FILE), moments, { format: 'glmv-adamw' });
    if (state) state.optimizer = { step: sd.step, lrs: sd.lrs, params: names };
  }
  if (state) writeJsonAtomic(join(dir, STATE_FILE), state);
}

/** Saves `RUN/checkpoints/step-N` atomically, points `latest` at it and prunes to the newest `keep`. */
export async function saveCheckpoint(
  runDir: string,
  sm: StageModel,
  state: TrainerState,
  opt: AdamW,
  params: NamedParams,
  keep: number,
): Promise<string> {
  const root = join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const name = stepName(state.step);
  const tmp = join(root, `.${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  await writeCheckpointFolder(tmp, sm, state, opt, params);
  const final = join(root, name);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeTextAtomic(join(root, 'latest'), `${name}\n`);
  const all = listCheckpoints(runDir);
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    rmSync(join(root, old), { recursive: true, force: true });
  // Temporary folders of a crashed save are incomplete by construction.
  for (const n of readdirSync(root))
    if (/^\.step-\d+\.tmp-/.test(n)) rmSync(join(root, n), { recursive: true, force: true });
  return final;
}

/** Complete checkpoint folder names of a run, oldest first. */
export function listCheckpoints(runDir: string): string[] {
  const root = join(runDir, 'checkpoints');
  if (!existsSync(root)) return [];
  return readdirSync(root)
    .filter((n) => /^step-\d{6,}$/.test(n) && existsSync(join(root, n, STATE_FILE)))
    .sort();
}

/**
 * The checkpoint to resume from: `path` itself when it holds a trainer state, else the run folder's `latest` (or its
 * newest complete checkpoint). Errors say what was found instead.
 */
export function findCheckpoint(path: string): string {
  if (!existsSync(path)) throw new Error(`--resume ${path}: no such folder`);
  if (!statSync(path).isDirectory())
    throw new Error(`--resume ${path}: expected a run folder or a checkpoint folder, found a file`);
  if (existsSync(join(path, STATE_FILE))) return path;
  const root = join(path, 'checkpoints');
  const latest = join(root, 'latest');
  if (existsSync(latest)) {
    const dir = join(root, readFileSync(latest, 'utf8').trim());
    if (existsSync(join(dir, STATE_FILE))) return dir;
  }
  const all = listCheckpoints(path);
  if (all.length) return join(root, all[all.length - 1]!);
  throw new Error(
    `--resume ${path}: neither a checkpoint (no ${STATE_FILE}) nor a run folder with checkpoints (nothing under checkpoints/)`,
  );
}

export function readTrainerState(dir: string): TrainerState {
  const p = join(dir, STATE_FILE);
  let s: TrainerState;
  try {
    s = JSON.parse(readFileSync(p, 'utf8')) as TrainerState;
  } catch (e) {
    throw new Error(`checkpoint ${dir}: cannot read ${STATE_FILE} (${(e as Error).message})`);
  }
  if (s?.format !== 'glmv-trainer-state' || typeof s.step !== 'number' || !s.data || !s.optimizer || !s.config)
    throw new Error(
      `checkpoint ${dir}: ${STATE_FILE} is not a glmv trainer state (format, step, data, optimizer, config)`,
    );
  if (s.version !== 1)
    throw new Error(`checkpoint ${dir}: trainer state version ${s.version} is not supported (expected 1)`);
  return s;
}

/** Restores AdamW moments saved by `writeCheckpointFolder` into `opt` (parameters matched by name). */
export function loadOptimizer(dir: string, state: TrainerState, opt: AdamW, params: NamedParams): void {
  const names = params.map(([n]) => n);
  if (JSON.stringify(names) !== JSON.stringify(state.optimizer.params)) {
    const missing = state.optimizer.params.filter((n) => !names.includes(n));
    const extra = names.filter((n) => !state.optimizer.params.includes(n));
    throw new Error(
      `checkpoint ${dir}: the trainable parameters differ from the checkpoint's (${missing.length} only in the checkpoint, e.g. ${missing[0] ?? '-'}; ${extra.length} only in this run, e.g. ${extra[0] ?? '-'}); was model.freezeVision changed?`,
    );
  }
  if (!existsSync(join(dir, OPTIMIZER_FILE)))
    throw new Error(
      `checkpoint ${dir}: no ${OPTIMIZER_FILE} (a final model folder keeps only the weights); resume from the run's checkpoints/ or start a new stage with model.init ${dir}`,
    );
  const t = loadSafetensors(join(dir, OPTIMIZER_FILE));
  opt.loadStateDict({
    step: state.optimizer.step,
    lrs: state.optimizer.lrs,
    moments: names.map((n) => {
      const m = t.get(`exp_avg.${n}`);
      const v = t.get(`exp_avg_sq.${n}`);
      if (!m !== !v) throw new Error(`checkpoint ${dir}: ${OPTIMIZER_FILE} has only one moment of ${n}`);
      return m && v ? { m, v } : null;
    }),
  });
}
