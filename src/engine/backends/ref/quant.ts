/**
 * Reference weight-only quantised matmul (the specification the native kernels are tested against): every weight is
 * unpacked and dequantised in float64 arithmetic, one output channel at a time. Layout: see `QuantMatmulArgs`.
 * With `actGroup`, x is first quantised to int8 per row and group (`quantizeActivations`) and each group's product
 * is an exact integer dot, scaled by weight scale × activation scale.
 */
import type { QuantMatmulArgs } from '../../backend.js';
import { bf16ToF32 } from '../../dtype.js';

/** Round half to even (what the CPU's float → int conversion does in its default rounding mode). */
function rint(v: number): number {
  const r = Math.round(v);
  return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

/**
 * int8 activations, per row and per `group` consecutive inputs (the last group of a row may be shorter), in float32
 * arithmetic: sx = max|x| / 127, xq = round-half-even(x · (127 / max|x|)) clamped to ±127. A group with a NaN or
 * infinite value gets a non-finite scale (its products become NaN, as the native kernel's do).
 */
export function quantizeActivations(
  x: ArrayLike<number>,
  M: number,
  K: number,
  group: number,
): { q: Int8Array; scale: Float32Array; groups: number } {
  const groups = Math.ceil(K / group);
  const q = new Int8Array(M * K);
  const scale = new Float32Array(M * groups);
  for (let m = 0; m < M; m++)
    for (let g = 0; g < groups; g++) {
      const k0 = m * K + g * group;
      const k1 = m * K + Math.min(K, (g + 1) * group);
      let amax = 0;
      for (let k = k0; k < k1; k++) {
        const v = x[k] as number;
        amax = Number.isNaN(v) || Number.isNaN(amax) ? Number.NaN : Math.max(amax, Math.abs(v));
      }
      const inv = amax > 0 ? Math.fround(127 / amax) : 0;
      for (let k = k0; k < k1; k++) {
        let v = rint(Math.fround((x[k] as number) * inv));
        if (Number.isNaN(v)) v = 0;
        q[k] = Math.max(-127, Math.min(127, v));
      }
      scale[m * groups + g] = Math.fround(amax / 127);
    }
  return { q, scale, groups };
}

export function qmatmulRef(a: QuantMatmulArgs): void {
  const { x, M, K, N, packed, bits, scale, scaleDtype, groupSize, bias, out } = a;
  const per = 32 / bits;
  const words = Math.ceil(K / per);
  const groups = Math.ceil(K / groupSize);
  const mask = (1 << bits) - 1;
  const offset = 1 << (bits - 1);
  const sw = (n: number, k: number): number => {
    const si = n * groups + Math.floor(k / groupSize);
    return scaleDtype === 'bfloat16' ? bf16ToF32(scale[si] as number) : (scale[si] as number);
  };
  const ag = a.actGroup ?? 0;
  if (ag) {
    if (!Number.isInteger(ag) || ag <= 0)
      throw new Error(`qmatmul: activation group must be a positive integer, got ${ag}`);
    if (groupSize < K && groupSize % ag !== 0)
      throw new Error(`qmatmul: weight group ${groupSize} is not a multiple of the activation group ${ag}`);
  }
  const xq = ag ? quantizeActivations(x, M, K, ag) : null;
  const w = new Float64Array(K);
  const qi = new Int32Array(K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const word = packed[n * words + Math.floor(k / per)] as number;
      qi[k] = ((word >>> (bits * (k % per))) & mask) - offset;
      w[k] = (qi[k] as number) * sw(n, k);
    }
    const b = bias ? (bias[n] as number) : 0;
    for (let m = 0; m < M; m++) {
      let acc = 0;
      if (xq) {
        for (let g = 0; g < xq.groups; g++) {
          const k0 = g * ag;
          const k1 = Math.min(K, k0 + ag);
          let dot = 0;
          for (let k = k0; k < k1; k++) dot += (qi[k] as number) * (xq.q[m * K + k] as number);
          acc += dot * sw(n, k0) * (xq.scale[m * xq.groups + g] as number);
        }
      } else for (let k = 0; k < K; k++) acc += (x[m * K + k] as number) * (w[k] as number);
      out[m * N + n] = acc + b;
    }
  }
}
