/**
 * Weight updates on a running `glmv serve`, so RL rollouts through the server stay on-policy: after each optimizer
 * step the trainer sends the new weights, and every completion reports the `policy_version` it was sampled with.
 *
 * Routes (SGLang's spellings; vLLM has no equivalent in its OpenAI server, see docs/serve.md):
 * - `POST /update_weights_from_disk` `{"model_path": DIR, "policy_version"?: N}`: the weights of a checkpoint folder
 *   (config.json + safetensors, the layout `glmv` and HF save) with the served model's architecture.
 * - `POST /update_weights_from_tensor?policy_version=N`: a safetensors file as the body
 *   (`Content-Type: application/octet-stream`), any subset of the model's parameters by their HF names.
 * - `GET /get_policy_version`: `{"policy_version": N}`.
 *
 * Both updates wait for the rows being decoded to finish (new requests queue meanwhile), replace the weights, set
 * the version (default: one more) and resume, so a response never mixes two versions. They exist only when the
 * server was started with weight updates on, which needs an API key: whoever can reach the port must not be able
 * to replace the model.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { loadSafetensors, type Tensor } from '../../engine/index.js';
import type { ChatModel } from '../../io/chat.js';
import { Glm4vForConditionalGeneration } from '../../model/glm4v.js';
import type { ContinuousBatcher } from '../batcher.js';
import { ApiError, badParam } from '../errors.js';

export interface WeightRoutesOptions {
  chat: ChatModel;
  batcher: ContinuousBatcher;
  apiKey: string;
  /** Largest safetensors body accepted by `/update_weights_from_tensor`. */
  bodyLimit: number;
  /** True while the server shuts down (updates get 503). */
  closing: () => boolean;
  /** Called after each successful update (metrics, logs). */
  onUpdate?: (version: number, loaded: number, ms: number) => void;
}

function versionParam(v: unknown, where: string): number | undefined {
  if (v === undefined || v === null || v === '') return undefined;
  const n = typeof v === 'string' && /^\d+$/.test(v) ? Number(v) : v;
  if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < 0) throw badParam(where, 'a non-negative integer', v);
  return n;
}

/**
 * Copies named tensors into the served model: names must be the model's parameters (a subset is fine), shapes
 * must match; nothing is copied when any name or shape is wrong.
 */
export function loadNamedTensors(
  chat: ChatModel,
  state: Map<string, Tensor>,
  what: string,
  opts: { full?: boolean } = {},
): number {
  const own = new Set(chat.model.namedParameters().map(([n]) => n));
  const unknown = [...state.keys()].filter((n) => !own.has(n));
  const missing = opts.full ? [...own].filter((n) => !state.has(n)) : [];
  if (missing.length)
    throw new ApiError(
      400,
      `${what}: ${missing.length} parameter(s) of the served model are missing (another architecture?), e.g. ${missing.slice(0, 5).join(', ')}`,
      null,
      'invalid_weights',
    );
  if (unknown.length)
    throw new ApiError(
      400,
      `${what}: ${unknown.length} tensor(s) are not parameters of the served model, e.g. ${unknown.slice(0, 5).join(', ')}`,
      null,
      'invalid_weights',
    );
  if (state.size === 0) throw new ApiError(400, `${what}: no tensors`, null, 'invalid_weights');
  try {
    return chat.model.loadStateDict(state, { strict: false }).loaded;
  } catch (e) {
    throw new ApiError(400, `${what}: ${(e as Error).message}`, null, 'invalid_weights');
  }
}

export function registerWeightRoutes(app: FastifyInstance, o: WeightRoutesOptions): void {
  const guard = (authorization: string | undefined) => {
    if (o.closing()) throw new ApiError(503, 'the server is shutting down', null, 'shutting_down');
    if (authorization !== `Bearer ${o.apiKey}`)
      throw new ApiError(
        401,
        'missing or incorrect API key (send Authorization: Bearer <key>)',
        null,
        'invalid_api_key',
      );
  };
  const update = async (load: () => number, version: number | undefined) => {
    const t0 = performance.now();
    let loaded = 0;
    const v = await o.batcher.updateWeights(() => {
      loaded = load();
    }, version);
    const ms = performance.now() - t0;
    o.onUpdate?.(v, loaded, ms);
    return { success: true, message: `loaded ${loaded} tensors`, policy_version: v, tensors: loaded };
  };

  app.get('/get_policy_version', async (req) => {
    guard(req.headers.authorization);
    return { policy_version: o.batcher.policyVersion };
  });

  app.post('/update_weights_from_disk', async (req) => {
    guard(req.headers.authorization);
    const b = req.body as Record<string, unknown> | null;
    if (!b || typeof b !== 'object' || Array.isArray(b))
      throw new ApiError(400, 'request body: expected a JSON object with model_path', null, 'invalid_body');
    if (typeof b.model_path !== 'string' || !b.model_path) throw badParam('model_path', 'a folder path', b.model_path);
    const dir = b.model_path;
    const version = versionParam(b.policy_version, 'policy_version');
    // Read (and check) the checkpoint before pausing the batch: decoding goes on while the files load.
    let state: Map<string, Tensor>;
    try {
      state = Glm4vForConditionalGeneration.fromPretrained(dir).model.stateDict();
    } catch (e) {
      throw new ApiError(400, `model_path ${dir}: ${(e as Error).message}`, 'model_path', 'invalid_weights');
    }
    try {
      return await update(() => loadNamedTensors(o.chat, state, `model_path ${dir}`, { full: true }), version);
    } finally {
      for (const t of state.values()) t.dispose();
    }
  });

  // Raw safetensors bodies only here, in a scope of their own: the OpenAI routes keep answering 415 to them.
  app.register(async (scope) => {
    scope.addContentTypeParser(
      'application/octet-stream',
      { parseAs: 'buffer', bodyLimit: o.bodyLimit },
      (_req, body, done) => done(null, body),
    );
    scope.post('/update_weights_from_tensor', async (req) => {
      guard(req.headers.authorization);
      const version = versionParam((req.query as Record<string, unknown>).policy_version, 'policy_version');
      if (!Buffer.isBuffer(req.body))
        throw new ApiError(
          415,
          'request body: expected a safetensors file with Content-Type: application/octet-stream',
          null,
          'unsupported_media_type',
        );
      // The safetensors reader validates the header and reads from a file; the body goes to a private temp file.
      const dir = mkdtempSync(join(tmpdir(), 'glmv-weights-'));
      let state: Map<string, Tensor>;
      try {
        const path = join(dir, 'update.safetensors');
        writeFileSync(path, req.body);
        try {
          state = loadSafetensors(path);
        } catch (e) {
          throw new ApiError(400, `request body: ${(e as Error).message}`, null, 'invalid_weights');
        }
      } finally {
        rmSync(dir, { recursive: true, force: true });
      }
      try {
        return await update(() => loadNamedTensors(o.chat, state, 'request body'), version);
      } finally {
        for (const t of state.values()) t.dispose();
      }
    });
  });
}
