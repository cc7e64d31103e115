/**
 * Native vs reference: every op case in float32 on both backends, outputs and input gradients compared; plus
 * larger and odd-shaped stress cases that exercise the threaded and blocked paths of the C++ kernels.
 */
import { describe, expect, it } from 'vitest';
import { nativeBackend } from '../../src/engine/backends/native/index.js';
import { availableBackends, F, fromArray, nativeLoadError, withBackend } from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';
import { CASES, type OpCase, rnd } from './cases.js';

interface Run {
  out: Float64Array;
  grads: Array<Float64Array | null>;
}

function run(c: OpCase, backend: string): Run {
  return withBackend(backend, () => {
    const inputs = c.inputs('float32', new Rng(11));
    const gradIdx = c.grad ?? inputs.map((_, i) => i).filter((i) => inputs[i]!.dtype === 'float32');
    for (const i of gradIdx) inputs[i]!.requireGrad();
    const y = c.fn(inputs);
    const w = new Float32Array(y.size);
    const r = new Rng(5);
    for (let i = 0; i < w.length; i++) w[i] = r.uniform(-1, 1);
    y.to('float32').mul(fromArray(w, y.shape)).sum().backward();
    return {
      out: y.toFloat64(),
      grads: inputs.map((t, i) => (gradIdx.includes(i) ? (t.grad?.toFloat64() ?? null) : null)),
    };
  });
}

function maxRelErr(a: Float64Array, b: Float64Array): number {
  expect(a.length).toBe(b.length);
  let scale = 1e-6;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let err = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i]! - b[i]!);
    if (Number.isNaN(d)) return Number.POSITIVE_INFINITY;
    err = Math.max(err, d / scale);
  }
  return err;
}

