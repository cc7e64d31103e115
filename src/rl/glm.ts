/**
 * The real local policy: a GLM-4.1V / 4.5V checkpoint (src/model) behind the `Policy` interface, and local rollouts
 * with the KV-cache generator (src/io/generate.ts) behind `RolloutEngine`. Prompts go through the same path as
 * `glmv chat` (chat template, image/video processor, tokenizer: src/io/chat.ts).
 *
 * Log-probs: prompt + response rows are left-padded so every response ends at the last column; the model then only
 * computes logits for the last (longest response + 1) positions (`logitsToKeep`), which is what keeps a 150k-token
 * vocabulary affordable. Left padding gives the same 3D positions as generation's left-padded prefill, so the
 * trainer's recomputed log-probs match the sampler's (checked in the tests).
 *
 * Weights are trained in float32 (AdamW keeps float32 master weights): a bf16 checkpoint is converted on load, which
 * needs ~4 bytes per parameter plus Adam's 8 — a 9B model does not fit this machine's 24 GiB, the small pipeline
 * models do.
 */
import type { Sample } from '../data/sample.js';
import { sampleMessage } from '../data/sft.js';
import { F, fromArray, type Parameter, type Tensor } from '../engine/index.js';
import { ChatModel } from '../io/chat.js';
import {
  concatVisual,
  type GenerationInput,
  type GenerationOutput,
  generate,
  leftPad,
  samplerSeed,
} from '../io/generate.js';
import type { ChatMessage } from '../io/template.js';
import { createModel } from '../model/glm4v.js';
import { rolloutRequestSeed, validateSampling } from './rollout/sampling.js';
import type {
  LogProbOptions,
  Policy,
  PolicyItem,
  PolicyOutput,
  PromptInput,
  Rollout,
  RolloutEngine,
  RolloutPrompt,
  SamplingParams,
} from './types.js';

/** The visual part of a prompt (what `PromptInput.extra` holds for the GLM policy). */
type Visual = Omit<GenerationInput, 'inputIds'>;

/** The user turn of a sample: its images, its video, then the question (with lettered options). */
export function sampleChat(sample: Sample): ChatMessage[] {
  return [sampleMessage(sample)];
}

export class GlmPolicy implements Policy {
  readonly name: string;

  constructor(readonly chat: ChatModel) {
    const m = chat.model;
    if (m.namedParameters().some(([, p]) => p.dtype !== 'float32')) m.toDtype('float32');
    m.train();
    this.name = `glm:${m.config.modelType}`;
  }

  static async load(dir: string): Promise<GlmPolicy> {
    return new GlmPolicy(await ChatModel.load(dir));
  }

  async encodePrompt(sample: Sample): Promise<PromptInput> {
    let g: GenerationInput;
    try {
      g = await this.chat.prepare(sampleChat(sample), true);
    } catch (e) {
      throw new Error(`sample ${sample.id}: ${(e as Error).message}`);
    }
    const { inputIds, ...visual } = g;
    return { ids: Int32Array.from(inputIds), extra: visual satisfies Visual };
  }

  encodeText(text: string): number[] {
    return this.chat.tokenizer.encode(text);
  }

  parameters(): Parameter[] {
    return this.chat.model.parameters();
  }
  namedParameters(): Array<[string, Parameter]> {
    return this.chat.model.namedParameters();
  }

  stateDict(): Map<string, Tensor> {
    return this.chat.model.stateDict();
  }

  loadStateDict(state: Map<string, Tensor>): void {
    this.chat.model.loadStateDict(state);
  }

  snapshot(): GlmPolicy {
    const m = createModel(this.chat.model.config, { init: 'empty', dtype: 'float32' });
    m.loadStateDict(this.chat.model.stateDict());
    const copy = new GlmPolicy(new ChatModel(m, this.chat.tokenizer, this.chat.processor, this.chat.dir));
    m.requiresGrad_(false);
    m.eval();
    return copy;
  }

