/**
 * The whole GLM-4.1V-9B shape, bf16 / int8 / int4, beside transformers (npm run bench:9b). A checkpoint with all 40
 * decoder layers (random bf16 weights, the real config's shapes; written by bench/fullsize.ts's writer, ≈20.6 GB) is
 * quantised with `glmv quantize`'s writer to int8 (per channel) and int4 (group 128), and each folder is measured in
 * a fresh process: load, time to the first token (load + a `--tokens` prefill), prefill tok/s, greedy decode tok/s
 * (batch 1, KV cache, `--decode` steps), RSS after load and peak RSS. Transformers (bf16, CPU) runs the same bf16
 * folder in the same run as the peer.
 *
 *   npm run bench:9b -- --dir runs/9b                   # writes runs/9b/bf16, quantises to int8 / int4, measures all
 *   npm run bench:9b -- --dir runs/9b --only int4,int8 --decode 64
 *
 * Folders that already exist are reused (the run is resumable; delete them to rewrite). Each folder gets the embedded
model's tokenizer with its vocabulary padded to 151552 ids, so `glmv chat --model <dir>/int4` runs on it. Every measured process is
 * watched: when the machine's MemAvailable drops under `--min-free` GiB it is killed and the row says so, so the
 * bench never pushes the machine into the OOM killer (the transformers peer holds its weights in anonymous memory and
 * may not fit a 24 GB machine at full depth: `--peer-layers` then measures it at the depth that fits, reported as
 * such). Prints the CPU model, ISA and load average; metrics in runs/bench/full9b.jsonl.
 *
 * llama.cpp is the second peer (`llama-q8`, `llama-q4`), when GLMV_LLAMA_CPP names an installed node-llama-cpp
 * package (bench/peers/llama-cpp.ts): the bf16 folder's text decoder is converted once to a Q8_0 / Q4_0 GGUF file
 * (DIR/gguf/, bench/peers/gguf.ts) and measured the same way in a fresh process (mmap load, the same prompt ids,
 * the same greedy steps, the engine's thread count), with llama.cpp's CPU defaults (F16 KV cache, flash attention).
 */
