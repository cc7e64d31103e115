/** Typed-array helpers shared across layers. */

/** The non-empty arrays joined end to end; null when there are none (e.g. no image in a batch). */
export function concatFloat32(parts: ReadonlyArray<Float32Array | null | undefined>): Float32Array | null {
  const list = parts.filter((p): p is Float32Array => !!p && p.length > 0);
  if (list.length === 0) return null;
  if (list.length === 1) return list[0]!;
  const out = new Float32Array(list.reduce((a, p) => a + p.length, 0));
  let o = 0;
  for (const p of list) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}
