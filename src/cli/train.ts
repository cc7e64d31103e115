/**
 * `glmv train tokenizer|pretrain|longctx|sft --config FILE [--set k=v…] [--resume DIR] [--dry-run]`: a thin layer over
 * `runStage` / `planStage` (src/train). SIGINT finishes the current step, writes a checkpoint and exits; a second
 * SIGINT exits at once.
 */
import type { Command } from 'commander';
import { stringify as toYaml } from 'yaml';
import { loadTrainConfig, type ModelStageConfig, type StageName } from '../train/config.js';
import { planStage, type StagePlan } from '../train/plan.js';
import type { TokenizerStageResult } from '../train/tokenizer.js';
import { runStage, type StageResult } from '../train/trainer.js';
import { formatSeconds } from '../util/progress.js';

const collect = (v: string, prev: string[]) => [...prev, v];

interface Options {
  config: string;
  set: string[];
  resume?: string;
  dryRun?: boolean;
  measure?: boolean;
  quiet?: boolean;
  json?: boolean;
}

function fmtCount(n: number): string {
  return n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : String(Math.round(n));
}

function printPlan(p: StagePlan): void {
  console.log(toYaml(p.config).trimEnd());
  console.log('---');
  const P = p.parameters;
  console.log(
    `model: ${p.modelType}, ${fmtCount(P.total)} parameters (vision ${fmtCount(P.vision)}, text ${fmtCount(P.text)}, lm head ${fmtCount(P.lmHead)}); trainable ${fmtCount(p.trainable)}; vocabulary ${p.tokenizerSize}`,
  );
  const c = p.config;
  console.log(
    `batch: ${c.batch.rows} sequences × ${c.pack.seqLen} tokens = ${fmtCount(p.tokensPerStep)} tokens per step; ${c.batch.microRows} per micro-batch, accumulation ${p.accumulation}; ${c.run.steps} steps = ${fmtCount(p.tokensPerStep * c.run.steps)} token capacity`,
  );
  console.log('data pools:');
  for (const pool of p.pools)
    console.log(
      `  ${pool.group.padEnd(14)} ${String(pool.records).padStart(7)} records  weight ${pool.weight.toFixed(3)}  (${pool.source})`,
    );
  const f = p.firstStep;
  console.log(
    `first step: ${f.examples} examples, ${fmtCount(f.realTokens)} tokens (${fmtCount(f.targets)} with loss), packing efficiency ${(100 * f.packingEfficiency).toFixed(1)}%, data ${f.dataMs.toFixed(0)} ms`,
  );
  if (p.microBatchMs !== null)
    console.log(
      `estimated step time: ${(p.estimatedStepMs! / 1000).toFixed(2)} s compute (${p.microBatchMs.toFixed(0)} ms forward+backward per micro-batch × ${p.accumulation}, ${c.precision}); ${c.run.steps} steps ≈ ${formatSeconds(p.estimatedRunSeconds!)} plus data and evaluation`,
    );
  else
    console.log(
      'estimated step time: not measured (--no-measure, or a model above 1B parameters, which a dry run does not build)',
    );
  if (p.filter)
    console.log(
      `difficulty filter: would score ${p.filter.candidates} candidates × ${p.filter.k} answers before training`,
    );
}

function printResult(r: StageResult | TokenizerStageResult): void {
  if (r.stage === 'tokenizer') {
    console.log(
      `tokenizer: ${r.vocabSize} tokens (${r.merges} merges) from ${r.documents} texts in ${r.seconds.toFixed(1)} s → ${r.checkpoint}`,
    );
    return;
  }
  const parts = [
    `${r.stage}: ${r.steps} steps${r.interrupted ? ' (interrupted)' : ''}`,
    `loss ${r.loss.toFixed(4)} (mean of the last steps)`,
    `${fmtCount(r.tokensPerSecond)} tokens/s, ${(r.meanStepMs / 1000).toFixed(2)} s/step, packing ${(100 * r.packingEfficiency).toFixed(1)}%`,
  ];
  if (r.eval?.heldoutLoss !== undefined) parts.push(`held-out loss ${r.eval.heldoutLoss.toFixed(4)}`);
  if (r.eval?.accuracy) parts.push(`held-out accuracy ${(100 * r.eval.accuracy.accuracy).toFixed(1)}%`);
  console.log(parts.join('; '));
  console.log(`${r.interrupted ? 'checkpoint' : 'model'}: ${r.checkpoint}   metrics: ${r.runDir}/metrics.jsonl`);
  if (r.interrupted) console.log(`continue with: --resume ${r.runDir}`);
  else console.log(`try it: glmv chat --model ${r.checkpoint}`);
}

async function run(stage: StageName, o: Options): Promise<void> {
  const config = loadTrainConfig(o.config, stage, o.set);
  if (o.dryRun) {
    if (config.stage === 'tokenizer') {
      console.log(toYaml(config).trimEnd());
      return;
    }
    if (o.resume) throw new Error('--dry-run plans a fresh run; leave out --resume');
    const plan = await planStage(config as ModelStageConfig, { measure: o.measure !== false });
    if (o.json) console.log(JSON.stringify(plan, null, 2));
    else printPlan(plan);
    return;
  }
  const ac = new AbortController();
  const log = (l: string) => process.stderr.write(`${l}\n`);
  const onSig = () => {
    if (ac.signal.aborted) process.exit(130);
    log('\ntrain: interrupt — finishing this step and writing a checkpoint (Ctrl-C again to quit now)');
    ac.abort();
  };
  process.on('SIGINT', onSig);
  try {
    const r = await runStage(config, { signal: ac.signal, quiet: o.quiet, resume: o.resume, log });
    if (o.json) console.log(JSON.stringify(r, null, 2));
    else printResult(r);
  } finally {
    process.off('SIGINT', onSig);
  }
}

