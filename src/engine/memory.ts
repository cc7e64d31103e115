/**
 * Buffer pooling and scoped cleanup. A training step allocates the same buffer sizes every step; returning them to
 * a pool at the end of a `scope` means steady-state steps allocate (and zero) nothing new.
 *
 * Ownership: a Storage is shared by a tensor and its views (refcount). `scope(fn)` disposes every tensor created
 * inside it except those returned from `fn` or passed to `keep`; a disposed tensor throws on any later use, so a
 * mistake is an error, never silently reused memory. Tensors created outside any scope are left to the GC.
 */
import { allocArray, bytesPer, type DType, type TypedArray } from './dtype.js';

export class Storage {
  refs = 1;
  released = false;
  /** What the GC finalizer sees (it must not reference the storage); release marks it done. */
  finalizeToken: { bytes: number; done: boolean } | null = null;
  constructor(
    readonly dtype: DType,
    /** The tensor's elements: exactly its size (a prefix of `base` when the buffer came from a size class). */
    public data: TypedArray,
    readonly pooled: boolean,
    /** The whole allocated buffer (what returns to the pool). */
    readonly base: TypedArray = data,
  ) {}
}

// Storages that are never disposed are freed by the GC; this keeps liveBytes honest for them. The token hangs off the
// storage rather than a WeakMap keyed by it: a decode step allocates hundreds of small storages, and every WeakMap
// entry is an ephemeron the GC has to trace.
const finalizer = new FinalizationRegistry<{ bytes: number; done: boolean }>((h) => {
  if (!h.done) stats.liveBytes -= h.bytes;
});

function register(s: Storage, bytes: number): Storage {
  const token = { bytes, done: false };
  s.finalizeToken = token;
  finalizer.register(s, token);
  return s;
}

interface Disposable {
  dispose(): void;
  readonly isDisposed: boolean;
}

const stats = { liveBytes: 0, peakBytes: 0, pooledBytes: 0, allocations: 0, reuses: 0 };
const pool = new Map<string, TypedArray[]>();
// Freed buffers parked for reuse; `clearPool(limit)` changes it (a large model server may want less).
let poolLimitBytes = 2 * 1024 ** 3;
const MIN_POOLED = 64;

/**
 * Pooled buffers come in size classes, four per octave (1, 1.25, 1.5, 1.75 × 2^k): a request takes the smallest
 * class that holds it, so buffers are reused across similar shapes (packed rows with varying image counts, growing
 * generation lengths) at the cost of at most 25% slack.
 */
export function sizeClass(n: number): number {
  if (n <= MIN_POOLED) return n;
  let e = Math.floor(Math.log2(n)) - 2;
  let m = Math.ceil(n / 2 ** e);
  if (m > 7) {
    m = 4;
    e += 1;
  }
  return m * 2 ** e;
}

function key(dtype: DType, capacity: number): string {
  return `${dtype}:${capacity}`;
}

/** A buffer of n elements. Contents are undefined unless `zero` (pooled buffers are dirty). */
export function allocStorage(dtype: DType, n: number, zero: boolean): Storage {
  const pooled = scopeDepth() > 0 && n >= MIN_POOLED;
  const capacity = pooled ? sizeClass(n) : n;
  const bytes = capacity * bytesPer(dtype);
  stats.liveBytes += bytes;
  if (stats.liveBytes > stats.peakBytes) stats.peakBytes = stats.liveBytes;
  let base: TypedArray | undefined;
  if (pooled) {
    base = pool.get(key(dtype, capacity))?.pop();
    if (base) {
      stats.pooledBytes -= bytes;
      stats.reuses++;
    }
  }
  if (!base) {
    stats.allocations++;
    base = allocArray(dtype, capacity);
  } else if (zero) {
    base.fill(0, 0, n);
  }
  const data = capacity === n ? base : base.subarray(0, n);
  return register(new Storage(dtype, data, pooled, base), bytes);
}

/** Wraps caller-owned data (never pooled). */
export function wrapStorage(dtype: DType, data: TypedArray): Storage {
  stats.liveBytes += data.length * bytesPer(dtype);
  if (stats.liveBytes > stats.peakBytes) stats.peakBytes = stats.liveBytes;
  return register(new Storage(dtype, data, false), data.length * bytesPer(dtype));
}

