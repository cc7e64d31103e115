/**
 * The quantised-kernel cases of test/engine/quant-isa.test.ts, shared by the test and the capped child process it
 * starts, so that both build the same weights and inputs from one definition.
 */
import { fromArray } from '../../src/engine/index.js';
import { type QuantBits, quantizeWeight } from '../../src/engine/ops/quant.js';
import { Rng } from '../../src/util/rng.js';

// [M, K, N, bits, group]: decode rows (int8 activations up to 8 rows), a prefill block, per-channel and grouped.
export const QUANT_ISA_CASES: Array<[number, number, number, QuantBits, number | null]> = [
  [1, 256, 40, 4, 128],
  [3, 192, 17, 8, null],
  [2, 75, 6, 4, 25],
  [5, 320, 31, 4, 64],
  [2, 200, 9, 4, 40], // int4 groups of 40: chunks cut by the group's end
  [17, 256, 30, 8, 64],
];

/** Case i's quantised weight, input rows and bias (seeded by i). */
export function quantIsaInputs(i: number) {
  const [M, K, N, bits, group] = QUANT_ISA_CASES[i]!;
  const r = new Rng(500 + i);
  const w = Float32Array.from({ length: N * K }, () => r.normal(0, 0.05));
  const x = Float32Array.from({ length: M * K }, () => r.normal(0, 1));
  const bias = Float32Array.from({ length: N }, () => r.normal(0, 1));
  const q = quantizeWeight(fromArray(w, [N, K]), bits, group, 'bfloat16');
  return { M, K, N, q, x: fromArray(x, [M, K]), bias: fromArray(bias, [N]) };
}