import { spawn, spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  realpathSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import {
  int64Raw,
  noGrad,
  type QuantBits,
  quantizeWeight,
  type RawTensor,
  saveSafetensors,
  scope,
  type Tensor,
} from '../src/engine/index.js';
import { CheckpointReader, INDEX_FILE } from '../src/model/checkpoint.js';
import { loadSummary, logicalParameters } from '../src/model/compressed.js';
import { loadConfig } from '../src/model/config.js';
import { Glm4vForConditionalGeneration } from '../src/model/glm4v.js';
import { quantizeCheckpoint } from '../src/model/quantize.js';
import { MetricsWriter, Progress } from '../src/util/progress.js';
import { cpuIsa } from './cpu.js';
import { ensureGguf, LLAMA_VARIANTS, type LlamaRow, llamaCppPackage, measureArgs } from './peers/llama-cpp.js';
import { hugeMappedShare, procStatus } from './proc.js';
import { median } from './stats.js';

const here = dirname(fileURLToPath(import.meta.url));
const GB = 1e9;
const GiB = 1024 ** 3;
const VARIANTS = ['bf16', 'int8', 'int4', 'int8-head', 'int4-head', 'peer', 'llama-q8', 'llama-q4'] as const;
type Variant = (typeof VARIANTS)[number];

interface Row {
  variant: string;
  load_s: number;
  first_token_s: number;
  prefill_tok_s: number;
  decode_tok_s: number;
  decode_tokens: number;
  /** CPU seconds of this process (all threads): what the work costs whatever share of a loaded machine it gets. */
  load_cpu_s?: number;
  prefill_cpu_s?: number;
  decode_cpu_s_per_token?: number;
  rss_after_load: number;
  peak_rss: number;
  params?: number;
  /** After the decode: the share of the mapped weights' resident bytes mapped with 2 MiB entries (smaps_rollup). */
  huge_mapped?: number;
  summary?: string;
  note?: string;
  /** With --rounds > 1: the decode ratio to bf16, wall / CPU (the median of the rounds, then each round's). */
  roundsRatio?: string;
}

interface Opts {
  dir: string;
  only: string;
  tokens: string;
  decode: string;
  peerDecode: string;
  peerLayers: string;
  rounds: string;
  minFree: string;
  metrics: string;
  prepare?: boolean;
  child?: string;
  warm?: string;
}

const program = new Command()
  .name('bench:9b')
  .description('full GLM-4.1V-9B shape: bf16 / int8 / int4 load, first token, prefill, decode, RSS, transformers peer')
  .requiredOption('--dir <path>', 'work folder: bf16/, int8/, int4/ are written there when missing')
  .option(
    '--only <list>',
    `comma-separated subset of ${VARIANTS.join(',')} (-head: lm_head quantised too, glmv quantize --lm-head; llama-*: llama.cpp Q8_0 / Q4_0, needs GLMV_LLAMA_CPP)`,
    'bf16,int8,int4,int4-head,peer',
  )
  .option('--tokens <n>', 'prefill length', '1024')
  .option('--decode <n>', 'greedy decode steps after the prefill (batch 1)', '256')
  .option('--peer-decode <n>', 'decode steps for the transformers peer', '32')
  .option('--peer-layers <n>', 'decoder layers the peer loads (40 = all; fewer when 40 do not fit in memory)', '40')
  .option(
    '--rounds <n>',
    "measure the folders this many times in turn; the table gives each row's median and the decode ratio to bf16 of each round",
    '1',
  )
  .option('--min-free <GiB>', 'kill a measured process when MemAvailable drops under this', '2')
  .option('--metrics <file>', 'JSONL metrics file', join(here, '..', 'runs', 'bench', 'full9b.jsonl'))
  .option('--prepare', 'write and quantise the folders --only names, measure nothing')
  .option('--child <dir>', 'internal: measure one folder in this process')
  .option('--warm <dir>', 'internal: load a folder and run one short forward (an earlier run), then exit')
  .addHelpText(
    'after',
    `
Examples:
  nice -n 15 npm run bench:9b -- --dir runs/9b
  nice -n 15 npm run bench:9b -- --dir runs/9b --only int4 --decode 64
  npm run bench:9b -- --dir runs/9b --only bf16,int8,int4,int4-head --rounds 3   # ratios from rows measured in turn
  nice -n 15 npm run bench:9b -- --dir runs/9b --only int8,int4 --prepare   # write and quantise only
  GLMV_PYTHON=/path/to/venv/bin/python npm run bench:9b -- --dir runs/9b --only peer --peer-layers 20
  GLMV_LLAMA_CPP=/path/to/node_modules/node-llama-cpp npm run bench:9b -- --dir runs/9b --only llama-q8,llama-q4`,
  );

function int(v: string, name: string, min = 0): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min)
    throw new Error(`${name}: expected an integer ≥ ${min}, got ${JSON.stringify(v)}`);
  return n;
}

function cpuSeconds(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
}

function memAvailable(): number {
  const m = /MemAvailable:\s+(\d+) kB/.exec(readFileSync('/proc/meminfo', 'utf8'));
  return m ? Number(m[1]) * 1024 : Number.POSITIVE_INFINITY;
}

function promptIds(n: number, vocab: number): number[] {
  let s = 12345;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return 3 + (s % (vocab - 1000));
  });
}

