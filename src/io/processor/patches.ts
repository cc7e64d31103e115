/**
 * The pixel path shared by images and videos, as Hugging Face's Glm4vImageProcessor / Glm4vVideoProcessor compute
 * it: smart_resize to multiples of 28 within a pixel budget (an image counts as two frames), rescale by 1/255
 * (float64, then float32), CLIP mean/std normalisation in float32, then patchify into rows of 3·2·14·14 = 1176 values
 * ordered (channel, t, py, px), rows in merge-window-major order (t-group, hb, wb, mh, mw).
 */
import type { RgbImage } from '../image.js';
import { pyRound } from '../video.js';
import type { VisionProcessorConfig } from './config.js';

export interface SmartResizeOptions {
  /** Side multiple: patch_size * merge_size. Default 28. */
  factor?: number;
  /** Frames per temporal patch. Default 2. */
  temporalFactor?: number;
  /** Lower bound on t·h·w. Default 112·112. */
  minPixels?: number;
  /** Upper bound on t·h·w. Default 14·14·2·2·2·6144 (6144 tokens per image). */
  maxPixels?: number;
}

/**
 * Target (height, width) for `numFrames` frames of `height`×`width`, as the reference smart_resize computes it
 * (transformers 5.x: sides shorter than `factor` are first scaled up keeping the aspect ratio).
 * Throws on an aspect ratio above 200 or fewer frames than the temporal factor.
 */
export function smartResize(
  numFrames: number,
  height: number,
  width: number,
  opts: SmartResizeOptions = {},
): { height: number; width: number } {
  const factor = opts.factor ?? 28;
  const temporalFactor = opts.temporalFactor ?? 2;
  const minPixels = opts.minPixels ?? 112 * 112;
  const maxPixels = opts.maxPixels ?? 14 * 14 * 2 * 2 * 2 * 6144;
  if (!Number.isInteger(height) || !Number.isInteger(width) || height <= 0 || width <= 0) {
    throw new Error(`smart_resize: expected a positive integer image size, found ${width}x${height} (width x height)`);
  }
  if (numFrames < temporalFactor) {
    throw new Error(`smart_resize: expected at least ${temporalFactor} frames (temporal factor), found ${numFrames}`);
  }
  if (height < factor || width < factor) {
    const s = Math.max(factor / height, factor / width);
    height = Math.trunc(height * s);
    width = Math.trunc(width * s);
  }
  const ratio = Math.max(height, width) / Math.min(height, width);
  if (ratio > 200) {
    throw new Error(
      `smart_resize: expected an aspect ratio of at most 200, found ${ratio.toFixed(1)} (${width}x${height} after upscaling)`,
    );
  }
  let hBar = pyRound(height / factor) * factor;
  let wBar = pyRound(width / factor) * factor;
  const tBar = pyRound(numFrames / temporalFactor) * temporalFactor;
  if (tBar * hBar * wBar > maxPixels) {
    const beta = Math.sqrt((numFrames * height * width) / maxPixels);
    hBar = Math.max(factor, Math.floor(height / beta / factor) * factor);
    wBar = Math.max(factor, Math.floor(width / beta / factor) * factor);
  } else if (tBar * hBar * wBar < minPixels) {
    const beta = Math.sqrt(minPixels / (numFrames * height * width));
    hBar = Math.ceil((height * beta) / factor) * factor;
    wBar = Math.ceil((width * beta) / factor) * factor;
  }
  return { height: hBar, width: wBar };
}

export type GridThw = [number, number, number];

/** Per-channel lookup from uint8 to the normalised float32 value, computed in the reference's precisions. */
export function normalisationTable(cfg: VisionProcessorConfig): Float32Array[] {
  const tables: Float32Array[] = [];
  for (let c = 0; c < 3; c++) {
    const t = new Float32Array(256);
    const mean = Math.fround(cfg.imageMean[c]);
    const std = Math.fround(cfg.imageStd[c]);
    for (let v = 0; v < 256; v++) {
      // rescale: float64 multiply, stored as float32; normalise: float32 subtract then divide (each op rounded).
      let x = cfg.doRescale ? Math.fround(v * cfg.rescaleFactor) : v;
      if (cfg.doNormalize) x = Math.fround(Math.fround(x - mean) / std);
      t[v] = x;
    }
    tables.push(t);
  }
  return tables;
}

/**
 * Patchifies frames (all the same size, a multiple of patch·merge on each side) into rows of C·T·P·P values, rows in
 * (t-group, hb, wb, mh, mw) order. The frame count must be a multiple of the temporal patch size.
 */
export function patchify(
  frames: RgbImage[],
  cfg: VisionProcessorConfig,
  tables: Float32Array[] = normalisationTable(cfg),
): { pixelValues: Float32Array; gridThw: GridThw } {
  const p = cfg.patchSize;
  const tp = cfg.temporalPatchSize;
  const m = cfg.mergeSize;
  if (frames.length === 0 || frames.length % tp !== 0) {
    throw new Error(`patchify: expected a positive multiple of ${tp} frames, found ${frames.length}`);
  }
  const { width: W, height: H } = frames[0];
  if (H % (p * m) !== 0 || W % (p * m) !== 0) {
    throw new Error(`patchify: expected sides that are multiples of ${p * m}, found ${W}x${H}`);
  }
  for (const f of frames) {
    if (f.width !== W || f.height !== H)
      throw new Error(`patchify: frames differ in size (${W}x${H} vs ${f.width}x${f.height})`);
  }
  const gt = frames.length / tp;
  const gh = H / p;
  const gw = W / p;
  const rowLen = 3 * tp * p * p;
  const out = new Float32Array(gt * gh * gw * rowLen);
  let o = 0;
  for (let t = 0; t < gt; t++) {
    for (let hb = 0; hb < gh / m; hb++) {
      for (let wb = 0; wb < gw / m; wb++) {
        for (let mh = 0; mh < m; mh++) {
          for (let mw = 0; mw < m; mw++) {
            const y0 = (hb * m + mh) * p;
            const x0 = (wb * m + mw) * p;
            for (let c = 0; c < 3; c++) {
              const lut = tables[c];
              for (let ti = 0; ti < tp; ti++) {
                const data = frames[t * tp + ti].data;
                // An image is one frame repeated over the temporal patch: copy the block instead of looking it up again.
                if (ti > 0 && data === frames[t * tp + ti - 1].data) {
                  out.copyWithin(o, o - p * p, o);
                  o += p * p;
                  continue;
                }
                for (let py = 0; py < p; py++) {
                  let src = ((y0 + py) * W + x0) * 3 + c;
                  for (let px = 0; px < p; px++) {
                    out[o++] = lut[data[src]];
                    src += 3;
                  }
                }
              }
            }
          }
        }
      }
    }
  }
  return { pixelValues: out, gridThw: [gt, gh, gw] };
}

/** Pixels (t·h·w) per LLM token: a token cap times this is a pixel cap. */
export function tokensPerPixelUnit(cfg: VisionProcessorConfig): number {
  const f = cfg.patchSize * cfg.mergeSize;
  return cfg.temporalPatchSize * f * f;
}
