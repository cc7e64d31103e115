/**
 * Sequence packing: variable-length examples go into fixed-length sequences (bins of `seqLen` tokens) by best fit,
 * and each forward row is a run of bins. Attention, 3D positions and loss stay inside each example through the
 * row's segment offsets (`cuSeqlens`): a packed row computes exactly what its examples compute one by one.
 *
 * A row is the bins' examples laid end to end without each bin's tail padding (padding costs compute and changes
 * nothing), padded once at its end to a multiple of `padMultiple` with a segment of its own that has no loss, so
 * step shapes repeat and pooled buffers are reused.
 */
import { fromArray } from '../engine/index.js';
import type { Glm4vInputs } from '../model/inputs.js';
import type { Grid } from '../model/rope.js';
import { concatFloat32 } from '../util/arrays.js';
import { type Example, IGNORE } from './encode.js';

export interface Bin {
  examples: Example[];
  /** Tokens used. */
  used: number;
}

/** Best-fit packing into at most `maxBins` bins of `seqLen`. */
export class Packer {
  readonly bins: Bin[] = [];

  constructor(
    readonly seqLen: number,
    readonly maxBins: number,
  ) {
    if (!Number.isInteger(seqLen) || seqLen < 2)
      throw new Error(`Packer: seqLen must be an integer ≥ 2, got ${seqLen}`);
    if (!Number.isInteger(maxBins) || maxBins < 1)
      throw new Error(`Packer: maxBins must be a positive integer, got ${maxBins}`);
  }

  /**
   * Places the example in the fullest bin it fits, or a new bin while fewer than maxBins exist. Returns false when it
   * fits nowhere (the batch is full). An example longer than seqLen is an error: fit it first (`fitExample`).
   */
  add(ex: Example): boolean {
    const n = ex.ids.length;
    if (n > this.seqLen)
      throw new Error(`Packer: example ${ex.id} has ${n} tokens, more than the sequence length ${this.seqLen}`);
    let best: Bin | null = null;
    for (const b of this.bins) if (this.seqLen - b.used >= n && (!best || b.used > best.used)) best = b;
    if (!best) {
      if (this.bins.length >= this.maxBins) return false;
      best = { examples: [], used: 0 };
      this.bins.push(best);
    }
    best.examples.push(ex);
    best.used += n;
    return true;
  }

  get tokens(): number {
    return this.bins.reduce((a, b) => a + b.used, 0);
  }

  /** Real tokens over the capacity of maxBins fixed-length sequences. */
  efficiency(): number {
    return this.tokens / (this.maxBins * this.seqLen);
  }
}

export interface PackedRow {
  /** [L] ids of one row (batch 1). */
  inputIds: Int32Array;
  labels: Int32Array;
  /** Per-token loss weights (only for per-sample loss averaging). */
  weights: Float32Array | null;
  /** Segment offsets [0, …, L]: one segment per example, plus the padding segment if any. */
  cuSeqlens: number[];
  pixelValues: Float32Array | null;
  imageGridThw: Grid[];
  pixelValuesVideos: Float32Array | null;
  videoGridThw: Grid[];
  /** Non-padding tokens. */
  realTokens: number;
  /** Labels that count. */
  targets: number;
  examples: number;
}

/** The model's inputs for one packed row (batch 1), labels included. Makes tensors: call it inside a scope. */
export function rowInputs(row: PackedRow): Glm4vInputs {
  const L = row.inputIds.length;
  return {
    inputIds: fromArray(row.inputIds, [1, L], 'int32'),
    labels: fromArray(row.labels, [1, L], 'int32'),
    labelWeights: row.weights ? fromArray(row.weights, [1, L]) : null,
    cuSeqlens: row.cuSeqlens,
    pixelValues: row.pixelValues,
    imageGridThw: row.imageGridThw.length ? row.imageGridThw : null,
    pixelValuesVideos: row.pixelValuesVideos,
    videoGridThw: row.videoGridThw.length ? row.videoGridThw : null,
  };
}

