/** Grounding helpers on a normalised answer: its boxes (normalised 0–1000, or in pixels) and its points. */
import {
  type Box,
  type ImageSize,
  normToPixel,
  type ParsedBox,
  type Point,
  parseBoxes,
  parsePoints,
} from '../../io/answer/geometry.js';
import type { NormalizedOutput } from './normalize.js';

/** Boxes in the answer (the extracted answer when there is one, else the answer part), normalised 0–1000. */
export function answerBoxes(
  out: Pick<NormalizedOutput, 'answer' | 'content'>,
  system: 'grounding' | 'gui' = 'grounding',
): ParsedBox[] {
  return parseBoxes(out.answer ?? out.content, { system });
}

/** Valid boxes of the answer converted to pixels of an image of `size`. */
export function answerBoxesPixels(out: Pick<NormalizedOutput, 'answer' | 'content'>, size: ImageSize): Box[] {
  return answerBoxes(out)
    .filter((b) => !b.problem)
    .map((b) => normToPixel(b.box, size));
}

/** Points `[x, y]` in the answer (GUI clicks), as written (normalised for GLM models). */
export function answerPoints(out: Pick<NormalizedOutput, 'answer' | 'content'>): Point[] {
  return parsePoints(out.answer ?? out.content);
}
