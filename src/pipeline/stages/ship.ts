/** The pipeline's last stages: the report, and shipping the final model into the package (bf16, with its card). */
import { existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Glm4vForConditionalGeneration } from '../../model/glm4v.js';
import { writeReport } from '../report.js';
import { copyModelFiles, type StageContext, type StageOutcome } from './stage.js';

export async function reportStage(c: StageContext): Promise<StageOutcome> {
  const file = writeReport(c.out);
  return { summary: { file } };
}

/** An evaluation summary without what points into the run folder (sample files, example images). */
function cardEval(summary: Record<string, unknown>): Record<string, unknown> {
  const modes = (summary.modes ?? {}) as Record<string, Record<string, unknown>>;
  return {
    modes: Object.fromEntries(Object.entries(modes).map(([m, { examples: _e, file: _f, ...rest }]) => [m, rest])),
  };
}

/** Copies the final model into the package as bf16 weights (the embedded default is models/glmv-small). */
export async function shipStage(c: StageContext): Promise<StageOutcome> {
  const target = c.config.ship!;
  const src = c.state.stages.rl?.status === 'done' ? c.paths.final('rl') : c.paths.final('sft');
  const tmp = `${target}.tmp-${process.pid}`;
  rmSync(tmp, { recursive: true, force: true });
  const { model } = Glm4vForConditionalGeneration.fromPretrained(src);
  model.toDtype('bfloat16');
  model.save(tmp);
  copyModelFiles(src, tmp);
  const card = {
    source: src,
    pipeline: c.out,
    preset: c.config.preset,
    evaluation: Object.fromEntries(
      (['eval-pretrain', 'eval-sft', 'eval-rl'] as const)
        .filter((s) => c.state.stages[s])
        .map((s) => [s, cardEval(c.state.stages[s]!.summary)]),
    ),
  };
  writeFileSync(join(tmp, 'training_summary.json'), JSON.stringify(card, null, 2));
  // Swap by renames (same folder), so an interruption never leaves the embedded model missing or half-written.
  const old = `${target}.old-${process.pid}`;
  rmSync(old, { recursive: true, force: true });
  if (existsSync(target)) renameSync(target, old);
  renameSync(tmp, target);
  rmSync(old, { recursive: true, force: true });
  return { summary: { target, from: src } };
}