export interface RowOptions {
  /** Pad the row to a multiple of this (default 1: no padding). */
  padMultiple?: number;
  /** Token used for padding (must not be a media token). */
  padId: number;
  /**
   * Round the row's image patches (and, separately, video patches) up to a multiple of `bucket` with a blank image
   * (a blank one-frame video) in the padding segment: no loss, its own attention span, so it changes no loss or
   * gradient. Steps then repeat a few vision shapes, and the engine's buffer pool (exact sizes) reuses their buffers
   * instead of allocating fresh ones every step.
   */
  visionBucket?: {
    bucket: number;
    imageId: number;
    beginImageId: number;
    endImageId: number;
    beginVideoId: number;
    endVideoId: number;
    mergeSize: number;
  };
  /**
   * Where the row's joined pixel values go (a `BufferRecycler`'s `take`, reused step after step); default: a fresh
   * array. The row must not be used once the buffer is handed out again.
   */
  pixelBuffer?: (n: number) => Float32Array;
}

/** Lays examples end to end in one row with their segment offsets and visual inputs in order. */
export function assembleRow(examples: readonly Example[], opts: RowOptions): PackedRow {
  if (examples.length === 0) throw new Error('assembleRow: no examples');
  const real = examples.reduce((a, e) => a + e.ids.length, 0);
  const mult = opts.padMultiple ?? 1;
  // Blank media rounding the vision batches up to the bucket (see RowOptions.visionBucket).
  const vb = opts.visionBucket;
  const blankGrid = (kind: 'images' | 'videos'): Grid | null => {
    if (!vb || vb.bucket <= 0) return null;
    const m2 = vb.mergeSize * vb.mergeSize;
    if (vb.bucket % m2 !== 0)
      throw new Error(`assembleRow: the vision bucket (${vb.bucket}) must be a multiple of mergeSize² (${m2})`);
    let patches = 0;
    for (const e of examples) for (const m of e[kind]) patches += m.grid[0] * m.grid[1] * m.grid[2];
    const deficit = patches > 0 ? Math.ceil(patches / vb.bucket) * vb.bucket - patches : 0;
    return deficit > 0 ? [1, vb.mergeSize, deficit / vb.mergeSize] : null;
  };
  const blankImage = blankGrid('images');
  const blankVideo = blankGrid('videos');
  const tokensOf = (g: Grid | null) => (g ? (g[1] * g[2]) / (vb!.mergeSize * vb!.mergeSize) : 0);
  // <|begin_of_image|> <|image|>… <|end_of_image|>; a video wraps that in <|begin_of_video|> … <|end_of_video|>.
  const blankTokens = (blankImage ? tokensOf(blankImage) + 2 : 0) + (blankVideo ? tokensOf(blankVideo) + 4 : 0);
  const L = Math.ceil((real + blankTokens) / mult) * mult;
  const inputIds = new Int32Array(L).fill(opts.padId);
  const labels = new Int32Array(L).fill(IGNORE);
  const cu = [0];
  let o = 0;
  let targets = 0;
  const images: Float32Array[] = [];
  const videos: Float32Array[] = [];
  const imageGridThw: Grid[] = [];
  const videoGridThw: Grid[] = [];
  for (const ex of examples) {
    if (ex.ids.length !== ex.labels.length)
      throw new Error(`assembleRow: example ${ex.id} has ${ex.ids.length} ids but ${ex.labels.length} labels`);
    inputIds.set(ex.ids, o);
    labels.set(ex.labels, o);
    o += ex.ids.length;
    cu.push(o);
    targets += ex.targets;
    for (const m of ex.images) {
      images.push(m.pixelValues);
      imageGridThw.push(m.grid);
    }
    for (const m of ex.videos) {
      videos.push(m.pixelValues);
      videoGridThw.push(m.grid);
    }
  }
  if (L > real) cu.push(L);
  if (blankImage || blankVideo) {
    let p = real;
    const put = (g: Grid) => {
      inputIds[p++] = vb!.beginImageId;
      inputIds.fill(vb!.imageId, p, p + tokensOf(g));
      p += tokensOf(g);
      inputIds[p++] = vb!.endImageId;
    };
    // Zero pixels, as many values per patch as the row's real media have.
    const rowLen = (parts: Float32Array[], grids: Grid[]) =>
      parts.length ? parts[0]!.length / (grids[0]![0] * grids[0]![1] * grids[0]![2]) : 0;
    if (blankImage) {
      put(blankImage);
      images.push(new Float32Array(blankImage[1] * blankImage[2] * rowLen(images, imageGridThw)));
      imageGridThw.push(blankImage);
    }
    if (blankVideo) {
      inputIds[p++] = vb!.beginVideoId;
      put(blankVideo);
      inputIds[p++] = vb!.endVideoId;
      videos.push(new Float32Array(blankVideo[1] * blankVideo[2] * rowLen(videos, videoGridThw)));
      videoGridThw.push(blankVideo);
    }
  }
  return {
    inputIds,
    labels,
    weights: null,
    cuSeqlens: cu,
    pixelValues: concatFloat32(images, opts.pixelBuffer),
    imageGridThw,
    pixelValuesVideos: concatFloat32(videos, opts.pixelBuffer),
    videoGridThw,
    realTokens: real,
    targets,
    examples: examples.length,
  };
}

