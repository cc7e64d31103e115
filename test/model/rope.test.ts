import { describe, expect, it } from 'vitest';
import {
  getRopeIndex,
  inverseFrequencies,
  positionTableCoords,
  textRopeTables,
  tokenTypes,
  visionLayout,
  visionRopeTables,
} from '../../src/model/rope.js';

// Tiny vocabulary ids as in the fixtures: begin/end image 500/501, begin/end video 502/503, image 504.
const T = { imageTokenId: 504, videoStartTokenId: 502, videoEndTokenId: 503 };
const IMG = 504;
const rows = (ids: number[]) => ({ ids: Int32Array.from(ids), batch: 1, length: ids.length });
const axes = (pos: Int32Array, L: number, b = 0, B = 1) =>
  [0, 1, 2].map((a) => Array.from(pos.subarray(a * B * L + b * L, a * B * L + (b + 1) * L)));

describe('getRopeIndex', () => {
  it('places an image run at st + (t, row, col) and continues text after max + 1 (docs/design.md B.3 example)', () => {
    // 4 text tokens, begin_image (position 4), 6 image tokens of grid (1,4,6) at st = 5, end_image, text.
    const ids = [1, 2, 3, 4, 500, IMG, IMG, IMG, IMG, IMG, IMG, 501, 7, 8];
    const { positionIds, ropeDeltas } = getRopeIndex(rows(ids), {
      imageGridThw: [[1, 4, 6]],
      spatialMergeSize: 2,
      tokens: T,
    });
    const [t, h, w] = axes(positionIds, ids.length);
    expect(t).toEqual([0, 1, 2, 3, 4, 5, 5, 5, 5, 5, 5, 8, 9, 10]);
    expect(h).toEqual([0, 1, 2, 3, 4, 5, 5, 5, 6, 6, 6, 8, 9, 10]);
    expect(w).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 5, 6, 7, 8, 9, 10]);
    expect(ropeDeltas).toEqual([10 + 1 - ids.length]);
  });

  it('places every video frame group like a one-frame image; timestamp text sits between groups', () => {
    // video (2,4,4): two groups of 4 tokens, each followed by a timestamp token.
    const ids = [9, 502, 500, IMG, IMG, IMG, IMG, 501, 48, 500, IMG, IMG, IMG, IMG, 501, 50, 503, 9];
    const { positionIds } = getRopeIndex(rows(ids), { videoGridThw: [[2, 4, 4]], spatialMergeSize: 2, tokens: T });
    const [t, h, w] = axes(positionIds, ids.length);
    expect(t).toEqual([0, 1, 2, 3, 3, 3, 3, 5, 6, 7, 8, 8, 8, 8, 10, 11, 12, 13]);
    expect(h).toEqual([0, 1, 2, 3, 3, 4, 4, 5, 6, 7, 8, 8, 9, 9, 10, 11, 12, 13]);
    expect(w).toEqual([0, 1, 2, 3, 4, 3, 4, 5, 6, 7, 8, 9, 8, 9, 10, 11, 12, 13]);
    expect(Array.from(tokenTypes(ids, T))).toEqual([0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 2, 2, 2, 2, 0, 0, 0, 0]);
  });

  it('handles a temporal image grid (t > 1) with T = st + t', () => {
    const ids = [500, ...new Array(8).fill(IMG), 501];
    const { positionIds } = getRopeIndex(rows(ids), { imageGridThw: [[2, 4, 4]], spatialMergeSize: 2, tokens: T });
    const [t, h, w] = axes(positionIds, ids.length);
    expect(t).toEqual([0, 1, 1, 1, 1, 2, 2, 2, 2, 3]);
    expect(h).toEqual([0, 1, 1, 2, 2, 1, 1, 2, 2, 3]);
    expect(w).toEqual([0, 1, 2, 1, 2, 1, 2, 1, 2, 3]);
  });

  it('left padding: real tokens get the unpadded positions, pads 1, delta relative to the padded length', () => {
    const ids = [1, 500, IMG, IMG, IMG, IMG, 501, 2];
    const single = getRopeIndex(rows(ids), { imageGridThw: [[1, 4, 4]], spatialMergeSize: 2, tokens: T });
    const padded = [0, 0, 0, ...ids];
    const mask = Uint8Array.from([0, 0, 0, ...ids.map(() => 1)]);
    const batch = {
      ids: Int32Array.from([...padded, ...[5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15]]),
      batch: 2,
      length: padded.length,
    };
    const res = getRopeIndex(batch, {
      imageGridThw: [[1, 4, 4]],
      attentionMask: Uint8Array.from([...mask, ...new Array(11).fill(1)]),
      spatialMergeSize: 2,
      tokens: T,
    });
    const L = padded.length;
    const row0 = axes(res.positionIds, L, 0, 2);
    const want = axes(single.positionIds, ids.length);
    for (let a = 0; a < 3; a++) expect(row0[a]).toEqual([1, 1, 1, ...want[a]!]);
    expect(res.ropeDeltas[0]).toBe(single.ropeDeltas[0]! - 3);
    expect(axes(res.positionIds, L, 1, 2)[0]).toEqual(Array.from({ length: 11 }, (_, i) => i));
    expect(res.ropeDeltas[1]).toBe(0);
  });

  it('packed segments are positioned independently, consuming grids in order', () => {
    const a = [1, 500, IMG, IMG, IMG, IMG, 501];
    const b = [2, 3, 500, ...new Array(6).fill(IMG), 501, 4];
    const grids = [
      [1, 4, 4],
      [1, 4, 6],
    ];
    const packed = getRopeIndex(rows([...a, ...b]), {
      imageGridThw: grids,
      segments: [0, a.length, a.length + b.length],
      spatialMergeSize: 2,
      tokens: T,
    });
    const pa = getRopeIndex(rows(a), { imageGridThw: [grids[0]!], spatialMergeSize: 2, tokens: T });
    const pb = getRopeIndex(rows(b), { imageGridThw: [grids[1]!], spatialMergeSize: 2, tokens: T });
    const all = axes(packed.positionIds, a.length + b.length);
    const sa = axes(pa.positionIds, a.length);
    const sb = axes(pb.positionIds, b.length);
    for (let k = 0; k < 3; k++) expect(all[k]).toEqual([...sa[k]!, ...sb[k]!]);
  });

  it('text only: positions 0..L-1 on every axis, delta 0', () => {
    const { positionIds, ropeDeltas } = getRopeIndex(rows([5, 6, 7]), { spatialMergeSize: 2, tokens: T });
    expect(axes(positionIds, 3)).toEqual([
      [0, 1, 2],
      [0, 1, 2],
      [0, 1, 2],
    ]);
    expect(ropeDeltas).toEqual([0]);
  });

  it('rejects runs that do not match their grids, and unused or missing grids', () => {
    const opts = { spatialMergeSize: 2, tokens: T };
    expect(() => getRopeIndex(rows([500, IMG, IMG, IMG, 501]), { ...opts, imageGridThw: [[1, 4, 4]] })).toThrow(
      /image run of 3 tokens at row 0 position 1 does not match its grid \[1,4,4\] \(4 tokens/,
    );
    expect(() => getRopeIndex(rows([500, IMG, 501]), opts)).toThrow(
      /more image runs than image_grid_thw entries \(0\)/,
    );
    expect(() => getRopeIndex(rows([1, 2]), { ...opts, imageGridThw: [[1, 2, 2]] })).toThrow(
      /image_grid_thw has 1 entries but input_ids contain 0 image run/,
    );
    expect(() => getRopeIndex(rows([502, 500, IMG, 501, 503]), { ...opts, videoGridThw: [[2, 2, 2]] })).toThrow(
      /describes 2 frame group\(s\) but input_ids contain 1 video run/,
    );
    expect(() => getRopeIndex(rows([500, IMG, 501]), { ...opts, imageGridThw: [[1, 3, 2]] })).toThrow(
      /not divisible by spatial_merge_size 2/,
    );
  });
});

