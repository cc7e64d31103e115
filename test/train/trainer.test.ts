/** The training loop end to end on a tiny model: exact resume, SFT memorisation, checkpoints, MoE, run-folder safety. */
import { cpSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import type { Sample } from '../../src/data/sample.js';
import { sftTarget } from '../../src/data/sft.js';
import { loadSafetensors } from '../../src/engine/index.js';
import { ChatModel } from '../../src/io/chat.js';
import { findCheckpoint, listCheckpoints, readTrainerState } from '../../src/train/checkpoint.js';
import { loadTrainConfig, type ModelStageConfig } from '../../src/train/config.js';
import { Encoder } from '../../src/train/encode.js';
import { planStage, type StagePlan } from '../../src/train/plan.js';
import { openRecords } from '../../src/train/records.js';
import { runStage, type StageResult, type StepMetrics } from '../../src/train/trainer.js';
import { baseConfig, type Fixture, fixture } from './helpers.js';

let f: Fixture;
let tmp: string;
beforeAll(async () => {
  f = await fixture();
  tmp = mkdtempSync(join(tmpdir(), 'glmv-trainer-'));
});

const quiet = { quiet: true, log: () => {} };

function cfg(stage: 'pretrain' | 'sft', dir: string, extra: Record<string, unknown> = {}): ModelStageConfig {
  return loadTrainConfig(baseConfig(f, dir, extra as never), stage) as ModelStageConfig;
}

describe('resume', () => {
  it('continues bit for bit after an interruption: same losses, same weights, same optimizer state', async () => {
    const extra = {
      run: { dir: '', steps: 6, checkpointEvery: 2, seed: 3 },
      data: { sources: [{ path: f.docs }, { path: f.samples, weight: 0.5 }] },
      optim: { lr: 3e-3, warmupSteps: 2, schedule: 'cosine' },
    };
    const full = join(tmp, 'full');
    const losses: number[] = [];
    const a = (await runStage(cfg('pretrain', full, { ...extra, run: { ...extra.run, dir: full } }), {
      ...quiet,
      onStep: (m) => losses.push(m.loss),
    })) as StageResult;
    expect(a.steps).toBe(6);

    // The same run, interrupted (as Ctrl-C does) after step 3, then resumed from its run folder.
    const cut = join(tmp, 'cut');
    const c = cfg('pretrain', cut, { ...extra, run: { ...extra.run, dir: cut } });
    const ac = new AbortController();
    const first: number[] = [];
    const b1 = (await runStage(c, {
      ...quiet,
      signal: ac.signal,
      onStep: (m: StepMetrics) => {
        first.push(m.loss);
        if (m.step === 3) ac.abort();
      },
    })) as StageResult;
    expect(b1.interrupted).toBe(true);
    expect(b1.steps).toBe(3);
    expect(readTrainerState(findCheckpoint(cut)).step).toBe(3);
    const second: number[] = [];
    const b2 = (await runStage(c, { ...quiet, resume: cut, onStep: (m) => second.push(m.loss) })) as StageResult;
    expect(b2.resumedFrom).toBe(join(cut, 'checkpoints', 'step-000003'));
    expect([...first, ...second]).toEqual(losses); // exact, not approximate
    const wa = loadSafetensors(join(full, 'final', 'model.safetensors'));
    const wb = loadSafetensors(join(cut, 'final', 'model.safetensors'));
    for (const [n, t] of wa)
      expect(Buffer.from(wb.get(n)!.toFloat32().buffer).equals(Buffer.from(t.toFloat32().buffer)), n).toBe(true);
    const oa = loadSafetensors(join(full, 'checkpoints', 'step-000006', 'optimizer.safetensors'));
    const ob = loadSafetensors(join(cut, 'checkpoints', 'step-000006', 'optimizer.safetensors'));
    for (const [n, t] of oa) expect([...ob.get(n)!.toFloat32()], n).toEqual([...t.toFloat32()]);
    // Kept: the newest two checkpoints (keepCheckpoints default 2).
    expect(listCheckpoints(cut)).toEqual(['step-000004', 'step-000006']);
    const sa = readTrainerState(join(full, 'checkpoints', 'step-000006'));
    const sb = readTrainerState(join(cut, 'checkpoints', 'step-000006'));
    expect(sb.data).toEqual(sa.data);
    expect(sb.rng).toEqual(sa.rng);
    expect(sb.totals.tokens).toBe(sa.totals.tokens);
  });

  it('ignores a half-written checkpoint and refuses to train over checkpoints or with a changed config', async () => {
    const dir = join(tmp, 'guard');
    const c = cfg('pretrain', dir, { run: { dir, steps: 2, checkpointEvery: 1 } });
    await runStage(c, quiet);
    // A crash mid-save leaves a temporary folder and no trainer state: never picked up.
    mkdirSync(join(dir, 'checkpoints', '.step-000003.tmp-999'), { recursive: true });
    mkdirSync(join(dir, 'checkpoints', 'step-000009'), { recursive: true });
    writeFileSync(join(dir, 'checkpoints', 'step-000009', 'config.json'), '{');
    writeFileSync(join(dir, 'checkpoints', 'latest'), 'step-000009\n');
    expect(findCheckpoint(dir)).toBe(join(dir, 'checkpoints', 'step-000002'));
    await expect(runStage(c, quiet)).rejects.toThrow(/already holds checkpoints; continue it with --resume/);
    const changed = cfg('pretrain', dir, {
      run: { dir, steps: 4, checkpointEvery: 1 },
      optim: { lr: 1e-2, warmupSteps: 1 },
    });
    await expect(runStage(changed, { ...quiet, resume: dir })).rejects.toThrow(
      /differs from the checkpoint's in .*optim\.lr/,
    );
    await expect(runStage(c, { ...quiet, resume: dir })).rejects.toThrow(/nothing left to train/);
    // A checkpoint folder without its optimizer moments cannot continue exactly.
    const orphan = join(tmp, 'orphan');
    cpSync(join(dir, 'checkpoints', 'step-000001'), orphan, { recursive: true });
    rmSync(join(orphan, 'optimizer.safetensors'));
    await expect(runStage(c, { ...quiet, resume: orphan })).rejects.toThrow(
      /no optimizer\.safetensors \(a final model folder keeps only the weights\)/,
    );
    await expect(runStage(c, { ...quiet, resume: join(tmp, 'nope') })).rejects.toThrow(
      /--resume .*nope: no such folder/,
    );
  });
});

describe('data selection', () => {
  it('data.video: false trains on no record with a video; the default includes them', async () => {
    const plan = async (video: boolean) =>
      planStage(cfg('pretrain', join(tmp, 'plan'), { data: { sources: [{ path: f.docs }], video } }), {
        measure: false,
      });
    const withVideo = await plan(true);
    const without = await plan(false);
    const records = (p: StagePlan) => p.pools.reduce((a, x) => a + x.records, 0);
    expect(withVideo.pools.some((p) => p.group === 'video_caption')).toBe(true);
    expect(without.pools.some((p) => p.group === 'video_caption')).toBe(false);
    expect(records(without)).toBeLessThan(records(withVideo));
    expect(without.microBatchMs).toBeNull();
  });
});

describe('bad data', () => {
  it('a missing image stops the run with the source, the record and the file named', async () => {
    const dir = join(tmp, 'noimg-data');
    mkdirSync(dir);
    const shard = join(f.samples, 'shard-00000');
    const lines = readFileSync(join(shard, 'samples.jsonl'), 'utf8')
      .split('\n')
      .filter((l) => l.includes('"images":["img/'));
    writeFileSync(join(dir, 'samples.jsonl'), `${lines[0]}\n`); // its image stays behind in the fixture
    const run = join(tmp, 'noimg');
    const c = cfg('pretrain', run, {
      run: { dir: run, steps: 1 },
      data: { sources: [{ path: join(dir, 'samples.jsonl') }] },
    });
    const id = JSON.parse(lines[0]!).id as string;
    await expect(runStage(c, quiet)).rejects.toThrow(
      new RegExp(
        `data source .*samples\\.jsonl, record ${id.replace(/[/.]/g, '\\$&')}: image .*\\.png: file not found`,
      ),
    );
  });
});

describe('checkpoints', () => {
  it('are complete model folders that glmv chat loads', async () => {
    const dir = join(tmp, 'folder');
    const res = (await runStage(cfg('pretrain', dir, { run: { dir, steps: 1 } }), quiet)) as StageResult;
    for (const file of [
      'config.json',
      'model.safetensors',
      'tokenizer.json',
      'tokenizer_config.json',
      'chat_template.jinja',
      'preprocessor_config.json',
      'video_preprocessor_config.json',
      'trainer_state.json',
    ])
      expect(existsSync(join(res.checkpoint, file)), file).toBe(true);
    const chat = await ChatModel.load(res.checkpoint);
    const out = await chat.chat([{ role: 'user', content: 'hello' }], { maxNewTokens: 3 });
    expect(out.completionTokens).toBeGreaterThan(0);
    const pre = JSON.parse(readFileSync(join(res.checkpoint, 'preprocessor_config.json'), 'utf8'));
    expect(pre.patch_size).toBe(14);
  });
});

describe('SFT on a handful of samples', () => {
  it('memorises them: loss near zero and greedy answers equal to the targets', async () => {
    const dir = join(tmp, 'memo');
    const c = cfg('sft', dir, {
      run: { dir, steps: 120, seed: 1 },
      data: { sources: [{ path: f.samples, limit: 4 }] },
      pack: { seqLen: 512 },
      batch: { rows: 1, microRows: 1 },
      optim: { lr: 1e-2, warmupSteps: 5, minLrRatio: 0.1, weightDecay: 0 },
      sft: { nothinkShare: 0 },
    });
    const losses: number[] = [];
    const res = (await runStage(c, { ...quiet, onStep: (m) => losses.push(m.loss) })) as StageResult;
    expect(losses[0]!).toBeGreaterThan(3);
    expect(Math.max(...losses.slice(-5))).toBeLessThan(0.02);
    // Greedy answers of the saved checkpoint, through the chat path users take.
    const src = await openRecords(f.samples, { limit: 4 });
    const samples: Sample[] = [];
    for (let i = 0; i < src.size; i++) {
      const r = src.get(i);
      if (r.type === 'sample') samples.push(Encoder.prepareSft(r.sample, 'blank'));
    }
    src.close();
    const chat = await ChatModel.load(res.checkpoint);
    const enc = new Encoder({
      tokenizer: chat.tokenizer,
      imageConfig: chat.processor.imageConfig,
      videoConfig: chat.processor.videoConfig,
      template: chat.tokenizer.chatTemplate!,
      style: 'glm41v',
    });
    const answers = await chat.chatBatch(
      samples.map((s) => [enc.userMessage(s)]),
      { maxNewTokens: 120 },
    );
    answers.forEach((a, i) => {
      expect(a.text, samples[i]!.id).toBe(sftTarget(samples[i]!));
      expect(a.finishReason).toBe('stop');
      expect(a.box).toMatchObject({ ok: true, value: samples[i]!.answer });
    });
  });
});

describe('MoE (GLM-4.5V-shaped)', () => {
  it('trains with the auxiliary loss and moves the loss-free routing biases', async () => {
    const dir = join(tmp, 'moe');
    const c = cfg('pretrain', dir, {
      run: { dir, steps: 2 },
      model: {
        init: 'scratch',
        tokenizer: f.tokenizer,
        arch: {
          hiddenSize: 64,
          layers: 2,
          heads: 4,
          kvHeads: 2,
          intermediateSize: 128,
          vision: { depth: 1, hiddenSize: 32, heads: 2, intermediateSize: 64, imageSize: 56 },
          moe: { experts: 4, perToken: 2, intermediateSize: 32 },
        },
      },
    });
    const res = (await runStage(c, quiet)) as StageResult;
    const w = loadSafetensors(join(res.checkpoint, 'model.safetensors'));
    const bias = w.get('model.language_model.layers.1.mlp.gate.e_score_correction_bias')!.toFloat32();
    expect([...bias].some((b) => b !== 0)).toBe(true);
    const metrics = readFileSync(join(dir, 'metrics.jsonl'), 'utf8')
      .split('\n')
      .filter(Boolean)
      .map((l) => JSON.parse(l));
    expect(metrics.find((m) => m.event === 'train').moe_aux).toBeGreaterThan(0);
    // The checkpoint answers in the GLM-4.5V format family.
    expect(readFileSync(join(res.checkpoint, 'chat_template.jinja'), 'utf8')).toContain('enable_thinking');
  });
});
