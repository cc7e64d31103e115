/** Shape arithmetic shared by the tensor front and the backends. Errors name the op and both shapes. */

export type Shape = readonly number[];

export function numel(shape: Shape): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

export function contiguousStrides(shape: Shape): number[] {
  const s = new Array<number>(shape.length);
  let acc = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    s[i] = acc;
    acc *= shape[i] as number;
  }
  return s;
}

export function fmt(shape: Shape): string {
  return `[${shape.join(', ')}]`;
}

export function checkShape(shape: readonly unknown[], op: string): number[] {
  for (const d of shape) {
    if (typeof d !== 'number' || !Number.isInteger(d) || d < 0) {
      throw new Error(`${op}: invalid shape ${JSON.stringify(shape)}; dimensions must be non-negative integers`);
    }
  }
  return shape as number[];
}

/** Normalises a possibly negative axis; throws with the op name when out of range. */
export function normAxis(axis: number, ndim: number, op: string): number {
  if (!Number.isInteger(axis)) throw new Error(`${op}: axis must be an integer, got ${axis}`);
  const a = axis < 0 ? axis + ndim : axis;
  if (a < 0 || a >= ndim) throw new Error(`${op}: axis ${axis} out of range for a tensor with ${ndim} dimensions`);
  return a;
}

/** NumPy broadcasting of two shapes. */
export function broadcastShapes(a: Shape, b: Shape, op: string): number[] {
  const n = Math.max(a.length, b.length);
  const out = new Array<number>(n);
  for (let i = 0; i < n; i++) {
    const da = a[a.length - n + i] ?? 1;
    const db = b[b.length - n + i] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      throw new Error(`${op}: shapes ${fmt(a)} and ${fmt(b)} cannot be broadcast (dimension ${i}: ${da} vs ${db})`);
    }
    out[i] = da === 1 ? db : da;
  }
  return out;
}

/** Strides for viewing `shape`/`strides` broadcast to `target` (0 stride on broadcast dims). */
export function broadcastStrides(shape: Shape, strides: readonly number[], target: Shape): number[] {
  const n = target.length;
  const out = new Array<number>(n).fill(0);
  const off = n - shape.length;
  for (let i = 0; i < shape.length; i++) {
    out[off + i] = shape[i] === 1 && target[off + i] !== 1 ? 0 : (strides[i] as number);
  }
  return out;
}

export function sameShape(a: Shape, b: Shape): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * Merges adjacent dimensions that are contiguous with each other in every operand, so kernels iterate over as few
 * dimensions as possible. Returns the merged shape and per-operand strides.
 */
export function coalesce(
  shape: Shape,
  stridesList: ReadonlyArray<readonly number[]>,
): { shape: number[]; strides: number[][] } {
  const dims: number[] = [];
  const strides: number[][] = stridesList.map(() => []);
  for (let i = 0; i < shape.length; i++) {
    const d = shape[i] as number;
    if (d === 1) continue;
    const last = dims.length - 1;
    if (last >= 0 && stridesList.every((s, k) => (strides[k]![last] as number) === (s[i] as number) * d)) {
      dims[last] = (dims[last] as number) * d;
      stridesList.forEach((s, k) => {
        strides[k]![last] = s[i] as number;
      });
    } else {
      dims.push(d);
      stridesList.forEach((s, k) => {
        strides[k]!.push(s[i] as number);
      });
    }
  }
  if (dims.length === 0) {
    return { shape: [1], strides: stridesList.map(() => [1]) };
  }
  return { shape: dims, strides };
}
