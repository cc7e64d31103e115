/**
 * `glmv serve`: an OpenAI-compatible HTTP server for our models (fastify).
 *
 * Routes: `POST /v1/chat/completions` (stream and non-stream), `POST /v1/completions` (raw prompts; the glmv
 * client's two-phase thinking budget uses it), `GET /v1/models`, `GET /v1/models/:id`, `GET /health`,
 * `GET /metrics` (Prometheus text).
 *
 * Responses carry `reasoning_content` and/or `reasoning` (vLLM's two spellings; `reasoningField`) next to
 * `content`, like vLLM/SGLang with a GLM reasoning parser. Streams are SSE `data:` chunks ending with
 * `data: [DONE]`. Errors are OpenAI-shaped JSON with a 4xx status for anything the client got wrong, 429 with
 * Retry-After when the queue is full, 503 while shutting down.
 *
 * Requests are decoded by the continuous batcher (./batcher.ts): a request joins the running batch at the next
 * decode step after its prefill, and a client that disconnects frees its row at the next step.
 */
import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import type { ChatModel } from '../io/chat.js';
import { clientErrorHandler } from '../util/http.js';
import { MetricsWriter } from '../util/progress.js';
import { ContinuousBatcher } from './batcher.js';
import { ApiError } from './errors.js';
import { completionLogprobs } from './logprobs.js';
import { DEFAULT_MEDIA_POLICY, type MediaPolicy, resolveRoots } from './media.js';
import { ServerMetrics } from './metrics.js';
import { maxPromptCharsFor, RequestOffload } from './offload.js';
import { type ChatParams, type CompletionParams, parseChatRequest, parseCompletionRequest } from './protocol.js';
import { ChatService, type ChoiceDelta, type ChoiceResult, type PreparedPrompt } from './service.js';
import { registerWeightRoutes } from './weights.js';

export type ReasoningField = 'reasoning_content' | 'reasoning' | 'both';

export interface ServerOptions {
  chat: ChatModel;
  /** Name in `/v1/models` and responses; requests naming another model get 404. Default: the folder name. */
  modelName?: string;
  /** Rows decoded together. Default 16. */
  maxBatch?: number;
  /** Requests waiting beyond the batch; more get 429. Default 64. */
  maxQueue?: number;
  /** Prompt tokens prefilled per admission round. Default 8192. */
  maxPrefillTokens?: number;
  /** Decode steps between admission rounds while requests run (each join rebuilds the KV cache). Default 4. */
  joinEvery?: number;
  /** Prompt + completion tokens. Default: the model's max_position_embeddings. */
  maxModelLen?: number;
  /** Completion tokens when max_tokens is absent. Default 4096 (capped by the context left). */
  defaultMaxTokens?: number;
  /** Most choices per request. Default 8. */
  maxN?: number;
  /**
   * Most prompt characters (text parts, reasoning, raw prompts), checked before tokenizing. Default: the most
   * characters `maxModelLen` tokens can hold (`maxPromptCharsFor`), so only prompts that cannot fit are refused.
   */
  maxPromptChars?: number;
  /** Most request body bytes. Default 64 MiB. */
  bodyLimit?: number;
  media?: Partial<MediaPolicy>;
  /** Which reasoning field(s) responses carry. Default both. */
  reasoningField?: ReasoningField;
  /** Require `Authorization: Bearer <key>` on /v1 routes. */
  apiKey?: string;
  /** Append one JSON line per finished request here. */
  requestLog?: string;
  /** Add Node process metrics to /metrics. */
  processMetrics?: boolean;
  /**
   * Accept weight updates (`/update_weights_from_disk`, `/update_weights_from_tensor`; ./weights.ts) from holders of
   * the API key, for RL trainers that keep rollouts on-policy. Needs `apiKey`.
   */
  weightUpdates?: boolean;
  /** Largest safetensors body of `/update_weights_from_tensor`. Default 2 GiB. */
  weightsBodyLimit?: number;
}

export interface GlmvServer {
  app: FastifyInstance;
  batcher: ContinuousBatcher;
  service: ChatService;
  metrics: ServerMetrics;
  modelName: string;
  /** Starts listening; resolves to the base URL (`http://host:port`). */
  listen(port: number, host: string): Promise<string>;
  /**
   * Stops accepting requests (503 for new ones), lets those in flight finish for up to `graceMs`, then aborts what is
   * left and closes.
   */
  close(graceMs?: number): Promise<void>;
}

interface StreamOut {
  write(obj: unknown): void;
  end(): void;
}

