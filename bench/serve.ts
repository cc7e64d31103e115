/**
 * `npm run bench:serve` — a load test of `glmv serve` on loopback with a bounded number of requests.
 *
 * The server runs as its own process (`glmv serve` on a tiny random model folder, so the numbers measure the
 * serving path — HTTP, SSE, queueing, continuous batching — more than the model). Phases:
 * 1. references: every distinct prompt once, non-streamed and alone (greedy), the answer each stream must reproduce;
 * 2. peer: the same streams one at a time (no concurrency: what a server without batching delivers);
 * 3. load: `--streams` concurrent streams (default 64) with prompts and lengths varied, all at once.
 * Each stream is checked on the wire: HTTP 200, every SSE event JSON with the request's id, a finish reason,
 * a usage chunk matching the tokens, `data: [DONE]` last, and the streamed content equal to the reference.
 * Reported: throughput (generated tokens/s), requests/s, p50/p99 time to first token and latency, the
 * load/peer throughput ratio, dropped and corrupted streams (the run fails unless both are zero).
 *
 * Options: --streams <n> (64), --max-tokens <n> (48), --max-batch <n> (64), --metrics <file>
 * (runs/bench-serve.jsonl), --model <dir> (default: a fresh tiny random model with --layers <n> decoder layers, 2),
 * --url <base> (load an already
 * running server serving the model as "tiny" instead of starting one).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { createParser } from 'eventsource-parser';
import { MetricsWriter, Progress } from '../src/util/progress.js';
import { tinyModelDir } from '../test/helpers/tinyModelDir.js';
import { benchProgram, positiveInt } from './cli.js';

const opts = benchProgram({
  name: 'serve',
  description:
    'a load test of glmv serve on loopback: every prompt alone (the reference answers), the same streams one at a ' +
    'time (the peer), then --streams concurrent streams, each checked on the wire; reports tokens/s, requests/s, ' +
    'p50 / p99 time to first token and latency, the load / peer ratio, dropped and corrupted streams (fails unless ' +
    'both are zero)',
  examples: [
    'npm run bench:serve',
    'npm run bench:serve -- --streams 16 --max-tokens 24',
    'npm run bench:serve -- --model models/glmv-small --max-batch 32',
    'npm run bench:serve -- --url http://127.0.0.1:8000/v1   # a running server serving the model as "tiny"',
  ],
})
  .option('--streams <n>', 'concurrent streams in the load phase', positiveInt, 64)
  .option('--max-tokens <n>', 'max_tokens of the longest requests (the others ask for less)', positiveInt, 48)
  .option('--max-batch <n>', "the server's --max-batch", positiveInt, 64)
  .option('--model <dir>', 'model folder to serve (default: a fresh tiny random model)', '')
  .option('--layers <n>', 'decoder layers of the tiny random model', positiveInt, 2)
  .option('--url <base>', 'load an already running server serving the model as "tiny" instead of starting one', '')
  .option('--metrics <file>', 'JSONL metrics file', 'runs/bench-serve.jsonl')
  .parse()
  .opts<{
    streams: number;
    maxTokens: number;
    maxBatch: number;
    model: string;
    layers: number;
    url: string;
    metrics: string;
  }>();
const STREAMS = opts.streams;
const MAX_TOKENS = opts.maxTokens;
const MAX_BATCH = opts.maxBatch;
const LAYERS = opts.layers;
const STREAM_TIMEOUT_MS = 120_000;
const metrics = new MetricsWriter(opts.metrics);

// ------------------------------------------------------------------------------------------ the server

async function startServer(dir: string): Promise<{ url: string; proc: ChildProcess }> {
  const proc = spawn(
    process.execPath,
    [
      '--import',
      'tsx',
      'src/cli/main.ts',
      'serve',
      '--model',
      dir,
      '--port',
      '0',
      '--max-batch',
      String(MAX_BATCH),
      '--max-queue',
      String(Math.max(64, STREAMS)),
      '--served-model-name',
      'tiny',
      '--quiet',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  );
  const url = await new Promise<string>((resolve, reject) => {
    const rl = createInterface({ input: proc.stdout! });
    const timer = setTimeout(() => reject(new Error('glmv serve did not print its URL within 60 s')), 60_000);
    rl.once('line', (line) => {
      clearTimeout(timer);
      resolve(line.trim().replace(/\/v1$/, ''));
    });
    proc.once('exit', (code) => reject(new Error(`glmv serve exited early with code ${code}`)));
  });
  return { url, proc };
}

async function stopServer(proc: ChildProcess): Promise<number | null> {
  const exited = new Promise<number | null>((r) => proc.once('exit', (code) => r(code)));
  proc.kill('SIGTERM');
  const t = setTimeout(() => proc.kill('SIGKILL'), 20_000);
  const code = await exited;
  clearTimeout(t);
  return code;
}

// ------------------------------------------------------------------------------------------ requests

interface Req {
  prompt: string;
  maxTokens: number;
}

/** Prompts of varied length; several streams share each (so references are few). */
function requests(n: number): Req[] {
  const words = ['chart', 'value', 'red', 'circle', 'left', 'of', 'the', 'blue', 'square', 'how', 'many', 'is'];
  const distinct = 16;
  return Array.from({ length: n }, (_, i) => {
    const k = i % distinct;
    const len = 3 + ((k * 7) % 40);
    const prompt = Array.from({ length: len }, (_, j) => words[(j * 5 + k) % words.length]).join(' ');
    return { prompt, maxTokens: Math.max(1, MAX_TOKENS - (k % 4) * Math.floor(MAX_TOKENS / 8)) };
  });
}