const STRESS: OpCase[] = [
  {
    name: 'stress: matmul 131×67 @ 67×259',
    inputs: (d, g) => [rnd(g, [131, 67], d), rnd(g, [67, 259], d)],
    fn: ([a, b]) => a!.matmul(b!),
  },
  {
    name: 'stress: batched transposed matmul',
    inputs: (d, g) => [rnd(g, [6, 33, 17], d), rnd(g, [6, 40, 33], d)],
    fn: ([a, b]) => a!.mT.matmul(b!.mT),
  },
  {
    // Big enough per product (4.7 MFLOP) for the threaded paths, batched, both operands transposed.
    name: 'stress: batched transposed matmul, big',
    inputs: (d, g) => [rnd(g, [3, 150, 120], d), rnd(g, [3, 130, 150], d)],
    fn: ([a, b]) => a!.mT.matmul(b!.mT),
  },
  {
    name: 'stress: big elementwise (threaded)',
    inputs: (d, g) => [rnd(g, [300, 257], d), rnd(g, [257], d)],
    fn: ([a, b]) => a!.mul(b!).gelu().add(a!.silu()).tanh(),
  },
  {
    name: 'stress: softmax wide rows',
    inputs: (d, g) => [rnd(g, [70, 1001], d, { lo: -10, hi: 10 })],
    fn: ([a]) => a!.softmax(-1),
  },
  {
    name: 'stress: layerNorm/rmsNorm many rows',
    inputs: (d, g) => [rnd(g, [513, 96], d), rnd(g, [96], d)],
    fn: ([a, w]) => F.rmsNorm(F.layerNorm(a!, w!, w!), w!),
  },
  {
    name: 'stress: sum of a transposed 3d view',
    inputs: (d, g) => [rnd(g, [17, 300, 9], d)],
    fn: ([a]) => a!.permute([2, 0, 1]).sum([1, 2]),
  },
  {
    name: 'stress: cross-entropy vocab 1000',
    inputs: (d, g) => [rnd(g, [257, 1000], d, { lo: -5, hi: 5 })],
    grad: [0],
    fn: ([l]) => {
      const r = new Rng(1);
      const t = Int32Array.from({ length: 257 }, (_, i) => (i % 13 === 0 ? -100 : r.int(0, 999)));
      return F.crossEntropy(l!, fromArray(t, [257]));
    },
  },
  {
    name: 'stress: attention 2×150 tokens, 4q/2kv heads, causal, multi-block',
    inputs: (d, g) => [rnd(g, [2, 150, 4, 16], d), rnd(g, [2, 150, 2, 16], d), rnd(g, [2, 150, 2, 16], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true }),
  },
  {
    name: 'stress: attention packed segments crossing blocks',
    inputs: (d, g) => [rnd(g, [1, 200, 2, 8], d), rnd(g, [1, 200, 2, 8], d), rnd(g, [1, 200, 2, 8], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true, cuSeqlens: [0, 70, 71, 150, 200] }),
  },
  {
    // The backward splits a packed row by (batch, segment, kv head): an empty segment, GQA, two rows.
    name: 'stress: attention packed segments, GQA, two rows, an empty segment',
    inputs: (d, g) => [rnd(g, [2, 160, 4, 8], d), rnd(g, [2, 160, 2, 8], d), rnd(g, [2, 160, 2, 8], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true, cuSeqlens: [0, 30, 30, 95, 160] }),
  },
  {
    // The RL lab's decoder shape (head dim 32, five query heads on one kv head): two rows, an empty segment, a
    // segment longer than a query block.
    name: 'stress: attention D 32, packed segments, GQA 5/1, two rows, an empty segment',
    inputs: (d, g) => [rnd(g, [2, 170, 5, 32], d), rnd(g, [2, 170, 1, 32], d), rnd(g, [2, 170, 1, 32], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true, cuSeqlens: [0, 37, 37, 101, 170] }),
  },
  {
    name: 'stress: attention D 64, bidirectional segments, strided slices of a fused projection',
    inputs: (d, g) => [rnd(g, [1, 90, 3 * 2 * 64], d)],
    fn: ([qkv]) => {
      const r = qkv!.reshape([1, 90, 3, 2, 64]);
      return F.attention(r.select(2, 0), r.select(2, 1), r.select(2, 2), { cuSeqlens: [0, 17, 90] });
    },
  },
  {
    name: 'stress: attention D 32, 7 query positions over a left-padded cache, a fully masked row',
    inputs: (d, g) => [rnd(g, [3, 7, 4, 32], d), rnd(g, [3, 40, 2, 32], d), rnd(g, [3, 40, 2, 32], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true, keyStart: [0, 5, 39], scale: 0.3 }),
  },
  {
    name: 'stress: attention decode with left padding',
    inputs: (d, g) => [rnd(g, [3, 1, 4, 8], d), rnd(g, [3, 90, 1, 8], d), rnd(g, [3, 90, 1, 8], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true, keyStart: [0, 40, 89] }),
  },
  {
    // Decode tasks split a GQA group's 16 query heads into runs so that one row still feeds every thread.
    name: 'stress: attention decode, one row, 16 query heads per kv head, long keys',
    inputs: (d, g) => [rnd(g, [1, 1, 32, 16], d), rnd(g, [1, 300, 2, 16], d), rnd(g, [1, 300, 2, 16], d)],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true }),
  },
  {
    // Three query positions (a verify step), groups of 3, a fully masked first position in the last row.
    name: 'stress: attention 3 positions, GQA 3, left padding with a fully masked row',
    inputs: (d, g) => [rnd(g, [4, 3, 6, 8], d), rnd(g, [4, 50, 2, 8], d), rnd(g, [4, 50, 2, 8], d)],
    grad: [0, 1, 2],
    fn: ([q, k, v]) => F.attention(q!, k!, v!, { causal: true, keyStart: [0, 10, 47, 49] }),
  },
  {
    name: 'stress: attention decode, bidirectional, strided query slice',
    inputs: (d, g) => [rnd(g, [5, 1, 2 * 4 * 8], d), rnd(g, [5, 20, 1, 8], d), rnd(g, [5, 20, 1, 8], d)],
    fn: ([q, k, v]) => F.attention(q!.reshape([5, 1, 2, 4, 8]).select(2, 1), k!, v!, { keyStart: [0, 3, 19, 0, 7] }),
  },
  {
    name: 'stress: embedding backward with many repeats',
    inputs: (d, g) => [rnd(g, [50, 200], d)],
    fn: ([w]) => {
      const r = new Rng(2);
      return F.embedding(
        w!,
        fromArray(
          Int32Array.from({ length: 600 }, () => r.int(0, 49)),
          [600],
        ),
      );
    },
  },
  {
    name: 'stress: conv2d 3×3 stride 1 pad 1',
    inputs: (d, g) => [rnd(g, [2, 5, 13, 11], d), rnd(g, [7, 5, 3, 3], d), rnd(g, [7], d)],
    fn: ([x, w, b]) => F.conv2d(x!, w!, b!, { padding: 1 }),
  },
  {
    name: 'stress: bicubic resample 24×24×64 table to a 10×15 grid',
    inputs: (d, g) => [rnd(g, [24, 24, 64], d)],
    fn: ([t]) => {
      const gx: number[] = [];
      const gy: number[] = [];
      for (let h = 0; h < 10; h++)
        for (let w = 0; w < 15; w++) {
          gx.push((2 * (w + 0.5)) / 15 - 1);
          gy.push((2 * (h + 0.5)) / 10 - 1);
        }
      return F.gridSampleBicubic(t!, Float64Array.from(gx), Float64Array.from(gy));
    },
  },
];

