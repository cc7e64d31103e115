import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodePng, type RgbImage } from '../../src/io/image.js';
import { DEFAULT_VIDEO_CONFIG } from '../../src/io/processor/config.js';
import { Glm4vProcessor } from '../../src/io/processor/request.js';
import { expandMediaTokens } from '../../src/io/processor/tokens.js';
import { processVideo } from '../../src/io/processor/video.js';
import {
  decodeFrames,
  groupTimestamps,
  loadVideo,
  probeVideo,
  sampleFrameIndices,
  selectExpression,
} from '../../src/io/video.js';

const dir = mkdtempSync(join(tmpdir(), 'glmv-video-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ffmpeg(args: string[], input?: Buffer): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args], { input });
  if (r.error) throw new Error(`these tests need the ffmpeg binary (apt-get install ffmpeg): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr.toString()}`);
}

/** A lossless clip whose frame i is a flat grey of value (i * step) % 256, so decoded frames name their index. */
function indexedClip(path: string, frames: number, fps: number, step = 8, size = 16): void {
  const raw = Buffer.alloc(frames * size * size * 3);
  for (let i = 0; i < frames; i++) raw.fill((i * step) % 256, i * size * size * 3, (i + 1) * size * size * 3);
  ffmpeg(
    [
      '-f',
      'rawvideo',
      '-pix_fmt',
      'rgb24',
      '-s',
      `${size}x${size}`,
      '-r',
      String(fps),
      '-i',
      'pipe:0',
      '-c:v',
      'ffv1',
      '-pix_fmt',
      'bgr0',
      path,
    ],
    raw,
  );
}

describe('sampleFrameIndices (GLM-4.1V video sampling)', () => {
  it('samples at 2 fps within 300 s', () => {
    expect(sampleFrameIndices({ totalNumFrames: 30, fps: 30, duration: 1 })).toEqual([0, 15]);
    expect(sampleFrameIndices({ totalNumFrames: 30, fps: 10, duration: 3 })).toEqual([0, 5, 10, 15, 20, 25]);
  });
  it('pads an odd count with the last frame', () => {
    expect(sampleFrameIndices({ totalNumFrames: 45, fps: 30, duration: 1.5 })).toEqual([0, 15, 30, 30]);
  });
  it('removes duplicates when the video is slower than 2 fps', () => {
    // 1 fps for 4 s: ceil(i/2) = 0,1,1,2,2,3,3,4 → clamped to 3 → unique 0,1,2,3
    expect(sampleFrameIndices({ totalNumFrames: 4, fps: 1, duration: 4 })).toEqual([0, 1, 2, 3]);
  });
  it('falls back to 2 fps and round((N-1)/fps)+1 seconds without metadata', () => {
    // duration = round(9/2)+1 = round(4.5)+1 = 4+1 = 5 (banker's rounding) → 10 samples at ceil(i) → 0..9
    expect(sampleFrameIndices({ totalNumFrames: 10, fps: null, duration: null })).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9,
    ]);
  });
  it('takes 600 evenly spaced frames beyond 300 s', () => {
    const idx = sampleFrameIndices({ totalNumFrames: 20000, fps: 20, duration: 1000 });
    expect(idx.length).toBe(600);
    expect(idx[0]).toBe(0);
    // linspace(0, 1000, 600)[1] = 1.669…s → ceil(33.39) = 34; the last sample is clamped to the last frame.
    expect(idx[1]).toBe(34);
    expect(idx[599]).toBe(19999);
    // Every frame when the clip has fewer than 600.
    expect(sampleFrameIndices({ totalNumFrames: 400, fps: 1, duration: 400 })).toEqual(
      Array.from({ length: 400 }, (_, i) => i),
    );
  });
  it('keeps one (doubled) frame for a clip shorter than half a second', () => {
    expect(sampleFrameIndices({ totalNumFrames: 3, fps: 10, duration: 0.3 })).toEqual([0, 0]);
  });
  it('rejects nonsense metadata', () => {
    expect(() => sampleFrameIndices({ totalNumFrames: 0, fps: 10, duration: 1 })).toThrow(
      /positive frame count, found 0/,
    );
    expect(() => sampleFrameIndices({ totalNumFrames: 5, fps: 10, duration: 1 }, { fps: 0 })).toThrow(
      /positive target fps/,
    );
  });
  it('stamps each pair of frames with the integer second of its first frame', () => {
    expect(groupTimestamps([0, 15, 30, 45, 60, 75], 30)).toEqual([0, 1, 2]);
    expect(groupTimestamps([0, 29, 59, 61], 30)).toEqual([0, 1]);
  });
});

