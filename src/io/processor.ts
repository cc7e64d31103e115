/**
 * The GLM-4.1V / GLM-4.5V multimodal processor: images and videos to `pixel_values` rows plus `grid_thw`, and the
 * prompt expansion that gives each visual token its `<|image|>` placeholder.
 *
 * Pixel path (as Hugging Face's Glm4vImageProcessor / Glm4vVideoProcessor): smart_resize to multiples of 28 within a
 * pixel budget (an image counts as two frames), Pillow-compatible bicubic resize to uint8, rescale by 1/255 (float64,
 * then float32), CLIP mean/std normalisation in float32, then patchify into rows of 3·2·14·14 = 1176 values ordered
 * (channel, t, py, px), rows in merge-window-major order (t-group, hb, wb, mh, mw).
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { concatFloat32 } from '../util/arrays.js';
import { readRegularFileSync } from '../util/files.js';
import {
  describeSource,
  type ImageSource,
  loadImage,
  PIL_RESAMPLE_CODES,
  type ResampleFilter,
  type RgbImage,
  resizeRgb,
} from './image.js';
import {
  CHAT_TEMPLATES,
  type ChatMessage,
  ChatTemplate,
  collectMedia,
  type RenderOptions,
  type TemplateName,
} from './template.js';
import type { GlmTokenizer } from './tokenizer.js';
import { describeVideo, type LoadedVideo, loadVideo, pyRound, VideoBudgetError, type VideoSource } from './video.js';

/** Request-scoped limits of media decoding: kill the decoders on abort, refuse videos over a decode budget. */
export interface MediaDecodeOptions {
  signal?: AbortSignal;
  /** Most width × height × decoded frames of one video (see `LoadVideoOptions.maxDecodedPixels`). */
  maxDecodedPixels?: number;
  /** Most visual tokens of one video, checked from the probe before decoding (a server: its context length). */
  maxVideoTokens?: number;
}

export { pyRound };

export const OPENAI_CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

/** Placeholder strings written by the chat template and expanded here. */
export const IMAGE_TOKEN = '<|image|>';
export const VIDEO_TOKEN = '<|video|>';
export const BEGIN_OF_IMAGE = '<|begin_of_image|>';
export const END_OF_IMAGE = '<|end_of_image|>';
export const BEGIN_OF_VIDEO = '<|begin_of_video|>';
export const END_OF_VIDEO = '<|end_of_video|>';

// ---------------------------------------------------------------------------------------------------------------
// smart_resize
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------------------------------

export interface VisionProcessorConfig {
  minPixels: number;
  maxPixels: number;
  patchSize: number;
  temporalPatchSize: number;
  mergeSize: number;
  imageMean: [number, number, number];
  imageStd: [number, number, number];
  rescaleFactor: number;
  doResize: boolean;
  doRescale: boolean;
  doNormalize: boolean;
  resample: ResampleFilter;
  /** Video only: sampling rate and the duration sampled at that rate. */
  fps: number;
  maxDuration: number;
}

/** GLM-family image preprocessor defaults (6144 tokens per image at most). */
export const DEFAULT_IMAGE_CONFIG: Readonly<VisionProcessorConfig> = Object.freeze({
  minPixels: 12544,
  maxPixels: 9633792,
  patchSize: 14,
  temporalPatchSize: 2,
  mergeSize: 2,
  imageMean: [...OPENAI_CLIP_MEAN] as [number, number, number],
  imageStd: [...OPENAI_CLIP_STD] as [number, number, number],
  rescaleFactor: 1 / 255,
  doResize: true,
  doRescale: true,
  doNormalize: true,
  resample: 'bicubic' as ResampleFilter,
  fps: 2,
  maxDuration: 300,
});

/** GLM-4.1V video preprocessor defaults: a joint budget of 28·28·2·30000 pixels over the clip. */
export const DEFAULT_VIDEO_CONFIG: Readonly<VisionProcessorConfig> = Object.freeze({
  ...DEFAULT_IMAGE_CONFIG,
  maxPixels: 47040000,
});

type Json = Record<string, unknown>;

