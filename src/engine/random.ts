/** Seeded random tensors. One global generator (manualSeed) drives init and dropout, so runs are reproducible. */
import { Rng } from '../util/rng.js';
import type { DType } from './dtype.js';
import type { Shape } from './shape.js';
import { empty, type Tensor } from './tensor.js';

let globalRng = new Rng(0);

/** Reseeds the global generator (like torch.manual_seed). */
export function manualSeed(seed: number): void {
  globalRng = new Rng(seed);
}

export function getRng(): Rng {
  return globalRng;
}

function fillWith(shape: Shape, dtype: DType, f: () => number): Tensor {
  if (dtype !== 'float32' && dtype !== 'float64') throw new Error(`random tensors are float32/float64, got ${dtype}`);
  const t = empty(shape, dtype);
  const b = t.buf();
  for (let i = 0; i < b.length; i++) b[i] = f();
  return t;
}

export function randn(shape: Shape, opts: { dtype?: DType; std?: number; mean?: number; rng?: Rng } = {}): Tensor {
  const rng = opts.rng ?? globalRng;
  const std = opts.std ?? 1;
  const mean = opts.mean ?? 0;
  return fillWith(shape, opts.dtype ?? 'float32', () => rng.normal(mean, std));
}

export function rand(shape: Shape, opts: { dtype?: DType; low?: number; high?: number; rng?: Rng } = {}): Tensor {
  const rng = opts.rng ?? globalRng;
  const lo = opts.low ?? 0;
  const hi = opts.high ?? 1;
  return fillWith(shape, opts.dtype ?? 'float32', () => rng.uniform(lo, hi));
}

/** Integers uniform in [low, high) as int32. */
export function randint(shape: Shape, low: number, high: number, rng: Rng = globalRng): Tensor {
  if (!(high > low)) throw new Error(`randint: need high > low, got [${low}, ${high})`);
  const t = empty(shape, 'int32');
  const b = t.buf();
  for (let i = 0; i < b.length; i++) b[i] = rng.int(low, high - 1);
  return t;
}

/** 0, 1, …, n−1 (or start..end by step). */
export function arange(start: number, end?: number, step = 1, dtype: DType = 'float32'): Tensor {
  const [s, e] = end === undefined ? [0, start] : [start, end];
  if (step === 0) throw new Error('arange: step must be non-zero');
  const n = Math.max(0, Math.ceil((e - s) / step));
  const t = empty([n], dtype);
  const b = t.buf();
  for (let i = 0; i < n; i++) b[i] = s + i * step;
  return t;
}
