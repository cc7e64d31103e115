/** Shared helpers for the model tests: fixture cases, greedy decoding, comparisons. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { loadSafetensors, noGrad, type Tensor } from '../../src/engine/index.js';
import type { Glm4vForConditionalGeneration } from '../../src/model/glm4v.js';
import type { Glm4vInputs } from '../../src/model/inputs.js';

export const FIXTURES = join(import.meta.dirname, '../fixtures/parity');

export interface FixtureCase {
  name: string;
  /** [B][L] */
  ids: number[][];
  mask: number[][];
  inputs: Glm4vInputs;
  expected: {
    position_ids: number[][] | number[][][];
    rope_deltas: number[];
    generated_tokens?: number[] | number[][];
    router_topk_experts?: Record<string, number[][]>;
    layer1_router_topk_experts?: number[][];
    native_hf_forward: boolean;
  };
  /** Reference tensors: logits [B?, L, V], hidden_states [3, B?, L, H], image/video embeds, generate scores. */
  ref: Map<string, Tensor>;
  transformers: string;
}

/** Reads every case of a fixture folder (the shared 4.57.6 layout or our make_fixtures.py layout). */
export function loadFixture(dir: string): FixtureCase[] {
  const inputs = JSON.parse(readFileSync(join(dir, 'inputs.json'), 'utf8'));
  const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8'));
  const px = loadSafetensors(join(dir, 'pixel_values.safetensors'));
  const ref = loadSafetensors(join(dir, 'logits.safetensors'));
  const out: FixtureCase[] = [];
  for (const [name, c] of Object.entries(inputs.cases as Record<string, Record<string, unknown>>)) {
    const ids = (Array.isArray((c.input_ids as unknown[])[0]) ? c.input_ids : [c.input_ids]) as number[][];
    const mask = (
      Array.isArray((c.attention_mask as unknown[])[0]) ? c.attention_mask : [c.attention_mask]
    ) as number[][];
    const uses = c.uses as string[];
    const rows = c.pixel_rows as [number, number] | null | undefined;
    const image = px.get('pixel_values')!;
    const caseRef = new Map<string, Tensor>();
    for (const [k, v] of ref) if (k.startsWith(`${name}.`)) caseRef.set(k.slice(name.length + 1), v);
    out.push({
      name,
      ids,
      mask,
      inputs: {
        inputIds: ids,
        attentionMask: mask.some((r) => r.includes(0)) ? mask : null,
        pixelValues: uses.includes('pixel_values') ? (rows ? image.slice(0, rows[0], rows[1]) : image) : null,
        imageGridThw: c.image_grid_thw as number[][] | null,
        pixelValuesVideos: uses.includes('pixel_values_videos') ? px.get('pixel_values_videos')! : null,
        videoGridThw: c.video_grid_thw as number[][] | null,
      },
      expected: expected.cases[name],
      ref: caseRef,
      transformers: expected.transformers_version,
    });
  }
  return out;
}

export function maxAbsDiff(a: Tensor | Float32Array, b: Tensor | Float32Array): number {
  const x = a instanceof Float32Array ? a : a.toFloat32();
  const y = b instanceof Float32Array ? b : b.toFloat32();
  if (x.length !== y.length) throw new Error(`maxAbsDiff: sizes differ (${x.length} vs ${y.length})`);
  let m = 0;
  for (let i = 0; i < x.length; i++) m = Math.max(m, Math.abs((x[i] as number) - (y[i] as number)));
  return m;
}

/** Rows of a [L, V] float array as plain arrays. */
export function argmaxRows(t: Tensor): number[] {
  const V = t.shape[t.ndim - 1] as number;
  const d = t.toFloat32();
  const out: number[] = [];
  for (let r = 0; r < d.length / V; r++) {
    let best = 0;
    for (let v = 1; v < V; v++) if ((d[r * V + v] as number) > (d[r * V + best] as number)) best = v;
    out.push(best);
  }
  return out;
}

/**
 * Greedy decoding of `steps` tokens per row: with a KV cache (prefill, then one-token steps) or by recomputing the
 * whole sequence each step. Returns the new tokens per row and the logits of each step [B, V].
 */
export function greedy(
  model: Glm4vForConditionalGeneration,
  inputs: Glm4vInputs,
  steps: number,
  useCache: boolean,
): { tokens: number[][]; stepLogits: Tensor[] } {
  return noGrad(() => {
    const ids = (inputs.inputIds as number[][]).map((r) => [...r]);
    const mask = inputs.attentionMask ? (inputs.attentionMask as number[][]).map((r) => [...r]) : null;
    const B = ids.length;
    const tokens: number[][] = Array.from({ length: B }, () => []);
    const stepLogits: Tensor[] = [];
    const cache = useCache ? model.newCache(8) : null;
    try {
      for (let s = 0; s < steps; s++) {
        let out: Tensor;
        if (cache && s > 0) {
          out = model.forward({ inputIds: tokens.map((t) => [t[t.length - 1]!]), cache }).logits;
        } else {
          out = model.forward({
            ...inputs,
            inputIds: ids,
            attentionMask: mask,
            cache,
            logitsToKeep: 1,
          }).logits;
        }
        const last = out.select(1, out.shape[1]! - 1); // [B, V]
        stepLogits.push(last);
        const next = argmaxRows(last);
        next.forEach((t, b) => {
          tokens[b]!.push(t);
          ids[b]!.push(t);
          if (mask) mask[b]!.push(1);
        });
      }
    } finally {
      cache?.dispose();
    }
    return { tokens, stepLogits };
  });
}
