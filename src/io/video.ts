/**
 * Video input: metadata, frame sampling, timestamps and decoding.
 *
 * Decoding spawns the Debian `ffprobe`/`ffmpeg` binaries: ffprobe for the frame count, rate and duration, ffmpeg with a
 * `select` filter so only the sampled frames are converted, streamed back as PPM images (self-describing, so display
 * rotation and odd sizes need no guessing). Frames can be resized as they arrive, which keeps a 600-frame clip within
 * the processor's pixel budget instead of holding every full-resolution frame.
 *
 * Sampling follows the GLM-4.1V video processor: 2 fps up to 300 s, 600 evenly spaced samples beyond, duplicates
 * removed, padded to an even count; each pair of frames is one temporal group stamped with its first frame's integer
 * second.
 */
import { spawn } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { decodeDataUrl, describeSource, type ImageSource, loadImage, type RgbImage, resizeRgb } from './image.js';
import { detectVideoContainer, inputArgs, readHead, type VideoContainer } from './video-format.js';

/** Python's `round()` for floats: round half to even (JavaScript's Math.round rounds half up). */
export function pyRound(x: number): number {
  if (!Number.isFinite(x)) throw new Error(`round: expected a finite number, found ${x}`);
  const f = Math.floor(x);
  const d = x - f; // exact for doubles
  if (d > 0.5) return f + 1;
  if (d < 0.5) return f;
  return f % 2 === 0 ? f : f + 1;
}

export interface VideoMetadata {
  /** Frames in the stream (decoded frames for a frame list). */
  totalNumFrames: number;
  /** Native frame rate; null when the container does not say. */
  fps: number | null;
  /** Seconds; null when unknown. */
  duration: number | null;
  /** Display size (after rotation) when known. */
  width?: number;
  height?: number;
}

export interface SamplingOptions {
  /** Target sampling rate (frames per second). Default 2. */
  fps?: number;
  /** Longest duration sampled at `fps`; longer clips get `fps * maxDuration` evenly spaced frames. Default 300. */
  maxDuration?: number;
}

/**
 * Frame indices to sample, as the GLM-4.1V video processor chooses them: at `fps` up to `maxDuration` seconds, else
 * `fps*maxDuration` samples spread evenly over the clip (or every frame if there are fewer); duplicates removed in
 * order; the last index repeated if the count is odd. A clip too short for one sample yields frame 0 (twice).
 */
export function sampleFrameIndices(meta: VideoMetadata, opts: SamplingOptions = {}): number[] {
  const fps = opts.fps ?? 2;
  const maxDuration = opts.maxDuration ?? 300;
  const total = meta.totalNumFrames;
  if (!Number.isInteger(total) || total <= 0) {
    throw new Error(`video sampling: expected a positive frame count, found ${total}`);
  }
  if (!(fps > 0)) throw new Error(`video sampling: expected a positive target fps, found ${fps}`);
  if (!(maxDuration > 0)) throw new Error(`video sampling: expected a positive max duration, found ${maxDuration}`);
  const videoFps = meta.fps && meta.fps > 0 ? meta.fps : 2;
  const maxIdx = total - 1;
  const duration = meta.duration && meta.duration > 0 ? meta.duration : pyRound(maxIdx / videoFps) + 1;
  let indices: number[];
  if (duration <= maxDuration) {
    const n = Math.floor(duration * fps);
    indices = [];
    for (let i = 0; i < n; i++) indices.push(Math.min(maxIdx, Math.ceil((i * videoFps) / fps)));
  } else {
    const numSamples = Math.trunc(maxDuration * fps);
    if (numSamples >= total) {
      indices = Array.from({ length: total }, (_, i) => i);
    } else {
      indices = [];
      // numpy.linspace(0, duration, numSamples, endpoint=True): start + i*step, last point exactly `duration`.
      const step = duration / (numSamples - 1);
      for (let i = 0; i < numSamples; i++) {
        const t = i === numSamples - 1 ? duration : i * step;
        indices.push(Math.min(maxIdx, Math.ceil(t * videoFps)));
      }
    }
  }
  const seen = new Set<number>();
  const uniq: number[] = [];
  for (const i of indices) {
    if (!seen.has(i)) {
      seen.add(i);
      uniq.push(i);
    }
  }
  if (uniq.length === 0) uniq.push(0);
  if (uniq.length % 2 === 1) uniq.push(uniq[uniq.length - 1]);
  return uniq;
}

