/**
 * Weight-only quantisation: the packed layout against hand-computed compressed-tensors words, the quantisation
 * error bound, and the native int4/int8 kernels (decode, GEMM and portable paths) against the reference backend.
 * The float32 decode path accumulates in float32 (tight tolerance); the bf16-dot decode path rounds x to bf16 and is
 * compared tightly with the reference on that rounded x; the GEMM path rounds x and W to bf16 as the bf16 model's
 * GEMM does, so it is compared at bf16 precision. The int8-activation kernels (quantLinear's default up to 8 rows:
 * VNNI and portable) compute the reference's math exactly up to float32 summation order, so they are compared
 * tightly against the reference's int8-activation op; the activation quantisation's own error against float x is
 * checked against its bound (half a step per input, Σ |w| · sx / 2).
 */
import { describe, expect, it } from 'vitest';
import type { Int8Kernel, NativeBackend } from '../../src/engine/backends/native/backend.js';
import { nativeBackend } from '../../src/engine/backends/native/index.js';
import { qmatmulRef, quantizeActivations } from '../../src/engine/backends/ref/quant.js';
import {
  activationGroup,
  availableBackends,
  dequantizeWeight,
  F,
  fromArray,
  Linear,
  nativeLoadError,
  noGrad,
  QUANT_ACT_MAX_ROWS,
  type QuantBits,
  QuantLinear,
  quantizeWeight,
  quantLinear,
  setQuantActivations,
  tensor,
  withBackend,
} from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';
import { maxRelDiff } from '../helpers/close.js';

/** Every int8-activation kernel this CPU can run, to force in turn: what lesser CPUs run is checked here too. */
function int8KernelsHere(nb: NativeBackend): Int8Kernel[] {
  return ['auto', ...nb.quantKernels().int8];
}

/** f() with quantLinear's decode inputs kept float (no int8 activations). */
function floatActivations<T>(f: () => T): T {
  const old = setQuantActivations('float');
  try {
    return f();
  } finally {
    setQuantActivations(old);
  }
}

function randn(shape: number[], seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.normal(0, scale);
  return out;
}

/** float32 → bf16 → float32, round to nearest even (the native kernels' rounding). */
function roundBf16(a: Float32Array): Float32Array {
  const out = new Float32Array(a);
  const u = new Uint32Array(out.buffer);
  for (let i = 0; i < u.length; i++) u[i] = ((u[i]! + 0x7fff + ((u[i]! >>> 16) & 1)) >>> 16) << 16;
  return out;
}

