/**
 * The native backend: finds and loads the N-API addon in native/ once at import and registers its binding
 * (backend.ts); failure leaves the reference backend active with a one-line warning.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { registerBackend, setBackend, setNativeError } from '../../device.js';
import { type Addon, NativeBackend } from './backend.js';

function addonPath(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  // src/engine/backends/native or dist/engine/backends/native → repo root
  return join(here, '..', '..', '..', '..', 'native', 'build', 'Release', 'glmv_native.node');
}

let native: NativeBackend | null = null;
let addon: Addon | null = null;

function load(): void {
  const path = addonPath();
  if (!existsSync(path)) {
    setNativeError(`the addon is not built (${path} is missing)`);
    return;
  }
  // OpenMP threads that spin while waiting make a busy machine crawl (10× slower steps when other processes share
  // the cores); sleeping waits cost little when it is idle. libgomp reads this when the addon loads it.
  process.env.OMP_WAIT_POLICY ??= 'passive';
  try {
    addon = createRequire(import.meta.url)(path) as Addon;
    native = new NativeBackend(addon);
    registerBackend(native);
  } catch (e) {
    const msg = (e as Error).message;
    const lib = /lib(dnnl|gomp)[^:\s]*/.exec(msg)?.[0];
    setNativeError(lib ? `${lib} cannot be loaded` : (msg.split('\n')[0] ?? msg));
  }
}

load();
const forced = process.env.GLMV_BACKEND;
if (forced === 'ref') {
  // stay on the reference backend
} else if (native) {
  setBackend('native');
} else if (forced === 'native') {
  throw new Error(
    'GLMV_BACKEND=native but the native backend failed to load; run `apt-get install -y libdnnl-dev && npm run build:native`',
  );
} else if (!process.env.GLMV_QUIET) {
  process.stderr.write(
    'glmv: native backend unavailable, using the slow pure-TypeScript backend. Install oneDNN and build the addon: ' +
      '`apt-get install -y libdnnl-dev && npm run build:native`\n',
  );
}

/** The raw addon for engine facilities that are not backend kernels (file mapping), or null. */
export function nativeAddon(): Addon | null {
  return native ? addon : null;
}

/** The loaded native backend (null when the addon is unavailable). */
export function nativeBackend(): NativeBackend | null {
  return native;
}
