/**
 * `glmv quantize`: weight-only int8 / int4 quantisation of a model folder into a new folder in the
 * compressed-tensors pack-quantized format (readable by vLLM; loaded as it is by every glmv command with --model).
 */
import type { Command } from 'commander';
import { quantizeCheckpoint } from '../model/quantize.js';

interface QuantizeCliOptions {
  bits: string;
  groupSize?: string;
  vision: boolean;
  lmHead: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command('quantize')
    .description('quantise a model folder to int8 (per output channel) or int4 (group-wise) weights')
    .argument('<in_dir>', 'model folder (config.json + model.safetensors or shards + index)')
    .argument('<out_dir>', 'new folder for the quantised model (must not exist or be empty)')
    .requiredOption('--bits <n>', '8 (per output channel) or 4 (group-wise)')
    .option(
      '--group-size <n>',
      'values per scale along the input dimension (default: 128 for int4, per channel for int8)',
    )
    .option('--no-vision', 'keep the vision tower in its float type')
    .option(
      '--lm-head',
      'quantise lm_head too (faster batch-1 decode; off by default, as in compressed-tensors tools)',
      false,
    )
    .option('--json', 'print the report as one JSON object')
    .addHelpText(
      'after',
      `
Decoder and vision-tower Linear layers are quantised symmetrically (scale = max|w| / 127 or / 7); embeddings,
norms, the patch embedding and lm_head keep their float type (--lm-head quantises lm_head with the same scheme:
at batch-1 decode GLM-4.1V's bf16 lm_head is 1.24 GB read per token). Layers whose input size is not a multiple of
the group size are kept too and listed. The folder is written in the compressed-tensors "pack-quantized" format
(weight_packed / weight_scale / weight_shape and a quantization_config in config.json), which vLLM loads.

Examples:
  glmv quantize --bits 4 GLM-4.1V-9B-Thinking GLM-4.1V-9B-Thinking-int4
  glmv quantize --bits 8 models/glmv-small runs/glmv-small-int8
  glmv quantize --bits 4 --group-size 64 models/glmv-small runs/glmv-small-int4
  glmv quantize --bits 4 --lm-head GLM-4.1V-9B-Thinking GLM-4.1V-9B-Thinking-int4-head
  glmv chat --model GLM-4.1V-9B-Thinking-int4 --image chart.png "What is the value for 2019?"`,
    )
    .action((inDir: string, outDir: string, o: QuantizeCliOptions) => {
      const bits = Number(o.bits);
      if (bits !== 4 && bits !== 8) throw new Error(`--bits must be 4 or 8, got '${o.bits}'`);
      let groupSize: number | null | undefined;
      if (o.groupSize !== undefined) {
        groupSize = Number(o.groupSize);
        if (!Number.isInteger(groupSize) || groupSize <= 0)
          throw new Error(`--group-size must be a positive integer, got '${o.groupSize}'`);
      }
      const r = quantizeCheckpoint(inDir, outDir, {
        bits,
        groupSize,
        vision: o.vision,
        lmHead: o.lmHead,
        progress: !o.json,
      });
      if (o.json) {
        process.stdout.write(`${JSON.stringify({ out: outDir, bits, groupSize: groupSize ?? null, ...r })}\n`);
        return;
      }
      const gb = (b: number) => `${(b / 1e9).toFixed(2)} GB`;
      process.stdout.write(
        `quantised ${r.quantized} Linear layers to int${bits} in ${r.seconds.toFixed(1)} s: ${gb(r.bytesIn)} → ${gb(r.bytesOut)} (${outDir})\n`,
      );
      for (const s of r.skipped) process.stdout.write(`  kept ${s.name}: ${s.reason}\n`);
    });
}
