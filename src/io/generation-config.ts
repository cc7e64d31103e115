/**
 * A model folder's `generation_config.json` (Hugging Face's sampling defaults), read by one rule for every command:
 * absent is fine; present, it must be a JSON object whose sampling fields have the right types, else loading the
 * model fails with a message naming the file, the field, what was expected and what was found.
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { readRegularFileSync } from '../util/files.js';

export interface GenerationConfig {
  do_sample?: boolean;
  temperature?: number;
  top_p?: number;
  top_k?: number;
  repetition_penalty?: number;
  [k: string]: unknown;
}

const NUMBER_FIELDS = ['temperature', 'top_p', 'top_k', 'repetition_penalty', 'max_new_tokens'] as const;

/** The folder's generation config, or null when it has none. Throws on a file that is not a valid config. */
export function readGenerationConfig(dir: string): GenerationConfig | null {
  const p = join(dir, 'generation_config.json');
  if (!existsSync(p)) return null;
  let g: unknown;
  const text = readRegularFileSync(p); // a FIFO or device here is refused, never read (it would block)
  try {
    g = JSON.parse(text);
  } catch (e) {
    throw new Error(`${p}: not valid JSON (${(e as Error).message}); fix or delete the file`);
  }
  if (g === null || typeof g !== 'object' || Array.isArray(g))
    throw new Error(
      `${p}: expected a JSON object, found ${g === null ? 'null' : Array.isArray(g) ? 'an array' : typeof g}`,
    );
  const c = g as Record<string, unknown>;
  for (const k of NUMBER_FIELDS)
    if (c[k] !== undefined && c[k] !== null && (typeof c[k] !== 'number' || !Number.isFinite(c[k])))
      throw new Error(`${p}: "${k}" must be a number, found ${JSON.stringify(c[k])}`);
  if (c.do_sample !== undefined && c.do_sample !== null && typeof c.do_sample !== 'boolean')
    throw new Error(`${p}: "do_sample" must be true or false, found ${JSON.stringify(c.do_sample)}`);
  return c as GenerationConfig;
}
