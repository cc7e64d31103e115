/**
 * Rotary tables and 3D (T, H, W) position ids.
 *
 * Text (docs/design.md B.1–B.3): the first rotaryDim dims of each head rotate; frequency i ∈ [0, rotaryDim/2) takes its position
 * from axis T, H or W by `mrope_section` ([8,12,12] in the real models). GLM-4.1V rotates interleaved pairs
 * (2i, 2i+1), GLM-4.5V half-split pairs (i, i+rotaryDim/2); both use the same [B, L, rotaryDim/2] angle table.
 * Vision (docs/design.md A.3): 2D rope over the full head dim, half-split, angles [h·inv_freq ‖ w·inv_freq].
 * Angles follow the reference's float32 arithmetic (inv_freq, products and cos/sin rounded to float32).
 */
import { fromArray, type Tensor } from '../engine/index.js';

const f32 = Math.fround;

/** Special token ids the position and splice logic needs. */
export interface SpecialTokenIds {
  imageTokenId: number;
  videoStartTokenId: number;
  videoEndTokenId: number;
}

/** (t, h, w) patch grid of one image or video, as the processor returns it. */
export type Grid = readonly [number, number, number] | readonly number[];

/** Token ids of a batch, row-major [batch, length]. */
export interface TokenBatch {
  ids: Int32Array;
  batch: number;
  length: number;
}

/** inv_freq[i] = 1 / θ^(2i/dim) in float32, i < dim/2. */
export function inverseFrequencies(dim: number, theta: number): Float32Array {
  const out = new Float32Array(dim / 2);
  for (let i = 0; i < dim / 2; i++) out[i] = f32(1 / f32(theta ** f32((2 * i) / dim)));
  return out;
}

export const TEXT = 0;
export const IMAGE = 1;
export const VIDEO = 2;

/**
 * Token types of one row (0 text, 1 image, 2 video): an image token between video_start and video_end is a video
 * token (video frames are written with the image token), everything else that is not the image token is text.
 */
export function tokenTypes(ids: ArrayLike<number>, t: SpecialTokenIds, start = 0, end = ids.length): Uint8Array {
  const out = new Uint8Array(end - start);
  let inVideo = false;
  for (let i = start; i < end; i++) {
    const tok = ids[i] as number;
    if (tok === t.videoStartTokenId) inVideo = true;
    else if (tok === t.videoEndTokenId) inVideo = false;
    if (tok === t.imageTokenId) out[i - start] = inVideo ? VIDEO : IMAGE;
  }
  return out;
}

export interface RopeIndexOptions {
  imageGridThw?: readonly Grid[] | null;
  videoGridThw?: readonly Grid[] | null;
  /** [batch, length] of 0/1; pads (0) get position 1 and are skipped when assigning positions. */
  attentionMask?: Uint8Array | Int32Array | null;
  /** Packed rows: segment offsets [0, …, length]; each segment is positioned on its own, from 0. */
  segments?: readonly number[] | null;
  spatialMergeSize: number;
  tokens: SpecialTokenIds;
}

export interface RopeIndex {
  /** [3, batch, length] (T, H, W), row-major. */
  positionIds: Int32Array;
  /** Per row: max position + 1 − length (padded length), so a decode step at absolute index i sits at i + delta. */
  ropeDeltas: number[];
}

/**
 * The reference `get_rope_index` (docs/design.md B.3): text runs continue from (max so far) + 1 on all axes; an image run gets
 * (st + t, st + row, st + col) over its merged grid; every video temporal group is placed like a one-frame image
 * (the timestamp text between groups resets it). Grids are consumed in order across the batch. Unlike the reference,
 * run lengths are checked against the grids, and unused grids are an error.
 */
