/**
 * Model start-up (npm run bench:load): the same folder loaded with memory-mapped safetensors and with the read
 * path (every tensor read into memory), each in a fresh process: load seconds, RSS after load, time to the first
 * token's logits (a short prefill, which touches every weight once), greedy decode tokens/s (KV cache, batch 1)
 * and peak RSS. Quantised folders (glmv quantize)
 * are measured the same way; pass several --dir to compare them in one run. Prints the CPU model and ISA.
 *
 *   npm run bench:load -- --dir /data/GLM-4.1V-9B-Thinking
 *   npm run bench:load -- --dir ckpt-bf16 --dir ckpt-int8 --dir ckpt-int4 --tokens 16
 *
 * The page cache is not dropped between runs (that needs root): run the bench twice and read the second, or expect
 * the first mode to pay for reading the files from disk.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { noGrad, scope } from '../src/engine/index.js';
import { logicalParameters } from '../src/model/compressed.js';
import { Glm4vForConditionalGeneration } from '../src/model/glm4v.js';
import { MetricsWriter, Progress } from '../src/util/progress.js';
import { cpuIsa } from './cpu.js';

const here = dirname(fileURLToPath(import.meta.url));

interface Result {
  dir: string;
  mode: 'mmap' | 'read';
  load_s: number;
  rss_after_load: number;
  first_token_s: number;
  /** Greedy decode with the KV cache after the prefill, batch 1. */
  decode_tok_s: number;
  peak_rss: number;
  params: number;
  quantized: string;
}

function vmHwm(): number {
  const m = /VmHWM:\s+(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'));
  return m ? Number(m[1]) * 1024 : process.memoryUsage().rss;
}

function child(dir: string, mode: 'mmap' | 'read', tokens: number, decode: number): void {
  const t0 = performance.now();
  const { model, report } = Glm4vForConditionalGeneration.fromPretrained(dir, {
    mmap: mode === 'mmap',
    progress: false,
  });
  const loadS = (performance.now() - t0) / 1000;
  const rssAfterLoad = process.memoryUsage().rss;
  const ids = Array.from({ length: tokens }, (_, i) => 100 + i);
  const cache = model.newCache();
  const t1 = performance.now();
  let logits = noGrad(() => model.forward({ inputIds: [ids], logitsToKeep: 1, cache })).logits;
  const firstTokenS = (performance.now() - t1) / 1000;
  const t2 = performance.now();
  for (let i = 0; i < decode; i++) {
    const next = logits.argmax(-1).toInt32()[0]!;
    logits.dispose();
    logits = scope(() => noGrad(() => model.forward({ inputIds: [[next]], logitsToKeep: 1, cache })).logits);
  }
  const decodeTokS = decode / ((performance.now() - t2) / 1000);
  const q = report.quantized;
  const res: Result = {
    dir,
    mode,
    load_s: loadS,
    rss_after_load: rssAfterLoad,
    first_token_s: firstTokenS,
    decode_tok_s: decodeTokS,
    peak_rss: vmHwm(),
    params: logicalParameters(model),
    quantized: q
      ? `int${q.bits.join('/')} (${q.layers} layers, group ${q.groupSizes.map((g) => g ?? 'channel').join('/')})`
      : 'no',
  };
  process.stdout.write(`${JSON.stringify(res)}\n`);
}

const program = new Command()
  .name('bench:load')
  .description('start-up of a model folder: memory-mapped vs read, in fresh processes')
  .option('--dir <path>', 'model folder (repeat to compare several)', (v: string, p: string[]) => [...p, v], [])
  .option('--tokens <n>', 'prefill length for the first token', '8')
  .option('--decode <n>', 'greedy decode steps after the prefill (KV cache, batch 1)', '16')
  .option('--modes <list>', 'comma-separated: mmap,read', 'mmap,read')
  .option('--metrics <file>', 'JSONL metrics file', join(here, '..', 'runs', 'bench', 'load.jsonl'))
  .option('--child <mode>', 'internal: measure one mode in this process')
  .addHelpText(
    'after',
    `
Examples:
  npm run bench:load -- --dir /data/GLM-4.1V-9B-Thinking
  npm run bench:load -- --dir ckpt --dir ckpt-int4 --modes mmap`,
  );

function main(): void {
  const o = program
    .parse()
    .opts<{ dir: string[]; tokens: string; decode: string; modes: string; metrics: string; child?: string }>();
  const tokens = Number(o.tokens);
  const decode = Number(o.decode);
  if (!Number.isInteger(tokens) || tokens < 1) throw new Error(`--tokens must be a positive integer, got ${o.tokens}`);
  if (!Number.isInteger(decode) || decode < 0)
    throw new Error(`--decode must be a non-negative integer, got ${o.decode}`);
  if (!o.dir.length) throw new Error('--dir: give at least one model folder');
  if (o.child) {
    if (o.child !== 'mmap' && o.child !== 'read') throw new Error(`--child: mmap or read, got ${o.child}`);
    child(o.dir[0]!, o.child, tokens, decode);
    return;
  }
  const modes = o.modes.split(',').map((m) => m.trim());
  for (const m of modes) if (m !== 'mmap' && m !== 'read') throw new Error(`--modes: mmap or read, got ${m}`);
  console.log(`glmv load bench — ${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, ISA: ${cpuIsa()}`);
  const metrics = new MetricsWriter(o.metrics);
  const bar = new Progress({ label: 'load', total: o.dir.length * modes.length });
  const results: Result[] = [];
  for (const dir of o.dir)
    for (const mode of modes) {
      const r = spawnSync(
        process.execPath,
        [
          ...process.execArgv,
          fileURLToPath(import.meta.url),
          '--child',
          mode,
          '--dir',
          dir,
          '--tokens',
          String(tokens),
        ],
        { encoding: 'utf8', maxBuffer: 1 << 24 },
      );
      if (r.status !== 0) throw new Error(`bench:load: ${mode} load of ${dir} failed:\n${r.stderr.slice(-2000)}`);
      const res = JSON.parse(r.stdout.trim().split('\n').pop()!) as Result;
      results.push(res);
      metrics.write({ ...res, cpu: cpus()[0]?.model, isa: cpuIsa() });
      bar.update(results.length);
    }
  bar.stop();
  const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
  for (const r of results)
    console.log(
      `${r.dir} [${r.mode}] ${r.params >= 1e9 ? `${(r.params / 1e9).toFixed(2)} B` : `${(r.params / 1e6).toFixed(1)} M`} params, quantised ${r.quantized}: load ${r.load_s.toFixed(2)} s, ` +
        `RSS after load ${gb(r.rss_after_load)}, first token after ${r.first_token_s.toFixed(2)} s, ` +
        `decode ${r.decode_tok_s.toFixed(2)} tok/s, peak RSS ${gb(r.peak_rss)}`,
    );
  for (const dir of o.dir) {
    const m = results.find((r) => r.dir === dir && r.mode === 'mmap');
    const rd = results.find((r) => r.dir === dir && r.mode === 'read');
    if (m && rd)
      console.log(
        `${dir}: mmap loads ${(rd.load_s / m.load_s).toFixed(1)}× faster than read; RSS after load ${gb(m.rss_after_load)} vs ${gb(rd.rss_after_load)}`,
      );
  }
}

main();
