/**
 * Float32 results computed in another order (micro-batches, other GEMM kernels, another CPU's ISA) differ by
 * rounding that grows with the magnitude of what was summed, so they are compared relative to the scale of the
 * expected values, never with an absolute tolerance.
 */

/** max |actual − expected| over the largest |expected| (0 when both are all zeros). */
export function maxRelDiff(actual: ArrayLike<number>, expected: ArrayLike<number>): number {
  if (actual.length !== expected.length)
    throw new Error(`maxRelDiff: lengths differ (${actual.length} vs ${expected.length})`);
  let diff = 0;
  let scale = 0;
  for (let i = 0; i < expected.length; i++) {
    diff = Math.max(diff, Math.abs((actual[i] as number) - (expected[i] as number)));
    scale = Math.max(scale, Math.abs(expected[i] as number));
  }
  if (Number.isNaN(diff)) return Number.NaN;
  return diff === 0 ? 0 : diff / Math.max(scale, Number.MIN_VALUE);
}

/** |actual − expected| relative to |expected| (to `floor` for expected values near zero). */
export function relDiff(actual: number, expected: number, floor = 1): number {
  return Math.abs(actual - expected) / Math.max(Math.abs(expected), floor);
}
