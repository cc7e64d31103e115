/** The tensor front: views share storage, broadcasting, dtypes, errors that name the op and shapes, scopes. */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { describe, expect, it } from 'vitest';
import {
  F,
  fromArray,
  keep,
  loadSafetensors,
  manualSeed,
  memoryStats,
  noGrad,
  randn,
  SafetensorsFile,
  saveSafetensors,
  scope,
  tensor,
  zeros,
} from '../../src/engine/index.js';

describe('views', () => {
  it('transpose, slice and expand share storage without copying', () => {
    const x = tensor([
      [1, 2, 3],
      [4, 5, 6],
    ]);
    const t = x.mT;
    expect(t.shape).toEqual([3, 2]);
    expect(t.isContiguous()).toBe(false);
    expect(t._storage).toBe(x._storage);
    expect(t.tolist()).toEqual([
      [1, 4],
      [2, 5],
      [3, 6],
    ]);
    const s = x.slice(1, 1, 3);
    expect(s._storage).toBe(x._storage);
    expect(s.tolist()).toEqual([
      [2, 3],
      [5, 6],
    ]);
    const e = tensor([7, 8]).reshape([2, 1]).expand([2, 3]);
    expect(e.strides).toEqual([1, 0]);
    expect(e.tolist()).toEqual([
      [7, 7, 7],
      [8, 8, 8],
    ]);
    // a strided view made contiguous copies exactly once
    expect(t.contiguous().isContiguous()).toBe(true);
    expect(x.contiguous()).toBe(x);
  });

  it('in-place writes through a view reach the base', () => {
    const x = zeros([2, 3]);
    x.slice(1, 1, 2).fill_(5);
    expect(x.toArray()).toEqual([0, 5, 0, 0, 5, 0]);
  });

  it('slice with step and negative bounds, select, split, chunk', () => {
    const x = tensor([0, 1, 2, 3, 4, 5, 6]);
    expect(x.slice(0, 1, -1, 2).toArray()).toEqual([1, 3, 5]);
    expect(x.select(0, -1).item()).toBe(6);
    expect(x.split([3, 4]).map((t) => t.size)).toEqual([3, 4]);
    expect(x.chunk(3).map((t) => t.size)).toEqual([3, 3, 1]);
  });

  it('broadcasting follows NumPy rules', () => {
    const a = tensor([[1], [2]]);
    const b = tensor([10, 20, 30]);
    expect(a.add(b).tolist()).toEqual([
      [11, 21, 31],
      [12, 22, 32],
    ]);
  });
});

describe('errors name the op and the shapes', () => {
  it('shape mismatches', () => {
    expect(() => randn([2, 3]).add(randn([4]))).toThrow(/add: shapes \[2, 3\] and \[4\] cannot be broadcast/);
    expect(() => randn([2, 3]).matmul(randn([4, 5]))).toThrow(/matmul: inner dimensions differ: \[2, 3\] @ \[4, 5\]/);
    expect(() => randn([2, 3]).reshape([4, 2])).toThrow(
      /reshape: cannot reshape \[2, 3\] \(6 elements\) into \[4, 2\]/,
    );
    expect(() => F.linear(randn([2, 3]), randn([5, 4]))).toThrow(
      /linear: input \[2, 3\] has 3 features, weight \[5, 4\] expects 4/,
    );
    expect(() => F.attention(randn([1, 2, 3, 4]), randn([1, 2, 2, 4]), randn([1, 2, 2, 4]))).toThrow(
      /multiple of key\/value heads/,
    );
  });

  it('dtypes', () => {
    const ids = tensor([1, 2], { dtype: 'int32' });
    expect(() => ids.exp()).toThrow(/exp: expected a float tensor, got int32/);
    expect(() => ids.requireGrad()).toThrow(/only float tensors can require grad/);
    expect(() => F.crossEntropy(randn([2, 3]), tensor([0, 1]))).toThrow(/targets must be int32, got float32/);
  });

  it('out-of-range indices and targets', () => {
    expect(() => F.embedding(randn([4, 2]), tensor([1, 4], { dtype: 'int32' }))).toThrow(
      /index 4 at position 1 is out of range \[0, 4\)/,
    );
    expect(() => F.crossEntropy(randn([2, 3]), tensor([0, 3], { dtype: 'int32' }))).toThrow(
      /target 3 at position 1 is out of range \[0, 3\)/,
    );
    expect(() => randn([3]).select(0, 3)).toThrow(/index 3 out of range/);
  });

  it('NaN guards: a non-finite gradient norm is refused before it reaches the weights', () => {
    const p = randn([3]).requireGrad();
    p.mul(Number.NaN).sum().backward();
    expect(() => optimClip([p])).toThrow(/total gradient norm is NaN/);
  });

  it('backward without a scalar output or twice through a freed graph', () => {
    const x = randn([3]).requireGrad();
    expect(() => x.mul(2).backward()).toThrow(/pass a gradient for non-scalar outputs/);
    const y = x.square().sum();
    y.backward();
    expect(() => y.backward()).toThrow(/already used by a previous backward/);
  });
});

