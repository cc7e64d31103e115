/**
 * Group decoding for RL rollouts: the G responses of a prompt share one prefill (the vision encoder and the prompt's
 * forward run once per prompt, then the KV cache rows are repeated G times), and rows that finished are dropped from
 * the batch as decoding goes on, so a step's cost follows the responses still running rather than the longest one.
 *
 * Each row samples with its own seeded stream and keeps the same per-row state as `generate` (`newRowState`,
 * `stepRow`), so for the same row seeds the rollouts are those of `generate` over the prompts repeated G times —
 * the same tokens wherever the logits agree to the last bit, and the same distribution in any case (tested).
 */
import { noGrad, scope } from '../../engine/index.js';
import {
  checkGenerateInputs,
  checkGenerateOptions,
  type GenerateOptions,
  type GenerationInput,
  type GenerationOutput,
  newRowState,
  prefill,
  rowOutput,
  StepBuffers,
  type StepRow,
  stepRow,
  stepRows,
} from '../../io/generate.js';
import type { Glm4vForConditionalGeneration } from '../../model/glm4v.js';

export interface GroupedOptions extends Omit<GenerateOptions, 'rowSeeds' | 'seed'> {
  /** Sampler seed of each response, row r = prompt ⌊r / G⌋, response r mod G. */
  rowSeeds: readonly number[];
  /** Drop finished rows from the batch once they are at least this share of it (0 < share ≤ 1). Default 0.125. */
  compactShare?: number;
}

export interface GroupedStats {
  prefillMs: number;
  decodeMs: number;
  decodeSteps: number;
  /** Rows decoded summed over steps (what compaction saves against rows × steps). */
  rowSteps: number;
  /** Prompt rows prefilled (one per prompt instead of one per response). */
  prefillRows: number;
  tokensPerSecond: number;
}

/** G responses per input; outputs in row order (input 0's G responses, then input 1's, …). */
export async function generateGroups(
  model: Glm4vForConditionalGeneration,
  inputs: readonly GenerationInput[],
  groupSize: number,
  opts: GroupedOptions,
): Promise<{ outputs: GenerationOutput[]; stats: GroupedStats }> {
  const G = groupSize;
  if (!Number.isInteger(G) || G < 1) throw new Error(`generateGroups: groupSize must be a positive integer, got ${G}`);
  const vocab = model.config.text.vocabSize;
  checkGenerateOptions(opts, inputs.length, vocab);
  checkGenerateInputs(inputs, vocab, 'generateGroups');
  const B = inputs.length * G;
  if (opts.rowSeeds.length !== B)
    throw new Error(`generateGroups: rowSeeds has ${opts.rowSeeds.length} seeds for ${inputs.length} inputs × ${G}`);
  const share = opts.compactShare ?? 0.125;
  if (!(share > 0 && share <= 1)) throw new Error(`generateGroups: compactShare must be in (0, 1], got ${share}`);
  const stop = new Set(opts.stopTokenIds);
  const pad = opts.padTokenId ?? opts.stopTokenIds[0] ?? 0;
  const promptOf = (r: number) => Math.floor(r / G);
  const rows = Array.from({ length: B }, (_, r) => newRowState(inputs[promptOf(r)]!.inputIds, opts, opts.rowSeeds[r]!));
  const maxLen = Math.max(...inputs.map((i) => i.inputIds.length));
  const cache = model.newCache(maxLen + opts.maxNewTokens + (opts.forceAnswerIds?.length ?? 0) + 1);
  const t0 = performance.now();
  let prefillMs = 0;
  let steps = 0;
  let rowSteps = 0;
  const yieldEvery = opts.yieldEvery ?? 1;
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
      let ids = next;
      if (finished > 0 && finished >= share * live.length) {
        noGrad(() => cache.selectRows(running));
        live = running.map((k) => live[k]!);
        ids = running.map((k) => next[k]!);
      }
      // Rows that finished since the last compaction decode a pad (ignored). No mask: the cache keeps each row's left
      // padding from the prefill.
      if (yieldEvery > 0 && t % yieldEvery === 0) await new Promise((res) => setImmediate(res));
      const step = ids;
      logits = noGrad(() =>
        scope(() =>
          stepRows(
            model.forward({ inputIds: step.map((id) => [id]), cache, logitsToKeep: 1 }).logits,
            () => opts,
            bufs,
          ),
        ),
      );
      steps++;
      rowSteps += live.length;
    }
  } finally {
    cache.dispose();
  }
  const decodeMs = performance.now() - t0 - prefillMs;
  const outputs = rows.map((row, r) => rowOutput(row, inputs[promptOf(r)]!.inputIds.length, opts as GenerateOptions));
  const generated = rows.reduce((a, row) => a + row.tokens.length, 0);
  return {
    outputs,
    stats: {
      prefillMs,
      decodeMs,
      decodeSteps: steps,
      rowSteps,
      prefillRows: inputs.length,
      tokensPerSecond: decodeMs > 0 ? (generated / decodeMs) * 1000 : 0,
    },
  };
}
