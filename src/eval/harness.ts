/**
 * The eval harness: benchmarks × thinking modes against one model under test, with a bounded request pool,
 * the content-addressed generation cache (reruns and interrupted runs resume without recomputing), per-sample
 * JSONL records, aggregate scores with bootstrap confidence intervals, per-group breakdowns, think vs no-think
 * comparisons, and the summary JSON / CSV / HTML report.
 *
 * Output folder:
 *   summary.json  summary.csv  report.html  metrics.jsonl
 *   <bench>/<mode>/samples.jsonl   <bench>/data_errors.jsonl
 *   cache/generations.jsonl  cache/judge.jsonl  cache/synthetic/…   (unless --cache-dir points elsewhere)
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { printable } from '../data/schema.js';
import { JudgeClient, type JudgeConfig } from '../reward/judge.js';
import { MetricsWriter, Progress } from '../util/progress.js';
import type { Benchmark } from './benchmark.js';
import { cacheKey, GenerationCache } from './cache.js';
import { type EvalItem, groupValue, type PreparedBenchmark, prepareBenchmark } from './data.js';
import { bootstrapCI, circularGroups, mean, pairedBootstrapDiff } from './metrics.js';
import { fileHash, type Generation, type GenerationParams, type ModelUnderTest, type VisualCaps } from './model.js';
import {
  type BreakdownRow,
  type Comparison,
  type Counts,
  type EvalSummary,
  MODES,
  type Mode,
  type ModeResult,
  readSamples,
  type SampleRecord,
  writeSamples,
} from './records.js';
import { renderHtmlReport } from './report/html.js';
import { summaryCsv } from './report/summary.js';
import { type ScoreResult, Scorer } from './score.js';

export interface GenerationSettings {
  maxTokens: number;
  thinkingBudget?: number;
  answerTokens?: number;
  temperature: number;
  topP?: number;
  seed?: number;
}

export interface RunOptions {
  model: ModelUnderTest;
  benchmarks: Benchmark[];
  out: string;
  modes: Mode[];
  limit?: number;
  concurrency: number;
  generation: GenerationSettings;
  /** Part of the cache key: the same request under other caps is another request. */
  caps: VisualCaps;
  dataDirs: string[];
  /** `--data NAME=PATH` overrides. */
  dataPaths?: Record<string, string>;
  /** Judge endpoints for the verifiers' fallback (null: rule-only). */
  judge?: Omit<JudgeConfig, 'cache'> | null;
  /** Generation cache, judge cache and rendered synthetic sets (default `<out>/cache`). */
  cacheDir?: string;
  /** Extraction override for every benchmark. */
  extract?: 'strict' | 'lenient';
  bootstrap?: { samples?: number; level?: number; seed?: number };
  quiet?: boolean;
  signal?: AbortSignal;
}

/** Thrown when the run was interrupted; everything finished so far is cached and written. */
export class EvalInterrupted extends Error {
  constructor(
    readonly done: number,
    readonly total: number,
  ) {
    super(`evaluation interrupted after ${done}/${total} items; rerun the same command to resume from the cache`);
    this.name = 'EvalInterrupted';
  }
}

function emptyCounts(): Counts {
  return {
    items: 0,
    scored: 0,
    correct: 0,
    noAnswer: 0,
    gated: 0,
    unjudged: 0,
    scoreErrors: 0,
    failed: 0,
    cached: 0,
    truncated: 0,
    forced: 0,
    unclosedThink: 0,
  };
}

const pct = (x: number) => Math.round(x * 1e6) / 1e4;