export async function createServer(o: ServerOptions): Promise<GlmvServer> {
  const chat = o.chat;
  const cfg = chat.model.config;
  const modelName = o.modelName ?? (chat.dir.split(/[\\/]/).filter(Boolean).pop() || 'glmv');
  const maxModelLen = o.maxModelLen ?? cfg.text.maxPositionEmbeddings;
  if (!Number.isInteger(maxModelLen) || maxModelLen < 2)
    throw new Error(`serve maxModelLen: expected an integer >= 2, found ${maxModelLen}`);
  const media: MediaPolicy = { ...DEFAULT_MEDIA_POLICY, ...(o.media ?? {}) };
  media.fileRoots = await resolveRoots(media.fileRoots);
  const batcher = new ContinuousBatcher(chat.model, {
    maxBatch: o.maxBatch ?? 16,
    maxQueue: o.maxQueue ?? 64,
    maxPrefillTokens: o.maxPrefillTokens ?? 8192,
    joinEvery: o.joinEvery ?? 4,
  });
  const maxN = o.maxN ?? 8;
  if (o.weightUpdates && !o.apiKey)
    throw new Error(
      'serve weightUpdates: needs an API key (--api-key), or anyone reaching the port could replace the model',
    );
  // Big bodies are parsed and prompts tokenized in a worker: one client's 60 MB request must not stall /health.
  const offload = new RequestOffload({
    dir: chat.dir,
    tokenizer: chat.tokenizer,
    maxPromptChars: o.maxPromptChars ?? maxPromptCharsFor(chat.tokenizer, maxModelLen),
  });
  void offload.warmup().catch(() => {
    // A worker that cannot start shows up as an error on the first request that needs it.
  });
  const service = new ChatService(chat, batcher, {
    offload,
    modelName,
    maxModelLen,
    defaultMaxTokens: o.defaultMaxTokens ?? 4096,
    maxN,
    media,
  });
  const metrics = new ServerMetrics(batcher, { processMetrics: o.processMetrics });
  const log = o.requestLog ? new MetricsWriter(o.requestLog) : null;
  const reasoningField = o.reasoningField ?? 'both';
  const created = Math.floor(Date.now() / 1000);
  let closing = false;

  // Connections are closed outright at the end of `close` (after the drain): an idle keep-alive socket must not
  // hold shutdown up for seconds.
  const app = Fastify({
    bodyLimit: o.bodyLimit ?? 64 * 2 ** 20,
    logger: false,
    return503OnClosing: true,
    forceCloseConnections: true,
    // Malformed HTTP and oversized headers never reach a route: answer them in the OpenAI shape too.
    clientErrorHandler: clientErrorHandler((status, message) =>
      new ApiError(status, message, null, status === 431 ? 'headers_too_large' : 'invalid_request').body(),
    ),
  });

  // JSON only: a form or text body is a 415, not a confusing type error.
  app.removeContentTypeParser('text/plain');
  app.removeContentTypeParser('application/json');
  const bodyLimit = o.bodyLimit ?? 64 * 2 ** 20;
  app.addContentTypeParser('application/json', async (req: FastifyRequest, payload: NodeJS.ReadableStream) => {
    const declared = req.headers['content-length'] !== undefined ? Number(req.headers['content-length']) : undefined;
    const body = await offload.readBody(payload, Number.isFinite(declared) ? declared : undefined, bodyLimit);
    return offload.parseJson(body);
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const e = toApiError(err, o.bodyLimit ?? 64 * 2 ** 20);
    if (e.status === 413) metrics.rejected.inc({ reason: 'too_large' });
    else if (e.status < 500) metrics.rejected.inc({ reason: 'invalid' });
    void reply.status(e.status).headers(e.headers).send(e.body());
  });
  app.setNotFoundHandler((req, reply) => {
    const e = new ApiError(404, `no route ${req.method} ${req.url}`, null, 'route_not_found');
    void reply.status(404).send(e.body());
  });
  app.addHook('onResponse', async (req, reply) => {
    metrics.httpRequests.inc({
      route: req.routeOptions.url ?? 'unknown',
      method: req.method,
      status: String(reply.statusCode),
    });
  });
  app.addHook('onRequest', async (req) => {
    if (req.url.startsWith('/v1/')) {
      if (closing) {
        metrics.rejected.inc({ reason: 'shutting_down' });
        throw new ApiError(503, 'the server is shutting down', null, 'shutting_down');
      }
      if (o.apiKey && req.headers.authorization !== `Bearer ${o.apiKey}`)
        throw new ApiError(
          401,
          'missing or incorrect API key (send Authorization: Bearer <key>)',
          null,
          'invalid_api_key',
        );
    }
  });

  const checkModel = (m: string | null) => {
    if (m !== null && m !== modelName)
      throw new ApiError(
        404,
        `The model \`${m}\` does not exist; this server serves \`${modelName}\``,
        'model',
        'model_not_found',
      );
  };
  /** Requests between the queue check and their submission (decoding media, rendering the template). */
  let preparing = 0;
  const busy = () => {
    // Requests still preparing count as queued: a burst must not all decode their images only to get 429s.
    const s0 = batcher.stats();
    if (s0.queued + preparing >= batcher.maxQueue + Math.max(0, batcher.maxBatch - s0.running)) {
      metrics.rejected.inc({ reason: 'queue_full' });
      const s = batcher.retryAfterSeconds();
      throw new ApiError(
        429,
        `The server is busy: ${batcher.stats().queued} requests are waiting. Retry after ${s} s.`,
        null,
        'queue_full',
        'rate_limit_error',
        {
          'retry-after': String(s),
        },
      );
    }
  };

  app.get('/health', async (_req, reply) => {
    const s = batcher.stats();
    return reply.status(closing ? 503 : 200).send({
      status: closing ? 'shutting_down' : 'ok',
      model: modelName,
      running: s.running,
      queued: s.queued,
      policy_version: batcher.policyVersion,
    });
  });
  app.get('/metrics', async (_req, reply) =>
    reply.header('content-type', metrics.contentType).send(await metrics.text()),
  );
  const modelCard = () => ({
    id: modelName,
    object: 'model',
    created,
    owned_by: 'glmv',
    root: chat.dir,
    max_model_len: maxModelLen,
  });
  app.get('/v1/models', async () => ({ object: 'list', data: [modelCard()] }));
  if (o.weightUpdates && o.apiKey)
    registerWeightRoutes(app, {
      chat,
      batcher,
      apiKey: o.apiKey,
      bodyLimit: o.weightsBodyLimit ?? 2 * 2 ** 30,
      closing: () => closing,
      onUpdate: (version, tensors, ms) => log?.write({ event: 'weights', policy_version: version, tensors, ms }),
    });
  app.get('/v1/models/:id', async (req: FastifyRequest<{ Params: { id: string } }>) => {
    checkModel(req.params.id);
    return modelCard();
  });

  /** Aborts generation when the client goes away before the response is complete. */
  const disconnectSignal = (reply: FastifyReply) => {
    const ac = new AbortController();
    reply.raw.on('close', () => {
      if (!reply.raw.writableFinished) ac.abort();
    });
    return ac;
  };

  const record = (rec: Record<string, unknown>, results: ChoiceResult[], t0: number, prepMs: number) => {
    for (const r of results) {
      metrics.finished.inc({ finish_reason: r.finishReason, endpoint: String(rec.endpoint) });
      metrics.generationTokens.inc(r.completionTokens);
      if (r.job.ttftMs !== null) metrics.ttft.observe((prepMs + r.job.ttftMs) / 1000);
      metrics.queueTime.observe(r.job.queueMs / 1000);
      if (r.completionTokens > 1 && r.job.ttftMs !== null)
        metrics.timePerOutputToken.observe((r.job.totalMs - r.job.ttftMs) / 1000 / (r.completionTokens - 1));
    }
    const total = performance.now() - t0;
    metrics.e2e.observe(total / 1000);
    log?.write({
      ...rec,
      completion_tokens: results.reduce((a, r) => a + r.completionTokens, 0),
      finish_reasons: results.map((r) => r.finishReason),
      ttft_ms: results[0]?.job.ttftMs == null ? null : round(prepMs + results[0].job.ttftMs),
      queue_ms: round(results[0]?.job.queueMs ?? 0),
      total_ms: round(total),
    });
  };

  const reasoningFields = (v: string | null) =>
    reasoningField === 'both' ? { reasoning_content: v, reasoning: v } : { [reasoningField]: v };

  const usage = (prompt: number, results: ChoiceResult[]) => {
    const completion = results.reduce((a, r) => a + r.completionTokens, 0);
    return {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
      completion_tokens_details: { reasoning_tokens: results.reduce((a, r) => a + r.reasoningTokens, 0) },
    };
  };

  /** Opens an SSE response (hijacked from fastify, which does not stream). */
  const openStream = (reply: FastifyReply): StreamOut => {
    reply.hijack();
    reply.raw.writeHead(200, {
      'content-type': 'text/event-stream; charset=utf-8',
      'cache-control': 'no-cache',
      connection: 'keep-alive',
      'x-accel-buffering': 'no',
    });
    return {
      write: (obj) => {
        if (!reply.raw.destroyed) reply.raw.write(`data: ${JSON.stringify(obj)}\n\n`);
      },
      end: () => {
        if (!reply.raw.destroyed) reply.raw.end('data: [DONE]\n\n');
        metrics.httpRequests.inc({ route: reply.request.routeOptions.url ?? 'unknown', method: 'POST', status: '200' });
      },
    };
  };

  /** Shared by both endpoints: prepare, submit, then stream or answer once. */
  const serve = async (
    reply: FastifyReply,
    endpoint: 'chat' | 'completions',
    p: ChatParams | CompletionParams,
    prepare: (signal: AbortSignal) => Promise<PreparedPrompt>,
  ) => {
    const t0 = performance.now();
    checkModel(p.model);
    busy();
    const ac = disconnectSignal(reply);
    preparing++;
    let prepared: PreparedPrompt;
    try {
      prepared = await prepare(ac.signal);
    } finally {
      preparing--;
    }
    const prepMs = performance.now() - t0;
    metrics.promptTokens.inc(prepared.promptTokens);
    const id = `${endpoint === 'chat' ? 'chatcmpl' : 'cmpl'}-${randomUUID().replace(/-/g, '')}`;
    const now = Math.floor(Date.now() / 1000);
    const chatP = endpoint === 'chat' ? (p as ChatParams) : null;
    const rec = {
      id,
      endpoint,
      stream: p.stream,
      n: p.n,
      prompt_tokens: prepared.promptTokens,
      prep_ms: round(prepMs),
    };
    const budget = chatP?.thinkingBudget ?? null;
    // vLLM's per-choice extras (stop_reason, token_ids when asked) and ours (the weights' version of the choice).
    const extras = (r: ChoiceResult) => ({
      stop_reason: r.stopReason,
      ...(p.returnTokenIds ? { token_ids: r.tokenIds } : {}),
      policy_version: r.policyVersion,
    });
    const promptIds = p.returnTokenIds ? { prompt_token_ids: [...prepared.input.inputIds] } : {};
    const logprobsOf = (entries: ChoiceDelta['logprobs'], offset = 0) =>
      !p.logprobs ? null : chatP ? { content: entries } : completionLogprobs(entries, offset);

    if (!p.stream) {
      const results = await service.start(prepared, { ...p, thinkingBudget: budget }, ac.signal).done;
      record(rec, results, t0, prepMs);
      const base = {
        id,
        created: now,
        model: modelName,
        system_fingerprint: null,
        policy_version: policyVersionOf(results),
      };
      if (chatP)
        return reply.send({
          ...base,
          object: 'chat.completion',
          choices: results.map((r) => ({
            index: r.index,
            message: {
              role: 'assistant',
              content: r.content,
              ...reasoningFields(r.thought && chatP.includeReasoning ? r.reasoning : null),
              tool_calls: r.toolCalls,
            },
            logprobs: logprobsOf(r.logprobs),
            finish_reason: r.finishReason,
            ...extras(r),
          })),
          usage: usage(prepared.promptTokens, results),
          ...promptIds,
        });
      return reply.send({
        ...base,
        object: 'text_completion',
        choices: results.map((r) => ({
          index: r.index,
          text: r.text,
          logprobs: logprobsOf(r.logprobs),
          finish_reason: r.finishReason,
          ...extras(r),
          ...promptIds,
        })),
        usage: usage(prepared.promptTokens, results),
      });
    }

    // Streaming: submit first (a full queue is still a plain 429), then open the SSE response.
    const chunk = (choices: unknown[], extra: Record<string, unknown> = {}) => ({
      id,
      object: chatP ? 'chat.completion.chunk' : 'text_completion',
      created: now,
      model: modelName,
      choices,
      ...extra,
    });
    let out: StreamOut | null = null;
    const early: Array<[number, ChoiceDelta]> = [];
    // Completions: text offsets of the logprobs, and prompt_token_ids on each choice's first chunk (as vLLM).
    const offsets = new Array<number>(p.n).fill(0);
    const started = new Array<boolean>(p.n).fill(false);
    const ids = (tokenIds: number[]) => (p.returnTokenIds ? { token_ids: tokenIds } : {});
    const send = (i: number, d: ChoiceDelta) => {
      if (!out) {
        early.push([i, d]);
        return;
      }
      const idsToSend = p.returnTokenIds && d.tokenIds.length > 0;
      if (chatP) {
        const delta: Record<string, unknown> = {};
        if (d.reasoning && chatP.includeReasoning) Object.assign(delta, reasoningFields(d.reasoning));
        if (d.content) delta.content = d.content;
        if (Object.keys(delta).length === 0 && !d.logprobs.length && !idsToSend) return;
        out.write(
          chunk([{ index: i, delta, logprobs: logprobsOf(d.logprobs), finish_reason: null, ...ids(d.tokenIds) }]),
        );
      } else if (d.content || d.logprobs.length || idsToSend) {
        const first = !started[i] ? promptIds : {};
        started[i] = true;
        const lp = logprobsOf(d.logprobs, offsets[i]);
        offsets[i]! += d.logprobs.reduce((a, e) => a + e.token.length, 0);
        out.write(
          chunk([{ index: i, text: d.content, logprobs: lp, finish_reason: null, ...ids(d.tokenIds), ...first }]),
        );
      }
    };
    const run = service.start(prepared, { ...p, thinkingBudget: budget }, ac.signal, send);
    out = openStream(reply);
    if (chatP)
      for (let i = 0; i < p.n; i++)
        out.write(
          chunk([{ index: i, delta: { role: 'assistant', content: '' }, logprobs: null, finish_reason: null }], {
            ...(i === 0 ? promptIds : {}),
          }),
        );
    for (const [i, d] of early.splice(0)) send(i, d);
    try {
      const results = await run.done;
      record(rec, results, t0, prepMs);
      for (const r of results) {
        const fin = { logprobs: null, finish_reason: r.finishReason, ...extras(r), ...ids(r.unsentTokenIds) };
        const first = !chatP && !started[r.index] ? promptIds : {};
        // Tool calls go out whole with the last chunk (their text was held back while streaming).
        const delta = r.toolCalls.length ? { tool_calls: r.toolCalls.map((c, index) => ({ index, ...c })) } : {};
        out.write(chunk([chatP ? { index: r.index, delta, ...fin } : { index: r.index, text: '', ...fin, ...first }]));
      }
      if (p.includeUsage) out.write(chunk([], { usage: usage(prepared.promptTokens, results) }));
    } catch (e) {
      const err = e instanceof ApiError ? e : new ApiError(500, (e as Error).message, null, 'generation_failed');
      out.write(err.body());
    }
    out.end();
    return reply;
  };

  app.post('/v1/chat/completions', async (req, reply) => {
    const p = parseChatRequest(req.body, { maxN });
    return serve(reply, 'chat', p, (signal) => service.prepareChat(p, signal));
  });
  app.post('/v1/completions', async (req, reply) => {
    const p = parseCompletionRequest(req.body, { maxN });
    return serve(reply, 'completions', p, async () => service.prepareCompletion(p));
  });

  await app.ready();

  return {
    app,
    batcher,
    service,
    metrics,
    modelName,
    async listen(port: number, host: string) {
      await app.listen({ port, host });
      const addr = app.server.address();
      const actual = typeof addr === 'object' && addr ? addr.port : port;
      const h = host.includes(':') ? `[${host}]` : host;
      return `http://${h === '0.0.0.0' ? '127.0.0.1' : h}:${actual}`;
    },
    async close(graceMs = 30_000) {
      closing = true;
      const drained = (async () => {
        while (batcher.stats().running + batcher.stats().queued > 0) await new Promise((r) => setTimeout(r, 50));
      })();
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([drained, new Promise((r) => (timer = setTimeout(r, graceMs)))]);
      clearTimeout(timer);
      await batcher.close();
      await offload.close();
      await app.close();
    },
  };
}

