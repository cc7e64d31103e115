/** Images to model inputs: target size under a token cap, resize, normalise, patchify. */
import { type RgbImage, resizeRgb } from '../image.js';
import { DEFAULT_IMAGE_CONFIG, type VisionProcessorConfig } from './config.js';
import { type GridThw, patchify, smartResize, tokensPerPixelUnit } from './patches.js';

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
