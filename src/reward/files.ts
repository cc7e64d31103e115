/**
 * Rewards over files: a JSONL of responses scored line by line into a JSONL of results (`glmv reward score`), and a
 * JSONL manifest of samples by id (the reward server's OpenRLHF labels).
 */
import { once } from 'node:events';
import { createReadStream, createWriteStream, readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import type { Sample } from '../data/sample.js';
import { MetricsWriter, Progress } from '../util/progress.js';
import type { RewardRouter, ScoreItem } from './router.js';
import type { ResponseMeta, RewardResult } from './types.js';

/**
 * One input line → a score item. Accepted shapes: `{ sample, response, meta? }`, or a Sample with `response`
 * (and optional `meta`, `tokens`, `finish_reason`) fields next to its own.
 */
export function itemFromLine(line: string, lineNo: number): ScoreItem | string {
  let obj: unknown;
  try {
    obj = JSON.parse(line);
  } catch (e) {
    return `line ${lineNo}: invalid JSON (${(e as Error).message})`;
  }
  if (!obj || typeof obj !== 'object' || Array.isArray(obj)) return `line ${lineNo}: expected a JSON object`;
  const o = obj as Record<string, unknown>;
  const metaOf = (x: Record<string, unknown>): ResponseMeta => {
    const m = (x.meta && typeof x.meta === 'object' ? x.meta : {}) as ResponseMeta;
    const tokens = typeof x.tokens === 'number' ? x.tokens : m.tokens;
    const finishReason = typeof x.finish_reason === 'string' ? x.finish_reason : m.finishReason;
    return { ...(tokens !== undefined ? { tokens } : {}), ...(finishReason !== undefined ? { finishReason } : {}) };
  };
  if (typeof o.response !== 'string') return `line ${lineNo}: missing string field "response"`;
  if (o.sample && typeof o.sample === 'object')
    return { sample: o.sample as Sample, response: o.response, meta: metaOf(o) };
  const { response, meta: _m, tokens: _t, finish_reason: _f, ...rest } = o;
  return { sample: rest as unknown as Sample, response: response as string, meta: metaOf(o) };
}

async function countLines(path: string): Promise<number> {
  let n = 0;
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  for await (const line of rl) if (line.trim() !== '') n++;
  return n;
}

export interface ScoreFileOptions {
  /** Responses in flight. */
  concurrency: number;
  /** JSONL metrics: progress every 1000 lines, then per-domain statistics. */
  metrics?: string;
  quiet?: boolean;
  /** Called for each input line that cannot be read (it is written to the output as an error result). */
  onInputError?: (message: string) => void;
}

/**
 * Scores every non-blank line of the JSONL `input` into `output`, one result per line in input order (unreadable
 * lines become `{id, status: "error", reason}`), in batches that overlap judge calls. Closes the router.
 * Returns the number of unreadable input lines.
 */
export async function scoreJsonlFile(
  router: RewardRouter,
  input: string,
  output: string,
  o: ScoreFileOptions,
): Promise<{ inputErrors: number }> {
  const total = await countLines(input);
  const progress = new Progress({ label: 'reward', total, quiet: !!o.quiet });
  const metrics = o.metrics ? new MetricsWriter(o.metrics) : null;
  const out = createWriteStream(output);
  const rl = createInterface({ input: createReadStream(input), crlfDelay: Infinity });
  let lineNo = 0;
  let done = 0;
  let inputErrors = 0;
  let pending: Array<ScoreItem | string> = [];
  const flush = async () => {
    const items = pending;
    pending = [];
    const good = items.filter((x): x is ScoreItem => typeof x !== 'string');
    const scored = await router.scoreBatch(good, { concurrency: o.concurrency });
    let k = 0;
    for (const it of items) {
      const r: RewardResult | { id: string; status: 'error'; reason: string } =
        typeof it === 'string' ? { id: it.replace(/:.*$/, ''), status: 'error', reason: it } : scored[k++]!;
      if (!out.write(`${JSON.stringify(r)}\n`)) await once(out, 'drain');
      done++;
    }
    const all = router.stats.snapshot().find((s) => s.domain === '*');
    progress.update(done, all ? `reward ${all.rewardMean.toFixed(3)} pass ${(all.passRate * 100).toFixed(1)}%` : '');
    if (metrics && Math.floor(done / 1000) !== Math.floor((done - items.length) / 1000))
      metrics.write({ event: 'progress', done, total, rewardMean: all?.rewardMean, passRate: all?.passRate });
  };
  for await (const line of rl) {
    lineNo++;
    if (line.trim() === '') continue;
    const item = itemFromLine(line, lineNo);
    if (typeof item === 'string') {
      inputErrors++;
      o.onInputError?.(item);
    }
    pending.push(item);
    if (pending.length >= Math.max(256, o.concurrency * 4)) await flush();
  }
  await flush();
  out.end();
  await once(out, 'finish');
  progress.stop();
  await router.close();
  for (const row of router.stats.snapshot()) metrics?.write({ event: 'domain_stats', ...row });
  return { inputErrors };
}

/** A JSONL manifest of samples by id; `what` names the file in errors (default: its path). */
export function readSampleManifest(path: string, what = path): Map<string, Sample> {
  const map = new Map<string, Sample>();
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (line.trim() === '') return;
      let s: Sample;
      try {
        s = JSON.parse(line) as Sample;
      } catch (e) {
        throw new Error(`${what} line ${i + 1}: invalid JSON (${(e as Error).message})`);
      }
      if (typeof s.id !== 'string') throw new Error(`${what} line ${i + 1}: missing string "id"`);
      map.set(s.id, s);
    });
  return map;
}