export function checkRunOptions(o: RunOptions): void {
  if (!o.benchmarks.length) throw new Error('eval: expected at least one benchmark (--bench)');
  if (!o.modes.length || o.modes.some((m) => !MODES.includes(m)))
    throw new Error(`eval: modes must be some of ${MODES.join(', ')}, found ${JSON.stringify(o.modes)}`);
  if (!Number.isInteger(o.concurrency) || o.concurrency < 1)
    throw new Error(`--concurrency: expected a positive integer, found ${o.concurrency}`);
  const g = o.generation;
  if (!Number.isInteger(g.maxTokens) || g.maxTokens < 1)
    throw new Error(`--max-tokens: expected a positive integer, found ${g.maxTokens}`);
  if (g.thinkingBudget !== undefined && (!Number.isInteger(g.thinkingBudget) || g.thinkingBudget < 1))
    throw new Error(`--thinking-budget: expected a positive integer, found ${g.thinkingBudget}`);
  if (!(g.temperature >= 0 && g.temperature <= 2))
    throw new Error(`--temperature: expected a number in [0, 2], found ${g.temperature}`);
  const names = new Set<string>();
  for (const b of o.benchmarks) {
    if (names.has(b.name)) throw new Error(`eval: benchmark ${b.name} is listed twice`);
    names.add(b.name);
  }
}

/** Runs every benchmark in every mode; writes all outputs; returns the summary. */
export async function runEval(o: RunOptions): Promise<EvalSummary> {
  checkRunOptions(o);
  const out = resolve(o.out);
  mkdirSync(out, { recursive: true });
  const cacheDir = resolve(o.cacheDir ?? join(out, 'cache'));
  const cache = new GenerationCache(cacheDir);
  if (cache.skippedLines.length && !o.quiet)
    process.stderr.write(
      `eval cache ${cache.file}: skipped ${cache.skippedLines.length} unreadable line(s) (a torn write); those items will be regenerated\n`,
    );
  const judge = o.judge ? new JudgeClient({ ...o.judge, cache: join(cacheDir, 'judge.jsonl') }) : null;
  const metrics = new MetricsWriter(join(out, 'metrics.jsonl'));
  const hashes = new Map<string, Promise<string>>();
  const hashOf = (p: string) => {
    let h = hashes.get(p);
    if (!h) {
      h = fileHash(p);
      hashes.set(p, h);
    }
    return h;
  };

  const summary: EvalSummary = {
    version: 1,
    created: new Date().toISOString(),
    model: o.model.describe(),
    settings: {
      modes: o.modes,
      limit: o.limit ?? null,
      concurrency: o.concurrency,
      generation: o.generation,
      caps: o.caps,
      extract: o.extract ?? 'per benchmark',
      judge: o.judge ? o.judge.endpoints.map((e) => `${e.model}@${e.baseURL}`) : null,
      bootstrap: { samples: 1000, level: 0.95, seed: 0, ...(o.bootstrap ?? {}) },
    },
    results: [],
    comparisons: [],
    data: [],
    interrupted: false,
  };
  metrics.write({
    event: 'start',
    model: summary.model,
    settings: summary.settings,
    benchmarks: o.benchmarks.map((b) => b.name),
  });

  try {
    for (const b0 of o.benchmarks) {
      const bench: Benchmark = o.extract ? { ...b0, extraction: o.extract } : b0;
      const prepared = await prepareBenchmark(bench, {
        dataDirs: o.dataDirs,
        ...(o.dataPaths?.[bench.name] ? { dataPath: o.dataPaths[bench.name] } : {}),
        ...(o.limit !== undefined ? { limit: o.limit } : {}),
        syntheticDir: join(cacheDir, 'synthetic'),
        imageCacheDir: join(cacheDir, 'images'),
        quiet: o.quiet,
      });
      writeDataErrors(out, prepared);
      summary.data.push({
        bench: bench.name,
        file: prepared.file,
        rows: prepared.rows,
        items: prepared.items.length,
        errors: prepared.errors.length,
        firstErrors: prepared.errors.slice(0, 20),
      });
      metrics.write({
        event: 'data',
        bench: bench.name,
        file: prepared.file,
        rows: prepared.rows,
        items: prepared.items.length,
        errors: prepared.errors.length,
      });
      if (prepared.errors.length && !o.quiet) {
        process.stderr.write(
          `${bench.name}: ${prepared.errors.length} malformed row(s) skipped (see ${join(out, bench.name, 'data_errors.jsonl')}):\n`,
        );
        for (const e of prepared.errors.slice(0, 5))
          process.stderr.write(
            `  ${e.file}: row ${e.row}: field "${printable(e.field, 120)}": ${printable(e.detail)}\n`,
          );
      }
      if (prepared.items.length === 0) {
        if (!o.quiet) process.stderr.write(`${bench.name}: no usable items; skipped\n`);
        continue;
      }
      const scorer = new Scorer(bench, { judge });
      try {
        for (const mode of o.modes) {
          const records = await runMode(o, bench, mode, prepared, scorer, cache, hashOf, metrics);
          const result = aggregate(
            bench,
            mode,
            prepared.items,
            records,
            summary.settings.bootstrap as { samples: number; level: number; seed: number },
          );
          summary.results.push(result);
          metrics.write({ event: 'result', ...result, breakdown: undefined });
          if (!o.quiet)
            process.stderr.write(
              `${bench.name} [${mode}] ${result.metric}: ${result.score.toFixed(2)} (95% CI ${result.ci.low.toFixed(2)}–${result.ci.high.toFixed(2)}), n=${result.units}` +
                `${result.counts.failed ? `, ${result.counts.failed} failed requests` : ''}${result.counts.cached ? `, ${result.counts.cached} cached` : ''}\n`,
            );
        }
      } finally {
        await scorer.close();
      }
      const cmp = compareModes(
        bench.name,
        out,
        summary.settings.bootstrap as { samples: number; level: number; seed: number },
        o.modes,
      );
      if (cmp) summary.comparisons.push(cmp);
    }
  } catch (e) {
    if (e instanceof EvalInterrupted) {
      summary.interrupted = true;
      writeOutputs(out, summary);
      metrics.write({ event: 'interrupted', done: e.done, total: e.total });
    }
    throw e;
  }
  writeOutputs(out, summary);
  metrics.write({ event: 'done', results: summary.results.length });
  return summary;
}

