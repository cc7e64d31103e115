/** Fused, numerically stable row kernels: softmax / log-softmax, LayerNorm, RMSNorm (forward and backward). */

import { record } from '../autograd.js';
import { be } from '../device.js';
import { fmt, normAxis } from '../shape.js';
import { empty, type Tensor, zeros } from '../tensor-core.js';
import { cast, contiguous } from './copy.js';
import { transpose } from './shape.js';

function softmaxImpl(x: Tensor, axis: number, log: boolean): Tensor {
  const name = log ? 'logSoftmax' : 'softmax';
  x.assertAlive(name);
  if (x.dtype === 'bfloat16') return cast(softmaxImpl(cast(x, 'float32'), axis, log), 'bfloat16');
  if (x.dtype !== 'float32' && x.dtype !== 'float64')
    throw new Error(`${name}: expected a float tensor, got ${x.dtype}`);
  const a = normAxis(axis, x.ndim, name);
  if (a !== x.ndim - 1) return transpose(softmaxImpl(transpose(x, a, -1), -1, log), a, -1);
  const cols = x.shape[x.ndim - 1] as number;
  const rows = cols === 0 ? 0 : x.size / cols;
  const xc = contiguous(x);
  const out = empty(x.shape, x.dtype);
  be('softmax', x.dtype).softmax(x.dtype, xc.buf(name), out.buf(), rows, cols, log);
  return record(out, name, [x], (g) => {
    const gc = contiguous(g);
    const dx = empty(x.shape, x.dtype);
    be('softmaxBackward', x.dtype).softmaxBackward(x.dtype, out.buf(), gc.buf(name), dx.buf(), rows, cols, log);
    return [dx];
  });
}

export function softmax(x: Tensor, axis = -1): Tensor {
  return softmaxImpl(x, axis, false);
}

export function logSoftmax(x: Tensor, axis = -1): Tensor {
  return softmaxImpl(x, axis, true);
}

function checkNormArgs(x: Tensor, w: Tensor | null | undefined, name: string): number {
  x.assertAlive(name);
  const cols = x.shape[x.ndim - 1] as number;
  if (w && (w.ndim !== 1 || w.shape[0] !== cols)) {
    throw new Error(`${name}: weight ${fmt(w.shape)} does not match the last dim of input ${fmt(x.shape)}`);
  }
  return cols;
}

/** LayerNorm over the last dim (torch.nn.LayerNorm semantics, biased variance). */
export function layerNorm(x: Tensor, weight?: Tensor | null, bias?: Tensor | null, eps = 1e-5): Tensor {
  if (x.dtype === 'bfloat16') {
    const f = (t?: Tensor | null) => (t ? cast(t, 'float32') : t);
    return cast(layerNorm(cast(x, 'float32'), f(weight), f(bias), eps), 'bfloat16');
  }
  const cols = checkNormArgs(x, weight, 'layerNorm');
  if (bias && (bias.ndim !== 1 || bias.shape[0] !== cols))
    throw new Error(`layerNorm: bias ${fmt(bias.shape)} does not match input ${fmt(x.shape)}`);
  const w = weight ? contiguous(cast(weight, x.dtype)) : null;
  const b = bias ? contiguous(cast(bias, x.dtype)) : null;
  const rows = x.size / cols;
  const xc = contiguous(x);
  const out = empty(x.shape, x.dtype);
  const mean = empty([rows], x.dtype);
  const rstd = empty([rows], x.dtype);
  be('layerNorm', x.dtype).layerNorm(
    x.dtype,
    xc.buf('layerNorm'),
    w?.buf() ?? null,
    b?.buf() ?? null,
    out.buf(),
    mean.buf(),
    rstd.buf(),
    rows,
    cols,
    eps,
  );
  const inputs = [x, ...(w ? [w] : []), ...(b ? [b] : [])];
  return record(out, 'layerNorm', inputs, (g) => {
    const gc = contiguous(g);
    const dx = empty(x.shape, x.dtype);
    const dw = w?.requiresGrad ? zeros([cols], x.dtype) : null;
    const db = b?.requiresGrad ? zeros([cols], x.dtype) : null;
    be('layerNormBackward', x.dtype).layerNormBackward(
      x.dtype,
      xc.buf(),
      w?.buf() ?? null,
      mean.buf(),
      rstd.buf(),
      gc.buf(),
      dx.buf(),
      dw?.buf() ?? null,
      db?.buf() ?? null,
      rows,
      cols,
    );
    return [dx, ...(w ? [dw] : []), ...(b ? [db] : [])];
  });
}

/** RMSNorm over the last dim: x / sqrt(mean(x²) + eps) · weight (computed in float32 as HF does). */
export function rmsNorm(x: Tensor, weight?: Tensor | null, eps = 1e-6): Tensor {
  if (x.dtype === 'bfloat16')
    return cast(rmsNorm(cast(x, 'float32'), weight ? cast(weight, 'float32') : weight, eps), 'bfloat16');
  const cols = checkNormArgs(x, weight, 'rmsNorm');
  const w = weight ? contiguous(cast(weight, x.dtype)) : null;
  const rows = x.size / cols;
  const xc = contiguous(x);
  const out = empty(x.shape, x.dtype);
  const rstd = empty([rows], x.dtype);
  be('rmsNorm', x.dtype).rmsNorm(x.dtype, xc.buf('rmsNorm'), w?.buf() ?? null, out.buf(), rstd.buf(), rows, cols, eps);
  return record(out, 'rmsNorm', w ? [x, w] : [x], (g) => {
    const gc = contiguous(g);
    const dx = empty(x.shape, x.dtype);
    const dw = w?.requiresGrad ? zeros([cols], x.dtype) : null;
    be('rmsNormBackward', x.dtype).rmsNormBackward(
      x.dtype,
      xc.buf(),
      w?.buf() ?? null,
      rstd.buf(),
      gc.buf(),
      dx.buf(),
      dw?.buf() ?? null,
      rows,
      cols,
    );
    return w ? [dx, dw] : [dx];
  });
}
