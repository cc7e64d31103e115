import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadImage, type RgbImage } from '../../src/io/image.js';
import { DEFAULT_IMAGE_CONFIG, DEFAULT_VIDEO_CONFIG, parsePreprocessorConfig } from '../../src/io/processor/config.js';
import { imageTokenCount, processImage } from '../../src/io/processor/image.js';
import { type GridThw, normalisationTable, patchify, smartResize } from '../../src/io/processor/patches.js';
import { Glm4vProcessor } from '../../src/io/processor/request.js';
import { expandMediaTokens, mmTokenTypeIds } from '../../src/io/processor/tokens.js';
import { pyRound } from '../../src/io/video.js';

const FIX = join(import.meta.dirname, '../fixtures/parity/processor');

interface FixtureResult {
  image_grid_thw: GridThw[];
  resized_height: number;
  resized_width: number;
  pixel_values_shape: [number, number];
  first_rows: number[][];
  checksum: { sum: number; sumsq: number; min: number; max: number };
}

interface FixtureImage extends FixtureResult {
  file: string;
  height: number;
  width: number;
  error?: string;
  'transformers_5.18.0_Glm4vImageProcessorPil': FixtureResult;
}

/** Reads the float64 tensors of a safetensors file (header length, JSON header, raw little-endian data). */
function readSafetensorsF64(path: string): Map<string, Float64Array> {
  const buf = readFileSync(path);
  const n = Number(buf.readBigUInt64LE(0));
  const header = JSON.parse(buf.subarray(8, 8 + n).toString()) as Record<
    string,
    { dtype: string; data_offsets: [number, number] }
  >;
  const out = new Map<string, Float64Array>();
  for (const [k, v] of Object.entries(header)) {
    if (k === '__metadata__') continue;
    expect(v.dtype).toBe('F64');
    const [a, b] = v.data_offsets;
    const bytes = buf.subarray(8 + n + a, 8 + n + b);
    out.set(k, new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.length)));
  }
  return out;
}

describe('pyRound (Python round, half to even)', () => {
  it('rounds halves to the even neighbour and everything else to nearest', () => {
    expect([0.5, 1.5, 2.5, 3.5, -0.5, -1.5, 2.4999, 2.5001, 7].map(pyRound)).toEqual([0, 2, 2, 4, 0, -2, 2, 3, 7]);
    // JavaScript's Math.round differs on the halves: the reason pyRound exists.
    expect(Math.round(2.5)).toBe(3);
  });
});

describe('smartResize', () => {
  const tokens = (h: number, w: number) => {
    const r = smartResize(2, h, w, { minPixels: 12544, maxPixels: 9633792 });
    return { ...r, tokens: (r.height / 28) * (r.width / 28) };
  };
  it('reproduces the worked examples of the spec', () => {
    expect(tokens(768, 1024)).toEqual({ height: 756, width: 1036, tokens: 999 });
    expect(tokens(1080, 1920)).toEqual({ height: 1092, width: 1932, tokens: 2691 });
    expect(tokens(2160, 3840)).toEqual({ height: 1624, width: 2912, tokens: 6032 });
    expect(tokens(336, 336).tokens).toBe(144);
    expect(tokens(50, 50)).toEqual({ height: 84, width: 84, tokens: 9 });
  });
  it('scales a side shorter than 28 up first (transformers 5.x)', () => {
    expect(smartResize(2, 20, 3000, { maxPixels: 9633792 })).toEqual({ height: 28, width: 4200 });
  });
  it('uses banker rounding at exact halves', () => {
    // 70/28 = 2.5 rounds to 2 (56), not 3 (84); 98/28 = 3.5 rounds to 4 (112).
    expect(smartResize(2, 70, 98, { minPixels: 1, maxPixels: 1e9 })).toEqual({ height: 56, width: 112 });
  });
  it('counts the temporal frames in the budget (video joint budget)', () => {
    const one = smartResize(2, 1080, 1920, { maxPixels: 47040000 });
    const many = smartResize(600, 1080, 1920, { maxPixels: 47040000 });
    expect(one).toEqual({ height: 1092, width: 1932 });
    expect(600 * many.height * many.width).toBeLessThanOrEqual(47040000);
    expect(many.height % 28).toBe(0);
    expect(many.width).toBeGreaterThan(many.height);
  });
  it('rejects aspect ratios above 200, too few frames and empty sizes', () => {
    expect(() => smartResize(2, 28, 28 * 201)).toThrow(/aspect ratio of at most 200, found 201\.0/);
    expect(() => smartResize(1, 100, 100)).toThrow(/at least 2 frames/);
    expect(() => smartResize(2, 0, 100)).toThrow(/positive integer image size/);
  });
  it('imageTokenCount follows the config', () => {
    expect(imageTokenCount(768, 1024)).toBe(999);
    expect(imageTokenCount(4000, 4000)).toBeLessThanOrEqual(6144);
  });
});

