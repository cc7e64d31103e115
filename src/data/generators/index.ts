/** Registry of the synthetic curriculum's generators and the RL lab's, by short name (the CLI's `--domains` values). */
import { chart } from './chart.js';
import { grounding } from './grounding.js';
import { gui } from './gui.js';
import { LAB_GENERATORS } from './lab.js';
import { longDoc } from './long_doc.js';
import { multiImage } from './multi_image.js';
import { ocr } from './ocr.js';
import { spatial } from './spatial.js';
import { stem } from './stem.js';
import { text } from './text.js';
import type { Generator } from './types.js';
import { video } from './video.js';
import { vqa } from './vqa.js';

/** The curriculum: what `--domains all` means. */
const CURRICULUM: Record<string, Generator> = {
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

/** Every generator: the curriculum and the RL lab's tasks (`lab_*`, `--domains lab`). */
export const GENERATORS: Record<string, Generator> = {
  ...CURRICULUM,
  ...(LAB_GENERATORS as Record<string, Generator>),
};

/** The curriculum's generators (`--domains all`). */
export const GENERATOR_NAMES = Object.keys(CURRICULUM);
/** The RL lab's generators (`--domains lab`): easy to read at 112 px, several reasoning steps, a probe task each. */
export const LAB_GENERATOR_NAMES = Object.keys(LAB_GENERATORS);

export function getGenerator(name: string): Generator {
  const g = GENERATORS[name];
  if (!g) throw new Error(`unknown generator "${name}"; expected one of ${Object.keys(GENERATORS).join(', ')}`);
  return g;
}