const body = (r: Req, stream: boolean) =>
  JSON.stringify({
    model: 'tiny',
    messages: [{ role: 'user', content: r.prompt }],
    max_tokens: r.maxTokens,
    temperature: 0,
    ...(stream ? { stream: true, stream_options: { include_usage: true } } : {}),
  });

async function reference(url: string, r: Req): Promise<string> {
  const resp = await fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: body(r, false),
  });
  if (resp.status !== 200) throw new Error(`reference request: HTTP ${resp.status} ${await resp.text()}`);
  const j = (await resp.json()) as { choices: Array<{ message: { content: string } }> };
  return j.choices[0]!.message.content;
}

interface StreamResult {
  ok: boolean;
  /** Why the stream counts as dropped (transport) or corrupted (wrong content or framing). */
  problem: null | { kind: 'dropped' | 'corrupted'; detail: string };
  ttftMs: number | null;
  totalMs: number;
  tokens: number;
}

/** One streamed request, checked on the wire. */
async function stream(url: string, r: Req, expected: string): Promise<StreamResult> {
  const t0 = performance.now();
  let ttft: number | null = null;
  const fail = (kind: 'dropped' | 'corrupted', detail: string): StreamResult => ({
    ok: false,
    problem: { kind, detail },
    ttftMs: ttft,
    totalMs: performance.now() - t0,
    tokens: 0,
  });
  let resp: Response;
  try {
    resp = await fetch(`${url}/v1/chat/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: body(r, true),
      signal: AbortSignal.timeout(STREAM_TIMEOUT_MS),
    });
  } catch (e) {
    return fail('dropped', `connect: ${(e as Error).message}`);
  }
  if (resp.status !== 200) return fail('dropped', `HTTP ${resp.status}: ${(await resp.text()).slice(0, 200)}`);
  if (!resp.headers.get('content-type')?.startsWith('text/event-stream'))
    return fail('corrupted', `content-type ${resp.headers.get('content-type')}`);
  const events: string[] = [];
  const parser = createParser({ onEvent: (e) => events.push(e.data) });
  // Fields set inside `consume` (a closure: a state object keeps TypeScript from narrowing them to null).
  const st = {
    content: '',
    id: null as string | null,
    finish: null as string | null,
    usage: null as { completion_tokens: number } | null,
    bad: null as string | null,
  };
  let seen = 0;
  const consume = () => {
    for (; seen < events.length; seen++) {
      const data = events[seen]!;
      if (data === '[DONE]') continue;
      let c: {
        id: string;
        choices: Array<{ delta: { content?: string; reasoning_content?: string }; finish_reason: string | null }>;
        usage?: { completion_tokens: number };
      };
      try {
        c = JSON.parse(data);
      } catch {
        st.bad ??= `event ${seen} is not JSON: ${data.slice(0, 80)}`;
        continue;
      }
      st.id ??= c.id;
      if (c.id !== st.id) st.bad ??= `event ${seen} has id ${c.id}, expected ${st.id}`;
      if (c.usage) st.usage = c.usage;
      const ch = c.choices?.[0];
      if (!ch) continue;
      const piece = (ch.delta?.content ?? '') + (ch.delta?.reasoning_content ?? '');
      if (piece && ttft === null) ttft = performance.now() - t0;
      st.content += ch.delta?.content ?? '';
      if (ch.finish_reason) st.finish = ch.finish_reason;
    }
  };
  try {
    const dec = new TextDecoder();
    for await (const chunk of resp.body as unknown as AsyncIterable<Uint8Array>) {
      parser.feed(dec.decode(chunk, { stream: true }));
      consume();
    }
  } catch (e) {
    return fail('dropped', `stream cut: ${(e as Error).message}`);
  }
  if (events.at(-1) !== '[DONE]') return fail('dropped', 'the stream ended without data: [DONE]');
  if (st.bad) return fail('corrupted', st.bad);
  if (!st.finish) return fail('corrupted', 'no finish_reason');
  if (!st.usage) return fail('corrupted', 'no usage chunk');
  if (st.content !== expected)
    return fail('corrupted', `content differs from the reference (${st.content.length} vs ${expected.length} chars)`);
  if (st.finish === 'length' && st.usage.completion_tokens !== r.maxTokens)
    return fail('corrupted', `finish length after ${st.usage.completion_tokens} tokens, max_tokens ${r.maxTokens}`);
  return { ok: true, problem: null, ttftMs: ttft, totalMs: performance.now() - t0, tokens: st.usage.completion_tokens };
}

const pct = (xs: number[], p: number) => {
  if (xs.length === 0) return Number.NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
};

async function phase(
  name: string,
  url: string,
  reqs: Req[],
  refs: Map<string, string>,
  concurrent: boolean,
): Promise<{ results: StreamResult[]; wallS: number }> {
  const bar = new Progress({ label: name, total: reqs.length });
  const t0 = performance.now();
  const results: StreamResult[] = [];
  const one = async (r: Req) => {
    const res = await stream(url, r, refs.get(`${r.prompt}\u0000${r.maxTokens}`)!);
    results.push(res);
    bar.increment();
  };
  if (concurrent) await Promise.all(reqs.map(one));
  else for (const r of reqs) await one(r);
  bar.stop();
  return { results, wallS: (performance.now() - t0) / 1000 };
}

function summarise(name: string, p: { results: StreamResult[]; wallS: number }) {
  const ok = p.results.filter((r) => r.ok);
  const tokens = ok.reduce((a, r) => a + r.tokens, 0);
  const ttft = ok.map((r) => r.ttftMs ?? r.totalMs);
  const lat = ok.map((r) => r.totalMs);
  const s = {
    phase: name,
    streams: p.results.length,
    dropped: p.results.filter((r) => r.problem?.kind === 'dropped').length,
    corrupted: p.results.filter((r) => r.problem?.kind === 'corrupted').length,
    wall_s: +p.wallS.toFixed(3),
    tokens,
    tokens_per_s: +(tokens / p.wallS).toFixed(1),
    requests_per_s: +(ok.length / p.wallS).toFixed(2),
    ttft_p50_ms: +pct(ttft, 50).toFixed(1),
    ttft_p99_ms: +pct(ttft, 99).toFixed(1),
    latency_p50_ms: +pct(lat, 50).toFixed(1),
    latency_p99_ms: +pct(lat, 99).toFixed(1),
  };
  metrics.write(s);
  for (const r of p.results.filter((x) => x.problem).slice(0, 5))
    process.stderr.write(`  ${name}: ${r.problem!.kind}: ${r.problem!.detail}\n`);
  return s;
}

/** Sum and count of the server's rows-per-decode-step histogram. */
async function batchStats(url: string): Promise<{ sum: number; count: number }> {
  const m = await (await fetch(`${url}/metrics`)).text();
  return {
    sum: Number(/^glmv_decode_batch_size_sum (\S+)$/m.exec(m)?.[1]),
    count: Number(/^glmv_decode_batch_size_count (\S+)$/m.exec(m)?.[1]),
  };
}

async function main() {
  const external = opts.url;
  process.stderr.write(`bench:serve — ${STREAMS} streams, max_tokens ≤ ${MAX_TOKENS}, --max-batch ${MAX_BATCH}\n`);
  const { url, proc } = external
    ? { url: external.replace(/\/v1\/?$/, ''), proc: null }
    : await startServer(opts.model || tinyModelDir({ layers: LAYERS }));
  let failed = false;
  try {
    const reqs = requests(STREAMS);
    const refs = new Map<string, string>();
    for (const r of reqs) {
      const k = `${r.prompt}\u0000${r.maxTokens}`;
      if (!refs.has(k)) refs.set(k, await reference(url, r));
    }
    const peer = summarise('sequential', await phase('sequential', url, reqs, refs, false));
    const before = await batchStats(url);
    const load = summarise(`concurrent x${STREAMS}`, await phase(`concurrent x${STREAMS}`, url, reqs, refs, true));
    const after = await batchStats(url);
    // Rows per decode step during the concurrent phase only (server-side histogram, differenced).
    const batchSum = after.sum - before.sum;
    const batchCount = after.count - before.count;
    const ratio = load.tokens_per_s / peer.tokens_per_s;
    metrics.write({ phase: 'summary', throughput_ratio: +ratio.toFixed(2), mean_decode_batch: batchSum / batchCount });
    const row = (s: typeof peer) =>
      `${s.phase.padEnd(16)} ${String(s.streams).padStart(4)} ${s.tokens_per_s.toFixed(1).padStart(9)} ${s.requests_per_s.toFixed(2).padStart(7)} ${s.ttft_p50_ms.toFixed(1).padStart(9)} ${s.ttft_p99_ms.toFixed(1).padStart(9)} ${s.latency_p50_ms.toFixed(1).padStart(9)} ${s.latency_p99_ms.toFixed(1).padStart(9)} ${String(s.dropped).padStart(7)} ${String(s.corrupted).padStart(9)}`;
    process.stdout.write(
      `\nphase            strm     tok/s   req/s  ttft p50  ttft p99   lat p50   lat p99 dropped corrupted\n${row(peer)}\n${row(load)}\n\n`,
    );
    process.stdout.write(
      `concurrent / sequential throughput: ${ratio.toFixed(2)}x (mean rows per decode step under load ${(batchSum / batchCount).toFixed(1)})\n`,
    );
    failed = peer.dropped + peer.corrupted + load.dropped + load.corrupted > 0;
    process.stdout.write(failed ? 'FAIL: dropped or corrupted streams\n' : 'zero dropped, zero corrupted streams\n');
  } finally {
    const code = proc ? await stopServer(proc) : 0;
    if (code !== 0) {
      process.stderr.write(`glmv serve exited with code ${code} on SIGTERM (expected a clean 0)\n`);
      failed = true;
    }
  }
  process.exitCode = failed ? 1 : 0;
}

await main();
