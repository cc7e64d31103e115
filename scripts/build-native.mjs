#!/usr/bin/env node
// Builds the native oneDNN addon with node-gyp against the machine's Node headers (never downloads them).
// A failure is not fatal: glmv then runs on its pure-TypeScript backend and says how to fix it.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const nativeDir = join(root, 'native');
const require = createRequire(import.meta.url);

function nodeGyp() {
  try {
    return require.resolve('node-gyp/bin/node-gyp.js');
  } catch {
    return process.env.npm_config_node_gyp || null;
  }
}

if (process.env.GLMV_SKIP_NATIVE) {
  console.log('glmv: GLMV_SKIP_NATIVE is set, not building the native addon');
  process.exit(0);
}
if (!existsSync('/usr/include/oneapi/dnnl/dnnl.hpp')) {
  console.warn(
    'glmv: oneDNN headers not found; the native backend is not built. Install them with `apt-get install -y libdnnl-dev`, then run `npm run build:native`.',
  );
  process.exit(0);
}
const gyp = nodeGyp();
if (!gyp) {
  console.warn('glmv: node-gyp not found; run `npm run build:native` after installing dev dependencies.');
  process.exit(0);
}
// nodedir: build against the installed Node headers (/usr/include/node), never download them.
const nodedir = process.env.npm_config_nodedir || (existsSync('/usr/include/node/node_api.h') ? '/usr' : undefined);
const args = [gyp, 'rebuild', ...(nodedir ? [`--nodedir=${nodedir}`] : [])];
const r = spawnSync(process.execPath, args, { cwd: nativeDir, stdio: 'inherit' });
if (r.status !== 0) {
  console.warn('glmv: building the native addon failed (see above); glmv will use the slow pure-TypeScript backend.');
  process.exit(0);
}
console.log('glmv: native backend built');
