/**
 * `glmv eval`: run benchmarks against a model (an OpenAI-compatible endpoint today; a local checkpoint once the
 * engine generates) and write per-sample JSONL, summary JSON + CSV and an HTML report. Ctrl-C stops cleanly and a
 * rerun of the same command resumes from the content-addressed cache.
 */
import { join, resolve } from 'node:path';
import type { Command } from 'commander';
import { BUILTIN_BENCHMARKS } from '../eval/benchmarks/index.js';
import { EvalInterrupted, runEval } from '../eval/harness.js';
import { DEFAULT_CAPS, type ModelUnderTest } from '../eval/model.js';
import type { Mode } from '../eval/records.js';
import { evalDataDirs, evalJudge, openModelUnderTest, resolveBenchmarks } from '../eval/setup.js';

function int(name: string, min = 1) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < min) throw new Error(`${name}: expected an integer ≥ ${min}, got "${v}"`);
    return n;
  };
}

function num(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isFinite(n)) throw new Error(`${name}: expected a number, got "${v}"`);
    return n;
  };
}

function collect(v: string, prev: string[]): string[] {
  return [...prev, v];
}

function fail(e: unknown): void {
  // No process.exit: the finally blocks close the model, and the command stays callable in-process (tests).
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exitCode = 1;
}

function parseDataOverrides(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const item of list) {
    const i = item.indexOf('=');
    if (i <= 0 || i === item.length - 1) throw new Error(`--data: expected NAME=PATH, got "${item}"`);
    out[item.slice(0, i)] = item.slice(i + 1);
  }
  return out;
}

function parseModes(o: { think?: boolean; modes?: string }): Mode[] {
  if (o.modes) {
    const modes = o.modes.split(',').map((m) => m.trim().replace(/^no-think$/, 'nothink')) as Mode[];
    const bad = modes.filter((m) => m !== 'think' && m !== 'nothink');
    if (bad.length) throw new Error(`--modes: expected think and/or nothink, got ${bad.join(', ')}`);
    if (o.think === false) throw new Error('--modes and --no-think cannot be combined');
    return [...new Set(modes)];
  }
  return o.think === false ? ['nothink'] : ['think'];
}

