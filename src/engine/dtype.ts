/**
 * Element types. float32 is the compute type; bfloat16 is storage + matmul (real checkpoints); float64 exists for
 * gradient checks on the reference backend; int32 holds indices and labels; bool holds masks.
 */
import { fmt } from './shape.js';

export type DType = 'float32' | 'float64' | 'bfloat16' | 'int32' | 'bool';
export type TypedArray = Float32Array | Float64Array | Uint16Array | Int32Array | Uint8Array;

export const DTYPES: readonly DType[] = ['float32', 'float64', 'bfloat16', 'int32', 'bool'];

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64' || d === 'bfloat16';
}

/** Throws unless `x` holds floats (ops that only make sense on real numbers). */
export function requireFloat(x: { readonly dtype: DType; readonly shape: readonly number[] }, op: string): void {
  if (!isFloat(x.dtype))
    throw new Error(
      `${op}: expected a float tensor, got ${x.dtype} (shape ${fmt(x.shape)}); cast it with .to('float32')`,
    );
}

// bf16 is a storage type: arithmetic on it runs in float32 and rounds the result back.
export function computeType(d: DType): DType {
  return d === 'bfloat16' ? 'float32' : d;
}

export function bytesPer(d: DType): number {
  switch (d) {
    case 'float64':
      return 8;
    case 'float32':
    case 'int32':
      return 4;
    case 'bfloat16':
      return 2;
    case 'bool':
      return 1;
  }
}

export function allocArray(d: DType, n: number): TypedArray {
  switch (d) {
    case 'float32':
      return new Float32Array(n);
    case 'float64':
      return new Float64Array(n);
    case 'bfloat16':
      return new Uint16Array(n);
    case 'int32':
      return new Int32Array(n);
    case 'bool':
      return new Uint8Array(n);
  }
}

export function checkDType(d: unknown, what: string): DType {
  if (typeof d === 'string' && (DTYPES as readonly string[]).includes(d)) return d as DType;
  throw new Error(`${what}: unknown dtype ${JSON.stringify(d)}; expected one of ${DTYPES.join(', ')}`);
}

/** Promotion for binary arithmetic: the wider float wins; ints and bools become float32. */
export function promote(a: DType, b: DType): DType {
  if (a === b) return a === 'int32' || a === 'bool' ? 'float32' : a;
  if (a === 'float64' || b === 'float64') return 'float64';
  return 'float32';
}

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

/** float32 → bfloat16 bits with round-to-nearest-even (NaN stays NaN). */
export function f32ToBf16(x: number): number {
  f32[0] = x;
  const bits = u32[0] as number;
  if ((bits & 0x7f800000) === 0x7f800000 && (bits & 0x007fffff) !== 0) return ((bits >>> 16) | 0x40) & 0xffff;
  const rounded = bits + 0x7fff + ((bits >>> 16) & 1);
  return (rounded >>> 16) & 0xffff;
}

export function bf16ToF32(h: number): number {
  u32[0] = (h & 0xffff) << 16;
  return f32[0] as number;
}

/** IEEE half → float32 (safetensors F16 checkpoints are converted on load). */
export function f16ToF32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? Number.NaN : s * Number.POSITIVE_INFINITY;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}