  logProbs(items: readonly PolicyItem[], opts: LogProbOptions = {}): PolicyOutput {
    if (items.length === 0) throw new Error('glm policy logProbs: empty batch');
    const temperature = opts.temperature ?? 1;
    if (!(temperature > 0)) throw new Error(`glm policy logProbs: temperature must be > 0, got ${temperature}`);
    const B = items.length;
    const lens = items.map((it) => it.prompt.ids.length + it.response.length);
    const L = Math.max(...lens);
    const T = Math.max(1, ...items.map((it) => it.response.length));
    for (const [b, it] of items.entries())
      if (it.prompt.ids.length === 0) throw new Error(`glm policy logProbs: item ${b} has an empty prompt`);
    const { ids, mask } = leftPad(
      items.map((it) => [...it.prompt.ids, ...it.response]),
      0,
    );
    const visual = concatVisual(items.map((it) => (it.prompt.extra ?? {}) as Visual));
    // Every response ends at column L − 1, so the last T + 1 positions hold every prediction needed.
    const keep = Math.min(L, T + 1);
    let logits = this.chat.model.forward({
      inputIds: ids,
      attentionMask: mask,
      pixelValues: visual.pixelValues,
      imageGridThw: visual.imageGridThw,
      pixelValuesVideos: visual.pixelValuesVideos,
      videoGridThw: visual.videoGridThw,
      logitsToKeep: keep,
    }).logits;
    if (temperature !== 1) logits = logits.mul(1 / temperature);
    // Kept column j is absolute position L − keep + j and predicts the token at L − keep + j + 1.
    const targets = new Int32Array(B * keep).fill(-100);
    const index = new Int32Array(B * T);
    const valid = new Float32Array(B * T);
    for (const [b, it] of items.entries()) {
      const R = it.response.length;
      const c0 = keep - 1 - R; // the column predicting response token 0
      for (let t = 0; t < R; t++) targets[b * keep + c0 + t] = it.response[t]!;
      for (let t = 0; t < T; t++) {
        index[b * T + t] = t < R ? c0 + t : keep - 1; // the last column's target is always ignored (value 0)
        valid[b * T + t] = t < R ? 1 : 0;
      }
    }
    const nll = F.crossEntropy(logits, fromArray(targets, [B, keep]), { reduction: 'none' });
    const idx = fromArray(index, [B, T]);
    const logprobs = nll.neg().gather(1, idx);
    if (!opts.entropy) return { logprobs };
    const lsm = logits.logSoftmax(-1);
    const ent = lsm.exp().mul(lsm).sum(-1).neg();
    return { logprobs, entropy: ent.gather(1, idx).mul(fromArray(valid, [B, T])) };
  }
}

export interface GlmEngineOptions {
  /** Responses decoded together. Default 64. */
  batchSize?: number;
  /**
   * Decode by groups (default): the G responses of a prompt share one prefill and finished responses leave the batch
   * (`generate`'s `groupSize`). false: every response is prefilled and decoded on its own row to the batch's end (the
   * same tokens for the same seeds; kept for comparison, `npm run bench:rl`).
   */
  groupDecode?: boolean;
}

/** Local rollouts of a GLM policy with the KV-cache generator (thinking budget and force answering included). */
export class GlmRolloutEngine implements RolloutEngine {
  readonly name = 'glm-local';
  private readonly batchSize: number;
  private readonly groupDecode: boolean;
  sampledTokens = 0;

  constructor(
    readonly policy: GlmPolicy,
    opts: GlmEngineOptions = {},
  ) {
    this.batchSize = opts.batchSize ?? 64;
    this.groupDecode = opts.groupDecode ?? true;
    if (!Number.isInteger(this.batchSize) || this.batchSize < 1)
      throw new Error(`glm engine batchSize: expected a positive integer, got ${opts.batchSize}`);
  }

  async generate(prompts: readonly RolloutPrompt[], groupSize: number, params: SamplingParams): Promise<Rollout[][]> {
    validateSampling(params);
    if (!Number.isInteger(groupSize) || groupSize < 1)
      throw new Error(`glm engine: groupSize must be a positive integer, got ${groupSize}`);
    const chat = this.policy.chat;
    if ((chat.style === 'glm45v') !== (params.style === 'glm45v'))
      throw new Error(
        `glm engine: rollout.style is ${params.style} but the checkpoint is a ${chat.style} model; set rollout.style: ${chat.style}`,
      );
    const { base, maxNewTokens } = glmRolloutSetup(chat, params);
    const out: Rollout[][] = prompts.map(() => new Array<Rollout>(groupSize));
    const seedOf = (i: number, j: number) => samplerSeed(rolloutRequestSeed(params.seed, i, j, groupSize));
    const inputOf = (p: RolloutPrompt): GenerationInput => ({
      inputIds: Array.from(p.input.ids),
      ...((p.input.extra ?? {}) as Visual),
    });
    const keep = (i: number, j: number, o: GenerationOutput) => {
      const r = glmRollout(chat, o, params);
      this.sampledTokens += r.lossMask.reduce((a, b) => a + b, 0);
      out[i]![j] = r;
    };
    if (this.groupDecode) {
      // Whole groups per call: at least one prompt, else as many as fit in batchSize responses.
      const per = Math.max(1, Math.floor(this.batchSize / groupSize));
      for (let s = 0; s < prompts.length; s += per) {
        const part = prompts.slice(s, s + per);
        const { outputs } = await generate(
          chat.model,
          part.map(inputOf),
          {
            ...base,
            maxNewTokens,
            rowSeeds: part.flatMap((_, k) => Array.from({ length: groupSize }, (_, j) => seedOf(s + k, j))),
            yieldEvery: 0,
          },
          groupSize,
        );
        for (const [r, o] of outputs.entries()) keep(s + Math.floor(r / groupSize), r % groupSize, o);
      }
      return out;
    }
    const rows = prompts.flatMap((p, i) => Array.from({ length: groupSize }, (_, j) => ({ i, j, p })));
    for (let s = 0; s < rows.length; s += this.batchSize) {
      const chunk = rows.slice(s, s + this.batchSize);
      const inputs: GenerationInput[] = chunk.map(({ p }) => inputOf(p));
      // Each response's sampler is seeded from its (prompt, response) index, as a server engine seeds its request:
      // the same seed gives the same rollouts however they are batched, locally or through `glmv serve`.
      const { outputs } = await generate(chat.model, inputs, {
        ...base,
        maxNewTokens,
        rowSeeds: chunk.map(({ i, j }) => seedOf(i, j)),
        yieldEvery: 0,
        compactShare: 1, // every row decoded to the batch's end, as before group decoding (the bench's baseline)
      });
      for (const [k, o] of outputs.entries()) keep(chunk[k]!.i, chunk[k]!.j, o);
    }
    return out;
  }
}

