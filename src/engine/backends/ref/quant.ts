/**
 * Reference weight-only quantised matmul (the specification the native kernel is tested against): every weight is
 * unpacked and dequantised in float64 arithmetic, one output channel at a time. Layout: see `QuantMatmulArgs`.
 */
import type { QuantMatmulArgs } from '../../backend.js';
import { bf16ToF32 } from '../../dtype.js';

export function qmatmulRef(a: QuantMatmulArgs): void {
  const { x, M, K, N, packed, bits, scale, scaleDtype, groupSize, bias, out } = a;
  const per = 32 / bits;
  const words = Math.ceil(K / per);
  const groups = Math.ceil(K / groupSize);
  const mask = (1 << bits) - 1;
  const offset = 1 << (bits - 1);
  const w = new Float64Array(K);
  for (let n = 0; n < N; n++) {
    for (let k = 0; k < K; k++) {
      const word = packed[n * words + Math.floor(k / per)] as number;
      const q = ((word >>> (bits * (k % per))) & mask) - offset;
      const si = n * groups + Math.floor(k / groupSize);
      const s = scaleDtype === 'bfloat16' ? bf16ToF32(scale[si] as number) : (scale[si] as number);
      w[k] = q * s;
    }
    const b = bias ? (bias[n] as number) : 0;
    for (let m = 0; m < M; m++) {
      let acc = 0;
      for (let k = 0; k < K; k++) acc += (x[m * K + k] as number) * (w[k] as number);
      out[m * N + n] = acc + b;
    }
  }
}