describe('native backend vs reference (float32)', () => {
  it('the native backend is available', () => {
    expect(availableBackends(), `native backend failed to load: ${nativeLoadError()}`).toContain('native');
  });
  const results: Array<[string, number]> = [];
  for (const c of [...CASES, ...STRESS]) {
    it(c.name, () => {
      const ref = run(c, 'ref');
      const nat = run(c, 'native');
      const outErr = maxRelErr(nat.out, ref.out);
      let gradErr = 0;
      ref.grads.forEach((g, i) => {
        if (g) gradErr = Math.max(gradErr, maxRelErr(nat.grads[i]!, g));
      });
      results.push([c.name, Math.max(outErr, gradErr)]);
      expect(outErr, 'output').toBeLessThan(2e-5);
      expect(gradErr, 'gradient').toBeLessThan(5e-5);
    });
  }
  it('every case ran on both backends, and native is its own code (not a bit-exact pass-through to ref)', () => {
    const names = results.map(([n]) => n).sort();
    expect(names, 'every case must have run (this summary needs the whole file, not a -t filter)').toEqual(
      [...CASES, ...STRESS].map((c) => c.name).sort(),
    );
    for (const [n, e] of results) expect(Number.isFinite(e), n).toBe(true);
    results.sort((a, b) => b[1] - a[1]);
    // oneDNN sums in its own order: over this many float32 cases some differ from the reference in the last bits.
    // All zero would mean the native backend silently dispatched to the reference kernels.
    expect(results[0]![1]).toBeGreaterThan(0);
    console.log(
      'worst native-vs-ref relative errors:',
      results
        .slice(0, 5)
        .map(([n, e]) => `${n}: ${e.toExponential(2)}`)
        .join('; '),
    );
  });
});

describe('float32 GEMM paths (the benchmarks compare them)', () => {
  const gemmCases = STRESS.filter((c) => c.name.includes('matmul'));
  // 'sgemm': dnnl_sgemm with its own threading; 'matmul': oneDNN's matmul primitive; 'split' (the default): one
  // output block per thread, split over rows or columns.
  it.each(['sgemm', 'matmul', 'split'] as const)(
    '%s matches the reference, outputs and gradients (plain and transposed)',
    (mode) => {
      expect(gemmCases.length).toBe(3);
      const nb = nativeBackend()!;
      for (const c of gemmCases) {
        const ref = run(c, 'ref');
        const prev = nb.setF32Gemm(mode);
        let nat: Run;
        try {
          nat = run(c, 'native');
        } finally {
          nb.setF32Gemm(prev);
        }
        expect(maxRelErr(nat.out, ref.out), c.name).toBeLessThan(2e-5);
        ref.grads.forEach((g, i) => {
          if (g) expect(maxRelErr(nat.grads[i]!, g), `${c.name} grad ${i}`).toBeLessThan(5e-5);
        });
      }
    },
  );
});

describe('bf16 decode GEMV (up to 8 rows of x against a [N, K] bf16 weight)', () => {
  it('matches the reference and the oneDNN path, for 1–9 rows and K not a multiple of 32', () => {
    const nb = nativeBackend()!;
    const rng = new Rng(21);
    for (const [M, K, N] of [
      [1, 4096, 70],
      [3, 250, 33],
      [8, 96, 129],
      [9, 160, 40], // 9 rows: oneDNN, not the GEMV kernel
      [2, 17, 5],
    ] as const) {
      const x = fromArray(
        Float32Array.from({ length: M * K }, () => rng.uniform(-1, 1)),
        [M, K],
      ).to('bfloat16');
      const w = fromArray(
        Float32Array.from({ length: N * K }, () => rng.uniform(-0.1, 0.1)),
        [N, K],
      ).to('bfloat16');
      const ref = withBackend('ref', () => F.linear(x, w).toFloat64());
      const gemv = withBackend('native', () => F.linear(x, w).toFloat64());
      nb.setBf16Gemv(false);
      let onednn: Float64Array;
      try {
        onednn = withBackend('native', () => F.linear(x, w).toFloat64());
      } finally {
        nb.setBf16Gemv(true);
      }
      // bf16 × bf16 products are exact in float32: only the order of the float32 sums differs.
      expect(maxRelErr(gemv, ref), `M=${M} K=${K} N=${N}`).toBeLessThan(1e-5);
      expect(maxRelErr(onednn, ref), `M=${M} K=${K} N=${N} oneDNN`).toBeLessThan(1e-5);
    }
  });
});
