/**
 * One optimizer step of a training stage: the optimizer (AdamW, weight decay on matrices and embeddings only, the
 * learning-rate schedule) and the step itself — gradient accumulation over the micro-batches, token- or
 * sample-averaged loss, the MoE auxiliary loss and router-bias update, clipping.
 */
import { F, optim, type Parameter, resetPeak, scope, type Tensor } from '../engine/index.js';
import type { RouterStats } from '../model/text.js';
import type { NamedParams } from './checkpoint.js';
import type { ModelStageConfig } from './config.js';
import type { StageModel } from './model.js';
import { type PackedRow, rowInputs, withSampleWeights } from './packing.js';

export type AdamW = InstanceType<typeof optim.AdamW>;

/** What a step updates. */
export interface OptimizerTarget {
  cfg: ModelStageConfig;
  sm: StageModel;
  /** The trainable parameters, in the optimizer's order. */
  params: NamedParams;
  opt: AdamW;
}

/**
 * Weight decay for matrices and embeddings, none for norms and biases (1-D parameters); the vision tower's
 * parameters at `visionLrScale` × the schedule's lr (in groups of their own only then, so the optimizer state of a
 * run without it keeps its layout).
 */
function paramGroups(params: NamedParams, weightDecay: number, visionLrScale: number) {
  const groups = [];
  const parts = visionLrScale === 1 ? [null] : [false, true];
  for (const vision of parts) {
    const mine = params.filter(([n]) => vision === null || n.startsWith('model.visual.') === vision);
    const lrScale = vision ? visionLrScale : 1;
    groups.push(
      { params: mine.filter(([, p]) => p.ndim >= 2).map(([, p]) => p), weightDecay, lrScale },
      { params: mine.filter(([, p]) => p.ndim < 2).map(([, p]) => p), weightDecay: 0, lrScale },
    );
  }
  return groups.filter((g) => g.params.length > 0);
}

export function scheduleFor(c: ModelStageConfig): (step: number) => number {
  const o = { lr: c.optim.lr, warmupSteps: c.optim.warmupSteps, totalSteps: c.run.steps, minRatio: c.optim.minLrRatio };
  if (c.optim.schedule === 'linear') return optim.linearSchedule(o);
  if (c.optim.schedule === 'constant') return optim.constantSchedule(o);
  return optim.cosineSchedule(o);
}

/** AdamW over the model's trainable parameters, and those parameters in the optimizer's (state dict) order. */
export function createOptimizer(sm: StageModel, c: ModelStageConfig): { opt: AdamW; params: NamedParams } {
  const trainable = sm.model.namedParameters().filter(([, p]) => p.requiresGrad);
  const opt = new optim.AdamW(paramGroups(trainable, c.optim.weightDecay, c.optim.visionLrScale), {
    lr: c.optim.lr,
    betas: c.optim.betas,
    eps: c.optim.eps,
  });
  return { opt, params: orderedLike(trainable, opt) };
}

export function trainStep(
  t: OptimizerTarget,
  rows: PackedRow[],
  step: number,
  lr: number,
  accum: number,
): {
  loss: number;
  lr: number;
  gradNorm: number;
  tokens: number;
  computed: number;
  targets: number;
  examples: number;
  aux: number | null;
} {
  const c = t.cfg;
  const model = t.sm.model;
  const moe = !!t.sm.config.text.moe;
  const T = rows.reduce((a, r) => a + r.targets, 0);
  const S = rows.reduce((a, r) => a + r.examples, 0);
  const perSample = c.optim.lossAverage === 'sample';
  // Objective: token mean over the step (sum / T), or per-sample means averaged over the step's S samples.
  let lossSum = 0;
  let auxSum = 0;
  const stats: RouterStats[] = [];
  resetPeak();
  const gradNorm = scope(() => {
    for (const row0 of rows) {
      // Per-sample averaging: each sample's tokens weigh 1 / (its targets · samples in the step).
      const row = perSample ? withSampleWeights(row0, S) : row0;
      scope(() => {
        const out = model.forward({
          ...rowInputs(row),
          lossReduction: 'sum',
          auxLoss: moe && c.optim.moeAuxCoef > 0,
          outputRouterStats: moe,
        });
        let loss: Tensor = perSample ? out.loss! : F.mul(out.loss!, 1 / T);
        if (out.auxLoss) {
          auxSum += out.auxLoss.item();
          loss = F.add(loss, F.mul(out.auxLoss, c.optim.moeAuxCoef / accum));
        }
        if (out.routerStats)
          for (const s of out.routerStats) stats.push({ ...s, auxLoss: null, topk: new Int32Array(0) });
        loss.backward();
        lossSum += out.loss!.item();
      });
    }
    let norm: number;
    try {
      norm = optim.clipGradNorm(
        t.params.map(([, p]) => p),
        c.optim.maxGradNorm,
      );
    } catch (e) {
      t.opt.zeroGrad();
      throw new Error(
        `step ${step + 1}: ${(e as Error).message}. The last checkpoint is intact; lower optim.lr or raise optim.warmupSteps and resume`,
      );
    }
    t.opt.setLr(lr);
    t.opt.step();
    t.opt.zeroGrad();
    return norm;
  });
  if (moe && c.optim.moeBiasRate > 0 && stats.length) model.updateRouterBiases(stats, c.optim.moeBiasRate);
  return {
    loss: perSample ? lossSum : lossSum / T,
    lr,
    gradNorm,
    tokens: rows.reduce((a, r) => a + r.realTokens, 0),
    computed: rows.reduce((a, r) => a + r.inputIds.length, 0),
    targets: T,
    examples: S,
    aux: moe ? auxSum / rows.length : null,
  };
}

/** The named parameters in the optimizer's group order. */
function orderedLike(params: NamedParams, opt: AdamW): NamedParams {
  const byParam = new Map<Parameter, string>(params.map(([n, p]) => [p, n]));
  return opt.groups.flatMap((g) => g.params.map((p) => [byParam.get(p)!, p] as [string, Parameter]));
}