describe('video decoding with ffmpeg', () => {
  const clip = join(dir, 'indexed.mkv');
  beforeAll(() => indexedClip(clip, 30, 10));

  it('probes frame count, rate and duration', async () => {
    expect(await probeVideo(clip)).toMatchObject({ totalNumFrames: 30, fps: 10, width: 16, height: 16 });
  });

  it('decodes exactly the requested frames', async () => {
    const frames = await decodeFrames(clip, [0, 5, 17, 29]);
    expect(frames.map((f) => f.data[0])).toEqual([0, 40, 136, 232]);
    expect(frames.every((f) => f.width === 16 && f.height === 16 && f.data.every((v) => v === f.data[0]))).toBe(true);
  });

  it('loads a file: 2 fps sampling, timestamps and frames in order', async () => {
    const v = await loadVideo(clip);
    expect(v.indices).toEqual([0, 5, 10, 15, 20, 25]);
    expect(v.timestamps).toEqual([0, 1, 2]);
    expect(v.frames.map((f) => f.data[0])).toEqual([0, 40, 80, 120, 160, 200]);
  });

  it('samples 600 frames from a clip longer than 300 s', async () => {
    const long = join(dir, 'long.mkv');
    indexedClip(long, 620, 2, 1, 8); // 310 s at 2 fps
    const v = await loadVideo(long);
    expect(v.indices.length).toBe(600);
    expect(v.frames.map((f) => f.data[0])).toEqual(v.indices.map((i) => i % 256));
    expect(v.timestamps[v.timestamps.length - 1]).toBe(Math.trunc(v.indices[598] / 2));
  });

  it('accepts the encoded bytes or a data URL as well as a path', async () => {
    const bytes = readFileSync(clip);
    const fromPath = await loadVideo(clip);
    for (const src of [bytes, `data:video/x-matroska;base64,${bytes.toString('base64')}`]) {
      const v = await loadVideo(src);
      expect(v.indices).toEqual(fromPath.indices);
      expect(v.frames.map((f) => f.data[0])).toEqual(fromPath.frames.map((f) => f.data[0]));
    }
    await expect(loadVideo(Buffer.from('garbage bytes, not a container'))).rejects.toThrow(
      /video buffer \(30 bytes\): cannot read as a video/,
    );
    await expect(loadVideo(new Uint8Array(0))).rejects.toThrow(/buffer \(0 bytes\): no bytes to decode/);
  });

  it('applies display rotation', async () => {
    const mp4 = join(dir, 'card.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-t', '1', '-pix_fmt', 'yuv420p', mp4]);
    const rot = join(dir, 'rot.mp4');
    ffmpeg(['-i', mp4, '-c', 'copy', '-metadata:s:v', 'rotate=90', rot]);
    const meta = await probeVideo(rot);
    expect([meta.width, meta.height]).toEqual([48, 64]);
    const v = await loadVideo(rot);
    expect([v.sourceWidth, v.sourceHeight]).toEqual([48, 64]);
  });

  it('gives clear errors for unreadable, empty and missing videos', async () => {
    const junk = join(dir, 'junk.mp4');
    writeFileSync(junk, Buffer.from('definitely not a video file, just text bytes'.repeat(20)));
    await expect(loadVideo(junk)).rejects.toThrow(
      /video .*junk\.mp4: cannot read as a video: the first bytes "definitely not/,
    );
    const empty = join(dir, 'empty.mp4');
    writeFileSync(empty, '');
    await expect(loadVideo(empty)).rejects.toThrow(/empty\.mp4: the file is empty/);
    await expect(loadVideo(join(dir, 'nope.mp4'))).rejects.toThrow(/nope\.mp4: file not found/);
    const png = join(dir, 'still.png');
    writeFileSync(png, await encodePng({ width: 2, height: 2, data: new Uint8Array(12) }));
    // A still image is a one-frame "video" to ffmpeg: accepted, and doubled to one temporal group.
    const still = await loadVideo(png);
    expect(still.frames.length).toBe(2);
  });
});

