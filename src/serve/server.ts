/**
 * `glmv serve`: an OpenAI-compatible HTTP server for our models (fastify).
 *
 * Routes, one module per group in ./routes/: `POST /v1/chat/completions` (stream and non-stream) and
 * `POST /v1/completions` (raw prompts; the glmv client's two-phase thinking budget uses it) in generation.ts,
 * `GET /v1/models` and `GET /v1/models/:id` in models.ts, `GET /health` and `GET /metrics` (Prometheus text) in
 * health.ts, the weight updates in weights.ts. This file wires them: body parsing, errors, authentication, shutdown.
 *
 * Responses carry `reasoning_content` and/or `reasoning` (vLLM's two spellings; `reasoningField`) next to
 * `content`, like vLLM/SGLang with a GLM reasoning parser. Streams are SSE `data:` chunks ending with
 * `data: [DONE]`. Errors are OpenAI-shaped JSON with a 4xx status for anything the client got wrong, 429 with
 * Retry-After when the queue is full, 503 while shutting down.
 *
 * Requests are decoded by the continuous batcher (./batcher.ts): a request joins the running batch at the next
 * decode step after its prefill, and a client that disconnects frees its row at the next step.
 */
import Fastify, { type FastifyInstance, type FastifyRequest } from 'fastify';
import type { ChatModel } from '../io/chat.js';
import { clientErrorHandler } from '../util/http.js';
import { MetricsWriter } from '../util/progress.js';
import { ContinuousBatcher } from './batcher.js';
import { ApiError } from './errors.js';
import { DEFAULT_MEDIA_POLICY, type MediaPolicy, resolveRoots } from './media.js';
import { ServerMetrics } from './metrics.js';
import { maxPromptCharsFor, RequestOffload } from './offload.js';
import { type ReasoningField, registerGenerationRoutes } from './routes/generation.js';
import { registerHealthRoutes } from './routes/health.js';
import { registerModelRoutes } from './routes/models.js';
import { registerWeightRoutes } from './routes/weights.js';
import { ChatService } from './service.js';

export type { ReasoningField };

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
   * Accept weight updates (`/update_weights_from_disk`, `/update_weights_from_tensor`; ./routes/weights.ts) from holders of
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

  registerHealthRoutes(app, { batcher, metrics, modelName, closing: () => closing });
  registerModelRoutes(app, { modelName, root: chat.dir, maxModelLen, created });
  if (o.weightUpdates && o.apiKey)
    registerWeightRoutes(app, {
      chat,
      batcher,
      apiKey: o.apiKey,
      bodyLimit: o.weightsBodyLimit ?? 2 * 2 ** 30,
      closing: () => closing,
      onUpdate: (version, tensors, ms) => log?.write({ event: 'weights', policy_version: version, tensors, ms }),
    });
  registerGenerationRoutes(app, { service, batcher, metrics, modelName, maxN, reasoningField, log });

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
