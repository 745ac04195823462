#!/usr/bin/env bash
# Installs what the project needs on a fresh Debian/Ubuntu machine:
#   - npm dependencies (when node_modules is missing or stale),
#   - Mesa's lavapipe (software Vulkan) from bookworm-backports, but only when no WebGPU adapter works already,
#   - a font for the text of the charts (loss curves, benchmark pictures) when the system has none (optional),
#   - Chromium (Debian's `chromium`, with SwiftShader's WebGPU) for the browser tests, when /usr/bin/chromium is missing.
# Safe to run again: it does nothing that is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '[setup] %s\n' "$*" >&2; }

if [ -L node_modules ]; then
  # A link to another checkout's install (git worktrees share one): `npm ci` would empty the linked folder for
  # every checkout that uses it, so it is left alone here.
  log "node_modules links to $(readlink node_modules): not reinstalling (run npm ci in that checkout if needed)"
elif [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  log "installing npm dependencies"
  # onnxruntime-node's install script would try to download CUDA binaries; its WebGPU provider is bundled.
  ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund --loglevel=error
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO="sudo"

# apt-get update once, whichever install needs it first.
APT_UPDATED=0
apt_update() { [ "$APT_UPDATED" = 1 ] || { $SUDO apt-get update -qq && APT_UPDATED=1; }; }

has_font() { [ -n "$(fc-list 2>/dev/null | head -1)" ] || ls /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf >/dev/null 2>&1; }
ensure_font() {
  if has_font || ! command -v apt-get >/dev/null; then return 0; fi
  log "no system font: installing fonts-dejavu-core for the charts' text"
  { apt_update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq fonts-dejavu-core >/dev/null; } ||
    log "could not install fonts-dejavu-core: charts will be drawn without text"
}

# test/browser.test.ts drives /usr/bin/chromium (it fails with a message naming this script when it is missing).
ensure_chromium() {
  if [ -x /usr/bin/chromium ]; then return 0; fi
  if ! command -v apt-get >/dev/null; then
    log "no /usr/bin/chromium and no apt-get: install Chromium by hand for the browser tests (test/browser.test.ts)"
    return 0
  fi
  log "installing Chromium for the browser tests (test/browser.test.ts)"
  { apt_update && DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq chromium >/dev/null; } ||
    log "could not install chromium: the browser tests will fail until /usr/bin/chromium exists"
}

adapter_works() { node scripts/probe-adapter.mjs >/dev/null 2>&1; }

if adapter_works; then
  log "a WebGPU adapter works: $(node scripts/probe-adapter.mjs 2>/dev/null)"
  ensure_font
  ensure_chromium
  exit 0
fi

if ! command -v apt-get >/dev/null; then
  log "no WebGPU adapter and no apt-get: install a Vulkan driver (e.g. Mesa >= 23 lavapipe) by hand"
  exit 1
fi

. /etc/os-release
log "no WebGPU adapter: installing Mesa lavapipe (software Vulkan)"
if [ "${VERSION_CODENAME:-}" = bookworm ]; then
  if ! grep -rqs bookworm-backports /etc/apt/sources.list /etc/apt/sources.list.d/; then
    echo "deb http://deb.debian.org/debian bookworm-backports main" | $SUDO tee /etc/apt/sources.list.d/bookworm-backports.list >/dev/null
  fi
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq -t bookworm-backports mesa-vulkan-drivers libvulkan1 >/dev/null
else
  apt_update
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq mesa-vulkan-drivers libvulkan1 >/dev/null
fi

if adapter_works; then
  log "adapter ready: $(node scripts/probe-adapter.mjs 2>/dev/null)"
  ensure_font
  ensure_chromium
else
  log "still no WebGPU adapter after installing lavapipe:"
  node scripts/probe-adapter.mjs || true
  exit 1
fi
