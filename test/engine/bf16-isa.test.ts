/**
 * bf16 GEMMs on every x86 ISA. oneDNN runs bf16 × bf16 → float32 on CPUs with bf16 dot products (AVX512_BF16, AMX);
 * without them it has no bf16 matmul (AVX2: primitive creation fails) or a slow emulation (AVX-512 without BF16),
 * so the native engine widens the operands to float32 there. A child process forced to each ISA with
 * ONEDNN_MAX_CPU_ISA (what a CPU without those instructions gets) must give the products of the bf16-rounded
 * operands, accumulated in float32, in every transposition and batching layout the engine uses, and in the decode
 * shape (a few rows against a weight) that the GEMV kernels take.
 */
import { describe, expect, it } from 'vitest';
import { availableBackends, bf16ToF32, f32ToBf16 } from '../../src/engine/index.js';
import { runCappedIsa } from '../helpers/cappedIsa.js';

// Seeded operands: [batch, m, k] and [batch, k, n] (b broadcast over the batch in the last case), as float32.
const SHAPES = [
  { name: 'plain', batch: 1, m: 37, k: 65, n: 29, ta: false, tb: false, bBroadcast: false },
  { name: 'a transposed', batch: 1, m: 19, k: 40, n: 23, ta: true, tb: false, bBroadcast: false },
  { name: 'b transposed, batched', batch: 3, m: 11, k: 33, n: 17, ta: false, tb: true, bBroadcast: false },
  { name: 'batched, b broadcast', batch: 4, m: 9, k: 21, n: 13, ta: false, tb: false, bBroadcast: true },
  // Decode rows against a [n, k] weight: the bf16 GEMV kernels (AVX512-BF16, or AVX2 + FMA), k with a tail.
  { name: 'decode, 3 rows', batch: 1, m: 3, k: 70, n: 29, ta: false, tb: true, bBroadcast: false },
  { name: 'decode, 1 row', batch: 1, m: 1, k: 160, n: 40, ta: false, tb: true, bBroadcast: false },
  { name: 'decode, 7 rows', batch: 1, m: 7, k: 33, n: 18, ta: false, tb: true, bBroadcast: false },
] as const;

const CHILD = `
import { getBackend, randn, manualSeed } from './src/engine/index.js';
import { matmul, setMatmulPrecision } from './src/engine/ops/matmul.js';
const shapes = JSON.parse(process.argv[1]);
setMatmulPrecision('bfloat16');
const out = [];
for (const s of shapes) {
  manualSeed(s.seed);
  const a0 = randn(s.ta ? [s.batch, s.k, s.m] : [s.batch, s.m, s.k]);
  const b0 = randn(s.tb ? [s.bBroadcast ? 1 : s.batch, s.n, s.k] : [s.bBroadcast ? 1 : s.batch, s.k, s.n]);
  const a = s.ta ? a0.mT : a0;
  const b = s.tb ? b0.mT : b0;
  out.push({ a: Array.from(a0.toFloat32()), b: Array.from(b0.toFloat32()), c: Array.from(matmul(a, b).toFloat32()) });
}
console.log(JSON.stringify({ info: getBackend().info(), out }));
`;

function runChild(isa: string) {
  const shapes = SHAPES.map((s, i) => ({ ...s, seed: 100 + i }));
  return runCappedIsa<{
    info: { isa: number; bf16Gemm: string };
    out: Array<{ a: number[]; b: number[]; c: number[] }>;
  }>(isa, CHILD, shapes);
}

const round = (x: number) => bf16ToF32(f32ToBf16(x));

/** C = op(A)·op(B) from the stored (untransposed-layout) operands, bf16-rounded, in float64. */
function reference(s: (typeof SHAPES)[number], a: number[], b: number[]): Float64Array {
  const c = new Float64Array(s.batch * s.m * s.n);
  for (let p = 0; p < s.batch; p++) {
    const pb = s.bBroadcast ? 0 : p;
    for (let i = 0; i < s.m; i++)
      for (let j = 0; j < s.n; j++) {
        let acc = 0;
        for (let q = 0; q < s.k; q++) {
          const av = s.ta ? a[p * s.k * s.m + q * s.m + i]! : a[p * s.m * s.k + i * s.k + q]!;
          const bv = s.tb ? b[pb * s.n * s.k + j * s.k + q]! : b[pb * s.k * s.n + q * s.n + j]!;
          acc += round(av) * round(bv);
        }
        c[p * s.m * s.n + i * s.n + j] = acc;
      }
  }
  return c;
}