/**
 * Integer-second timestamp of each temporal group (every second sampled frame): `int(index / fps)`.
 * `temporalPatchSize` frames form one group.
 */
export function groupTimestamps(indices: number[], videoFps: number | null, temporalPatchSize = 2): number[] {
  const fps = videoFps && videoFps > 0 ? videoFps : 2;
  const out: number[] = [];
  for (let i = 0; i < indices.length; i += temporalPatchSize) out.push(Math.trunc(indices[i] / fps));
  return out;
}

// ---------------------------------------------------------------------------------------------------------------
// ffprobe / ffmpeg
// ---------------------------------------------------------------------------------------------------------------

interface RunResult {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function missingBinary(bin: string): Error {
  return new Error(
    `${bin} not found on PATH: video input needs the ffmpeg tools (Debian/Ubuntu: apt-get install ffmpeg)`,
  );
}

/** Kills `child` when `signal` aborts; returns the listener remover. */
function killOnAbort(
  child: ReturnType<typeof spawn>,
  signal: AbortSignal | undefined,
  onAbort: () => void,
): () => void {
  if (!signal) return () => {};
  const kill = () => {
    onAbort();
    child.kill('SIGKILL');
  };
  if (signal.aborted) kill();
  else signal.addEventListener('abort', kill, { once: true });
  return () => signal.removeEventListener('abort', kill);
}

function cancelled(what: string): Error {
  const e = new Error(`${what}: cancelled (the request was aborted)`);
  e.name = 'AbortError';
  return e;
}

function run(bin: string, args: string[], timeoutMs: number, signal?: AbortSignal): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(bin, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let err = '';
    let aborted = false;
    const unlisten = killOnAbort(child, signal, () => (aborted = true));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 20000) err += d.toString();
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      unlisten();
      reject(e.code === 'ENOENT' ? missingBinary(bin) : e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      unlisten();
      if (aborted) return reject(cancelled(bin));
      resolve({ code, stdout: Buffer.concat(out), stderr: err });
    });
  });
}

function parseRate(s: unknown): number | null {
  if (typeof s !== 'string') return null;
  const m = /^(\d+(?:\.\d+)?)(?:\/(\d+(?:\.\d+)?))?$/.exec(s.trim());
  if (!m) return null;
  const num = Number(m[1]);
  const den = m[2] === undefined ? 1 : Number(m[2]);
  if (!(den > 0) || !(num > 0)) return null;
  return num / den;
}

function positive(x: unknown): number | null {
  const n = typeof x === 'string' ? Number(x) : typeof x === 'number' ? x : Number.NaN;
  return Number.isFinite(n) && n > 0 ? n : null;
}

/** Checks the path and returns the container its bytes (and `mime`, when known) say it is. */
async function checkVideoPath(path: string, mime?: string | null): Promise<VideoContainer> {
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(path)) {
    throw new Error(`video ${path}: remote URLs are not fetched (no network at run time); download the file first`);
  }
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch {
    throw new Error(`video ${path}: file not found`);
  }
  if (!st.isFile()) throw new Error(`video ${path}: expected a file, found a directory or special file`);
  if (st.size === 0) throw new Error(`video ${path}: the file is empty (0 bytes)`);
  try {
    return detectVideoContainer(await readHead(path), mime);
  } catch (e) {
    throw new Error(`video ${path}: ${(e as Error).message}`);
  }
}

function firstLine(stderr: string): string {
  const lines = stderr
    .split('\n')
    .map((l) => l.trim())
    .filter(Boolean);
  return lines[lines.length - 1] ?? 'no diagnostic output';
}

