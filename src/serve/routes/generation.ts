/**
 * `POST /v1/chat/completions` and `POST /v1/completions` (raw prompts; the glmv client's two-phase thinking budget
 * uses it): prepare the prompt, submit it to the batcher, then answer once or stream SSE `data:` chunks ending with
 * `data: [DONE]`. Both share one path; they differ in the request parser and in the shape of a choice.
 *
 * Responses carry `reasoning_content` and/or `reasoning` (vLLM's two spellings; `ReasoningField`) next to
 * `content`, like vLLM/SGLang with a GLM reasoning parser.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { MetricsWriter } from '../../util/progress.js';
import type { ContinuousBatcher } from '../batcher.js';
import { ApiError } from '../errors.js';
import { completionLogprobs } from '../logprobs.js';
import type { ServerMetrics } from '../metrics.js';
import { type ChatParams, type CompletionParams, parseChatRequest, parseCompletionRequest } from '../protocol.js';
import type { ChatService, ChoiceDelta, ChoiceResult, PreparedPrompt } from '../service.js';
import { checkModel } from './models.js';

export type ReasoningField = 'reasoning_content' | 'reasoning' | 'both';

export interface GenerationRoutesOptions {
  service: ChatService;
  batcher: ContinuousBatcher;
  metrics: ServerMetrics;
  modelName: string;
  /** Most choices per request. */
  maxN: number;
  /** Which reasoning field(s) responses carry. */
  reasoningField: ReasoningField;
  /** One JSON line per finished request, or null. */
  log: MetricsWriter | null;
}

interface StreamOut {
  write(obj: unknown): void;
  end(): void;
}

export function registerGenerationRoutes(app: FastifyInstance, o: GenerationRoutesOptions): void {
  const { service, batcher, metrics, modelName, maxN, reasoningField, log } = o;

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
    checkModel(modelName, p.model);
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
}

/** The weights' version of a response: the one its choices share (always, with n = 1), else null. */
function policyVersionOf(results: readonly ChoiceResult[]): number | null {
  const v = results[0]?.policyVersion;
  return v !== undefined && results.every((r) => r.policyVersion === v) ? v : null;
}

function round(x: number): number {
  return Math.round(x * 10) / 10;
}
