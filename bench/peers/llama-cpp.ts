/**
 * The llama.cpp peer of bench:9b: node-llama-cpp (its prebuilt CPU binary; nothing is built or downloaded) runs a
 * GGUF file written by ./gguf.ts. node-llama-cpp is not a dependency of glmv: point GLMV_LLAMA_CPP at an installed
 * copy of the package folder, e.g.
 *
 *   npm install --prefix /tmp/llama-peer --omit=optional node-llama-cpp@3.22.1 @node-llama-cpp/linux-x64@3.22.1
 *   export GLMV_LLAMA_CPP=/tmp/llama-peer/node_modules/node-llama-cpp
 *
 * As a script:
 *   tsx bench/peers/llama-cpp.ts parity --model models/glmv-small      # our logits vs llama.cpp's per GGUF type
 *   tsx bench/peers/llama-cpp.ts measure --gguf f.gguf --ids ids.json --decode 32 --threads 2   # one bench row
 */
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { noGrad } from '../../src/engine/index.js';
import { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import { procStatus } from '../proc.js';
import { convertGlm4vText, GGML_TYPES, type GgmlType } from './gguf.js';

/** What this file uses of node-llama-cpp's API (3.x). */
interface NextOptions {
  generateNext: { token?: boolean; logits?: boolean; options?: { temperature?: number } };
}
interface EvalResult {
  next?: { token?: number | null; logits?: Map<number, number> };
}
interface Sequence {
  controlledEvaluate(input: Array<number | [number, NextOptions]>): Promise<Array<EvalResult | undefined>>;
  clearHistory(): Promise<void>;
}
interface Context {
  getSequence(): Sequence;
  dispose(): Promise<void>;
}
interface Model {
  createContext(o: {
    contextSize: number;
    batchSize: number;
    threads: { ideal: number; min: number };
    experimentalKvCacheKeyType?: string;
    experimentalKvCacheValueType?: string;
    flashAttention?: boolean;
  }): Promise<Context>;
  dispose(): Promise<void>;
}
interface Llama {
  loadModel(o: { modelPath: string; gpuLayers: number; useMmap: boolean }): Promise<Model>;
  dispose(): Promise<void>;
}
interface NodeLlamaCpp {
  getLlama(o: Record<string, unknown>): Promise<Llama>;
  LlamaLogLevel: Record<string, string>;
}

/** The node-llama-cpp package folder named by GLMV_LLAMA_CPP, or why there is none. */
export function llamaCppPackage(): { dir: string; version: string } | { missing: string } {
  const dir = process.env.GLMV_LLAMA_CPP;
  if (!dir) return { missing: 'GLMV_LLAMA_CPP is not set (the folder of an installed node-llama-cpp package)' };
  const pkg = join(dir, 'package.json');
  if (!existsSync(pkg)) return { missing: `GLMV_LLAMA_CPP=${dir} has no package.json` };
  const p = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
  if (p.name !== 'node-llama-cpp') return { missing: `GLMV_LLAMA_CPP=${dir} is ${p.name}, not node-llama-cpp` };
  return { dir: resolve(dir), version: p.version ?? '?' };
}

/** llama.cpp through node-llama-cpp's prebuilt CPU binary: never builds, never downloads. */
export async function openLlama(dir: string, threads: number): Promise<Llama> {
  const m = (await import(pathToFileURL(join(dir, 'dist', 'index.js')).href)) as NodeLlamaCpp;
  return m.getLlama({
    gpu: false,
    build: 'never',
    usePrebuiltBinaries: true,
    skipDownload: true,
    progressLogs: false,
    maxThreads: threads,
    logLevel: m.LlamaLogLevel.error,
  });
}

/**
 * A context for `size` tokens in one batch. `exact`: a float32 KV cache and no flash attention (llama.cpp's CPU
 * defaults are an F16 cache and flash attention, whose F16 rounding alone moves logits by ~1e-3 relative).
 */
async function context(model: Model, size: number, threads: number, exact = false): Promise<Context> {
  return model.createContext({
    contextSize: size,
    batchSize: size,
    threads: { ideal: threads, min: threads },
    ...(exact ? { experimentalKvCacheKeyType: 'F32', experimentalKvCacheValueType: 'F32', flashAttention: false } : {}),
  });
}

/** Last-position logits of llama.cpp on each prompt (a fresh sequence each; exact attention, see `context`). */
export async function llamaLogits(
  dir: string,
  gguf: string,
  prompts: readonly number[][],
  vocab: number,
  threads = 1,
): Promise<Float32Array[]> {
  const llama = await openLlama(dir, threads);
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  const longest = Math.max(...prompts.map((p) => p.length));
  const ctx = await context(model, Math.max(32, longest), threads, true);
  const seq = ctx.getSequence();
  const out: Float32Array[] = [];
  try {
    for (const ids of prompts) {
      await seq.clearHistory();
      const input: Array<number | [number, NextOptions]> = ids.slice(0, -1);
      input.push([ids[ids.length - 1] as number, { generateNext: { logits: true } }]);
      const res = await seq.controlledEvaluate(input);
      const logits = res[res.length - 1]?.next?.logits;
      if (!logits) throw new Error(`llama.cpp returned no logits for a prompt of ${ids.length} tokens`);
      const row = new Float32Array(vocab).fill(Number.NaN);
      for (const [tok, v] of logits) if (tok < vocab) row[tok] = v;
      out.push(row);
    }
  } finally {
    await ctx.dispose();
    await model.dispose();
    await llama.dispose();
  }
  return out;
}

/** Our model's last-position logits on the same prompts (text only); `dtype` of the weights as loaded. */
export function ourLogits(
  modelDir: string,
  prompts: readonly number[][],
  dtype: 'auto' | 'float32' = 'auto',
): Float32Array[] {
  const { model } = Glm4vForConditionalGeneration.fromPretrained(modelDir, { progress: false, dtype });
  return prompts.map((ids) =>
    noGrad(() => {
      const l = model.forward({ inputIds: [ids], logitsToKeep: 1 }).logits;
      const v = l.toFloat32();
      l.dispose();
      return v;
    }),
  );
}

export interface LogitError {
  /** max |a − b| / max |b| over the vocabulary, worst prompt. */
  maxRel: number;
  /** mean |a − b| / mean |b|, averaged over prompts. */
  meanRel: number;
  /** Prompts whose arg-max token agrees. */
  top1: number;
  prompts: number;
}

export function logitError(ours: readonly Float32Array[], theirs: readonly Float32Array[]): LogitError {
  let maxRel = 0;
  let meanRel = 0;
  let top1 = 0;
  ours.forEach((b, p) => {
    const a = theirs[p] as Float32Array;
    let maxD = 0;
    let maxB = 0;
    let sumD = 0;
    let sumB = 0;
    let ia = 0;
    let ib = 0;
    for (let i = 0; i < b.length; i++) {
      const d = Math.abs((a[i] as number) - (b[i] as number));
      if (!Number.isFinite(d)) throw new Error(`logit ${i} of prompt ${p} is not finite (${a[i]} vs ${b[i]})`);
      maxD = Math.max(maxD, d);
      maxB = Math.max(maxB, Math.abs(b[i] as number));
      sumD += d;
      sumB += Math.abs(b[i] as number);
      if ((a[i] as number) > (a[ia] as number)) ia = i;
      if ((b[i] as number) > (b[ib] as number)) ib = i;
    }
    maxRel = Math.max(maxRel, maxD / maxB);
    meanRel += sumD / sumB / ours.length;
    if (ia === ib) top1++;
  });
  return { maxRel, meanRel, top1, prompts: ours.length };
}

/** Deterministic prompts of the given lengths over ids [3, vocab). */
export function parityPrompts(vocab: number, lengths: readonly number[], seed = 7): number[][] {
  let s = seed;
  return lengths.map((n) =>
    Array.from({ length: n }, () => {
      s = (s * 1103515245 + 12345) % 2147483648;
      return 3 + (s % (vocab - 3));
    }),
  );
}

/**
 * Converts `modelDir` to each GGUF type and compares llama.cpp's logits with glmv's, both against glmv with float32
 * weights (the reference: the checkpoint's values exactly); the first row is glmv as it loads by default (bf16
 * weights), for scale.
 */
export async function parity(
  dir: string,
  modelDir: string,
  types: readonly GgmlType[],
  lengths: readonly number[] = [1, 7, 33, 100],
): Promise<Array<LogitError & { type: string }>> {
  const vocab = JSON.parse(readFileSync(join(modelDir, 'config.json'), 'utf8')).text_config.vocab_size as number;
  const prompts = parityPrompts(vocab, lengths);
  const ours = ourLogits(modelDir, prompts, 'float32');
  const work = mkdtempSync(join(tmpdir(), 'glmv-gguf-'));
  try {
    const rows: Array<LogitError & { type: string }> = [
      { type: 'glmv (default load)', ...logitError(ours, ourLogits(modelDir, prompts)) },
    ];
    for (const type of types) {
      const gguf = join(work, `${type}.gguf`);
      convertGlm4vText(modelDir, gguf, { weights: type, progress: false, reserveBytes: 0 });
      rows.push({ type, ...logitError(ours, await llamaLogits(dir, gguf, prompts, vocab)) });
      rmSync(gguf);
    }
    return rows;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

const cpuSeconds = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/** bench:9b's llama.cpp variants and the GGUF type of their matrices (embeddings and lm_head included). */
export const LLAMA_VARIANTS = { 'llama-q8': 'Q8_0', 'llama-q4': 'Q4_0' } as const satisfies Record<string, GgmlType>;
export type LlamaVariant = keyof typeof LLAMA_VARIANTS;

/**
 * The GGUF file of `bf16Dir`'s text decoder in `type`, written once to `<workDir>/gguf/text-<type>.gguf` and reused
 * (delete it to rewrite). Refuses when the disk would keep less than `reserveBytes` free.
 */
export function ensureGguf(bf16Dir: string, workDir: string, type: GgmlType, reserveBytes = 5 * 1024 ** 3): string {
  const out = join(workDir, 'gguf', `text-${type}.gguf`);
  if (existsSync(out)) {
    console.log(`${out}: ${(statSync(out).size / 1e9).toFixed(2)} GB (reused)`);
    return out;
  }
  mkdirSync(join(workDir, 'gguf'), { recursive: true });
  const r = convertGlm4vText(bf16Dir, out, { weights: type, reserveBytes });
  console.log(`${out}: ${(r.bytes / 1e9).toFixed(2)} GB written in ${r.seconds.toFixed(0)} s`);
  return out;
}

/** Arguments (after the node executable) that run `measure` in a fresh process. */
export function measureArgs(gguf: string, idsFile: string, decode: number, threads: number): string[] {
  return [
    ...process.execArgv,
    fileURLToPath(import.meta.url),
    'measure',
    '--gguf',
    gguf,
    '--ids',
    idsFile,
    '--decode',
    String(decode),
    '--threads',
    String(threads),
  ];
}

/** What one llama.cpp process measures: the fields of a bench:9b row. */
export interface LlamaRow {
  /** Loading node-llama-cpp's addon and llama.cpp's CPU backend (glmv's addon loads at import, outside load_s). */
  init_s: number;
  /** The GGUF file (mmap) and a context for the prompt and the decoded tokens. */
  load_s: number;
  prefill_s: number;
  decode_s: number;
  decode_tokens: number;
  load_cpu_s: number;
  prefill_cpu_s: number;
  decode_cpu_s: number;
  rss_after_load: number;
  peak_rss: number;
  tokens: number[];
  llama_cpp: string;
}

/**
 * Load (mmap), a prefill of `ids` that samples the first token, then `decode` greedy steps at batch 1: the same
 * work as bench:9b's glmv rows. Meant for a fresh process, so RSS is this model's alone.
 */
export async function measure(dir: string, gguf: string, ids: readonly number[], decode: number, threads: number) {
  const ti = performance.now();
  const llama = await openLlama(dir, threads);
  const initS = (performance.now() - ti) / 1000;
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const model = await llama.loadModel({ modelPath: gguf, gpuLayers: 0, useMmap: true });
  const ctx = await context(model, ids.length + decode + 1, threads);
  const seq = ctx.getSequence();
  const loadS = (performance.now() - t0) / 1000;
  const loadCpu = cpuSeconds() - c0;
  const rssAfterLoad = procStatus().rss;
  const greedy: NextOptions = { generateNext: { token: true, options: { temperature: 0 } } };
  const step = async (input: Array<number | [number, NextOptions]>): Promise<number> => {
    const res = await seq.controlledEvaluate(input);
    const tok = res[res.length - 1]?.next?.token;
    if (tok === undefined || tok === null) throw new Error('llama.cpp returned no token');
    return tok;
  };
  const t1 = performance.now();
  const c1 = cpuSeconds();
  let next = await step([...ids.slice(0, -1), [ids[ids.length - 1] as number, greedy]]);
  const prefillS = (performance.now() - t1) / 1000;
  const prefillCpu = cpuSeconds() - c1;
  const tokens = [next];
  const t2 = performance.now();
  const c2 = cpuSeconds();
  for (let i = 0; i < decode; i++) {
    next = await step([[next, greedy]]);
    tokens.push(next);
    process.stderr.write(`\rllama.cpp decode ${i + 1}/${decode}`);
  }
  if (decode > 0) process.stderr.write('\n');
  const row: LlamaRow = {
    init_s: initS,
    load_s: loadS,
    prefill_s: prefillS,
    decode_s: (performance.now() - t2) / 1000,
    decode_tokens: decode,
    load_cpu_s: loadCpu,
    prefill_cpu_s: prefillCpu,
    decode_cpu_s: cpuSeconds() - c2,
    rss_after_load: rssAfterLoad,
    peak_rss: procStatus().hwm,
    tokens,
    llama_cpp: '',
  };
  await ctx.dispose();
  await model.dispose();
  await llama.dispose();
  return row;
}

function needPackage(): { dir: string; version: string } {
  const pkg = llamaCppPackage();
  if ('missing' in pkg) throw new Error(pkg.missing);
  return pkg;
}

const TYPES = Object.keys(GGML_TYPES) as GgmlType[];

function ggmlTypes(v: string): GgmlType[] {
  const list = v.split(',').map((t) => t.trim());
  for (const t of list)
    if (!TYPES.includes(t as GgmlType)) throw new InvalidArgumentError(`${t} is not one of ${TYPES.join(', ')}`);
  return list as GgmlType[];
}

function count(v: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected an integer ≥ 0, got ${v}`);
  return n;
}

const program = new Command()
  .name('llama-cpp')
  .description("bench:9b's llama.cpp peer: logit parity of the GGUF conversion, and one measured bench row")
  .exitOverride((err) => process.exit(err.exitCode === 0 ? 0 : 2))
  .addHelpText(
    'after',
    `
Examples:
  GLMV_LLAMA_CPP=/path/to/node_modules/node-llama-cpp npx tsx bench/peers/llama-cpp.ts parity --model models/glmv-small
  GLMV_LLAMA_CPP=… npx tsx bench/peers/llama-cpp.ts measure --gguf runs/9b/gguf/text-Q8_0.gguf --ids runs/9b/ids.json

Environment:
  GLMV_LLAMA_CPP  the folder of an installed node-llama-cpp package (npm install node-llama-cpp@3.22.1 anywhere)`,
  );
program
  .command('parity')
  .description("convert a GLM-4.1V folder to each GGUF type and compare llama.cpp's next-token logits with glmv's")
  .option('--model <dir>', 'GLM-4.1V checkpoint folder with tokenizer.json', 'models/glmv-small')
  .option('--types <list>', `GGUF types among ${TYPES.join(',')}`, ggmlTypes, TYPES)
  .action(async (o: { model: string; types: GgmlType[] }) => {
    const pkg = needPackage();
    const rows = await parity(pkg.dir, o.model, o.types);
    console.log(
      `node-llama-cpp ${pkg.version}: next-token logits vs glmv with float32 weights (same token ids, text only)`,
    );
    console.log('| llama.cpp GGUF type | max rel error | mean rel error | top-1 agrees |\n|---|---|---|---|');
    for (const r of rows)
      console.log(
        `| ${r.type} | ${r.maxRel.toExponential(2)} | ${r.meanRel.toExponential(2)} | ${r.top1}/${r.prompts} |`,
      );
  });
program
  .command('measure')
  .description('load a GGUF file, prefill the prompt ids, decode greedily; prints one JSON row (what bench:9b runs)')
  .requiredOption('--gguf <file>', 'GGUF file (bench/peers/gguf.ts)')
  .requiredOption('--ids <file>', 'JSON array of prompt token ids')
  .option('--decode <n>', 'greedy steps after the prefill', count, 32)
  .option('--threads <n>', 'llama.cpp threads', count, 1)
  .action(async (o: { gguf: string; ids: string; decode: number; threads: number }) => {
    const pkg = needPackage();
    const ids = JSON.parse(readFileSync(o.ids, 'utf8')) as unknown;
    if (!Array.isArray(ids) || ids.length === 0 || !ids.every((t) => Number.isInteger(t) && t >= 0))
      throw new Error(`${o.ids}: expected a non-empty JSON array of token ids`);
    const row = await measure(pkg.dir, o.gguf, ids as number[], o.decode, Math.max(1, o.threads));
    row.llama_cpp = `node-llama-cpp ${pkg.version}`;
    process.stdout.write(`${JSON.stringify(row)}\n`);
  });

if (process.argv[1] && resolve(process.argv[1]) === resolve(fileURLToPath(import.meta.url)))
  program.parseAsync().catch((e) => {
    console.error(`llama-cpp peer: ${(e as Error).message}`);
    process.exit(1);
  });
