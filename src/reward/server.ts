/**
 * The reward server: the router over HTTP for trainers that run elsewhere (Ray-based OpenRLHF or verl).
 *
 * - `POST /get_reward` — OpenRLHF remote reward model (`--reward.remote_url`, older `--remote_rm_url`):
 *   `{ query: string[], prompts: string[], labels: string[] }` → `{ rewards, scores, extra_logs }`. The response is
 *   `query` minus its `prompt` prefix; each label is a JSON-encoded Sample, a sample id from `--samples`, or a plain
 *   reference answer (OpenRLHF's usual `--data.label_key` column) scored with the route's verifier.
 * - `POST /verl/compute_score` — one verl `compute_score(data_source, solution_str, ground_truth, extra_info)`
 *   call → `{ score, acc, pred, status, reason, ... }`; `POST /verl/compute_score_batch` for batch reward managers.
 * - `POST /score`, `POST /score/batch` — the native API: `{ sample, response, meta? }` → RewardResult.
 * - `GET /stats` (per-domain statistics), `GET /health`.
 * Bodies are validated; a malformed request gets 400 with the field at fault, a bad item inside a batch gets an
 * error result in its slot (the batch still answers).
 * Every reward and score is a JSON float (`1.0`, see wire.ts); trailing end-of-turn tokens are stripped from every
 * response the same way; with a tokenizer, responses are counted in tokens for the overlong gate when the client
 * sends no count (OpenRLHF and verl never do).
 */
import { createHash } from 'node:crypto';
import Fastify, { type FastifyInstance, type FastifyReply } from 'fastify';
import { z } from 'zod';
import { DOMAINS, type Domain, type Sample, type VerifierType } from '../data/sample.js';
import { clientErrorHandler } from '../util/http.js';
import type { MetricsWriter } from '../util/progress.js';
import { formatZodError } from './judge.js';
import type { RewardRouter } from './router.js';
import type { ResponseMeta, RewardResult } from './types.js';
import { floatJson } from './wire.js';

export interface RewardServerOptions {
  /** Samples by id, for labels that carry only an id. */
  samples?: Map<string, Sample>;
  /** JSONL metrics: one line per request with its size, latency and reward mean. */
  metrics?: MetricsWriter;
  /** Largest request body in bytes (default 64 MiB: long rollouts in big batches). */
  bodyLimit?: number;
  logger?: boolean;
  /** Domain of samples built from a plain reference-answer label or a verl call without `extra_info.domain`. */
  defaultDomain?: Domain;
  /** Response length in tokens (the configured tokenizer), for the overlong gate when a client sends no count. */
  countTokens?: (text: string) => number;
}

const OpenRlhfBody = z.object({
  query: z.array(z.string()),
  prompts: z.array(z.string()).optional(),
  labels: z.array(z.unknown()).optional(),
});

const VerlItem = z.object({
  data_source: z.string(),
  solution_str: z.string(),
  ground_truth: z.unknown(),
  extra_info: z.record(z.string(), z.unknown()).nullish(),
});

const ScoreItem = z.object({
  sample: z.unknown(),
  response: z.string(),
  meta: z.object({ tokens: z.number().optional(), finishReason: z.string().optional() }).optional(),
});

/** Special tokens a decoded rollout may end with (the GLM stop tokens), with any padding after them. */
const TRAILING_SPECIALS = /(?:<\|endoftext\|>|<\|user\|>|<\|observation\|>)+\s*$/;

/**
 * A decoded response as the verifiers read it: trailing end-of-turn tokens (present when the client decodes with
 * special tokens kept, as OpenRLHF does) and the newline the template puts after `<|assistant|>` removed. Both
 * protocols clean responses with this one function.
 */
export function cleanResponse(r: string): string {
  return r.replace(TRAILING_SPECIALS, '').replace(/^\n/, '');
}

/** The response part of an OpenRLHF query: after the prompt, else after the last `<|assistant|>`. */
export function responseOf(query: string, prompt: string | undefined): string | null {
  let r: string | null = null;
  if (prompt !== undefined && query.startsWith(prompt)) r = query.slice(prompt.length);
  else {
    const i = query.lastIndexOf('<|assistant|>');
    if (i >= 0) r = query.slice(i + '<|assistant|>'.length);
  }
  return r === null ? null : cleanResponse(r);
}