describe('video processor', () => {
  it('turns a clip into grid, rows and the timestamped prompt', async () => {
    const mp4 = join(dir, 'testsrc.mp4');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=64x48:rate=10', '-t', '3', '-pix_fmt', 'yuv420p', mp4]);
    const v = await processVideo(mp4);
    // smart_resize(6 frames, 48, 64): round(48/28)·28 = 56, round(64/28)·28 = 56 → 4x4 patches, 3 groups of 4 tokens.
    expect(v.gridThw).toEqual([3, 4, 4]);
    expect(v.numTokens).toBe(12);
    expect(v.timestamps).toEqual([0, 1, 2]);
    expect(v.pixelValues.length).toBe(48 * 1176);
    const text = expandMediaTokens('<|begin_of_video|><|video|><|end_of_video|>', { videos: [v] });
    expect(text).toBe(
      `<|begin_of_video|>${[0, 1, 2].map((t) => `<|begin_of_image|>${'<|image|>'.repeat(4)}<|end_of_image|>${t}`).join('')}<|end_of_video|>`,
    );
  });

  it('gives the same result for a file and for its frames given as a list', async () => {
    const mkv = join(dir, 'pattern.mkv');
    ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=60x40:rate=4', '-t', '2', '-c:v', 'ffv1', '-pix_fmt', 'bgr0', mkv]);
    const pngDir = mkdtempSync(join(dir, 'frames-'));
    execFileSync('ffmpeg', ['-v', 'error', '-i', mkv, join(pngDir, 'f%03d.png')]);
    const frames = Array.from({ length: 8 }, (_, i) => join(pngDir, `f${String(i + 1).padStart(3, '0')}.png`));
    const fromFile = await processVideo(mkv);
    const fromList = await processVideo({ frames, fps: 4 });
    expect(fromList.frameIndices).toEqual(fromFile.frameIndices);
    expect(fromList.timestamps).toEqual(fromFile.timestamps);
    expect(fromList.gridThw).toEqual(fromFile.gridThw);
    expect(Buffer.from(fromList.pixelValues.buffer).equals(Buffer.from(fromFile.pixelValues.buffer))).toBe(true);
  });

  it('a frame list at the default 2 fps keeps every frame', async () => {
    const frame = (v: number): RgbImage => ({ width: 56, height: 56, data: new Uint8Array(56 * 56 * 3).fill(v) });
    const v = await processVideo({ frames: [frame(0), frame(50), frame(100)] });
    expect(v.frameIndices).toEqual([0, 1, 2, 2]);
    expect(v.timestamps).toEqual([0, 1]);
    expect(v.gridThw).toEqual([2, 4, 4]);
  });

  it('applies the joint pixel budget and the token cap', async () => {
    const big = (v: number): RgbImage => ({ width: 640, height: 480, data: new Uint8Array(640 * 480 * 3).fill(v) });
    const frames = Array.from({ length: 40 }, (_, i) => big(i));
    const v = await processVideo({ frames }, DEFAULT_VIDEO_CONFIG, { maxTokens: 1000 });
    expect(v.gridThw[0]).toBe(20);
    expect(v.numTokens).toBeLessThanOrEqual(1000);
    expect(40 * v.resizedHeight * v.resizedWidth).toBeLessThanOrEqual(1000 * 2 * 28 * 28);
  });

  it('rejects frame lists with mixed sizes or no frames', async () => {
    const f = (w: number) => ({ width: w, height: 30, data: new Uint8Array(w * 30 * 3) });
    await expect(processVideo({ frames: [f(30), f(40)] })).rejects.toThrow(
      /video frame 1: expected every frame to be 30x30 like frame 0, found 40x30/,
    );
    await expect(processVideo({ frames: [] })).rejects.toThrow(/expected at least one frame, found none/);
  });

  it('rejects a video over the token cap with numbers in the message', async () => {
    const p = new Glm4vProcessor({ maxVideoTokens: 5 });
    const frame = { width: 28, height: 28 * 201, data: new Uint8Array(28 * 28 * 201 * 3) };
    await expect(p.processVideo({ frames: [frame, frame] })).rejects.toThrow(/aspect ratio of at most 200/);
    const ok = { width: 112, height: 112, data: new Uint8Array(112 * 112 * 3) };
    // 112x112 needs at least 28x28 per group; 2 groups → 2 tokens; a cap of 1 cannot be met.
    const tiny = new Glm4vProcessor({ maxVideoTokens: 1 });
    await expect(tiny.processVideo({ frames: [ok, ok, ok, ok] })).rejects.toThrow(
      /needs 2 visual tokens .* more than the cap of 1/,
    );
  });
});

describe('selectExpression', () => {
  it('folds runs into between() and balances the sum', () => {
    expect(selectExpression([3])).toBe('eq(n,3)');
    expect(selectExpression([0, 1, 2, 5, 9, 10])).toBe('(between(n,0,2)+(eq(n,5)+between(n,9,10)))');
  });
});
