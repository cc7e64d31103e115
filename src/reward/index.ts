/** Public API of the reward library. */
export { CasPool, type CasPoolOptions } from './cas.js';
export {
  loadRewardConfig,
  matchRoute,
  parseRewardConfig,
  type RewardConfig,
  RewardConfigSchema,
  type Route,
} from './config.js';
export { detectInjection, type GatesConfig, GatesSchema, longParagraphMixing, repeatRatio, tailLoop } from './gates.js';
export { detectHedge } from './hedge.js';
export {
  buildJudgeMessages,
  JudgeClient,
  type JudgeConfig,
  JudgeConfigSchema,
  type JudgeKind,
  type JudgeOutcome,
  type JudgeProvenance,
  parseVerdict,
} from './judge.js';
export { checkMath, type MathCheck } from './math/equivalence.js';
export { closeDefaultRouter, RewardRouter, type RouterOptions, type ScoreItem, score } from './router.js';
export { type DomainStats, RewardStats } from './stats.js';
export type {
  GateReport,
  JudgeMode,
  ResponseMeta,
  RewardResult,
  RewardStatus,
  Verdict,
  Verifier,
  VerifyContext,
} from './types.js';
export { VERIFIERS } from './verifiers/index.js';
