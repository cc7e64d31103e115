/**
 * Weight-only quantised matmul speed (npm run bench:quant): the native int8 (per channel) and int4 (group 128)
 * kernels against the bf16 GEMM the unquantised model uses, at GLM-4.1V-9B's decoder widths, in the decode shape
 * (1 and 4 rows) and a prefill shape. Each measurement interleaves the three kinds (median of rounds), so load from
 * other processes hits them alike. Prints the CPU model and ISA; one JSON line per shape goes to --metrics.
 *
 *   npm run bench:quant
 *   npm run bench:quant -- --rounds 9 --prefill 512
 */
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { nativeBackend } from '../src/engine/backends/native/index.js';
import {
  F,
  fromArray,
  getBackend,
  noGrad,
  type QuantizedWeight,
  quantizeWeight,
  quantLinear,
  scope,
  type Tensor,
} from '../src/engine/index.js';
import { MetricsWriter, Progress } from '../src/util/progress.js';
import { cpuIsa } from './cpu.js';

const here = dirname(fileURLToPath(import.meta.url));

const program = new Command()
  .name('bench:quant')
  .description('int8 / int4 weight-only matmul vs bf16 at GLM-4.1V-9B widths (decode and prefill shapes)')
  .option('--rounds <n>', 'interleaved rounds per shape (median reported)', '7')
  .option('--prefill <rows>', 'rows of the prefill shape', '256')
  .option('--metrics <file>', 'JSONL metrics file', join(here, '..', 'runs', 'bench', 'quant.jsonl'))
  .addHelpText(
    'after',
    `
Examples:
  npm run bench:quant
  npm run bench:quant -- --rounds 11 --prefill 1024`,
  );

function randomWeight(N: number, K: number, seed: number): Tensor {
  const w = new Float32Array(N * K);
  let s = seed >>> 0 || 1;
  for (let i = 0; i < w.length; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    w[i] = ((s >>> 0) / 4294967296 - 0.5) * 0.04;
  }
  return fromArray(w, [N, K]);
}

function time(fn: () => void): number {
  const t0 = performance.now();
  fn();
  return performance.now() - t0;
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;

function main(): void {
  const o = program.parse().opts<{ rounds: string; prefill: string; metrics: string }>();
  const rounds = Number(o.rounds);
  const prefill = Number(o.prefill);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${o.rounds}`);
  if (!Number.isInteger(prefill) || prefill < 1)
    throw new Error(`--prefill must be a positive integer, got ${o.prefill}`);
  console.log(
    `glmv quantised matmul bench — ${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, ISA: ${cpuIsa()}, backend ${getBackend().name}`,
  );
  const metrics = new MetricsWriter(o.metrics);
  // GLM-4.1V-9B decoder: q/o 4096², fused gate_up 27392 × 4096, down 4096 × 13696.
  const layers: Array<[string, number, number]> = [
    ['q_proj/o_proj', 4096, 4096],
    ['gate_up_proj', 27392, 4096],
    ['down_proj', 4096, 13696],
  ];
  const shapes = [1, 4, prefill];
  const bar = new Progress({ label: 'bench', total: layers.length * shapes.length });
  const rows: string[] = [];
  let done = 0;
  for (const [name, N, K] of layers) {
    const w32 = randomWeight(N, K, N + K);
    const wb = w32.to('bfloat16');
    const q8: QuantizedWeight = quantizeWeight(wb, 8, null, 'bfloat16');
    const q4: QuantizedWeight = quantizeWeight(wb, 4, 128, 'bfloat16');
    w32.dispose();
    for (const M of shapes) {
      const x = randomWeight(M, K, 7 + M);
      const kinds: Array<[string, () => void]> = [
        ['bf16', () => scope(() => void noGrad(() => F.linear(x, wb)))],
        ['int8', () => scope(() => void noGrad(() => quantLinear(x, q8)))],
        ['int4', () => scope(() => void noGrad(() => quantLinear(x, q4)))],
      ];
      // Decode shapes: the float32 unpacking kernel too (what 'auto' ran before the bf16-dot kernel), same run.
      const nb = nativeBackend();
      const f32Kernel = (q: QuantizedWeight) => {
        const out = new Float32Array(M * N);
        return () =>
          nb!.qmatmul('float32', {
            x: x.buf() as Float32Array,
            M,
            K,
            N,
            packed: q.packed.buf() as Int32Array,
            bits: q.bits,
            scale: q.scale.buf(),
            scaleDtype: q.scale.dtype as 'bfloat16',
            groupSize: q.groupSize,
            bias: null,
            out,
            path: 'decode',
          });
      };
      if (nb && M <= 8 && getBackend().name === 'native')
        kinds.push(['int8 f32', f32Kernel(q8)], ['int4 f32', f32Kernel(q4)]);
      for (const [, f] of kinds) f(); // warm-up (primitive creation, page faults)
      const ms: Record<string, number[]> = Object.fromEntries(kinds.map(([k]) => [k, []]));
      for (let r = 0; r < rounds; r++) for (const [k, f] of kinds) ms[k]!.push(time(f));
      const med = Object.fromEntries(Object.entries(ms).map(([k, v]) => [k, median(v)])) as Record<string, number>;
      const gflops = (t: number) => ((2 * M * N * K) / (t * 1e6)).toFixed(1);
      rows.push(
        `${name.padEnd(14)} ${`${N}×${K}`.padEnd(11)} M=${String(M).padEnd(5)} bf16 ${med.bf16!.toFixed(2).padStart(8)} ms` +
          ` | int8 ${med.int8!.toFixed(2).padStart(8)} ms (${(med.bf16! / med.int8!).toFixed(2)}×)` +
          ` | int4 ${med.int4!.toFixed(2).padStart(8)} ms (${(med.bf16! / med.int4!).toFixed(2)}×)` +
          `  [GFLOPS ${gflops(med.bf16!)} / ${gflops(med.int8!)} / ${gflops(med.int4!)}]` +
          (med['int8 f32'] !== undefined
            ? ` | float32 kernel: int8 ${(med.bf16! / med['int8 f32']!).toFixed(2)}×, int4 ${(med.bf16! / med['int4 f32']!).toFixed(2)}×`
            : ''),
      );
      metrics.write({
        layer: name,
        N,
        K,
        M,
        bf16_ms: med.bf16,
        int8_ms: med.int8,
        int4_ms: med.int4,
        int8_speedup: med.bf16! / med.int8!,
        int4_speedup: med.bf16! / med.int4!,
        int8_f32_kernel_ms: med['int8 f32'],
        int4_f32_kernel_ms: med['int4 f32'],
        cpu: cpus()[0]?.model,
        isa: cpuIsa(),
      });
      x.dispose();
      bar.update(++done);
    }
    wb.dispose();
  }
  bar.stop();
  console.log(rows.join('\n'));
  console.log('speed-up = bf16 time / quantised time (> 1: the quantised kernel is faster)');
}

main();
