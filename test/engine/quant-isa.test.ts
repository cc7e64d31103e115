/**
 * The quantised kernels on lesser CPUs. The engine's own AVX-512 / VNNI / BF16 kernels respect ONEDNN_MAX_CPU_ISA as
 * oneDNN does, so a child process capped at an ISA runs what such a CPU runs: AVX2 (Zen 2/3, Intel before Alder
 * Lake: the 256-bit AVX2 integer dots), AVX2_VNNI (Alder Lake: 256-bit VNNI), AVX512_CORE (Skylake-SP: AVX-512
 * without VNNI or BF16, the 512-bit AVX512BW integer dots). Each must choose those kernels and give the reference
 * backend's results, for int8 and int4 weights, int8 and float activations, decode and prefill shapes.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { QuantKernels } from '../../src/engine/backends/native/backend.js';
import { nativeBackend } from '../../src/engine/backends/native/index.js';
import { noGrad, withBackend } from '../../src/engine/index.js';
import { quantLinear, setQuantActivations } from '../../src/engine/ops/quant.js';
import { runCappedIsa } from '../helpers/cappedIsa.js';
import { maxRelDiff } from '../helpers/close.js';
import { QUANT_ISA_CASES, quantIsaInputs } from '../helpers/quantCases.js';

const CHILD = `
import { noGrad, withBackend } from './src/engine/index.js';
import { nativeBackend } from './src/engine/backends/native/index.js';
import { quantLinear, setQuantActivations } from './src/engine/ops/quant.js';
import { QUANT_ISA_CASES, quantIsaInputs } from './test/helpers/quantCases.js';
const out = QUANT_ISA_CASES.map((_, i) => {
  const { q, x, bias } = quantIsaInputs(i);
  const run = (mode) => {
    const old = setQuantActivations(mode);
    try {
      return Array.from(withBackend('native', () => noGrad(() => quantLinear(x, q, bias))).toFloat32());
    } finally { setQuantActivations(old); }
  };
  return { int8: run('int8'), float: run('float') };
});
console.log(JSON.stringify({ kernels: nativeBackend().quantKernels(), out }));
`;

function runChild(isa: string) {
  return runCappedIsa<{
    kernels: QuantKernels;
    out: Array<{ int8: number[]; float: number[] }>;
  }>(isa, CHILD, null);
}

const native = nativeBackend();
describe.skipIf(!native)('quantised kernels on CPUs capped with ONEDNN_MAX_CPU_ISA', () => {
  // What this CPU has uncapped (asked of a child: the test process itself may run under a cap).
  let hw: QuantKernels;
  beforeAll(() => {
    hw = runChild('ALL').kernels;
  }, 150_000);
  const expected: Record<string, (h: QuantKernels) => QuantKernels> = {
    AVX2: (h) => ({
      avx512: false,
      avx512bf16: false,
      avx512vnni: false,
      avxvnni: false,
      avx2: h.avx2,
      int8: h.avx2 ? ['avx2', 'portable'] : ['portable'],
    }),
    AVX2_VNNI: (h) => ({
      avx512: false,
      avx512bf16: false,
      avx512vnni: false,
      avxvnni: h.avxvnni,
      avx2: h.avx2,
      int8: [...(h.avxvnni ? (['avxvnni'] as const) : []), ...(h.avx2 ? (['avx2'] as const) : []), 'portable'],
    }),
    AVX512_CORE: (h) => ({
      avx512: h.avx512,
      avx512bf16: false,
      avx512vnni: false,
      avxvnni: false,
      avx2: h.avx2,
      int8: [...(h.avx512 ? (['avx512bw'] as const) : []), ...(h.avx2 ? (['avx2'] as const) : []), 'portable'],
    }),
  };
  for (const [isa, kernels] of Object.entries(expected)) {
    it(`${isa}: the kernels such a CPU has, the reference backend's results`, () => {
      const child = runChild(isa);
      expect(child.kernels).toEqual(kernels(hw));
      QUANT_ISA_CASES.forEach((c, i) => {
        const { M, q, x, bias } = quantIsaInputs(i);
        const ref = (mode: 'int8' | 'float') => {
          const old = setQuantActivations(mode);
          try {
            return withBackend('ref', () => noGrad(() => quantLinear(x, q, bias))).toFloat32();
          } finally {
            setQuantActivations(old);
          }
        };
        // Prefill rows multiply bf16-rounded x and weights (the bf16 model's precision); decode rows are exact sums.
        const tol = M > 8 ? 1e-2 : 2e-5;
        expect(maxRelDiff(child.out[i]!.int8, ref('int8')), `${isa} ${c.join(' ')} int8 activations`).toBeLessThan(tol);
        expect(maxRelDiff(child.out[i]!.float, ref('float')), `${isa} ${c.join(' ')} float activations`).toBeLessThan(
          tol,
        );
      });
    }, 150_000);
  }
});
