/**
 * Generation with a KV cache: batched prefill (left padding), one-token decode steps, greedy or seeded sampling
 * (./sampling.ts), stop ids, streaming text split into reasoning and content, and the paper's force answering
 * (./force-answer.ts): when thinking reaches its budget without `</think>`, the closing tokens are inserted and the
 * model goes on to answer.
 *
 * The loop is async and yields to the event loop between decode steps, so a server can accept and cancel
 * requests while a batch decodes.
 */
import { F, fromArray, noGrad, scope, type Tensor } from '../engine/index.js';
import type { Glm4vForConditionalGeneration } from '../model/glm4v.js';
import type { Grid } from '../model/rope.js';
import type { KVCache } from '../model/text.js';
import { concatFloat32 } from '../util/arrays.js';
import { Rng } from '../util/rng.js';
import { ThinkStreamSplitter } from './answer/stream.js';
import { countThinking, forceAnswer, thinkingBudgetSpent } from './force-answer.js';
import { type SamplingOptions, sampleFromProbs, sampleToken, tokenLogProb, topLogProbs } from './sampling.js';

/** One prompt: token ids plus the visual inputs its image tokens stand for (processor output). */
export interface GenerationInput {
  inputIds: readonly number[];
  pixelValues?: Float32Array | null;
  imageGridThw?: readonly Grid[] | null;
  pixelValuesVideos?: Float32Array | null;
  videoGridThw?: readonly Grid[] | null;
}

/** Converts token ids to text for streaming; `GlmTokenizer` satisfies it. */
export interface StreamDecoder {
  decodeBytes(ids: ArrayLike<number>, opts?: { skipSpecialTokens?: boolean }): Uint8Array;
}

export interface StreamEvent {
  row: number;
  tokenId: number;
  /** Whether the token was inserted by force answering rather than chosen by the model. */
  forced: boolean;
  /** Decoded text delta (complete UTF-8 characters only), and its reasoning / content split. */
  text: string;
  reasoning: string;
  content: string;
}

export interface GenerateOptions extends SamplingOptions {
  maxNewTokens: number;
  /** Generation of a row ends after any of these (the stop token is kept in `tokens`, not in `text`). */
  stopTokenIds: readonly number[];
  /** Pad id for left padding (never attended); defaults to the first stop id. */
  padTokenId?: number;
  /**
   * Force answering: once this many tokens have been generated without `thinkCloseId`, the `forceAnswerIds`
   * (`</think><answer>` for GLM-4.1V, `</think>` for GLM-4.5V) are inserted and generation continues.
   */
  thinkingBudget?: number | null;
  thinkCloseId?: number;
  forceAnswerIds?: readonly number[];
  /** Needed for text output and streaming. */
  decoder?: StreamDecoder;
  /** The prompt already opened `<think>` (so text starts as reasoning). */
  startInReasoning?: boolean;
  onToken?: (e: StreamEvent) => void;
  /** Stops every row (finish reason 'abort'). */
  signal?: AbortSignal;
  /** Per-row cancellation (e.g. a client disconnected); checked every step. */
  shouldStop?: (row: number) => boolean;
  /** Return the model's log-probability (temperature 1, before any truncation) of each generated token. */
  returnLogprobs?: boolean;
  /** Also record the k most likely tokens at every step, with their log-probabilities (same distribution). */
  topLogprobs?: number;
  /**
   * Tokens whose text is left out of the decoded output (they stay in `tokens`): a server's `skip_special_tokens`
   * passes the tokenizer's special ids here.
   */
  skipTextIds?: ReadonlySet<number>;
  /** Sampler seed of each row (see `samplerSeed`); default `seed * 1000003 + row`. */
  rowSeeds?: readonly number[];
  /** Yield to the event loop every n decode steps (default 1); 0 = never (pure compute). */
  yieldEvery?: number;
  /**
   * Drop finished rows from the batch once they are at least this share of it (0 < share ≤ 1; default 0.125), so a
   * step's cost follows the rows still running rather than the longest one. 1 keeps every row to the end.
   */
  compactShare?: number;
}

