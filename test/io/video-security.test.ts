/**
 * Hostile video input (issue #20 items 1 and 4): playlists, concat lists and files that reference other files are
 * never followed; the decode cost is checked from the probe before decoding; an aborted request kills its decoder.
 */
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadVideo, probeVideo, VideoBudgetError } from '../../src/io/video.js';
import { detectVideoContainer, inputArgs } from '../../src/io/video-format.js';

const dir = mkdtempSync(join(tmpdir(), 'glmv-vidsec-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function ffmpeg(args: string[]): void {
  const r = spawnSync('ffmpeg', ['-v', 'error', '-y', ...args]);
  if (r.error) throw new Error(`these tests need the ffmpeg binary (apt-get install ffmpeg): ${r.error.message}`);
  if (r.status !== 0) throw new Error(`ffmpeg failed: ${r.stderr.toString()}`);
}

const b64 = (s: string | Buffer) => Buffer.from(s).toString('base64');

let secret: string; // a real, decodable local clip the attacker wants read
beforeAll(() => {
  secret = join(dir, 'secret.mkv');
  ffmpeg(['-f', 'lavfi', '-i', 'testsrc=size=32x32:rate=4', '-t', '1', '-c:v', 'ffv1', secret]);
}, 60_000);

describe('video input never opens other files (item 1)', () => {
  it('an HLS playlist naming a local file is refused, whatever MIME type it is sent with', async () => {
    const playlist = `#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:10,\n${secret}\n#EXT-X-ENDLIST\n`;
    for (const mime of ['video/mp4', 'application/vnd.apple.mpegurl', 'application/octet-stream']) {
      await expect(loadVideo(`data:${mime};base64,${b64(playlist)}`)).rejects.toThrow(
        /cannot read as a video: the first bytes "#EXTM3U\\n#EXT-X-TARGETDU.*" are not a known container/,
      );
    }
    await expect(loadVideo(Buffer.from(playlist))).rejects.toThrow(/not a known container/);
  });

  it('answers the same for a playlist naming an existing and a missing file (no existence oracle)', async () => {
    const msg = async (path: string) =>
      loadVideo(Buffer.from(`#EXTM3U\n#EXTINF:1,\n${path}\n`)).then(
        () => 'decoded',
        (e: Error) => e.message.replace(path, 'PATH'),
      );
    const a = await msg(secret);
    const b = await msg(join(dir, 'absent.mkv')); // same length as secret.mkv
    expect(a).not.toBe('decoded');
    expect(a).toBe(b);
  });

  it('a playlist with a remote URL and an ffconcat list are refused', async () => {
    const remote = '#EXTM3U\n#EXTINF:10,\nhttp://127.0.0.1:9/clip.ts\n';
    await expect(loadVideo(`data:video/mp4;base64,${b64(remote)}`)).rejects.toThrow(/not a known container/);
    const concat = `ffconcat version 1.0\nfile '${secret}'\n`;
    await expect(loadVideo(`data:video/mp4;base64,${b64(concat)}`)).rejects.toThrow(
      /first bytes "ffconcat version 1.0\\nfil…" are not a known container/,
    );
    const sdp = 'v=0\no=- 0 0 IN IP4 127.0.0.1\ns=x\nc=IN IP4 127.0.0.1\nm=video 5004 RTP/AVP 96\n';
    await expect(loadVideo(Buffer.from(sdp))).rejects.toThrow(/not a known container/);
  });

  it('a playlist saved under a video name on disk is refused by content, not by extension', async () => {
    const p = join(dir, 'clip.mp4');
    writeFileSync(p, `#EXTM3U\n#EXTINF:1,\n${secret}\n`);
    await expect(probeVideo(p)).rejects.toThrow(/clip\.mp4: cannot read as a video: the first bytes/);
  });

  it('a real container with a playlist inside is read by its own demuxer only: the reference is not followed', async () => {
    // An MP4 `ftyp` box followed by a playlist: ffmpeg's own probing would find the playlist text, the forced
    // mov demuxer finds no movie.
    const ftyp = Buffer.concat([Buffer.from([0, 0, 0, 20]), Buffer.from('ftypisom\0\0\x02\0isom')]);
    const poly = Buffer.concat([ftyp, Buffer.from(`\n#EXTM3U\n#EXTINF:1,\n${secret}\n#EXT-X-ENDLIST\n`)]);
    await expect(loadVideo(`data:video/mp4;base64,${poly.toString('base64')}`)).rejects.toThrow(
      /cannot read as a video \(ffprobe: /,
    );
    // The arguments every ffprobe/ffmpeg call gets: one protocol, the forced demuxer, no data references.
    expect(inputArgs('/x/input', detectVideoContainer(ftyp))).toEqual([
      '-protocol_whitelist',
      'file',
      '-f',
      'mov',
      '-enable_drefs',
      '0',
      '-i',
      'file:/x/input',
    ]);
  });

  it('a MIME type that disagrees with the bytes is refused; a real clip still decodes', async () => {
    const mkv = readFileSync(secret);
    await expect(loadVideo(`data:video/mp4;base64,${mkv.toString('base64')}`)).rejects.toThrow(
      /the MIME type says video\/mp4 but the bytes are Matroska\/WebM/,
    );
    await expect(loadVideo(`data:text/html;base64,${mkv.toString('base64')}`)).rejects.toThrow(
      /MIME type "text\/html" is not a video container/,
    );
    const v = await loadVideo(`data:video/webm;base64,${mkv.toString('base64')}`);
    expect(v.frames.length).toBe(2);
    expect(v.sourceWidth).toBe(32);
  });
});

describe('video decode budget and cancellation (item 4)', () => {
  let uhd: Buffer;
  beforeAll(() => {
    // The clip: 3840x2160, 4 seconds, about 26 KB.
    const p = join(dir, 'uhd.mp4');
    ffmpeg([
      '-f',
      'lavfi',
      '-i',
      'color=c=gray:size=3840x2160:rate=30',
      '-t',
      '4',
      '-c:v',
      'libx264',
      '-preset',
      'ultrafast',
      '-pix_fmt',
      'yuv420p',
      p,
    ]);
    uhd = readFileSync(p);
  }, 120_000);

  it('refuses a clip over the budget from the probe, before decoding a frame', async () => {
    expect(uhd.length).toBeLessThan(64 * 1024);
    const err = await loadVideo(uhd, { maxDecodedPixels: 2 ** 28 }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VideoBudgetError);
    // 2 fps over 4 s: samples 0, 15, ..., 105 → 106 frames decoded at 3840x2160.
    expect((err as VideoBudgetError).cost).toBe(3840 * 2160 * 106);
    expect((err as Error).message).toMatch(
      /buffer \(\d+ bytes\): decoding needs 3840x2160 × 106 frames = 879206400 pixels, more than the limit of 268435456/,
    );
  });

  it('kills the decoder when the request is aborted', async () => {
    const ac = new AbortController();
    const p = loadVideo(uhd, { signal: ac.signal, maxDecodedPixels: 2 ** 40 });
    setTimeout(() => ac.abort(), 300);
    const err = (await p.catch((e: unknown) => e)) as Error;
    expect(err.name).toBe('AbortError');
    expect(err.message).toMatch(/cancelled \(the request was aborted\)/);
    // The rejection comes from the child's exit (see run/decodeFrames): the decoder is gone when it settles.
  });

  it('an already aborted signal starts no decoder', async () => {
    const ac = new AbortController();
    ac.abort();
    await expect(loadVideo(readFileSync(secret), { signal: ac.signal })).rejects.toThrow(/cancelled/);
  });
});
