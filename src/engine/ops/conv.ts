/**
 * N-d convolution (Conv2d, Conv3d) as im2col + one GEMM. The GLM ViT's convolutions have kernel == stride (patch
 * embedding, 2×2 downsample), where im2col is just a gather of patches.
 */

import { record } from '../autograd.js';
import { be } from '../device.js';
import { fmt, numel } from '../shape.js';
import { empty, type Tensor, zeros } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';
import { add } from './elementwise.js';
import { linear } from './matmul.js';
import { permute, reshape } from './shape.js';

export interface ConvOptions {
  stride?: number | readonly number[];
  padding?: number | readonly number[];
}

function expandArg(v: number | readonly number[] | undefined, nd: number, dflt: number, name: string): number[] {
  const arr = v === undefined ? new Array(nd).fill(dflt) : typeof v === 'number' ? new Array(nd).fill(v) : [...v];
  if (arr.length !== nd || arr.some((x) => !Number.isInteger(x) || x < 0))
    throw new Error(`conv: ${name} must be ${nd} non-negative integers, got ${JSON.stringify(v)}`);
  return arr;
}

/** x [N, C, ...spatial] → cols [N, ...outSpatial, C·Πkernel] (differentiable; backward is col2im). */
export function im2col(
  x: Tensor,
  kernel: readonly number[],
  stride: readonly number[],
  padding: readonly number[],
): { cols: Tensor; outSpatial: number[] } {
  const [N, C] = x.shape as [number, number];
  const inS = x.shape.slice(2) as number[];
  const outS = inS.map(
    (s, i) => Math.floor((s + 2 * (padding[i] as number) - (kernel[i] as number)) / (stride[i] as number)) + 1,
  );
  if (outS.some((o) => o <= 0))
    throw new Error(`conv: kernel ${fmt(kernel)} does not fit input ${fmt(x.shape)} with padding ${fmt(padding)}`);
  const K = C * numel(kernel);
  const xc = contiguous(x);
  const cols = empty([N, ...outS, K], x.dtype);
  be('im2col', x.dtype).im2col(x.dtype, xc.buf('conv'), cols.buf(), N, C, inS, kernel, stride, padding, outS);
  const out = record(cols, 'im2col', [x], (g) => {
    const dx = zeros(x.shape, x.dtype);
    be('col2im', x.dtype).col2im(
      x.dtype,
      contiguous(g).buf('conv'),
      dx.buf(),
      N,
      C,
      inS,
      kernel,
      stride,
      padding,
      outS,
    );
    return [dx];
  });
  return { cols: out, outSpatial: outS };
}

/** Convolution: x [N, C, ...S], weight [O, C, ...K], bias [O] → [N, O, ...S']. */
export function conv(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  x.assertAlive('conv');
  const nd = weight.ndim - 2;
  if (nd < 1 || x.ndim !== nd + 2)
    throw new Error(
      `conv: input ${fmt(x.shape)} and weight ${fmt(weight.shape)} do not describe a ${nd}-d convolution`,
    );
  if (x.shape[1] !== weight.shape[1])
    throw new Error(`conv: input has ${x.shape[1]} channels, weight ${fmt(weight.shape)} expects ${weight.shape[1]}`);
  const kernel = weight.shape.slice(2) as number[];
  const stride = expandArg(opts.stride, nd, 1, 'stride');
  const padding = expandArg(opts.padding, nd, 0, 'padding');
  if (stride.some((s) => s === 0)) throw new Error('conv: stride must be positive');
  const xf = x.dtype === weight.dtype ? x : cast(x, weight.dtype === 'bfloat16' ? 'float32' : weight.dtype);
  const { cols } = im2col(xf, kernel, stride, padding);
  const O = weight.shape[0] as number;
  const w2 = reshape(weight, [O, -1]);
  let y = linear(cols, w2, null); // [N, ...S', O]
  if (bias) y = add(y, cast(bias, y.dtype));
  const order = [0, nd + 1, ...Array.from({ length: nd }, (_, i) => i + 1)];
  return contiguous(permute(y, order));
}

export function conv2d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  if (weight.ndim !== 4) throw new Error(`conv2d: weight must be [out, in, kh, kw], got ${fmt(weight.shape)}`);
  return conv(x, weight, bias, opts);
}

export function conv3d(x: Tensor, weight: Tensor, bias?: Tensor | null, opts: ConvOptions = {}): Tensor {
  if (weight.ndim !== 5) throw new Error(`conv3d: weight must be [out, in, kt, kh, kw], got ${fmt(weight.shape)}`);
  return conv(x, weight, bias, opts);
}
