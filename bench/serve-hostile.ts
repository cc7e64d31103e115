/**
 * `npm run bench:serve-hostile` — how long `/health` takes while one client sends a hostile request, against
 * `/health` on the idle server measured in the same run (the peer). `glmv serve` runs in its own process on a tiny
 * random model (the numbers measure the HTTP path: body parsing, length checks, tokenizing off the event loop).
 *
 * Cases: a 60 MB prompt (refused by its length), a 4 MB prompt, a prompt just under the character limit (tokenized
 * in the worker, then refused by its token count). Reported per case: /health polls, p50 / max latency, the
 * max/idle-p50 ratio, and the hostile request's own time; one JSON line per case in --metrics
 * (runs/bench-serve-hostile.jsonl).
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { ChatModel } from '../src/io/chat.js';
import { maxPromptCharsFor } from '../src/serve/offload.js';
import { MetricsWriter } from '../src/util/progress.js';
import { tinyModelDir } from '../test/helpers/tinyModelDir.js';
import { benchProgram } from './cli.js';

const metricsPath = benchProgram({
  name: 'serve-hostile',
  description:
    'how long /health takes on glmv serve while one client sends a hostile request (a 60 MB prompt, a 4 MB ' +
    'prompt, a prompt just under the character limit), against /health on the idle server in the same run',
  examples: ['npm run bench:serve-hostile', 'npm run bench:serve-hostile -- --metrics runs/hostile.jsonl'],
})
  .option('--metrics <file>', 'JSONL metrics file, one line per case', 'runs/bench-serve-hostile.jsonl')
  .parse()
  .opts<{ metrics: string }>().metrics;

// The server runs in its own process (as `glmv serve` does): the client's own work — building and sending 60 MB —
// must not be counted as the server's stall.
const modelDir = tinyModelDir();
const tmp = mkdtempSync(join(tmpdir(), 'glmv-bench-hostile-'));
const proc = spawn(
  process.execPath,
  [
    '--import',
    'tsx',
    'src/cli/main.ts',
    'serve',
    '--model',
    modelDir,
    '--port',
    '0',
    '--served-model-name',
    'tiny',
    '--quiet',
  ],
  { stdio: ['ignore', 'pipe', 'inherit'] },
);
const url = await new Promise<string>((resolve, reject) => {
  const rl = createInterface({ input: proc.stdout! });
  const timer = setTimeout(() => reject(new Error('glmv serve did not print its URL within 120 s')), 120_000);
  rl.once('line', (line) => {
    clearTimeout(timer);
    resolve(line.trim().replace(/\/v1$/, ''));
  });
  proc.once('exit', (code) => reject(new Error(`glmv serve exited early with code ${code}`)));
});
const chat = await ChatModel.load(modelDir);
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
  // Encoded and written before the clock starts.
  const body = Buffer.from(JSON.stringify({ messages: [{ role: 'user', content: text }], max_tokens: 1 }));
  // Sent by curl, a third process: sending 60 MB must not stall the event loop that times /health.
  const file = join(tmp, 'body.json');
  writeFileSync(file, body);
  const t0 = performance.now();
  const req = new Promise<{ status: number }>((resolve, reject) => {
    const c = spawn(
      'curl',
      ['-s', '-o', '/dev/null', '-w', '%{http_code}', '-H', 'content-type: application/json'].concat([
        '--data-binary',
        `@${file}`,
        `${url}/v1/chat/completions`,
      ]),
    );
    let out = '';
    c.stdout.on('data', (d) => (out += d));
    c.on('error', (e) => reject(new Error(`this benchmark needs curl on PATH (${e.message})`)));
    c.on('close', () => resolve({ status: Number(out) }));
  });
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
proc.kill('SIGTERM');
rmSync(tmp, { recursive: true, force: true });
