/**
 * Weight-only quantised matmul speed (npm run bench:quant): the native int8 (per channel) and int4 (group 128)
 * kernels against the bf16 GEMM / GEMV the unquantised model uses, at GLM-4.1V-9B's decoder widths (and its lm_head
 * with --lm-head), in decode shapes (--rows, default 1, 4 and 8) and a prefill shape. At decode shapes quantLinear
 * quantises x to int8 (integer dots, VNNI); the float-activation kernel it replaced ('decode-bf16') is timed in the
 * same rounds. Each measurement interleaves the kinds (median of rounds), so load from other processes hits them
 * alike; wall time and process CPU time (all threads) are both reported — on a shared machine the CPU time is the
 * load-independent cost. Prints the CPU model and ISA; one JSON line per shape goes to --metrics.
 *
 *   npm run bench:quant
 *   npm run bench:quant -- --rounds 9 --prefill 512 --lm-head
 */
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import type { Int8Kernel } from '../src/engine/backends/native/backend.js';
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
  .option('--prefill <rows>', 'rows of the prefill shape (0: none)', '256')
  .option('--rows <list>', 'decode shapes: rows of x', '1,4,8')
  .option('--lm-head', "GLM-4.1V-9B's lm_head too (151552 × 4096; slow to quantise)")
  .option('--metrics <file>', 'JSONL metrics file', join(here, '..', 'runs', 'bench', 'quant.jsonl'))
  .addHelpText(
    'after',
    `
Examples:
  npm run bench:quant
  npm run bench:quant -- --rounds 11 --prefill 1024
  npm run bench:quant -- --rows 1 --prefill 0 --lm-head`,
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

/** [wall ms, CPU ms of this process, all threads] of one call. */
function time(fn: () => void): [number, number] {
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  fn();
  const wall = performance.now() - t0;
  const c = process.cpuUsage(c0);
  return [wall, (c.user + c.system) / 1000];
}

const median = (a: number[]) => [...a].sort((x, y) => x - y)[Math.floor(a.length / 2)] as number;

function main(): void {
  const o = program
    .parse()
    .opts<{ rounds: string; prefill: string; rows: string; lmHead?: boolean; metrics: string }>();
  const rounds = Number(o.rounds);
  const prefill = Number(o.prefill);
  if (!Number.isInteger(rounds) || rounds < 1) throw new Error(`--rounds must be a positive integer, got ${o.rounds}`);
  if (!Number.isInteger(prefill) || prefill < 0)
    throw new Error(`--prefill must be a non-negative integer, got ${o.prefill}`);
  const decodeRows = o.rows.split(',').map(Number);
  if (decodeRows.some((m) => !Number.isInteger(m) || m < 1 || m > 8))
    throw new Error(`--rows: expected a comma-separated list of 1..8, got ${o.rows}`);
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
  if (o.lmHead) layers.push(['lm_head', 151552, 4096]);
  const shapes = prefill > 0 ? [...decodeRows, prefill] : decodeRows;
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
      // Decode shapes: the float-activation kernel (bf16-rounded x, what 'auto' ran before int8 activations), same run.
      const nb = nativeBackend();
      const floatKernel = (q: QuantizedWeight) => {
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
            path: 'decode-bf16',
          });
      };
      if (nb && M <= 8 && getBackend().name === 'native')
        kinds.push(['int8 xf', floatKernel(q8)], ['int4 xf', floatKernel(q4)]);
      // The vector kernels this CPU runs besides its default, forced, same run: where AVX512-VNNI is the default, those of
      // CPUs without it — AVX512BW (Skylake-SP), AVX-VNNI (Alder Lake), AVX2 (Zen 2/3, Intel before Alder Lake).
      if (nb && M <= 8 && getBackend().name === 'native') {
        const forced = (kernel: Int8Kernel, q: QuantizedWeight) => () => {
          nb.quantInt8Kernel(kernel);
          try {
            scope(() => void noGrad(() => quantLinear(x, q)));
          } finally {
            nb.quantInt8Kernel('auto');
          }
        };
        for (const kernel of nb.quantKernels().int8.slice(1))
          if (kernel !== 'portable')
            kinds.push([`int8 ${kernel}`, forced(kernel, q8)], [`int4 ${kernel}`, forced(kernel, q4)]);
        // The default kernels without the software prefetch of the streamed weight, same run (what it gains).
        const noPrefetch = (f: () => void) => () => {
          const prev = nb.setStreamPrefetch(0);
          try {
            f();
          } finally {
            nb.setStreamPrefetch(prev);
          }
        };
        kinds.push(...kinds.slice(0, 3).map(([k, f]): [string, () => void] => [`${k} nopf`, noPrefetch(f)]));
      }
      for (const [, f] of kinds) f(); // warm-up (primitive creation, page faults)
      const wall: Record<string, number[]> = Object.fromEntries(kinds.map(([k]) => [k, []]));
      const cpu: Record<string, number[]> = Object.fromEntries(kinds.map(([k]) => [k, []]));
      for (let r = 0; r < rounds; r++)
        for (const [k, f] of kinds) {
          const [w, c] = time(f);
          wall[k]!.push(w);
          cpu[k]!.push(c);
        }
      const med = (t: Record<string, number[]>) =>
        Object.fromEntries(Object.entries(t).map(([k, v]) => [k, median(v)])) as Record<string, number>;
      const mw = med(wall);
      const mc = med(cpu);
      const bytes = (kind: string) =>
        kind.startsWith('bf16') ? 2 * N * K : kind.startsWith('int8') ? N * K : (N * K) / 2;
      const fmtKind = (k: string) =>
        `${k} ${mw[k]!.toFixed(2)} ms / ${mc[k]!.toFixed(2)} CPU-ms` +
        (k === 'bf16' ? '' : ` (${(mw.bf16! / mw[k]!).toFixed(2)}× / ${(mc.bf16! / mc[k]!).toFixed(2)}× CPU)`) +
        ` ${(bytes(k) / (mc[k]! * 1e6)).toFixed(1)} GB/CPU-s`;
      rows.push(
        `${name.padEnd(14)} ${`${N}×${K}`.padEnd(12)} M=${String(M).padEnd(5)} ${kinds.map(([k]) => fmtKind(k)).join(' | ')}`,
      );
      metrics.write({
        layer: name,
        N,
        K,
        M,
        wall_ms: mw,
        cpu_ms: mc,
        int8_speedup_cpu: mc.bf16! / mc.int8!,
        int4_speedup_cpu: mc.bf16! / mc.int4!,
        int8_speedup_wall: mw.bf16! / mw.int8!,
        int4_speedup_wall: mw.bf16! / mw.int4!,
        cpu: cpus()[0]?.model,
        isa: cpuIsa(),
        loadavg: loadavg(),
      });
      x.dispose();
      bar.update(++done);
    }
    wb.dispose();
  }
  bar.stop();
  console.log(rows.join('\n'));
  console.log(
    'speed-up = bf16 time / quantised time, wall / CPU (> 1: the quantised kernel is faster); int8 / int4 = quantLinear (int8 activations up to 8 rows), "xf" = float-activation decode kernel, "avx512bw" / "avxvnni" / "avx2" = the integer kernels of CPUs without AVX512-VNNI (Skylake-SP / Alder Lake / Zen 2-3), forced; "nopf" = the default kernel without its software prefetch of the weight',
  );
  console.log(
    `load average ${loadavg()
      .map((v) => v.toFixed(1))
      .join(' ')}`,
  );
}

main();