/**
 * The verifier a sample of a domain gets when its label carries only a reference answer and no route names one
 * (a route's `verifier` always wins in the router).
 */
export const DOMAIN_VERIFIER: Readonly<Record<Domain, VerifierType>> = {
  vqa: 'vqa',
  stem: 'math',
  ocr: 'ocr',
  chart: 'chart',
  long_doc: 'long_doc',
  grounding: 'grounding',
  gui: 'gui',
  spatial: 'spatial',
  video: 'video',
  multi_image: 'vqa',
  text: 'general',
};

/** Source of samples built from plain OpenRLHF labels: route them with `match: { source: openrlhf }`. */
export const OPENRLHF_SOURCE = 'openrlhf';

function hashId(...parts: string[]): string {
  return createHash('sha256').update(parts.join('\u0000')).digest('hex').slice(0, 16);
}

/**
 * Resolves an OpenRLHF label: a JSON Sample (or Sample object), an id known to the server (`--samples`), or else
 * the reference answer itself — OpenRLHF's usual label is the bare answer column (`--data.label_key`). Such a
 * sample has source `openrlhf`, domain `defaultDomain` (default text), the domain's verifier (a matching route's
 * verifier wins) and the prompt as its question. An empty label (no label key set) has nothing to compare with.
 */
export function sampleFromLabel(
  label: unknown,
  samples?: Map<string, Sample>,
  opts: { defaultDomain?: Domain; prompt?: string } = {},
): Sample | string {
  if (label && typeof label === 'object' && !Array.isArray(label)) return label as Sample;
  if (typeof label === 'number') label = String(label);
  if (typeof label !== 'string')
    return `label: expected a reference answer, a JSON sample or a sample id, found ${Array.isArray(label) ? 'an array' : label === null ? 'null' : typeof label}`;
  const t = label.trim();
  if (t.startsWith('{') && t.endsWith('}')) {
    let parsed: unknown;
    try {
      parsed = JSON.parse(t);
    } catch {
      parsed = undefined; // a reference answer that looks like JSON (a set, a LaTeX group)
    }
    if (parsed && typeof parsed === 'object' && 'verifier' in parsed) return parsed as Sample;
  }
  const s = samples?.get(t);
  if (s) return s;
  if (t === '')
    return 'label: empty; OpenRLHF sends "" when no label column is set: pass --data.label_key with the reference answers (or JSON samples)';
  const domain = opts.defaultDomain ?? 'text';
  return {
    id: `${OPENRLHF_SOURCE}/${hashId(t, opts.prompt ?? '')}`,
    domain,
    source: OPENRLHF_SOURCE,
    split: 'train',
    images: [],
    question: opts.prompt ?? '',
    answer: t,
    verifier: { type: DOMAIN_VERIFIER[domain] },
  };
}

/**
 * verl's stock math data sources (its `default_compute_score` chain: gsm8k, MATH, DAPO, AIME, Numina,
 * hiyouga/geometry3k): without `extra_info.domain` they are stem problems graded by the math verifier.
 */
const VERL_MATH_SOURCE = /gsm8k|math|geometry3k|geo3k|aime|numina|dapo/i;

/**
 * Builds the Sample of a verl call. `extra_info.sample` (a full Sample) wins; else `ground_truth` as a JSON Sample;
 * else a sample from the pieces: source = data_source, answer = ground_truth, question / domain / verifier /
 * options / id from extra_info (the route matched by data_source supplies the verifier when extra_info has none;
 * without either, verl's math sources are stem/math and the rest take `defaultDomain` and its verifier).
 */