/**
 * The examples of one packed sequence as a single example: one attention segment whose positions run on across the
 * documents (concatenated pre-training, as long-context training does with short documents). Each document still
 * starts with its own prefix, and its first label stays ignored.
 */
export function joinExamples(exs: readonly Example[]): Example {
  if (exs.length === 1) return exs[0]!;
  const n = exs.reduce((a, e) => a + e.ids.length, 0);
  const ids = new Int32Array(n);
  const labels = new Int32Array(n);
  let o = 0;
  for (const e of exs) {
    ids.set(e.ids, o);
    labels.set(e.labels, o);
    o += e.ids.length;
  }
  return {
    id: exs.map((e) => e.id).join('+'),
    group: exs[0]!.group,
    ids,
    labels,
    targets: exs.reduce((a, e) => a + e.targets, 0),
    images: exs.flatMap((e) => e.images),
    videos: exs.flatMap((e) => e.videos),
  };
}

/**
 * Splits bins into micro-batches of `microRows` bins (in order) and assembles each as one row. `isolation`: each
 * example its own attention segment (`sample`, the default), or each packed sequence one segment (`sequence`).
 */
export function microBatches(
  bins: readonly Bin[],
  microRows: number,
  opts: RowOptions & { isolation?: 'sample' | 'sequence' },
): PackedRow[] {
  const rows: PackedRow[] = [];
  for (let i = 0; i < bins.length; i += microRows) {
    const group = bins.slice(i, i + microRows).filter((b) => b.examples.length);
    const exs =
      opts.isolation === 'sequence' ? group.map((b) => joinExamples(b.examples)) : group.flatMap((b) => b.examples);
    if (exs.length) rows.push(assembleRow(exs, opts));
  }
  return rows;
}

/**
 * Per-sample loss averaging: the row with per-token weights 1 / (n_i · S), n_i the example's counted targets and S the
 * examples in the whole step, so the weighted token sum over the step is the mean over samples of each sample's mean
 * token loss.
 */
export function withSampleWeights(row: PackedRow, S: number): PackedRow {
  if (!(S > 0)) throw new Error(`withSampleWeights: the step's sample count must be positive, got ${S}`);
  const weights = new Float32Array(row.labels.length);
  for (let s = 0; s + 1 < row.cuSeqlens.length; s++) {
    const a = row.cuSeqlens[s]!;
    const b = row.cuSeqlens[s + 1]!;
    let n = 0;
    // The model never scores a segment's first label (it has no context): count as it does.
    for (let i = a + 1; i < b; i++) if (row.labels[i] !== IGNORE) n++;
    const w = n ? 1 / (n * S) : 0;
    for (let i = a; i < b; i++) if (row.labels[i] !== IGNORE) weights[i] = w;
  }
  return { ...row, weights };
}
