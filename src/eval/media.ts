/**
 * Media for requests to a model under test, under the paper's visual token caps (§6.1: 6144 per image, 48k per
 * video), computed with the GLM processor's own arithmetic (src/io/processor/):
 * - images over the cap are resized here to the size the processor would choose under it (a multiple of 28 within
 *   budget, which the server's smart_resize then leaves unchanged);
 * - frame lists (the synthetic video domain) are encoded into an H.264 MP4 at their frame rate with ffmpeg, scaled
 *   to the joint clip budget, so the server samples it as a video with timestamps;
 * - video files are measured (ffprobe, GLM sampling at 2 fps) and transcoded smaller only when the sampled clip would
 *   exceed the cap. The cap assumes the server samples like the GLM processor; other sampling settings
 *   (`--media-io-kwargs`) change the real count.
 * Encoded videos are content-addressed files in a media folder, so each is made once.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, symlinkSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { extname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import sharp from 'sharp';
import { encodePng, loadImage, resizeRgb } from '../io/image.js';
import { DEFAULT_IMAGE_CONFIG, DEFAULT_VIDEO_CONFIG } from '../io/processor/config.js';
import { imageTargetSize, imageTokenCount } from '../io/processor/image.js';
import { videoTargetSize } from '../io/processor/video.js';
import { probeVideo, sampleFrameIndices } from '../io/video.js';

const IMAGE_MIME: Record<string, string> = {
  png: 'image/png',
  jpeg: 'image/jpeg',
  gif: 'image/gif',
  webp: 'image/webp',
};
export const VIDEO_MIME: Record<string, string> = {
  '.mp4': 'video/mp4',
  '.webm': 'video/webm',
  '.mkv': 'video/x-matroska',
  '.mov': 'video/quicktime',
  '.avi': 'video/x-msvideo',
};

export interface EncodedImage {
  url: string;
  /** Processor tokens of what is sent. */
  tokens: number;
  resized: boolean;
  width: number;
  height: number;
}

async function displaySize(
  bytes: Buffer,
  path: string,
): Promise<{ width: number; height: number; format: string; oriented: boolean }> {
  let meta: Awaited<ReturnType<ReturnType<typeof sharp>['metadata']>>;
  try {
    meta = await sharp(bytes).metadata();
  } catch (e) {
    throw new Error(`image ${path}: not a decodable image (${(e as Error).message.split('\n')[0]})`);
  }
  if (!meta.width || !meta.height) throw new Error(`image ${path}: no dimensions in the file`);
  // EXIF orientations 5–8 swap width and height once applied (the processor applies them).
  const o = meta.orientation ?? 1;
  return {
    width: o >= 5 ? meta.height : meta.width,
    height: o >= 5 ? meta.width : meta.height,
    format: String(meta.format) === 'jpg' ? 'jpeg' : String(meta.format),
    oriented: o !== 1,
  };
}

/**
 * Encodes an image file for a chat request under a token cap: the original bytes when they fit (and the format is
 * one servers decode), else a PNG resized to the processor's size under the cap. `file` mode sends a `file://` URL
 * of the original when no resize is needed (vLLM `--allowed-local-media-path`).
 */
export async function encodeImage(
  path: string,
  maxTokens: number,
  mode: 'data' | 'file' = 'data',
): Promise<EncodedImage> {
  let bytes: Buffer;
  try {
    bytes = await readFile(path);
  } catch (e) {
    throw new Error(`image ${path}: cannot read (${(e as Error).message})`);
  }
  const { width, height, format, oriented } = await displaySize(bytes, path);
  const tokens = imageTokenCount(height, width);
  if (tokens <= maxTokens && IMAGE_MIME[format] && !oriented) {
    const url =
      mode === 'file'
        ? pathToFileURL(resolve(path)).href
        : `data:${IMAGE_MIME[format]};base64,${bytes.toString('base64')}`;
    return { url, tokens, resized: false, width, height };
  }
  const target = imageTargetSize(height, width, DEFAULT_IMAGE_CONFIG, maxTokens);
  const img = await loadImage(bytes, path);
  const out =
    target.width === img.width && target.height === img.height
      ? img
      : resizeRgb(img, target.width, target.height, 'bicubic');
  const png = await encodePng(out);
  return {
    url: `data:image/png;base64,${png.toString('base64')}`,
    tokens: imageTokenCount(target.height, target.width),
    resized: true,
    width: target.width,
    height: target.height,
  };
}

function ffmpeg(args: string[], what: string, timeoutMs = 600_000): Promise<void> {
  return new Promise((res, rej) => {
    execFile(
      'ffmpeg',
      ['-v', 'error', '-nostdin', '-y', ...args],
      { timeout: timeoutMs, maxBuffer: 4 << 20 },
      (err, _o, stderr) => {
        if (!err) return res();
        const code = (err as NodeJS.ErrnoException).code;
        if (code === 'ENOENT') return rej(new Error(`${what}: ffmpeg is not installed (apt-get install ffmpeg)`));
        const line = String(stderr).trim().split('\n').pop() ?? err.message;
        rej(new Error(`${what}: ffmpeg failed (${line})`));
      },
    );
  });
}

const sha = (s: string | Buffer) => createHash('sha256').update(s).digest('hex');