function num(obj: Json, key: string, label: string, positive = true): number | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'number' || !Number.isFinite(v) || (positive && v <= 0)) {
    throw new Error(`${label}: expected "${key}" to be a positive number, found ${JSON.stringify(v)}`);
  }
  return v;
}

function int(obj: Json, key: string, label: string): number | undefined {
  const v = num(obj, key, label);
  if (v !== undefined && !Number.isInteger(v)) {
    throw new Error(`${label}: expected "${key}" to be a positive integer, found ${v}`);
  }
  return v;
}

function bool(obj: Json, key: string, label: string): boolean | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== 'boolean')
    throw new Error(`${label}: expected "${key}" to be true or false, found ${JSON.stringify(v)}`);
  return v;
}

function triple(obj: Json, key: string, label: string): [number, number, number] | undefined {
  const v = obj[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v === 'number' && Number.isFinite(v)) return [v, v, v];
  if (!Array.isArray(v) || v.length !== 3 || v.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
    throw new Error(`${label}: expected "${key}" to be 3 numbers (R, G, B), found ${JSON.stringify(v)}`);
  }
  return v as [number, number, number];
}

/**
 * Reads a Hugging Face `preprocessor_config.json` / `video_preprocessor_config.json` object. Understands
 * `size.{shortest_edge,longest_edge}` and the older top-level `min_pixels`/`max_pixels` (which win, as in HF).
 */
export function parsePreprocessorConfig(
  json: unknown,
  label = 'preprocessor config',
  defaults: Readonly<VisionProcessorConfig> = DEFAULT_IMAGE_CONFIG,
): VisionProcessorConfig {
  if (typeof json !== 'object' || json === null || Array.isArray(json)) {
    throw new Error(`${label}: expected a JSON object, found ${Array.isArray(json) ? 'an array' : typeof json}`);
  }
  const o = json as Json;
  const cfg: VisionProcessorConfig = {
    ...defaults,
    imageMean: [...defaults.imageMean],
    imageStd: [...defaults.imageStd],
  };
  const size = o.size;
  if (size !== undefined && size !== null) {
    if (typeof size !== 'object' || Array.isArray(size)) {
      throw new Error(
        `${label}: expected "size" to be an object with shortest_edge/longest_edge, found ${JSON.stringify(size)}`,
      );
    }
    const s = size as Json;
    if (
      s.shortest_edge === undefined &&
      s.longest_edge === undefined &&
      (s.height !== undefined || s.width !== undefined)
    ) {
      throw new Error(
        `${label}: "size" must give shortest_edge and longest_edge (pixel counts), found ${JSON.stringify(size)}`,
      );
    }
    cfg.minPixels = int(s, 'shortest_edge', `${label} size`) ?? cfg.minPixels;
    cfg.maxPixels = int(s, 'longest_edge', `${label} size`) ?? cfg.maxPixels;
  }
  cfg.minPixels = int(o, 'min_pixels', label) ?? cfg.minPixels;
  cfg.maxPixels = int(o, 'max_pixels', label) ?? cfg.maxPixels;
  cfg.patchSize = int(o, 'patch_size', label) ?? cfg.patchSize;
  cfg.temporalPatchSize = int(o, 'temporal_patch_size', label) ?? cfg.temporalPatchSize;
  cfg.mergeSize = int(o, 'merge_size', label) ?? cfg.mergeSize;
  cfg.imageMean = triple(o, 'image_mean', label) ?? cfg.imageMean;
  cfg.imageStd = triple(o, 'image_std', label) ?? cfg.imageStd;
  cfg.rescaleFactor = num(o, 'rescale_factor', label) ?? cfg.rescaleFactor;
  cfg.doResize = bool(o, 'do_resize', label) ?? cfg.doResize;
  cfg.doRescale = bool(o, 'do_rescale', label) ?? cfg.doRescale;
  cfg.doNormalize = bool(o, 'do_normalize', label) ?? cfg.doNormalize;
  cfg.fps = num(o, 'fps', label) ?? cfg.fps;
  cfg.maxDuration = num(o, 'max_duration', label) ?? cfg.maxDuration;
  if (o.resample !== undefined && o.resample !== null) {
    const code = o.resample;
    const f = typeof code === 'number' ? PIL_RESAMPLE_CODES[code] : undefined;
    if (!f || f === 'nearest') {
      throw new Error(
        `${label}: "resample" ${JSON.stringify(code)} is not supported (expected a PIL filter code: 1 lanczos, 2 bilinear, 3 bicubic, 4 box, 5 hamming)`,
      );
    }
    cfg.resample = f;
  }
  if (cfg.imageStd.some((s) => s === 0)) throw new Error(`${label}: "image_std" must not contain 0`);
  if (cfg.minPixels > cfg.maxPixels) {
    throw new Error(`${label}: min pixels ${cfg.minPixels} exceed max pixels ${cfg.maxPixels}`);
  }
  return cfg;
}

