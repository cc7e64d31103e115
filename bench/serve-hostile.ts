/**
 * `npm run bench:serve-hostile` — how long `/health` takes while one client sends a hostile request, against
 * `/health` on the idle server measured in the same run (the peer). The server runs in this process on a tiny
 * random model (the numbers measure the HTTP path: body parsing, length checks, tokenizing off the event loop).
 *
 * Cases: a 60 MB prompt (refused by its length), a 4 MB prompt, a prompt just under the character limit (tokenized
 * in the worker, then refused by its token count). Reported per case: /health polls, p50 / max latency, the
 * max/idle-p50 ratio, and the hostile request's own time; one JSON line per case in --metrics
 * (runs/bench-serve-hostile.jsonl).
 */
import { cpus } from 'node:os';
import { ChatModel } from '../src/io/chat.js';
import { maxPromptCharsFor } from '../src/serve/offload.js';
import { createServer } from '../src/serve/server.js';
import { MetricsWriter } from '../src/util/progress.js';
import { tinyModelDir } from '../test/helpers/tinyModelDir.js';

const args = process.argv.slice(2);
const metricsPath =
  args[args.indexOf('--metrics') + 1] && args.includes('--metrics')
    ? args[args.indexOf('--metrics') + 1]!
    : 'runs/bench-serve-hostile.jsonl';

const chat = await ChatModel.load(tinyModelDir());
const server = await createServer({ chat, modelName: 'tiny' });
const url = await server.listen(0, '127.0.0.1');
const metrics = new MetricsWriter(metricsPath);

const pct = (xs: number[], p: number) =>
  [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))]!;

async function health(): Promise<number> {
  const t0 = performance.now();
  const r = await fetch(`${url}/health`);
  await r.text();
  return performance.now() - t0;
}

async function pollWhile(p: Promise<unknown>): Promise<number[]> {
  let done = false;
  void p.finally(() => (done = true));
  const out: number[] = [];
  while (!done) {
    out.push(await health());
    await new Promise((r) => setTimeout(r, 10));
  }
  return out;
}

await new Promise((r) => setTimeout(r, 2000)); // let the worker load its tokenizer
const idle: number[] = [];
for (let i = 0; i < 50; i++) idle.push(await health());
const idleP50 = pct(idle, 0.5);
const limit = maxPromptCharsFor(chat.tokenizer, chat.model.config.text.maxPositionEmbeddings);
console.log(`CPU: ${cpus()[0]?.model} (${cpus().length} cores); prompt character limit ${limit}`);
console.log(`idle /health p50 ${idleP50.toFixed(1)} ms`);

const cases: Array<[string, string]> = [
  ['60 MB prompt', 'word '.repeat(12_000_000)],
  ['4 MB prompt', 'word '.repeat(800_000)],
  ['just under the character limit', 'ab '.repeat(Math.floor((limit - 10) / 3))],
];
for (const [name, text] of cases) {
  const body = JSON.stringify({ messages: [{ role: 'user', content: text }], max_tokens: 1 });
  const t0 = performance.now();
  const req = fetch(`${url}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
  }).then(async (r) => ({ status: r.status, body: await r.text() }));
  const lat = await pollWhile(req);
  const res = await req;
  const reqMs = performance.now() - t0;
  const row = {
    case: name,
    body_bytes: body.length,
    status: res.status,
    request_ms: Math.round(reqMs),
    health_polls: lat.length,
    health_p50_ms: +pct(lat, 0.5).toFixed(1),
    health_max_ms: +Math.max(...lat).toFixed(1),
    idle_p50_ms: +idleP50.toFixed(1),
    max_over_idle: +(Math.max(...lat) / idleP50).toFixed(1),
  };
  metrics.write(row);
  console.log(
    `${name}: ${res.status} in ${row.request_ms} ms; /health ${lat.length} polls, p50 ${row.health_p50_ms} ms, max ${row.health_max_ms} ms (${row.max_over_idle}x idle p50)`,
  );
}
await server.close(0);