export interface ProbeOptions {
  timeoutMs?: number;
  /** MIME type the input was sent with (a data URL's); must agree with the bytes. */
  mime?: string | null;
  /** Kills ffprobe when aborted. */
  signal?: AbortSignal;
}

/**
 * Reads frame count, frame rate, duration and display size of the first video stream. The demuxer is forced from
 * the file's first bytes (./video-format.ts): playlists and other files that reference files are refused.
 */
export async function probeVideo(path: string, opts: ProbeOptions | number = {}): Promise<VideoMetadata> {
  const o: ProbeOptions = typeof opts === 'number' ? { timeoutMs: opts } : opts;
  const container = await checkVideoPath(path, o.mime);
  const res = await run(
    'ffprobe',
    [
      '-v',
      'error',
      ...inputArgs(path, container),
      '-select_streams',
      'v:0',
      '-count_packets',
      '-show_entries',
      'stream=width,height,avg_frame_rate,r_frame_rate,nb_frames,nb_read_packets,duration:stream_side_data=rotation:format=duration',
      '-of',
      'json',
    ],
    o.timeoutMs ?? 120_000,
    o.signal,
  );
  if (res.code !== 0) throw new Error(`video ${path}: cannot read as a video (ffprobe: ${firstLine(res.stderr)})`);
  let info: {
    streams?: Array<Record<string, unknown> & { side_data_list?: Array<{ rotation?: number }> }>;
    format?: { duration?: string };
  };
  try {
    info = JSON.parse(res.stdout.toString());
  } catch {
    throw new Error(`video ${path}: ffprobe returned unparseable output`);
  }
  const s = info.streams?.[0];
  if (!s) throw new Error(`video ${path}: no video stream found`);
  const frames = positive(s.nb_read_packets) ?? positive(s.nb_frames);
  if (frames === null) throw new Error(`video ${path}: the video stream has no frames`);
  const fps = parseRate(s.avg_frame_rate) ?? parseRate(s.r_frame_rate);
  const duration = positive(s.duration) ?? positive(info.format?.duration);
  let width = positive(s.width) ?? undefined;
  let height = positive(s.height) ?? undefined;
  const rot = s.side_data_list?.find((d) => typeof d.rotation === 'number')?.rotation ?? 0;
  if (Math.abs(rot) % 180 === 90) [width, height] = [height, width];
  return { totalNumFrames: Math.round(frames), fps, duration, width, height };
}

/** Splits a stream of binary PPM (P6, maxval 255) images. */
class PpmReader {
  private buf: Buffer = Buffer.alloc(0);
  readonly frames: RgbImage[] = [];

  constructor(private readonly onFrame: (img: RgbImage) => RgbImage) {}

  push(chunk: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    for (;;) {
      const header = /^P6\s+(\d+)\s+(\d+)\s+(\d+)\s/.exec(this.buf.subarray(0, 64).toString('latin1'));
      if (!header) {
        if (this.buf.length >= 64) throw new Error('unexpected data in the ffmpeg frame stream (not a PPM header)');
        return;
      }
      const w = Number(header[1]);
      const h = Number(header[2]);
      if (header[3] !== '255') throw new Error(`ffmpeg produced ${header[3]}-level PPM frames, expected 8-bit`);
      const size = header[0].length + w * h * 3;
      if (this.buf.length < size) return;
      const data = new Uint8Array(this.buf.subarray(header[0].length, size));
      this.buf = this.buf.subarray(size);
      this.frames.push(this.onFrame({ width: w, height: h, data }));
    }
  }
}

/**
 * An ffmpeg `select` expression true exactly on the given frame numbers. Runs of consecutive indices become
 * `between(n,a,b)`; the terms are summed as a balanced tree because ffmpeg's expression parser fails on a flat
 * chain of more than about a hundred terms.
 */
