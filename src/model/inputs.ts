/**
 * The inputs of one Glm4vForConditionalGeneration forward (docs/design.md B.3, B.4) and their checks: token ids,
 * attention masks, packed-sample offsets and explicit 3D positions, each accepted as a tensor or nested arrays and
 * normalised to flat typed arrays with clear errors (what was expected, what was found).
 */
import type { Tensor } from '../engine/index.js';
import type { Grid, TokenBatch } from './rope.js';
import type { KVCache, TextContext } from './text.js';

export type Rows = readonly (readonly number[])[];

export interface Glm4vInputs {
  /** Token ids [B, L]: an int32 tensor, nested arrays, or one flat row. */
  inputIds: Tensor | Rows | readonly number[];
  /** [B, L] (or [B, past + L] with a cache) of 1 = token, 0 = padding. Left or right padding per row. */
  attentionMask?: Tensor | Rows | readonly number[] | null;
  /** Image patch rows [N, 1176] (processor output), concatenated over images, with their grids. */
  pixelValues?: Tensor | Float32Array | null;
  imageGridThw?: readonly Grid[] | null;
  pixelValuesVideos?: Tensor | Float32Array | null;
  videoGridThw?: readonly Grid[] | null;
  /** Vision features already computed (skips the tower): [image tokens, hidden], [video tokens, hidden]. */
  imageEmbeds?: Tensor | null;
  videoEmbeds?: Tensor | null;
  /** Explicit 3D positions: [3, B, L] or [3, L] (same for every row). Default: computed as the reference does. */
  positionIds?: Tensor | Int32Array | readonly Rows[] | Rows | null;
  /** Packed samples in each row: offsets [0, …, L]; attention, positions and loss stay inside each sample. */
  cuSeqlens?: readonly number[] | null;
  /** Targets aligned with inputIds (the model shifts them): −100 = ignored. */
  labels?: Tensor | Rows | readonly number[] | null;
  /** Per-token loss weights aligned with labels (shifted the same way). */
  labelWeights?: Tensor | null;
  /** 'mean' over counted tokens (default), 'sum', or 'none' (per-position losses [B, L], 0 where ignored). */
  lossReduction?: 'mean' | 'sum' | 'none';
  /** Generation: keys/values of earlier steps. Inference only: a forward with a cache records no gradients. */
  cache?: KVCache | null;
  /** Only the last n positions get logits (0 = all). */
  logitsToKeep?: number;
  /** Return the reference's hidden_states tuple (embeddings, each layer's output, the final normed output). */
  outputHiddenStates?: boolean;
  /** MoE: return per-layer expert counts (and, with auxLoss, the sequence-level balance loss). */
  outputRouterStats?: boolean;
  auxLoss?: boolean;
}

export function toTokenBatch(x: Tensor | Rows | readonly number[], what: string, allowNeg = 0): TokenBatch {
  if (!Array.isArray(x) && typeof (x as Tensor).toInt32 === 'function') {
    const t = x as Tensor;
    if (t.dtype !== 'int32') throw new Error(`${what}: expected an int32 tensor, got ${t.dtype}`);
    if (t.ndim === 1) return { ids: t.toInt32(), batch: 1, length: t.shape[0] as number };
    if (t.ndim !== 2) throw new Error(`${what}: expected [batch, length], got [${t.shape}]`);
    return { ids: t.toInt32(), batch: t.shape[0] as number, length: t.shape[1] as number };
  }
  const arr = x as readonly unknown[];
  const rows: readonly unknown[] = arr.length > 0 && Array.isArray(arr[0]) ? arr : [arr];
  const L = (rows[0] as readonly unknown[]).length;
  if (L === 0) throw new Error(`${what}: rows are empty`);
  const ids = new Int32Array(rows.length * L);
  rows.forEach((r, b) => {
    if (!Array.isArray(r) || r.length !== L)
      throw new Error(
        `${what}: row ${b} has ${Array.isArray(r) ? r.length : 'no'} entries, expected ${L} (rows must be padded to one length)`,
      );
    r.forEach((v, l) => {
      if (!Number.isInteger(v) || (v < 0 && v !== allowNeg))
        throw new Error(`${what}: entry [${b}, ${l}] is ${JSON.stringify(v)}, expected a non-negative integer`);
      ids[b * L + l] = v;
    });
  });
  return { ids, batch: rows.length, length: L };
}

