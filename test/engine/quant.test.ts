/**
 * Weight-only quantisation: the packed layout against hand-computed compressed-tensors words, the quantisation
 * error bound, and the native int4/int8 kernels (decode, GEMM and portable paths) against the reference backend.
 * The float32 decode path accumulates in float32 (tight tolerance); the bf16-dot decode path rounds x to bf16 and is
 * compared tightly with the reference on that rounded x; the GEMM path rounds x and W to bf16 as the bf16 model's
 * GEMM does, so it is compared at bf16 precision.
 */
import { describe, expect, it } from 'vitest';
import { nativeBackend } from '../../src/engine/backends/native/index.js';
import {
  availableBackends,
  dequantizeWeight,
  F,
  fromArray,
  Linear,
  nativeLoadError,
  noGrad,
  type QuantBits,
  QuantLinear,
  quantizeWeight,
  quantLinear,
  tensor,
  withBackend,
} from '../../src/engine/index.js';
import { Rng } from '../../src/util/rng.js';

function randn(shape: number[], seed: number, scale = 1): Float32Array {
  const r = new Rng(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = r.normal(0, scale);
  return out;
}

function maxRel(a: Float32Array | Float64Array, b: Float32Array | Float64Array): number {
  let scale = 1e-6;
  for (const v of b) scale = Math.max(scale, Math.abs(v));
  let err = 0;
  for (let i = 0; i < a.length; i++) err = Math.max(err, Math.abs(a[i]! - b[i]!) / scale);
  return err;
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
      const err = maxRel(y, ref);
      expect(err).toBeGreaterThan(0);
      expect(err).toBeLessThan(tol);
    }
    const ql = QuantLinear.fromLinear(lin, 4, 64);
    const xg = fromArray(randn([2, 128], 5), [2, 128]).requireGrad();
    ql.forward(xg).sum().backward();
    const expected = F.sum(dequantizeWeight(ql.quantized), 0).toFloat32();
    expect(maxRel(xg.grad!.toFloat32().subarray(0, 128), expected)).toBeLessThan(1e-6);
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
    ];
    const kernels = nb.quantKernels();
    let seed = 10;
    for (const [M, K, N, bits, group] of cases)
      for (const sd of ['float32', 'bfloat16'] as const)
        for (const withBias of [false, true]) {
          const q = quantizeWeight(fromArray(randn([N, K], seed++, 0.05), [N, K]), bits, group, sd);
          const x = fromArray(randn([M, K], seed++), [M, K]);
          const bias = withBias ? fromArray(randn([N], seed++), [N]) : null;
          const ref = withBackend('ref', () => noGrad(() => quantLinear(x, q, bias))).toFloat32();
          // The bf16-dot kernel rounds x to bf16 (products of bf16 x and small integers are exact in float32).
          const xb = fromArray(roundBf16(x.toFloat32()), [M, K]);
          const refBf16x = withBackend('ref', () => noGrad(() => quantLinear(xb, q, bias))).toFloat32();
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
                  expect(maxRel(out, refBf16x), what).toBeLessThan(2e-5);
                else if (path === 'decode-bf16')
                  expect(maxRel(out, ref), what).toBeLessThan(2e-5); // float32 kernel
                else {
                  // The GEMM path computes in bf16 (x and dequantised W rounded, float32 sums) like the bf16 model.
                  const tol = path === 'gemm' ? 1e-2 : 2e-5;
                  expect(maxRel(out, ref), what).toBeLessThan(tol);
                }
              }
            } finally {
              nb.quantPortable(false);
            }
          }
          const auto = withBackend('native', () => noGrad(() => quantLinear(x, q, bias))).toFloat32();
          // Auto: the bf16-dot decode kernel up to 8 rows where it fits, the GEMM path above.
          if (M <= 8) expect(maxRel(auto, bf16Fits ? refBf16x : ref), label).toBeLessThan(2e-5);
          else expect(maxRel(auto, ref), label).toBeLessThan(1e-2);
        }
  });
});
