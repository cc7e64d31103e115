/**
 * Rollouts from any OpenAI-compatible server (vLLM / SGLang serving a GLM model, or `glmv serve`) through the glmv
 * client (src/serve/client.ts) — the scale-out path. Each response is one request (distinct seeds; the server's
 * prefix cache shares the prompt), at most `concurrency` in flight. With force answering the client's two-phase
 * thinking-budget call is used: phase 1 stops at `maxThinkingTokens`; if `</think>` has not appeared, phase 2
 * continues the same turn after `</think><answer>` (4.1V) or `</think>\n` (4.5V).
 *
 * Token ids: the text is re-encoded with the trained policy's tokenizer (`encodeText`), in three pieces when an
 * answer was forced — before the insertion, the insertion itself (loss mask 0: the policy did not sample it), and
 * after — so the inserted tokens are excluded exactly. Re-encoding can differ from the server's sampled ids at rare
 * merge boundaries; the trainer recomputes π_old itself, so the update stays consistent. Server log-probs are not
 * returned (`logprobs: null`).
 *
 * On-policy mode (`onPolicy`, for `glmv serve --weight-updates`): before each step's rollouts the trainer's weights
 * go to the server (`syncPolicy`, `POST /update_weights_from_tensor`, tagged with the number of updates so far);
 * each response is one request with the thinking budget applied by the server in the same pass
 * (`thinking_budget`), `return_token_ids` and log-probs, and is rebuilt into a rollout from the sampled ids exactly
 * as local rollouts are (`glmRollout`). A response whose `policy_version` is not the synced one is an error. With
 * the same seed, the rollouts are the local engine's (each response seeded by `rolloutRequestSeed`).
 *
 * Failures: the SDK retries connection errors / 429 / 5xx (`maxRetries`), then this engine retries the whole request
 * `retries` times with backoff. A request that still fails becomes a rollout with finishReason `error` (excluded from
 * training and pass rates); when more than `maxErrorShare` of a call's requests fail, the call throws with the first
 * error, because the server, not a prompt, is the problem.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { extname, isAbsolute, join } from 'node:path';
import type { Sample } from '../../data/sample.js';
import { promptText } from '../../data/sft.js';
import { saveSafetensors } from '../../engine/index.js';
import { THINK_CLOSE } from '../../io/answer/tags.js';
import { forcedSuffix, thinkingTokensOf } from '../../io/force-answer.js';
import type { GenerationOutput } from '../../io/generate.js';
import type { ChatMessageParam, ChatResult, GlmvClient } from '../../serve/client.js';
import { type GlmPolicy, glmRollout, glmRolloutSetup } from '../glm.js';
import type { Policy, Rollout, RolloutEngine, RolloutPrompt, SamplingParams } from '../types.js';
import { rolloutRequestSeed, validateSampling } from './sampling.js';

export interface ServerEngineOptions {
  client: GlmvClient;
  /** Requests in flight. Default 16. */
  concurrency?: number;
  /** Extra attempts per request after the SDK's own retries. Default 1. */
  retries?: number;
  /** Base backoff between attempts in ms (doubled each time). Default 500. */
  backoffMs?: number;
  continuation?: 'chat' | 'completions';
  /** Sends `enable_thinking` (GLM-4.5V); absent: the server default. */
  thinking?: boolean;
  /** Policy tokenizer for response ids; without it rollouts carry no ids (fine for pass@k, not for training). */
  encodeText?: (text: string) => number[];
  /** Throw when more than this share of a call's requests fail. Default 0.5. */
  maxErrorShare?: number;
  /**
   * Rollouts from `glmv serve --weight-updates` that stay on-policy: the trainer's GLM policy (whose weights are
   * sent, and whose tokenizer rebuilds the rollouts) and the server's API key.
   */
  onPolicy?: { policy: GlmPolicy; apiKey: string };
}

const MIME: Record<string, string> = {
  '.png': 'image/png',
  '.jpg': 'image/jpeg',
  '.jpeg': 'image/jpeg',
  '.webp': 'image/webp',
  '.gif': 'image/gif',
  '.bmp': 'image/bmp',
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mov': 'video/quicktime',
  '.mkv': 'video/x-matroska',
};

