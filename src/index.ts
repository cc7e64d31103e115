/**
 * glmv — GLM-4.1V-Thinking / GLM-4.5V in TypeScript. The package root: each layer's public API as a namespace
 * (the same modules as the subpath exports `glmv/engine`, `glmv/model`, `glmv/reward`, `glmv/rl`, `glmv/train`,
 * `glmv/eval`, `glmv/client`), plus the handful of entry points most programs start from.
 *
 *   import { ChatModel, reward } from 'glmv';
 *   const chat = await ChatModel.load('path/to/model');
 *   const r = await new reward.RewardRouter().score(sample, (await chat.chat(messages)).text);
 *
 * Data flows one way through the layers: data → io → model → generate → reward → rl / eval.
 */

// Data: the one record every stage exchanges.
export {
  DOMAINS,
  type Domain,
  type Sample,
  VERIFIER_TYPES,
  type VerifierSpec,
  type VerifierType,
} from './data/sample.js';
// The user turn of a sample, as SFT trains it, RL prompts it and evaluation asks it.
export { sampleMessage } from './data/sft.js';
export * as engine from './engine/index.js';
export * as evaluation from './eval/index.js';
// io: chat, answers, templates, tokenizer, processor, generation.
export { extractBox } from './io/answer/extract.js';
export { checkFormat } from './io/answer/format.js';
export { parseBoxes } from './io/answer/geometry.js';
export { parseGuiAction } from './io/answer/gui-action.js';
export { type ParsedResponse, parseResponse } from './io/answer/response.js';
export { ChatModel, type ChatOptions, type ChatResult } from './io/chat.js';
export { type GenerateOptions, type GenerationOutput, generate } from './io/generate.js';
export { Glm4vProcessor } from './io/processor/request.js';
export { renderChat, type TemplateName } from './io/template.js';
export { GlmTokenizer } from './io/tokenizer.js';
// The most used classes of each layer, also reachable through the namespaces above.
export { Glm4vForConditionalGeneration, Glm4vMoeForConditionalGeneration } from './model/glm4v.js';
export * as model from './model/index.js';
export * as reward from './reward/index.js';
export { RewardRouter } from './reward/router.js';
export { buildRewardServer } from './reward/server.js';
export { buildCurriculumServer, CurriculumService } from './rl/curriculum-service.js';
export * as rl from './rl/index.js';
export * as client from './serve/client.js';
export * as train from './train/index.js';