function writeDataErrors(out: string, p: PreparedBenchmark): void {
  const dir = join(out, p.bench.name);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'data_errors.jsonl');
  if (p.errors.length === 0) rmSync(file, { force: true });
  else writeFileSync(file, `${p.errors.map((e) => JSON.stringify(e)).join('\n')}\n`);
}

function writeOutputs(out: string, summary: EvalSummary): void {
  writeFileSync(join(out, 'summary.json'), `${JSON.stringify(summary, null, 2)}\n`);
  writeFileSync(join(out, 'summary.csv'), summaryCsv(summary));
  writeFileSync(join(out, 'report.html'), renderHtmlReport(summary, out));
}

function params(o: RunOptions, bench: Benchmark, mode: Mode): GenerationParams {
  const g = { ...o.generation, ...bench.generation };
  return {
    thinking: mode === 'think',
    maxTokens: g.maxTokens,
    ...(g.thinkingBudget !== undefined ? { thinkingBudget: g.thinkingBudget } : {}),
    ...(o.generation.answerTokens !== undefined ? { answerTokens: o.generation.answerTokens } : {}),
    temperature: g.temperature,
    ...(g.topP !== undefined ? { topP: g.topP } : {}),
    ...(g.seed !== undefined ? { seed: g.seed } : {}),
  };
}