import { clipGradNorm as optimClipImpl } from '../../src/engine/optim/clip.js';

function optimClip(ps: ReturnType<typeof randn>[]): number {
  return optimClipImpl(ps, 1);
}

describe('autograd details', () => {
  it('gradients accumulate across backward calls until zeroed', () => {
    const w = tensor([1, 2, 3]).requireGrad();
    w.square().sum().backward();
    w.square().sum().backward();
    expect(w.grad!.toArray()).toEqual([4, 8, 12]);
  });

  it('noGrad records nothing; detach cuts the graph', () => {
    const w = tensor([1, 2]).requireGrad();
    const y = noGrad(() => w.mul(3));
    expect(y.requiresGrad).toBe(false);
    const z = w.detach().mul(3);
    expect(z.requiresGrad).toBe(false);
  });

  it('a leaf takes a gradient only this pass holds as its .grad (no copy), and never one held elsewhere', () => {
    // y = a + b hands the same gradient tensor to both leaves: one of them may take it, the other must copy it.
    const a = tensor([1, 2, 3]).requireGrad();
    const b = tensor([4, 5, 6]).requireGrad();
    scope(() =>
      a
        .add(b)
        .mul(tensor([2, 3, 4]))
        .sum()
        .backward(),
    );
    expect(a.grad!.isDisposed).toBe(false);
    expect(b.grad!.isDisposed).toBe(false);
    a.grad!.buf()[0] = 100;
    expect(b.grad!.toArray()).toEqual([2, 3, 4]);
    expect(a.grad!.toArray()).toEqual([100, 3, 4]);
    // The root gradient belongs to the caller: the leaf copies it.
    const x = tensor([1, 2]).requireGrad();
    const g = tensor([5, 7]);
    x.backward(g);
    g.buf()[0] = -1;
    expect(x.grad!.toArray()).toEqual([5, 7]);
    // A weight gradient made inside a step's scope outlives the scope as the weight's .grad, and later
    // backwards add into it.
    const w = randn([8, 4]).requireGrad();
    const xs = randn([3, 8]);
    const want = noGrad(() =>
      xs
        .transpose(0, 1)
        .matmul(tensor(new Array(12).fill(1), { shape: [3, 4] }))
        .toArray(),
    );
    scope(() => xs.matmul(w).sum().backward());
    expect(w.grad!.isDisposed).toBe(false);
    const got = w.grad!.toArray();
    for (let i = 0; i < want.length; i++) expect(got[i]).toBeCloseTo(want[i]!, 5);
    scope(() => xs.matmul(w).sum().backward());
    const twice = w.grad!.toArray();
    for (let i = 0; i < want.length; i++) expect(twice[i]).toBeCloseTo(2 * want[i]!, 5);
  });

  it('the cast gradient converts back to the input dtype', () => {
    const x = tensor([1.5, -2], { dtype: 'float64' }).requireGrad();
    x.to('float32').square().sum().backward();
    expect(x.grad!.dtype).toBe('float64');
    expect(x.grad!.toArray()).toEqual([3, -4]);
  });
});

describe('dtypes', () => {
  it('bfloat16 round-to-nearest-even storage and bf16 matmul with float32 accumulation', () => {
    const v = tensor([1.00390625, 1.01171875, -3.13], { dtype: 'bfloat16' });
    // 1 + 2^-8 is a tie between 1 and 1 + 2^-7: rounds to even (1); 1 + 3·2^-8 rounds up.
    expect(v.toArray()).toEqual([1, 1.015625, -3.125]);
    const a = randn([5, 8]);
    const b = randn([8, 3]);
    const exact = a.matmul(b).toArray();
    const viaBf16 = a.to('bfloat16').matmul(b.to('bfloat16'));
    expect(viaBf16.dtype).toBe('float32');
    const got = viaBf16.toArray();
    for (let i = 0; i < exact.length; i++) expect(Math.abs(got[i]! - exact[i]!)).toBeLessThan(0.1);
  });
});

