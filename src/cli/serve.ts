/**
 * `glmv serve`: the OpenAI-compatible server (src/serve/server.ts) on a model folder or the embedded model.
 * Prints the URL, a status line every 10 s while busy, and shuts down gracefully on SIGINT / SIGTERM (requests in
 * flight finish within the grace period; a second signal aborts them).
 */
import type { Command } from 'commander';
import { ChatModel } from '../io/chat.js';
import { createServer, type ReasoningField } from '../serve/server.js';

interface ServeCliOptions {
  model?: string;
  port: string;
  host: string;
  servedModelName?: string;
  maxBatch: string;
  maxQueue: string;
  maxPrefillTokens: string;
  joinEvery: string;
  maxModelLen?: string;
  defaultMaxTokens: string;
  maxN: string;
  bodyLimitMb: string;
  maxImagePixels: string;
  maxMediaMb: string;
  maxMediaItems: string;
  maxVideoPixels: string;
  allowRemoteMedia?: boolean;
  mediaRoot: string[];
  reasoningField: string;
  apiKey?: string;
  requestLog?: string;
  weightUpdates?: boolean;
  weightsBodyLimitMb: string;
  shutdownGrace: string;
  quiet?: boolean;
}

const collect = (v: string, prev: string[]) => [...prev, v];

function int(v: string, name: string, min: number): number {
  const n = Number(v);
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name}: expected an integer >= ${min}, found '${v}'`);
  return n;
}

export function register(program: Command): void {
  program
    .command('serve')
    .description('serve a GLM-V model over an OpenAI-compatible HTTP API (chat completions with reasoning_content)')
    .option('--model <dir>', 'model folder (config.json, weights, tokenizer); default: the embedded model')
    .option('--port <n>', 'port (0 = any free port)', '8000')
    .option('--host <addr>', 'address to listen on (0.0.0.0 for all interfaces)', '127.0.0.1')
    .option('--served-model-name <name>', 'model name in /v1/models and responses (default: the folder name)')
    .option('--max-batch <n>', 'requests decoded together', '16')
    .option('--max-queue <n>', 'requests waiting for a slot before 429s', '64')
    .option('--max-prefill-tokens <n>', 'prompt tokens prefilled per admission round', '8192')
    .option('--join-every <n>', 'decode steps between admissions of new requests into a running batch', '4')
    .option('--max-model-len <n>', 'prompt + completion tokens (default: the model config)')
    .option('--default-max-tokens <n>', 'completion tokens when a request gives no max_tokens', '4096')
    .option('--max-n <n>', 'most choices per request (n)', '8')
    .option('--body-limit-mb <n>', 'largest request body, MiB', '64')
    .option('--max-image-pixels <n>', 'largest image (width x height) accepted', String(2 ** 25))
    .option('--max-media-mb <n>', 'largest image or video, MiB', '32')
    .option('--max-media-items <n>', 'most images + videos per request', '32')
    .option(
      '--max-video-pixels <n>',
      'largest video decode, width x height x frames decoded (probed before decoding)',
      String(2 ** 29),
    )
    .option('--allow-remote-media', 'fetch http(s) image/video URLs (off: only data: URLs and --media-root files)')
    .option('--media-root <dir>', 'allow file:// URLs inside this folder; repeat for several', collect, [])
    .option('--reasoning-field <name>', 'reasoning_content, reasoning or both', 'both')
    .option('--api-key <key>', 'require Authorization: Bearer <key> (default: $GLMV_API_KEY, else open)')
    .option('--request-log <file>', 'append one JSON line per finished request (tokens, TTFT, latency)')
    .option(
      '--weight-updates',
      'accept new weights from an RL trainer (POST /update_weights_from_disk, /update_weights_from_tensor; needs --api-key)',
    )
    .option('--weights-body-limit-mb <n>', 'largest safetensors body of /update_weights_from_tensor, MiB', '2048')
    .option('--shutdown-grace <s>', 'seconds requests in flight get to finish on SIGINT/SIGTERM', '30')
    .option('--quiet', 'no status lines on stderr')
    .addHelpText(
      'after',
      `
Endpoints: POST /v1/chat/completions (stream and non-stream), POST /v1/completions, GET /v1/models, /health,
/metrics (Prometheus). Extensions: chat_template_kwargs.enable_thinking, thinking_budget (force the answer after
that many thinking tokens), top_k, repetition_penalty, stop_token_ids, continue_final_message, include_reasoning,
and vLLM's skip_special_tokens, return_token_ids, mm_processor_kwargs. Every response carries policy_version (the
weights it was sampled with; --weight-updates lets a trainer replace them). See docs/serve.md.

Examples:
  glmv serve                                   # the embedded model on http://127.0.0.1:8000/v1
  glmv serve --model runs/small/final --port 8080 --max-batch 32
  glmv serve --media-root ./images --request-log runs/serve.jsonl
  curl -s localhost:8000/v1/chat/completions -H 'content-type: application/json' -d '{
    "model": "glmv-small", "max_tokens": 256, "thinking_budget": 128,
    "messages": [{"role": "user", "content": "What is 2 + 3?"}]}' | jq .choices[0].message
  GLMV_API_KEY=secret glmv serve --host 0.0.0.0
  GLMV_API_KEY=secret glmv serve --model runs/rl/init --weight-updates   # on-policy RL rollouts (glmv rl)`,
    )
    .action(async (o: ServeCliOptions) => runServe(o));
}

