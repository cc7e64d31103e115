/**
 * Config files and `--set key.path=value` overrides, shared by every command that takes a YAML/JSON config
 * (train, rl, pipeline). Values in overrides are parsed as YAML scalars/flow collections (`3e-4`, `true`, `[1,2]`).
 */
import { readFileSync } from 'node:fs';
import { parse as parseYaml } from 'yaml';

/** Reads YAML (.yaml/.yml, or anything not .json) or JSON; errors name the file and the problem. */
export function readConfigFile(path: string, what = 'config'): unknown {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    throw new Error(`${what} ${path}: cannot read (${(e as Error).message})`);
  }
  const json = /\.json$/i.test(path);
  try {
    return json ? JSON.parse(text) : parseYaml(text);
  } catch (e) {
    throw new Error(`${what} ${path}: not valid ${json ? 'JSON' : 'YAML'} (${(e as Error).message.split('\n')[0]})`);
  }
}

/** Applies `a.b.c=value` overrides to a copy of `raw` (numeric path parts index arrays). */
export function applyOverrides(raw: unknown, sets: readonly string[]): unknown {
  const root = structuredClone(raw ?? {}) as Record<string, unknown>;
  for (const s of sets) {
    const eq = s.indexOf('=');
    if (eq <= 0) throw new Error(`--set ${JSON.stringify(s)}: expected key.path=value, e.g. optim.lr=3e-4`);
    const keys = s.slice(0, eq).trim().split('.');
    if (keys.some((k) => k === '')) throw new Error(`--set ${JSON.stringify(s)}: empty key in the path`);
    let value: unknown;
    try {
      value = parseYaml(s.slice(eq + 1));
    } catch (e) {
      throw new Error(`--set ${JSON.stringify(s)}: cannot parse the value (${(e as Error).message.split('\n')[0]})`);
    }
    let node: Record<string, unknown> = root;
    keys.slice(0, -1).forEach((k, i) => {
      const next = node[k];
      if (next === undefined || next === null) node[k] = /^\d+$/.test(keys[i + 1]!) ? [] : {};
      else if (typeof next !== 'object')
        throw new Error(
          `--set ${JSON.stringify(s)}: ${keys.slice(0, i + 1).join('.')} is ${JSON.stringify(next)}, not a mapping`,
        );
      node = node[k] as Record<string, unknown>;
    });
    node[keys[keys.length - 1]!] = value;
  }
  return root;
}