export function register(program: Command): void {
  program
    .command('eval')
    .description('evaluate a model on benchmarks (per-sample JSONL, summary JSON/CSV, HTML report)')
    .option(
      '--endpoint <url>',
      'OpenAI-compatible base URL (vLLM / SGLang / glmv serve), e.g. http://localhost:8000/v1',
    )
    .option('--model <dir>', 'local checkpoint folder (default without --endpoint: the embedded model)')
    .option('--model-name <name>', 'served model name (default: the first one at /v1/models)')
    .option(
      '--bench <list>',
      'benchmarks: built-in names, "synthetic", "lab", "paper", or .yaml/.json definition files',
    )
    .option('--list', 'list the built-in benchmarks and exit')
    .option('--out <dir>', 'output folder')
    .option('--no-think', 'thinking off (chat_template_kwargs.enable_thinking = false)')
    .option('--modes <list>', 'think, nothink or both ("think,nothink") for a comparison')
    .option('--limit <n>', 'first N usable items (questions) per benchmark', int('--limit'))
    .option(
      '--data-dir <dir>',
      'folder(s) holding benchmark data files (repeatable; default $GLMV_EVAL_DATA, ./data/eval)',
      collect,
      [],
    )
    .option('--data <name=path>', 'data file for one benchmark (repeatable)', collect, [])
    .option('--concurrency <n>', 'requests in flight', int('--concurrency'), 8)
    .option('--max-tokens <n>', 'most generated tokens per answer (paper: 8192)', int('--max-tokens'), 8192)
    .option('--thinking-budget <n>', 'force an answer after N thinking tokens (two-phase)', int('--thinking-budget'))
    .option(
      '--answer-tokens <n>',
      'tokens of the forced answer (default: max-tokens minus budget)',
      int('--answer-tokens'),
    )
    .option('--continuation <how>', 'force-answer continuation: chat or completions (text-only prompts)', 'chat')
    .option('--style <style>', 'model output convention: glm45v or glm41v', 'glm45v')
    .option('--temperature <t>', 'sampling temperature', num('--temperature'), 0)
    .option('--top-p <p>', 'nucleus sampling', num('--top-p'))
    .option('--seed <n>', 'sampling seed sent to the server', int('--seed', 0))
    .option('--image-tokens <n>', 'visual token cap per image', int('--image-tokens'), DEFAULT_CAPS.imageTokens)
    .option('--video-tokens <n>', 'visual token cap per video', int('--video-tokens'), DEFAULT_CAPS.videoTokens)
    .option('--media <how>', 'send media as data URLs (data) or file:// URLs (file, server on this machine)', 'data')
    .option('--video-frames <how>', 'frame-list videos: encoded to MP4 (video) or sent as images', 'video')
    .option('--extract <mode>', 'answer extraction for every benchmark: strict or lenient (default: per benchmark)')
    .option('--judge <url>', 'LLM judge endpoint(s) for verifier fallbacks, comma-separated')
    .option('--judge-model <name>', 'judge model name (one, or one per --judge URL, comma-separated)')
    .option('--judge-key-env <var>', 'environment variable with the judge API key')
    .option('--api-key-env <var>', 'environment variable with the endpoint API key (default OPENAI_API_KEY)')
    .option(
      '--retries <n>',
      'retries per request (429/5xx/connection errors, exponential backoff)',
      int('--retries', 0),
      3,
    )
    .option('--timeout <s>', 'per-request timeout in seconds', int('--timeout'), 600)
    .option('--stream', 'stream responses (same results)')
    .option('--cache-dir <dir>', 'generation cache (default <out>/cache); share it between output folders')
    .option('--bootstrap <n>', 'bootstrap resamples for confidence intervals', int('--bootstrap'), 1000)
    .option('--quiet', 'no progress output')
    .addHelpText(
      'after',
      `
Benchmarks: ${[...BUILTIN_BENCHMARKS.keys()].join(', ')}
  "paper" = every external benchmark, "synthetic" = every synthetic held-out set (rendered locally),
  "lab" = the RL lab's held-out sets (reasoning and probe questions).
  External data files are not downloaded: put the VLMEvalKit / lmms-eval files in --data-dir (see --list).

Examples:
  glmv eval --endpoint http://localhost:8000/v1 --bench synthetic --limit 50 --out runs/eval-synth
  glmv eval --endpoint http://localhost:8000/v1 --bench mmbench,chartqa,docvqa --data-dir ~/LMUData --out runs/glm45v
  glmv eval --endpoint http://localhost:8000/v1 --bench mmstar --modes think,nothink --out runs/think-vs-nothink
  glmv eval --endpoint http://localhost:8000/v1 --bench mathvista --thinking-budget 8192 --answer-tokens 1024 \\
            --judge http://localhost:8001/v1 --judge-model qwen2.5-72b --out runs/mathvista
  glmv eval --endpoint http://localhost:8000/v1 --bench my_bench.yaml --data my_bench=/data/my.tsv --out runs/mine
  glmv eval --list
Interrupted runs resume: rerun the same command (answers come from <out>/cache).

A benchmark definition file (YAML or JSON):
  name: my_chartqa
  data: { format: tsv, path: ChartQA_TEST.tsv }     # tsv | parquet | jsonl | llava | dataset | auto
  prompt: { template: "{question}\\nAnswer with a single word or number." }
  extraction: lenient                                # or strict (exactly one box)
  metric: { name: relaxed_accuracy }                 # reward | mcq | anls | vqa_score | ocrbench |
                                                     # exact_match | iou | point_in_box
  judge: never                                       # never | fallback | always
  groupBy: [category]
Outputs: summary.json, summary.csv, report.html, metrics.jsonl, <bench>/<mode>/samples.jsonl,
<bench>/data_errors.jsonl (malformed rows with their row numbers).`,
    )
    .action(async (o) => {
      if (o.list) {
        // `glmv eval --list | head` closes the pipe early: that is not an error.
        process.stdout.once('error', (e: NodeJS.ErrnoException) => {
          if (e.code === 'EPIPE') process.exit(0);
          throw e;
        });
        for (const b of BUILTIN_BENCHMARKS.values()) {
          const where =
            b.data.format === 'synthetic'
              ? `synthetic ${b.data.generator} (${b.data.n} held-out samples)`
              : `${b.data.format} ${b.data.path}`;
          process.stdout.write(
            `${b.name.padEnd(18)} ${b.metric.name.padEnd(16)} ${where}\n${''.padEnd(18)} ${b.description}\n`,
          );
        }
        return;
      }
      const controller = new AbortController();
      let interrupts = 0;
      const onSigint = () => {
        interrupts++;
        if (interrupts > 1) process.exit(130);
        process.stderr.write('\ninterrupting: finishing the cache and report (Ctrl-C again to quit at once)…\n');
        controller.abort();
      };
      let model: ModelUnderTest | undefined;
      try {
        if (o.model && o.endpoint) throw new Error('pass either --model or --endpoint, not both');
        if (!o.bench) throw new Error('--bench is required (see --list)');
        if (!o.out) throw new Error('--out DIR is required');
        if (o.continuation !== 'chat' && o.continuation !== 'completions')
          throw new Error(`--continuation: expected chat or completions, got "${o.continuation}"`);
        if (o.style !== 'glm45v' && o.style !== 'glm41v')
          throw new Error(`--style: expected glm45v or glm41v, got "${o.style}"`);
        if (o.media !== 'data' && o.media !== 'file')
          throw new Error(`--media: expected data or file, got "${o.media}"`);
        if (o.extract !== undefined && o.extract !== 'strict' && o.extract !== 'lenient')
          throw new Error(`--extract: expected strict or lenient, got "${o.extract}"`);
        const benchmarks = resolveBenchmarks(o.bench);
        const modes = parseModes(o);
        const dataDirs = evalDataDirs(o.dataDir as string[]);
        let judge = null;
        if (o.judge) {
          const urls = String(o.judge)
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
          const names = String(o.judgeModel ?? '')
            .split(',')
            .map((s) => s.trim())
            .filter(Boolean);
          if (names.length === 0) throw new Error('--judge needs --judge-model NAME');
          if (names.length !== 1 && names.length !== urls.length)
            throw new Error(
              `--judge-model: give one name or one per --judge URL (${urls.length}), got ${names.length}`,
            );
          judge = evalJudge(
            urls.map((baseURL, i) => ({ baseURL, model: names[names.length === 1 ? 0 : i]! })),
            o.judgeKeyEnv as string | undefined,
          );
        }
        const apiKey = o.apiKeyEnv ? process.env[o.apiKeyEnv] : undefined;
        if (o.apiKeyEnv && !apiKey) throw new Error(`--api-key-env: environment variable ${o.apiKeyEnv} is not set`);
        const caps = { imageTokens: o.imageTokens as number, videoTokens: o.videoTokens as number };
        model = await openModelUnderTest(
          !o.endpoint
            ? { kind: 'local', ...(o.model ? { dir: o.model } : {}), caps, maxBatch: o.concurrency }
            : {
                kind: 'endpoint',
                baseURL: o.endpoint,
                ...(o.modelName ? { model: o.modelName } : {}),
                ...(apiKey ? { apiKey } : {}),
                timeoutMs: (o.timeout as number) * 1000,
                maxRetries: o.retries,
                caps,
                stream: !!o.stream,
                continuation: o.continuation,
                style: o.style,
                media: o.media,
                videoFrames: o.videoFrames,
                mediaDir: join(resolve(o.cacheDir ?? join(o.out, 'cache')), 'media'),
              },
        );
        process.once('SIGINT', onSigint);
        const summary = await runEval({
          model,
          benchmarks,
          out: o.out,
          modes,
          ...(o.limit !== undefined ? { limit: o.limit } : {}),
          concurrency: o.concurrency,
          generation: {
            maxTokens: o.maxTokens,
            ...(o.thinkingBudget !== undefined ? { thinkingBudget: o.thinkingBudget } : {}),
            ...(o.answerTokens !== undefined ? { answerTokens: o.answerTokens } : {}),
            temperature: o.temperature,
            ...(o.topP !== undefined ? { topP: o.topP } : {}),
            ...(o.seed !== undefined ? { seed: o.seed } : {}),
          },
          caps,
          dataDirs,
          dataPaths: parseDataOverrides(o.data),
          judge,
          ...(o.cacheDir ? { cacheDir: o.cacheDir } : {}),
          ...(o.extract ? { extract: o.extract } : {}),
          bootstrap: { samples: o.bootstrap },
          quiet: !!o.quiet,
          signal: controller.signal,
        });
        const out = resolve(o.out);
        process.stdout.write(`${out}/report.html\n`);
        // A benchmark with no usable row evaluated nothing: that is a failure, not an empty success.
        const empty = summary.data.filter((d) => d.items === 0);
        for (const d of empty)
          process.stderr.write(
            `glmv eval: ${d.bench}: no usable items in ${d.file} (${d.rows} rows, ${d.errors} malformed; see ${join(out, d.bench, 'data_errors.jsonl')})\n`,
          );
        if (empty.length) process.exitCode = 1;
        for (const r of summary.results)
          process.stdout.write(
            `${r.bench.padEnd(18)} ${r.mode.padEnd(8)} ${r.metric.padEnd(16)} ${r.score.toFixed(2).padStart(6)}  [${r.ci.low.toFixed(2)}, ${r.ci.high.toFixed(2)}]  n=${r.units}\n`,
          );
        for (const c of summary.comparisons)
          process.stdout.write(
            `${c.bench.padEnd(18)} think−nothink ${c.diff >= 0 ? '+' : ''}${c.diff.toFixed(2)} [${c.ci.low.toFixed(2)}, ${c.ci.high.toFixed(2)}]\n`,
          );
      } catch (e) {
        if (e instanceof EvalInterrupted) {
          process.stderr.write(`${e.message}\n`);
          process.exitCode = 130;
          return;
        }
        fail(e);
      } finally {
        process.off('SIGINT', onSigint);
        await model?.close();
      }
    });
}
