/**
 * JSON as the reward server writes it. Rewards are floats on the wire: `JSON.stringify` writes 1 and 0 for whole
 * numbers, Python's `json` reads those as int, torch then builds an int64 tensor, and OpenRLHF's advantage shaping
 * (`rewards.std()` in group_norm, `rewards - baseline` in place in rloo / reinforce_baseline) fails on it with
 * "std and var only support floating point and complex dtypes". Every number under a reward-valued key (and every
 * number in `extra_logs`, which OpenRLHF turns into tensors and averages) is written with a decimal point.
 */

/** Keys whose numbers (and every number below them) are written as floats. */
export const FLOAT_KEYS: ReadonlySet<string> = new Set(['reward', 'rewards', 'score', 'scores', 'extra_logs']);

/** A number as a JSON float literal: `1` → `1.0`; non-finite numbers are `null` as in JSON.stringify. */
export function floatLiteral(n: number): string {
  const s = JSON.stringify(n);
  return /^-?\d+$/.test(s) ? `${s}.0` : s;
}

/**
 * `JSON.stringify(value)`, except that numbers under `floatKeys` are float literals. Same semantics otherwise:
 * `toJSON` is honoured, undefined and function members are left out (null in arrays).
 */
export function floatJson(value: unknown, floatKeys: ReadonlySet<string> = FLOAT_KEYS): string {
  return write(value, false, floatKeys) ?? 'null';
}

function write(v: unknown, asFloat: boolean, keys: ReadonlySet<string>): string | undefined {
  if (v !== null && typeof v === 'object' && typeof (v as { toJSON?: unknown }).toJSON === 'function')
    v = (v as { toJSON: () => unknown }).toJSON();
  if (typeof v === 'number') return asFloat ? floatLiteral(v) : JSON.stringify(v);
  if (v === undefined || typeof v === 'function' || typeof v === 'symbol') return undefined;
  if (v === null || typeof v !== 'object') return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map((x) => write(x, asFloat, keys) ?? 'null').join(',')}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v)) {
    const s = write(x, asFloat || keys.has(k), keys);
    if (s !== undefined) parts.push(`${JSON.stringify(k)}:${s}`);
  }
  return `{${parts.join(',')}}`;
}
