/**
 * The image and video preprocessor configuration: GLM defaults and Hugging Face's `preprocessor_config.json` /
 * `video_preprocessor_config.json`, read with clear errors.
 */
import { stat } from 'node:fs/promises';
import { join } from 'node:path';
import { readRegularFileSync } from '../../util/files.js';
import { PIL_RESAMPLE_CODES, type ResampleFilter } from '../image.js';

export const OPENAI_CLIP_MEAN: readonly [number, number, number] = [0.48145466, 0.4578275, 0.40821073];
export const OPENAI_CLIP_STD: readonly [number, number, number] = [0.26862954, 0.26130258, 0.27577711];

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

/** The image config of a model folder: `preprocessor_config.json` when present, else the GLM defaults. */
export async function loadImagePreprocessorConfig(dir: string): Promise<VisionProcessorConfig> {
  const path = join(dir, 'preprocessor_config.json');
  return (await exists(path)) ? await loadPreprocessorConfig(path) : { ...DEFAULT_IMAGE_CONFIG };
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