export type FinishReason = 'stop' | 'length' | 'abort';

export interface GenerationOutput {
  /** Generated ids, forced ones included, the stop token included when one ended the row. */
  tokens: number[];
  text: string;
  reasoning: string;
  content: string;
  finishReason: FinishReason;
  /** Force answering fired for this row. */
  forced: boolean;
  /** Tokens generated before `</think>` (or all, when it never came). */
  thinkingTokens: number;
  logprobs?: number[];
  /** Per generated token, the `topLogprobs` most likely [id, log-probability] pairs, most likely first. */
  topLogprobs?: Array<Array<[number, number]>>;
  promptTokens: number;
}

export interface GenerationStats {
  prefillMs: number;
  decodeMs: number;
  decodeSteps: number;
  /** Rows decoded, summed over steps (what dropping finished rows saves against rows × steps). */
  rowSteps: number;
  /** Generated tokens per second of decode time, over all rows. */
  tokensPerSecond: number;
}

/** Checks generation options (and that there are `n` > 0 inputs); throws naming the bad option. */
export function checkGenerateOptions(o: GenerateOptions, n: number, vocab: number): void {
  if (!Number.isInteger(o.maxNewTokens) || o.maxNewTokens < 1)
    throw new Error(`generate: maxNewTokens must be a positive integer, got ${o.maxNewTokens}`);
  if (n === 0) throw new Error('generate: no inputs');
  const t = o.temperature ?? 0;
  if (!(t >= 0) || !Number.isFinite(t)) throw new Error(`generate: temperature must be >= 0, got ${t}`);
  const p = o.topP ?? 1;
  if (!(p > 0 && p <= 1)) throw new Error(`generate: topP must be in (0, 1], got ${p}`);
  const k = o.topK ?? 0;
  if (!Number.isInteger(k) || k < 0) throw new Error(`generate: topK must be a non-negative integer, got ${k}`);
  const rp = o.repetitionPenalty ?? 1;
  if (!(rp > 0)) throw new Error(`generate: repetitionPenalty must be > 0, got ${rp}`);
  for (const id of o.stopTokenIds)
    if (!(id >= 0 && id < vocab)) throw new Error(`generate: stop token ${id} outside the vocabulary [0, ${vocab})`);
  if (o.topLogprobs !== undefined && !(Number.isInteger(o.topLogprobs) && o.topLogprobs >= 0))
    throw new Error(`generate: topLogprobs must be a non-negative integer, got ${o.topLogprobs}`);
  if (o.thinkingBudget != null) {
    if (!Number.isInteger(o.thinkingBudget) || o.thinkingBudget < 0)
      throw new Error(`generate: thinkingBudget must be a non-negative integer, got ${o.thinkingBudget}`);
    if (o.thinkCloseId === undefined || !o.forceAnswerIds?.length)
      throw new Error('generate: a thinkingBudget needs thinkCloseId and forceAnswerIds');
  }
}

/** Checks that every input has tokens and only ids inside the vocabulary; `who` names the caller in the error. */
export function checkGenerateInputs(inputs: readonly GenerationInput[], vocab: number, who: string): void {
  for (const [r, inp] of inputs.entries()) {
    if (inp.inputIds.length === 0) throw new Error(`${who}: input ${r} has no tokens`);
    for (const id of inp.inputIds)
      if (!(Number.isInteger(id) && id >= 0 && id < vocab))
        throw new Error(`${who}: input ${r} has token ${id} outside the vocabulary [0, ${vocab})`);
  }
}

/** Decoding state of one row; shared by `generate` and the serving batcher (rows that join and leave a batch). */
export interface RowState {
  tokens: number[];
  logprobs: number[];
  topLogprobs: Array<Array<[number, number]>>;
  history: Set<number>;
  done: FinishReason | null;
  forced: boolean;
  pendingForced: number[];
  thinkClosed: boolean;
  thinkingTokens: number;
  rng: Rng;
  utf8: TextDecoder;
  splitter: ThinkStreamSplitter;
  text: string;
  reasoning: string;
  content: string;
}