describe('processor parity with the reference Glm4vImageProcessor (transformers 4.57.6 / 5.18.0, PIL 12.3)', () => {
  const expected = JSON.parse(readFileSync(join(FIX, 'expected.json'), 'utf8'));
  const rowSums = readSafetensorsF64(join(FIX, 'row_sums.safetensors'));
  const cfg = parsePreprocessorConfig(expected.processor_config, 'fixture processor_config');

  it('reads the fixture processor config', () => {
    expect(cfg.minPixels).toBe(12544);
    expect(cfg.maxPixels).toBe(9633792);
    expect(cfg.resample).toBe('bicubic');
  });

  for (const [name, entry] of Object.entries<FixtureImage>(expected.images)) {
    // 20x3000: 4.57.6 raised; 5.18.0 upscales to 28x4200. We follow 5.18.0.
    const exp = entry.error ? entry['transformers_5.18.0_Glm4vImageProcessorPil'] : entry;
    const key = entry.error ? `${name}@5.18.0` : name;
    it(`${name}: grid, first rows, every row sum and the checksum match`, async () => {
      const img = await loadImage(join(FIX, entry.file));
      expect([img.height, img.width]).toEqual([entry.height, entry.width]);
      const out = processImage(img, cfg);
      expect(out.gridThw).toEqual(exp.image_grid_thw[0]);
      expect([out.resizedHeight, out.resizedWidth]).toEqual([exp.resized_height, exp.resized_width]);
      expect(out.pixelValues.length).toBe(exp.pixel_values_shape[0] * exp.pixel_values_shape[1]);
      // First three rows: exactly the reference float32 values.
      const first = exp.first_rows.flat();
      let maxFirst = 0;
      for (let i = 0; i < first.length; i++) maxFirst = Math.max(maxFirst, Math.abs(first[i] - out.pixelValues[i]));
      expect(maxFirst).toBe(0);
      // Every row's float64 sum: equal to rounding of the summation order.
      const sums = rowSums.get(key)!;
      expect(sums.length).toBe(exp.pixel_values_shape[0]);
      let maxRow = 0;
      for (let r = 0; r < sums.length; r++) {
        let s = 0;
        for (let j = 0; j < 1176; j++) s += out.pixelValues[r * 1176 + j];
        maxRow = Math.max(maxRow, Math.abs(s - sums[r]));
      }
      expect(maxRow).toBeLessThan(1e-9);
      let sum = 0;
      let sumsq = 0;
      let min = Number.POSITIVE_INFINITY;
      let max = Number.NEGATIVE_INFINITY;
      for (const v of out.pixelValues) {
        sum += v;
        sumsq += v * v;
        min = Math.min(min, v);
        max = Math.max(max, v);
      }
      expect(Math.abs(sum - exp.checksum.sum) / Math.abs(exp.checksum.sum)).toBeLessThan(1e-10);
      expect(Math.abs(sumsq - exp.checksum.sumsq) / exp.checksum.sumsq).toBeLessThan(1e-10);
      expect(min).toBe(exp.checksum.min);
      expect(max).toBe(exp.checksum.max);
    });
  }
});