async function runServe(o: ServeCliOptions): Promise<void> {
  const port = int(o.port, 'port', 0);
  if (port > 65535) throw new Error(`--port: expected 0..65535, found ${port}`);
  const field = o.reasoningField;
  if (field !== 'reasoning_content' && field !== 'reasoning' && field !== 'both')
    throw new Error(`--reasoning-field: expected reasoning_content, reasoning or both, found '${field}'`);
  const grace = Number(o.shutdownGrace);
  if (!(grace >= 0)) throw new Error(`--shutdown-grace: expected seconds >= 0, found '${o.shutdownGrace}'`);
  const opts = {
    maxBatch: int(o.maxBatch, 'max-batch', 1),
    maxQueue: int(o.maxQueue, 'max-queue', 0),
    maxPrefillTokens: int(o.maxPrefillTokens, 'max-prefill-tokens', 1),
    joinEvery: int(o.joinEvery, 'join-every', 1),
    ...(o.maxModelLen !== undefined ? { maxModelLen: int(o.maxModelLen, 'max-model-len', 2) } : {}),
    defaultMaxTokens: int(o.defaultMaxTokens, 'default-max-tokens', 1),
    maxN: int(o.maxN, 'max-n', 1),
    bodyLimit: int(o.bodyLimitMb, 'body-limit-mb', 1) * 2 ** 20,
    media: {
      allowRemote: !!o.allowRemoteMedia,
      fileRoots: o.mediaRoot,
      maxImagePixels: int(o.maxImagePixels, 'max-image-pixels', 1),
      maxMediaBytes: int(o.maxMediaMb, 'max-media-mb', 1) * 2 ** 20,
      maxMediaItems: int(o.maxMediaItems, 'max-media-items', 0),
      maxVideoPixels: int(o.maxVideoPixels, 'max-video-pixels', 1),
    },
  };
  const say = (s: string) => {
    if (!o.quiet) process.stderr.write(`${s}\n`);
  };
  say(`glmv serve: loading ${o.model ?? 'the embedded model'} …`);
  const chat = await ChatModel.load(o.model);
  if (chat.loadSummary) say(`glmv serve: ${chat.loadSummary}`);
  const server = await createServer({
    chat,
    ...opts,
    ...(o.servedModelName ? { modelName: o.servedModelName } : {}),
    reasoningField: field as ReasoningField,
    ...((o.apiKey ?? process.env.GLMV_API_KEY) ? { apiKey: o.apiKey ?? process.env.GLMV_API_KEY } : {}),
    ...(o.requestLog ? { requestLog: o.requestLog } : {}),
    ...(o.weightUpdates
      ? { weightUpdates: true, weightsBodyLimit: int(o.weightsBodyLimitMb, 'weights-body-limit-mb', 1) * 2 ** 20 }
      : {}),
  });
  const url = await server.listen(port, o.host);
  // The URL goes to stdout (scripts read it); everything else to stderr.
  process.stdout.write(`${url}/v1\n`);
  say(
    `glmv serve: model ${server.modelName} (${chat.style}) at ${url}/v1 — max batch ${opts.maxBatch}, queue ${opts.maxQueue}; Ctrl-C to stop`,
  );

  let last = { done: 0, tokens: 0, t: performance.now() };
  const status = setInterval(() => {
    const s = server.batcher.stats();
    const done = s.finished.stop + s.finished.length + s.finished.abort;
    const now = performance.now();
    if (done === last.done && s.running === 0 && s.queued === 0) return;
    const tps = ((s.generatedTokens - last.tokens) / (now - last.t)) * 1000;
    say(
      `glmv serve: ${done} requests done (${s.finished.abort} aborted), ${s.running} running, ${s.queued} queued, ${tps.toFixed(1)} tok/s`,
    );
    last = { done, tokens: s.generatedTokens, t: now };
  }, 10_000);
  status.unref();

  await new Promise<void>((resolve) => {
    let stopping = false;
    const stop = (sig: string) => {
      if (stopping) {
        say(`glmv serve: ${sig} again — aborting requests in flight`);
        void server.batcher.close();
        return;
      }
      stopping = true;
      const s = server.batcher.stats();
      say(
        `glmv serve: ${sig} — no new requests; waiting up to ${grace} s for ${s.running + s.queued} in flight (again to abort)`,
      );
      server
        .close(grace * 1000)
        .then(() => {
          clearInterval(status);
          say('glmv serve: stopped');
          resolve();
        })
        .catch((e: unknown) => {
          say(`glmv serve: error while stopping: ${(e as Error).message}`);
          resolve();
        });
    };
    process.on('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => stop('SIGTERM'));
  });
}