function mediaUrl(path: string, what: string, sampleId: string): string {
  if (/^(https?:|data:)/i.test(path)) return path;
  const mime = MIME[extname(path).toLowerCase()];
  if (!mime)
    throw new Error(
      `sample ${sampleId}: ${what} ${path} has an unknown extension; expected one of ${Object.keys(MIME).join(' ')}`,
    );
  let data: Buffer;
  try {
    data = readFileSync(path);
  } catch (e) {
    throw new Error(
      `sample ${sampleId}: cannot read ${what} ${path}${isAbsolute(path) ? '' : ' (relative paths resolve against the working folder)'}: ${(e as Error).message}`,
    );
  }
  return `data:${mime};base64,${data.toString('base64')}`;
}

/** OpenAI chat messages for a sample: images (and a video file) as data URLs, then the question text. */
export function sampleMessages(sample: Sample): ChatMessageParam[] {
  const parts: Array<Record<string, unknown>> = sample.images.map((p) => ({
    type: 'image_url',
    image_url: { url: mediaUrl(p, 'image', sample.id) },
  }));
  if (sample.video) {
    if (!sample.video.path)
      throw new Error(
        `sample ${sample.id}: a video given as frames cannot be sent to an OpenAI-compatible server; provide video.path (an mp4 file)`,
      );
    parts.push({ type: 'video_url', video_url: { url: mediaUrl(sample.video.path, 'video', sample.id) } });
  }
  parts.push({ type: 'text', text: promptText(sample) });
  return [{ role: 'user', content: parts } as unknown as ChatMessageParam];
}

export class ServerRolloutEngine implements RolloutEngine {
  readonly name = 'server';
  private readonly o: Required<Omit<ServerEngineOptions, 'thinking' | 'encodeText' | 'onPolicy'>> &
    Pick<ServerEngineOptions, 'thinking' | 'encodeText' | 'onPolicy'>;
  /** The version last sent by `syncPolicy` (on-policy mode); responses must report it. */
  private version: number | null = null;

  constructor(opts: ServerEngineOptions) {
    this.o = {
      concurrency: 16,
      retries: 1,
      backoffMs: 500,
      continuation: 'chat',
      maxErrorShare: 0.5,
      ...opts,
    };
    if (!Number.isInteger(this.o.concurrency) || this.o.concurrency < 1)
      throw new Error(`server engine concurrency: expected a positive integer, got ${this.o.concurrency}`);
    if (!Number.isInteger(this.o.retries) || this.o.retries < 0)
      throw new Error(`server engine retries: expected an integer >= 0, got ${this.o.retries}`);
  }

