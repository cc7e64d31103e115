/**
 * glmv training: tokenizer, multimodal pre-training, long-context continual training and long-CoT SFT.
 *
 *   const cfg = loadTrainConfig('configs/train/pretrain.yaml', 'pretrain', ['optim.lr=3e-4']);
 *   const plan = await planStage(cfg);                 // the dry run
 *   const res = await runStage(cfg, { signal });       // res.checkpoint: RUN/final, a model folder
 *   await runStage(cfg, { resume: cfg.run.dir });      // continue exactly after an interruption
 */

export { findCheckpoint, listCheckpoints, readTrainerState, type TrainerState } from './checkpoint.js';
export {
  applyOverrides,
  configDifferences,
  configFieldPaths,
  loadTrainConfig,
  type ModelStageConfig,
  parseTrainConfig,
  readConfigFile,
  STAGES,
  type StageName,
  type TrainConfig,
  type TrainConfigInput,
} from './config.js';
export { Encoder, type Example, fitExample, IGNORE } from './encode.js';
export { type EvalResult, heldoutLoss, StageEvaluator, stageAnswerer } from './evaluate.js';
export { decide, type FilterReport, formatFilterReport, runFilter } from './filter.js';
export { buildPools, type MixtureState, MixtureStream, type Pool } from './mixture.js';
export { archConfig, describeStageModel, initStageModel, type StageModel, writeModelFolder } from './model.js';
export { assembleRow, microBatches, type PackedRow, Packer } from './packing.js';
export { planStage, type StagePlan } from './plan.js';
export { openRecords, type RecordSource, type TrainRecord } from './records.js';
export { type TokenizerStageResult, trainTokenizerStage } from './tokenizer.js';
export { type RunOptions, runStage, type StageResult, type StepMetrics } from './trainer.js';
