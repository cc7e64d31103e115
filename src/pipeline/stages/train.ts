/**
 * The pipeline's training stages — tokenizer, pre-training, long-context, SFT — as train/ configs built from the
 * pipeline config (built-in recipe, then the config's per-stage overrides); an interrupted stage resumes exactly.
 */
import { join } from 'node:path';
import { type ModelStageConfig, parseTrainConfig, type TrainConfig } from '../../train/config.js';
import { runStage, runStageResumable } from '../../train/trainer.js';
import { deepMerge } from '../config.js';
import type { StageContext, StageOutcome } from './stage.js';

export function stageConfig(c: StageContext, stage: 'tokenizer' | 'pretrain' | 'longctx' | 'sft'): TrainConfig {
  const p = c.paths;
  const cfg = c.config;
  const seed = cfg.seed;
  let base: Record<string, unknown>;
  switch (stage) {
    case 'tokenizer':
      base = {
        stage,
        run: { dir: p.tokenizer, seed },
        data: { sources: [{ path: p.data.pretrain }, { path: p.data.sft }, { path: p.data.text }] },
        tokenizer: { vocabSize: cfg.tokenizer.vocabSize, digits: cfg.tokenizer.digits, template: 'glm41v' },
      };
      return parseTrainConfig(base, stage, 'pipeline tokenizer stage');
    case 'pretrain':
      base = {
        stage,
        run: { dir: p.stage('pretrain'), seed, steps: 400, checkpointEvery: 50, keepCheckpoints: 2, logEvery: 1 },
        model: { init: 'scratch', tokenizer: join(p.tokenizer, 'tokenizer'), arch: cfg.arch },
        data: {
          sources: [{ path: p.data.pretrain }],
          mixture: { caption: 3, interleaved: 1, ocr: 1, grounding: 2, instruction: 2, text: 1 },
          // Stage 1 has no video (the paper's recipe); the long-context stage adds it.
          video: false,
        },
        pack: { seqLen: 1024 },
        batch: { rows: 16, microRows: 4 },
        optim: { lr: 2e-3, warmupSteps: 20, minLrRatio: 0.1, weightDecay: 0.1, betas: [0.9, 0.95] },
        precision: 'bf16',
        eval: { every: 0, loss: { path: p.data.pretrainHeldout, n: 64 } },
      };
      break;
    case 'longctx':
      base = {
        stage,
        run: { dir: p.stage('longctx'), seed, steps: 40, checkpointEvery: 20, keepCheckpoints: 2 },
        model: { init: p.final('pretrain') },
        data: {
          sources: [{ path: p.data.pretrain }],
          mixture: { caption: 2, interleaved: 3, ocr: 1, grounding: 1, instruction: 2, video_caption: 3, text: 1 },
        },
        // Documents of a packed sequence attend to each other: 4096-token contexts out of short documents.
        pack: { seqLen: 4096, isolation: 'sequence' },
        batch: { rows: 4, microRows: 1 },
        optim: { lr: 5e-4, warmupSteps: 5, minLrRatio: 0.2 },
        precision: 'bf16',
        eval: { every: 0, loss: { path: p.data.pretrainHeldout, n: 64 } },
      };
      break;
    case 'sft':
      base = {
        stage,
        run: { dir: p.stage('sft'), seed, steps: 300, checkpointEvery: 50, keepCheckpoints: 2 },
        model: { init: p.final('longctx') },
        data: {
          sources: [
            { path: p.data.sft, weight: 1 },
            { path: p.data.text, weight: 0.15 },
          ],
        },
        pack: { seqLen: 1024 },
        batch: { rows: 16, microRows: 4 },
        optim: { lr: 1e-3, warmupSteps: 10, minLrRatio: 0.1, lossAverage: 'token' },
        precision: 'bf16',
        sft: {
          nothinkShare: 0.2,
          mcq: 'blank',
          filter: {
            enabled: true,
            k: 4,
            prompt: 'pretrain',
            maxNewTokens: 24,
            maxPassRate: 1,
            minPassRate: 0,
            hardLevel: 4,
          },
        },
      };
      break;
  }
  const merged = deepMerge(base, cfg[stage]) as { run: { steps: number }; optim: { warmupSteps: number } };
  // The built-in warmup shrinks with short runs unless the config sets it.
  const fragOptim = (cfg[stage] as { optim?: { warmupSteps?: number } }).optim;
  if (fragOptim?.warmupSteps === undefined)
    merged.optim.warmupSteps = Math.min(merged.optim.warmupSteps, Math.floor(merged.run.steps / 10));
  return parseTrainConfig(merged, stage, `pipeline ${stage} stage`);
}

export async function tokenizerStage(c: StageContext): Promise<StageOutcome> {
  const cfg = stageConfig(c, 'tokenizer');
  const r = await runStage(cfg, { quiet: c.quiet, log: c.log, signal: c.signal });
  return { summary: { ...(r as unknown as Record<string, unknown>) } };
}

export async function trainStage(c: StageContext, stage: 'pretrain' | 'longctx' | 'sft'): Promise<StageOutcome> {
  const cfg = stageConfig(c, stage) as ModelStageConfig;
  const r = await runStageResumable(cfg, { quiet: c.quiet, log: c.log, signal: c.signal });
  if (r.interrupted) return 'interrupted';
  return {
    summary: {
      steps: r.steps,
      loss: r.loss,
      tokensPerSecond: r.tokensPerSecond,
      meanStepMs: r.meanStepMs,
      packingEfficiency: r.packingEfficiency,
      parameters: r.parameters,
      seconds: r.seconds,
      checkpoint: r.checkpoint,
      eval: r.eval,
      filter: r.filter,
      resumedFrom: r.resumedFrom,
    },
  };
}