/** Generation options and the token limit of a rollout call (force answering adds the inserted tokens). */
export function glmRolloutSetup(
  chat: ChatModel,
  params: SamplingParams,
): { base: ReturnType<ChatModel['generateOptions']>; forcedIds: readonly number[]; maxNewTokens: number } {
  const base = chat.generateOptions({
    temperature: params.temperature,
    topP: params.topP,
    topK: params.topK,
    thinkingBudget: params.forceAnswer ? params.maxThinkingTokens : null,
    returnLogprobs: params.temperature === 1,
  });
  const forcedIds = base.forceAnswerIds ?? [];
  const maxNewTokens = params.maxThinkingTokens + (params.forceAnswer ? forcedIds.length : 0) + params.maxAnswerTokens;
  return { base, forcedIds, maxNewTokens };
}

/**
 * One generation of a GLM policy as a rollout: cut before a sampled vision placeholder, the force-answer tokens
 * masked out of the loss. Local rollouts and on-policy server rollouts (rebuilt from the server's token ids) both
 * go through here, so they are the same rollout for the same tokens.
 */
export function glmRollout(chat: ChatModel, o0: GenerationOutput, params: SamplingParams): Rollout {
  const { forcedIds } = glmRolloutSetup(chat, params);
  const mc = chat.model.config;
  const vision = new Set([
    mc.imageTokenId,
    mc.videoTokenId,
    mc.imageStartTokenId,
    mc.imageEndTokenId,
    mc.videoStartTokenId,
    mc.videoEndTokenId,
  ]);
  const o = cutAtVisionToken(o0, vision, (ids) => chat.tokenizer.decode(ids, { skipSpecialTokens: false }));
  const mask = new Uint8Array(o.tokens.length).fill(1);
  if (o.forced) {
    // generate inserts the forced ids right after the budget's last thinking token.
    const at = o.thinkingTokens;
    const ok = forcedIds.every((id, m) => at + m >= o.tokens.length || o.tokens[at + m] === id);
    if (!ok)
      throw new Error(
        `glm engine: forced tokens not found at position ${at} of a forced response (generate changed its layout?)`,
      );
    for (let m = 0; m < forcedIds.length && at + m < mask.length; m++) mask[at + m] = 0;
  }
  const stopped = o.finishReason === 'stop';
  return {
    tokenIds: Int32Array.from(o.tokens),
    lossMask: mask,
    text: o.text,
    logprobs: o.logprobs ? Float32Array.from(o.logprobs) : null,
    finishReason: o.finishReason === 'abort' ? 'error' : stopped ? 'stop' : 'length',
    forced: o.forced,
    thinkingTokens: o.thinkingTokens,
    answerTokens: Math.max(0, o.tokens.length - o.thinkingTokens - (o.forced ? forcedIds.length : 0)),
    ...(o.finishReason === 'abort' ? { error: 'generation aborted' } : {}),
    ...(o.note ? { note: o.note } : {}),
  };
}

/**
 * A sampled vision placeholder (`<|image|>`, `<|begin_of_video|>`, …) cannot be scored in a training forward: the
 * model would look for pixels behind it. Such a response is cut before that token (a trained model practically never
 * emits one; a randomly initialised one does) and reported as truncated with a note.
 */
export function cutAtVisionToken(
  o: GenerationOutput,
  vision: ReadonlySet<number>,
  decode: (ids: number[]) => string,
): GenerationOutput & { note?: string } {
  const k = o.tokens.findIndex((id) => vision.has(id));
  if (k < 0) return o;
  const tokens = o.tokens.slice(0, k);
  return {
    ...o,
    tokens,
    text: decode(tokens),
    finishReason: 'length',
    forced: o.forced && o.thinkingTokens < k,
    thinkingTokens: Math.min(o.thinkingTokens, k),
    ...(o.logprobs ? { logprobs: o.logprobs.slice(0, k) } : {}),
    note: `cut at token ${k}: the model emitted vision placeholder ${o.tokens[k]}`,
  };
}
