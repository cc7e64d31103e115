/**
 * What an evaluation is built from before it runs: the benchmarks a `--bench` list names, the LLM judge of the
 * verifier fallbacks, the folders data files are looked up in, and the model under test (a local checkpoint or an
 * OpenAI-compatible endpoint). The `glmv eval` command parses options and prints; the work is here.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import type { JudgeConfig } from '../reward/judge.js';
import { type Benchmark, loadBenchmarkFile } from './benchmark.js';
import { BUILTIN_BENCHMARKS, expandBenchNames } from './benchmarks/index.js';
import { LocalModel } from './local.js';
import { EndpointModel, type EndpointModelOptions, type ModelUnderTest, type VisualCaps } from './model.js';

/** Built-in names, `synthetic`, `lab`, `paper`, or definition files (.yaml/.yml/.json). */
export function resolveBenchmarks(spec: string): Benchmark[] {
  const out: Benchmark[] = [];
  for (const name of expandBenchNames(spec)) {
    if (/\.(ya?ml|json)$/i.test(name)) {
      if (!existsSync(name)) throw new Error(`--bench: definition file ${name} not found`);
      out.push(...loadBenchmarkFile(name));
      continue;
    }
    const b = BUILTIN_BENCHMARKS.get(name);
    if (!b)
      throw new Error(
        `--bench: unknown benchmark "${name}"; expected a definition file (.yaml/.json), "synthetic", "lab", "paper", or one of ${[...BUILTIN_BENCHMARKS.keys()].join(', ')}`,
      );
    out.push(b);
  }
  if (out.length === 0) throw new Error('--bench: no benchmark named');
  return out;
}

/** Folders benchmark data files are looked up in: the given ones, then `$GLMV_EVAL_DATA`, then `./data/eval`. */
export function evalDataDirs(dirs: readonly string[]): string[] {
  return [...dirs, ...(process.env.GLMV_EVAL_DATA ? [process.env.GLMV_EVAL_DATA] : []), resolve('data/eval')];
}

/** The judge of the verifier fallbacks: one vote per endpoint, greedy, short answers, JSON-schema structured. */
export function evalJudge(
  endpoints: ReadonlyArray<{ baseURL: string; model: string }>,
  apiKeyEnv?: string,
): Omit<JudgeConfig, 'cache'> {
  return {
    endpoints: endpoints.map((e) => ({
      baseURL: e.baseURL,
      model: e.model,
      votes: 1,
      ...(apiKeyEnv ? { apiKeyEnv } : {}),
    })),
    temperature: 0,
    maxTokens: 512,
    timeoutMs: 60_000,
    retries: 3,
    backoffMs: 500,
    concurrency: 8,
    structured: 'json_schema' as const,
  };
}

export type OpenModelOptions =
  | {
      /** A local checkpoint folder (default: the embedded model): requests in flight are decoded as one batch. */
      kind: 'local';
      dir?: string;
      caps: VisualCaps;
      maxBatch: number;
    }
  | ({ kind: 'endpoint'; caps: VisualCaps } & EndpointModelOptions);

/** Opens the model under test. */
export async function openModelUnderTest(o: OpenModelOptions): Promise<ModelUnderTest> {
  if (o.kind === 'local')
    return LocalModel.open({ ...(o.dir ? { dir: o.dir } : {}), caps: o.caps, maxBatch: o.maxBatch });
  const { kind: _kind, ...endpoint } = o;
  return EndpointModel.open(endpoint);
}
