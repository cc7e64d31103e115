/** Typed-array helpers shared across layers. */

/**
 * The non-empty arrays joined end to end; null when there are none (e.g. no image in a batch). Into `alloc(total)`
 * when given (a `BufferRecycler`'s `take`); otherwise a fresh array, or the one part itself when there is one.
 */
export function concatFloat32(
  parts: ReadonlyArray<Float32Array | null | undefined>,
  alloc?: (n: number) => Float32Array,
): Float32Array | null {
  const list = parts.filter((p): p is Float32Array => !!p && p.length > 0);
  if (list.length === 0) return null;
  if (list.length === 1 && !alloc) return list[0]!;
  const total = list.reduce((a, p) => a + p.length, 0);
  const out = alloc ? alloc(total) : new Float32Array(total);
  let o = 0;
  for (const p of list) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

/**
 * Float32 buffers handed out for one round and taken back all at once (`recycle`) for the next: a training step's
 * packed rows copy their images into buffers that the next step reuses, instead of fresh multi-megabyte arrays whose
 * page faults and zeroing cost more than the copy. A buffer is the smallest free one that is large enough, or a new
 * one a quarter larger than asked (rows vary a little in size from step to step).
 */
export class BufferRecycler {
  private free: Float32Array[] = [];
  private used: Float32Array[] = [];

  /** A view of n values (contents undefined) valid until the next `recycle`. */
  readonly take = (n: number): Float32Array => {
    let best = -1;
    for (let i = 0; i < this.free.length; i++)
      if (this.free[i]!.length >= n && (best < 0 || this.free[i]!.length < this.free[best]!.length)) best = i;
    const buf = best >= 0 ? this.free.splice(best, 1)[0]! : new Float32Array(Math.ceil(n * 1.25));
    this.used.push(buf);
    return buf.subarray(0, n);
  };

  /** Every buffer handed out since the last call is free again: what was written into them must not be used after. */
  recycle(): void {
    this.free.push(...this.used);
    // Keep the largest few: a round that needed larger buffers leaves smaller ones nobody takes again.
    if (this.free.length > 2 * Math.max(1, this.used.length)) {
      this.free.sort((a, b) => b.length - a.length);
      this.free.length = 2 * Math.max(1, this.used.length);
    }
    this.used = [];
  }
}