describe('rotary tables', () => {
  it('text: frequency i takes its angle from axis T, H or W by mrope_section (float32 arithmetic)', () => {
    // rotaryDim 8 → 4 frequencies, section [1,2,1]: f0 ← T, f1,f2 ← H, f3 ← W.
    const pos = Int32Array.from([3, 10, 20]); // T=3, H=10, W=20 for one position
    const { cos, sin } = textRopeTables(pos, 1, 1, 8, 10000, [1, 2, 1]);
    const inv = [1, 10000 ** -0.25, 10000 ** -0.5, 10000 ** -0.75];
    const src = [3, 10, 10, 20];
    const c = cos.toFloat32();
    const s = sin.toFloat32();
    for (let i = 0; i < 4; i++) {
      expect(c[i]).toBeCloseTo(Math.cos(src[i]! * inv[i]!), 6);
      expect(s[i]).toBeCloseTo(Math.sin(src[i]! * inv[i]!), 6);
    }
    expect(Array.from(inverseFrequencies(4, 10000))).toEqual([1, Math.fround(0.01)]);
  });

  it('vision: rows in merge-window order; angles [h·inv ‖ w·inv]; grid_sample coordinates at patch centres', () => {
    const layout = visionLayout([[1, 4, 4]], 2);
    expect(Array.from(layout.hpos.subarray(0, 8))).toEqual([0, 0, 1, 1, 0, 0, 1, 1]);
    expect(Array.from(layout.wpos.subarray(0, 8))).toEqual([0, 1, 0, 1, 2, 3, 2, 3]);
    expect(layout.cuSeqlens).toEqual([0, 16]);
    const two = visionLayout(
      [
        [2, 2, 2],
        [1, 2, 4],
      ],
      2,
    );
    expect(two.cuSeqlens).toEqual([0, 4, 8, 16]);
    const { cos } = visionRopeTables(layout, 16, 10000); // headDim 16: 2 freqs for h, 2 for w
    const inv = inverseFrequencies(8, 10000);
    const row = 5; // h = 0, w = 3
    const c = cos.toFloat32().subarray(row * 8, row * 8 + 8);
    expect(c[0]).toBeCloseTo(1, 6);
    expect(c[4]).toBeCloseTo(Math.cos(3 * inv[0]!), 6);
    expect(c[5]).toBeCloseTo(Math.cos(3 * inv[1]!), 6);
    const { gx, gy } = positionTableCoords(layout);
    expect(gx[row]).toBeCloseTo((3.5 / 4) * 2 - 1, 6);
    expect(gy[row]).toBeCloseTo((0.5 / 4) * 2 - 1, 6);
  });
});
