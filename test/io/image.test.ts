import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import sharp from 'sharp';
import { afterAll, describe, expect, it } from 'vitest';
import { decodeDataUrl, encodePng, loadImage, type RgbImage, resizeRgb } from '../../src/io/image.js';

const dir = mkdtempSync(join(tmpdir(), 'glmv-image-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** A 4x2 RGB test card: distinct colours so orientation and channel order are checkable. */
const CARD: RgbImage = {
  width: 4,
  height: 2,
  data: Uint8Array.from([
    255, 0, 0, 0, 255, 0, 0, 0, 255, 255, 255, 0, 0, 255, 255, 255, 0, 255, 10, 20, 30, 200, 100, 50,
  ]),
};
const raw = (img: RgbImage, channels = 3) => ({
  raw: { width: img.width, height: img.height, channels: channels as 3 },
});

describe('loadImage', () => {
  it('decodes PNG from a path, a buffer and a data URL to the same RGB bytes', async () => {
    const png = await encodePng(CARD);
    const path = join(dir, 'card.png');
    writeFileSync(path, png);
    const a = await loadImage(path);
    const b = await loadImage(png);
    const c = await loadImage(`data:image/png;base64,${png.toString('base64')}`);
    for (const x of [a, b, c]) {
      expect([x.width, x.height]).toEqual([4, 2]);
      expect(Array.from(x.data)).toEqual(Array.from(CARD.data));
    }
  });

  it('decodes lossless WebP and a JPEG (approximately)', async () => {
    const webp = await sharp(CARD.data, raw(CARD)).webp({ lossless: true }).toBuffer();
    expect(Array.from((await loadImage(webp)).data)).toEqual(Array.from(CARD.data));
    const flat = {
      width: 16,
      height: 16,
      data: new Uint8Array(16 * 16 * 3).fill(0).map((_, i) => [40, 120, 200][i % 3]),
    };
    const jpeg = await sharp(flat.data, raw(flat)).jpeg({ quality: 95 }).toBuffer();
    const j = await loadImage(jpeg);
    expect([j.width, j.height]).toEqual([16, 16]);
    for (let i = 0; i < j.data.length; i++) expect(Math.abs(j.data[i] - flat.data[i])).toBeLessThanOrEqual(3);
  });

  it('composites alpha on white and expands greyscale', async () => {
    // RGBA: opaque red, fully transparent, half-transparent black.
    const rgba = Uint8Array.from([255, 0, 0, 255, 0, 0, 255, 0, 0, 0, 0, 128]);
    const png = await sharp(rgba, { raw: { width: 3, height: 1, channels: 4 } })
      .png()
      .toBuffer();
    const img = await loadImage(png);
    expect(Array.from(img.data.subarray(0, 6))).toEqual([255, 0, 0, 255, 255, 255]);
    for (const v of img.data.subarray(6)) expect(Math.abs(v - 127)).toBeLessThanOrEqual(1);
    const grey = await sharp(Uint8Array.from([0, 100, 255]), { raw: { width: 3, height: 1, channels: 1 } })
      .png()
      .toBuffer();
    expect(Array.from((await loadImage(grey)).data)).toEqual([0, 0, 0, 100, 100, 100, 255, 255, 255]);
  });

  it('converts 16-bit PNGs to 8 bits', async () => {
    const png16 = await sharp(CARD.data, raw(CARD)).toColourspace('rgb16').png().toBuffer();
    const meta = await sharp(png16).metadata();
    expect(meta.depth).toBe('ushort');
    expect(Array.from((await loadImage(png16)).data)).toEqual(Array.from(CARD.data));
  });

  it('applies the EXIF orientation', async () => {
    // Orientation 6: the stored image must be rotated 90° clockwise for display, so 4x2 becomes 2x4.
    const jpeg = await sharp(CARD.data, raw(CARD)).jpeg({ quality: 100 }).withMetadata({ orientation: 6 }).toBuffer();
    const img = await loadImage(jpeg);
    expect([img.width, img.height]).toEqual([2, 4]);
  });

  it('takes the first frame of an animated GIF', async () => {
    const gif = join(dir, 'anim.gif');
    // Two frames: red then blue.
    execFileSync('ffmpeg', [
      '-v',
      'error',
      '-y',
      '-f',
      'lavfi',
      '-i',
      'color=c=red:s=8x8:r=1:d=1',
      '-f',
      'lavfi',
      '-i',
      'color=c=blue:s=8x8:r=1:d=1',
      '-filter_complex',
      '[0][1]concat=n=2:v=1[v]',
      '-map',
      '[v]',
      gif,
    ]);
    const meta = await sharp(gif, { pages: -1 }).metadata();
    expect(meta.pages).toBe(2);
    const img = await loadImage(gif);
    expect([img.width, img.height]).toEqual([8, 8]);
    expect(img.data[0]).toBeGreaterThan(200);
    expect(img.data[2]).toBeLessThan(50);
  });

  it('passes an in-memory RGB image through after checking it', async () => {
    expect(await loadImage(CARD)).toBe(CARD);
    await expect(loadImage({ width: 2, height: 2, data: new Uint8Array(5) })).rejects.toThrow(
      /expected 2x2x3 = 12 bytes of RGB data, found 5/,
    );
  });

  it('gives clear errors for corrupt, empty, zero-size and missing inputs', async () => {
    const corrupt = join(dir, 'corrupt.png');
    const png = await encodePng(CARD);
    writeFileSync(corrupt, png.subarray(0, 40));
    await expect(loadImage(corrupt)).rejects.toThrow(/image .*corrupt\.png: cannot decode as an image/);
    await expect(loadImage(Buffer.from('this is not an image'))).rejects.toThrow(
      /image buffer \(20 bytes\): cannot decode/,
    );
    const empty = join(dir, 'empty.png');
    writeFileSync(empty, '');
    await expect(loadImage(empty)).rejects.toThrow(/empty\.png: the file is empty \(0 bytes\)/);
    await expect(loadImage(new Uint8Array(0))).rejects.toThrow(/no bytes to decode/);
    await expect(loadImage({ width: 0, height: 3, data: new Uint8Array(0) })).rejects.toThrow(
      /positive integer width and height, found 0x3/,
    );
    // A PNG header that declares a 0x0 image.
    const zero = Buffer.from(png);
    zero.writeUInt32BE(0, 16);
    zero.writeUInt32BE(0, 20);
    await expect(loadImage(zero)).rejects.toThrow(/cannot decode as an image/);
    await expect(loadImage(join(dir, 'missing.png'))).rejects.toThrow(/missing\.png: file not found/);
    await expect(loadImage(dir)).rejects.toThrow(/expected a file, found a directory/);
    await expect(loadImage('https://example.com/a.png')).rejects.toThrow(/remote URLs are not fetched/);
    await expect(loadImage('data:image/png;base64,@@@')).rejects.toThrow(/outside the base64 alphabet/);
  });

  it('decodes percent-encoded data URLs', () => {
    expect(decodeDataUrl('data:text/plain,a%20b').toString()).toBe('a b');
    expect(() => decodeDataUrl('data:nope')).toThrow(/expected "data:<mime>/);
  });
});

describe('resizeRgb (Pillow semantics)', () => {
  const row = (vals: number[]): RgbImage => ({
    width: vals.length,
    height: 1,
    data: Uint8Array.from(vals.flatMap((v) => [v, v, v])),
  });
  const reds = (img: RgbImage) => Array.from(img.data).filter((_, i) => i % 3 === 0);

  it('box filter 4→2 averages pairs', () => {
    expect(reds(resizeRgb(row([0, 100, 200, 250]), 2, 1, 'box'))).toEqual([50, 225]);
  });

  it('bilinear 4→2 widens the support (antialias): hand-computed 3/7,3/7,1/7 taps', () => {
    // out0 = (0·3 + 100·3 + 200·1)/7 = 71.4; out1 = (100·1 + 200·3 + 250·3)/7 = 207.1
    expect(reds(resizeRgb(row([0, 100, 200, 250]), 2, 1, 'bilinear'))).toEqual([71, 207]);
  });

  it('bicubic 2→4 upscales with the a=-0.5 kernel: hand-computed taps', () => {
    // Scale 0.5, support 2. Output x samples at centre (x+0.5)/2; input pixel i sits at i+0.5.
    // k(0.25)=0.8671875, k(0.75)=0.2265625, k(1.25)=-0.0703125 (out-of-range taps are dropped, weights renormalised).
    // out0: centre 0.25 → (0·k(0.25) + 200·k(1.25)) / 0.796875 = -17.6 → clipped to 0
    // out1: centre 0.75 → (0·k(0.25) + 200·k(0.75)) / 1.09375 = 41.4 → 41; out2, out3 mirror them.
    expect(reds(resizeRgb(row([0, 200]), 4, 1, 'bicubic'))).toEqual([0, 41, 159, 218]);
  });

  it('keeps a constant image constant and clips overshoot to 0..255', () => {
    const flat = { width: 7, height: 5, data: new Uint8Array(7 * 5 * 3).fill(77) };
    expect(new Set(resizeRgb(flat, 3, 9).data)).toEqual(new Set([77]));
    const edge = row([0, 0, 255, 255]);
    const up = reds(resizeRgb(edge, 13, 1, 'lanczos'));
    expect(Math.min(...up)).toBe(0);
    expect(Math.max(...up)).toBe(255);
  });

  it('returns a copy for an identity resize and rejects bad sizes', () => {
    const same = resizeRgb(CARD, 4, 2);
    expect(same.data).not.toBe(CARD.data);
    expect(Array.from(same.data)).toEqual(Array.from(CARD.data));
    expect(() => resizeRgb(CARD, 0, 2)).toThrow(/positive integer target size, found 0x2/);
  });
});
