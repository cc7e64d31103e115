/**
 * Differentiable op cases shared by the finite-difference gradient checks (float64, reference backend) and the
 * native-vs-reference comparisons (float32). Each case builds its inputs from a seed, so both runs see the same data.
 */
import { type DType, F, type Tensor, tensor } from '../../src/engine/index.js';
import { checkpoint } from '../../src/engine/recompute.js';
import type { Rng } from '../../src/util/rng.js';

export interface OpCase {
  name: string;
  /** Inputs; those listed in `grad` get gradients checked (default: all float inputs). */
  inputs: (dtype: DType, rng: Rng) => Tensor[];
  grad?: number[];
  fn: (xs: Tensor[]) => Tensor;
  /** Skip finite differences (non-smooth at sampled points, or forward-only). */
  noGradCheck?: boolean;
}

export function rnd(
  rng: Rng,
  shape: number[],
  dtype: DType,
  opts: { lo?: number; hi?: number; awayFromZero?: number } = {},
): Tensor {
  const n = shape.reduce((a, b) => a * b, 1);
  const vals: number[] = [];
  for (let i = 0; i < n; i++) {
    let v = rng.uniform(opts.lo ?? -2, opts.hi ?? 2);
    if (opts.awayFromZero && Math.abs(v) < opts.awayFromZero) v += Math.sign(v || 1) * opts.awayFromZero;
    vals.push(v);
  }
  return tensor(vals, { shape, dtype });
}

function ints(vals: number[], shape?: number[]): Tensor {
  return tensor(vals, { shape: shape ?? [vals.length], dtype: 'int32' });
}

const unaryOps: Array<[string, (x: Tensor) => Tensor, { lo?: number; hi?: number; awayFromZero?: number }]> = [
  ['neg', (x) => x.neg(), {}],
  ['exp', (x) => x.exp(), {}],
  ['log', (x) => x.log(), { lo: 0.2, hi: 3 }],
  ['sqrt', (x) => x.sqrt(), { lo: 0.2, hi: 3 }],
  ['rsqrt', (x) => x.rsqrt(), { lo: 0.2, hi: 3 }],
  ['tanh', (x) => x.tanh(), {}],
  ['sigmoid', (x) => x.sigmoid(), { lo: -6, hi: 6 }],
  ['silu', (x) => x.silu(), { lo: -6, hi: 6 }],
  ['gelu', (x) => x.gelu(), { lo: -4, hi: 4 }],
  ['gelu_tanh', (x) => x.gelu('tanh'), { lo: -4, hi: 4 }],
  ['relu', (x) => x.relu(), { awayFromZero: 0.1 }],
  ['abs', (x) => x.abs(), { awayFromZero: 0.1 }],
  ['sin', (x) => x.sin(), {}],
  ['cos', (x) => x.cos(), {}],
  ['square', (x) => x.square(), {}],
  ['reciprocal', (x) => x.reciprocal(), { awayFromZero: 0.3 }],
];