async function readJsonFile(path: string, label: string): Promise<unknown> {
  let text: string;
  try {
    // Regular files only: a FIFO in a model folder would block the read forever.
    text = readRegularFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new Error(
      `${label} ${path}: ${code === 'ENOENT' || code === 'EACCES' ? 'file not found or unreadable' : (e as Error).message}`,
    );
  }
  try {
    return JSON.parse(text);
  } catch (e) {
    throw new Error(`${label} ${path}: invalid JSON (${(e as Error).message})`);
  }
}

async function isDir(path: string): Promise<boolean> {
  try {
    return (await stat(path)).isDirectory();
  } catch {
    return false;
  }
}

async function exists(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}

/** Loads `preprocessor_config.json` from a file or a model folder. */
export async function loadPreprocessorConfig(pathOrDir: string): Promise<VisionProcessorConfig> {
  const path = (await isDir(pathOrDir)) ? join(pathOrDir, 'preprocessor_config.json') : pathOrDir;
  return parsePreprocessorConfig(await readJsonFile(path, 'preprocessor config'), `preprocessor config ${path}`);
}

/**
 * Loads the video config of a model folder: `video_preprocessor_config.json` when present, else the GLM-4.1V video
 * defaults with the patch geometry and normalisation of the image config.
 */
export async function loadVideoPreprocessorConfig(
  dir: string,
  image: VisionProcessorConfig = DEFAULT_IMAGE_CONFIG,
): Promise<VisionProcessorConfig> {
  const path = join(dir, 'video_preprocessor_config.json');
  const base: VisionProcessorConfig = {
    ...image,
    minPixels: DEFAULT_VIDEO_CONFIG.minPixels,
    maxPixels: DEFAULT_VIDEO_CONFIG.maxPixels,
  };
  if (!(await exists(path))) return base;
  return parsePreprocessorConfig(
    await readJsonFile(path, 'video preprocessor config'),
    `video preprocessor config ${path}`,
    base,
  );
}

// ---------------------------------------------------------------------------------------------------------------
// Normalise + patchify
// ---------------------------------------------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------------------------------------------
// Images
// ---------------------------------------------------------------------------------------------------------------

export interface ProcessedImage {
  /** [N, 1176] rows, row-major. */
  pixelValues: Float32Array;
  gridThw: GridThw;
  /** LLM tokens this image takes: t·h·w / merge². */
  numTokens: number;
  resizedHeight: number;
  resizedWidth: number;
  originalHeight: number;
  originalWidth: number;
}

export interface TokenBudget {
  /** Cap on the LLM tokens of one image (default from the config's max pixels: 6144). */
  maxImageTokens?: number;
  /** Cap on the LLM tokens of one video (default 48000, the paper's eval limit; the config's pixel budget also applies). */
  maxVideoTokens?: number;
  /** Cap on all visual tokens of one request; exceeding it is an error. */
  maxTotalTokens?: number;
}

function tokensPerPixelUnit(cfg: VisionProcessorConfig): number {
  const f = cfg.patchSize * cfg.mergeSize;
  return cfg.temporalPatchSize * f * f;
}

