/**
 * RL checkpoints: policy weights and AdamW moments (safetensors), and everything else a run needs to continue
 * exactly — the next step, curriculum records, expansion EMA, optimizer step count — in `state.json`.
 * A checkpoint is written into a temporary folder and renamed into place, and `latest` is replaced atomically, so a
 * crash at any moment leaves the previous checkpoint intact.
 *
 *   RUN/checkpoints/step-000020/{model.safetensors, optimizer.safetensors, state.json}
 *   RUN/checkpoints/latest            (the folder name of the newest complete checkpoint)
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, type optim, saveSafetensors, type Tensor } from '../engine/index.js';
import type { ExpansionState } from './expansion.js';
import type { CurriculumState } from './rlcs.js';
import type { Policy } from './types.js';

type AdamW = InstanceType<typeof optim.AdamW>;

export interface TrainerState {
  /** The step the resumed run executes first. */
  nextStep: number;
  curriculum: CurriculumState;
  expansion: ExpansionState;
  optimizer: { step: number; lrs: number[]; present: boolean[] };
  /** Updates skipped so far (no valid group, non-finite gradient). */
  skipped: number;
}

export function stepName(step: number): string {
  return `step-${String(step).padStart(6, '0')}`;
}

/** Writes a file atomically (temporary name + rename). */
export function writeAtomic(path: string, data: string): void {
  const tmp = `${path}.tmp-${process.pid}`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

export function saveCheckpoint(
  runDir: string,
  step: number,
  policy: Policy,
  opt: AdamW,
  state: Omit<TrainerState, 'optimizer'>,
  keep: number,
): string {
  const root = join(runDir, 'checkpoints');
  mkdirSync(root, { recursive: true });
  const name = stepName(step);
  const tmp = join(root, `${name}.tmp-${process.pid}`);
  rmSync(tmp, { recursive: true, force: true });
  mkdirSync(tmp);
  saveSafetensors(join(tmp, 'model.safetensors'), policy.stateDict());
  const sd = opt.stateDict();
  const moments = new Map<string, Tensor>();
  sd.moments.forEach((m, i) => {
    if (!m) return;
    moments.set(`m.${i}`, m.m);
    moments.set(`v.${i}`, m.v);
  });
  saveSafetensors(join(tmp, 'optimizer.safetensors'), moments);
  const full: TrainerState = {
    ...state,
    optimizer: { step: sd.step, lrs: sd.lrs, present: sd.moments.map((m) => m !== null) },
  };
  writeFileSync(join(tmp, 'state.json'), JSON.stringify(full));
  const final = join(root, name);
  rmSync(final, { recursive: true, force: true });
  renameSync(tmp, final);
  writeAtomic(join(root, 'latest'), name);
  // Keep the newest `keep` checkpoints.
  const all = readdirSync(root)
    .filter((n) => /^step-\d{6}$/.test(n))
    .sort();
  for (const old of all.slice(0, Math.max(0, all.length - keep)))
    rmSync(join(root, old), { recursive: true, force: true });
  return final;
}

/** The newest complete checkpoint folder of a run, or null. */
export function latestCheckpoint(runDir: string): string | null {
  const root = join(runDir, 'checkpoints');
  const latest = join(root, 'latest');
  if (existsSync(latest)) {
    const name = readFileSync(latest, 'utf8').trim();
    const dir = join(root, name);
    if (existsSync(join(dir, 'state.json'))) return dir;
  }
  if (!existsSync(root)) return null;
  const all = readdirSync(root)
    .filter((n) => /^step-\d{6}$/.test(n) && existsSync(join(root, n, 'state.json')))
    .sort();
  return all.length ? join(root, all[all.length - 1]!) : null;
}

/** Loads weights and optimizer moments into `policy` and `opt`; returns the rest of the state. */
export function loadCheckpoint(dir: string, policy: Policy, opt: AdamW): TrainerState {
  let state: TrainerState;
  try {
    state = JSON.parse(readFileSync(join(dir, 'state.json'), 'utf8')) as TrainerState;
  } catch (e) {
    throw new Error(`checkpoint ${dir}: cannot read state.json (${(e as Error).message})`);
  }
  if (typeof state?.nextStep !== 'number' || !state.optimizer || !state.curriculum)
    throw new Error(`checkpoint ${dir}: state.json lacks nextStep / optimizer / curriculum`);
  policy.loadStateDict(loadSafetensors(join(dir, 'model.safetensors')));
  const moments = loadSafetensors(join(dir, 'optimizer.safetensors'));
  const n = state.optimizer.present.length;
  opt.loadStateDict({
    step: state.optimizer.step,
    lrs: state.optimizer.lrs,
    moments: Array.from({ length: n }, (_, i) => {
      if (!state.optimizer.present[i]) return null;
      const m = moments.get(`m.${i}`);
      const v = moments.get(`v.${i}`);
      if (!m || !v) throw new Error(`checkpoint ${dir}: optimizer.safetensors lacks the moments of parameter ${i}`);
      return { m, v };
    }),
  });
  return state;
}
