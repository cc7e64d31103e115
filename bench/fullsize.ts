/**
 * Full-size check (npm run bench:fullsize): a GLM-4.1V-9B-shaped checkpoint with random bf16 weights is written to
 * disk as HF-style shards (one per decoder layer, plus embeddings, vision tower and head), loaded with
 * `Glm4vForConditionalGeneration.fromPretrained`, and run on a 1024-token prefill through the first `--layers`
 * decoder layers (default 2). Reports load time, prefill tokens/s and peak RSS, and extrapolates them to the full
 * 40-layer model (target: peak RSS ≤ 20 GB). The same checkpoint is then loaded and run by Hugging Face transformers
 * (bf16, CPU) in the same run as the peer, when a Python with torch + transformers is found; the last-token logits of
 * both are compared.
 *
 *   npm run bench:fullsize                       # 2 layers, 1024 tokens, peer if available
 *   npm run bench:fullsize -- --layers 4 --tokens 512 --vision 1024
 *   npm run bench:fullsize -- --no-peer --keep --dir /data/glm41v-random
 *
 * Disk: about 2.5 GB (embeddings + head) + 1.8 GB (vision) + 0.41 GB per layer, removed at the end unless --keep.
 * Metrics: one JSON line per phase in runs/bench/fullsize.jsonl (--metrics to change).
 */
import { spawnSync } from 'node:child_process';
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statfsSync,
  writeFileSync,
} from 'node:fs';
import { cpus, freemem, tmpdir, totalmem } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Command } from 'commander';
import { clearPool, fromArray, getBackend, noGrad, saveSafetensors, scope, type Tensor } from '../src/engine/index.js';
import { configJsonText, countParameters, type Glm4vConfig } from '../src/model/config.js';
import { Glm4vForConditionalGeneration } from '../src/model/glm4v.js';
import { glm41v9bConfig } from '../src/model/presets.js';
import { MetricsWriter, Progress } from '../src/util/progress.js';
import { procStatus } from './proc.js';

const here = dirname(fileURLToPath(import.meta.url));
const GB = 1e9;
const GiB = 1024 ** 3;

interface Opts {
  layers: number;
  tokens: number;
  vision: number;
  dir?: string;
  keep: boolean;
  peer: boolean;
  metrics: string;
  phase: 'all' | 'write';
  seed: number;
}

const program = new Command()
  .name('bench:fullsize')
  .description('GLM-4.1V-9B-shaped random bf16 checkpoint: write, load, 1024-token prefill, extrapolate to 40 layers')
  .option('--layers <n>', 'decoder layers written, loaded and run', (v) => positiveInt(v, '--layers'), 2)
  .option('--tokens <n>', 'prefill length', (v) => positiveInt(v, '--tokens'), 1024)
  .option(
    '--vision <patches>',
    'also time the vision tower on one image of this many patches (0 = skip)',
    (v) => nonNegInt(v, '--vision'),
    0,
  )
  .option('--dir <path>', 'checkpoint folder (default: a fresh folder under the system temp dir)')
  .option('--keep', 'keep the checkpoint afterwards', false)
  .option('--no-peer', 'skip the transformers peer')
  .option('--metrics <file>', 'JSONL metrics file', join(here, '..', 'runs', 'bench', 'fullsize.jsonl'))
  .option('--seed <n>', 'weight seed', (v) => nonNegInt(v, '--seed'), 1)
  .option('--phase <phase>', 'internal: "write" runs only the checkpoint writer (in a child process)', 'all')
  .addHelpText(
    'after',
    `
Examples:
  npm run bench:fullsize
  npm run bench:fullsize -- --layers 4 --tokens 512
  npm run bench:fullsize -- --vision 1024 --no-peer
  GLMV_PYTHON=/path/to/python npm run bench:fullsize`,
  );

function positiveInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}: expected a positive integer, got ${JSON.stringify(v)}`);
  return n;
}
function nonNegInt(v: string, name: string): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0)
    throw new Error(`${name}: expected a non-negative integer, got ${JSON.stringify(v)}`);
  return n;
}

/** The 9B config cut to `layers` decoder layers (everything else full size). */
function benchConfig(layers: number): Glm4vConfig {
  const c = glm41v9bConfig();
  if (layers > c.text.numHiddenLayers)
    throw new Error(`--layers: the model has ${c.text.numHiddenLayers} layers, got ${layers}`);
  return { ...c, text: { ...c.text, numHiddenLayers: layers } };
}

// ---------------------------------------------------------------------------------------------------------------
// Writing: random bf16 tensors, shard by shard, in a child process so its memory does not count below.

/** xorshift32 uniform(−a, a) as bf16 bits (truncated float32), written in chunks. */
function randomBf16(n: number, a: number, state: { s: number }): Uint16Array {
  const out = new Uint16Array(n);
  const CH = 1 << 20;
  const f = new Float32Array(CH);
  const u = new Uint32Array(f.buffer);
  let s = state.s;
  for (let off = 0; off < n; off += CH) {
    const m = Math.min(CH, n - off);
    for (let i = 0; i < m; i++) {
      s ^= s << 13;
      s ^= s >>> 17;
      s ^= s << 5;
      f[i] = ((s >>> 0) / 4294967296 - 0.5) * 2 * a;
    }
    for (let i = 0; i < m; i++) out[off + i] = (u[i] as number) >>> 16;
  }
  state.s = s;
  return out;
}

function writeCheckpoint(dir: string, cfg: Glm4vConfig, seed: number): void {
  // Names and shapes come from the model itself (built with empty placeholders: nothing is allocated for real).
  const skeleton = new Glm4vForConditionalGeneration(cfg, { init: 'empty', dtype: 'bfloat16' });
  const groups = new Map<string, Array<[string, number[]]>>();
  for (const [name, p] of skeleton.namedParameters()) {
    const m = /^model\.language_model\.layers\.(\d+)\./.exec(name);
    const g = m
      ? `layer${m[1]!.padStart(3, '0')}`
      : name.startsWith('model.visual.')
        ? 'visual'
        : name.includes('embed_tokens')
          ? 'embed'
          : 'head';
    if (!groups.has(g)) groups.set(g, []);
    groups.get(g)!.push([name, [...p.shape]]);
  }
  const order = ['embed', ...[...groups.keys()].filter((g) => g.startsWith('layer')).sort(), 'visual', 'head'];
  const files = order.map(
    (_, i) => `model-${String(i + 1).padStart(5, '0')}-of-${String(order.length).padStart(5, '0')}.safetensors`,
  );
  const weightMap: Record<string, string> = {};
  const state = { s: (seed * 2654435761) >>> 0 || 1 };
  const bar = new Progress({ label: 'write', total: order.length });
  let total = 0;
  order.forEach((g, i) => {
    const tensors = new Map<string, Tensor>();
    for (const [name, shape] of groups.get(g)!) {
      const n = shape.reduce((a, b) => a * b, 1);
      if (name.endsWith('e_score_correction_bias')) continue;
      const isNorm = /norm\d?\.weight$|layernorm\.weight$/.test(name);
      const isBias = name.endsWith('.bias');
      const bits = isNorm ? new Uint16Array(n).fill(0x3f80) : randomBf16(n, isBias ? 0.01 : 0.035, state); // 0x3f80 = 1.0
      tensors.set(name, fromArray(bits, shape, 'bfloat16'));
      weightMap[name] = files[i]!;
      total += n * 2;
    }
    saveSafetensors(join(dir, files[i]!), tensors, { format: 'pt' });
    bar.update(i + 1, `${(total / GiB).toFixed(1)} GiB`);
  });
  bar.stop();
  writeFileSync(
    join(dir, 'model.safetensors.index.json'),
    JSON.stringify({ metadata: { total_size: total }, weight_map: weightMap }),
  );
  writeFileSync(join(dir, 'config.json'), configJsonText(cfg, { torch_dtype: 'bfloat16' }));
}

// ---------------------------------------------------------------------------------------------------------------
// Measuring

/** Resets the kernel's peak-RSS counter (VmHWM) for this process. */
function resetPeakRss(): boolean {
  try {
    writeFileSync('/proc/self/clear_refs', '5');
    return true;
  } catch {
    return false;
  }
}

function tokens(n: number, vocab: number, seed: number): number[] {
  let s = seed * 7919 + 17;
  return Array.from({ length: n }, () => {
    s = (s * 1103515245 + 12345) % 2147483648;
    return 3 + (s % (vocab - 1000));
  });
}

const PEER = `
import json, resource, sys, time
import torch
from transformers import Glm4vForConditionalGeneration
torch.set_num_threads(int(sys.argv[3]))
ids = torch.tensor([json.load(open(sys.argv[2]))])
t0 = time.time()
model = Glm4vForConditionalGeneration.from_pretrained(sys.argv[1], dtype=torch.bfloat16).eval()
load = time.time() - t0
rss_load = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
times = []
with torch.no_grad():
    for _ in range(2):  # cold, then warm (as measured for glmv)
        t0 = time.time()
        out = model(input_ids=ids, logits_to_keep=1, use_cache=True)
        times.append(time.time() - t0)
