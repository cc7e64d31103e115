/**
 * Spatial / logic puzzles: math equivalence first (numbers, angles — degree marks are dropped —, coordinates,
 * tuples), text after normalisation, then the judge (Table 1: "SymPy exact first, then model").
 */
import type { Verifier } from '../types.js';
import { MathParams, verifyMathLike } from './math.js';

export const spatialVerifier: Verifier<MathParams> = {
  type: 'spatial',
  params: MathParams,
  boxed: true,
  judgeKind: 'spatial',
  verify: (ctx) => verifyMathLike(ctx, ctx.params, 'spatial'),
};