export function getRopeIndex(batch: TokenBatch, o: RopeIndexOptions): RopeIndex {
  const { ids, batch: B, length: L } = batch;
  const m = o.spatialMergeSize;
  const images = o.imageGridThw ?? [];
  const videos = o.videoGridThw ?? [];
  const pos = new Int32Array(3 * B * L).fill(1);
  const deltas: number[] = [];
  let imageIdx = 0;
  let videoIdx = 0;
  let videoGroup = 0;
  const mask = o.attentionMask ?? null;
  const segs = o.segments ?? [0, L];

  for (let b = 0; b < B; b++) {
    let rowMax = -1;
    for (let s = 0; s + 1 < segs.length; s++) {
      // Real (unmasked) token indices of this segment.
      const idx: number[] = [];
      for (let l = segs[s] as number; l < (segs[s + 1] as number); l++)
        if (!mask || mask[b * L + l]) idx.push(b * L + l);
      const segIds = idx.map((i) => ids[i] as number);
      const types = tokenTypes(segIds, o.tokens);
      let st = 0; // next start position = (max so far) + 1
      let k = 0;
      const set = (j: number, t: number, h: number, w: number) => {
        const flat = idx[j] as number;
        pos[flat] = t;
        pos[B * L + flat] = h;
        pos[2 * B * L + flat] = w;
      };
      while (k < types.length) {
        const type = types[k] as number;
        let e = k;
        while (e < types.length && types[e] === type) e++;
        const runLen = e - k;
        if (type === TEXT) {
          for (let j = 0; j < runLen; j++) set(k + j, st + j, st + j, st + j);
          st += runLen;
        } else {
          let g: Grid;
          let t: number;
          if (type === IMAGE) {
            if (imageIdx >= images.length)
              throw new Error(
                `getRopeIndex: input_ids contain more image runs than image_grid_thw entries (${images.length}); ` +
                  `row ${b} position ${idx[k]! - b * L}`,
              );
            g = images[imageIdx++] as Grid;
            t = g[0] as number;
          } else {
            if (videoIdx >= videos.length)
              throw new Error(
                `getRopeIndex: input_ids contain more video frame groups than video_grid_thw provides (${videos.length} video(s)); ` +
                  `row ${b} position ${idx[k]! - b * L}`,
              );
            g = videos[videoIdx] as Grid;
            t = 1; // each temporal group is one run, placed like a one-frame image
            if (++videoGroup >= (g[0] as number)) {
              videoIdx++;
              videoGroup = 0;
            }
          }
          const gh = (g[1] as number) / m;
          const gw = (g[2] as number) / m;
          if (!Number.isInteger(gh) || !Number.isInteger(gw))
            throw new Error(`getRopeIndex: grid [${g}] is not divisible by spatial_merge_size ${m}`);
          const expected = t * gh * gw;
          if (runLen !== expected)
            throw new Error(
              `getRopeIndex: ${type === IMAGE ? 'image' : 'video frame group'} run of ${runLen} tokens at row ${b} position ` +
                `${idx[k]! - b * L} does not match its grid [${g}] (${expected} tokens after the ${m}×${m} merge)`,
            );
          let j = k;
          for (let ti = 0; ti < t; ti++)
            for (let hi = 0; hi < gh; hi++) for (let wi = 0; wi < gw; wi++) set(j++, st + ti, st + hi, st + wi);
          st += Math.max(t, gh, gw);
        }
        k = e;
      }
      rowMax = Math.max(rowMax, st - 1);
    }
    deltas.push(rowMax + 1 - L);
  }
  if (imageIdx !== images.length)
    throw new Error(
      `getRopeIndex: image_grid_thw has ${images.length} entries but input_ids contain ${imageIdx} image run(s)`,
    );
  if (videoIdx !== videos.length || videoGroup !== 0) {
    const groups = videos.reduce((a, g) => a + (g[0] as number), 0);
    const seen = videos.slice(0, videoIdx).reduce((a, g) => a + (g[0] as number), 0) + videoGroup;
    throw new Error(
      `getRopeIndex: video_grid_thw describes ${groups} frame group(s) but input_ids contain ${seen} video run(s)`,
    );
  }
  return { positionIds: pos, ropeDeltas: deltas };
}

/**
 * Text rope tables for positions [3, B, L]: cos/sin [B, L, rotaryDim/2] where frequency i uses axis a(i) by
 * mrope_section.
 */
export function textRopeTables(
  positionIds: Int32Array,
  B: number,
  L: number,
  rotaryDim: number,
  theta: number,
  mropeSection: readonly [number, number, number],
): { cos: Tensor; sin: Tensor } {
  const half = rotaryDim / 2;
  const inv = inverseFrequencies(rotaryDim, theta);
  const axis = new Uint8Array(half);
  for (let i = 0; i < half; i++) axis[i] = i < mropeSection[0] ? 0 : i < mropeSection[0] + mropeSection[1] ? 1 : 2;
  const cos = new Float32Array(B * L * half);
  const sin = new Float32Array(B * L * half);
  for (let bl = 0; bl < B * L; bl++) {
    for (let i = 0; i < half; i++) {
      const p = positionIds[(axis[i] as number) * B * L + bl] as number;
      const a = f32((inv[i] as number) * p);
      cos[bl * half + i] = Math.cos(a);
      sin[bl * half + i] = Math.sin(a);
    }
  }
  return { cos: fromArray(cos, [B, L, half]), sin: fromArray(sin, [B, L, half]) };
}