/**
 * Generates a continuation for every input, as one batch. Returns one output per input, in order, and stats.
 *
 * `groupSize` G > 1 gives G continuations per input that share one prefill (the vision encoder and the prompt's
 * forward run once per input, then the KV cache rows are repeated G times), in row order: input 0's G, then input
 * 1's, … Each row samples with its own seeded stream (`rowSeeds`, else `seed * 1000003 + row`), so a row's tokens do
 * not depend on which rows share its batch or when finished rows leave it.
 */
export async function generate(
  model: Glm4vForConditionalGeneration,
  inputs: readonly GenerationInput[],
  opts: GenerateOptions,
  groupSize = 1,
): Promise<{ outputs: GenerationOutput[]; stats: GenerationStats }> {
  const G = groupSize;
  if (!Number.isInteger(G) || G < 1) throw new Error(`generate: groupSize must be a positive integer, got ${G}`);
  const vocab = model.config.text.vocabSize;
  checkGenerateOptions(opts, inputs.length, vocab);
  checkGenerateInputs(inputs, vocab, 'generate');
  const B = inputs.length * G;
  if (opts.rowSeeds && opts.rowSeeds.length !== B)
    throw new Error(
      `generate: rowSeeds has ${opts.rowSeeds.length} seeds for ${inputs.length} inputs${G > 1 ? ` × ${G}` : ''}`,
    );
  const share = opts.compactShare ?? 0.125;
  if (!(share > 0 && share <= 1)) throw new Error(`generate: compactShare must be in (0, 1], got ${share}`);
  const stop = new Set(opts.stopTokenIds);
  const pad = opts.padTokenId ?? opts.stopTokenIds[0] ?? 0;
  const baseSeed = opts.seed ?? 0;
  const promptOf = (r: number) => Math.floor(r / G);
  const rows: RowState[] = Array.from({ length: B }, (_, r) =>
    newRowState(inputs[promptOf(r)]!.inputIds, opts, opts.rowSeeds ? opts.rowSeeds[r]! : baseSeed * 1000003 + r),
  );
  const maxLen = Math.max(...inputs.map((i) => i.inputIds.length));
  const cache: KVCache = model.newCache(maxLen + opts.maxNewTokens + (opts.forceAnswerIds?.length ?? 0) + 1);
  const yieldEvery = opts.yieldEvery ?? 1;
  const t0 = performance.now();
  let prefillMs = 0;
  let steps = 0;
  let rowSteps = 0;
  try {
    const bufs = new StepBuffers();
    const pre = prefill(model, inputs, pad, cache, () => opts, bufs);
    /** Batch position → row. */
    let live = Array.from({ length: B }, (_, r) => r);
    if (G > 1) noGrad(() => cache.selectRows(live.map(promptOf)));
    let logits: StepRow[] = live.map((r) => pre[promptOf(r)]!);
    prefillMs = performance.now() - t0;
    for (let t = 0; ; t++) {
      const next: number[] = new Array(live.length).fill(pad);
      const running: number[] = [];
      for (const [k, r] of live.entries()) {
        const row = rows[r]!;
        if (row.done) continue;
        const id = stepRow(row, r, logits[k]!, opts, stop, !!opts.signal?.aborted || !!opts.shouldStop?.(r));
        if (id === null) continue;
        next[k] = id;
        running.push(k);
      }
      if (running.length === 0) break;
      const finished = live.length - running.length;
      const compact = finished > 0 && finished >= share * live.length;
      if (compact) {
        noGrad(() => cache.selectRows(running));
        live = running.map((k) => live[k]!);
      }
      const ids = compact ? running.map((k) => next[k]!) : next;
      // Rows that finished since the last compaction decode a pad (ignored). No mask: the cache keeps each row's left
      // padding from the prefill.
      if (yieldEvery > 0 && t % yieldEvery === 0) await new Promise((res) => setImmediate(res));
      logits = noGrad(() =>
        scope(() =>
          stepRows(model.forward({ inputIds: ids.map((id) => [id]), cache, logitsToKeep: 1 }).logits, () => opts, bufs),
        ),
      );
      steps++;
      rowSteps += live.length;
    }
  } finally {
    cache.dispose();
  }
  const decodeMs = performance.now() - t0 - prefillMs;
  const outputs = rows.map((row, r) => rowOutput(row, inputs[promptOf(r)]!.inputIds.length, opts));
  const generated = rows.reduce((a, row) => a + row.tokens.length, 0);
  return {
    outputs,
    stats: {
      prefillMs,
      decodeMs,
      decodeSteps: steps,
      rowSteps,
      tokensPerSecond: decodeMs > 0 ? (generated / decodeMs) * 1000 : 0,
    },
  };
}