describe('normalisation and patch layout', () => {
  it('normalises in the reference precisions (float64 rescale, float32 normalise)', () => {
    const t = normalisationTable(DEFAULT_IMAGE_CONFIG);
    // (0 - mean)/std and (1 - mean)/std for red, computed by hand in float32 steps.
    const mean = Math.fround(0.48145466);
    const std = Math.fround(0.26862954);
    expect(t[0][0]).toBe(Math.fround(Math.fround(0 - mean) / std));
    expect(t[0][255]).toBe(Math.fround(Math.fround(Math.fround(255 / 255) - mean) / std));
    expect(t[0][0]).toBeCloseTo(-1.7922625541687012, 7);
    expect(t[2][255]).toBeCloseTo(2.1458, 3);
  });

  it('orders rows by merge window and values by (channel, t, py, px)', () => {
    // A 56x56 image whose red channel holds x, green y, blue (x+y) mod 256; no normalisation.
    const W = 56;
    const H = 56;
    const data = new Uint8Array(W * H * 3);
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        data[(y * W + x) * 3] = x;
        data[(y * W + x) * 3 + 1] = y;
        data[(y * W + x) * 3 + 2] = (x + y) % 256;
      }
    }
    const img: RgbImage = { width: W, height: H, data };
    const cfg = { ...DEFAULT_IMAGE_CONFIG, doRescale: false, doNormalize: false };
    const { pixelValues, gridThw } = patchify([img, img], cfg);
    expect(gridThw).toEqual([1, 4, 4]);
    const row = (r: number) => pixelValues.subarray(r * 1176, (r + 1) * 1176);
    // Row order within the first 2x2 window: (0,0), (0,1), (1,0), (1,1); then the window to its right.
    const origin = (r: number) => [row(r)[588 + 0], row(r)[0]]; // green (y) and red (x) of the patch's top-left pixel
    expect([0, 1, 2, 3, 4, 5].map(origin)).toEqual([
      [0, 0],
      [0, 14],
      [14, 0],
      [14, 14],
      [0, 28],
      [0, 42],
    ]);
    // Inside a row: channel-major, then t (duplicated frame), then py, px.
    const r3 = row(3);
    expect(r3[1]).toBe(15); // red, t=0, py=0, px=1 → x = 14 + 1
    expect(r3[14]).toBe(14); // red, t=0, py=1, px=0
    expect(r3[196]).toBe(14); // red, t=1 repeats t=0
    expect(r3[392 + 14 * 2 + 3]).toBe(16); // green, t=0, py=2 → y = 14 + 2
    expect(r3[784 + 5]).toBe((14 + 5 + 14) % 256); // blue = x + y
  });
});

describe('prompt expansion', () => {
  it('expands each image placeholder by its token count', () => {
    const text = `a<|begin_of_image|><|image|><|end_of_image|>b<|begin_of_image|><|image|><|end_of_image|>`;
    const out = expandMediaTokens(text, { imageGrids: [[1, 4, 6] as GridThw, [1, 2, 2] as GridThw] });
    expect(out).toBe(
      `a<|begin_of_image|>${'<|image|>'.repeat(6)}<|end_of_image|>b<|begin_of_image|><|image|><|end_of_image|>`,
    );
  });
  it('expands a video into one stamped group per temporal patch', () => {
    const out = expandMediaTokens('<|begin_of_video|><|video|><|end_of_video|>', {
      videos: [{ gridThw: [3, 4, 4], timestamps: [0, 1, 2] }],
    });
    const g = '<|image|>'.repeat(4);
    expect(out).toBe(
      `<|begin_of_video|><|begin_of_image|>${g}<|end_of_image|>0<|begin_of_image|>${g}<|end_of_image|>1<|begin_of_image|>${g}<|end_of_image|>2<|end_of_video|>`,
    );
  });
  it('pads missing timestamps with the last one', () => {
    const out = expandMediaTokens('<|video|>', { videos: [{ gridThw: [2, 2, 2], timestamps: [7] }] });
    expect(out).toBe('<|begin_of_image|><|image|><|end_of_image|>7<|begin_of_image|><|image|><|end_of_image|>7');
  });
  it('rejects placeholder/media count mismatches', () => {
    expect(() => expandMediaTokens('<|image|><|image|>', { imageGrids: [[1, 2, 2]] })).toThrow(
      /found 2 <\|image\|> placeholders but 1 image was given/,
    );
    expect(() => expandMediaTokens('no media', { videos: [{ gridThw: [1, 2, 2], timestamps: [0] }] })).toThrow(
      /found 0 <\|video\|> placeholders but 1 video was given/,
    );
  });
});

describe('token type ids', () => {
  it('marks image tokens inside a video span as video', () => {
    const ids = [5, 10, 12, 12, 11, 20, 10, 12, 11, 1, 21];
    // 20/21 = video start/end, 12 = image token
    expect(Array.from(mmTokenTypeIds(ids, { image: 12, videoStart: 20, videoEnd: 21 }))).toEqual([
      0, 0, 1, 1, 0, 0, 0, 2, 0, 0, 0,
    ]);
  });
});

