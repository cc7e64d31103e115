/**
 * fp32 GEMM timing through the engine API, shared by bench:engine and its envelope child (bench/gemm-child.ts).
 */
import { randn, scope, type Tensor } from '../src/engine/index.js';

/**
 * Products for a third of the measuring time before it starts: the first calls run slower (clock ramp-up, OpenMP
 * threads waking, the buffer pool filling), and one call does not cover that. The numpy peer warms up the same way.
 * Every timed product is disposed when its scope ends (the callbacks return nothing), so its buffer goes back to the
 * pool as in a training step; a kept product would cost a fresh zeroed 4 MB buffer and its page faults per call
 * (about a fifth of the time at n = 1024).
 */
function warmGemm(a: Tensor, b: Tensor, secs: number): void {
  const t0 = performance.now();
  do
    scope(() => {
      a.matmul(b);
    });
  while (performance.now() - t0 < (secs * 1000) / 3);
}

/**
 * GFLOPS of an n × n × n float32 product, measured for `secs` of `clock` (seconds; wall-clock by default, a
 * process CPU clock gives GFLOP per CPU-second) after a warm-up.
 */
export function gemmGflops(n: number, secs: number, clock: () => number = () => performance.now() / 1000): number {
  const a = randn([n, n]);
  const b = randn([n, n]);
  warmGemm(a, b, secs);
  let it = 0;
  const t0 = clock();
  while (clock() - t0 < secs) {
    scope(() => {
      a.matmul(b);
    });
    it++;
  }
  return (2 * n ** 3 * it) / (clock() - t0) / 1e9;
}