/** The weights' version of a response: the one its choices share (always, with n = 1), else null. */
function policyVersionOf(results: readonly ChoiceResult[]): number | null {
  const v = results[0]?.policyVersion;
  return v !== undefined && results.every((r) => r.policyVersion === v) ? v : null;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}

/** Any error thrown in a route or by fastify itself → an OpenAI-shaped ApiError with the right status. */
function toApiError(err: Error & { statusCode?: number; code?: string }, bodyLimit: number): ApiError {
  if (err instanceof ApiError) return err;
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new ApiError(413, `request body: larger than the limit of ${bodyLimit} bytes`, null, 'body_too_large');
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new ApiError(415, 'request body: expected Content-Type: application/json', null, 'unsupported_media_type');
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return new ApiError(400, 'request body: expected a JSON object, found an empty body', null, 'invalid_json');
    case 'FST_ERR_CTP_INVALID_JSON_BODY':
      return new ApiError(400, `request body: not valid JSON (${err.message})`, null, 'invalid_json');
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_CONTENT_LENGTH')
    return new ApiError(400, `request body: not valid JSON (${err.message})`, null, 'invalid_json');
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
  return new ApiError(
    status,
    status === 500 ? `internal error: ${err.message}` : err.message,
    null,
    status === 500 ? 'internal_error' : null,
  );
}
