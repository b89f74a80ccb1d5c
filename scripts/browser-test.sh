#!/usr/bin/env bash
# Browser tests of the User Provisioning portal (tests/browser), as a person
# would use it: headless Chromium (the system's) driven by Playwright, against
# the local stack this script starts and stops itself.
#
#   scripts/browser-test.sh [PYTEST_ARGS...]      (or: make browser-test)
#   e.g. scripts/browser-test.sh -k walk -x; tests/browser/test_x.py::test_y
#
# 1. installs what is missing (scripts/browser-install.sh; quick when present),
# 2. builds scimsync (debug) and starts the emulator on a free port
#    (scripts/with-emulator.sh --port 0),
# 3. starts `scimsync --local serve --port 0 --json` and reads its port from
#    the first JSON line (tenantUrl),
# 4. runs pytest on tests/browser with, in its environment:
#      SCIMSYNC_BIN, SCIMSYNC_BASE_URL (http://127.0.0.1:<port>),
#      SCIMSYNC_TENANT_URL, BROWSER_ARTIFACTS, CHROMIUM, AXE_JS
#    (the tests mint portal links with `scimsync --local --json portal link`),
# 5. stops the server and the emulator when done, failed or interrupted.
# Screenshots and the server log go to target/browser/ (BROWSER_ARTIFACTS).
# The exit status is pytest's.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
export BROWSER_ARTIFACTS="${BROWSER_ARTIFACTS:-$ROOT/target/browser}"
export CHROMIUM="${CHROMIUM:-/usr/bin/chromium}"
export AXE_JS="${AXE_JS:-$ROOT/tests/browser/node_modules/axe-core/axe.min.js}"
READY_TIMEOUT_S=60

log() { printf 'browser-test: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

if [[ -z "${SCIMSYNC_BROWSER_STACK:-}" ]]; then
    # Outer run: install, build, then come back in with the emulator up.
    scripts/browser-install.sh
    scripts/emulator.sh install
    log "building scimsync (debug)"
    ${CARGO:-cargo} build -p scimsync
    mkdir -p "$BROWSER_ARTIFACTS"
    export SCIMSYNC_BROWSER_STACK=1
    exec scripts/with-emulator.sh --port 0 -- "$0" "$@"
fi

# Inner run: the emulator is up (EMULATOR_PORT, SCIMSYNC_EMULATOR_URL).
BIN="$TARGET_DIR/debug/scimsync"
[[ -x "$BIN" ]] || die "$BIN not built"
mkdir -p "$BROWSER_ARTIFACTS"
server_out="$BROWSER_ARTIFACTS/server.out"
server_log="$BROWSER_ARTIFACTS/server.log"
: >"$server_out"
server=""
child=""

# shellcheck disable=SC2329 # invoked by trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    if [[ -n "$server" ]] && kill -0 "$server" 2>/dev/null; then
        kill -TERM "$server" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$server" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "$server" 2>/dev/null || true
        wait "$server" 2>/dev/null || true
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

"$BIN" --local serve --port 0 --json >"$server_out" 2>"$server_log" &
server=$!

line=""
for ((i = 0; i < READY_TIMEOUT_S * 10; i++)); do
    line=$(head -n1 "$server_out")
    [[ -n "$line" ]] && break
    kill -0 "$server" 2>/dev/null || { tail -n 20 "$server_log" >&2; die "scimsync serve exited early"; }
    sleep 0.1
done
[[ -n "$line" ]] || die "scimsync serve printed nothing in ${READY_TIMEOUT_S}s (log: $server_log)"
tenant_url=$(printf '%s' "$line" | python3 -c 'import json, sys; print(json.load(sys.stdin)["tenantUrl"])') ||
    die "unexpected first line of scimsync serve: $line"
[[ "$tenant_url" =~ ^(http://127\.0\.0\.1:[0-9]+) ]] || die "tenantUrl is not on 127.0.0.1: $tenant_url"
export SCIMSYNC_BIN="$BIN"
export SCIMSYNC_BASE_URL="${BASH_REMATCH[1]}"
export SCIMSYNC_TENANT_URL="$tenant_url"
log "server at $SCIMSYNC_BASE_URL (log: $server_log); screenshots in $BROWSER_ARTIFACTS"

export PYTHONDONTWRITEBYTECODE=1

# pytest in the background, so the traps fire while it runs.
# Arguments naming tests/browser/... replace the default (all of tests/browser).
paths=(tests/browser)
for a in "$@"; do [[ "$a" == tests/browser* ]] && paths=(); done
.venv-browser/bin/python -m pytest "${paths[@]}" -p no:cacheprovider "$@" &
child=$!
rc=0
wait "$child" || rc=$?
child=""
exit "$rc"