describe('quantised weights', () => {
  it('packs as compressed-tensors does: low bits first, unsigned with offset 2^(bits-1)', () => {
    // Integer weights with max |w| = qmax give scale 1, so q = w.
    const w4 = tensor([[1, 2, 3, 4, 5, 6, 7, -7]]);
    const q4 = quantizeWeight(w4, 4, null);
    expect(q4.scale.toArray()).toEqual([1]);
    // stored nibbles 9, 10, …, 15, 1 from the lowest bits up: 0x1FEDCBA9
    expect(q4.packed.toArray()).toEqual([0x1fedcba9]);
    const w8 = tensor([[1, 2, -1, 127, 0, 0, 0, -127]]);
    const q8 = quantizeWeight(w8, 8, null);
    // bytes 0x81, 0x82, 0x7f, 0xff | 0x80, 0x80, 0x80, 0x01 as little-endian int32
    expect(q8.packed.toArray()).toEqual([0xff7f8281 | 0, 0x01808080]);
    expect(dequantizeWeight(q8).toArray()).toEqual([1, 2, -1, 127, 0, 0, 0, -127]);
    // A padded row: 10 int4 values need 2 words.
    expect(quantizeWeight(tensor([[1, 2, 3, 4, 5, 6, 7, 1, 2, 3]]), 4, null).packed.shape).toEqual([1, 2]);
  });

  it('dequantises within half a step of every weight, per group', () => {
    const [N, K, g] = [8, 96, 32];
    const w = randn([N, K], 1);
    for (const bits of [4, 8] as QuantBits[]) {
      for (const sd of ['float32', 'bfloat16'] as const) {
        const q = quantizeWeight(fromArray(w, [N, K]), bits, g, sd);
        expect(q.scale.shape).toEqual([N, K / g]);
        const back = dequantizeWeight(q).toFloat32();
        const sc = q.scale.toFloat32();
        const qmax = bits === 4 ? 7 : 127;
        for (let n = 0; n < N; n++)
          for (let k = 0; k < K; k++) {
            const s = sc[n * (K / g) + Math.floor(k / g)]!;
            expect(Math.abs(back[n * K + k]! - w[n * K + k]!)).toBeLessThanOrEqual(
              s / 2 + 1e-6 + (sd === 'bfloat16' ? s * qmax * 2 ** -8 : 0),
            );
          }
      }
    }
  });

  it('refuses mismatched parts with a clear error', () => {
    const q = quantizeWeight(fromArray(randn([4, 64], 2), [4, 64]), 4, 32);
    expect(() => quantLinear(fromArray(randn([2, 60], 3), [2, 60]), q)).toThrow(
      /has 60 features, the weight expects 64/,
    );
    expect(() => quantLinear(fromArray(randn([2, 64], 3), [2, 64]), { ...q, groupSize: 16 })).toThrow(
      /weight_scale must be float \[4, 4\]/,
    );
    expect(() => quantLinear(fromArray(randn([2, 64], 3), [2, 64]), { ...q, inFeatures: 128 })).toThrow(
      /weight_packed/,
    );
  });

  it('QuantLinear matches its Linear within the quantisation error, and passes gradients to the input', () => {
    const lin = new Linear(128, 48);
    const x = fromArray(randn([3, 128], 4), [3, 128]);
    const ref = noGrad(() => lin.forward(x)).toFloat32();
    for (const [bits, tol] of [
      [8, 0.01],
      [4, 0.15],
    ] as const) {
      const ql = QuantLinear.fromLinear(lin, bits, bits === 8 ? null : 32);
      expect(ql.namedParameters().map(([n]) => n)).toEqual(['weight_packed', 'weight_scale', 'weight_shape', 'bias']);
      expect(ql.weight_shape.toArray()).toEqual([48, 128]);
      const y = noGrad(() => ql.forward(x)).toFloat32();
      const err = maxRelDiff(y, ref);
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThan(tol);
    }
    const ql = QuantLinear.fromLinear(lin, 4, 64);
    const xg = fromArray(randn([2, 128], 5), [2, 128]).requireGrad();
    ql.forward(xg).sum().backward();
    const expected = F.sum(dequantizeWeight(ql.quantized), 0).toFloat32();
    expect(maxRelDiff(xg.grad!.toFloat32().subarray(0, 128), expected)).toBeLessThan(1e-6);
  });
});