/** Even dimensions for yuv420p. */
const even = (n: number) => Math.max(2, Math.round(n / 2) * 2);

/**
 * An MP4 of a frame list at `fps`, scaled to the GLM video processor's joint size under `maxTokens`. Returns the
 * path of the (cached) file.
 */
export async function framesToVideo(
  frames: string[],
  fps: number,
  maxTokens: number,
  mediaDir: string,
): Promise<string> {
  if (frames.length === 0) throw new Error('video: the frame list is empty');
  if (!(fps > 0)) throw new Error(`video: expected a positive frame rate for the frame list, found ${fps}`);
  const hashes = await Promise.all(
    frames.map(async (f) => {
      try {
        return sha(await readFile(f));
      } catch (e) {
        throw new Error(`video frame ${f}: cannot read (${(e as Error).message})`);
      }
    }),
  );
  const first = await readFile(frames[0]!);
  const { width, height } = await displaySize(first, frames[0]!);
  // Frames the server will sample at 2 fps from a clip of this length.
  const sampled = sampleFrameIndices({ totalNumFrames: frames.length, fps, duration: frames.length / fps }).length;
  const t = videoTargetSize(Math.max(2, sampled), height, width, DEFAULT_VIDEO_CONFIG, maxTokens);
  const out = join(resolve(mediaDir), `${sha(JSON.stringify([hashes, fps, t.width, t.height])).slice(0, 32)}.mp4`);
  if (existsSync(out)) return out;
  const work = `${out}.${process.pid}.frames`;
  rmSync(work, { recursive: true, force: true });
  mkdirSync(work, { recursive: true });
  try {
    // image2 needs sequential names; links avoid copying the frames.
    frames.forEach((f, i) => {
      symlinkSync(resolve(f), join(work, `f${String(i).padStart(6, '0')}${extname(f) || '.png'}`));
    });
    const ext = extname(frames[0]!) || '.png';
    const tmp = `${out}.${process.pid}.tmp.mp4`;
    await ffmpeg(
      [
        '-framerate',
        String(fps),
        '-i',
        join(work, `f%06d${ext}`),
        '-vf',
        `scale=${even(t.width)}:${even(t.height)}:flags=bicubic`,
        '-c:v',
        'libx264',
        '-pix_fmt',
        'yuv420p',
        '-crf',
        '12',
        '-preset',
        'veryfast',
        tmp,
      ],
      `video of ${frames.length} frames (${frames[0]})`,
    );
    renameSync(tmp, out);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
  return out;
}

/**
 * The video file itself when its GLM-sampled clip fits `maxTokens`, else a transcoded copy scaled to the joint
 * budget (cached by content hash).
 */
export async function capVideoFile(
  path: string,
  maxTokens: number,
  mediaDir: string,
): Promise<{ path: string; tokens: number; resized: boolean }> {
  const meta = await probeVideo(path);
  if (!meta.width || !meta.height) throw new Error(`video ${path}: ffprobe reports no frame size`);
  const n = sampleFrameIndices(meta).length;
  const f = DEFAULT_VIDEO_CONFIG.patchSize * DEFAULT_VIDEO_CONFIG.mergeSize;
  const tokensAt = (h: number, w: number) => (Math.ceil(n / 2) * (h / f) * (w / f)) | 0;
  const full = videoTargetSize(n, meta.height, meta.width, DEFAULT_VIDEO_CONFIG);
  if (tokensAt(full.height, full.width) <= maxTokens)
    return { path, tokens: tokensAt(full.height, full.width), resized: false };
  const t = videoTargetSize(n, meta.height, meta.width, DEFAULT_VIDEO_CONFIG, maxTokens);
  const bytes = await readFile(path);
  const out = join(
    resolve(mediaDir),
    `${sha(Buffer.concat([bytes, Buffer.from(`|${t.width}x${t.height}`)])).slice(0, 32)}.mp4`,
  );
  if (!existsSync(out)) {
    mkdirSync(resolve(mediaDir), { recursive: true });
    const tmp = `${out}.${process.pid}.tmp.mp4`;
    await ffmpeg(
      [
        '-i',
        path,
        '-vf',
        `scale=${even(t.width)}:${even(t.height)}:flags=bicubic`,
        '-c:v',
        'libx264',
        '-pix_fmt',
        'yuv420p',
        '-crf',
        '18',
        '-preset',
        'veryfast',
        '-an',
        tmp,
      ],
      `video ${path}`,
    );
    renameSync(tmp, out);
  }
  return { path: out, tokens: tokensAt(t.height, t.width), resized: true };
}

/** A `video_url` URL for a video file: a data URL, or `file://` in file mode. */
export async function videoUrl(path: string, mode: 'data' | 'file'): Promise<string> {
  const mime = VIDEO_MIME[extname(path).toLowerCase()];
  if (!mime) throw new Error(`video ${path}: unsupported extension; expected ${Object.keys(VIDEO_MIME).join(', ')}`);
  if (mode === 'file') return pathToFileURL(resolve(path)).href;
  try {
    return `data:${mime};base64,${(await readFile(path)).toString('base64')}`;
  } catch (e) {
    throw new Error(`video ${path}: cannot read (${(e as Error).message})`);
  }
}
