/**
 * Parameter initialisers (in place, seeded by the global generator unless an Rng is given).
 * Defaults of the layers follow PyTorch: Linear/Conv weights and biases U(−1/√fan_in, 1/√fan_in), Embedding N(0, 1),
 * norms weight 1 and bias 0. Models override this (GLM uses N(0, initializer_range)).
 */
import type { Rng } from '../../util/rng.js';
import { getRng } from '../random.js';
import { fromArray, type Tensor } from '../tensor.js';

function fill(t: Tensor, f: () => number): Tensor {
  const vals = new Float32Array(t.size);
  for (let i = 0; i < vals.length; i++) vals[i] = f();
  t.copy_(fromArray(vals, t.shape, 'float32'));
  return t;
}

export function normal_(t: Tensor, std = 1, mean = 0, rng: Rng = getRng()): Tensor {
  return fill(t, () => rng.normal(mean, std));
}

export function uniform_(t: Tensor, low: number, high: number, rng: Rng = getRng()): Tensor {
  return fill(t, () => rng.uniform(low, high));
}

/** Normal truncated to [mean − 2·std, mean + 2·std] by rejection. */
export function truncNormal_(t: Tensor, std = 1, mean = 0, rng: Rng = getRng()): Tensor {
  return fill(t, () => {
    let v: number;
    do v = rng.normal(0, 1);
    while (v < -2 || v > 2);
    return mean + std * v;
  });
}

export function constant_(t: Tensor, value: number): Tensor {
  return t.fill_(value);
}

/** fan_in = elements per output row (in_features, or in_channels·Πkernel). */
export function fanIn(t: Tensor): number {
  return t.ndim < 2 ? t.size : t.size / (t.shape[0] as number);
}
