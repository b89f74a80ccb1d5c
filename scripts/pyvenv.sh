#!/usr/bin/env bash
# Create or refresh a project-local Python venv from a requirements file.
#
#   scripts/pyvenv.sh VENV REQUIREMENTS
#
# Does nothing when VENV was already built from the same requirements (blank
# lines and comments aside) with the same python3; otherwise (re)builds it.
# Concurrent calls for the same VENV are serialised. Messages go to stderr.
# (scripts/emulator.sh manages .venv the same way, on its own.)
set -euo pipefail

(($# == 2)) || { echo "usage: $0 VENV REQUIREMENTS" >&2; exit 2; }
VENV=$1
REQUIREMENTS=$2
STAMP="$VENV/.scimsync-requirements.stamp"
name=$(basename "$VENV")

log() { printf 'pyvenv(%s): %s\n' "$name" "$*" >&2; }

[[ -f "$REQUIREMENTS" ]] || { log "error: missing $REQUIREMENTS"; exit 1; }
command -v python3 >/dev/null || { log "error: python3 not found on PATH"; exit 1; }

wanted_stamp() {
    {
        sed -e 's/[[:space:]]*#.*$//' -e '/^[[:space:]]*$/d' "$REQUIREMENTS"
        python3 -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

venv_ok() {
    [[ -x "$VENV/bin/python" && -f "$STAMP" && "$(cat "$STAMP")" == "$(wanted_stamp)" ]]
}

build() {
    venv_ok && return 0
    if [[ -d "$VENV" ]]; then
        log "rebuilding (requirements or python changed, or venv incomplete)"
        python3 -m venv --clear "$VENV"
    else
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    log "installing $(sed -e 's/[[:space:]]*#.*$//' -e '/^[[:space:]]*$/d' "$REQUIREMENTS" | tr '\n' ' ')"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input -r "$REQUIREMENTS" >&2
    wanted_stamp >"$STAMP"
    log "ready"
}

venv_ok && exit 0
mkdir -p "$(dirname "$VENV")"
if command -v flock >/dev/null; then
    (
        flock 9
        build
    ) 9>"$VENV.lock"
else
    build
fi
