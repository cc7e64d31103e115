/**
 * One process of bench:engine's envelope measurement (section 1c): waits until GEMM_START_AT (ms since the epoch),
 * so that the processes started side by side measure at the same time, then prints {"n": GFLOPS} for one n × n × n
 * float32 product. Run with OMP_NUM_THREADS=1. Usage: tsx bench/gemm-child.ts SECONDS N
 */
import { gemmGflops } from './gemm-timing.js';

const [secs, n] = process.argv.slice(2).map(Number);
if (!(secs! > 0) || !(n! > 0)) {
  console.error('usage: tsx bench/gemm-child.ts SECONDS N (with GEMM_START_AT=epoch ms, OMP_NUM_THREADS=1)');
  process.exit(2);
}
const startAt = Number(process.env.GEMM_START_AT ?? 0);
while (Date.now() < startAt) await new Promise((r) => setTimeout(r, 5));
console.log(JSON.stringify({ [String(n)]: gemmGflops(n!, secs!) }));
