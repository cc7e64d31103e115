/** Loads the math equivalence corpus (shared by the corpus test and the reward benchmark). */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import type { MathCheckOptions } from '../../../src/reward/math/equivalence.js';

export interface CorpusCase {
  gold: string;
  pred: string;
  equal: boolean;
  options?: MathCheckOptions;
}

const FILE = fileURLToPath(new URL('../../fixtures/reward/math-equivalence.yaml', import.meta.url));

export function loadCorpus(file = FILE): Record<string, CorpusCase[]> {
  const data = parse(readFileSync(file, 'utf8')) as Record<string, unknown[]>;
  const out: Record<string, CorpusCase[]> = {};
  for (const [family, rows] of Object.entries(data)) {
    out[family] = rows.map((row, i) => {
      if (!Array.isArray(row) || row.length < 3 || typeof row[0] !== 'string' || typeof row[1] !== 'string')
        throw new Error(
          `${file}: ${family}[${i}]: expected [reference, answer, expected, options?], found ${JSON.stringify(row)}`,
        );
      if (typeof row[2] !== 'boolean')
        throw new Error(
          `${file}: ${family}[${i}]: expected true or false as the third item, found ${JSON.stringify(row[2])}`,
        );
      return { gold: row[0], pred: row[1], equal: row[2], ...(row[3] ? { options: row[3] as MathCheckOptions } : {}) };
    });
  }
  return out;
}
