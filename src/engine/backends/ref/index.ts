/**
 * The reference backend: plain TypeScript loops, written to be obviously correct rather than fast. Every native
 * kernel is tested against it, and it runs float64 for finite-difference gradient checks. The kernels live in one
 * file per concept, as native/src's do; this class only hands each call to its kernel.
 */
import type { Backend, QuantMatmulArgs } from '../../backend.js';
import type { DType } from '../../dtype.js';
import * as adamw from './adamw.js';
import * as attention from './attention.js';
import * as conv from './conv.js';
import * as elementwise from './elementwise.js';
import * as gemm from './gemm.js';
import * as indexing from './indexing.js';
import { qmatmulRef } from './quant.js';
import * as rope from './rope.js';
import * as rows from './rows.js';
import * as sample from './sample.js';

export { erf } from './math.js';
export { bicubicSetup } from './sample.js';

export class RefBackend implements Backend {
  readonly name: string = 'ref';

  supports(_kernel: keyof Backend, dtype: DType): boolean {
    return dtype === 'float32' || dtype === 'float64';
  }

  stridedCopy(...a: Parameters<typeof elementwise.stridedCopy>): void {
    elementwise.stridedCopy(...a);
  }

  stridedAdd(...a: Parameters<typeof elementwise.stridedAdd>): void {
    elementwise.stridedAdd(...a);
  }

  cast(...a: Parameters<typeof elementwise.cast>): void {
    elementwise.cast(...a);
  }

  unary(...a: Parameters<typeof elementwise.unary>): void {
    elementwise.unary(...a);
  }

  unaryBackward(...a: Parameters<typeof elementwise.unaryBackward>): void {
    elementwise.unaryBackward(...a);
  }

  swiglu(...a: Parameters<typeof elementwise.swiglu>): void {
    elementwise.swiglu(...a);
  }

  swigluBackward(...a: Parameters<typeof elementwise.swigluBackward>): void {
    elementwise.swigluBackward(...a);
  }

  affine(...a: Parameters<typeof elementwise.affine>): void {
    elementwise.affine(...a);
  }

  binary(...a: Parameters<typeof elementwise.binary>): void {
    elementwise.binary(...a);
  }

  where(...a: Parameters<typeof elementwise.where>): void {
    elementwise.where(...a);
  }

  reduce(...a: Parameters<typeof rows.reduce>): void {
    rows.reduce(...a);
  }

  qmatmul(_dtype: DType, args: QuantMatmulArgs): void {
    qmatmulRef(args);
  }

  sumSquares(...a: Parameters<typeof rows.sumSquares>): number {
    return rows.sumSquares(...a);
  }

  matmul(...a: Parameters<typeof gemm.matmul>): void {
    gemm.matmul(...a);
  }

  softmax(...a: Parameters<typeof rows.softmax>): void {
    rows.softmax(...a);
  }

  softmaxBackward(...a: Parameters<typeof rows.softmaxBackward>): void {
    rows.softmaxBackward(...a);
  }

  layerNorm(...a: Parameters<typeof rows.layerNorm>): void {
    rows.layerNorm(...a);
  }

  layerNormBackward(...a: Parameters<typeof rows.layerNormBackward>): void {
    rows.layerNormBackward(...a);
  }

  rmsNorm(...a: Parameters<typeof rows.rmsNorm>): void {
    rows.rmsNorm(...a);
  }

  rmsNormBackward(...a: Parameters<typeof rows.rmsNormBackward>): void {
    rows.rmsNormBackward(...a);
  }

  crossEntropy(...a: Parameters<typeof rows.crossEntropy>): void {
    rows.crossEntropy(...a);
  }

  crossEntropyBackward(...a: Parameters<typeof rows.crossEntropyBackward>): void {
    rows.crossEntropyBackward(...a);
  }

  indexSelect(...a: Parameters<typeof indexing.indexSelect>): void {
    indexing.indexSelect(...a);
  }

  indexAdd(...a: Parameters<typeof indexing.indexAdd>): void {
    indexing.indexAdd(...a);
  }

  gather(...a: Parameters<typeof indexing.gather>): void {
    indexing.gather(...a);
  }

  scatterAdd(...a: Parameters<typeof indexing.scatterAdd>): void {
    indexing.scatterAdd(...a);
  }

  rope(...a: Parameters<typeof rope.rope>): void {
    rope.rope(...a);
  }

  attention(...a: Parameters<typeof attention.attention>): void {
    attention.attention(...a);
  }

  attentionBackward(...a: Parameters<typeof attention.attentionBackward>): void {
    attention.attentionBackward(...a);
  }

  topk(...a: Parameters<typeof indexing.topk>): void {
    indexing.topk(...a);
  }

  gridSampleBicubic(...a: Parameters<typeof sample.gridSampleBicubic>): void {
    sample.gridSampleBicubic(...a);
  }

  gridSampleBicubicBackward(...a: Parameters<typeof sample.gridSampleBicubicBackward>): void {
    sample.gridSampleBicubicBackward(...a);
  }

  im2col(...a: Parameters<typeof conv.im2col>): void {
    conv.im2col(...a);
  }

  col2im(...a: Parameters<typeof conv.col2im>): void {
    conv.col2im(...a);
  }

  adamw(...a: Parameters<typeof adamw.adamw>): void {
    adamw.adamw(...a);
  }
}
