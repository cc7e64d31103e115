/**
 * Image decoding and resampling.
 *
 * Decoding goes through sharp (libvips): PNG, JPEG, WebP, GIF (first frame), TIFF, AVIF, BMP-less formats libvips
 * knows. Every image comes out as 8-bit RGB, row-major, interleaved (HWC): alpha is composited on white, greyscale is
 * expanded to three channels, EXIF orientation is applied.
 *
 * Resampling reproduces Pillow's `Image.resize` for 8-bit images (the reference processor resizes with PIL BICUBIC):
 * a separable two-pass filter (horizontal first, then vertical), each pass rounding to uint8, with the filter support
 * widened by the scale factor when downscaling (antialiasing) and coefficients quantised to 22-bit fixed point.
 */
import { readFile, stat } from 'node:fs/promises';
import sharp from 'sharp';

/** An 8-bit RGB image, rows top to bottom, pixels interleaved `[r,g,b, r,g,b, ...]`. */
export interface RgbImage {
  width: number;
  height: number;
  data: Uint8Array;
}

/** A file path, a `data:` URL, encoded bytes, or an already decoded image. */
export type ImageSource = string | Buffer | Uint8Array | RgbImage;

export function isRgbImage(x: unknown): x is RgbImage {
  return (
    typeof x === 'object' &&
    x !== null &&
    !(x instanceof Uint8Array) &&
    typeof (x as RgbImage).width === 'number' &&
    typeof (x as RgbImage).height === 'number' &&
    (x as RgbImage).data instanceof Uint8Array
  );
}

/** Checks an in-memory image for consistent dimensions; throws with `label` in the message. */
export function assertRgbImage(img: RgbImage, label = 'image'): void {
  const { width, height, data } = img;
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`${label}: expected a positive integer width and height, found ${width}x${height}`);
  }
  if (data.length !== width * height * 3) {
    throw new Error(
      `${label}: expected ${width}x${height}x3 = ${width * height * 3} bytes of RGB data, found ${data.length}`,
    );
  }
}

/** Short description of a source for error messages (never the whole buffer or data URL). */
export function describeSource(src: ImageSource): string {
  if (typeof src === 'string') return src.startsWith('data:') ? `data URL (${src.length} chars)` : src;
  if (isRgbImage(src)) return `RGB image ${src.width}x${src.height}`;
  return `buffer (${src.length} bytes)`;
}

const DATA_URL = /^data:([^;,]*)((?:;[^;,]*)*),(.*)$/s;

/** Decodes a `data:` URL into bytes (base64 or percent-encoded). */
export function decodeDataUrl(url: string): Buffer {
  const m = DATA_URL.exec(url);
  if (!m) throw new Error(`data URL: expected "data:<mime>[;base64],<payload>", found "${url.slice(0, 40)}..."`);
  const isBase64 = m[2].split(';').includes('base64');
  const payload = m[3];
  if (isBase64) {
    const clean = payload.replace(/\s+/g, '');
    if (!/^[A-Za-z0-9+/_-]*={0,2}$/.test(clean)) {
      throw new Error('data URL: the payload is marked base64 but contains characters outside the base64 alphabet');
    }
    return Buffer.from(clean, 'base64');
  }
  return Buffer.from(decodeURIComponent(payload), 'latin1');
}

/** Reads the bytes behind a path, data URL or buffer. URLs other than `data:` are refused: nothing is downloaded. */
export async function readSourceBytes(src: string | Buffer | Uint8Array, what = 'image'): Promise<Buffer> {
  if (typeof src !== 'string') return Buffer.isBuffer(src) ? src : Buffer.from(src.buffer, src.byteOffset, src.length);
  if (src.startsWith('data:')) return decodeDataUrl(src);
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(src) && !src.startsWith('file://')) {
    throw new Error(`${what} ${src}: remote URLs are not fetched (no network at run time); download the file first`);
  }
  const path = src.startsWith('file://') ? new URL(src).pathname : src;
  let st: Awaited<ReturnType<typeof stat>>;
  try {
    st = await stat(path);
  } catch {
    throw new Error(`${what} ${path}: file not found`);
  }
  if (!st.isFile()) throw new Error(`${what} ${path}: expected a file, found a directory or special file`);
  if (st.size === 0) throw new Error(`${what} ${path}: the file is empty (0 bytes)`);
  return readFile(path);
}

/**
 * Decodes any image sharp can read into 8-bit RGB. Alpha is composited on white, greyscale/CMYK/16-bit are converted,
 * EXIF orientation is applied; for animated images (GIF, WebP) only the first frame is used.
 */
