/** Videos to model inputs: decode and sample, joint target size under a token cap, normalise, patchify. */
import { describeVideo, type LoadedVideo, loadVideo, VideoBudgetError, type VideoSource } from '../video.js';
import { DEFAULT_VIDEO_CONFIG, type VisionProcessorConfig } from './config.js';
import { type GridThw, patchify, smartResize, tokensPerPixelUnit } from './patches.js';

/** Request-scoped limits of media decoding: kill the decoders on abort, refuse videos over a decode budget. */
export interface MediaDecodeOptions {
  signal?: AbortSignal;
  /** Most width × height × decoded frames of one video (see `LoadVideoOptions.maxDecodedPixels`). */
  maxDecodedPixels?: number;
  /** Most visual tokens of one video, checked from the probe before decoding (a server: its context length). */
  maxVideoTokens?: number;
}

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