/** One folder in this (fresh) process: everything a user sees from start-up to the last decoded token. */
function child(dir: string, tokens: number, decode: number): void {
  const t0 = performance.now();
  const c0 = cpuSeconds();
  const { model, config, report } = Glm4vForConditionalGeneration.fromPretrained(dir, { progress: false });
  const loadS = (performance.now() - t0) / 1000;
  const loadCpu = cpuSeconds() - c0;
  const summary = loadSummary(model, report, dir);
  const rssAfterLoad = procStatus().rss;
  const ids = promptIds(tokens, config.text.vocabSize);
  const cache = model.newCache(tokens + decode);
  const t1 = performance.now();
  const c1 = cpuSeconds();
  let logits = noGrad(() => model.forward({ inputIds: [ids], logitsToKeep: 1, cache })).logits;
  let next = logits.argmax(-1).toInt32()[0]!;
  const prefillS = (performance.now() - t1) / 1000;
  const prefillCpu = cpuSeconds() - c1;
  logits.dispose();
  const bar = new Progress({ label: `decode ${dir}`, total: decode });
  const t2 = performance.now();
  const c2 = cpuSeconds();
  for (let i = 0; i < decode; i++) {
    logits = scope(() => noGrad(() => model.forward({ inputIds: [[next]], logitsToKeep: 1, cache })).logits);
    next = logits.argmax(-1).toInt32()[0]!;
    logits.dispose();
    bar.update(i + 1);
  }
  bar.stop();
  const decodeS = (performance.now() - t2) / 1000;
  const decodeCpu = cpuSeconds() - c2;
  const row: Row = {
    variant: dir,
    load_s: loadS,
    first_token_s: loadS + prefillS,
    prefill_tok_s: tokens / prefillS,
    decode_tok_s: decode / decodeS,
    decode_tokens: decode,
    load_cpu_s: loadCpu,
    prefill_cpu_s: prefillCpu,
    decode_cpu_s_per_token: decode > 0 ? decodeCpu / decode : undefined,
    rss_after_load: rssAfterLoad,
    peak_rss: procStatus().hwm,
    params: logicalParameters(model),
    huge_mapped: hugeMappedShare(),
    summary,
  };
  process.stdout.write(`${JSON.stringify(row)}\n`);
}

const PEER = `
import json, os, resource, sys, time
import torch
from transformers import Glm4vForConditionalGeneration
torch.set_num_threads(int(sys.argv[3]))
ids = torch.tensor([json.load(open(sys.argv[2]))])
decode = int(sys.argv[4])
t0 = time.time()
model = Glm4vForConditionalGeneration.from_pretrained(sys.argv[1], dtype=torch.bfloat16).eval()
load = time.time() - t0
def rss():
    for line in open('/proc/self/status'):
        if line.startswith('VmRSS:'): return int(line.split()[1]) * 1024
rss_load = rss()
with torch.no_grad():
    t1, c1 = time.time(), time.process_time()
    out = model(input_ids=ids, use_cache=True, logits_to_keep=1)
    nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    prefill, prefill_cpu = time.time() - t1, time.process_time() - c1
    past = out.past_key_values
    t2, c2 = time.time(), time.process_time()
    for _ in range(decode):
        out = model(input_ids=nxt, past_key_values=past, use_cache=True, logits_to_keep=1)
        past = out.past_key_values
        nxt = out.logits[:, -1].argmax(-1, keepdim=True)
    dec, dec_cpu = time.time() - t2, time.process_time() - c2
print(json.dumps({"load_s": load, "prefill_s": prefill, "decode_s": dec, "rss_after_load": rss_load,
                  "prefill_cpu_s": prefill_cpu, "decode_cpu_s": dec_cpu,
                  "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "torch": torch.__version__}))
`;

function findPython(): string | null {
  for (const bin of [process.env.GLMV_PYTHON, join(here, '..', '.venv', 'bin', 'python'), 'python3']) {
    if (!bin || (bin.includes('/') && !existsSync(bin))) continue;
    if (spawnSync(bin, ['-c', 'import torch, transformers'], { encoding: 'utf8' }).status === 0) return bin;
  }
  return null;
}

/** Runs a command, killing it when MemAvailable drops under `minFree` bytes; resolves with its output. */
function watched(
  cmd: string,
  args: string[],
  minFree: number,
): Promise<{ code: number | null; stdout: string; stderr: string; killed: string | null; minAvail: number }> {
  return new Promise((res) => {
    const p = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    let killed: string | null = null;
    let minAvail = Number.POSITIVE_INFINITY;
    p.stdout.on('data', (d) => {
      stdout += d;
    });
    p.stderr.on('data', (d) => {
      stderr += d;
      process.stderr.write(d);
    });
    const timer = setInterval(() => {
      const a = memAvailable();
      minAvail = Math.min(minAvail, a);
      if (a < minFree && !killed) {
        killed = `killed by the watchdog: MemAvailable ${(a / GiB).toFixed(2)} GiB < ${(minFree / GiB).toFixed(1)} GiB`;
        p.kill('SIGKILL');
      }
    }, 200);
    p.on('close', (code) => {
      clearInterval(timer);
      res({ code, stdout, stderr, killed, minAvail });
    });
  });
}

const load = () =>
  loadavg()
    .map((x) => x.toFixed(1))
    .join(' / ');