export async function loadImage(src: ImageSource, label?: string): Promise<RgbImage> {
  const name = label ?? describeSource(src);
  if (isRgbImage(src)) {
    assertRgbImage(src, name);
    return src;
  }
  const bytes = await readSourceBytes(src, 'image');
  if (bytes.length === 0) throw new Error(`image ${name}: no bytes to decode (empty input)`);
  let out: { data: Buffer; info: { width: number; height: number; channels: number } };
  try {
    out = await sharp(bytes, { failOn: 'error', pages: 1, page: 0, autoOrient: true })
      .flatten({ background: { r: 255, g: 255, b: 255 } })
      .toColourspace('srgb')
      .removeAlpha()
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
  } catch (e) {
    throw new Error(`image ${name}: cannot decode as an image (${(e as Error).message.split('\n')[0]})`);
  }
  const { width, height, channels } = out.info;
  if (width <= 0 || height <= 0) throw new Error(`image ${name}: decoded to an empty image (${width}x${height})`);
  let data = new Uint8Array(out.data.buffer, out.data.byteOffset, out.data.length);
  if (channels === 1) data = expandGrey(data);
  else if (channels !== 3)
    throw new Error(`image ${name}: expected 3 colour channels after conversion, found ${channels}`);
  if (data.length !== width * height * 3) {
    throw new Error(`image ${name}: decoder returned ${data.length} bytes for ${width}x${height} RGB`);
  }
  return { width, height, data };
}

function expandGrey(grey: Uint8Array): Uint8Array {
  const rgb = new Uint8Array(grey.length * 3);
  for (let i = 0; i < grey.length; i++) {
    const v = grey[i];
    rgb[3 * i] = v;
    rgb[3 * i + 1] = v;
    rgb[3 * i + 2] = v;
  }
  return rgb;
}

/** Encodes an RGB image as PNG (for fixtures, debugging and tests). */
export async function encodePng(img: RgbImage): Promise<Buffer> {
  assertRgbImage(img);
  return sharp(img.data, { raw: { width: img.width, height: img.height, channels: 3 } })
    .png()
    .toBuffer();
}

// ---------------------------------------------------------------------------------------------------------------
// Pillow-compatible resampling
// ---------------------------------------------------------------------------------------------------------------

/** Pillow's resampling filters, with the numeric codes used by `resample` in preprocessor configs. */
export type ResampleFilter = 'lanczos' | 'bilinear' | 'bicubic' | 'box' | 'hamming';

export const PIL_RESAMPLE_CODES: Record<number, ResampleFilter | 'nearest'> = {
  0: 'nearest',
  1: 'lanczos',
  2: 'bilinear',
  3: 'bicubic',
  4: 'box',
  5: 'hamming',
};

interface FilterDef {
  support: number;
  fn: (x: number) => number;
}

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

// Float32 constants as Pillow writes them (0.54f, 0.46f) so the Hamming window matches to the last bit.
const F054 = Math.fround(0.54);
const F046 = Math.fround(0.46);

const FILTERS: Record<ResampleFilter, FilterDef> = {
  box: { support: 0.5, fn: (x) => (x > -0.5 && x <= 0.5 ? 1 : 0) },
  bilinear: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      return a < 1 ? 1 - a : 0;
    },
  },
  hamming: {
    support: 1,
    fn: (x) => {
      const a = Math.abs(x);
      if (a === 0) return 1;
      if (a >= 1) return 0;
      const px = a * Math.PI;
      return (Math.sin(px) / px) * (F054 + F046 * Math.cos(px));
    },
  },
  // Keys cubic with a = -0.5 (Pillow's choice; PyTorch uses -0.75).
  bicubic: {
    support: 2,
    fn: (x) => {
      const a = -0.5;
      const t = Math.abs(x);
      if (t < 1) return ((a + 2) * t - (a + 3)) * t * t + 1;
      if (t < 2) return (((t - 5) * t + 8) * t - 4) * a;
      return 0;
    },
  },
  lanczos: { support: 3, fn: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0) },
};

const PRECISION_BITS = 22; // 32 - 8 - 2, as in Pillow: room for 8-bit values and negative lobes in an int32
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

interface Coeffs {
  /** First input index per output index. */
  start: Int32Array;
  /** Number of taps per output index. */
  count: Int32Array;
  /** Fixed-point weights, `ksize` per output index. */
  weights: Int32Array;
  ksize: number;
}

