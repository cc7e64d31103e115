/**
 * bf16 GEMMs on every x86 ISA. oneDNN runs bf16 × bf16 → float32 on CPUs with bf16 dot products (AVX512_BF16, AMX);
 * without them it has no bf16 matmul (AVX2: primitive creation fails) or a slow emulation (AVX-512 without BF16),
 * so the native engine widens the operands to float32 there. A child process forced to each ISA with
 * ONEDNN_MAX_CPU_ISA (what a CPU without those instructions gets) must give the products of the bf16-rounded
 * operands, accumulated in float32, in every transposition and batching layout the engine uses.
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