/**
 * `<v>-head/` from an existing `<v>/`: the same folder with lm_head quantised too — what `glmv quantize --lm-head`
 * writes (the same quantizeWeight call on the same bf16 head), without re-quantising the decoder: every shard but the
 * head's is linked, the head's shard is rewritten, and the index and config say so.
 */
function deriveQuantizedHead(src: string, out: string): number {
  const t0 = performance.now();
  const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  const qc = cfg.quantization_config;
  const w = qc.config_groups.group_0.weights as { num_bits: QuantBits; group_size: number | null };
  const index = JSON.parse(readFileSync(join(src, INDEX_FILE), 'utf8'));
  const headFile = index.weight_map['lm_head.weight'] as string | undefined;
  if (!headFile) throw new Error(`${src}: no bf16 lm_head.weight to quantise (already quantised?)`);
  mkdirSync(out, { recursive: true });
  for (const f of readdirSync(src))
    if (f !== headFile && f !== INDEX_FILE && f !== 'config.json' && !existsSync(join(out, f)))
      symlinkSync(resolve(src, f), join(out, f));
  const reader = new CheckpointReader(src);
  const tensors = new Map<string, Tensor | RawTensor>();
  for (const [name, file] of Object.entries(index.weight_map as Record<string, string>)) {
    if (file !== headFile) continue;
    const t = reader.read(name);
    if (name !== 'lm_head.weight') {
      tensors.set(name, name.endsWith('.weight_shape') ? int64Raw(t.toArray() as number[]) : t);
      continue;
    }
    const [N, K] = t.shape as [number, number];
    const q = quantizeWeight(t, w.num_bits, w.group_size, t.dtype === 'bfloat16' ? 'bfloat16' : 'float32');
    tensors.set('lm_head.weight_packed', q.packed);
    tensors.set('lm_head.weight_scale', q.scale);
    tensors.set('lm_head.weight_shape', int64Raw([N, K]));
  }
  reader.close();
  saveSafetensors(join(out, headFile), tensors, { format: 'pt' });
  delete index.weight_map['lm_head.weight'];
  for (const k of ['weight_packed', 'weight_scale', 'weight_shape']) index.weight_map[`lm_head.${k}`] = headFile;
  writeFileSync(join(out, INDEX_FILE), JSON.stringify(index));
  qc.ignore = (qc.ignore as string[]).filter((n) => n !== 'lm_head');
  writeFileSync(join(out, 'config.json'), `${JSON.stringify(cfg, null, 2)}\n`);
  return (performance.now() - t0) / 1000;
}

/**
 * Tokenizer, template and generation files for the random checkpoint, so `glmv chat --model` runs on it: the embedded
 * model's, with the vocabulary padded to the config's size by filler tokens (" @@<id>") so that every id the random
 * weights emit decodes. Skipped when the folder has a tokenizer.json.
 */
function writeTokenizer(dir: string): void {
  if (existsSync(join(dir, 'tokenizer.json'))) return;
  const src = join(here, '..', 'models', 'glmv-small');
  const vocabSize = JSON.parse(readFileSync(join(dir, 'config.json'), 'utf8')).text_config?.vocab_size as number;
  const tok = JSON.parse(readFileSync(join(src, 'tokenizer.json'), 'utf8'));
  const taken = new Set<number>([
    ...(Object.values(tok.model.vocab) as number[]),
    ...(tok.added_tokens as Array<{ id: number }>).map((t) => t.id),
  ]);
  for (let id = 0; id < vocabSize; id++) if (!taken.has(id)) tok.model.vocab[`Ġ@@${id.toString(36)}`] = id;
  writeFileSync(join(dir, 'tokenizer.json'), JSON.stringify(tok));
  for (const f of [
    'tokenizer_config.json',
    'chat_template.jinja',
    'generation_config.json',
    'preprocessor_config.json',
    'video_preprocessor_config.json',
  ])
    if (existsSync(join(src, f))) writeFileSync(join(dir, f), readFileSync(join(src, f)));
}