const HELP: Record<StageName, string> = {
  tokenizer: `
Learns a byte-level BPE tokenizer with the GLM special tokens from dataset text (pre-training documents; sample
questions, options, answers, rationales) and plain-text corpora; writes RUN/tokenizer with the chat template.

Examples:
  glmv train tokenizer --config configs/train/tokenizer.yaml
  glmv train tokenizer --config configs/train/tokenizer.yaml --set tokenizer.vocabSize=8192`,
  pretrain: `
Multimodal pre-training: a weighted mixture of captions, interleaved documents, OCR, grounding and instruction data,
packed into sequences of pack.seqLen (attention, 3D positions and loss per sample), loss on text tokens only.
Writes RUN/metrics.jsonl, RUN/checkpoints/step-N (complete model folders + trainer state) and RUN/final.

Examples:
  glmv train pretrain --config configs/train/pretrain.yaml --dry-run     # resolved config, size, step time
  glmv train pretrain --config configs/train/pretrain.yaml
  glmv train pretrain --config configs/train/pretrain.yaml --set optim.lr=3e-4 --set precision=bf16
  glmv train pretrain --config configs/train/pretrain.yaml --resume runs/pretrain   # exact continuation`,
  longctx: `
Long-context continual training: the pre-trained model on longer packed sequences (×4), with video and long
interleaved documents added to the mixture.

Examples:
  glmv train longctx --config configs/train/longctx.yaml
  glmv train longctx --config configs/train/longctx.yaml --set pack.seqLen=8192 --set batch.rows=4`,
  sft: `
Long-CoT SFT: samples rendered with the chat template, loss on the assistant tokens only, targets
<think>…</think><answer><|begin_of_box|>…<|end_of_box|></answer>, a share of /nothink samples reusing the answer,
text-only data mixed in, and an optional difficulty filter (pass@k of the previous-stage model with the reward
verifiers; too-easy and too-hard items dropped, reported per domain).

Examples:
  glmv train sft --config configs/train/sft.yaml --dry-run
  glmv train sft --config configs/train/sft.yaml --set sft.filter.enabled=true --set sft.filter.k=4
  glmv train sft --config configs/train/sft.yaml --set sft.nothinkShare=0.3 --set optim.lossAverage=sample
  glmv chat --model runs/sft/final --image photo.png "How many circles are there?"`,
};

const DESCRIPTIONS: Record<StageName, string> = {
  tokenizer: 'train a BPE tokenizer with the GLM special tokens',
  pretrain: 'stage 1: multimodal pre-training with sequence packing',
  longctx: 'stage 2: long-context continual training (longer sequences, video, long documents)',
  sft: 'stage 3: long-CoT SFT with /nothink samples and the difficulty filter',
};

export function register(program: Command): void {
  const train = program
    .command('train')
    .description(
      'train a tokenizer, then pre-train, long-context train and SFT a GLM-V model (checkpoints, exact resume)',
    )
    .addHelpText(
      'after',
      `
Every stage reads a YAML/JSON config (documented in configs/train/README.md; examples in configs/train/),
validated before anything runs. --set overrides any field by its dotted path. Ctrl-C writes a checkpoint;
--resume RUN continues it bit for bit.

Examples:
  glmv train tokenizer --config configs/train/tokenizer.yaml
  glmv train pretrain  --config configs/train/pretrain.yaml
  glmv train longctx   --config configs/train/longctx.yaml
  glmv train sft       --config configs/train/sft.yaml
  glmv train pretrain  --config configs/train/pretrain.yaml --resume runs/pretrain`,
    );
  for (const stage of ['tokenizer', 'pretrain', 'longctx', 'sft'] as const) {
    const cmd = train
      .command(stage)
      .description(DESCRIPTIONS[stage])
      .requiredOption('--config <file>', 'YAML or JSON stage config')
      .option('--set <key=value>', 'override a config field by dotted path (repeatable)', collect, [])
      .option(
        '--dry-run',
        'print the resolved config, model size, tokens per step and estimated step time; train nothing',
      )
      .option('--json', 'print the result (or the dry-run plan) as JSON')
      .option('--quiet', 'no progress bar');
    if (stage !== 'tokenizer') {
      cmd
        .option('--resume <dir>', 'continue a run folder (its latest checkpoint) or a checkpoint folder exactly')
        .option('--no-measure', 'with --dry-run: skip the timed micro-batch');
    }
    cmd.addHelpText('after', HELP[stage]).action(async (o: Options) => {
      try {
        await run(stage, o);
      } catch (e) {
        process.stderr.write(`glmv train ${stage}: error: ${(e as Error).message ?? String(e)}\n`);
        process.exitCode = 1;
      }
    });
  }
}