/** Target size of an image under the config and an optional token cap (which tightens max pixels). */
export function imageTargetSize(
  height: number,
  width: number,
  cfg: VisionProcessorConfig,
  maxTokens?: number,
): { height: number; width: number } {
  if (!cfg.doResize) return { height, width };
  const cap = maxTokens !== undefined ? maxTokens * tokensPerPixelUnit(cfg) : Number.POSITIVE_INFINITY;
  return smartResize(cfg.temporalPatchSize, height, width, {
    factor: cfg.patchSize * cfg.mergeSize,
    temporalFactor: cfg.temporalPatchSize,
    minPixels: cfg.minPixels,
    maxPixels: Math.min(cfg.maxPixels, cap),
  });
}

/** Number of LLM tokens an image of this size becomes (without decoding it). */
export function imageTokenCount(
  height: number,
  width: number,
  cfg: VisionProcessorConfig = DEFAULT_IMAGE_CONFIG,
): number {
  const { height: h, width: w } = imageTargetSize(height, width, cfg);
  const f = cfg.patchSize * cfg.mergeSize;
  return (h / f) * (w / f);
}

/** Resizes, normalises and patchifies one decoded image. */
export function processImage(
  img: RgbImage,
  cfg: VisionProcessorConfig = DEFAULT_IMAGE_CONFIG,
  opts: { maxTokens?: number; label?: string } = {},
): ProcessedImage {
  const label = opts.label ?? `image ${img.width}x${img.height}`;
  let size: { height: number; width: number };
  try {
    size = imageTargetSize(img.height, img.width, cfg, opts.maxTokens);
  } catch (e) {
    throw new Error(`${label}: ${(e as Error).message}`);
  }
  const f = cfg.patchSize * cfg.mergeSize;
  if (size.height % f !== 0 || size.width % f !== 0) {
    throw new Error(
      `${label}: with do_resize off the image must have sides divisible by ${f}, found ${img.width}x${img.height}`,
    );
  }
  const numTokens = (size.height / f) * (size.width / f);
  if (opts.maxTokens !== undefined && numTokens > opts.maxTokens) {
    throw new Error(
      `${label}: needs ${numTokens} visual tokens at ${size.width}x${size.height}, more than the cap of ${opts.maxTokens}`,
    );
  }
  const resized =
    size.height === img.height && size.width === img.width
      ? img
      : resizeRgb(img, size.width, size.height, cfg.resample);
  const frames = Array.from({ length: cfg.temporalPatchSize }, () => resized);
  const { pixelValues, gridThw } = patchify(frames, cfg);
  return {
    pixelValues,
    gridThw,
    numTokens: (gridThw[0] * gridThw[1] * gridThw[2]) / (cfg.mergeSize * cfg.mergeSize),
    resizedHeight: size.height,
    resizedWidth: size.width,
    originalHeight: img.height,
    originalWidth: img.width,
  };
}

// ---------------------------------------------------------------------------------------------------------------
// Videos
// ---------------------------------------------------------------------------------------------------------------

export interface ProcessedVideo {
  pixelValues: Float32Array;
  gridThw: GridThw;
  numTokens: number;
  /** Integer-second timestamp of each temporal group (written after each group in the prompt). */
  timestamps: number[];
  /** Source frame indices that were sampled. */
  frameIndices: number[];
  resizedHeight: number;
  resizedWidth: number;
  originalHeight: number;
  originalWidth: number;
}

/** Joint target size of a clip of `numFrames` frames, tightened by a token cap. */
export function videoTargetSize(
  numFrames: number,
  height: number,
  width: number,
  cfg: VisionProcessorConfig,
  maxTokens?: number,
): { height: number; width: number } {
  if (!cfg.doResize) return { height, width };
  const f = cfg.patchSize * cfg.mergeSize;
  // tokens = (T / tp) · (h/f) · (w/f), so a token cap is a cap of T·h·w at tokens · tp · f².
  const cap = maxTokens !== undefined ? maxTokens * tokensPerPixelUnit(cfg) : Number.POSITIVE_INFINITY;
  return smartResize(numFrames, height, width, {
    factor: f,
    temporalFactor: cfg.temporalPatchSize,
    minPixels: cfg.minPixels,
    maxPixels: Math.min(cfg.maxPixels, cap),
  });
}

