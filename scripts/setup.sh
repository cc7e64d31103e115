#!/usr/bin/env bash
# Sets up glmv on a fresh Debian machine: system packages (when root and missing), then npm ci, which builds the
# TypeScript and the native oneDNN addon. Safe to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

# libdnnl-dev: oneDNN for the native engine; ffmpeg: video decoding; g++/make/python3: node-gyp;
# chromium: the pipeline report is checked in headless Chromium by the tests.
APT_PACKAGES=(libdnnl-dev ffmpeg g++ make python3 chromium)
missing=()
for p in "${APT_PACKAGES[@]}"; do
  dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ]; then
    echo "setup: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -q
    apt-get install -y -q --no-install-recommends "${missing[@]}"
  else
    echo "setup: missing system packages: ${missing[*]} — install them with: sudo apt-get install -y ${missing[*]}" >&2
    exit 1
  fi
fi

export ONNXRUNTIME_NODE_INSTALL=skip
npm ci --no-audit --no-fund