/** A folder whose config has `layers` decoder layers over the same shards (transformers skips the rest). */
function truncatedView(src: string, dst: string, layers: number): string {
  mkdirSync(dst, { recursive: true });
  const cfg = JSON.parse(readFileSync(join(src, 'config.json'), 'utf8'));
  const tc = cfg.text_config ?? cfg;
  tc.num_hidden_layers = layers;
  writeFileSync(join(dst, 'config.json'), JSON.stringify(cfg, null, 2));
  const index = JSON.parse(readFileSync(join(src, 'model.safetensors.index.json'), 'utf8'));
  const keep = (n: string) => {
    const m = /\.layers\.(\d+)\./.exec(n);
    return !m || n.includes('visual') || Number(m[1]) < layers;
  };
  index.weight_map = Object.fromEntries(Object.entries(index.weight_map).filter(([n]) => keep(n)));
  writeFileSync(join(dst, 'model.safetensors.index.json'), JSON.stringify(index));
  for (const f of new Set(Object.values(index.weight_map) as string[]))
    if (!existsSync(join(dst, f))) symlinkSync(resolve(src, f), join(dst, f));
  return dst;
}

/** The real paths of a folder's safetensors files (the int4-head folder links its decoder shards from int4/). */
function weightFiles(dir: string): string[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .map((f) => realpathSync(join(dir, f)));
}

/**
 * Drops the page cache of every other folder's weight files before a row (`dd iflag=nocache count=0`: the kernel
 * forgets a file's cached pages). Otherwise the previous row's pages, promoted to the kernel's active list by being
 * read once per token, stay while this row's freshly mapped pages are the ones reclaimed: an int8 row measured right
 * after bf16 (20.6 GB cached on a 24 GB machine) decoded at 0.78 tok/s, 2.66 alone.
 */
function dropOtherFolders(keep: string, all: string[]): void {
  const mine = new Set(weightFiles(keep));
  for (const dir of all) for (const f of weightFiles(dir)) if (!mine.has(f)) dropPages(f);
}

function dropPages(file: string): void {
  spawnSync('dd', [`if=${file}`, 'iflag=nocache', 'count=0', 'status=none']);
}

/**
 * Drops a folder's own pages and has an earlier glmv run read them back (`--warm`: load, one short forward, in its own
 * process), so every row starts from the page cache such a run leaves: most weights in 2 MiB folios, the embedding
 * table's touched rows in 4 KiB pages. Pages cached in small pieces (by a `cp`, say) cannot be mapped with 2 MiB
 * entries, and on this VM that alone moved a bf16 decode between 1.2 and 2.0 tok/s. Returns the seconds it took.
 */
function reread(dir: string): number {
  for (const f of weightFiles(dir)) dropPages(f);
  const t = performance.now();
  const w = spawnSync(
    process.execPath,
    [...process.execArgv, fileURLToPath(import.meta.url), '--dir', dir, '--warm', dir],
    {
      stdio: ['ignore', 'ignore', 'inherit'],
    },
  );
  if (w.status !== 0) throw new Error(`reading ${dir} back failed (exit ${w.status})`);
  return (performance.now() - t) / 1000;
}

/** An earlier glmv run on a folder: load it, one forward over 8 tokens, exit. */
function warm(dir: string): void {
  const { model, config } = Glm4vForConditionalGeneration.fromPretrained(dir, { progress: false });
  noGrad(() => model.forward({ inputIds: [promptIds(8, config.text.vocabSize)], logitsToKeep: 1 })).logits.dispose();
}

/**
 * One row per variant from the rounds: the round with the median decode rate (the lower middle one for an even
 * count; its other figures come with it), its decode rates over all rounds, and its decode ratio to bf16 taken within
 * each round (wall / CPU), given as the median of the rounds then each round's. One round gives the row as measured.
 */