/** Normalises and patchifies a sampled clip whose frames are already at the target size. */
export function processLoadedVideo(video: LoadedVideo, cfg: VisionProcessorConfig, label = 'video'): ProcessedVideo {
  const frames = [...video.frames];
  while (frames.length % cfg.temporalPatchSize !== 0) frames.push(frames[frames.length - 1]);
  const { width, height } = frames[0];
  const f = cfg.patchSize * cfg.mergeSize;
  if (height % f !== 0 || width % f !== 0) {
    throw new Error(`${label}: frames must have sides divisible by ${f}, found ${width}x${height}`);
  }
  const { pixelValues, gridThw } = patchify(frames, cfg);
  const timestamps = video.timestamps.slice(0, gridThw[0]);
  while (timestamps.length < gridThw[0]) timestamps.push(timestamps.length ? timestamps[timestamps.length - 1] : 0);
  return {
    pixelValues,
    gridThw,
    numTokens: (gridThw[0] * gridThw[1] * gridThw[2]) / (cfg.mergeSize * cfg.mergeSize),
    timestamps,
    frameIndices: video.indices,
    resizedHeight: height,
    resizedWidth: width,
    originalHeight: video.sourceHeight,
    originalWidth: video.sourceWidth,
  };
}

/** Decodes, samples, resizes (joint pixel budget) and patchifies a video file or frame list. */
export async function processVideo(
  src: VideoSource,
  cfg: VisionProcessorConfig = DEFAULT_VIDEO_CONFIG,
  opts: { maxTokens?: number; timeoutMs?: number } & MediaDecodeOptions = {},
): Promise<ProcessedVideo> {
  const label = `video ${describeVideo(src)}`;
  const maxTokens = opts.maxTokens ?? 48000;
  const video = await loadVideo(src, {
    fps: cfg.fps,
    maxDuration: cfg.maxDuration,
    temporalPatchSize: cfg.temporalPatchSize,
    timeoutMs: opts.timeoutMs,
    signal: opts.signal,
    maxDecodedPixels: opts.maxDecodedPixels,
    onProbe: (meta, indices) => {
      const limit = opts.maxVideoTokens;
      if (limit === undefined) return;
      // The tokens processLoadedVideo will produce, from the probed size: nothing is decoded for a doomed video.
      const t = videoTargetSize(indices.length, meta.height, meta.width, cfg, maxTokens);
      const f = cfg.patchSize * cfg.mergeSize;
      const groups = Math.ceil(indices.length / cfg.temporalPatchSize);
      const tokens = groups * (t.height / f) * (t.width / f);
      if (tokens > limit)
        throw new VideoBudgetError(
          `${label}: needs ${tokens} visual tokens (${groups} groups at ${t.width}x${t.height} from ${meta.width}x${meta.height}), more than the ${limit} this request has room for`,
          tokens,
          limit,
        );
    },
    targetSize: (n, h, w) => {
      try {
        return videoTargetSize(n, h, w, cfg, maxTokens);
      } catch (e) {
        throw new Error(`${label}: ${(e as Error).message}`);
      }
    },
  });
  const out = processLoadedVideo(video, cfg, label);
  if (out.numTokens > maxTokens) {
    throw new Error(
      `${label}: needs ${out.numTokens} visual tokens (${out.gridThw[0]} groups at ${out.resizedWidth}x${out.resizedHeight}), more than the cap of ${maxTokens}`,
    );
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// Prompt expansion
// ---------------------------------------------------------------------------------------------------------------

export interface ExpansionInputs {
  /** `grid_thw` of each image, in prompt order. */
  imageGrids?: GridThw[];
  /** `grid_thw` and per-group timestamps of each video, in prompt order. */
  videos?: Array<{ gridThw: GridThw; timestamps: number[] }>;
  mergeSize?: number;
}

/**
 * Replaces each `<|image|>` placeholder by (t·h·w/merge²) `<|image|>` tokens and each `<|video|>` placeholder by one
 * `<|begin_of_image|>…<|end_of_image|>{seconds}` block per temporal group (the `<|begin_of_video|>` and
 * `<|end_of_video|>` around it come from the chat template). Placeholder counts must match the media given.
 */
export function expandMediaTokens(text: string, inputs: ExpansionInputs): string {
  const merge2 = (inputs.mergeSize ?? 2) ** 2;
  const images = inputs.imageGrids ?? [];
  const videos = inputs.videos ?? [];
  const placeholders = text.match(/<\|image\|>|<\|video\|>/g) ?? [];
  const nImg = placeholders.filter((p) => p === IMAGE_TOKEN).length;
  const nVid = placeholders.length - nImg;
  if (nImg !== images.length) {
    throw new Error(
      `prompt: found ${nImg} ${IMAGE_TOKEN} placeholder${nImg === 1 ? '' : 's'} but ${images.length} image${images.length === 1 ? ' was' : 's were'} given`,
    );
  }
  if (nVid !== videos.length) {
    throw new Error(
      `prompt: found ${nVid} ${VIDEO_TOKEN} placeholder${nVid === 1 ? '' : 's'} but ${videos.length} video${videos.length === 1 ? ' was' : 's were'} given`,
    );
  }
  let i = 0;
  let v = 0;
  return text.replace(/<\|image\|>|<\|video\|>/g, (tok) => {
    if (tok === IMAGE_TOKEN) {
      const [t, h, w] = images[i++];
      return IMAGE_TOKEN.repeat((t * h * w) / merge2);
    }
    const { gridThw, timestamps } = videos[v++];
    const [t, h, w] = gridThw;
    const perGroup = IMAGE_TOKEN.repeat((h * w) / merge2);
    let s = '';
    for (let g = 0; g < t; g++) {
      const ts = timestamps[g] ?? timestamps[timestamps.length - 1] ?? 0;
      s += `${BEGIN_OF_IMAGE}${perGroup}${END_OF_IMAGE}${Math.trunc(ts)}`;
    }
    return s;
  });
}

// ---------------------------------------------------------------------------------------------------------------
// The whole request
// ---------------------------------------------------------------------------------------------------------------

export interface MultimodalInputs {
  /** Prompt text with one `<|image|>` per image and one `<|video|>` per video (as the chat template writes them). */
  text: string;
  images?: ImageSource[];
  videos?: VideoSource[];
}

export interface ProcessedInputs {
  /** The prompt with every placeholder expanded. */
  text: string;
  /** Image rows, concatenated over images ([N, 1176]); empty when there are no images. */
  pixelValues: Float32Array;
  imageGridThw: GridThw[];
  /** Video rows, concatenated over videos. */
  pixelValuesVideos: Float32Array;
  videoGridThw: GridThw[];
  videoTimestamps: number[][];
  /** Per image/video: LLM tokens and original size (for mapping coordinates back). */
  images: Array<Omit<ProcessedImage, 'pixelValues'>>;
  videos: Array<Omit<ProcessedVideo, 'pixelValues'>>;
  numVisualTokens: number;
}

export interface ProcessorOptions extends TokenBudget {
  imageConfig?: VisionProcessorConfig;
  videoConfig?: VisionProcessorConfig;
}

/** Images and videos of one request to model inputs, with the prompt expanded. */
export class Glm4vProcessor {
  readonly imageConfig: VisionProcessorConfig;
  readonly videoConfig: VisionProcessorConfig;
  readonly budget: TokenBudget;

  constructor(opts: ProcessorOptions = {}) {
    this.imageConfig = opts.imageConfig ?? { ...DEFAULT_IMAGE_CONFIG };
    this.videoConfig = opts.videoConfig ?? { ...DEFAULT_VIDEO_CONFIG };
    const f = this.imageConfig.patchSize * this.imageConfig.mergeSize;
    this.budget = {
      maxImageTokens:
        opts.maxImageTokens ?? Math.floor(this.imageConfig.maxPixels / (this.imageConfig.temporalPatchSize * f * f)),
      maxVideoTokens: opts.maxVideoTokens ?? 48000,
      maxTotalTokens: opts.maxTotalTokens,
    };
    for (const [k, v] of Object.entries(this.budget)) {
      if (v !== undefined && (!Number.isInteger(v) || v <= 0)) {
        throw new Error(`processor: expected ${k} to be a positive integer, found ${v}`);
      }
    }
  }

  /**
   * A copy with other resize bounds for images (`minPixels` / `maxPixels`) and another video sampling rate (`fps`):
   * vLLM's per-request `mm_processor_kwargs`, `glmv chat --max-pixels`. A bound given alone past the other one moves
   * that one too; the token caps stay, so a larger `maxPixels` never lifts an image past them.
   */
  withOptions(o: { minPixels?: number | null; maxPixels?: number | null; fps?: number | null }): Glm4vProcessor {
    const image = { ...this.imageConfig };
    for (const [k, v] of Object.entries(o))
      if (v != null && !(Number.isFinite(v) && v > 0))
        throw new Error(`processor ${k}: expected a positive number, found ${v}`);
    if (o.minPixels != null) image.minPixels = o.minPixels;
    if (o.maxPixels != null) image.maxPixels = o.maxPixels;
    if (o.maxPixels != null && o.minPixels == null) image.minPixels = Math.min(image.minPixels, o.maxPixels);
    if (o.minPixels != null && o.maxPixels == null) image.maxPixels = Math.max(image.maxPixels, o.minPixels);
    if (image.minPixels > image.maxPixels)
      throw new Error(`processor: min_pixels ${image.minPixels} exceeds max_pixels ${image.maxPixels}`);
    const video = { ...this.videoConfig, ...(o.fps != null ? { fps: o.fps } : {}) };
    return new Glm4vProcessor({ ...this.budget, imageConfig: image, videoConfig: video });
  }

  /** Reads `preprocessor_config.json` (and `video_preprocessor_config.json` if present) from a model folder. */
  static async fromPretrained(dir: string, opts: TokenBudget = {}): Promise<Glm4vProcessor> {
    const imagePath = join(dir, 'preprocessor_config.json');
    const imageConfig = (await exists(imagePath))
      ? await loadPreprocessorConfig(imagePath)
      : { ...DEFAULT_IMAGE_CONFIG };
    const videoConfig = await loadVideoPreprocessorConfig(dir, imageConfig);
    return new Glm4vProcessor({ ...opts, imageConfig, videoConfig });
  }

  async processImage(src: ImageSource): Promise<ProcessedImage> {
    const label = `image ${describeSource(src)}`;
    const img = await loadImage(src, describeSource(src));
    return processImage(img, this.imageConfig, { maxTokens: this.budget.maxImageTokens, label });
  }

  async processVideo(src: VideoSource, media: MediaDecodeOptions = {}): Promise<ProcessedVideo> {
    return processVideo(src, this.videoConfig, { ...media, maxTokens: this.budget.maxVideoTokens });
  }

  /** Processes every image and video and expands the prompt. */
  async process(inputs: MultimodalInputs, media: MediaDecodeOptions = {}): Promise<ProcessedInputs> {
    if (typeof inputs.text !== 'string')
      throw new Error(`processor: expected "text" to be a string, found ${typeof inputs.text}`);
    const images: ProcessedImage[] = [];
    for (const src of inputs.images ?? []) images.push(await this.processImage(src));
    const videos: ProcessedVideo[] = [];
    for (const src of inputs.videos ?? []) videos.push(await this.processVideo(src, media));
    const numVisualTokens = images.reduce((s, x) => s + x.numTokens, 0) + videos.reduce((s, x) => s + x.numTokens, 0);
    const cap = this.budget.maxTotalTokens;
    if (cap !== undefined && numVisualTokens > cap) {
      throw new Error(
        `processor: the request needs ${numVisualTokens} visual tokens (${images.length} images, ${videos.length} videos), more than the total cap of ${cap}`,
      );
    }
    const text = expandMediaTokens(inputs.text, {
      imageGrids: images.map((x) => x.gridThw),
      videos: videos.map((x) => ({ gridThw: x.gridThw, timestamps: x.timestamps })),
      mergeSize: this.imageConfig.mergeSize,
    });
    const strip = <T extends { pixelValues: Float32Array }>(x: T): Omit<T, 'pixelValues'> => {
      const { pixelValues: _p, ...rest } = x;
      return rest;
    };
    return {
      text,
      pixelValues: concatFloat32(images.map((x) => x.pixelValues)) ?? new Float32Array(0),
      imageGridThw: images.map((x) => x.gridThw),
      pixelValuesVideos: concatFloat32(videos.map((x) => x.pixelValues)) ?? new Float32Array(0),
      videoGridThw: videos.map((x) => x.gridThw),
      videoTimestamps: videos.map((x) => x.timestamps),
      images: images.map(strip),
      videos: videos.map(strip),
      numVisualTokens,
    };
  }
}

export interface ChatModelInputs extends ProcessedInputs {
  /** Token ids of the expanded prompt. */
  inputIds: number[];
  /** 0 text, 1 image, 2 video per token (see `mmTokenTypeIds`). */
  mmTokenTypeIds: Uint8Array;
}

export interface PrepareChatOptions extends RenderOptions {
  /** A built-in template name or template text; default the tokenizer's own `chat_template`. */
  template?: TemplateName | string;
  /** Cancellation and decode budget of the videos (a server's request limits). */
  media?: MediaDecodeOptions;
  /** Tokenizes the expanded prompt instead of `tokenizer.encode` (a server tokenizes off its event loop). */
  encode?: (text: string) => Promise<number[]>;
}

/**
 * Messages to model inputs in one step: render the chat template, load and process the media in prompt order,
 * expand the placeholders, tokenize. Checks that every visual token became exactly one `<|image|>` id.
 */
export async function prepareChatInputs(
  processor: Glm4vProcessor,
  tokenizer: GlmTokenizer,
  messages: ChatMessage[],
  opts: PrepareChatOptions = {},
): Promise<ChatModelInputs> {
  const { template, media, encode, ...render } = opts;
  const source =
    template !== undefined ? (CHAT_TEMPLATES[template as TemplateName] ?? template) : tokenizer.chatTemplate;
  if (!source) {
    throw new Error('chat: the tokenizer has no chat_template; pass template "glm41v", "glm45v" or the template text');
  }
  const text = new ChatTemplate(source).render(messages, render);
  const processed = await processor.process({ text, ...collectMedia(messages) }, media);
  const inputIds = encode ? await encode(processed.text) : tokenizer.encode(processed.text);
  const types = mmTokenTypeIds(inputIds, {
    image: tokenizer.id(IMAGE_TOKEN),
    videoStart: tokenizer.id(BEGIN_OF_VIDEO),
    videoEnd: tokenizer.id(END_OF_VIDEO),
  });
  const visual = types.reduce((s, t) => s + (t === 0 ? 0 : 1), 0);
  if (visual !== processed.numVisualTokens) {
    throw new Error(
      `chat: the prompt tokenizes to ${visual} ${IMAGE_TOKEN} ids but the media need ${processed.numVisualTokens}; is ${IMAGE_TOKEN} a special token of this tokenizer?`,
    );
  }
  return { ...processed, inputIds, mmTokenTypeIds: types };
}

/**
 * Marks each token as text (0), image (1) or video (2): image tokens between `<|begin_of_video|>` and
 * `<|end_of_video|>` are video tokens (both use the same `<|image|>` id). The model's 3D RoPE needs this split.
 */
export function mmTokenTypeIds(
  ids: ArrayLike<number>,
  tokenIds: { image: number; videoStart: number; videoEnd: number },
): Uint8Array {
  const out = new Uint8Array(ids.length);
  let depth = 0;
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i];
    if (id === tokenIds.videoStart) depth++;
    else if (id === tokenIds.videoEnd) depth = Math.max(0, depth - 1);
    else if (id === tokenIds.image) out[i] = depth > 0 ? 2 : 1;
  }
  return out;
}