describe('native quantised matmul vs reference', () => {
  it('int4 / int8, bf16 / float32 scales, decode, GEMM and portable paths', () => {
    expect(availableBackends(), `native backend failed to load: ${nativeLoadError()}`).toContain('native');
    const nb = nativeBackend()!;
    const cases: Array<[number, number, number, QuantBits, number | null]> = [
      [1, 256, 40, 4, 128],
      [3, 256, 33, 4, 32],
      [5, 192, 17, 8, null],
      [2, 200, 9, 4, 64], // K not a multiple of the group: portable path
      [7, 96, 70, 8, 32],
      [17, 256, 300, 4, 128], // prefill shape
      [64, 384, 260, 8, null],
      [8, 128, 50, 4, 64], // 8 rows: the widest bf16-dot block
      [9, 256, 20, 8, null], // 8 + 1 rows, int8 per channel
      [4, 320, 31, 4, 64],
      [2, 75, 6, 4, 25], // odd K (int4): the last byte holds one value
      [1, 77, 5, 4, null],
    ];
    const kernels = nb.quantKernels();
    let seed = 10;
    for (const [M, K, N, bits, group] of cases)
      for (const sd of ['float32', 'bfloat16'] as const)
        for (const withBias of [false, true]) {
          const q = quantizeWeight(fromArray(randn([N, K], seed++, 0.05), [N, K]), bits, group, sd);
          const x = fromArray(randn([M, K], seed++), [M, K]);
          const bias = withBias ? fromArray(randn([N], seed++), [N]) : null;
          const ref = floatActivations(() =>
            withBackend('ref', () => noGrad(() => quantLinear(x, q, bias))),
          ).toFloat32();
          // The bf16-dot kernel rounds x to bf16 (products of bf16 x and small integers are exact in float32).
          const xb = fromArray(roundBf16(x.toFloat32()), [M, K]);
          const refBf16x = floatActivations(() =>
            withBackend('ref', () => noGrad(() => quantLinear(xb, q, bias))),
          ).toFloat32();
          // quantLinear's default: int8 activations up to 8 rows (the same op on both backends).
          const refAuto = withBackend('ref', () => noGrad(() => quantLinear(x, q, bias))).toFloat32();
          const bf16Fits = kernels.avx512bf16 && K % q.groupSize === 0 && q.groupSize % (bits === 4 ? 64 : 32) === 0;
          const label = `M=${M} K=${K} N=${N} int${bits} group=${group} scale=${sd} bias=${withBias}`;
          for (const portable of [false, true]) {
            nb.quantPortable(portable);
            try {
              for (const path of ['decode', 'decode-bf16', 'gemm'] as const) {
                const out = new Float32Array(M * N);
                nb.qmatmul('float32', {
                  x: x.buf() as Float32Array,
                  M,
                  K,
                  N,
                  packed: q.packed.buf() as Int32Array,
                  bits,
                  scale: q.scale.buf(),
                  scaleDtype: sd,
                  groupSize: q.groupSize,
                  bias: bias ? (bias.buf() as Float32Array) : null,
                  out,
                  path,
                });
                const what = `${label} ${path}${portable ? ' portable' : ''}`;
                if (path === 'decode-bf16' && bf16Fits && !portable)
                  expect(maxRelDiff(out, refBf16x), what).toBeLessThan(2e-5);
                else if (path === 'decode-bf16')
                  expect(maxRelDiff(out, ref), what).toBeLessThan(2e-5); // float32 kernel
                else {
                  // The GEMM path computes in bf16 (x and dequantised W rounded, float32 sums) like the bf16 model.
                  const tol = path === 'gemm' ? 1e-2 : 2e-5;
                  expect(maxRelDiff(out, ref), what).toBeLessThan(tol);
                }
              }
            } finally {
              nb.quantPortable(false);
            }
          }
          const auto = withBackend('native', () => noGrad(() => quantLinear(x, q, bias))).toFloat32();
          // Auto: int8 activations up to 8 rows (the reference does the same math), the GEMM path above.
          if (M <= 8) expect(maxRelDiff(auto, refAuto), label).toBeLessThan(2e-5);
          else expect(maxRelDiff(auto, ref), label).toBeLessThan(1e-2);
          const autoFloat = floatActivations(() => withBackend('native', () => noGrad(() => quantLinear(x, q, bias))));
          // With float activations: the bf16-dot decode kernel up to 8 rows where it fits.
          if (M <= 8) expect(maxRelDiff(autoFloat.toFloat32(), bf16Fits ? refBf16x : ref), label).toBeLessThan(2e-5);
        }
  });
});