async function runMode(
  o: RunOptions,
  bench: Benchmark,
  mode: Mode,
  prepared: PreparedBenchmark,
  scorer: Scorer,
  cache: GenerationCache,
  hashOf: (p: string) => Promise<string>,
  metrics: MetricsWriter,
): Promise<SampleRecord[]> {
  const items = prepared.items;
  const p = params(o, bench, mode);
  const records = new Array<SampleRecord | undefined>(items.length);
  const progress = new Progress({ label: `eval ${bench.name} [${mode}]`, total: items.length, quiet: o.quiet });
  let next = 0;
  let done = 0;
  let sum = 0;
  const aborted = () => o.signal?.aborted === true;

  const keyOf = async (it: EvalItem): Promise<string> => {
    const pr = it.prompt;
    return cacheKey({
      v: 1,
      model: o.model.id,
      traits: o.model.requestTraits(),
      system: pr.system ?? null,
      text: pr.text,
      ...(pr.questionFirst ? { questionFirst: true } : {}),
      images: await Promise.all(pr.images.map(hashOf)),
      video: pr.video?.path
        ? await hashOf(pr.video.path)
        : pr.video?.frames
          ? await Promise.all(pr.video.frames.map(hashOf))
          : null,
      caps: o.caps,
      params: p,
    });
  };

  const one = async (i: number): Promise<void> => {
    const it = items[i]!;
    let key = '';
    let error: string | null = null;
    try {
      key = await keyOf(it);
    } catch (e) {
      // A media file that vanished since loading: this item fails, the run goes on.
      error = (e as Error).message;
    }
    let gen: Generation | undefined = key ? cache.get(key) : undefined;
    const cached = gen !== undefined;
    if (!gen && !error) {
      try {
        gen = await o.model.generate(it.prompt, p, o.signal);
        if (aborted()) return; // a reply racing the interrupt: do not trust a half-cancelled request
        cache.put(key, o.model.id, gen);
      } catch (e) {
        if (aborted()) return;
        error = (e as Error).message;
      }
    }
    const groups: Record<string, string> = {};
    for (const k of bench.groupBy) {
      const v = groupValue(it.sample, k);
      if (v !== null) groups[k] = v;
    }
    const s: ScoreResult = gen
      ? await scorer.score(it, gen.text)
      : {
          score: 0,
          correct: false,
          extracted: null,
          status: 'error',
          reason: `request failed: ${error}`,
          path: 'request',
        };
    const rec: SampleRecord = {
      bench: bench.name,
      mode,
      id: it.id,
      group: it.group,
      row: it.row,
      prompt: {
        ...(it.prompt.system ? { system: it.prompt.system } : {}),
        text: it.prompt.text,
        images: it.prompt.images,
        ...(it.prompt.video?.path ? { video: it.prompt.video.path } : {}),
      },
      reference: it.sample.answer,
      answers: it.answers,
      groups,
      raw: gen?.text ?? null,
      reasoning: gen?.reasoning ?? null,
      content: gen?.content ?? null,
      extracted: s.extracted,
      score: s.score,
      correct: s.correct,
      status: gen ? s.status : 'failed',
      reason: s.reason,
      path: s.path,
      ...(s.judge ? { judge: s.judge } : {}),
      ...(s.detail ? { detail: s.detail } : {}),
      finishReason: gen?.finishReason ?? null,
      thinkClosed: gen?.thinkClosed ?? null,
      forcedAnswer: gen?.forcedAnswer ?? false,
      truncatedThinking: gen?.truncatedThinking ?? false,
      ...(gen?.usage ? { usage: gen.usage } : {}),
      latencyMs: gen ? gen.latencyMs : null,
      cached,
      cacheKey: key,
    };
    records[i] = rec;
    done++;
    sum += rec.score;
    progress.update(done, `mean ${((sum / done) * 100).toFixed(1)}`);
    metrics.write({
      event: 'item',
      bench: bench.name,
      mode,
      id: it.id,
      score: rec.score,
      status: rec.status,
      cached,
      latency_ms: rec.latencyMs,
      completion_tokens: rec.usage?.completionTokens ?? null,
    });
  };

  const worker = async () => {
    while (next < items.length && !aborted()) await one(next++);
  };
  try {
    await Promise.all(Array.from({ length: Math.min(o.concurrency, items.length) }, worker));
  } finally {
    progress.stop();
  }
  const finished = records.filter((r): r is SampleRecord => r !== undefined);
  writeSamples(o.out, bench.name, mode, finished);
  if (aborted()) throw new EvalInterrupted(finished.length, items.length);
  return finished;
}

/** Aggregation units: circular groups, or items. Each carries its first record for breakdowns. */
function units(bench: Benchmark, records: SampleRecord[]): Array<{ id: string; score: number; rec: SampleRecord }> {
  if (bench.metric.name === 'mcq' && bench.metric.circular !== 'none') {
    const first = new Map<string, SampleRecord>();
    for (const r of records) if (!first.has(r.group)) first.set(r.group, r);
    return circularGroups(records.map((r) => ({ group: r.group, score: r.score }))).map((g) => ({
      id: g.group,
      score: g.score,
      rec: first.get(g.group)!,
    }));
  }
  return records.map((r) => ({ id: r.id, score: r.score, rec: r }));
}