function medianRows(variants: string[], byRound: Array<Map<string, Row>>): Row[] {
  if (byRound.length === 1) return variants.flatMap((v) => byRound[0]!.get(v) ?? []);
  const out: Row[] = [];
  for (const v of variants) {
    const got = byRound.flatMap((m) => m.get(v) ?? []);
    if (got.length === 0) continue;
    const sorted = [...got].sort((a, b) => a.decode_tok_s - b.decode_tok_s);
    const mid = sorted[(sorted.length - 1) >> 1]!;
    const wall: number[] = [];
    const cpu: number[] = [];
    for (const m of byRound) {
      const r = m.get(v);
      const b = m.get('bf16');
      if (!r || !b || v === 'bf16') continue;
      wall.push(r.decode_tok_s / b.decode_tok_s);
      if (r.decode_cpu_s_per_token && b.decode_cpu_s_per_token)
        cpu.push(b.decode_cpu_s_per_token / r.decode_cpu_s_per_token);
    }
    const list = (x: number[]) => x.map((r) => r.toFixed(2)).join(', ');
    const ratio =
      wall.length > 0
        ? `${median(wall).toFixed(2)}× / ${cpu.length ? `${median(cpu).toFixed(2)}×` : 'n/a'} (rounds: ${list(wall)} / ${list(cpu)})`
        : '';
    out.push({
      ...mid,
      note: `median of ${got.length} rounds, decode ${list(got.map((r) => r.decode_tok_s))} tok/s`,
      roundsRatio: ratio,
    });
  }
  return out;
}