describe('configuration', () => {
  it('reads size, legacy min/max_pixels and the other fields', () => {
    const c = parsePreprocessorConfig({
      size: { shortest_edge: 3136, longest_edge: 1003520 },
      image_mean: [0.5, 0.5, 0.5],
      image_std: [0.5, 0.5, 0.5],
      resample: 2,
    });
    expect([c.minPixels, c.maxPixels, c.resample, c.imageMean[0]]).toEqual([3136, 1003520, 'bilinear', 0.5]);
    expect(parsePreprocessorConfig({ min_pixels: 100, max_pixels: 200000 }).maxPixels).toBe(200000);
    expect(DEFAULT_VIDEO_CONFIG.maxPixels).toBe(28 * 28 * 2 * 30000);
  });
  it('Glm4vProcessor.fromPretrained reads both configs from a model folder', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'glmv-proc-'));
    try {
      writeFileSync(
        join(dir, 'preprocessor_config.json'),
        JSON.stringify({ size: { shortest_edge: 3136, longest_edge: 200704 } }),
      );
      writeFileSync(
        join(dir, 'video_preprocessor_config.json'),
        JSON.stringify({ size: { shortest_edge: 3136, longest_edge: 1000000 }, fps: 1 }),
      );
      const p = await Glm4vProcessor.fromPretrained(dir);
      expect([p.imageConfig.minPixels, p.imageConfig.maxPixels]).toEqual([3136, 200704]);
      expect([p.videoConfig.maxPixels, p.videoConfig.fps]).toEqual([1000000, 1]);
      // 200704 = 2·28·28·128: the per-image cap follows the config.
      expect(p.budget.maxImageTokens).toBe(128);
      writeFileSync(join(dir, 'preprocessor_config.json'), '{ broken');
      await expect(Glm4vProcessor.fromPretrained(dir)).rejects.toThrow(
        /preprocessor config .*preprocessor_config\.json: invalid JSON/,
      );
      // No configs at all: the GLM defaults.
      rmSync(join(dir, 'preprocessor_config.json'));
      rmSync(join(dir, 'video_preprocessor_config.json'));
      const d = await Glm4vProcessor.fromPretrained(dir);
      expect([d.imageConfig.maxPixels, d.videoConfig.maxPixels]).toEqual([9633792, 47040000]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('rejects malformed values with the key named', () => {
    expect(() => parsePreprocessorConfig({ size: { shortest_edge: -1 } }, 'cfg')).toThrow(
      /cfg size: expected "shortest_edge" to be a positive number, found -1/,
    );
    expect(() => parsePreprocessorConfig({ image_mean: [1, 2] }, 'cfg')).toThrow(/"image_mean" to be 3 numbers/);
    expect(() => parsePreprocessorConfig({ resample: 0 }, 'cfg')).toThrow(/"resample" 0 is not supported/);
    expect(() => parsePreprocessorConfig([], 'cfg')).toThrow(/expected a JSON object, found an array/);
    expect(() => parsePreprocessorConfig({ size: { shortest_edge: 500, longest_edge: 100 } }, 'cfg')).toThrow(
      /exceed max pixels/,
    );
  });
});

describe('Glm4vProcessor', () => {
  const gradient = (w: number, h: number): RgbImage => {
    const data = new Uint8Array(w * h * 3);
    for (let i = 0; i < w * h; i++) {
      data[3 * i] = i % 251;
      data[3 * i + 1] = (i * 7) % 253;
      data[3 * i + 2] = (i * 13) % 255;
    }
    return { width: w, height: h, data };
  };

  it('processes images and expands the prompt', async () => {
    const p = new Glm4vProcessor();
    const out = await p.process({
      text: 'x<|begin_of_image|><|image|><|end_of_image|>y<|begin_of_image|><|image|><|end_of_image|>',
      images: [gradient(50, 50), gradient(336, 336)],
    });
    expect(out.imageGridThw).toEqual([
      [1, 6, 6],
      [1, 24, 24],
    ]);
    expect(out.numVisualTokens).toBe(9 + 144);
    expect(out.pixelValues.length).toBe((36 + 576) * 1176);
    expect(out.text.split('<|image|>').length - 1).toBe(153);
    expect(out.images[0]).toMatchObject({ originalHeight: 50, originalWidth: 50, resizedHeight: 84, numTokens: 9 });
  });

  it('a per-image token cap tightens the budget', async () => {
    const p = new Glm4vProcessor({ maxImageTokens: 64 });
    const img = await p.processImage(gradient(1024, 768));
    expect(img.numTokens).toBeLessThanOrEqual(64);
    expect(img.numTokens).toBeGreaterThan(40);
  });

  it('rejects a request over the total token cap, naming the numbers', async () => {
    const p = new Glm4vProcessor({ maxTotalTokens: 100 });
    await expect(p.process({ text: '<|image|>', images: [gradient(336, 336)] })).rejects.toThrow(
      /needs 144 visual tokens .* more than the total cap of 100/,
    );
  });

  it('rejects an extreme aspect ratio with the image named', async () => {
    const p = new Glm4vProcessor();
    await expect(p.processImage(gradient(6000, 28))).rejects.toThrow(
      /image RGB image 6000x28: .*aspect ratio of at most 200, found 214\.3/,
    );
  });

  it('rejects bad budget settings', () => {
    expect(() => new Glm4vProcessor({ maxImageTokens: 0 })).toThrow(/maxImageTokens to be a positive integer, found 0/);
  });
});
