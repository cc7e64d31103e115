/**
 * Backend selection. The native backend (oneDNN + C++ kernels) is used when its addon loads; otherwise everything
 * runs on the reference backend after a one-line warning. Kernels a backend does not support for a dtype fall back
 * to the reference implementation, so float64 gradient checks work everywhere.
 * GLMV_BACKEND=ref|native forces a choice; GLMV_QUIET=1 silences the warning.
 */
import type { Backend } from './backend.js';
import { RefBackend } from './backends/ref/index.js';
import type { DType } from './dtype.js';

const ref = new RefBackend();
const backends = new Map<string, Backend>([['ref', ref]]);
let current: Backend = ref;
let nativeError: string | null = null;

export function registerBackend(b: Backend): void {
  backends.set(b.name, b);
}

export function setBackend(name: string): void {
  const b = backends.get(name);
  if (!b) {
    const why = name === 'native' && nativeError ? ` (${nativeError})` : '';
    throw new Error(
      `setBackend: backend '${name}' is not available${why}; available: ${[...backends.keys()].join(', ')}`,
    );
  }
  current = b;
}

export function getBackend(): Backend {
  return current;
}

export function availableBackends(): string[] {
  return [...backends.keys()];
}

/** Runs fn with another backend selected. */
export function withBackend<T>(name: string, fn: () => T): T {
  const prev = current;
  setBackend(name);
  try {
    return fn();
  } finally {
    current = prev;
  }
}

/** The backend that runs `kernel` for `dtype`: the current one if it supports it, else the reference. */
export function be(kernel: keyof Backend, dtype: DType): Backend {
  return current.supports(kernel, dtype) ? current : ref;
}

export function refBackend(): Backend {
  return ref;
}

export function setNativeError(msg: string): void {
  nativeError = msg;
}

export function nativeLoadError(): string | null {
  return nativeError;
}