export function sampleFromVerl(item: z.infer<typeof VerlItem>, defaultDomain: Domain = 'text'): Sample | string {
  const extra = (item.extra_info ?? {}) as Record<string, unknown>;
  if (extra.sample && typeof extra.sample === 'object') return extra.sample as Sample;
  const gt = item.ground_truth;
  if (typeof gt === 'string' && gt.trim().startsWith('{"') && gt.includes('"verifier"')) {
    try {
      return JSON.parse(gt) as Sample;
    } catch {
      // Not a sample: a JSON-looking reference answer.
    }
  }
  const answer =
    typeof gt === 'string' ? gt : Array.isArray(gt) ? gt.map(String).join(', ') : gt === undefined ? '' : String(gt);
  const domain =
    typeof extra.domain === 'string' ? extra.domain : VERL_MATH_SOURCE.test(item.data_source) ? 'stem' : defaultDomain;
  if (!(DOMAINS as readonly string[]).includes(domain))
    return `extra_info.domain: expected one of ${DOMAINS.join(', ')}, found ${JSON.stringify(extra.domain)}`;
  const verifier =
    typeof extra.verifier === 'string' ? { type: extra.verifier } : (extra.verifier as Sample['verifier'] | undefined);
  return {
    id:
      typeof extra.id === 'string'
        ? extra.id
        : `${item.data_source}/${extra.index ?? hashId(answer, item.solution_str)}`,
    domain: domain as Sample['domain'],
    source: item.data_source,
    split: 'train',
    images: [],
    question: typeof extra.question === 'string' ? extra.question : '',
    answer,
    ...(Array.isArray(extra.options) ? { options: extra.options as string[] } : {}),
    verifier: verifier ?? { type: DOMAIN_VERIFIER[domain as Domain] },
  } as Sample;
}

function verlView(r: RewardResult) {
  return {
    score: r.reward,
    acc: r.correct,
    pred: r.answer ?? '',
    status: r.status,
    confident: r.confident,
    reason: r.reason,
    verifier: r.verifier,
    domain: r.domain,
    path: r.path,
  };
}

