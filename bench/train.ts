/**
 * Training benchmark (npm run bench:train): tokens/s of pre-training and SFT steps of the shipped small model
 * (configs/train/pretrain.yaml and sft.yaml: ≈3.5M parameters, 112 px images, packed 1024-token sequences,
 * 16 sequences per step in 4 micro-batches), fp32 and bf16 GEMMs, through the real trainer (data loading, packing,
 * AdamW, clipping). The yardstick, measured in the same run: the same model in PyTorch + Hugging Face transformers
 * (built from our config.json) on the same micro-batch, forward + backward + AdamW, eager, same thread count.
 *
 *   npm run bench:train                  # 12 measured steps per configuration
 *   npm run bench:train -- --quick       # 4
 *   npm run bench:train -- --micro-only  # only section 2 (one micro-batch against transformers)
 *   GLMV_PYTHON=/path/to/python npm run bench:train
 *
 * Data is generated once into runs/bench/train/data (deterministic). Results: runs/bench/train.json.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { generateDataset } from '../src/data/dataset.js';
import { generatePretrain } from '../src/data/pretrain.js';
import { getBackend, optim, scope, setMatmulPrecision } from '../src/engine/index.js';
import { loadTrainConfig, type ModelStageConfig, type TokenizerConfig } from '../src/train/config.js';
import { Encoder, type Example, fitExample } from '../src/train/encode.js';
import { buildPools, MixtureStream } from '../src/train/mixture.js';
import { initStageModel } from '../src/train/model.js';
import { assembleRow, Packer, rowInputs } from '../src/train/packing.js';
import { openRecords } from '../src/train/records.js';
import { trainTokenizerStage } from '../src/train/tokenizer.js';
import { runStage, type StageResult, type StepMetrics } from '../src/train/trainer.js';
import { benchProgram } from './cli.js';

const here = dirname(fileURLToPath(import.meta.url));
const root = join(here, '..');
const opts = benchProgram({
  name: 'train',
  description:
    'tokens/s of pre-training and SFT steps of the shipped small model (configs/train/pretrain.yaml, sft.yaml), ' +
    'fp32 and bf16 GEMMs, through the real trainer, against the same model in PyTorch + transformers on the same ' +
    'micro-batch, measured in this run. Results: runs/bench/train.json',
  examples: [
    'npm run bench:train',
    'npm run bench:train -- --quick',
    'npm run bench:train -- --micro-only',
    'GLMV_PYTHON=/path/to/python npm run bench:train -- --quick',
  ],
  environment: [['GLMV_PYTHON', 'the Python (with torch, transformers, numpy) for the peer; else .venv, then python3']],
})
  .option('--quick', '4 measured steps per configuration instead of 12')
  .option('--micro-only', 'only section 2: one micro-batch against transformers')
  .parse()
  .opts<{ quick?: boolean; microOnly?: boolean }>();
const quick = opts.quick === true;
const microOnly = opts.microOnly === true;
const STEPS = quick ? 4 : 12;
const WARMUP = 2;
const out = join(root, 'runs', 'bench', 'train');

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length
    ? s.length % 2
      ? s[(s.length - 1) / 2]!
      : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2
    : Number.NaN;
};

function findPython(): string | null {
  for (const bin of [process.env.GLMV_PYTHON, join(root, '.venv', 'bin', 'python'), 'python3']) {
    if (!bin || (bin.includes('/') && !existsSync(bin))) continue;
    if (spawnSync(bin, ['-c', 'import torch, transformers, numpy'], { encoding: 'utf8' }).status === 0) return bin;
  }
  return null;
}

async function data(): Promise<{ docs: string; samples: string; tokenizer: string }> {
  const dir = join(out, 'data');
  const docs = join(dir, 'pretrain');
  const samples = join(dir, 'samples');
  if (!existsSync(join(docs, 'dataset.json')))
    await generatePretrain({ kinds: 'all', n: 600, split: 'train', seed: 0, difficulty: '1-5', size: 112 }, docs, true);
  if (!existsSync(join(samples, 'dataset.json')))
    await generateDataset(
      { domains: 'all', n: 400, split: 'train', seed: 0, difficulty: '1-5', size: '112', mcq: 'blank' },
      { out: samples, quiet: true },
    );
  const tokDir = join(dir, 'tok');
  if (!existsSync(join(tokDir, 'tokenizer', 'tokenizer.json'))) {
    const c = loadTrainConfig(
      { run: { dir: tokDir }, data: { sources: [{ path: docs }, { path: samples }] }, tokenizer: { vocabSize: 4096 } },
      'tokenizer',
    ) as TokenizerConfig;
    await trainTokenizerStage(c, { quiet: true, log: () => {} });
  }
  return { docs, samples, tokenizer: join(tokDir, 'tokenizer') };
}

interface Measured {
  name: string;
  stepMs: number;
  tokensPerSecond: number;
  dataMs: number;
  packing: number;
  tokensPerStep: number;
  peakMB: number;
  loss: [number, number];
}

async function measure(name: string, cfg: ModelStageConfig): Promise<{ m: Measured; res: StageResult }> {
  rmSync(cfg.run.dir, { recursive: true, force: true });
  const steps: StepMetrics[] = [];
  process.stderr.write(`  ${name}: ${cfg.run.steps} steps…\n`);
  const res = (await runStage(cfg, { quiet: true, log: () => {}, onStep: (s) => steps.push(s) })) as StageResult;
  const timed = steps.slice(WARMUP);
  const peaks = readFileSync(join(cfg.run.dir, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l))
    .filter((r) => r.event === 'train')
    .map((r) => r.peak_mb as number);
  return {
    m: {
      name,
      stepMs: median(timed.map((s) => s.stepMs)),
      tokensPerSecond: (timed.reduce((a, s) => a + s.tokens, 0) / timed.reduce((a, s) => a + s.stepMs, 0)) * 1000,
      dataMs: median(timed.map((s) => s.dataMs)),
      packing: timed.reduce((a, s) => a + s.packingEfficiency, 0) / timed.length,
      tokensPerStep: median(timed.map((s) => s.tokens)),
      peakMB: Math.max(...peaks),
      loss: [steps[0]!.loss, steps[steps.length - 1]!.loss],
    },
    res,
  };
}

/** The first micro-batch of a pre-training config, as glmv packs it and as padded rows for the peer. */
async function firstMicroBatch(cfg: ModelStageConfig) {
  const sm = await initStageModel(cfg);
  const enc = new Encoder({
    tokenizer: sm.tokenizer,
    imageConfig: sm.imageConfig,
    videoConfig: sm.videoConfig,
    template: sm.template,
    style: sm.style,
  });
  const srcs = await Promise.all(cfg.data.sources.map((s) => openRecords(s.path)));
  const pools = buildPools(
    srcs.map((source, k) => ({ source, weight: cfg.data.sources[k]!.weight, key: `s${k}` })),
    cfg.data.mixture,
  );
  const stream = new MixtureStream(pools, cfg.run.seed);
  const packer = new Packer(cfg.pack.seqLen, cfg.batch.microRows);
  for (;;) {
    const ref = stream.peek();
    const rec = ref.source.get(ref.index);
    if (!cfg.data.video && (rec.type === 'doc' ? rec.doc.video : rec.sample.video)) {
      stream.advance();
      continue;
    }
    const ex = fitExample(
      await enc.encodeDoc(rec.type === 'doc' ? rec.doc : enc.sampleAsDoc(rec.sample)),
      cfg.pack.seqLen,
      'truncate',
      enc.ids,
    );
    stream.advance();
    if (!ex) continue;
    if (!packer.add(ex)) break;
  }
  for (const s of srcs) s.close();
  const padId = sm.tokenizer.padTokenId ?? enc.ids.eos;
  const row = assembleRow(
    packer.bins.flatMap((b) => b.examples),
    { padId, padMultiple: cfg.pack.padMultiple },
  );
  const L = cfg.pack.seqLen;
  const rows = packer.bins.map((b) => {
    const ids = new Array(L).fill(padId);
    const labels = new Array(L).fill(-100);
    const mask = new Array(L).fill(0);
    let o = 0;
    for (const e of b.examples as Example[]) {
      for (let i = 0; i < e.ids.length; i++) {
        ids[o + i] = e.ids[i]!;
        labels[o + i] = e.labels[i]!;
        mask[o + i] = 1;
      }
      o += e.ids.length;
    }
    return { ids, labels, mask };
  });
  return { sm, row, rows };
}