describe('int8 activations (quantLinear up to 8 rows)', () => {
  it('quantises per row and group with round-half-even, as hand-computed', () => {
    // amax 127 → scale 1, xq = rint(x): 63.5 → 64, 2.5 → 2, −0.5 → −0, 1.5 → 2; the second group is scaled on its own.
    const x = [127, 63.5, -0.5, 1.5, 2.5, -3, 0.5, 1, 0, 0];
    const { q, scale, groups } = quantizeActivations(x, 1, 10, 5);
    expect(groups).toBe(2);
    expect(Array.from(q.subarray(0, 5))).toEqual([127, 64, 0, 2, 2]);
    expect(scale[0]).toBe(1);
    // second group: amax 3 → inv = fround(127 / 3), xq = rint(fround(x · inv)) = −127, 21, 42, 0, 0
    expect(Array.from(q.subarray(5))).toEqual([-127, 21, 42, 0, 0]);
    expect(scale[1]).toBe(Math.fround(3 / 127));
    // A NaN in a group makes that group's scale NaN (its products NaN); a zero group has scale 0.
    const nan = quantizeActivations([1, Number.NaN, 0, 0], 1, 4, 2);
    expect(Number.isNaN(nan.scale[0])).toBe(true);
    expect(nan.scale[1]).toBe(0);
  });

  it('prefetching the streamed weight changes no result (bf16 GEMV, int8, int4), and the knob checks its range', () => {
    const nb = nativeBackend()!;
    const [N, K] = [37, 4096];
    const w = fromArray(randn([N, K], 80, 0.05), [N, K]);
    const wb = w.to('bfloat16');
    const q4 = quantizeWeight(w, 4, 128, 'bfloat16');
    const q8 = quantizeWeight(w, 8, null, 'bfloat16');
    const x = fromArray(randn([3, K], 81), [3, K]);
    const run = () =>
      [F.linear(x.slice(0, 0, 1), wb), quantLinear(x, q4), quantLinear(x, q8)].map((t) => t.toFloat32());
    const prev = nb.setStreamPrefetch(0);
    try {
      expect(prev).toBe(4096);
      const off = withBackend('native', () => noGrad(run));
      for (const bytes of [64, 4096, 65536]) {
        nb.setStreamPrefetch(bytes);
        const on = withBackend('native', () => noGrad(run));
        for (let i = 0; i < 3; i++) expect(on[i], `${bytes} bytes, product ${i}`).toEqual(off[i]);
      }
      expect(() => nb.setStreamPrefetch(-1)).toThrow(/bytes must be in/);
      expect(() => nb.setStreamPrefetch(2 ** 21)).toThrow(/bytes must be in/);
    } finally {
      nb.setStreamPrefetch(prev);
    }
  });

  it('the op uses int8 activations up to 8 rows (groups of 128 or the weight group) and float x above', () => {
    expect(activationGroup(128, 4096)).toBe(128);
    expect(activationGroup(64, 4096)).toBe(64);
    expect(activationGroup(4096, 4096)).toBe(128); // per channel
    expect(activationGroup(13696, 13696)).toBe(128);
    expect(activationGroup(256, 4096)).toBe(128);
    expect(activationGroup(192, 4096)).toBe(192);
    const [N, K] = [12, 256];
    const q = quantizeWeight(fromArray(randn([N, K], 70, 0.05), [N, K]), 4, 128, 'bfloat16');
    for (const M of [QUANT_ACT_MAX_ROWS, QUANT_ACT_MAX_ROWS + 1]) {
      const x = fromArray(randn([M, K], 71 + M), [M, K]);
      const got = withBackend('ref', () => noGrad(() => quantLinear(x, q))).toFloat32();
      const args = (actGroup: number | null) => {
        const out = new Float32Array(M * N);
        qmatmulRef({
          x: x.toFloat32(),
          M,
          K,
          N,
          packed: q.packed.buf() as Int32Array,
          bits: 4,
          scale: q.scale.buf(),
          scaleDtype: 'bfloat16',
          groupSize: 128,
          bias: null,
          out,
          actGroup,
        });
        return out;
      };
      expect(maxRelDiff(got, args(M <= QUANT_ACT_MAX_ROWS ? 128 : null)), `M=${M}`).toBe(0);
      expect(maxRelDiff(got, args(M <= QUANT_ACT_MAX_ROWS ? null : 128)), `M=${M}`).toBeGreaterThan(1e-5);
    }
  });

  it('native VNNI and portable kernels match the reference: 1-9 rows, int4/int8, group sizes, odd K tails', () => {
    expect(availableBackends(), `native backend failed to load: ${nativeLoadError()}`).toContain('native');
    const nb = nativeBackend()!;
    const cases: Array<[number, number, number, QuantBits, number | null]> = [
      [1, 256, 40, 4, 128],
      [2, 4096, 24, 4, 128], // 9B widths
      [3, 4096, 16, 8, null],
      [4, 320, 9, 4, 64], // groups of 64: 64-input chunks
      [5, 96, 21, 4, 32],
      [6, 384, 13, 4, 192], // weight group not a multiple of 128: activation group 192
      [7, 512, 8, 4, 256], // two activation groups per weight group
      [8, 250, 21, 4, 250], // per channel, K = 250: groups of 128 and a 122 tail
      [9, 190, 33, 8, null], // 8 + 1 rows, per channel with a 62 tail
      [1, 200, 17, 4, 128], // last group 72 inputs
      [2, 99, 7, 8, 33], // odd groups (int8)
      [3, 130, 5, 4, 130], // per channel, K = 130: a 2-input tail
      [2, 75, 6, 4, 25], // odd K and odd groups (int4): the portable kernel, the last byte holding one value
      [1, 13696, 8, 8, null], // down_proj width
    ];
    let seed = 300;
    const best = nb.quantKernels().int8[0];
    const kernels = int8KernelsHere(nb);
    for (const [M, K, N, bits, group] of cases)
      for (const sd of ['float32', 'bfloat16'] as const) {
        const q = quantizeWeight(fromArray(randn([N, K], seed++, 0.05), [N, K]), bits, group, sd);
        const xf = randn([M, K], seed++);
        // A large activation in one group: its own scale keeps the other groups' resolution.
        xf[Math.floor(K / 3)] = 40;
        const x = fromArray(xf, [M, K]);
        const bias = fromArray(randn([N], seed++), [N]);
        const ag = activationGroup(q.groupSize, K);
        const args = {
          x: xf,
          M,
          K,
          N,
          packed: q.packed.buf() as Int32Array,
          bits,
          scale: q.scale.buf(),
          scaleDtype: sd,
          groupSize: q.groupSize,
          bias: bias.buf() as Float32Array,
          actGroup: ag,
        };
        // The reference op's int8-activation math (quantLinear itself asks for it up to 8 rows only).
        const ref = new Float32Array(M * N);
        qmatmulRef({ ...args, out: ref });
        if (M <= QUANT_ACT_MAX_ROWS)
          expect(withBackend('ref', () => noGrad(() => quantLinear(x, q, bias))).toFloat32()).toEqual(ref);
        const label = `M=${M} K=${K} N=${N} int${bits} group=${group} act group=${ag} scale=${sd}`;
        for (const kernel of kernels) {
          expect(nb.quantInt8Kernel(kernel), kernel).toBe(true);
          try {
            const out = new Float32Array(M * N);
            nb.qmatmul('float32', { ...args, out });
            const name = kernel === 'auto' ? `auto (${best})` : kernel;
            expect(maxRelDiff(out, ref), `${label} ${name}`).toBeLessThan(2e-5);
          } finally {
            nb.quantInt8Kernel('auto');
          }
        }
        // The activation quantisation's error against float x: at most half a step per input, Σ_k |w| · sx / 2.
        const exact = floatActivations(() =>
          withBackend('ref', () => noGrad(() => quantLinear(x, q, bias))),
        ).toFloat32();
        const w = dequantizeWeight(q).toFloat32();
        const { scale: sx, groups } = quantizeActivations(xf, M, K, ag);
        for (let m = 0; m < M; m++)
          for (let n = 0; n < N; n++) {
            let bound = 0;
            for (let k = 0; k < K; k++) bound += (Math.abs(w[n * K + k]!) * sx[m * groups + Math.floor(k / ag)]!) / 2;
            expect(Math.abs(ref[m * N + n]! - exact[m * N + n]!), label).toBeLessThanOrEqual(bound * (1 + 1e-5) + 1e-6);
          }
      }
  });

  it('the AVX-512 activation quantiser writes the same bytes as the scalar one: identical outputs, ties, NaN and ±inf included', (ctx) => {
    const nb = nativeBackend();
    if (!nb?.quantScalarActivations(false)) {
      ctx.skip(); // no AVX-512: only the scalar form runs
      return;
    }
    const rng = new Rng(93);
    for (const [bits, group, K] of [
      [4, 128, 512],
      [4, 128, 200], // a short last group and chunk
      [4, 32, 96],
      [8, null, 4096],
      [8, null, 130],
      [8, 64, 192],
    ] as Array<[QuantBits, number | null, number]>) {
      const N = 24;
      const q = quantizeWeight(fromArray(randn([N, K], 94 + K, 0.05), [N, K]), bits, group, 'bfloat16');
      for (const M of [1, 3]) {
        const xf = new Float32Array(M * K);
        for (let i = 0; i < xf.length; i++) {
          const r = rng.random();
          // Halves on a 127-amax grid round half to even; the rest random, with zeros, −0, NaN and ±inf sprinkled.
          xf[i] =
            r < 0.3 ? Math.round(rng.random() * 254 - 127) + 0.5 : r < 0.35 ? (r < 0.325 ? 0 : -0) : rng.normal(0, 30);
        }
        xf[0] = 127;
        if (M > 1) {
          xf[K + 5] = Number.NaN;
          xf[2 * K + 7] = Number.POSITIVE_INFINITY;
          xf[2 * K + 9] = Number.NEGATIVE_INFINITY;
        }
        for (const kernel of ['auto', 'portable'] as Int8Kernel[]) {
          nb.quantInt8Kernel(kernel);
          try {
            const run = (scalar: boolean) => {
              nb.quantScalarActivations(scalar);
              return withBackend('native', () => noGrad(() => quantLinear(fromArray(xf, [M, K]), q))).toFloat32();
            };
            const vec = run(false);
            const scalar = run(true);
            expect(Array.from(vec), `int${bits} g${group} K ${K} M ${M} ${kernel}`).toEqual(Array.from(scalar));
          } finally {
            nb.quantScalarActivations(false);
            nb.quantInt8Kernel('auto');
          }
        }
      }
    }
  });

  it('a NaN input gives NaN outputs on the native kernels, as on the reference', () => {
    const nb = nativeBackend()!;
    const [M, K, N] = [2, 256, 5];
    const q = quantizeWeight(fromArray(randn([N, K], 90, 0.05), [N, K]), 8, null, 'bfloat16');
    const xf = randn([M, K], 91);
    xf[3] = Number.NaN;
    const kernels = int8KernelsHere(nb);
    for (const kernel of kernels) {
      nb.quantInt8Kernel(kernel);
      try {
        const y = withBackend('native', () => noGrad(() => quantLinear(fromArray(xf, [M, K]), q))).toFloat32();
        expect(Array.from(y.subarray(0, N)).every(Number.isNaN), kernel).toBe(true); // the row with the NaN
        expect(Array.from(y.subarray(N)).every(Number.isFinite), kernel).toBe(true);
      } finally {
        nb.quantInt8Kernel('auto');
      }
    }
  });
});