  async generate(prompts: readonly RolloutPrompt[], groupSize: number, params: SamplingParams): Promise<Rollout[][]> {
    validateSampling(params);
    if (!Number.isInteger(groupSize) || groupSize < 1)
      throw new Error(`server engine: groupSize must be a positive integer, got ${groupSize}`);
    const messages = prompts.map((p) => sampleMessages(p.sample));
    const jobs = prompts.flatMap((_, i) => Array.from({ length: groupSize }, (_, j) => ({ i, j })));
    const out: Rollout[][] = prompts.map(() => new Array<Rollout>(groupSize));
    let next = 0;
    let failed = 0;
    let firstError = '';
    const worker = async () => {
      while (next < jobs.length) {
        const { i, j } = jobs[next++]!;
        const seed = rolloutRequestSeed(params.seed, i, j, groupSize);
        try {
          out[i]![j] = this.o.onPolicy
            ? await this.onPolicyRollout(messages[i]!, params, seed)
            : this.toRollout(await this.request(messages[i]!, params, seed), params);
        } catch (e) {
          failed++;
          const msg = (e as Error).message ?? String(e);
          firstError ||= `prompt ${prompts[i]!.sample.id}: ${msg}`;
          out[i]![j] = {
            tokenIds: new Int32Array(0),
            lossMask: new Uint8Array(0),
            text: '',
            logprobs: null,
            finishReason: 'error',
            forced: false,
            thinkingTokens: 0,
            answerTokens: 0,
            error: msg,
          };
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.o.concurrency, jobs.length) }, worker));
    if (jobs.length && failed / jobs.length > this.o.maxErrorShare)
      throw new Error(
        `server rollouts: ${failed} of ${jobs.length} requests failed (more than maxErrorShare ${this.o.maxErrorShare}); first: ${firstError}`,
      );
    return out;
  }

  /**
   * Sends the policy's weights to the server (on-policy mode; a no-op otherwise) and records `version`: the
   * following rollouts must come back with that `policy_version`.
   */
  async syncPolicy(policy: Policy, version: number): Promise<void> {
    const op = this.o.onPolicy;
    if (!op) return;
    const root = this.o.client.baseURL.replace(/\/v1$/, '');
    const dir = mkdtempSync(join(tmpdir(), 'glmv-sync-'));
    let body: Buffer;
    try {
      const path = join(dir, 'weights.safetensors');
      saveSafetensors(path, policy.stateDict());
      body = readFileSync(path);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const url = `${root}/update_weights_from_tensor?policy_version=${version}`;
    let res: Response;
    try {
      res = await fetch(url, {
        method: 'POST',
        headers: { authorization: `Bearer ${op.apiKey}`, 'content-type': 'application/octet-stream' },
        body,
      });
    } catch (e) {
      throw new Error(`weight sync ${url}: ${(e as Error).message}`);
    }
    const text = await res.text();
    let json: Record<string, unknown> = {};
    try {
      json = JSON.parse(text) as Record<string, unknown>;
    } catch {
      // reported below
    }
    if (!res.ok || json.policy_version !== version)
      throw new Error(
        `weight sync ${url}: expected HTTP 200 with policy_version ${version}, got ${res.status} ${text.slice(0, 300)} (is the server started with --weight-updates and the same API key?)`,
      );
    this.version = version;
  }

  /** One on-policy response: the server's sampled ids rebuilt into a rollout exactly as local rollouts are. */
  private async onPolicyRollout(messages: ChatMessageParam[], p: SamplingParams, seed: number): Promise<Rollout> {
    const chat = this.o.onPolicy!.policy.chat;
    const { base, maxNewTokens } = glmRolloutSetup(chat, p);
    const extraBody: Record<string, unknown> = {
      top_k: p.topK,
      repetition_penalty: 1,
      return_token_ids: true,
      // The rollout text is the policy tokenizer's decoding of the ids, special tokens included, as locally.
      skip_special_tokens: false,
      ...(p.temperature === 1 ? { logprobs: true } : {}),
      ...(p.forceAnswer ? { thinking_budget: p.maxThinkingTokens } : {}),
    };
    let r: ChatResult;
    for (let attempt = 0; ; attempt++) {
      try {
        r = await this.o.client.chat({
          messages,
          temperature: p.temperature,
          topP: p.topP,
          seed,
          maxTokens: maxNewTokens,
          extraBody,
          ...(this.o.thinking !== undefined ? { thinking: this.o.thinking } : {}),
        });
        break;
      } catch (e) {
        if (attempt >= this.o.retries) throw e;
        await new Promise((res) => setTimeout(res, this.o.backoffMs * 2 ** attempt));
      }
    }
    const choice = r.raw?.choice ?? {};
    const ids = choice.token_ids;
    if (!Array.isArray(ids) || !ids.every((id) => Number.isInteger(id)))
      throw new Error('on-policy rollout: the response has no token_ids (is the server glmv serve?)');
    const version = r.raw?.response.policy_version;
    if (this.version !== null && version !== this.version)
      throw new Error(
        `on-policy rollout: sampled with policy_version ${JSON.stringify(version)}, expected ${this.version} (the server missed a weight update)`,
      );
    const finish = choice.finish_reason === 'stop' ? 'stop' : choice.finish_reason === 'length' ? 'length' : 'abort';
    const tokens = ids as number[];
    const stopped = finish === 'stop';
    const thinkingTokens = thinkingTokensOf(tokens, base.thinkCloseId!, stopped);
    const content = (choice.logprobs as { content?: Array<{ logprob: number }> } | null)?.content;
    const o: GenerationOutput = {
      tokens,
      text: chat.tokenizer.decode(stopped ? tokens.slice(0, -1) : tokens, { skipSpecialTokens: false }),
      reasoning: '',
      content: '',
      finishReason: finish,
      forced: p.forceAnswer && thinkingTokens === p.maxThinkingTokens,
      thinkingTokens,
      ...(content && content.length === tokens.length ? { logprobs: content.map((c) => c.logprob) } : {}),
      promptTokens: 0,
    };
    return { ...glmRollout(chat, o, p), ...(typeof version === 'number' ? { policyVersion: version } : {}) };
  }

  private async request(messages: ChatMessageParam[], p: SamplingParams, seed: number): Promise<ChatResult> {
    const c = this.o.client;
    const base = {
      messages,
      temperature: p.temperature,
      topP: p.topP,
      seed,
      ...(p.topK > 0 ? { extraBody: { top_k: p.topK } } : {}),
      ...(this.o.thinking !== undefined ? { thinking: this.o.thinking } : {}),
    };
    let attempt = 0;
    for (;;) {
      try {
        return p.forceAnswer
          ? await c.chatWithBudget({
              ...base,
              thinkingBudget: p.maxThinkingTokens,
              answerTokens: p.maxAnswerTokens,
              style: p.style,
              continuation: this.o.continuation,
            })
          : await c.chat({ ...base, maxTokens: p.maxThinkingTokens + p.maxAnswerTokens });
      } catch (e) {
        if (attempt >= this.o.retries) throw e;
        await new Promise((r) => setTimeout(r, this.o.backoffMs * 2 ** attempt));
        attempt++;
      }
    }
  }

  /** Maps a client result to a rollout; ids re-encoded piecewise around a forced insertion. */
  toRollout(r: ChatResult, p: SamplingParams): Rollout {
    const text = r.text;
    const finish = r.finishReason === 'length' ? 'length' : 'stop';
    const enc = this.o.encodeText;
    const suffix = forcedSuffix(p.style);
    // Phase 1 never closed thinking, so the first `</think>` of a forced response is the inserted one.
    const at = r.forcedAnswer ? text.indexOf(THINK_CLOSE) : -1;
    const forcedSpan = at >= 0 && text.startsWith(suffix, at) ? [at, at + suffix.length] : null;
    let ids: number[] = [];
    let mask: number[] = [];
    let thinking = 0;
    let answer = 0;
    if (enc) {
      const pieces: Array<[string, number]> = forcedSpan
        ? [
            [text.slice(0, forcedSpan[0]), 1],
            [text.slice(forcedSpan[0], forcedSpan[1]), 0],
            [text.slice(forcedSpan[1]), 1],
          ]
        : [[text, 1]];
      for (const [piece, m] of pieces) {
        const t = piece ? enc(piece) : [];
        ids = ids.concat(t);
        mask = mask.concat(t.map(() => m));
      }
      const close = forcedSpan ? forcedSpan[0] : text.indexOf(THINK_CLOSE);
      if (close >= 0) {
        thinking = enc(text.slice(0, close + (forcedSpan ? 0 : THINK_CLOSE.length))).length;
        answer = enc(text.slice(forcedSpan ? forcedSpan[1] : close + THINK_CLOSE.length)).length;
      } else thinking = ids.length;
    } else {
      const phases = r.phases;
      thinking = r.forcedAnswer ? (phases[0]?.usage?.completionTokens ?? 0) : (r.usage?.reasoningTokens ?? 0);
      answer = r.forcedAnswer
        ? (phases[1]?.usage?.completionTokens ?? 0)
        : Math.max(0, (r.usage?.completionTokens ?? 0) - thinking);
    }
    return {
      tokenIds: Int32Array.from(ids),
      lossMask: Uint8Array.from(mask),
      text,
      logprobs: null,
      finishReason: finish,
      forced: r.forcedAnswer,
      thinkingTokens: thinking,
      answerTokens: answer,
    };
  }
}
