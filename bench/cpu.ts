/** The CPU's vector ISA extensions that matter for the kernels (from /proc/cpuinfo), for benchmark headers. */
import { readFileSync } from 'node:fs';

export function cpuIsa(): string {
  try {
    const flags = /^flags\s*:(.*)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1]?.split(/\s+/) ?? [];
    const has = (f: string) => flags.includes(f);
    return ['avx2', 'avx512f', 'avx512_vnni', 'avx512_bf16', 'amx_tile', 'amx_bf16'].filter(has).join(' ') || 'unknown';
  } catch {
    return 'unknown';
  }
}