/** Per-output-pixel taps and fixed-point weights for one axis (Pillow's coefficient scheme). */
function computeCoeffs(inSize: number, outSize: number, filter: FilterDef): Coeffs {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = filter.support * filterScale;
  const ksize = Math.ceil(support) * 2 + 1;
  const start = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * ksize);
  const tmp = new Float64Array(ksize);
  const inv = 1 / filterScale;
  for (let xx = 0; xx < outSize; xx++) {
    const center = (xx + 0.5) * scale;
    // Truncation toward zero, then clamping, as C's (int) cast does.
    let xmin = Math.trunc(center - support + 0.5);
    if (xmin < 0) xmin = 0;
    let xmax = Math.trunc(center + support + 0.5);
    if (xmax > inSize) xmax = inSize;
    const n = xmax - xmin;
    let sum = 0;
    for (let x = 0; x < n; x++) {
      const w = filter.fn((x + xmin - center + 0.5) * inv);
      tmp[x] = w;
      sum += w;
    }
    for (let x = 0; x < n; x++) {
      const w = sum !== 0 ? tmp[x] / sum : tmp[x];
      // Round half away from zero into fixed point, then truncate like the C cast.
      weights[xx * ksize + x] = w < 0 ? Math.trunc(-0.5 + w * ONE) : Math.trunc(0.5 + w * ONE);
    }
    start[xx] = xmin;
    count[xx] = n;
  }
  return { start, count, weights, ksize };
}

// Outputs are written through Uint8ClampedArray views: storing the integer `acc >> 22` clamps to 0..255, which is
// Pillow's clip8 (|acc| < 2^31: 8-bit values times 22-bit weights summing to about 1, so the int32 shift is exact).

function resampleHorizontal(src: Uint8Array, w: number, h: number, outW: number, c: Coeffs): Uint8Array {
  const buf = new ArrayBuffer(outW * h * 3);
  const out = new Uint8ClampedArray(buf);
  const { start, count, weights, ksize } = c;
  for (let y = 0; y < h; y++) {
    const row = y * w * 3;
    let o = y * outW * 3;
    for (let xx = 0; xx < outW; xx++) {
      const n = count[xx];
      let kb = xx * ksize;
      let p = row + start[xx] * 3;
      let r = HALF;
      let g = HALF;
      let b = HALF;
      for (let k = 0; k < n; k++) {
        const wk = weights[kb++];
        r = (r + Math.imul(src[p], wk)) | 0;
        g = (g + Math.imul(src[p + 1], wk)) | 0;
        b = (b + Math.imul(src[p + 2], wk)) | 0;
        p += 3;
      }
      out[o++] = r >> PRECISION_BITS;
      out[o++] = g >> PRECISION_BITS;
      out[o++] = b >> PRECISION_BITS;
    }
  }
  return new Uint8Array(buf);
}

function resampleVertical(src: Uint8Array, w: number, outH: number, c: Coeffs): Uint8Array {
  const buf = new ArrayBuffer(w * outH * 3);
  const out = new Uint8ClampedArray(buf);
  const { start, count, weights, ksize } = c;
  const stride = w * 3;
  const acc = new Int32Array(stride);
  for (let yy = 0; yy < outH; yy++) {
    const y0 = start[yy];
    const n = count[yy];
    const kb = yy * ksize;
    acc.fill(HALF);
    for (let k = 0; k < n; k++) {
      const wk = weights[kb + k];
      const row = (y0 + k) * stride;
      for (let i = 0; i < stride; i++) acc[i] = (acc[i] + Math.imul(src[row + i], wk)) | 0;
    }
    const orow = yy * stride;
    for (let i = 0; i < stride; i++) out[orow + i] = acc[i] >> PRECISION_BITS;
  }
  return new Uint8Array(buf);
}

/**
 * Resizes an RGB image the way Pillow's `Image.resize(size, resample)` does for mode "RGB" (8 bits per channel).
 * Results are bit-identical to Pillow for the filters listed in `ResampleFilter`.
 */
export function resizeRgb(img: RgbImage, width: number, height: number, filter: ResampleFilter = 'bicubic'): RgbImage {
  assertRgbImage(img);
  if (!Number.isInteger(width) || !Number.isInteger(height) || width <= 0 || height <= 0) {
    throw new Error(`resize: expected a positive integer target size, found ${width}x${height}`);
  }
  const def = FILTERS[filter];
  if (!def) throw new Error(`resize: unknown filter "${filter}" (expected one of ${Object.keys(FILTERS).join(', ')})`);
  if (width === img.width && height === img.height) return { width, height, data: img.data.slice() };
  let data = img.data;
  let w = img.width;
  if (width !== img.width) {
    data = resampleHorizontal(data, img.width, img.height, width, computeCoeffs(img.width, width, def));
    w = width;
  }
  if (height !== img.height) data = resampleVertical(data, w, height, computeCoeffs(img.height, height, def));
  return { width, height, data };
}