describe('memory', () => {
  it('scope disposes temporaries, keeps results, and later use of a disposed tensor throws', () => {
    let leaked: ReturnType<typeof randn> | null = null;
    const before = memoryStats().liveBytes;
    const kept = scope(() => {
      const a = randn([64, 64]);
      leaked = a.mul(2);
      return a.add(1);
    });
    expect(kept.isDisposed).toBe(false);
    expect(leaked!.isDisposed).toBe(true);
    expect(() => leaked!.toArray()).toThrow(/was disposed/);
    expect(memoryStats().liveBytes - before).toBe(64 * 64 * 4);
    const k2 = scope(() => keep(randn([2])));
    expect(k2.isDisposed).toBe(false);
  });

  it('a tensor left to the GC leaves liveBytes; a disposed one is not counted twice when collected', async () => {
    setFlagsFromString('--expose-gc');
    const gc = runInNewContext('gc') as () => void;
    const settle = async (until: () => boolean) => {
      for (let i = 0; i < 50 && !until(); i++) {
        gc();
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const bytes = 1000 * 4;
    // Collect what earlier tests left to the GC first, until liveBytes holds still.
    let last = -1;
    for (let i = 0; i < 50 && memoryStats().liveBytes !== last; i++) {
      last = memoryStats().liveBytes;
      for (let j = 0; j < 3; j++) {
        gc();
        await new Promise((r) => setTimeout(r, 5));
      }
    }
    const base = memoryStats().liveBytes;
    (() => {
      zeros([1000]); // outside any scope, never disposed
    })();
    expect(memoryStats().liveBytes - base).toBe(bytes);
    await settle(() => memoryStats().liveBytes === base);
    expect(memoryStats().liveBytes).toBe(base);
    (() => {
      zeros([1000]).dispose();
    })();
    expect(memoryStats().liveBytes).toBe(base);
    // Give the finalizer every chance to run for the disposed storage too: it must not subtract again.
    (() => {
      zeros([1000]);
    })();
    await settle(() => memoryStats().liveBytes === base);
    expect(memoryStats().liveBytes).toBe(base);
  });

  it('steady-state steps reuse pooled buffers instead of allocating', () => {
    const w = randn([32, 32]).requireGrad();
    const step = () =>
      scope(() => {
        const l = randn([16, 32]).matmul(w).gelu().sum();
        l.backward();
        w.grad!.dispose();
        w.grad = null;
      });
    step();
    const a0 = memoryStats().allocations;
    step();
    step();
    // the two later steps may allocate only tiny (< 64 element) buffers, never the big ones
    expect(memoryStats().reuses).toBeGreaterThan(0);
    expect(memoryStats().allocations - a0).toBeLessThan(40);
  });
});

describe('determinism', () => {
  it('same seed, same numbers', () => {
    manualSeed(42);
    const a = randn([10]).toArray();
    manualSeed(42);
    expect(randn([10]).toArray()).toEqual(a);
  });
});

describe('safetensors', () => {
  it('round-trips float32, bf16, int32, bool with metadata, and validates headers', () => {
    const dir = mkdtempSync(join(tmpdir(), 'glmv-st-'));
    const path = join(dir, 'x.safetensors');
    const t = {
      'model.a': tensor([
        [1, 2],
        [3, 4],
      ]),
      'model.b': tensor([0.5, -1.25], { dtype: 'bfloat16' }),
      'model.c': tensor([7, -8], { dtype: 'int32' }),
      'model.d': tensor([1, 0, 1], { dtype: 'bool' }),
    };
    saveSafetensors(path, t, { format: 'pt' });
    const bytes = readFileSync(path);
    const headerLen = Number(bytes.readBigUInt64LE(0));
    expect((8 + headerLen) % 8).toBe(0);
    const f = new SafetensorsFile(path);
    expect(f.metadata).toEqual({ format: 'pt' });
    expect(f.tensors.get('model.b')?.dtype).toBe('BF16');
    f.close();
    const back = loadSafetensors(path);
    expect(back.get('model.a')!.tolist()).toEqual([
      [1, 2],
      [3, 4],
    ]);
    expect(back.get('model.b')!.dtype).toBe('bfloat16');
    expect(back.get('model.b')!.toArray()).toEqual([0.5, -1.25]);
    expect(back.get('model.c')!.toArray()).toEqual([7, -8]);
    expect(back.get('model.d')!.toArray()).toEqual([1, 0, 1]);
    expect(loadSafetensors(path, 'float32').get('model.b')!.dtype).toBe('float32');

    writeFileSync(join(dir, 'trunc.safetensors'), bytes.subarray(0, bytes.length - 3));
    expect(() => new SafetensorsFile(join(dir, 'trunc.safetensors'))).toThrow(/outside the .*data section/);
    const bad = Buffer.concat([Buffer.from([4, 0, 0, 0, 0, 0, 0, 0]), Buffer.from('{"a"')]);
    writeFileSync(join(dir, 'bad.safetensors'), bad);
    expect(() => new SafetensorsFile(join(dir, 'bad.safetensors'))).toThrow(/header is not valid JSON/);
    expect(() => new SafetensorsFile(join(dir, 'missing.safetensors'))).toThrow(/cannot open/);
  });
});

describe('fromArray', () => {
  it('wraps without copying and checks sizes', () => {
    const d = new Float32Array([1, 2, 3, 4]);
    const t = fromArray(d, [2, 2]);
    d[0] = 9;
    expect(t.toArray()[0]).toBe(9);
    expect(() => fromArray(d, [3])).toThrow(/4 values cannot have shape \[3\]/);
  });
});

import { getMatmulPrecision, type Tensor, withMatmulPrecision } from '../../src/engine/index.js';

describe('bf16 matmul precision (mixed precision)', () => {
  it('rounds GEMM inputs to bf16, accumulates in float32, keeps gradients float32', () => {
    const a = randn([33, 70]).requireGrad();
    const w = randn([20, 70]).requireGrad();
    const exact = F.linear(a, w).toArray();
    const y = withMatmulPrecision('bfloat16', () => F.linear(a, w));
    expect(getMatmulPrecision()).toBe('float32');
    expect(y.dtype).toBe('float32');
    const got = y.toArray();
    let worst = 0;
    for (let i = 0; i < got.length; i++) worst = Math.max(worst, Math.abs(got[i]! - exact[i]!) / Math.sqrt(70));
    expect(worst).toBeGreaterThan(0); // really rounded
    expect(worst).toBeLessThan(0.05); // bf16 inputs: ~2^-8 relative per product
    withMatmulPrecision('bfloat16', () => a.matmul(w.mT).sum().backward());
    expect(a.grad!.dtype).toBe('float32');
    expect(w.grad!.shape).toEqual([20, 70]);
  });

  it('linearsOf (q, k, v of one input, one bf16 copy of it) gives the values and gradients of separate linears', () => {
    for (const precision of ['float32', 'bfloat16'] as const) {
      const layers = [20, 4, 4].map((n) => ({ weight: randn([n, 12]).requireGrad(), bias: randn([n]).requireGrad() }));
      const x = randn([2, 7, 12]).requireGrad();
      const g = layers.map((l) => randn([2, 7, l.weight.shape[0] as number]));
      const grads = (outs: Tensor[]) => {
        for (const t of [x, ...layers.flatMap((l) => [l.weight, l.bias])]) t.grad = null;
        F.add(
          F.add(F.mul(outs[0]!, g[0]!).sum(), F.mul(outs[1]!, g[1]!).sum()),
          F.mul(outs[2]!, g[2]!).sum(),
        ).backward();
        return [x, ...layers.flatMap((l) => [l.weight, l.bias])].map((t) => t.grad!.toArray());
      };
      const separate = withMatmulPrecision(precision, () => layers.map((l) => F.linear(x, l.weight, l.bias)));
      const shared = withMatmulPrecision(precision, () => F.linearsOf(x, layers));
      shared.forEach((t, i) => {
        expect(t.shape).toEqual(separate[i]!.shape);
        expect(t.toArray(), `${precision} output ${i}`).toEqual(separate[i]!.toArray());
      });
      const gs = withMatmulPrecision(precision, () => grads(separate));
      const gf = withMatmulPrecision(precision, () => grads(shared));
      for (const [i, a] of gf.entries()) expect(a, `${precision} gradient ${i}`).toEqual(gs[i]);
    }
    // Without biases it falls back to separate calls; a mismatched layer is the error linear gives.
    const w = randn([3, 5]);
    expect(F.linearsOf(randn([2, 5]), [{ weight: w, bias: null }])[0]!.shape).toEqual([2, 3]);
    expect(() =>
      F.linearsOf(randn([2, 4]), [
        { weight: w, bias: randn([3]) },
        { weight: w, bias: randn([3]) },
      ]),
    ).toThrow(/linear: input \[2, 4\] has 4 features/);
  });
});

import { sizeClass } from '../../src/engine/memory.js';

describe('pool size classes', () => {
  it('round up by at most 25%, four classes per octave', () => {
    expect(sizeClass(64)).toBe(64);
    expect([65, 80, 81, 96, 97, 112, 113, 128].map(sizeClass)).toEqual([80, 80, 96, 96, 112, 112, 128, 128]);
    for (let n = 65; n < 200000; n += 997) {
      const c = sizeClass(n);
      expect(c).toBeGreaterThanOrEqual(n);
      expect(c / n).toBeLessThanOrEqual(1.25);
    }
  });

  it('reuse buffers across slightly different shapes', () => {
    // A first step fills the pool (whatever earlier tests left in it); then one class (1024) serves every size, so
    // the later steps allocate nothing new.
    const step = (n: number) =>
      scope(() => {
        randn([n]).mul(2);
      });
    step(1000);
    const a0 = memoryStats().allocations;
    for (const n of [1010, 1020, 990, 1005]) step(n);
    expect(memoryStats().allocations - a0).toBe(0);
  });
});