/**
 * The sampler seed of choice `choice` of a request with seed `seed` (taken modulo 2^32): what the serving batcher
 * seeds a row with, and what a local caller passes in `rowSeeds` to sample exactly the tokens a server would.
 */
export function samplerSeed(seed: number, choice = 0): number {
  return (((seed % 2 ** 32) + 2 ** 32) % 2 ** 32) * 1000003 + choice;
}

/** Fresh state for one row; `seed` seeds its own sampler (generate uses seed * 1000003 + row). */
export function newRowState(promptIds: readonly number[], o: GenerateOptions, seed: number): RowState {
  return {
    tokens: [],
    logprobs: [],
    topLogprobs: [],
    history: new Set(o.repetitionPenalty && o.repetitionPenalty !== 1 ? promptIds : []),
    done: null,
    forced: false,
    pendingForced: [],
    thinkClosed: false,
    thinkingTokens: 0,
    rng: new Rng(seed),
    utf8: new TextDecoder('utf-8', { fatal: false }),
    splitter: new ThinkStreamSplitter({ startInReasoning: o.startInReasoning }),
    text: '',
    reasoning: '',
    content: '',
  };
}

/**
 * One decode step of one unfinished row: takes a pending forced token or samples from `logits`, records it
 * (stop ids, thinking budget, streaming) and returns the id to feed next, or null when the row just finished.
 * `r` is only passed through to `onToken`.
 */
export function stepRow(
  row: RowState,
  r: number,
  step: StepRow,
  o: GenerateOptions,
  stop: ReadonlySet<number>,
  cancelled: boolean,
): number | null {
  if (cancelled) {
    finish(row, 'abort', o);
    return null;
  }
  let id: number;
  let isForced = false;
  if (row.pendingForced.length > 0) {
    id = row.pendingForced.shift()!;
    isForced = true;
  } else if (step.probs) {
    id = sampleFromProbs(step.probs, row.rng);
  } else {
    id = sampleToken(step.logits!, row.history, o, row.rng);
  }
  if (o.returnLogprobs) row.logprobs.push(step.logprobs ? step.logprobs[id]! : tokenLogProb(step.logits!, id));
  if (o.topLogprobs) row.topLogprobs.push(topLogProbs(step.logits!, o.topLogprobs));
  accept(row, r, id, isForced, o, stop);
  if (row.done) return null;
  if (row.tokens.length >= o.maxNewTokens) {
    finish(row, 'length', o);
    return null;
  }
  return id;
}

/** The output of a row (finished or not: an unfinished row reports 'length'). */
export function rowOutput(row: RowState, promptTokens: number, o: GenerateOptions): GenerationOutput {
  return {
    tokens: row.tokens,
    text: row.text,
    reasoning: row.reasoning,
    content: row.content,
    finishReason: row.done ?? 'length',
    forced: row.forced,
    thinkingTokens: row.thinkingTokens,
    ...(o.returnLogprobs ? { logprobs: row.logprobs } : {}),
    ...(o.topLogprobs ? { topLogprobs: row.topLogprobs } : {}),
    promptTokens,
  };
}

