/**
 * Reference rotary position embedding over [B, L, H, D]: the first rotDim channels of each head rotated by per-position
 * cos / sin tables (halves or interleaved pairs), the rest copied; `inverse` rotates back (its backward).
 */
import type { DType, TypedArray } from '../../dtype.js';

export function rope(
  _dtype: DType,
  x: TypedArray,
  cos: TypedArray,
  sin: TypedArray,
  out: TypedArray,
  B: number,
  L: number,
  H: number,
  D: number,
  rotDim: number,
  csBatch: number,
  interleaved: boolean,
  inverse: boolean,
): void {
  const half = rotDim / 2;
  const sgn = inverse ? -1 : 1;
  for (let b = 0; b < B; b++)
    for (let l = 0; l < L; l++) {
      const cs = b * csBatch + l * half;
      for (let h = 0; h < H; h++) {
        const o = ((b * L + l) * H + h) * D;
        for (let i = 0; i < half; i++) {
          const c = cos[cs + i] as number;
          const s = sgn * (sin[cs + i] as number);
          const i0 = interleaved ? 2 * i : i;
          const i1 = interleaved ? 2 * i + 1 : i + half;
          const x0 = x[o + i0] as number;
          const x1 = x[o + i1] as number;
          out[o + i0] = x0 * c - x1 * s;
          out[o + i1] = x1 * c + x0 * s;
        }
        for (let i = rotDim; i < D; i++) out[o + i] = x[o + i] as number;
      }
    }
}