export function aggregate(
  bench: Benchmark,
  mode: Mode,
  items: EvalItem[],
  records: SampleRecord[],
  boot: { samples: number; level: number; seed: number },
): ModeResult {
  const c = emptyCounts();
  c.items = records.length;
  const tokens: number[] = [];
  const latency: number[] = [];
  for (const r of records) {
    if (r.status === 'failed') c.failed++;
    else if (r.status === 'scored') c.scored++;
    else if (r.status === 'no_answer') c.noAnswer++;
    else if (r.status === 'gated') c.gated++;
    else if (r.status === 'unjudged') c.unjudged++;
    else c.scoreErrors++;
    if (r.correct) c.correct++;
    if (r.cached) c.cached++;
    if (r.finishReason === 'length') c.truncated++;
    if (r.forcedAnswer) c.forced++;
    if (r.thinkClosed === false) c.unclosedThink++;
    if (r.usage) tokens.push(r.usage.completionTokens);
    if (r.latencyMs !== null && !r.cached) latency.push(r.latencyMs);
  }
  const u = units(bench, records);
  const scores = u.map((x) => x.score);
  const ci = bootstrapCI(scores, boot);
  const breakdown: Record<string, BreakdownRow[]> = {};
  for (const key of bench.groupBy) {
    const by = new Map<string, number[]>();
    for (const x of u) {
      const v = x.rec.groups[key];
      if (v === undefined) continue;
      const arr = by.get(v) ?? [];
      arr.push(x.score);
      by.set(v, arr);
    }
    if (by.size)
      breakdown[key] = [...by]
        .map(([value, s]) => ({ value, score: pct(mean(s)), n: s.length }))
        .sort((a, b) => a.value.localeCompare(b.value, 'en', { numeric: true }));
  }
  const domain = items[0]?.sample.domain ?? null;
  return {
    bench: bench.name,
    family: bench.family,
    domain,
    metric: bench.metric.name,
    mode,
    score: pct(mean(scores)),
    ci: { low: pct(ci.low), high: pct(ci.high) },
    units: u.length,
    ...(bench.metric.name === 'ocrbench' ? { total: scores.reduce((a, b) => a + b, 0) } : {}),
    counts: c,
    successRate: records.length ? pct((records.length - c.failed) / records.length) : 0,
    meanCompletionTokens: tokens.length ? Math.round(mean(tokens) * 10) / 10 : null,
    meanLatencyMs: latency.length ? Math.round(mean(latency)) : null,
    breakdown,
    reference: bench.reference,
  };
}

function compareModes(
  bench: string,
  out: string,
  boot: { samples: number; level: number; seed: number },
  modes: Mode[],
): Comparison | null {
  if (!modes.includes('think') || !modes.includes('nothink')) return null;
  const t = readSamples(out, bench, 'think');
  const n = readSamples(out, bench, 'nothink');
  // Pair by aggregation unit (the group: a circular question's copies, otherwise the item itself); a group with
  // several records scores 1 only when all of them are right, as CircularEval does.
  const unitScores = (rs: SampleRecord[]) => {
    const m = new Map<string, number[]>();
    for (const r of rs) m.set(r.group, [...(m.get(r.group) ?? []), r.score]);
    return new Map([...m].map(([g, xs]) => [g, xs.length === 1 ? xs[0]! : xs.every((x) => x >= 1) ? 1 : 0]));
  };
  const tm = unitScores(t);
  const nm = unitScores(n);
  const ids = [...tm.keys()].filter((k) => nm.has(k));
  if (ids.length === 0) return null;
  const a = ids.map((k) => tm.get(k)!);
  const b = ids.map((k) => nm.get(k)!);
  const d = pairedBootstrapDiff(a, b, boot);
  return {
    bench,
    think: pct(mean(a)),
    nothink: pct(mean(b)),
    diff: pct(d.diff),
    ci: { low: pct(d.low), high: pct(d.high) },
    pairedUnits: ids.length,
  };
}