async function main(): Promise<void> {
  const o = program.parse().opts<Opts>();
  const tokens = int(o.tokens, '--tokens', 1);
  const decode = int(o.decode, '--decode', 0);
  if (o.child) {
    child(o.child, tokens, decode);
    return;
  }
  if (o.warm) {
    warm(o.warm);
    return;
  }
  const only = o.only.split(',').map((s) => s.trim()) as Variant[];
  for (const v of only) if (!VARIANTS.includes(v)) throw new Error(`--only: ${v} is not one of ${VARIANTS.join(', ')}`);
  const minFree = Number(o.minFree) * GiB;
  if (!(minFree > 0)) throw new Error(`--min-free: expected a positive number of GiB, got ${o.minFree}`);
  const peerLayers = int(o.peerLayers, '--peer-layers', 1);
  const rounds = int(o.rounds, '--rounds', 1);
  const metrics = new MetricsWriter(o.metrics);
  const cpu = cpus()[0]?.model ?? 'cpu';
  console.log(`glmv full-size 9B bench — ${cpu}, ${cpus().length} cores, ISA: ${cpuIsa()}, load average ${load()}`);
  mkdirSync(o.dir, { recursive: true });
  const bf16 = join(o.dir, 'bf16');

  // 1. The checkpoints (reused when present).
  if (!existsSync(join(bf16, 'config.json'))) {
    mkdirSync(bf16, { recursive: true });
    const w = spawnSync(
      process.execPath,
      [...process.execArgv, join(here, 'fullsize.ts'), '--phase', 'write', '--dir', bf16, '--layers', '40'],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (w.status !== 0) throw new Error(`writing ${bf16} failed (exit ${w.status})`);
  }
  const folders: Array<[Variant, string]> = [];
  for (const v of only) {
    if (v === 'bf16') folders.push([v, bf16]);
    if (v === 'bf16' || v === 'peer' || v in LLAMA_VARIANTS) continue;
    const base = v.replace('-head', '');
    const head = v.endsWith('-head');
    const out = join(o.dir, v);
    if (!existsSync(join(out, 'config.json')) && head && existsSync(join(o.dir, base, 'config.json'))) {
      const seconds = deriveQuantizedHead(join(o.dir, base), out);
      console.log(`${out}: lm_head quantised in ${seconds.toFixed(0)} s (decoder layers linked from ${base}/)`);
    }
    if (!existsSync(join(out, 'config.json'))) {
      const r = quantizeCheckpoint(bf16, out, { bits: base === 'int8' ? 8 : 4, lmHead: head });
      console.log(
        `quantised ${out}: ${r.quantized} layers, ${(r.bytesOut / GB).toFixed(2)} GB in ${r.seconds.toFixed(0)} s`,
      );
      metrics.write({ phase: 'quantize', variant: v, seconds: r.seconds, bytes: r.bytesOut });
    }
    folders.push([v, out]);
  }
  if (o.prepare) {
    for (const [, dir] of folders) writeTokenizer(dir);
    console.log(`prepared ${folders.map(([, d]) => d).join(', ')}`);
    return;
  }

  // 2. Each folder in a fresh process, the folders in turn `--rounds` times. A virtual machine's memory throughput can move
  // with its host's load over minutes (on the README's AMD VM the same int8 row decoded at 0.78 and 2.66 tok/s in one
  // run), so a ratio between two rows is taken within each round, where they ran minutes apart, not a whole run apart.
  const rows: Row[] = [];
  const byRound: Array<Map<string, Row>> = [];
  for (let round = 0; round < rounds; round++) {
    const measured = new Map<string, Row>();
    byRound.push(measured);
    for (const [v, dir] of folders) {
      writeTokenizer(dir);
      dropOtherFolders(
        dir,
        folders.map(([, d]) => d),
      );
      const rereadS = reread(dir);
      const la = load();
      const r = await watched(
        process.execPath,
        [
          ...process.execArgv,
          fileURLToPath(import.meta.url),
          '--dir',
          o.dir,
          '--child',
          dir,
          '--tokens',
          String(tokens),
          '--decode',
          String(decode),
        ],
        minFree,
      );
      if (r.code !== 0) {
        console.log(`${v}: ${r.killed ?? `failed (exit ${r.code}): ${r.stderr.slice(-1500)}`}`);
        metrics.write({ phase: 'measure', variant: v, failed: r.killed ?? r.code });
        continue;
      }
      const row = { ...(JSON.parse(r.stdout.trim().split('\n').pop()!) as Row), variant: v };
      measured.set(v, row);
      console.log(
        `${v}${rounds > 1 ? ` (round ${round + 1}/${rounds})` : ''}: ${row.summary}, decode ${row.decode_tok_s.toFixed(2)} tok/s${row.huge_mapped === undefined ? '' : `, ${(100 * row.huge_mapped).toFixed(0)} % of the mapped weights in 2 MiB pages`}`,
      );
      metrics.write({
        phase: 'measure',
        ...row,
        round,
        cpu,
        isa: cpuIsa(),
        load_before: la,
        load_after: load(),
        reread_s: rereadS,
        min_mem_available: r.minAvail,
      });
    }
  }
  rows.push(
    ...medianRows(
      folders.map(([v]) => v),
      byRound,
    ),
  );

  // 3. The peer: transformers bf16 on the same files.
  if (only.includes('peer')) {
    const py = findPython();
    if (!py) console.log('peer: no Python with torch + transformers (set GLMV_PYTHON); skipped');
    else {
      const src = peerLayers < 40 ? truncatedView(bf16, join(o.dir, `peer-${peerLayers}`), peerLayers) : bf16;
      const script = join(o.dir, 'peer.py');
      writeFileSync(script, PEER);
      const idsFile = join(o.dir, 'ids.json');
      const vocab = JSON.parse(readFileSync(join(bf16, 'config.json'), 'utf8')).text_config?.vocab_size ?? 151552;
      writeFileSync(idsFile, JSON.stringify(promptIds(tokens, vocab)));
      dropOtherFolders(src, [...folders.map(([, d]) => d), bf16]);
      const la = load();
      const r = await watched(py, [script, src, idsFile, String(cpus().length), o.peerDecode], minFree);
      const note = peerLayers < 40 ? `${peerLayers} of 40 decoder layers (40 do not fit)` : undefined;
      if (r.code !== 0) {
        console.log(`peer: ${r.killed ?? `failed (exit ${r.code}): ${r.stderr.slice(-1500)}`}`);
        metrics.write({ phase: 'peer', failed: r.killed ?? r.code, layers: peerLayers, min_mem_available: r.minAvail });
      } else {
        const p = JSON.parse(r.stdout.trim().split('\n').pop()!);
        const row: Row = {
          variant: 'transformers bf16',
          load_s: p.load_s,
          first_token_s: p.load_s + p.prefill_s,
          prefill_tok_s: tokens / p.prefill_s,
          decode_tok_s: Number(o.peerDecode) / p.decode_s,
          decode_tokens: Number(o.peerDecode),
          prefill_cpu_s: p.prefill_cpu_s,
          decode_cpu_s_per_token: p.decode_cpu_s / Number(o.peerDecode),
          rss_after_load: p.rss_after_load,
          peak_rss: p.peak_rss,
          note,
        };
        rows.push(row);
        metrics.write({
          phase: 'peer',
          ...row,
          torch: p.torch,
          layers: peerLayers,
          cpu,
          load_before: la,
          load_after: load(),
          min_mem_available: r.minAvail,
        });
      }
    }
  }

  // 3b. The llama.cpp peer: the bf16 text decoder as GGUF, in a fresh process with the engine's thread count.
  const llamaVariants = only.filter((v): v is keyof typeof LLAMA_VARIANTS => v in LLAMA_VARIANTS);
  const pkg = llamaCppPackage();
  if (llamaVariants.length > 0 && 'missing' in pkg)
    console.log(`llama.cpp peer: ${pkg.missing}; ${llamaVariants.join(', ')} skipped`);
  else if (llamaVariants.length > 0 && 'dir' in pkg) {
    const threads = Number(process.env.OMP_NUM_THREADS) || cpus().length;
    const idsFile = join(o.dir, 'ids.json');
    writeFileSync(idsFile, JSON.stringify(promptIds(tokens, loadConfig(bf16).text.vocabSize)));
    for (const v of llamaVariants) {
      const type = LLAMA_VARIANTS[v];
      const gguf = ensureGguf(bf16, o.dir, type);
      const la = load();
      const r = await watched(process.execPath, measureArgs(gguf, idsFile, decode, threads), minFree);
      if (r.code !== 0) {
        console.log(`${v}: ${r.killed ?? `failed (exit ${r.code}): ${r.stderr.slice(-1500)}`}`);
        metrics.write({ phase: 'llama', variant: v, failed: r.killed ?? r.code, min_mem_available: r.minAvail });
        continue;
      }
      const p = JSON.parse(r.stdout.trim().split('\n').pop()!) as LlamaRow;
      const row: Row = {
        variant: `llama.cpp ${type}`,
        load_s: p.load_s,
        first_token_s: p.load_s + p.prefill_s,
        prefill_tok_s: tokens / p.prefill_s,
        decode_tok_s: decode / p.decode_s,
        decode_tokens: decode,
        load_cpu_s: p.load_cpu_s,
        prefill_cpu_s: p.prefill_cpu_s,
        decode_cpu_s_per_token: decode > 0 ? p.decode_cpu_s / decode : undefined,
        rss_after_load: p.rss_after_load,
        peak_rss: p.peak_rss,
        note: `${p.llama_cpp}, ${threads} threads; its runtime starts in ${p.init_s.toFixed(1)} s before the load`,
      };
      rows.push(row);
      console.log(`${v}: ${statSync(gguf).size} bytes of GGUF, ${row.note}`);
      metrics.write({
        phase: 'llama',
        ...row,
        gguf,
        cpu,
        load_before: la,
        load_after: load(),
        min_mem_available: r.minAvail,
      });
    }
  }

  // 4. The table.
  const base = rows.find((r) => r.variant === 'bf16');
  console.log(
    `\nGLM-4.1V-9B shape, ${tokens}-token prefill, batch-1 greedy decode — ${cpu}, load average now ${load()}`,
  );
  console.log(
    '| weights | load s | first token s | prefill tok/s | prefill CPU s | decode tok/s | decode CPU s/token | decode vs bf16 (wall / CPU) | RSS after load GB | peak RSS GB |',
  );
  console.log('|---|---|---|---|---|---|---|---|---|---|');
  const f = (x: number | undefined, d: number) => (x === undefined ? 'n/a' : x.toFixed(d));
  for (const r of rows) {
    const vs = r.roundsRatio
      ? r.roundsRatio
      : base && r !== base
        ? `${(r.decode_tok_s / base.decode_tok_s).toFixed(2)}× / ${base.decode_cpu_s_per_token && r.decode_cpu_s_per_token ? `${(base.decode_cpu_s_per_token / r.decode_cpu_s_per_token).toFixed(2)}×` : 'n/a'}`
        : '';
    console.log(
      `| ${r.variant}${r.note ? ` (${r.note})` : ''} | ${r.load_s.toFixed(1)} | ${r.first_token_s.toFixed(1)} | ${r.prefill_tok_s.toFixed(1)} | ${f(r.prefill_cpu_s, 0)} | ${r.decode_tok_s.toFixed(2)} (${r.decode_tokens}) | ${f(r.decode_cpu_s_per_token, 2)} | ${vs} | ${(r.rss_after_load / GB).toFixed(2)} | ${(r.peak_rss / GB).toFixed(2)} |`,
    );
  }
}

main().catch((e) => {
  console.error(`bench:9b: ${(e as Error).message}`);
  process.exit(1);
});