/** Records a token: stop handling, thinking budget, streaming text. */
function accept(
  row: RowState,
  r: number,
  id: number,
  forced: boolean,
  o: GenerateOptions,
  stop: ReadonlySet<number>,
): void {
  row.tokens.push(id);
  row.history.add(id);
  if (stop.has(id) && !forced) {
    finish(row, 'stop', o, id, r);
    return;
  }
  countThinking(row, id, o.thinkCloseId);
  // Budget spent without `</think>`: insert the closing tokens next, then let the model answer.
  if (thinkingBudgetSpent(row, o.thinkingBudget)) row.pendingForced.push(...forceAnswer(row, o.forceAnswerIds ?? []));
  emit(row, r, id, forced, o);
}

function finish(row: RowState, reason: FinishReason, o: GenerateOptions, stopId?: number, r?: number): void {
  row.done = reason;
  if (o.decoder) {
    const tail = row.utf8.decode();
    const d = row.splitter.push(tail);
    const e = row.splitter.end();
    row.text += tail;
    row.reasoning += d.reasoning + e.reasoning;
    row.content += d.content + e.content;
    if (o.onToken && r !== undefined && stopId !== undefined) {
      o.onToken({
        row: r,
        tokenId: stopId,
        forced: false,
        text: tail,
        reasoning: d.reasoning + e.reasoning,
        content: d.content + e.content,
      });
    }
  }
}

function emit(row: RowState, r: number, id: number, forced: boolean, o: GenerateOptions): void {
  if (!o.decoder) {
    o.onToken?.({ row: r, tokenId: id, forced, text: '', reasoning: '', content: '' });
    return;
  }
  const bytes = o.skipTextIds?.has(id) ? EMPTY : o.decoder.decodeBytes([id], { skipSpecialTokens: false });
  const text = row.utf8.decode(bytes, { stream: true });
  const d = row.splitter.push(text);
  row.text += text;
  row.reasoning += d.reasoning;
  row.content += d.content;
  o.onToken?.({ row: r, tokenId: id, forced, text, reasoning: d.reasoning, content: d.content });
}

const EMPTY = new Uint8Array(0);

/**
 * One prefill forward of left-padded prompts (visual inputs in prompt order) into `cache` (which keeps each row's left
 * padding for the decode steps); the last position of each row as stepRow's input (`stepRows`).
 */
export function prefill(
  model: Glm4vForConditionalGeneration,
  inputs: readonly GenerationInput[],
  pad: number,
  cache: KVCache,
  optsOf: (row: number) => GenerateOptions,
  bufs?: StepBuffers,
): StepRow[] {
  const { ids, mask } = leftPad(
    inputs.map((i) => i.inputIds),
    pad,
  );
  const visual = concatVisual(inputs);
  return noGrad(() =>
    scope(() =>
      stepRows(
        model.forward({
          inputIds: ids,
          attentionMask: mask,
          pixelValues: visual.pixelValues,
          imageGridThw: visual.imageGridThw,
          pixelValuesVideos: visual.pixelValuesVideos,
          videoGridThw: visual.videoGridThw,
          cache,
          logitsToKeep: 1,
        }).logits,
        optsOf,
        bufs,
      ),
    ),
  );
}

/** Rows left-padded with `pad` to the longest, and their attention mask (1 = token, 0 = padding). */
export function leftPad(rows: ReadonlyArray<ArrayLike<number>>, pad: number): { ids: number[][]; mask: number[][] } {
  const L = Math.max(...rows.map((r) => r.length));
  return {
    ids: rows.map((r) => [...new Array(L - r.length).fill(pad), ...Array.from(r)]),
    mask: rows.map((r) => [...new Array(L - r.length).fill(0), ...new Array(r.length).fill(1)]),
  };
}

/**
 * The JS copies of a generation loop's step rows, reused from step to step (a row is valid until the loop's next
 * `stepRows` call): a fresh typed array per step costs page faults and garbage collection, a tenth of a rollout.
 */
export class StepBuffers {
  private readonly arrays = new Map<string, Float32Array>();