/** Patch (row, col) of every vision row in the processor's merge-window order, per temporal slice. */
export interface VisionLayout {
  hpos: Int32Array;
  wpos: Int32Array;
  /** Attention segments: one per temporal slice of each grid. */
  cuSeqlens: number[];
  /** For every row, the (h, w) of its grid (targets of the position-table resampling). */
  gridH: Int32Array;
  gridW: Int32Array;
}

/** Checks every grid is three positive integers with h, w divisible by the merge size; returns the patch count. */
export function checkGrids(grids: readonly Grid[], merge: number, what = 'grid_thw'): number {
  if (!Array.isArray(grids))
    throw new Error(`${what}: expected a list of (t, h, w) grids, found ${JSON.stringify(grids)}`);
  let n = 0;
  for (const [i, g] of grids.entries()) {
    if (!Array.isArray(g) || g.length !== 3 || !g.every((x) => Number.isInteger(x) && (x as number) > 0))
      throw new Error(`${what}[${i}]: expected three positive integers (t, h, w), found ${JSON.stringify(g)}`);
    if ((g[1] as number) % merge !== 0 || (g[2] as number) % merge !== 0)
      throw new Error(`${what}[${i}]: h and w of [${g}] must be multiples of spatial_merge_size ${merge}`);
    n += (g[0] as number) * (g[1] as number) * (g[2] as number);
  }
  return n;
}

export function visionLayout(grids: readonly Grid[], merge: number, what = 'grid_thw'): VisionLayout {
  const n = checkGrids(grids, merge, what);
  const hpos = new Int32Array(n);
  const wpos = new Int32Array(n);
  const gridH = new Int32Array(n);
  const gridW = new Int32Array(n);
  const cu = [0];
  let r = 0;
  for (const g of grids) {
    const [t, h, w] = g as [number, number, number];
    for (let ti = 0; ti < t; ti++) {
      for (let hb = 0; hb < h / merge; hb++)
        for (let wb = 0; wb < w / merge; wb++)
          for (let mh = 0; mh < merge; mh++)
            for (let mw = 0; mw < merge; mw++) {
              hpos[r] = hb * merge + mh;
              wpos[r] = wb * merge + mw;
              gridH[r] = h;
              gridW[r] = w;
              r++;
            }
      cu.push(r);
    }
  }
  return { hpos, wpos, cuSeqlens: cu, gridH, gridW };
}

/** ViT rope tables [1, N, headDim/2] = angles [h·inv (headDim/4) ‖ w·inv (headDim/4)]. */
export function visionRopeTables(layout: VisionLayout, headDim: number, theta: number): { cos: Tensor; sin: Tensor } {
  const quarter = headDim / 4;
  const half = headDim / 2;
  const inv = inverseFrequencies(half, theta);
  const N = layout.hpos.length;
  const cos = new Float32Array(N * half);
  const sin = new Float32Array(N * half);
  for (let r = 0; r < N; r++) {
    const h = layout.hpos[r] as number;
    const w = layout.wpos[r] as number;
    for (let j = 0; j < quarter; j++) {
      const ah = f32(h * (inv[j] as number));
      const aw = f32(w * (inv[j] as number));
      cos[r * half + j] = Math.cos(ah);
      sin[r * half + j] = Math.sin(ah);
      cos[r * half + quarter + j] = Math.cos(aw);
      sin[r * half + quarter + j] = Math.sin(aw);
    }
  }
  return { cos: fromArray(cos, [1, N, half]), sin: fromArray(sin, [1, N, half]) };
}

/**
 * grid_sample coordinates of every row on its own grid, as the reference computes them in float32:
 * x = ((w + 0.5) / W) · 2 − 1, y = ((h + 0.5) / H) · 2 − 1.
 */
export function positionTableCoords(layout: VisionLayout): { gx: Float64Array; gy: Float64Array } {
  const N = layout.hpos.length;
  const gx = new Float64Array(N);
  const gy = new Float64Array(N);
  for (let r = 0; r < N; r++) {
    gx[r] = f32(f32(f32(f32((layout.wpos[r] as number) + 0.5) / (layout.gridW[r] as number)) * 2) - 1);
    gy[r] = f32(f32(f32(f32((layout.hpos[r] as number) + 0.5) / (layout.gridH[r] as number)) * 2) - 1);
  }
  return { gx, gy };
}
