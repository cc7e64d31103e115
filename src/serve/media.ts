/**
 * Media of chat requests (`image_url`, `video_url` parts): where they may come from and how big they may be.
 *
 * - `data:` URLs are always accepted (base64 or percent-encoded).
 * - `file://` URLs only when the server was given media roots, and only for files whose real path (symlinks
 *   resolved) lies inside one of them.
 * - `http(s)://` URLs only with `allowRemote`: fetched with a timeout and a byte cap. Off by default (this machine
 *   has no network at run time, and a server should not fetch arbitrary URLs for anyone who can reach it).
 *
 * Images are measured from their header before decoding, so an image over the pixel limit (a decompression bomb
 * included) is refused without being decoded.
 */
import { readFile, realpath, stat } from 'node:fs/promises';
import { isAbsolute, relative, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import sharp from 'sharp';
import { decodeDataUrl, loadImage, type RgbImage } from '../io/image.js';
import { ApiError, describe } from './errors.js';

export interface MediaPolicy {
  /** Fetch http(s) URLs. Default false. */
  allowRemote: boolean;
  /** Folders `file://` URLs may point into (empty: file URLs refused). */
  fileRoots: string[];
  /** Most pixels (width × height) of one image. */
  maxImagePixels: number;
  /** Most bytes of one image or video. */
  maxMediaBytes: number;
  /** Most images + videos in one request. */
  maxMediaItems: number;
  /**
   * Most pixels the decoder may produce for one video: width × height × frames decoded (every frame up to the last
   * sampled one). Measured by probing the stream before decoding; a video above it gets 413.
   */
  maxVideoPixels: number;
  /** Timeout of one remote fetch. */
  fetchTimeoutMs: number;
}

export const DEFAULT_MEDIA_POLICY: MediaPolicy = {
  allowRemote: false,
  fileRoots: [],
  maxImagePixels: 2 ** 25,
  maxMediaBytes: 32 * 2 ** 20,
  maxMediaItems: 32,
  maxVideoPixels: 2 ** 29,
  fetchTimeoutMs: 30_000,
};

/** Resolves the configured roots once (real paths), so later checks compare like with like. */
export async function resolveRoots(roots: readonly string[]): Promise<string[]> {
  const out: string[] = [];
  for (const r of roots) {
    let real: string;
    try {
      real = await realpath(resolve(r));
    } catch {
      throw new Error(`media root ${r}: no such folder`);
    }
    if (!(await stat(real)).isDirectory()) throw new Error(`media root ${r}: not a folder`);
    out.push(real);
  }
  return out;
}

const MB = (n: number) => `${(n / 2 ** 20).toFixed(1)} MiB`;

/** The bytes behind a media URL, under the policy. `param` names the request field in errors. */
export async function fetchMediaBytes(
  url: string,
  policy: MediaPolicy,
  param: string,
  signal?: AbortSignal,
): Promise<Buffer> {
  if (typeof url !== 'string' || url.length === 0) throw new ApiError(400, `${param}: expected a URL string`, param);
  const scheme = /^([a-z][a-z0-9+.-]*):/i.exec(url)?.[1]?.toLowerCase();
  let bytes: Buffer;
  if (scheme === 'data') {
    // Cheap size check before decoding: base64 is 4 chars per 3 bytes.
    if (url.length > (policy.maxMediaBytes * 4) / 3 + 256)
      throw new ApiError(
        413,
        `${param}: the data URL holds about ${MB((url.length * 3) / 4)}, more than the limit of ${MB(policy.maxMediaBytes)}`,
        param,
        'media_too_large',
      );
    try {
      bytes = decodeDataUrl(url);
    } catch (e) {
      throw new ApiError(400, `${param}: ${(e as Error).message}`, param, 'invalid_data_url');
    }
    if (bytes.length === 0) throw new ApiError(400, `${param}: the data URL has no payload`, param, 'invalid_data_url');
  } else if (scheme === 'file') {
    bytes = await readFileUrl(url, policy, param);
  } else if (scheme === 'http' || scheme === 'https') {
    if (!policy.allowRemote)
      throw new ApiError(
        400,
        `${param}: remote URLs are not fetched by this server (started without --allow-remote-media); send the image inline as a data URL (data:image/png;base64,...)`,
        param,
        'remote_media_disabled',
      );
    bytes = await fetchRemote(url, policy, param, signal);
  } else {
    throw new ApiError(
      400,
      `${param}: expected a data:, file:// or http(s):// URL, found ${describe(url)}`,
      param,
      'invalid_url',
    );
  }
  if (bytes.length > policy.maxMediaBytes)
    throw new ApiError(
      413,
      `${param}: ${MB(bytes.length)} is more than the limit of ${MB(policy.maxMediaBytes)}`,
      param,
      'media_too_large',
    );
  return bytes;
}

async function readFileUrl(url: string, policy: MediaPolicy, param: string): Promise<Buffer> {
  if (policy.fileRoots.length === 0)
    throw new ApiError(
      400,
      `${param}: file:// URLs are refused (the server was started without --media-root); send the image as a data URL`,
      param,
      'file_media_disabled',
    );
  let path: string;
  try {
    path = fileURLToPath(url);
  } catch (e) {
    throw new ApiError(400, `${param}: not a valid file URL (${(e as Error).message})`, param, 'invalid_url');
  }
  let real: string;
  try {
    real = await realpath(path);
  } catch {
    throw new ApiError(400, `${param}: ${path}: no such file`, param, 'media_not_found');
  }
  const inside = policy.fileRoots.some((root) => {
    const rel = relative(root, real);
    return rel === '' || (!rel.startsWith(`..${sep}`) && rel !== '..' && !isAbsolute(rel));
  });
  if (!inside)
    throw new ApiError(
      403,
      `${param}: ${path} is outside the media roots this server may read (${policy.fileRoots.join(', ')})`,
      param,
      'media_forbidden',
    );
  const st = await stat(real);
  if (!st.isFile()) throw new ApiError(400, `${param}: ${path} is not a file`, param, 'invalid_url');
  if (st.size > policy.maxMediaBytes)
    throw new ApiError(
      413,
      `${param}: ${path} is ${MB(st.size)}, more than the limit of ${MB(policy.maxMediaBytes)}`,
      param,
      'media_too_large',
    );
  return readFile(real);
}

async function fetchRemote(url: string, policy: MediaPolicy, param: string, signal?: AbortSignal): Promise<Buffer> {
  const timeout = AbortSignal.timeout(policy.fetchTimeoutMs);
  const sig = signal ? AbortSignal.any([signal, timeout]) : timeout;
  let resp: Response;
  try {
    resp = await fetch(url, { signal: sig, redirect: 'follow' });
  } catch (e) {
    throw new ApiError(400, `${param}: cannot fetch ${url} (${(e as Error).message})`, param, 'media_fetch_failed');
  }
  if (!resp.ok)
    throw new ApiError(400, `${param}: fetching ${url} gave HTTP ${resp.status}`, param, 'media_fetch_failed');
  const declared = Number(resp.headers.get('content-length') ?? 0);
  if (declared > policy.maxMediaBytes)
    throw new ApiError(
      413,
      `${param}: ${url} is ${MB(declared)}, more than the limit of ${MB(policy.maxMediaBytes)}`,
      param,
      'media_too_large',
    );
  // Read with a running cap: the declared length may be missing or wrong.
  const chunks: Uint8Array[] = [];
  let n = 0;
  const reader = resp.body?.getReader();
  if (!reader) return Buffer.alloc(0);
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.length;
    if (n > policy.maxMediaBytes) {
      await reader.cancel();
      throw new ApiError(
        413,
        `${param}: ${url} is more than the limit of ${MB(policy.maxMediaBytes)}`,
        param,
        'media_too_large',
      );
    }
    chunks.push(value);
  }
  return Buffer.concat(chunks);
}

/** Decodes an image after checking its pixel count from the header. */
export async function loadRequestImage(bytes: Buffer, policy: MediaPolicy, param: string): Promise<RgbImage> {
  let meta: { width?: number; height?: number };
  try {
    meta = await sharp(bytes, { limitInputPixels: false }).metadata();
  } catch (e) {
    throw new ApiError(
      400,
      `${param}: cannot read the image (${(e as Error).message.split('\n')[0]}); expected PNG, JPEG, WebP, GIF, TIFF or AVIF bytes`,
      param,
      'invalid_image',
    );
  }
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (w * h > policy.maxImagePixels)
    throw new ApiError(
      413,
      `${param}: the image is ${w}x${h} = ${w * h} pixels, more than the limit of ${policy.maxImagePixels}`,
      param,
      'image_too_large',
    );
  try {
    return await loadImage(bytes, param);
  } catch (e) {
    throw new ApiError(400, `${param}: ${(e as Error).message}`, param, 'invalid_image');
  }
}
