/** Public API of the eval harness (`glmv/eval`). */
export {
  type Benchmark,
  type BenchmarkInput,
  BenchmarkSchema,
  loadBenchmarkFile,
  type Metric,
  parseBenchmark,
  resolveDataPath,
} from './benchmark.js';
export { BUILTIN_BENCHMARKS, expandBenchNames } from './benchmarks/index.js';
export { cacheKey, GenerationCache } from './cache.js';
export {
  answersOf,
  buildPrompt,
  type DataError,
  type EvalItem,
  type EvalPrompt,
  type PreparedBenchmark,
  prepareBenchmark,
} from './data.js';
export { aggregate, EvalInterrupted, type RunOptions, runEval } from './harness.js';
export {
  type AccuracyReport,
  type Answer,
  type Answerer,
  type AnswerOptions,
  answerAndGrade,
  answerChat,
  answerSamples,
  type DomainAccuracy,
  gradeAnswers,
  gradeResponses,
  heldoutAccuracy,
  type PromptFormat,
} from './heldout.js';
export { checkpointId, LocalModel, type LocalModelOptions } from './local.js';
export { capVideoFile, encodeImage, framesToVideo } from './media.js';
export * from './metrics.js';
export {
  DEFAULT_CAPS,
  EndpointModel,
  type EndpointModelOptions,
  type Generation,
  type GenerationParams,
  type ModelUnderTest,
  type VisualCaps,
} from './model.js';
export {
  type Comparison,
  type EvalSummary,
  type Mode,
  type ModeResult,
  readSamples,
  type SampleRecord,
} from './records.js';
export { renderHtmlReport } from './report/html.js';
export { summaryCsv } from './report/summary.js';
export { EVAL_GATES, type ScoreResult, Scorer } from './score.js';
