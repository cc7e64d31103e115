import { createCanvas, loadImage } from '@napi-rs/canvas';

/** Decodes a PNG into RGBA pixels. */
export async function decodePng(png: Buffer): Promise<{ width: number; height: number; data: Uint8ClampedArray }> {
  const img = await loadImage(png);
  const c = createCanvas(img.width, img.height);
  const ctx = c.getContext('2d');
  ctx.drawImage(img, 0, 0);
  return { width: img.width, height: img.height, data: ctx.getImageData(0, 0, img.width, img.height).data };
}

/** Standard deviation of the luminance: ~0 for a blank image. */
export function lumaStd(p: { data: Uint8ClampedArray }): number {
  let s = 0;
  let s2 = 0;
  const n = p.data.length / 4;
  for (let i = 0; i < p.data.length; i += 4) {
    const y = 0.299 * p.data[i]! + 0.587 * p.data[i + 1]! + 0.114 * p.data[i + 2]!;
    s += y;
    s2 += y * y;
  }
  return Math.sqrt(Math.max(0, s2 / n - (s / n) ** 2));
}
