/** Reference fused AdamW update of one parameter array, in place: moments, decoupled weight decay, bias correction. */
import type { DType, TypedArray } from '../../dtype.js';

export function adamw(
  _dtype: DType,
  p: TypedArray,
  g: TypedArray,
  m: TypedArray,
  v: TypedArray,
  n: number,
  lr: number,
  beta1: number,
  beta2: number,
  eps: number,
  weightDecay: number,
  bc1: number,
  bc2: number,
): void {
  for (let i = 0; i < n; i++) {
    const gi = g[i] as number;
    const mi = beta1 * (m[i] as number) + (1 - beta1) * gi;
    const vi = beta2 * (v[i] as number) + (1 - beta2) * gi * gi;
    m[i] = mi;
    v[i] = vi;
    let pi = (p[i] as number) * (1 - lr * weightDecay);
    pi -= (lr * (mi / bc1)) / (Math.sqrt(vi / bc2) + eps);
    p[i] = pi;
  }
}
