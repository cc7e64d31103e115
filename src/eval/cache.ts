/**
 * Content-addressed generation cache: the key is a hash of everything that determines a model's answer (model
 * identity, messages with image *content* hashes, generation parameters), so reruns and interrupted runs resume
 * without recomputing, renamed files still hit, and changed images miss. One append-only JSONL file; a line torn
 * by a killed process is skipped on load (and reported), never trusted.
 */
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Generation } from './model.js';

export interface CacheEntry extends Generation {
  key: string;
  model: string;
  time: string;
}

/** Stable JSON: object keys sorted, so equal values hash equally whatever their construction order. */
export function canonicalJson(v: unknown): string {
  if (v === null || typeof v !== 'object') return JSON.stringify(v) ?? 'null';
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  const o = v as Record<string, unknown>;
  return `{${Object.keys(o)
    .filter((k) => o[k] !== undefined)
    .sort()
    .map((k) => `${JSON.stringify(k)}:${canonicalJson(o[k])}`)
    .join(',')}}`;
}

export function cacheKey(parts: unknown): string {
  return createHash('sha256').update(canonicalJson(parts)).digest('hex');
}

export class GenerationCache {
  readonly file: string;
  private readonly map = new Map<string, CacheEntry>();
  /** Unreadable lines skipped while loading (1-based line numbers). */
  readonly skippedLines: number[] = [];

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    this.file = join(dir, 'generations.jsonl');
    if (!existsSync(this.file)) return;
    const text = readFileSync(this.file, 'utf8');
    // A torn last line has no newline: end it so the next entry starts on a line of its own.
    if (text.length > 0 && !text.endsWith('\n')) appendFileSync(this.file, '\n');
    const lines = text.split('\n');
    lines.forEach((line, i) => {
      if (line.trim() === '') return;
      try {
        const e = JSON.parse(line) as CacheEntry;
        if (typeof e.key === 'string' && typeof e.text === 'string') this.map.set(e.key, e);
        else this.skippedLines.push(i + 1);
      } catch {
        this.skippedLines.push(i + 1);
      }
    });
  }

  get size(): number {
    return this.map.size;
  }

  get(key: string): CacheEntry | undefined {
    return this.map.get(key);
  }

  put(key: string, model: string, g: Generation): CacheEntry {
    const e: CacheEntry = { key, model, time: new Date().toISOString(), ...g };
    this.map.set(key, e);
    appendFileSync(this.file, `${JSON.stringify(e)}\n`);
    return e;
  }
}