export function maskShape(m: NonNullable<Glm4vInputs['attentionMask']>): [number, number] {
  if (!Array.isArray(m)) {
    const t = m as Tensor;
    return t.ndim === 1 ? [1, t.shape[0] as number] : [t.shape[0] as number, t.shape[1] as number];
  }
  const rows = Array.isArray(m[0]) ? (m as Rows) : [m as readonly number[]];
  return [rows.length, rows[0]!.length];
}

export function toMask(m: NonNullable<Glm4vInputs['attentionMask']>, B: number, L: number, what: string): Uint8Array {
  const shape = maskShape(m);
  if (shape[0] !== B || shape[1] !== L) throw new Error(`${what}: expected [${B}, ${L}], got [${shape}]`);
  const flat = Array.isArray(m)
    ? Array.isArray(m[0])
      ? (m as Rows).flat()
      : (m as readonly number[])
    : Array.from((m as Tensor).toFloat64());
  const out = new Uint8Array(B * L);
  flat.forEach((v, i) => {
    if (v !== 0 && v !== 1) throw new Error(`${what}: entry ${i} is ${v}; expected 0 or 1`);
    out[i] = v;
  });
  return out;
}

export function checkSegments(cu: readonly number[], L: number): number[] {
  const c = [...cu];
  if (
    c.length < 2 ||
    c[0] !== 0 ||
    c[c.length - 1] !== L ||
    c.some((v, i) => !Number.isInteger(v) || (i > 0 && v <= c[i - 1]!))
  )
    throw new Error(`cuSeqlens: expected strictly increasing offsets from 0 to the row length ${L}, got [${c}]`);
  return c;
}

export function toPositions(p: NonNullable<Glm4vInputs['positionIds']>, B: number, L: number): Int32Array {
  let shape: number[];
  let flat: ArrayLike<number>;
  if (p instanceof Int32Array) {
    if (p.length === 3 * B * L) return p;
    if (p.length === 3 * L) {
      shape = [3, L];
      flat = p;
    } else throw new Error(`positionIds: ${p.length} values fit neither [3, ${B}, ${L}] nor [3, ${L}]`);
  } else if (!Array.isArray(p)) {
    const t = p as Tensor;
    shape = [...t.shape];
    flat = t.toInt32();
  } else {
    const a = p as unknown[];
    if (Array.isArray(a[0]) && Array.isArray((a[0] as unknown[])[0])) {
      shape = [a.length, (a[0] as unknown[]).length, ((a[0] as unknown[])[0] as unknown[]).length];
      flat = (a as number[][][]).flat(2);
    } else {
      shape = [a.length, (a[0] as unknown[]).length];
      flat = (a as number[][]).flat();
    }
  }
  const ok3 = shape.length === 3 && shape[0] === 3 && shape[1] === B && shape[2] === L;
  const ok2 = shape.length === 2 && shape[0] === 3 && shape[1] === L;
  if (!ok3 && !ok2) throw new Error(`positionIds: expected [3, ${B}, ${L}] or [3, ${L}], got [${shape}]`);
  if (flat.length !== 3 * (ok3 ? B : 1) * L) throw new Error('positionIds: ragged nested arrays');
  const out = new Int32Array(3 * B * L);
  for (let a = 0; a < 3; a++)
    for (let b = 0; b < B; b++)
      for (let l = 0; l < L; l++) {
        const v = flat[ok3 ? a * B * L + b * L + l : a * L + l] as number;
        if (!Number.isInteger(v)) throw new Error(`positionIds: entry [${a}, ${b}, ${l}] is ${v}, expected an integer`);
        out[a * B * L + b * L + l] = v;
      }
  return out;
}

export function deltasOf(pos: Int32Array, B: number, L: number, past: number): number[] {
  const out: number[] = [];
  for (let b = 0; b < B; b++) {
    let mx = Number.NEGATIVE_INFINITY;
    for (let a = 0; a < 3; a++) for (let l = 0; l < L; l++) mx = Math.max(mx, pos[a * B * L + b * L + l] as number);
    out.push(mx + 1 - (past + L));
  }
  return out;
}

export function auxSequences(
  B: number,
  L: number,
  cu: number[] | null,
  mask: Uint8Array | null,
): NonNullable<TextContext['auxSequences']> {
  const out: NonNullable<TextContext['auxSequences']> = [];
  for (let b = 0; b < B; b++) {
    const segs = cu ?? [0, L];
    for (let s = 0; s + 1 < segs.length; s++) {
      const start = b * L + segs[s]!;
      const end = b * L + segs[s + 1]!;
      out.push({ start, end, mask: mask ? mask.subarray(start, end) : null });
    }
  }
  return out;
}
