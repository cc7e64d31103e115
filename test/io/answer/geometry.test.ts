import { describe, expect, it } from 'vitest';
import {
  type Box,
  boxProblem,
  iou,
  normToPixel,
  parseBoxes,
  parsePoints,
  pixelPointToNorm,
  pixelToNorm,
  pointInBox,
} from '../../../src/io/answer/geometry.js';

describe('grounding boxes', () => {
  it('parses every bracket style', () => {
    const text = 'a [10,20,30,40] b [[1, 2, 3, 4],[5,6,7,8]] c (11 12 13 14) d <100,200,300,400> e [1,2,3]';
    expect(parseBoxes(text).map((b) => b.box)).toEqual([
      [10, 20, 30, 40],
      [1, 2, 3, 4],
      [5, 6, 7, 8],
      [11, 12, 13, 14],
      [100, 200, 300, 400],
    ]);
    expect(parseBoxes('[1.5, 2.25, 3e2, 400]')[0]!.box).toEqual([1.5, 2.25, 300, 400]);
    expect(parseBoxes('[1,2,3,4)')).toEqual([]);
  });

  it('flags invalid boxes instead of dropping them', () => {
    expect(parseBoxes('[30,20,10,40]')[0]!.problem).toBe('inverted');
    expect(parseBoxes('[0,0,1001,5]')[0]!.problem).toBe('out_of_range');
    expect(parseBoxes('[-1,0,10,5]')[0]!.problem).toBe('out_of_range');
    expect(parseBoxes('[0,0,1000,5]')[0]!.problem).toBeUndefined();
    expect(parseBoxes('[0,0,1000,5]', { system: 'gui' })[0]!.problem).toBe('out_of_range');
    expect(parseBoxes('[5,5,5,9]')[0]!.problem).toBe('degenerate');
    expect(boxProblem([0, 0, Number.NaN, 1])).toBe('not_finite');
  });

  it('parses points', () => {
    expect(parsePoints("start_box='[376,465]' (1,2) <3 4>")).toEqual([
      [376, 465],
      [1, 2],
      [3, 4],
    ]);
  });

  it('converts normalised <-> pixel coordinates', () => {
    const size = { width: 1920, height: 1080 };
    expect(normToPixel([500, 500, 1000, 1000], size)).toEqual([960, 540, 1920, 1080]);
    expect(pixelToNorm([960, 540, 1920, 1080], size)).toEqual([500, 500, 1000, 1000]);
    expect(pixelToNorm([960, 540, 1920, 1080], size, 'gui')).toEqual([500, 500, 999, 999]);
    expect(pixelPointToNorm([1, 1079], size, 'gui')).toEqual([1, 999]);
    // Round trip within rounding error of one normalised unit.
    const px: Box = [123, 45, 678, 901];
    const back = normToPixel(pixelToNorm(px, size), size);
    for (let i = 0; i < 4; i++) expect(Math.abs(back[i]! - px[i]!)).toBeLessThanOrEqual(1.92 / 2 + 1e-9);
    expect(() => normToPixel([0, 0, 1, 1], { width: 0, height: 10 })).toThrow(/width and height/);
  });

  it('computes IoU and point-in-box', () => {
    expect(iou([0, 0, 10, 10], [0, 0, 10, 10])).toBe(1);
    expect(iou([0, 0, 10, 10], [5, 0, 15, 10])).toBeCloseTo(50 / 150);
    expect(iou([0, 0, 10, 10], [20, 20, 30, 30])).toBe(0);
    expect(iou([10, 10, 0, 0], [0, 0, 10, 10])).toBe(0);
    expect(pointInBox([5, 5], [0, 0, 10, 10])).toBe(true);
    expect(pointInBox([11, 5], [0, 0, 10, 10])).toBe(false);
  });
});
