/**
 * Reference bicubic grid sampling of a [Hin, Win, C] table (grid_sample, align_corners=false, border padding) and its
 * backward, which accumulates into the table's gradient.
 */
import type { DType, TypedArray } from '../../dtype.js';
import { cubicWeights } from './math.js';

export function gridSampleBicubic(
  _dtype: DType,
  table: TypedArray,
  Hin: number,
  Win: number,
  C: number,
  gx: Float64Array,
  gy: Float64Array,
  out: TypedArray,
): void {
  const wx = new Float64Array(4);
  const wy = new Float64Array(4);
  for (let p = 0; p < gx.length; p++) {
    const { x0, y0 } = bicubicSetup(gx[p] as number, gy[p] as number, Hin, Win, wx, wy);
    for (let c = 0; c < C; c++) {
      let acc = 0;
      for (let i = 0; i < 4; i++) {
        const yy = clampI(y0 - 1 + i, Hin);
        for (let j = 0; j < 4; j++) {
          const xx = clampI(x0 - 1 + j, Win);
          acc += (wy[i] as number) * (wx[j] as number) * (table[(yy * Win + xx) * C + c] as number);
        }
      }
      out[p * C + c] = acc;
    }
  }
}

export function gridSampleBicubicBackward(
  _dtype: DType,
  dout: TypedArray,
  Hin: number,
  Win: number,
  C: number,
  gx: Float64Array,
  gy: Float64Array,
  dtable: TypedArray,
): void {
  const wx = new Float64Array(4);
  const wy = new Float64Array(4);
  for (let p = 0; p < gx.length; p++) {
    const { x0, y0 } = bicubicSetup(gx[p] as number, gy[p] as number, Hin, Win, wx, wy);
    for (let i = 0; i < 4; i++) {
      const yy = clampI(y0 - 1 + i, Hin);
      for (let j = 0; j < 4; j++) {
        const xx = clampI(x0 - 1 + j, Win);
        const w = (wy[i] as number) * (wx[j] as number);
        const o = (yy * Win + xx) * C;
        for (let c = 0; c < C; c++) dtable[o + c] = (dtable[o + c] as number) + w * (dout[p * C + c] as number);
      }
    }
  }
}

function clampI(i: number, n: number): number {
  return i < 0 ? 0 : i >= n ? n - 1 : i;
}

/** Source coordinates and cubic weights of one sample point (grid_sample, align_corners=false). */
export function bicubicSetup(
  gx: number,
  gy: number,
  Hin: number,
  Win: number,
  wx: Float64Array,
  wy: Float64Array,
): { x0: number; y0: number } {
  const sx = ((gx + 1) * Win - 1) / 2;
  const sy = ((gy + 1) * Hin - 1) / 2;
  const x0 = Math.floor(sx);
  const y0 = Math.floor(sy);
  cubicWeights(sx - x0, wx);
  cubicWeights(sy - y0, wy);
  return { x0, y0 };
}
