/** The pipeline's eval stages: the held-out evaluation of a model folder in every configured mode. */
import { evaluateStage, type StageEval } from '../evaluate.js';
import type { StageContext, StageOutcome } from './stage.js';

export async function evalStage(c: StageContext, model: 'pretrain' | 'sft' | 'rl'): Promise<StageOutcome> {
  if (model === 'rl' && c.state.stages.rl?.status === 'skipped')
    return { skipped: true, summary: { reason: 'no RL stage' } };
  const out = await evaluateModel(c, c.paths.final(model), model);
  if (out === 'interrupted') return out;
  return { summary: { model: c.paths.final(model), modes: out } };
}

/** The held-out evaluation of one model folder in every configured mode (RUN/eval/<name>-<mode>). */
export async function evaluateModel(
  c: StageContext,
  modelDir: string,
  name: string,
): Promise<Record<string, StageEval> | 'interrupted'> {
  const e = c.config.eval;
  const out: Record<string, StageEval> = {};
  for (const mode of e.modes) {
    const r = await evaluateStage({
      modelDir,
      heldout: c.paths.data.heldout,
      n: e.n,
      mode,
      maxNewTokens: e.maxNewTokens,
      batchSize: e.batchSize,
      out: c.paths.eval(`${name}-${mode}`),
      signal: c.signal,
      quiet: c.quiet,
      examplesPerDomain: e.examplesPerDomain,
    });
    if (c.signal?.aborted) return 'interrupted';
    out[mode] = r;
    c.log(
      `pipeline: ${name} model, ${mode}: accuracy ${(100 * r.accuracy).toFixed(1)}%, format ${(100 * r.formatRate).toFixed(1)}%`,
    );
  }
  return out;
}
