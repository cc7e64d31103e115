/** Registry of the synthetic curriculum's generators, by short name (the CLI's `--domains` values). */
import { chart } from './chart.js';
import { grounding } from './grounding.js';
import { gui } from './gui.js';
import { longDoc } from './long_doc.js';
import { multiImage } from './multi_image.js';
import { ocr } from './ocr.js';
import { spatial } from './spatial.js';
import { stem } from './stem.js';
import { text } from './text.js';
import type { Generator } from './types.js';
import { video } from './video.js';
import { vqa } from './vqa.js';

export const GENERATORS: Record<string, Generator> = {
  vqa,
  stem,
  ocr,
  chart,
  long_doc: longDoc,
  grounding,
  gui,
  spatial,
  video,
  multi_image: multiImage,
  text,
};

export const GENERATOR_NAMES = Object.keys(GENERATORS);

export function getGenerator(name: string): Generator {
  const g = GENERATORS[name];
  if (!g) throw new Error(`unknown generator "${name}"; expected one of ${GENERATOR_NAMES.join(', ')}`);
  return g;
}