print(json.dumps({"load_s": load, "cold_prefill_s": times[0], "prefill_s": times[1], "peak_rss": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                  "rss_after_load": rss_load, "logits": out.logits[0, -1].float().tolist(), "torch": torch.__version__}))
`;

function findPython(): string | null {
  const cands = [process.env.GLMV_PYTHON, join(here, '..', '.venv', 'bin', 'python'), 'python3'].filter(
    Boolean,
  ) as string[];
  for (const bin of cands) {
    if (bin.includes('/') && !existsSync(bin)) continue;
    const r = spawnSync(bin, ['-c', 'import torch, transformers'], { encoding: 'utf8' });
    if (r.status === 0) return bin;
  }
  return null;
}

function fmtB(b: number): string {
  return `${(b / GB).toFixed(2)} GB (${(b / GiB).toFixed(2)} GiB)`;
}

async function main(): Promise<void> {
  program.parse();
  const o = program.opts<Opts>();
  const cfg = benchConfig(o.layers);
  const full = glm41v9bConfig();

  if (o.phase === 'write') {
    if (!o.dir) throw new Error('--phase write needs --dir');
    writeCheckpoint(o.dir, cfg, o.seed);
    return;
  }

  if (o.dir && existsSync(o.dir) && readdirSync(o.dir).length > 0)
    throw new Error(
      `--dir ${o.dir}: must be a new or empty folder (everything in it is removed afterwards unless --keep)`,
    );
  const dir = o.dir ?? mkdtempSync(join(tmpdir(), 'glmv-fullsize-'));
  mkdirSync(dir, { recursive: true });
  const metrics = new MetricsWriter(o.metrics);
  const counts = countParameters(cfg);
  const need = counts.total * 2;
  const free = statfsSync(dir).bavail * statfsSync(dir).bsize;
  if (free < need * 1.1) throw new Error(`--dir ${dir}: ${fmtB(need)} needed on disk, ${fmtB(free)} free`);
  const cleanup = () => {
    if (!o.keep) rmSync(dir, { recursive: true, force: true });
  };
  process.on('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    console.log(
      `glmv fullsize bench — ${cpus().length} cores (${cpus()[0]?.model ?? '?'}), ${(totalmem() / GiB).toFixed(1)} GiB RAM, backend ${getBackend().name}`,
    );
    console.log(
      `checkpoint: GLM-4.1V-9B shapes, ${o.layers}/${full.text.numHiddenLayers} decoder layers, ${(counts.total / 1e9).toFixed(2)}B params, ${fmtB(need)} bf16 → ${dir}`,
    );

    // 1. Write (child process).
    let t0 = performance.now();
    const w = spawnSync(
      process.execPath,
      [
        ...process.execArgv,
        fileURLToPath(import.meta.url),
        '--phase',
        'write',
        '--dir',
        dir,
        '--layers',
        String(o.layers),
        '--seed',
        String(o.seed),
      ],
      { stdio: ['ignore', 'inherit', 'inherit'] },
    );
    if (w.status !== 0) throw new Error(`checkpoint writer failed (exit ${w.status})`);
    const writeS = (performance.now() - t0) / 1000;
    metrics.write({ phase: 'write', seconds: writeS, bytes: need, layers: o.layers });
    console.log(`write: ${writeS.toFixed(1)} s`);

    // 2. Load.
    const base = procStatus();
    const canReset = resetPeakRss();
    t0 = performance.now();
    const { model, report } = Glm4vForConditionalGeneration.fromPretrained(dir, { progress: true });
    const loadS = (performance.now() - t0) / 1000;
    const afterLoad = procStatus();
    if (report.missing.length || report.unexpected.length)
      throw new Error('load: unexpected missing/unexpected tensors');
    metrics.write({
      phase: 'load',
      seconds: loadS,
      bytes: report.bytes,
      rss: afterLoad.rss,
      peak_rss: afterLoad.hwm,
      base_rss: base.rss,
    });
    console.log(
      `load: ${loadS.toFixed(1)} s, ${(report.bytes / loadS / GB).toFixed(2)} GB/s (page cache warm from the write), RSS ${fmtB(afterLoad.rss)}, peak ${fmtB(afterLoad.hwm)}`,
    );

    // 3. Prefill with a KV cache, timing each decoder layer.
    const ids = tokens(o.tokens, cfg.text.vocabSize, o.seed);
    const layerMs: number[] = [];
    for (const layer of model.model.language_model.layers) {
      const fwd = layer.forward.bind(layer);
      layer.forward = ((x: Tensor, ctx: Parameters<typeof fwd>[1]) => {
        const s = performance.now();
        const y = fwd(x, ctx);
        layerMs.push(performance.now() - s);
        return y;
      }) as typeof layer.forward;
    }
    resetPeakRss();
    // Two prefills: the first is cold (buffer pages faulted in, GEMM kernels generated), the second is the
    // steady state that a serving process sees and that the extrapolation uses.
    const prefill = () => {
      layerMs.length = 0;
      const cache = model.newCache(o.tokens);
      const s = performance.now();
      const logits = noGrad(() =>
        scope(() => model.forward({ inputIds: [ids], cache, logitsToKeep: 1 }).logits.toFloat32()),
      );
      const seconds = (performance.now() - s) / 1000;
      const kv = cache.bytes;
      cache.dispose();
      return { seconds, logits, kv, layers: layerMs.map((x) => x / 1000) };
    };
    const cold = prefill();
    const warm = prefill();
    const last = warm.logits;
    const prefillS = warm.seconds;
    const afterPrefill = procStatus();
    const kvPerLayer = warm.kv / o.layers;
    const meanLayer = warm.layers.reduce((a, b) => a + b, 0) / warm.layers.length;
    const rest = prefillS - meanLayer * o.layers;
    metrics.write({
      phase: 'prefill',
      tokens: o.tokens,
      cold_seconds: cold.seconds,
      seconds: prefillS,
      layer_seconds: warm.layers,
      cold_layer_seconds: cold.layers,
      peak_rss: afterPrefill.hwm,
    });
    console.log(
      `prefill ${o.tokens} tokens: cold ${cold.seconds.toFixed(2)} s, warm ${prefillS.toFixed(2)} s = ${(o.tokens / prefillS).toFixed(1)} tok/s (${meanLayer.toFixed(2)} s per decoder layer, ${rest.toFixed(2)} s embeddings/rope/norm/head), peak RSS ${fmtB(afterPrefill.hwm)}`,
    );

    // 4. Optional vision tower timing.
    let visionS = 0;
    let visionPeak = 0;
    if (o.vision > 0) {
      // Buffers pooled for the prefill's shapes are useless to the vision tower: drop them (a server does the same
      // between differently shaped requests) and measure this phase's peak on its own.
      clearPool();
      resetPeakRss();
      const side = Math.max(2, 2 * Math.round(Math.sqrt(o.vision) / 2));
      const n = side * side;
      const px = fromArray(
        Float32Array.from({ length: n * 1176 }, (_, i) => Math.sin(i) * 0.5),
        [n, 1176],
      );
      t0 = performance.now();
      noGrad(() => scope(() => model.getImageFeatures(px, [[1, side, side]]).shape));
      visionS = (performance.now() - t0) / 1000;
      visionPeak = procStatus().hwm;
      metrics.write({ phase: 'vision', patches: n, seconds: visionS, peak_rss: visionPeak });
      console.log(
        `vision tower: ${n} patches (${n / 4} LLM tokens) in ${visionS.toFixed(2)} s = ${(n / visionS).toFixed(1)} patches/s, peak RSS ${fmtB(visionPeak)}`,
      );
    }

    // 5. Extrapolate to 40 layers.
    const L = full.text.numHiddenLayers;
    const fullCounts = countParameters(full);
    const layerBytes = ((counts.text - (cfg.text.vocabSize + 1) * cfg.text.hiddenSize) / o.layers) * 2;
    const extra = (L - o.layers) * (layerBytes + kvPerLayer);
    const fullPeak = Math.max(afterLoad.hwm, afterPrefill.hwm) + extra;
    const fullVisionPeak = visionPeak ? visionPeak + (L - o.layers) * layerBytes : null;
    const fullLoad = loadS * ((fullCounts.total * 2) / report.bytes);
    const fullPrefill = rest + meanLayer * L;
    const summary = {
      phase: 'extrapolated',
      layers: L,
      weights_bytes: fullCounts.total * 2,
      peak_rss: fullPeak,
      vision_peak_rss: fullVisionPeak,
      load_seconds: fullLoad,
      prefill_seconds: fullPrefill,
      prefill_tokens_per_s: o.tokens / fullPrefill,
      peak_reset_supported: canReset,
      free_ram_now: freemem(),
    };
    metrics.write(summary);
    console.log(`\nfull ${L}-layer model (extrapolated from ${o.layers} layers, ${fmtB(layerBytes)} per layer):`);
    console.log(`  weights       ${fmtB(fullCounts.total * 2)} (${(fullCounts.total / 1e9).toFixed(2)}B params)`);
    console.log(
      `  peak RSS      ${fmtB(fullPeak)} (load + ${o.tokens}-token prefill) → target ≤ 20 GB: ${fullPeak <= 20 * GB ? 'met' : fullPeak <= 20 * GiB ? `met in GiB (20 GiB), not in decimal GB (the bf16 weights alone are ${fmtB(fullCounts.total * 2)})` : 'NOT met'}`,
    );
    if (fullVisionPeak) console.log(`  vision phase  ${fmtB(fullVisionPeak)} peak RSS`);
    console.log(`  load          ${fullLoad.toFixed(0)} s at the measured rate`);
    console.log(
      `  prefill       ${fullPrefill.toFixed(1)} s for ${o.tokens} tokens = ${(o.tokens / fullPrefill).toFixed(1)} tok/s`,
    );

    // 6. Peer: transformers on the same files (our weights are released first so both fit in RAM).
    for (const [, p] of model.namedParameters()) p.dispose();
    (globalThis as { gc?: () => void }).gc?.();
    if (o.peer) {
      const py = findPython();
      if (!py) console.log('\npeer: no Python with torch + transformers found (set GLMV_PYTHON); skipped');
      else {
        writeFileSync(join(dir, 'peer.py'), PEER);
        writeFileSync(join(dir, 'ids.json'), JSON.stringify(ids));
        console.log(`\npeer: transformers (${py}), bf16, ${cpus().length} threads …`);
        const r = spawnSync(py, [join(dir, 'peer.py'), dir, join(dir, 'ids.json'), String(cpus().length)], {
          encoding: 'utf8',
          maxBuffer: 1 << 28,
        });
        if (r.status !== 0) console.log(`peer failed: ${r.stderr.slice(-2000)}`);
        else {
          const p = JSON.parse(r.stdout.trim().split('\n').pop()!);
          const logits = Float32Array.from(p.logits as number[]);
          let md = 0;
          let ma = 0;
          for (let i = 0; i < logits.length; i++) {
            md = Math.max(md, Math.abs(logits[i]! - last[i]!));
            ma = Math.max(ma, Math.abs(logits[i]!));
          }
          metrics.write({
            phase: 'peer',
            torch: p.torch,
            load_seconds: p.load_s,
            cold_prefill_seconds: p.cold_prefill_s,
            prefill_seconds: p.prefill_s,
            peak_rss: p.peak_rss,
            logits_max_abs_diff: md,
          });
          console.log(`  | ${'metric'.padEnd(22)} | ${'glmv'.padStart(16)} | ${'transformers'.padStart(16)} | ratio |`);
          const row = (k: string, a: number, b: number, unit: string) =>
            console.log(
              `  | ${k.padEnd(22)} | ${(a.toFixed(2) + unit).padStart(16)} | ${(b.toFixed(2) + unit).padStart(16)} | ${(a / b).toFixed(2).padStart(5)} |`,
            );
          row('load (s)', loadS, p.load_s, ' s');
          row(`cold prefill ${o.tokens} (tok/s)`, o.tokens / cold.seconds, o.tokens / p.cold_prefill_s, '');
          row(`prefill ${o.tokens} (tok/s)`, o.tokens / prefillS, o.tokens / p.prefill_s, '');
          row('peak RSS (GB)', Math.max(afterLoad.hwm, afterPrefill.hwm) / GB, p.peak_rss / GB, '');
          console.log(
            `  last-token logits: max |glmv − transformers| = ${md.toFixed(4)} (max |logit| ${ma.toFixed(2)}; bf16 weights, both runs)`,
          );
        }
      }
    }
  } finally {
    cleanup();
  }
}

main().catch((e) => {
  console.error(`bench:fullsize: ${(e as Error).message}`);
  process.exit(1);
});
