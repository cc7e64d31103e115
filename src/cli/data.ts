/**
 * `glmv data …`: generate the synthetic curriculum and pre-training mixtures, look at them, and load / validate /
 * convert the data formats users bring (VLMEvalKit TSV, HF/lmms parquet, LLaVA JSON, JSONL + image folder).
 */
import { existsSync, readdirSync } from 'node:fs';
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { convertDataset, countSamples } from '../data/convert.js';
import { generateDataset } from '../data/dataset.js';
import { FORMATS, type Format, openDataset, summarizeReport } from '../data/formats/index.js';
import { GENERATOR_NAMES, GENERATORS, LAB_GENERATOR_NAMES } from '../data/generators/index.js';
import { generatePretrain, PRETRAIN_KINDS } from '../data/pretrain.js';
import { DOMAINS, type Domain, type Sample, VERIFIER_TYPES, type VerifierType } from '../data/sample.js';
import { contactSheet } from '../data/show.js';

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n)) throw new Error(`${name}: expected an integer, got "${v}"`);
    return n;
  };
}

function fail(e: unknown): never {
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(1);
}

export function register(program: Command): void {
  const data = program
    .command('data')
    .description('synthetic multimodal curriculum, pre-training mixtures, and data loaders');

  data
    .command('list')
    .description('list the generators (domains), their sub-tasks and image sizes')
    .action(() => {
      for (const [name, g] of Object.entries(GENERATORS)) {
        process.stdout.write(
          `${name.padEnd(12)} ${g.description}\n${''.padEnd(12)} tasks: ${g.tasks.join(', ')} · default size ${g.defaultSize}px, min ${g.minSize}px\n`,
        );
      }
    });

  data
    .command('gen')
    .description('generate a synthetic dataset (JSONL manifests + PNG files, in shards)')
    .requiredOption('--out <dir>', 'output folder')
    .option(
      '--domains <list>',
      `generators with optional weights, e.g. "vqa,chart:2", "all" (${GENERATOR_NAMES.join(', ')}) or "lab" (${LAB_GENERATOR_NAMES.join(', ')})`,
      'all',
    )
    .option('--n <count>', 'number of samples', int('--n'), 1000)
    .option('--split <split>', 'train or heldout (disjoint by construction)', 'train')
    .option('--seed <n>', 'seed of the sample streams', int('--seed'), 0)
    .option('--difficulty <lvl>', 'a level 1-5 or a range such as 1-5 (drawn per sample)', '1-5')
    .option('--size <px>', 'long side in px (multiple of 28) for all, and per domain: "112,chart=224"')
    .option('--tasks <list>', 'only these sub-tasks (see `glmv data list`)')
    .option('--shard-size <n>', 'samples per shard', int('--shard-size'), 1000)
    .option('--mcq <mode>', 'choice (keep multiple choice) or blank (convert to fill-in-the-blank)', 'choice')
    .option('--resume', 'continue an interrupted run in --out (complete shards are kept)')
    .option('--overwrite', 'replace a non-empty --out')
    .option('--quiet', 'no progress bar')
    .addHelpText(
      'after',
      `
Examples:
  glmv data gen --domains all --n 20000 --size 112 --out data/train
  glmv data gen --domains all --n 2000 --size 112 --split heldout --out data/heldout
  glmv data gen --domains vqa:2,chart,stem --difficulty 3-5 --size 112,chart=224 --n 5000 --out data/rl
  glmv data gen --domains ocr,gui,long_doc --n 200 --out data/real-size   # default sizes (336-672 px) for real models
  glmv data gen --domains vqa --tasks count,compare --n 1000 --mcq blank --out data/count
  glmv data gen --domains lab --difficulty 1-3 --size 112 --n 4000 --out data/lab     # the RL lab's tasks
  glmv data gen --domains lab_clock --tasks probe --n 200 --split heldout --out data/lab-probe`,
    )
    .action(async (o) => {
      try {
        const r = await generateDataset(
          {
            domains: o.domains,
            n: o.n,
            split: o.split,
            seed: o.seed,
            difficulty: o.difficulty,
            size: o.size,
            tasks: o.tasks
              ? String(o.tasks)
                  .split(',')
                  .map((s: string) => s.trim())
              : undefined,
            shardSize: o.shardSize,
            mcq: o.mcq,
          },
          { out: o.out, resume: o.resume, overwrite: o.overwrite, quiet: o.quiet },
        );
        process.stdout.write(
          `wrote ${r.info.count} samples in ${r.info.shards.length} shard(s) to ${o.out} (${r.seconds.toFixed(1)} s)\n`,
        );
        for (const [k, v] of Object.entries(r.rate))
          process.stdout.write(
            `  ${k.padEnd(12)} ${String(r.info.byDomain[GENERATORS[k]!.domain] ?? '').padStart(7)} samples  ${v.toFixed(1)} samples/s\n`,
          );
      } catch (e) {
        fail(e);
      }
    });

  data
    .command('pretrain')
    .description(
      'generate a pre-training mixture: captions, interleaved documents, OCR pages, grounding pairs, video captions, instruction pairs, text',
    )
    .requiredOption('--out <dir>', 'output folder')
    .option(
      '--kinds <list>',
      `kinds with optional weights, e.g. "caption:3,grounding:2,text", or "all" (${PRETRAIN_KINDS.join(', ')})`,
      'all',
    )
    .option('--n <count>', 'number of documents', int('--n'), 1000)
    .option('--split <split>', 'train or heldout', 'train')
    .option('--seed <n>', 'seed', int('--seed'), 0)
    .option('--difficulty <lvl>', 'level or range', '1-5')
    .option('--size <px>', 'image long side (multiple of 28); each generator default when absent', int('--size'))
    .option('--shard-size <n>', 'documents per shard', int('--shard-size'), 1000)
    .option('--quiet', 'no progress bar')
    .addHelpText(
      'after',
      `
Examples:
  glmv data pretrain --n 40000 --size 112 --out data/pretrain
  glmv data pretrain --kinds caption:3,grounding:2,ocr,text --n 5000 --size 56 --out data/pt-small`,
    )
    .action(async (o) => {
      try {
        if (existsSync(o.out) && readdirSync(o.out).length > 0)
          throw new Error(`${o.out} is not empty; choose a new folder`);
        const info = await generatePretrain(
          {
            kinds: o.kinds,
            n: o.n,
            split: o.split,
            seed: o.seed,
            difficulty: o.difficulty,
            size: o.size,
            shardSize: o.shardSize,
          },
          o.out,
          o.quiet,
        );
        process.stdout.write(
          `wrote ${info.count} documents to ${o.out}: ${Object.entries(info.byDomain)
            .map(([k, v]) => `${k} ${v}`)
            .join(', ')}\n`,
        );
      } catch (e) {
        fail(e);
      }
    });

  data
    .command('show <path>')
    .description('write an HTML contact sheet (images, question, answer, rationale) of a dataset or data file')
    .option('--out <file>', 'HTML file (default: <path>/index.html for folders, <path>.html for files)')
    .option('--limit <n>', 'samples to show', int('--limit'), 200)
    .option('--per-domain <n>', 'at most this many per domain', int('--per-domain'))
    .option('--domains <list>', 'only these domains')
    .addHelpText(
      'after',
      `
Examples:
  glmv data show data/train --per-domain 12
  glmv data show bench/MMBench_DEV_EN.tsv --limit 50 --out runs/mmbench.html`,
    )
    .action(async (path: string, o) => {
      try {
        const isDir = existsSync(path) && !/\.(tsv|parquet|jsonl?|json)$/i.test(path);
        const out = o.out ?? (isDir ? join(path, 'index.html') : `${path}.html`);
        const n = await contactSheet(path, {
          out,
          limit: o.limit,
          perDomain: o.perDomain,
          domains: o.domains?.split(','),
        });
        process.stdout.write(`wrote ${out} (${n} samples)\n`);
      } catch (e) {
        fail(e);
      }
    });

  const loadOpts = (c: Command) =>
    c
      .option('--format <fmt>', `one of ${FORMATS.join(', ')}`, 'auto')
      .option('--skip-bad', 'skip malformed rows (they are counted and reported) instead of stopping at the first')
      .option('--limit <n>', 'stop after this many samples', int('--limit'))
      .option('--domain <d>', `domain for external data (${DOMAINS.join(', ')})`)
      .option('--split <s>', 'split for external data (train, val, test, heldout)')
      .option('--verifier <v>', `verifier for non-multiple-choice rows (${VERIFIER_TYPES.join(', ')})`)
      .option('--image-root <dir>', 'folder relative image paths resolve against (default: the file folder)')
      .option('--no-require-answer', 'accept rows without an answer (unlabelled test splits)');
  const openFrom = (path: string, o: Record<string, unknown>) =>
    openDataset(path, {
      format: o.format as Format,
      onError: o.skipBad ? 'skip' : 'throw',
      limit: o.limit as number | undefined,
      domain: o.domain as Domain | undefined,
      split: o.split as Sample['split'] | undefined,
      verifier: o.verifier ? { type: o.verifier as VerifierType } : undefined,
      imageRoot: o.imageRoot as string | undefined,
      requireAnswer: o.requireAnswer as boolean,
    });

  loadOpts(
    data
      .command('validate <path>')
      .description('load a dataset or data file and report its rows, samples and malformed rows (exit 1 if any)')
      .addHelpText(
        'after',
        `
Examples:
  glmv data validate data/train
  glmv data validate MMBench_DEV_EN.tsv --skip-bad
  glmv data validate llava_v1_5_mix665k.json --image-root /data/llava --limit 1000`,
      ),
  ).action(async (path: string, o) => {
    try {
      const src = await openFrom(path, o);
      const { count: n, byDomain } = await countSamples(src);
      for (const r of src.reports) process.stdout.write(`${summarizeReport(r)}\n`);
      process.stdout.write(
        `${n} samples (${src.format}): ${Object.entries(byDomain)
          .map(([k, v]) => `${k} ${v}`)
          .join(', ')}\n`,
      );
      if (src.reports.some((r) => r.skipped > 0)) process.exit(1);
    } catch (e) {
      fail(e);
    }
  });

  loadOpts(
    data
      .command('convert <path>')
      .description('convert any supported format into a glmv dataset folder (media copied next to the manifests)')
      .requiredOption('--out <dir>', 'output folder (must be new or empty)')
      .addHelpText(
        'after',
        `
Examples:
  glmv data convert MMStar.tsv --out data/mmstar
  glmv data convert chartqa-test.parquet --domain chart --verifier chart --out data/chartqa`,
      ),
  ).action(async (path: string, o) => {
    try {
      if (existsSync(o.out) && readdirSync(o.out).length > 0)
        throw new Error(`${o.out} is not empty; choose a new folder`);
      const src = await openFrom(path, o);
      const info = await convertDataset(src, o.out, { from: resolve(path), total: o.limit ?? 0 });
      for (const r of src.reports) process.stdout.write(`${summarizeReport(r)}\n`);
      process.stdout.write(`wrote ${info.count} samples to ${o.out}\n`);
    } catch (e) {
      fail(e);
    }
  });
}
