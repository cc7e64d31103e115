/** Public API of the RL stack (see src/rl/types.ts for the Policy and RolloutEngine seams). */

// The sampler and force answering are io's (one home); listed here because rollouts are defined by them.
export { forcedSuffix } from '../io/force-answer.js';
export { sampleToken, tokenLogProb } from '../io/sampling.js';
export * from './checkpoint.js';
export * from './config.js';
export * from './expansion.js';
export * from './grpo.js';
export * from './inspect.js';
export * from './passk.js';
export * from './rlcs.js';
export { type ServerEngineOptions, ServerRolloutEngine, sampleMessages } from './rollout/openai.js';
export * from './rollout/sampling.js';
export { type ToyEngineOptions, ToyRolloutEngine } from './rollout/toy.js';
export { assertFreshRunDir, configDiff } from './run-dir.js';
export * from './setup.js';
export type { StepRecord } from './step-log.js';
export * from './toy.js';
export * from './trainer.js';
export type * from './types.js';