async function main() {
  const be = getBackend() as unknown as { name: string; info?: () => { threads: number; onednn: string } };
  const info = be.info?.();
  console.log(
    `glmv training benchmark — ${cpus()[0]?.model ?? 'cpu'}, ${cpus().length} cores, backend ${be.name}${info ? ` (oneDNN ${info.onednn}, ${info.threads} threads)` : ''}`,
  );
  const py = findPython();
  console.log(
    py
      ? `peer: ${py} (torch + transformers)`
      : 'peer: no Python with torch + transformers (set GLMV_PYTHON); peer columns empty',
  );
  const d = await data();
  const sets = (dir: string, precision: string) => [
    `run.dir=${dir}`,
    `run.steps=${STEPS + WARMUP}`,
    'run.checkpointEvery=0',
    `precision=${precision}`,
    'eval={}',
    'optim.warmupSteps=1',
  ];
  const pretrain = (precision: string) =>
    loadTrainConfig('configs/train/pretrain.yaml', 'pretrain', [
      ...sets(join(out, `pretrain-${precision}`), precision),
      `model.tokenizer=${d.tokenizer}`,
      `data.sources=[{path: ${d.docs}}]`,
    ]) as ModelStageConfig;
  const results: Measured[] = [];
  let parameters = 0;
  if (!microOnly) {
    const pre32 = await measure('pretrain fp32', pretrain('fp32'));
    parameters = pre32.res.parameters;
    results.push(pre32.m);
    results.push((await measure('pretrain bf16', pretrain('bf16'))).m);
    const sft = (precision: string) =>
      loadTrainConfig('configs/train/sft.yaml', 'sft', [
        ...sets(join(out, `sft-${precision}`), precision),
        `model.init=${pre32.res.checkpoint}`,
        `data.sources=[{path: ${d.samples}}]`,
        'sft.filter.enabled=false',
      ]) as ModelStageConfig;
    results.push((await measure('sft fp32', sft('fp32'))).m);
    results.push((await measure('sft bf16', sft('bf16'))).m);
    console.log(
      `\n1. trainer steps (median of ${STEPS} after ${WARMUP} warm-up; ${parameters.toLocaleString()} parameters; data loading included)`,
    );
    console.log(
      '   configuration   step      tokens/s   tokens/step  data/step  packing  peak tensors  loss first→last',
    );
  }
  for (const r of results)
    console.log(
      `   ${r.name.padEnd(15)} ${(r.stepMs / 1000).toFixed(2).padStart(5)} s ${r.tokensPerSecond.toFixed(0).padStart(9)} ${r.tokensPerStep.toFixed(0).padStart(12)} ${r.dataMs.toFixed(0).padStart(7)} ms ${(100 * r.packing).toFixed(1).padStart(6)}% ${r.peakMB.toFixed(0).padStart(9)} MB   ${r.loss[0].toFixed(2)} → ${r.loss[1].toFixed(2)}`,
    );

  // 2. One micro-batch, glmv against transformers.
  const cfg = pretrain('fp32');
  const { sm, row, rows } = await firstMicroBatch(cfg);
  const model = sm.model;
  const opt = new optim.AdamW(model.parameters(), { lr: 1e-4 });
  const ours = (precision: 'float32' | 'bfloat16') => {
    setMatmulPrecision(precision);
    const t: number[] = [];
    for (let i = 0; i < WARMUP + STEPS; i++) {
      const t0 = performance.now();
      scope(() => {
        model.forward({ ...rowInputs(row), lossReduction: 'mean' }).loss!.backward();
        opt.step();
        opt.zeroGrad();
      });
      if (i >= WARMUP) t.push(performance.now() - t0);
    }
    setMatmulPrecision('float32');
    return median(t);
  };
  const oursFp32 = ours('float32');
  const oursBf16 = ours('bfloat16');
  const folder = join(out, 'peer');
  mkdirSync(folder, { recursive: true });
  const peer: Record<string, number | null> = { fp32: null, bf16: null };
  let peerInfo = '';
  if (py) {
    const { writeModelFolder } = await import('../src/train/model.js');
    await writeModelFolder(folder, sm);
    writeFileSync(
      join(folder, 'batch.json'),
      JSON.stringify({
        input_ids: rows.map((r) => r.ids),
        attention_mask: rows.map((r) => r.mask),
        labels: rows.map((r) => r.labels),
        // transformers 5 wants the token types for M-RoPE (1 = image token; the batch holds no video).
        mm_token_type_ids: rows.map((r) => r.ids.map((id: number) => (id === sm.config.imageTokenId ? 1 : 0))),
        image_grid_thw: row.imageGridThw,
        patch_dim: row.pixelValues
          ? row.pixelValues.length / row.imageGridThw.reduce((a, g) => a + g[0] * g[1] * g[2], 0)
          : 1176,
      }),
    );
    writeFileSync(join(folder, 'pixels.bin'), Buffer.from((row.pixelValues ?? new Float32Array(0)).buffer));
    for (const mode of ['fp32', 'bf16']) {
      const r = spawnSync(
        py,
        [
          join(here, 'peers', 'torch_glm4v_train.py'),
          folder,
          join(folder, 'batch.json'),
          join(folder, 'pixels.bin'),
          String(STEPS),
          String(WARMUP),
          String(info?.threads ?? cpus().length),
          mode,
        ],
        { encoding: 'utf8' },
      );
      if (r.status === 0) {
        const j = JSON.parse(r.stdout.trim().split('\n').pop()!);
        peer[mode] = median(j.step_ms);
        peerInfo = `torch ${j.torch}, transformers ${j.transformers}, ${j.threads} threads`;
      } else console.log(`peer (${mode}) failed: ${r.stderr.slice(-600)}`);
    }
  }
  const tokens = row.realTokens;
  console.log(
    `\n2. one micro-batch (${rows.length} packed sequences, ${tokens} tokens, ${row.imageGridThw.length} images): forward + backward + AdamW, median of ${STEPS}`,
  );
  console.log(`   peer: ${py ? peerInfo : 'n/a'} (padded rows, full causal attention per row)`);
  console.log('                glmv                 transformers         glmv/transformers');
  for (const [label, o, p] of [
    ['fp32', oursFp32, peer.fp32],
    ['bf16', oursBf16, peer.bf16],
  ] as const)
    console.log(
      `   ${label.padEnd(6)} ${o.toFixed(0).padStart(6)} ms ${((tokens / o) * 1000).toFixed(0).padStart(6)} tok/s   ${p ? `${p.toFixed(0).padStart(6)} ms ${((tokens / p) * 1000).toFixed(0).padStart(6)} tok/s` : '           n/a      '}   ${p ? `${(o / p).toFixed(2)}× time` : ''}`,
    );
  const file = join(root, 'runs', 'bench', 'train.json');
  writeFileSync(
    file,
    JSON.stringify(
      {
        date: new Date().toISOString(),
        steps: STEPS,
        parameters,
        trainer: results,
        microBatch: {
          tokens,
          images: row.imageGridThw.length,
          glmv: { fp32: oursFp32, bf16: oursBf16 },
          transformers: peer,
          peer: peerInfo,
        },
      },
      null,
      2,
    ),
  );
  console.log(`\nwrote ${join('runs', 'bench', 'train.json')}`);
}

await main();