export function selectExpression(indices: number[]): string {
  const terms: string[] = [];
  for (let i = 0; i < indices.length; ) {
    let j = i;
    while (j + 1 < indices.length && indices[j + 1] === indices[j] + 1) j++;
    terms.push(i === j ? `eq(n,${indices[i]})` : `between(n,${indices[i]},${indices[j]})`);
    i = j + 1;
  }
  const tree = (lo: number, hi: number): string => {
    if (hi - lo === 1) return terms[lo];
    const mid = (lo + hi) >> 1;
    return `(${tree(lo, mid)}+${tree(mid, hi)})`;
  };
  return tree(0, terms.length);
}

export interface DecodeOptions {
  /** Called on each frame as it arrives (in index order); its result is kept instead of the full frame. */
  onFrame?: (img: RgbImage, i: number) => RgbImage;
  timeoutMs?: number;
  /** MIME type the input was sent with; must agree with the bytes. */
  mime?: string | null;
  /** Kills ffmpeg when aborted (a client that went away). */
  signal?: AbortSignal;
}

/**
 * Decodes the frames at the given (sorted, unique) indices. Frames missing at the end of the stream (a container that
 * over-reports its length) are filled with the last decoded frame, as index clamping does.
 */
export async function decodeFrames(path: string, indices: number[], opts: DecodeOptions = {}): Promise<RgbImage[]> {
  const container = await checkVideoPath(path, opts.mime);
  if (indices.length === 0) return [];
  for (let i = 1; i < indices.length; i++) {
    if (indices[i] <= indices[i - 1]) throw new Error('decodeFrames: indices must be strictly increasing');
  }
  const expr = selectExpression(indices);
  const args = [
    '-v',
    'error',
    '-nostdin',
    ...inputArgs(path, container),
    '-map',
    '0:v:0',
    '-vf',
    `select='${expr}'`,
    '-fps_mode',
    'passthrough',
    // Stop once the last sampled frame is out instead of decoding the rest of the stream.
    '-frames:v',
    String(indices.length),
    '-f',
    'image2pipe',
    '-c:v',
    'ppm',
    '-pix_fmt',
    'rgb24',
    'pipe:1',
  ];
  const timeoutMs = opts.timeoutMs ?? 600_000;
  const frames = await new Promise<RgbImage[]>((resolve, reject) => {
    const child = spawn('ffmpeg', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let k = 0;
    const onFrame = opts.onFrame;
    const reader = new PpmReader((img) => (onFrame ? onFrame(img, k++) : img));
    let err = '';
    let failed: Error | null = null;
    const unlisten = killOnAbort(child, opts.signal, () => {
      failed ??= cancelled(`video ${path}`);
    });
    const timer = setTimeout(() => {
      failed = new Error(`video ${path}: ffmpeg did not finish within ${timeoutMs / 1000} s`);
      child.kill('SIGKILL');
    }, timeoutMs);
    child.stdout.on('data', (d: Buffer) => {
      if (failed) return;
      try {
        reader.push(d);
      } catch (e) {
        failed = new Error(`video ${path}: ${(e as Error).message}`);
        child.kill('SIGKILL');
      }
    });
    child.stderr.on('data', (d: Buffer) => {
      if (err.length < 20000) err += d.toString();
    });
    child.on('error', (e: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      unlisten();
      reject(e.code === 'ENOENT' ? missingBinary('ffmpeg') : e);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      unlisten();
      if (failed) return reject(failed);
      if (code !== 0) return reject(new Error(`video ${path}: cannot decode (ffmpeg: ${firstLine(err)})`));
      resolve(reader.frames);
    });
  });
  if (frames.length === 0) throw new Error(`video ${path}: ffmpeg decoded no frames`);
  while (frames.length < indices.length) frames.push(frames[frames.length - 1]);
  return frames;
}

// ---------------------------------------------------------------------------------------------------------------
// One entry point for files and frame lists
// ---------------------------------------------------------------------------------------------------------------

/**
 * A video file path, a `data:` URL or the encoded bytes, or frames already extracted (images in order, with their
 * frame rate; default 2 fps).
 */
export type VideoSource = string | Buffer | Uint8Array | { frames: ImageSource[]; fps?: number };

export interface LoadedVideo {
  /** Sampled frames in order, padded to an even count (resized if `targetSize` was given). */
  frames: RgbImage[];
  /** Source frame index of each sampled frame. */
  indices: number[];
  /** Integer-second timestamp of each temporal group. */
  timestamps: number[];
  metadata: VideoMetadata;
  /** Size of the source frames before any resize. */
  sourceHeight: number;
  sourceWidth: number;
}

export interface LoadVideoOptions extends SamplingOptions {
  /**
   * Chooses the output frame size from the sampled frame count and source size, so frames can be resized while
   * decoding (the processor's joint pixel budget). Omit to keep the source size.
   */
  targetSize?: (numFrames: number, height: number, width: number) => { height: number; width: number };
  temporalPatchSize?: number;
  timeoutMs?: number;
  /** MIME type of the bytes when known (a data URL's is used automatically); must agree with the bytes. */
  mime?: string | null;
  /** Kills ffprobe/ffmpeg when aborted (a client that went away). */
  signal?: AbortSignal;
  /**
   * Most pixels the decoder may produce: width × height × frames decoded (every frame up to the last sampled one,
   * since a decoder cannot skip frames). Checked from the probe, before any frame is decoded.
   */
  maxDecodedPixels?: number;
  /**
   * Called after probing and sampling, before any frame is decoded (may throw to refuse the video). The size is
   * the display size from the probe.
   */
  onProbe?: (meta: VideoMetadata & { width: number; height: number }, indices: number[]) => void;
}

/** A video over a decode budget (pixels, or tokens), found from the probe; servers answer it with 413. */
export class VideoBudgetError extends Error {
  constructor(
    message: string,
    /** What the video would cost (pixels or tokens, as the message says). */
    readonly cost: number,
    readonly limit: number,
  ) {
    super(message);
    this.name = 'VideoBudgetError';
  }
}

/**
 * Pixels a decoder produces to reach the sampled frames (width × height × (last index + 1)); throws
 * VideoBudgetError above `limit`.
 */
export function checkDecodeBudget(label: string, meta: VideoMetadata, indices: number[], limit: number): number {
  const w = meta.width ?? 0;
  const h = meta.height ?? 0;
  if (!(w > 0 && h > 0)) throw new Error(`${label}: the probe found no frame size, so the decode cost is unknown`);
  const frames = Math.max(...indices) + 1;
  const pixels = w * h * frames;
  if (pixels > limit)
    throw new VideoBudgetError(
      `${label}: decoding needs ${w}x${h} × ${frames} frames = ${pixels} pixels, more than the limit of ${limit} (a smaller or shorter clip fits)`,
      pixels,
      limit,
    );
  return pixels;
}

export function describeVideo(src: VideoSource): string {
  if (typeof src === 'string') return src.startsWith('data:') ? `data URL (${src.length} chars)` : src;
  if (src instanceof Uint8Array) return `buffer (${src.length} bytes)`;
  return Array.isArray(src?.frames) ? `frame list (${src.frames.length} frames)` : 'video';
}

/** Loads and samples a video file or a frame list. */
export async function loadVideo(src: VideoSource, opts: LoadVideoOptions = {}): Promise<LoadedVideo> {
  const tps = opts.temporalPatchSize ?? 2;
  if (src instanceof Uint8Array || (typeof src === 'string' && src.startsWith('data:'))) {
    // ffmpeg needs a seekable file for most containers: spill the bytes to a private temporary file.
    const label = describeVideo(src);
    const bytes = typeof src === 'string' ? decodeDataUrl(src) : src;
    const mime = typeof src === 'string' ? (/^data:([^;,]*)/.exec(src)?.[1] ?? null) : (opts.mime ?? null);
    if (bytes.length === 0) throw new Error(`video ${label}: no bytes to decode (empty input)`);
    const tmp = await mkdtemp(join(tmpdir(), 'glmv-video-'));
    try {
      const path = join(tmp, 'input');
      await writeFile(path, bytes);
      return await loadVideo(path, { ...opts, mime });
    } catch (e) {
      // Keep the error's class (budget, cancellation) and name the input instead of the temporary file.
      if (e instanceof Error) {
        e.message = e.message.replace(join(tmp, 'input'), label);
        throw e;
      }
      throw new Error(String(e));
    } finally {
      await rm(tmp, { recursive: true, force: true });
    }
  }
  if (typeof src === 'string') {
    const metadata = await probeVideo(src, { timeoutMs: opts.timeoutMs, mime: opts.mime, signal: opts.signal });
    const indices = sampleFrameIndices(metadata, opts);
    const unique = [...new Set(indices)];
    if (opts.maxDecodedPixels !== undefined) checkDecodeBudget(`video ${src}`, metadata, unique, opts.maxDecodedPixels);
    if (opts.onProbe && metadata.width && metadata.height)
      opts.onProbe({ ...metadata, width: metadata.width, height: metadata.height }, indices);
    let srcH = 0;
    let srcW = 0;
    let target: { height: number; width: number } | null = null;
    const decoded = await decodeFrames(src, unique, {
      timeoutMs: opts.timeoutMs,
      mime: opts.mime,
      signal: opts.signal,
      onFrame: (img) => {
        if (srcH === 0) {
          srcH = img.height;
          srcW = img.width;
          target = opts.targetSize ? opts.targetSize(indices.length, srcH, srcW) : null;
        } else if (img.height !== srcH || img.width !== srcW) {
          throw new Error(`frame size changed mid-stream (${srcW}x${srcH} to ${img.width}x${img.height})`);
        }
        return target ? resizeRgb(img, target.width, target.height) : img;
      },
    });
    const byIndex = new Map(unique.map((idx, i) => [idx, decoded[i]]));
    const frames = indices.map((i) => byIndex.get(i)!);
    return {
      frames,
      indices,
      timestamps: groupTimestamps(indices, metadata.fps, tps),
      metadata: { ...metadata, width: srcW, height: srcH },
      sourceHeight: srcH,
      sourceWidth: srcW,
    };
  }
  if (!src || !Array.isArray(src.frames)) {
    throw new Error('video: expected a file path or { frames: [...images], fps? }, found something else');
  }
  if (src.frames.length === 0) throw new Error('video frame list: expected at least one frame, found none');
  const fps = src.fps ?? 2;
  if (!(fps > 0) || !Number.isFinite(fps)) throw new Error(`video frame list: expected a positive fps, found ${fps}`);
  const metadata: VideoMetadata = { totalNumFrames: src.frames.length, fps, duration: src.frames.length / fps };
  const indices = sampleFrameIndices(metadata, opts);
  const unique = [...new Set(indices)];
  const loaded = new Map<number, RgbImage>();
  let first: RgbImage | null = null;
  let target: { height: number; width: number } | null = null;
  for (const idx of unique) {
    const img = await loadImage(src.frames[idx], `video frame ${idx} (${describeSource(src.frames[idx])})`);
    if (!first) {
      first = img;
      target = opts.targetSize ? opts.targetSize(indices.length, img.height, img.width) : null;
    } else if (img.width !== first.width || img.height !== first.height) {
      throw new Error(
        `video frame ${idx}: expected every frame to be ${first.width}x${first.height} like frame ${unique[0]}, found ${img.width}x${img.height}`,
      );
    }
    loaded.set(idx, target ? resizeRgb(img, target.width, target.height) : img);
  }
  return {
    frames: indices.map((i) => loaded.get(i)!),
    indices,
    timestamps: groupTimestamps(indices, fps, tps),
    metadata: { ...metadata, width: first!.width, height: first!.height },
    sourceHeight: first!.height,
    sourceWidth: first!.width,
  };
}
