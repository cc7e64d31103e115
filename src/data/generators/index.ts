/** Registry of the synthetic curriculum's generators, by short name (the CLI's `--domains` values). */
import { chart } from './chart.js';
import { grounding } from './grounding.js';
import { ocr } from './ocr.js';
import { stem } from './stem.js';
import type { Generator } from './types.js';
import { vqa } from './vqa.js';

export const GENERATORS: Record<string, Generator> = {
  vqa,
  stem,
  grounding,
  ocr,
  chart,
};

export function getGenerator(name: string): Generator {
  const g = GENERATORS[name];
  if (!g) throw new Error(`unknown generator "${name}"; expected one of ${Object.keys(GENERATORS).join(', ')}`);
  return g;
}
