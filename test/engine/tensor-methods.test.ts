/**
 * Tensor's methods live in tensor.ts, installed on the class that tensor-core.ts defines (the ops build on the core,
 * the methods on the ops: imports run one way). This file imports tensor.ts and the modules that hand out tensors
 * directly, never the engine's index, so it checks that each of them alone gives tensors with every method.
 */
import { describe, expect, it, vi } from 'vitest';
import { Parameter } from '../../src/engine/nn/module.js';
import { arange, randn } from '../../src/engine/random.js';
import { empty, fromArray, full, ones, Tensor, tensor, zeros } from '../../src/engine/tensor.js';

/** Every method and accessor of Tensor before the core/methods split (the public surface, by name). */
const SURFACE = [
  'abs',
  'add',
  'addInPlace',
  'argmax',
  'argmin',
  'assertAlive',
  'backward',
  'buf',
  'chunk',
  'clamp',
  'clone',
  'contiguous',
  'copy_',
  'cos',
  'detach',
  'dispose',
  'div',
  'dtype',
  'eq',
  'exp',
  'expand',
  'fill_',
  'flatten',
  'gather',
  'ge',
  'gelu',
  'gt',
  'indexSelect',
  'isContiguous',
  'isDisposed',
  'isLeaf',
  'item',
  'le',
  'log',
  'logSoftmax',
  'lt',
  'mT',
  'maskedFill',
  'matmul',
  'max',
  'maximum',
  'mean',
  'min',
  'minimum',
  'mul',
  'narrow',
  'ndim',
  'ne',
  'neg',
  'permute',
  'pow',
  'reciprocal',
  'relu',
  'requireGrad',
  'reshape',
  'rsqrt',
  'select',
  'sigmoid',
  'silu',
  'sin',
  'size',
  'slice',
  'softmax',
  'split',
  'sqrt',
  'square',
  'squeeze',
  'sub',
  'sum',
  'tanh',
  'to',
  'toArray',
  'toFloat32',
  'toFloat64',
  'toInt32',
  'toString',
  'tolist',
  'transpose',
  'unsqueeze',
  'view',
];

const missing = (t: object) => SURFACE.filter((name) => !(name in t));

describe('Tensor methods from tensor.ts', () => {
  it('the prototype carries the whole surface, methods as non-enumerable functions like class methods', () => {
    expect(missing(Tensor.prototype)).toEqual([]);
    const add = Object.getOwnPropertyDescriptor(Tensor.prototype, 'add');
    expect(typeof add?.value).toBe('function');
    expect(add?.enumerable).toBe(false);
    expect(typeof Object.getOwnPropertyDescriptor(Tensor.prototype, 'mT')?.get).toBe('function');
  });

  it('every constructor and every module that hands out tensors gives tensors with their methods', () => {
    const made = [
      tensor([1, 2]),
      zeros([2]),
      ones([2]),
      full([2], 3),
      empty([2]),
      fromArray(new Float32Array(2), [2]),
      randn([2]),
      arange(0, 2),
      Parameter.from(zeros([2])),
      zeros([2]).add(1),
    ];
    for (const t of made) expect(missing(t)).toEqual([]);
  });

  it('methods compute what the ops do, in-place ones return the same (sub)class instance', () => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    expect(x.add(1).mul(2).toArray()).toEqual([4, 6, 8, 10, 12, 14]);
    expect(x.mT.shape).toEqual([3, 2]);
    expect(x.mT.toArray()).toEqual([1, 4, 2, 5, 3, 6]);
    expect(x.sum(1).toArray()).toEqual([6, 15]);
    expect(x.matmul(x.mT).tolist()).toEqual([
      [14, 32],
      [32, 77],
    ]);
    expect(x.exp().log().sub(x).abs().max().item()).toBeLessThan(1e-6);
    const p = Parameter.from(zeros([2]));
    expect(p.copy_(tensor([5, 6]))).toBe(p);
    expect(p.fill_(2)).toBe(p);
    expect(p.addInPlace(tensor([1, 1]))).toBe(p);
    expect(p.toArray()).toEqual([3, 3]);
    expect(String(tensor([1.5]))).toBe('Tensor([1], float32) [1.5]');
  });

  it('backward through the methods gives the hand-computed gradient', () => {
    // d/dw Σ (w_i·x_i)² = 2·w_i·x_i²
    const w = tensor([1, -2, 3]).requireGrad();
    const x = tensor([2, 1, 0.5]);
    w.mul(x).square().sum().backward();
    expect(w.grad?.toArray()).toEqual([8, -4, 1.5]);
  });

  it('the core alone has no op methods (why only the ops and autograd may import tensor-core.ts)', async () => {
    vi.resetModules();
    const core = await import('../../src/engine/tensor-core.js');
    expect(core.Tensor).not.toBe(Tensor);
    const t = core.zeros([2]);
    expect(t.size).toBe(2);
    expect('add' in t).toBe(false);
    expect('toArray' in t).toBe(false);
  });
});