describe.skipIf(!availableBackends().includes('native'))('bf16 GEMM on every x86 ISA', () => {
  // AVX2 and AVX512_CORE run on any machine that can run the addon; the default ISA is whatever this CPU has.
  for (const isa of ['AVX2', 'AVX512_CORE', 'ALL']) {
    it(`ONEDNN_MAX_CPU_ISA=${isa}: products of the bf16-rounded operands, float32 accumulation`, () => {
      const { info, out } = runChild(isa);
      if (isa !== 'ALL') expect(info.bf16Gemm).toBe('f32-widened');
      SHAPES.forEach((s, i) => {
        const { a, b, c } = out[i]!;
        const want = reference(s, a, b);
        let scale = 0;
        let diff = 0;
        for (let j = 0; j < want.length; j++) {
          scale = Math.max(scale, Math.abs(want[j]!));
          diff = Math.max(diff, Math.abs(c[j]! - want[j]!));
        }
        // float32 accumulation of k bf16 products: rounding relative to the scale of the result.
        expect(diff / scale, `${s.name} (${info.bf16Gemm})`).toBeLessThan(1e-5);
      });
    }, 150_000);
  }
});

// A large B (a weight of more than 2^20 values) is widened a block of columns at a time where the CPU has no bf16
// GEMM: blocks of a few hundred columns, the last one short. The child checks against the bf16-rounded float64
// product itself (the operands are too large to send back).
const LARGE = `
import { randn, manualSeed, bf16ToF32, f32ToBf16 } from './src/engine/index.js';
import { matmul } from './src/engine/ops/matmul.js';
const cases = JSON.parse(process.argv[1]);
const r = (x) => bf16ToF32(f32ToBf16(x));
const out = [];
for (const s of cases) {
  manualSeed(s.seed);
  const a = randn([s.batch, s.m, s.k]).to('bfloat16');
  const b0 = randn(s.tb ? [1, s.n, s.k] : [1, s.k, s.n]).to('bfloat16');
  const c = matmul(a, s.tb ? b0.mT : b0).toFloat32();
  const A = a.toFloat32(), B = b0.toFloat32();
  let scale = 0, diff = 0;
  for (let p = 0; p < s.batch; p++)
    for (let i = 0; i < s.m; i++)
      for (let j = 0; j < s.n; j++) {
        let acc = 0;
        for (let q = 0; q < s.k; q++) acc += r(A[(p * s.m + i) * s.k + q]) * r(s.tb ? B[j * s.k + q] : B[q * s.n + j]);
        scale = Math.max(scale, Math.abs(acc));
        diff = Math.max(diff, Math.abs(c[(p * s.m + i) * s.n + j] - acc));
      }
  out.push(diff / scale);
}
console.log(JSON.stringify(out));
`;

describe.skipIf(!availableBackends().includes('native'))('bf16 GEMM with a large weight on CPUs without bf16', () => {
  for (const isa of ['AVX2', 'AVX512_CORE']) {
    it(`ONEDNN_MAX_CPU_ISA=${isa}: column blocks of the widened weight give the full product`, () => {
      const cases = [
        { batch: 1, m: 9, k: 4100, n: 1100, tb: true, seed: 7 }, // [n, k] weight: 3 blocks (496, 496, 108)
        { batch: 2, m: 10, k: 4100, n: 300, tb: false, seed: 8 }, // [k, n], batched A, broadcast B
      ];
      const errs = runCappedIsa<number[]>(isa, LARGE, cases);
      for (const [i, e] of errs.entries()) expect(e, `case ${i}`).toBeLessThan(1e-5);
    }, 150_000);
  }
});