export function releaseStorage(s: Storage): void {
  if (--s.refs > 0 || s.released) return;
  s.released = true;
  if (s.finalizeToken) s.finalizeToken.done = true;
  const bytes = s.base.length * bytesPer(s.dtype);
  stats.liveBytes -= bytes;
  if (s.pooled && stats.pooledBytes + bytes <= poolLimitBytes) {
    const k = key(s.dtype, s.base.length);
    let list = pool.get(k);
    if (!list) {
      list = [];
      pool.set(k, list);
    }
    list.push(s.base);
    stats.pooledBytes += bytes;
  }
  // Make any stale access fail loudly instead of reading recycled memory.
  s.data = EMPTY;
}
const EMPTY = new Float32Array(0);

// ---- scopes ----
const scopes: Set<Disposable>[] = [];

function scopeDepth(): number {
  return scopes.length;
}

export function trackTensor(t: Disposable): void {
  const top = scopes[scopes.length - 1];
  if (top) top.add(t);
}

/** Removes a tensor from scope tracking entirely (parameters live until disposed explicitly). */
export function untrack(t: Disposable): void {
  for (const sc of scopes) sc.delete(t);
}

/** Removes tensors from the current scope so they survive it (they move to the enclosing scope, if any). */
export function keep<T>(value: T): T {
  if (scopes.length > 0) visit(value, keepIfInnermost);
  return value;
}

/**
 * `keep` for one tensor: moves it out of the innermost scope when that scope tracks it (true; also true when no scope
 * is open); false, and nothing changed, when an outer scope tracks it.
 */
export function keepIfInnermost(t: Disposable): boolean {
  const top = scopes[scopes.length - 1];
  if (!top) return true;
  if (!top.delete(t)) return false;
  scopes[scopes.length - 2]?.add(t);
  return true;
}

/**
 * Runs fn; every tensor created inside and not returned (tensors found in the returned value, arrays and plain
 * objects included) or kept is disposed at the end. Async functions are supported.
 */
export function scope<T>(fn: () => T): T {
  scopes.push(new Set());
  let result: T;
  try {
    result = fn();
  } catch (e) {
    endScope(undefined);
    throw e;
  }
  if (result instanceof Promise) {
    throw new Error('scope: fn returned a Promise; use scopeAsync for async functions');
  }
  endScope(result);
  return result;
}

export async function scopeAsync<T>(fn: () => Promise<T>): Promise<T> {
  scopes.push(new Set());
  const mine = scopes[scopes.length - 1]!;
  try {
    const result = await fn();
    if (scopes[scopes.length - 1] !== mine) throw new Error('scopeAsync: scopes were interleaved by concurrent code');
    endScope(result);
    return result;
  } catch (e) {
    if (scopes[scopes.length - 1] === mine) endScope(undefined);
    throw e;
  }
}

function endScope(result: unknown): void {
  const top = scopes.pop()!;
  const parent = scopes[scopes.length - 1];
  visit(result, (t) => {
    if (top.delete(t)) parent?.add(t);
  });
  for (const t of top) if (!t.isDisposed) t.dispose();
}

function visit(value: unknown, f: (t: Disposable) => void, depth = 0): void {
  if (value === null || value === undefined || depth > 4) return;
  if (typeof value !== 'object') return;
  if (typeof (value as Disposable).dispose === 'function' && 'isDisposed' in (value as object)) {
    f(value as Disposable);
    return;
  }
  if (Array.isArray(value)) {
    for (const v of value) visit(v, f, depth + 1);
    return;
  }
  if (value instanceof Map) {
    for (const v of value.values()) visit(v, f, depth + 1);
    return;
  }
  if (Object.getPrototypeOf(value) === Object.prototype) {
    for (const v of Object.values(value)) visit(v, f, depth + 1);
  }
}

export interface MemoryStats {
  /** Bytes held by live tensors' storages. */
  liveBytes: number;
  /** High-water mark of liveBytes since the last reset. */
  peakBytes: number;
  /** Bytes parked in the pool for reuse. */
  pooledBytes: number;
  /** Fresh allocations and pool reuses since start. */
  allocations: number;
  reuses: number;
}

export function memoryStats(): MemoryStats {
  return { ...stats };
}

export function resetPeak(): void {
  stats.peakBytes = stats.liveBytes;
}

/** Drops pooled buffers (returns memory to the GC) and optionally changes the pool's cap. */
export function clearPool(limitBytes?: number): void {
  pool.clear();
  stats.pooledBytes = 0;
  if (limitBytes !== undefined) poolLimitBytes = limitBytes;
}
