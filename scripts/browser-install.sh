#!/usr/bin/env bash
# Install what the browser tests (tests/browser, scripts/browser-test.sh) need:
#   - Chromium from the distribution's packages (/usr/bin/chromium), via apt-get
#     when missing (needs root, as CI runs; otherwise prints the command);
#   - the Python venv .venv-browser from requirements-browser.txt (Playwright,
#     pytest), built by scripts/pyvenv.sh;
#   - axe-core from tests/browser/package-lock.json (`npm ci`, pinned).
# Playwright drives the system Chromium: `playwright install` (which downloads
# a browser of its own) is never run. Idempotent and quick when all is there.
# Messages go to stderr.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
NPM_DIR=tests/browser
AXE="$NPM_DIR/node_modules/axe-core/axe.min.js"
AXE_STAMP="$NPM_DIR/node_modules/.scimsync-lock.stamp"

log() { printf 'browser-install: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# 1. Chromium.
if [[ ! -x "$CHROMIUM" ]]; then
    if [[ $(id -u) -ne 0 ]]; then
        die "$CHROMIUM is missing; install it with: sudo apt-get install -y chromium"
    fi
    log "installing chromium (apt-get)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >&2
    apt-get install -y -qq chromium >&2
fi
[[ -x "$CHROMIUM" ]] || die "$CHROMIUM still missing after apt-get"

# 2. Python venv with Playwright and pytest.
scripts/pyvenv.sh .venv-browser requirements-browser.txt

# 3. axe-core, exactly as locked.
lock_hash=$(sha256sum "$NPM_DIR/package-lock.json" | cut -d' ' -f1)
if [[ ! -f "$AXE" || ! -f "$AXE_STAMP" || "$(cat "$AXE_STAMP")" != "$lock_hash" ]]; then
    if ! command -v npm >/dev/null && [[ $(id -u) -eq 0 ]]; then
        log "installing npm (apt-get) for axe-core"
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq npm >&2
    fi
    command -v npm >/dev/null || die "npm not found on PATH (needed for axe-core)"
    log "installing axe-core (npm ci in $NPM_DIR)"
    (cd "$NPM_DIR" && npm ci --no-audit --no-fund --loglevel=error >&2)
    [[ -f "$AXE" ]] || die "npm ci did not produce $AXE"
    printf '%s\n' "$lock_hash" >"$AXE_STAMP"
fi
log "ready: $("$CHROMIUM" --version 2>/dev/null | head -n1), playwright $(.venv-browser/bin/python -c 'import importlib.metadata as m; print(m.version("playwright"))'), axe-core $(cd "$NPM_DIR" && node -p 'require("axe-core/package.json").version')"
