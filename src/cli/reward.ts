/**
 * `glmv reward …`: score responses offline, serve rewards over HTTP for OpenRLHF / verl, validate a routes file.
 */
import { existsSync } from 'node:fs';
import type { Command } from 'commander';
import { DOMAINS, type Domain, type Sample } from '../data/sample.js';
import { GlmTokenizer } from '../io/tokenizer.js';
import { loadRewardConfig, type RewardConfig } from '../reward/config.js';
import { itemFromLine, readSampleManifest, scoreJsonlFile } from '../reward/files.js';
import { RewardRouter } from '../reward/router.js';
import { buildRewardServer } from '../reward/server.js';
import { MetricsWriter } from '../util/progress.js';

function fail(e: unknown): never {
  process.stderr.write(`error: ${(e as Error).message}\n`);
  process.exit(1);
}

function int(name: string) {
  return (v: string) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n <= 0) throw new Error(`${name}: expected a positive integer, got "${v}"`);
    return n;
  };
}

function config(path: string | undefined): RewardConfig | Record<string, never> {
  return path ? loadRewardConfig(path) : {};
}

export { itemFromLine };

export function register(program: Command): void {
  const reward = program
    .command('reward')
    .description('multi-domain rewards: score responses, serve a reward endpoint, validate routes');

  reward
    .command('score')
    .description('score responses (JSONL) and print per-domain statistics')
    .requiredOption('--in <file>', 'JSONL: {"sample": {...}, "response": "..."} or a Sample with a "response" field')
    .requiredOption('--out <file>', 'JSONL of results, one per input line, in input order')
    .option(
      '--config <file>',
      'routes file (YAML or JSON); default: each sample’s own verifier, default gates, no judge',
    )
    .option('--concurrency <n>', 'responses in flight (judge calls overlap)', int('--concurrency'), 16)
    .option('--metrics <file>', 'JSONL metrics (progress every 1000 lines, then per-domain statistics)')
    .option('--quiet', 'no progress bar')
    .addHelpText(
      'after',
      `
Input lines:
  {"sample": {"id": "...", "domain": "chart", "source": "...", "question": "...", "answer": "2019",
              "verifier": {"type": "chart"}, ...}, "response": "<think>…</think><answer>…</answer>",
   "meta": {"tokens": 812, "finishReason": "stop"}}

Examples:
  glmv reward score --in rollouts.jsonl --out scored.jsonl
  glmv reward score --config routes.yaml --in rollouts.jsonl --out scored.jsonl --metrics runs/reward.jsonl
  glmv reward score --config routes.yaml --in eval.jsonl --out eval.scored.jsonl --concurrency 64   # with an LLM judge`,
    )
    .action(async (o) => {
      let router: RewardRouter;
      try {
        if (!existsSync(o.in)) throw new Error(`--in ${o.in}: no such file`);
        router = new RewardRouter(config(o.config));
      } catch (e) {
        fail(e);
      }
      const { inputErrors } = await scoreJsonlFile(router, o.in, o.out, {
        concurrency: o.concurrency,
        ...(o.metrics ? { metrics: o.metrics } : {}),
        quiet: !!o.quiet,
        onInputError: (message) => process.stderr.write(`warning: ${message}\n`),
      });
      process.stdout.write(`${router.stats.table()}\n`);
      if (router.judge) {
        const j = router.judge.stats;
        process.stdout.write(
          `judge: ${j.requests} requests, ${j.cacheHits} cache hits, ${j.retries} retries, ${j.failures} failures\n`,
        );
      }
      if (inputErrors > 0) {
        process.stderr.write(
          `error: ${inputErrors} input line(s) could not be read (see warnings; written as errors to ${o.out})\n`,
        );
        process.exitCode = 1;
      }
    });

  reward
    .command('serve')
    .description('serve rewards over HTTP: OpenRLHF --remote_rm_url, a verl adapter, and the native API')
    .option('--config <file>', 'routes file (YAML or JSON)')
    .option('--host <host>', 'interface to listen on', '127.0.0.1')
    .option('--port <port>', 'port', int('--port'), 8100)
    .option('--samples <file>', 'JSONL manifest: lets OpenRLHF labels be plain sample ids')
    .option(
      '--default-domain <domain>',
      `domain of plain reference-answer labels (OpenRLHF) and verl calls without extra_info.domain: ${DOMAINS.join(', ')}`,
      'text',
    )
    .option(
      '--tokenizer <dir>',
      'tokenizer (a model or tokenizer folder with tokenizer.json) to count response tokens for the overlong gate',
    )
    .option('--metrics <file>', 'JSONL metrics: one line per request')
    .addHelpText(
      'after',
      `
Endpoints:
  POST /get_reward                  OpenRLHF remote RM: {"query": [...], "prompts": [...], "labels": [...]}
  POST /verl/compute_score          {"data_source", "solution_str", "ground_truth", "extra_info"} → {"score", ...}
  POST /verl/compute_score_batch    {"items": [ ...compute_score bodies ]}
  POST /score, /score/batch         native: {"sample", "response", "meta"}
  GET  /stats, /health

Rewards and scores are JSON floats (1.0). OpenRLHF labels: a JSON sample, a sample id (--samples) or the bare
reference answer (scored as --default-domain, with a matching route's verifier).

Examples:
  glmv reward serve --config routes.yaml --port 8100
  glmv reward serve --config routes.yaml --samples data/rl/train.jsonl --host 0.0.0.0 --metrics runs/rm.jsonl
  glmv reward serve --config integrations/verl/routes.yaml --default-domain stem --tokenizer models/glmv-small
  # OpenRLHF: --reward.remote_url http://<host>:8100/get_reward (older: --remote_rm_url)
  # verl: custom_reward_function.path=integrations/verl/glmv_reward.py (see docs/reward-server.md)`,
    )
    .action(async (o) => {
      let router: RewardRouter;
      let samples: Map<string, Sample> | undefined;
      let countTokens: ((text: string) => number) | undefined;
      if (!(DOMAINS as readonly string[]).includes(o.defaultDomain))
        fail(new Error(`--default-domain: expected one of ${DOMAINS.join(', ')}, got "${o.defaultDomain}"`));
      try {
        router = new RewardRouter(config(o.config));
        samples = o.samples ? readSampleManifest(o.samples, `--samples ${o.samples}`) : undefined;
        if (o.tokenizer) {
          const tok = await GlmTokenizer.fromPretrained(o.tokenizer);
          countTokens = (text) => tok.encode(text).length;
        }
      } catch (e) {
        fail(e);
      }
      const app = buildRewardServer(router, {
        samples,
        metrics: o.metrics ? new MetricsWriter(o.metrics) : undefined,
        defaultDomain: o.defaultDomain as Domain,
        countTokens,
      });
      try {
        await app.listen({ host: o.host, port: o.port });
      } catch (e) {
        fail(new Error(`cannot listen on ${o.host}:${o.port}: ${(e as Error).message}`));
      }
      process.stderr.write(
        `reward server on http://${o.host}:${o.port} (${router.config.routes.length} routes, judge ${router.judge ? 'on' : 'off'}${samples ? `, ${samples.size} samples` : ''})\n`,
      );
      const stop = async () => {
        await app.close();
        await router.close();
        process.exit(0);
      };
      process.once('SIGINT', stop);
      process.once('SIGTERM', stop);
    });

  reward
    .command('validate')
    .description('check a routes file and print the resolved routes')
    .argument('<config>', 'routes file (YAML or JSON)')
    .addHelpText('after', '\nExamples:\n  glmv reward validate routes.yaml')
    .action((path: string) => {
      try {
        const cfg = loadRewardConfig(path);
        process.stdout.write(
          `${path}: ok — ${cfg.routes.length} route(s), judge ${cfg.judge ? `${cfg.judge.endpoints.length} endpoint(s)` : 'none'}\n`,
        );
        cfg.routes.forEach((r, i) => {
          process.stdout.write(
            `  ${String(i).padStart(2)} ${(r.name ?? '').padEnd(16)} match ${JSON.stringify(r.match)} → ${r.verifier ?? '(sample verifier)'} judge:${r.judge}\n`,
          );
        });
      } catch (e) {
        fail(e);
      }
    });
}
