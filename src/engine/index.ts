/**
 * glmv/engine — tensors with autograd on a native oneDNN backend (pure-TS reference fallback).
 *
 *   import { tensor, randn, nn, optim, F, noGrad, scope } from 'glmv/engine';
 *   const x = randn([4, 8]).requireGrad();
 *   const loss = F.crossEntropy(model.forward(x), targets);
 *   loss.backward(); opt.step(); opt.zeroGrad();
 */
import './backends/native/index.js';

export { enableGrad, isGradEnabled, noGrad } from './autograd.js';
export type { AttentionArgs, Backend, BinaryOp, QuantMatmulArgs, ReduceOp, UnaryOp } from './backend.js';
export { availableBackends, getBackend, nativeLoadError, setBackend, withBackend } from './device.js';
export type { DType, TypedArray } from './dtype.js';
export { bf16ToF32, f32ToBf16 } from './dtype.js';
export { clearPool, keep, memoryStats, resetPeak, scope, scopeAsync } from './memory.js';
export { arange, getRng, manualSeed, rand, randint, randn } from './random.js';
export { checkpoint } from './recompute.js';
export {
  int64Raw,
  loadSafetensors,
  type RawTensor,
  SAFETENSORS_LIMITS,
  SafetensorsFile,
  type SafetensorsOpenOptions,
  saveSafetensors,
} from './safetensors.js';
export { empty, fromArray, full, ones, Tensor, tensor, zeros } from './tensor.js';

import * as attention from './ops/attention.js';
import * as conv from './ops/conv.js';
import * as copy from './ops/copy.js';
import * as elementwise from './ops/elementwise.js';
import * as indexing from './ops/indexing.js';
import * as loss from './ops/loss.js';
import * as matmulOps from './ops/matmul.js';
import * as norm from './ops/norm.js';
import * as quantOps from './ops/quant.js';
import * as reduce from './ops/reduce.js';
import * as rope from './ops/rope.js';
import * as sample from './ops/sample.js';
import * as shape from './ops/shape.js';
import * as unary from './ops/unary.js';

/** Functional ops (torch.nn.functional style). */
export const F = {
  ...copy,
  ...unary,
  ...elementwise,
  ...reduce,
  ...shape,
  ...matmulOps,
  ...quantOps,
  ...norm,
  ...loss,
  ...indexing,
  ...attention,
  ...rope,
  ...conv,
  ...sample,
};

export { where } from './ops/elementwise.js';
export {
  getMatmulPrecision,
  linear,
  type MatmulPrecision,
  matmul,
  setMatmulPrecision,
  withMatmulPrecision,
} from './ops/matmul.js';
export {
  activationGroup,
  checkQuantized,
  dequantizeWeight,
  packedWords,
  QUANT_ACT_MAX_ROWS,
  type QuantBits,
  type QuantizedWeight,
  quantizeWeight,
  quantLinear,
  setQuantActivations,
} from './ops/quant.js';
export { concat, stack } from './ops/shape.js';

import * as init from './nn/init.js';
import * as layers from './nn/layers.js';
import { Module, Parameter } from './nn/module.js';
export const nn = { Module, Parameter, init, ...layers };
export {
  Conv2d,
  Conv3d,
  ConvNd,
  Dropout,
  Embedding,
  LayerNorm,
  Linear,
  type ParamInit,
  RMSNorm,
  torchInit,
} from './nn/layers.js';
export type { LoadReport } from './nn/module.js';
export { Module, Parameter } from './nn/module.js';
export { QuantLinear } from './nn/quant.js';

import { AdamW } from './optim/adamw.js';
import { clipGradNorm } from './optim/clip.js';
import { constantSchedule, cosineSchedule, linearSchedule } from './optim/schedule.js';
export const optim = { AdamW, clipGradNorm, cosineSchedule, linearSchedule, constantSchedule };
export type { AdamWOptions, AdamWStateDict, ParamGroup } from './optim/adamw.js';