  /** [B, 1, V] float32 → one view per row into the buffer `name`. */
  rows(name: string, t: Tensor): Float32Array[] {
    const [B, , V] = t.shape as [number, number, number];
    const src = t.contiguous().buf('stepRows') as Float32Array;
    let a = this.arrays.get(name);
    if (!a || a.length < src.length) {
      a = new Float32Array(src.length);
      this.arrays.set(name, a);
    }
    a.set(src);
    return Array.from({ length: B }, (_, r) => a.subarray(r * V, (r + 1) * V));
  }
}

/** What stepRow draws a row's next token from. */
export interface StepRow {
  /** The logits (the general sampler: greedy, top-k, top-p, repetition penalty, top log-probs). */
  logits: Float32Array | null;
  /** softmax(logits / T) for a row that samples plainly (`plainSampling`). */
  probs: Float32Array | null;
  /** log softmax(logits) (temperature 1), for a plainly sampled row that returns log-probs. */
  logprobs: Float32Array | null;
}

/** Sampling at a temperature with nothing else: drawn from probabilities the engine computes for the whole batch. */
export function plainSampling(o: GenerateOptions): boolean {
  return (
    (o.temperature ?? 0) > 0 &&
    (o.topK ?? 0) === 0 &&
    (o.topP ?? 1) >= 1 &&
    (o.repetitionPenalty ?? 1) === 1 &&
    !o.topLogprobs
  );
}

/**
 * A step's logits [B, 1, V] as stepRow's rows, each row with its own options: plainly sampled rows get softmax(logits
 * / T) (and log-softmax when they return log-probs) from one engine op over the batch, the others their logits. Call
 * inside a scope. Every generation loop goes through here, so a row samples the same way in any of them.
 */
export function stepRows(
  logits: Tensor,
  optsOf: (row: number) => GenerateOptions,
  bufs: StepBuffers = new StepBuffers(),
): StepRow[] {
  const B = logits.shape[0] as number;
  const x = logits.dtype === 'float32' ? logits : logits.to('float32');
  const plain = Array.from({ length: B }, (_, r) => plainSampling(optsOf(r)));
  const lg = plain.every(Boolean) ? null : bufs.rows('logits', x);
  let probs: Float32Array[] | null = null;
  let lps: Float32Array[] | null = null;
  if (plain.some(Boolean)) {
    const inv = Float32Array.from(plain, (p, r) => (p ? 1 / optsOf(r).temperature! : 1));
    const scaled = inv.every((v) => v === 1) ? x : x.mul(fromArray(inv, [B, 1, 1]));
    probs = bufs.rows('probs', F.softmax(scaled, -1));
    if (plain.some((p, r) => p && optsOf(r).returnLogprobs)) lps = bufs.rows('logprobs', F.logSoftmax(x, -1));
  }
  return Array.from({ length: B }, (_, r) =>
    plain[r]
      ? { logits: null, probs: probs![r]!, logprobs: lps?.[r] ?? null }
      : { logits: lg![r]!, probs: null, logprobs: null },
  );
}

/** The visual inputs of several prompts as one batch (rows in input order). */
export function concatVisual(inputs: ReadonlyArray<Omit<GenerationInput, 'inputIds'>>): {
  pixelValues: Float32Array | null;
  imageGridThw: Grid[] | null;
  pixelValuesVideos: Float32Array | null;
  videoGridThw: Grid[] | null;
} {
  const cat = (parts: Array<Float32Array | null | undefined>) => concatFloat32(parts);
  const grids = (g: Array<readonly Grid[] | null | undefined>) => {
    const all = g.flatMap((x) => x ?? []);
    return all.length ? [...all] : null;
  };
  return {
    pixelValues: cat(inputs.map((i) => i.pixelValues)),
    imageGridThw: grids(inputs.map((i) => i.imageGridThw)),
    pixelValuesVideos: cat(inputs.map((i) => i.pixelValuesVideos)),
    videoGridThw: grids(inputs.map((i) => i.videoGridThw)),
  };
}
