import { readFileSync } from 'node:fs';

/**
 * The memory areas this process maps from `file`, in address order: their advice flags from /proc/self/smaps
 * (`hg`: MADV_HUGEPAGE, `nh`: MADV_NOHUGEPAGE, `rr`: MADV_RANDOM) and sizes. Linux only.
 */
export function mappingFlags(file: string): Array<{ flags: string[]; bytes: number }> {
  const lines = readFileSync('/proc/self/smaps', 'utf8').split('\n');
  const out: Array<{ flags: string[]; bytes: number }> = [];
  for (let i = 0; i < lines.length; i++) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) /.exec(lines[i]!);
    if (!m || !lines[i]!.endsWith(` ${file}`)) continue;
    const j = lines.findIndex((l, k) => k > i && l.startsWith('VmFlags:'));
    out.push({
      flags: lines[j]!.slice('VmFlags:'.length).trim().split(/\s+/),
      bytes: Number.parseInt(m[2]!, 16) - Number.parseInt(m[1]!, 16),
    });
  }
  return out;
}
