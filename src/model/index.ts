/**
 * glmv/model — GLM-4.1V (Glm4vForConditionalGeneration) and GLM-4.5V (Glm4vMoeForConditionalGeneration).
 *
 *   const { model } = Glm4vForConditionalGeneration.fromPretrained('path/to/GLM-4.1V-9B-Thinking');
 *   const out = model.forward({ inputIds, pixelValues, imageGridThw, labels });   // logits, loss
 *   const small = Glm4vForConditionalGeneration.random(tinyConfig('glm4v', { hiddenSize: 256 }), { seed: 1 });
 */
export {
  CheckpointReader,
  INDEX_FILE,
  type LoadOptions,
  type LoadReport,
  loadWeights,
  SINGLE_FILE,
  saveWeights,
} from './checkpoint.js';
export {
  type Activation,
  configToJson,
  countParameters,
  type Glm4vConfig,
  loadConfig,
  type ModelType,
  type MoeConfig,
  parseConfig,
  type TextConfig,
  type VisionConfig,
  validateConfig,
} from './config.js';
export {
  type CreateOptions,
  createModel,
  Glm4vForConditionalGeneration,
  Glm4vModel,
  Glm4vMoeForConditionalGeneration,
  type Glm4vOutput,
} from './glm4v.js';
export type { Glm4vInputs } from './inputs.js';
export { getParameter, type InitMode, ParamFactory, rowChunked, setInferenceRows, setParameter } from './modules.js';
export { glm41v9bConfig, glm45vConfig, type TinyConfigOptions, tinyConfig } from './presets.js';
export {
  type Grid,
  getRopeIndex,
  type RopeIndex,
  type RopeIndexOptions,
  type SpecialTokenIds,
  textRopeTables,
  tokenTypes,
  visionLayout,
  visionRopeTables,
} from './rope.js';
export { Glm4vTextModel, KVCache, type RouterStats, type TextContext } from './text.js';
export { Glm4vVisionModel } from './vision.js';