export const CASES: OpCase[] = [
  ...unaryOps.map(([name, f, r]) => ({
    name,
    inputs: (d: DType, g: Rng) => [rnd(g, [3, 7], d, r)],
    fn: (xs: Tensor[]) => f(xs[0]!),
  })),
  {
    name: 'swiglu',
    inputs: (d, g) => [rnd(g, [3, 5], d, { lo: -4, hi: 4 }), rnd(g, [3, 5], d)],
    fn: ([a, b]) => F.swiglu(a!, b!),
  },
  {
    name: 'swiglu on the halves of a fused projection',
    inputs: (d, g) => [rnd(g, [2, 3, 8], d, { lo: -4, hi: 4 })],
    fn: ([x]) => {
      const [gate, up] = x!.chunk(2, -1);
      return F.swiglu(gate!, up!);
    },
  },
  { name: 'unary on a transposed view', inputs: (d, g) => [rnd(g, [5, 6], d)], fn: ([x]) => x!.mT.silu() },
  { name: 'add broadcast', inputs: (d, g) => [rnd(g, [3, 1, 4], d), rnd(g, [2, 4], d)], fn: ([a, b]) => a!.add(b!) },
  { name: 'sub broadcast', inputs: (d, g) => [rnd(g, [2, 3], d), rnd(g, [3], d)], fn: ([a, b]) => a!.sub(b!) },
  {
    name: 'mul broadcast + transposed',
    inputs: (d, g) => [rnd(g, [4, 3], d), rnd(g, [1, 4], d)],
    fn: ([a, b]) => a!.mT.mul(b!),
  },
  {
    name: 'div',
    inputs: (d, g) => [rnd(g, [2, 5], d), rnd(g, [2, 5], d, { awayFromZero: 0.5 })],
    fn: ([a, b]) => a!.div(b!),
  },
  {
    name: 'pow tensor',
    inputs: (d, g) => [rnd(g, [6], d, { lo: 0.3, hi: 2 }), rnd(g, [6], d, { lo: -1.5, hi: 1.5 })],
    fn: ([a, b]) => a!.pow(b!),
  },
  { name: 'pow scalar', inputs: (d, g) => [rnd(g, [6], d, { lo: 0.3, hi: 2 })], fn: ([a]) => a!.pow(2.5) },
  {
    name: 'scalar affine ops',
    inputs: (d, g) => [rnd(g, [4, 2], d)],
    fn: ([a]) => F.sub(3, F.div(F.mul(a!.add(1.5), 2), 4)),
  },
  { name: 'maximum', inputs: (d, g) => [rnd(g, [3, 4], d), rnd(g, [4], d)], fn: ([a, b]) => a!.maximum(b!) },
  { name: 'minimum', inputs: (d, g) => [rnd(g, [3, 4], d), rnd(g, [3, 1], d)], fn: ([a, b]) => a!.minimum(b!) },
  { name: 'clamp', inputs: (d, g) => [rnd(g, [10], d, { awayFromZero: 0.05 })], fn: ([a]) => a!.clamp(-0.5, 0.7) },
  {
    name: 'where',
    inputs: (d, g) => [rnd(g, [3, 4], d), rnd(g, [4], d)],
    fn: ([a, b]) => F.where(a!.gt(0), a!, b!),
  },
  { name: 'maskedFill', inputs: (d, g) => [rnd(g, [2, 5], d)], fn: ([a]) => a!.maskedFill(a!.lt(0.3), -1) },
  { name: 'sum all', inputs: (d, g) => [rnd(g, [3, 4, 2], d)], fn: ([a]) => a!.sum() },
  { name: 'sum axis keepdim', inputs: (d, g) => [rnd(g, [3, 4, 2], d)], fn: ([a]) => a!.sum(1, true) },
  { name: 'sum two axes', inputs: (d, g) => [rnd(g, [3, 4, 2], d)], fn: ([a]) => a!.sum([0, 2]) },
  { name: 'mean', inputs: (d, g) => [rnd(g, [3, 4, 2], d)], fn: ([a]) => a!.mean(-1) },
  { name: 'max axis', inputs: (d, g) => [rnd(g, [4, 6], d)], fn: ([a]) => a!.max(1) },
  { name: 'min axis 0', inputs: (d, g) => [rnd(g, [4, 6], d)], fn: ([a]) => a!.min(0, true) },
  {
    name: 'reshape + permute',
    inputs: (d, g) => [rnd(g, [2, 3, 4], d)],
    fn: ([a]) =>
      a!
        .permute([2, 0, 1])
        .reshape([4, 6])
        .mul(a!.reshape([4, 6])),
  },
  { name: 'slice with step', inputs: (d, g) => [rnd(g, [5, 7], d)], fn: ([a]) => a!.slice(1, 1, 6, 2).square() },
  { name: 'select', inputs: (d, g) => [rnd(g, [3, 4], d)], fn: ([a]) => a!.select(0, -1).exp() },
  { name: 'expand', inputs: (d, g) => [rnd(g, [3, 1], d)], fn: ([a]) => a!.expand([2, 3, 4]).square() },
  {
    name: 'squeeze/unsqueeze',
    inputs: (d, g) => [rnd(g, [3, 1, 2], d)],
    fn: ([a]) => a!.squeeze(1).unsqueeze(0).sin(),
  },
  {
    name: 'split + concat',
    inputs: (d, g) => [rnd(g, [4, 6], d)],
    fn: ([a]) => {
      const [p, q] = a!.split([2, 4], 1);
      return F.concat([q!.exp(), p!], 1);
    },
  },
  {
    name: 'stack',
    inputs: (d, g) => [rnd(g, [3, 2], d), rnd(g, [3, 2], d)],
    fn: ([a, b]) => F.stack([a!, b!.square()], 1),
  },
  { name: 'pad', inputs: (d, g) => [rnd(g, [2, 3], d)], fn: ([a]) => F.pad(a!.exp(), [[1, 2]], 0.5) },
  { name: 'matmul 2d', inputs: (d, g) => [rnd(g, [5, 4], d), rnd(g, [4, 3], d)], fn: ([a, b]) => a!.matmul(b!) },
  {
    name: 'matmul transposed views',
    inputs: (d, g) => [rnd(g, [4, 5], d), rnd(g, [3, 4], d)],
    fn: ([a, b]) => a!.mT.matmul(b!.mT),
  },
  {
    name: 'matmul batched broadcast',
    inputs: (d, g) => [rnd(g, [2, 3, 5, 4], d), rnd(g, [3, 4, 2], d)],
    fn: ([a, b]) => a!.matmul(b!),
  },
  { name: 'matmul vector', inputs: (d, g) => [rnd(g, [4], d), rnd(g, [2, 4, 3], d)], fn: ([a, b]) => a!.matmul(b!) },
  {
    name: 'linear 3d with bias',
    inputs: (d, g) => [rnd(g, [2, 3, 4], d), rnd(g, [5, 4], d), rnd(g, [5], d)],
    fn: ([x, w, b]) => F.linear(x!, w!, b!),
  },
  { name: 'softmax last', inputs: (d, g) => [rnd(g, [3, 7], d)], fn: ([a]) => a!.softmax(-1) },
  { name: 'softmax middle axis', inputs: (d, g) => [rnd(g, [2, 5, 3], d)], fn: ([a]) => a!.softmax(1) },
  { name: 'logSoftmax', inputs: (d, g) => [rnd(g, [4, 6], d, { lo: -8, hi: 8 })], fn: ([a]) => a!.logSoftmax(-1) },
  {
    name: 'layerNorm',
    inputs: (d, g) => [rnd(g, [3, 8], d), rnd(g, [8], d), rnd(g, [8], d)],
    fn: ([x, w, b]) => F.layerNorm(x!, w!, b!, 1e-5),
  },
  {
    name: 'layerNorm no affine',
    inputs: (d, g) => [rnd(g, [2, 2, 5], d)],
    fn: ([x]) => F.layerNorm(x!, null, null, 1e-5),
  },
  { name: 'rmsNorm', inputs: (d, g) => [rnd(g, [4, 6], d), rnd(g, [6], d)], fn: ([x, w]) => F.rmsNorm(x!, w!, 1e-5) },
  {
    name: 'crossEntropy mean, ignore, weights',
    inputs: (d, g) => [rnd(g, [5, 7], d, { lo: -3, hi: 3 }), rnd(g, [5], d, { lo: 0.5, hi: 2 })],
    grad: [0],
    fn: ([l, w]) => F.crossEntropy(l!, ints([1, 6, -100, 0, 3]), { weights: w! }),
  },
  {
    name: 'crossEntropy none 3d',
    inputs: (d, g) => [rnd(g, [2, 3, 4], d, { lo: -3, hi: 3 })],
    fn: ([l]) => F.crossEntropy(l!, ints([0, 1, 2, 3, -100, 1], [2, 3]), { reduction: 'none' }),
  },
  {
    name: 'embedding with repeats',
    inputs: (d, g) => [rnd(g, [6, 4], d)],
    fn: ([w]) => F.embedding(w!, ints([1, 3, 1, 5, 0, 1], [2, 3])),
  },
  {
    name: 'indexSelect axis 1',
    inputs: (d, g) => [rnd(g, [3, 5, 2], d)],
    fn: ([w]) => w!.indexSelect(1, ints([4, 0, 4])),
  },
  {
    name: 'gather',
    inputs: (d, g) => [rnd(g, [3, 5], d)],
    fn: ([x]) => x!.gather(1, ints([0, 4, 4, 2, 1, 1], [3, 2])),
  },
  { name: 'topk values', inputs: (d, g) => [rnd(g, [3, 6], d)], fn: ([x]) => F.topk(x!, 2).values },
  {
    name: 'attention causal GQA',
    inputs: (d, g) => [rnd(g, [2, 5, 4, 3], d), rnd(g, [2, 5, 2, 3], d), rnd(g, [2, 5, 2, 3], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true }),
  },
  {
    name: 'attention segments (bidirectional)',
    inputs: (d, g) => [rnd(g, [1, 6, 2, 4], d), rnd(g, [1, 6, 2, 4], d), rnd(g, [1, 6, 2, 4], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { cuSeqlens: [0, 2, 6] }),
  },
  {
    name: 'attention decode offset + left padding',
    inputs: (d, g) => [rnd(g, [2, 2, 2, 4], d), rnd(g, [2, 5, 1, 4], d), rnd(g, [2, 5, 1, 4], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true, keyStart: [0, 2], scale: 0.7 }),
  },
  {
    name: 'attention on strided slices of a fused projection',
    inputs: (d, g) => [rnd(g, [1, 4, 3 * 2 * 4], d)],
    fn: ([qkv]) => {
      const r = qkv!.reshape([1, 4, 3, 2, 4]);
      return F.attention(r.select(2, 0), r.select(2, 1), r.select(2, 2), { causal: true });
    },
  },
  {
    name: 'rope interleaved partial',
    inputs: (d, g) => [rnd(g, [2, 3, 2, 8], d), rnd(g, [2, 3, 2], d), rnd(g, [2, 3, 2], d)],
    grad: [0],
    fn: ([x, c, s]) => F.applyRotary(x!, c!.cos(), s!.sin(), { interleaved: true }),
  },
  {
    name: 'rope half-split shared table',
    inputs: (d, g) => [rnd(g, [2, 3, 2, 6], d), rnd(g, [1, 3, 3], d)],
    grad: [0],
    fn: ([x, a]) => F.applyRotary(x!, a!.cos(), a!.sin(), { interleaved: false }),
  },
  {
    name: 'conv2d stride 2 padding 1',
    inputs: (d, g) => [rnd(g, [2, 3, 5, 6], d), rnd(g, [4, 3, 3, 3], d), rnd(g, [4], d)],
    fn: ([x, w, b]) => F.conv2d(x!, w!, b!, { stride: 2, padding: 1 }),
  },
  {
    name: 'conv3d patch embed (kernel == stride)',
    inputs: (d, g) => [rnd(g, [3, 2, 2, 4, 4], d), rnd(g, [5, 2, 2, 2, 2], d), rnd(g, [5], d)],
    fn: ([x, w, b]) => F.conv3d(x!, w!, b!, { stride: [2, 2, 2] }),
  },
  {
    name: 'gridSampleBicubic',
    inputs: (d, g) => [rnd(g, [4, 4, 3], d)],
    fn: ([t]) =>
      F.gridSampleBicubic(
        t!,
        Float64Array.from([-0.9, -0.3, 0.2, 0.95, 1.0]),
        Float64Array.from([-1, 0.1, 0.5, -0.6, 0.99]),
      ),
  },
  // float32 rounding defeats finite differences here; the cast gradient is asserted directly in tensor.test.ts.
  {
    name: 'cast round trip',
    inputs: (d, g) => [rnd(g, [4], d)],
    fn: ([a]) => a!.to('float32').to(a!.dtype).square(),
    noGradCheck: true,
  },
  {
    name: 'checkpoint',
    inputs: (d, g) => [rnd(g, [3, 4], d), rnd(g, [4, 4], d)],
    fn: ([x, w]) => checkpoint((y) => y.matmul(w!).tanh().matmul(w!), x!),
  },
];