export function buildRewardServer(router: RewardRouter, opts: RewardServerOptions = {}): FastifyInstance {
  const bodyLimit = opts.bodyLimit ?? 64 * 1024 * 1024;
  // Every error, from a route, from fastify (invalid JSON, body too large) or from Node (malformed HTTP), has
  // one shape: `{ "error": "<message>" }`.
  const app = Fastify({
    logger: opts.logger ?? false,
    bodyLimit,
    clientErrorHandler: clientErrorHandler((_status, message) => ({ error: message })),
  });
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const { status, message } = requestError(err, bodyLimit);
    void reply.code(status).send({ error: message });
  });
  app.setNotFoundHandler((req, reply) => {
    void reply.code(404).send({ error: `no route ${req.method} ${req.url.slice(0, 200)}` });
  });
  const bad = (reply: { code: (n: number) => { send: (b: unknown) => unknown } }, where: string, e: z.ZodError) =>
    reply.code(400).send({ error: `${where}: ${formatZodError(e)}` });
  const record = (route: string, results: RewardResult[], t0: number) => {
    opts.metrics?.write({
      route,
      n: results.length,
      ms: performance.now() - t0,
      rewardMean: results.length ? results.reduce((s, r) => s + r.reward, 0) / results.length : 0,
      errors: results.filter((r) => r.status === 'error').length,
      unjudged: results.filter((r) => r.status === 'unjudged').length,
    });
  };
  const errorFor = (id: string, reason: string): RewardResult => router.errorResult({ id }, reason);
  // Rewards go out as JSON floats (wire.ts): Python clients read 1 as int.
  const json = (reply: FastifyReply, body: unknown) =>
    reply.type('application/json; charset=utf-8').send(floatJson(body));
  // The overlong gate counts tokens; OpenRLHF and verl send none, so the server counts with its tokenizer.
  const metaOf = (response: string, meta: ResponseMeta = {}): ResponseMeta =>
    meta.tokens === undefined && opts.countTokens ? { ...meta, tokens: opts.countTokens(response) } : meta;
  const scoreOne = (s: Sample, response: string, meta?: ResponseMeta) =>
    router.score(s, response, metaOf(response, meta));

  app.get('/health', async () => ({ ok: true }));
  app.get('/stats', async () => ({ domains: router.stats.snapshot() }));

  app.post('/get_reward', async (req, reply) => {
    const t0 = performance.now();
    const body = OpenRlhfBody.safeParse(req.body);
    if (!body.success) return bad(reply, 'get_reward body', body.error);
    const { query, prompts, labels } = body.data;
    if (prompts && prompts.length !== query.length)
      return reply.code(400).send({ error: `get_reward body: ${prompts.length} prompts for ${query.length} queries` });
    if (!labels || labels.length !== query.length)
      return reply.code(400).send({
        error: `get_reward body: "labels" must have one entry per query (${query.length}), found ${labels?.length ?? 0}`,
      });
    const results = await Promise.all(
      query.map(async (q, i) => {
        const s = sampleFromLabel(labels[i], opts.samples, { defaultDomain: opts.defaultDomain, prompt: prompts?.[i] });
        if (typeof s === 'string') return errorFor(`item ${i}`, s);
        const response = responseOf(q, prompts?.[i]);
        if (response === null)
          return errorFor(String(s.id), `query ${i}: cannot find the response (no prompt prefix, no <|assistant|>)`);
        return scoreOne(s, response);
      }),
    );
    record('get_reward', results, t0);
    return json(reply, {
      rewards: results.map((r) => r.reward),
      // OpenRLHF uses `scores` (0–1) for dynamic filtering.
      scores: results.map((r) => Math.min(1, Math.max(0, r.reward))),
      extra_logs: {
        correct: results.map((r) => (r.correct ? 1 : 0)),
        // A response whose answer could not be extracted (no box, empty box, two boxes) failed the format too.
        format_fail: results.map((r) => (r.path === 'gate:format' || r.path === 'gate:extract' ? 1 : 0)),
        unjudged: results.map((r) => (r.status === 'unjudged' ? 1 : 0)),
        error: results.map((r) => (r.status === 'error' ? 1 : 0)),
      },
    });
  });

  app.post('/verl/compute_score', async (req, reply) => {
    const t0 = performance.now();
    const item = VerlItem.safeParse(req.body);
    if (!item.success) return bad(reply, 'compute_score body', item.error);
    const s = sampleFromVerl(item.data, opts.defaultDomain);
    const r =
      typeof s === 'string'
        ? errorFor(item.data.data_source, s)
        : await scoreOne(s, cleanResponse(item.data.solution_str));
    record('verl', [r], t0);
    return json(reply, verlView(r));
  });

  app.post('/verl/compute_score_batch', async (req, reply) => {
    const t0 = performance.now();
    const body = z.object({ items: z.array(z.unknown()) }).safeParse(req.body);
    if (!body.success) return bad(reply, 'compute_score_batch body', body.error);
    const results = await Promise.all(
      body.data.items.map(async (raw, i) => {
        const item = VerlItem.safeParse(raw);
        if (!item.success) return errorFor(`item ${i}`, `items[${i}]: ${formatZodError(item.error)}`);
        const s = sampleFromVerl(item.data, opts.defaultDomain);
        return typeof s === 'string' ? errorFor(`item ${i}`, s) : scoreOne(s, cleanResponse(item.data.solution_str));
      }),
    );
    record('verl_batch', results, t0);
    return json(reply, { results: results.map(verlView) });
  });

  app.post('/score', async (req, reply) => {
    const t0 = performance.now();
    const item = ScoreItem.safeParse(req.body);
    if (!item.success) return bad(reply, 'score body', item.error);
    const r = await scoreOne(item.data.sample as Sample, item.data.response, item.data.meta);
    record('score', [r], t0);
    return json(reply, r);
  });

  app.post('/score/batch', async (req, reply) => {
    const t0 = performance.now();
    const body = z.object({ items: z.array(ScoreItem) }).safeParse(req.body);
    if (!body.success) return bad(reply, 'score/batch body', body.error);
    const results = await router.scoreBatch(
      body.data.items.map((it) => ({
        sample: it.sample as Sample,
        response: it.response,
        meta: metaOf(it.response, it.meta),
      })),
    );
    record('score_batch', results, t0);
    return json(reply, { results });
  });

  return app;
}

/** Status and message of an error fastify raised before or in a route (bad JSON, body too large, a bug). */
function requestError(err: Error & { statusCode?: number; code?: string }, bodyLimit: number) {
  switch (err.code) {
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return { status: 413, message: `request body: larger than the limit of ${bodyLimit} bytes` };
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return { status: 415, message: 'request body: expected Content-Type: application/json' };
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
      return { status: 400, message: 'request body: expected a JSON object, found an empty body' };
  }
  if (err instanceof SyntaxError || err.code === 'FST_ERR_CTP_INVALID_JSON_BODY')
    return { status: 400, message: `request body: not valid JSON (${err.message})` };
  const status = err.statusCode && err.statusCode >= 400 && err.statusCode < 600 ? err.statusCode : 500;
  return { status, message: status === 500 ? `internal error: ${err.message}` : err.message };
}
