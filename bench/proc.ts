/** What a benchmark child reads about its own memory from /proc (Linux). */
import { readFileSync } from 'node:fs';

/** The value of a `Key:   N kB` line of a /proc text, in bytes (0 when the key is missing). */
function kbField(text: string, key: string): number {
  return Number(new RegExp(`^${key}:\\s+(\\d+) kB`, 'm').exec(text)?.[1] ?? 0) * 1024;
}

/** This process's resident set and its peak (VmRSS, VmHWM), in bytes. */
export function procStatus(): { rss: number; hwm: number } {
  const s = readFileSync('/proc/self/status', 'utf8');
  return { rss: kbField(s, 'VmRSS'), hwm: kbField(s, 'VmHWM') };
}

/**
 * The share of this process's file-backed resident bytes (Rss − Anonymous) mapped with 2 MiB entries
 * (FilePmdMapped), from /proc/self/smaps_rollup; undefined where that file is missing or nothing file-backed is resident.
 */
export function hugeMappedShare(): number | undefined {
  let s: string;
  try {
    s = readFileSync('/proc/self/smaps_rollup', 'utf8');
  } catch {
    return undefined;
  }
  const file = kbField(s, 'Rss') - kbField(s, 'Anonymous');
  return file > 0 ? kbField(s, 'FilePmdMapped') / file : undefined;
}
