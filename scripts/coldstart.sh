#!/usr/bin/env bash
# Cold start of each function's bootstrap: init time (process start until its
# first GET /2018-06-01/runtime/invocation/next on a fake Lambda Runtime API on
# loopback, see crates/coldstart), the first response (init plus a first
# request from events/, with AWS a closed port on loopback) and package size,
# next to a bare lambda_runtime hello function (coldstart-hello) built the
# same way.
#
#   scripts/coldstart.sh [--runs N] [--no-build] [--arch arm64|x86-64|both] [BINARY...]
#
# BINARY defaults to every function binary of infra/template.yaml;
# coldstart-hello is always added.
#
# arm64 (what is deployed) runs under qemu-aarch64-static (Debian
# `qemu-user-static`, with the arm64 libc of `libc6-arm64-cross`): good for
# "does it start" and for relative numbers, but emulation inflates the time
# several-fold. x86-64 builds the same code with the same profile for the
# host CPU and runs it natively: the closer to what Lambda's Graviton cores
# do in absolute terms. Default: both.
#
# Packages are built with scripts/lambda-build.sh (cargo-lambda, release) and
# copied to target/coldstart/<arch>/<binary>; results are printed and also
# written to target/coldstart/results.txt. Nothing leaves the machine.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
TEMPLATE="$ROOT/infra/template.yaml"
OUT="$TARGET_DIR/coldstart"
QEMU=${QEMU:-qemu-aarch64-static}
QEMU_LD=${QEMU_LD:-/usr/aarch64-linux-gnu}

log() { printf 'coldstart: %s\n' "$*" >&2; }

runs=20
build=1
functions=()
arch=both
while (($#)); do
    case "$1" in
        --runs) runs=${2:?--runs needs a value}; shift 2 ;;
        --no-build) build=0; shift ;;
        --arch) arch=${2:?--arch needs a value}; shift 2 ;;
        -h | --help) sed -n '2,22s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 0 ;;
        -*) log "unknown option $1"; exit 2 ;;
        *) functions+=("$1"); shift ;;
    esac
done
case "$arch" in
    both) arches=(arm64 x86-64) ;;
    arm64 | x86-64) arches=("$arch") ;;
    *) log "--arch: arm64, x86-64 or both"; exit 2 ;;
esac

((${#functions[@]})) ||
    mapfile -t functions < <(sed -n 's/^[[:space:]]*Binary:[[:space:]]*\([A-Za-z0-9_-]*\).*/\1/p' "$TEMPLATE")
binaries=("${functions[@]}" coldstart-hello)

if [[ " ${arches[*]} " == *" arm64 "* ]]; then
    command -v "$QEMU" >/dev/null && [[ -d "$QEMU_LD" ]] || {
        log "arm64 needs $QEMU and $QEMU_LD: apt-get install qemu-user-static libc6-arm64-cross"
        log "(or run with --arch x86-64)"
        exit 1
    }
fi

mkdir -p "$OUT"
for a in "${arches[@]}"; do
    if ((build)); then
        flag=()
        [[ "$a" == x86-64 ]] && flag=(--x86-64)
        "$ROOT/scripts/lambda-build.sh" "${flag[@]}" "${binaries[@]}"
        mkdir -p "$OUT/$a"
        for b in "${binaries[@]}"; do
            mkdir -p "$OUT/$a/$b"
            cp "$TARGET_DIR/lambda/$b/bootstrap" "$OUT/$a/$b/bootstrap"
        done
    fi
done

log "building the harness"
(cd "$ROOT" && cargo build --quiet -p coldstart --bin coldstart)
harness="$TARGET_DIR/debug/coldstart"

# The first request each binary gets: one that needs AWS (the token's
# secret, the directory table), so it builds the SDK clients and the TLS
# configuration that init leaves to it.
event_for() {
    case "$1" in
        scim-users) echo users-get.json ;;
        scim-groups) echo groups-patch-add-members.json ;;
        sync) echo sync-schedule.json ;;
        portal) echo portal-link.json ;;
        coldstart-hello) echo sync-schedule.json ;;
    esac
}

{
    echo "# $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $(uname -m), runs=$runs"
    for a in "${arches[@]}"; do
        args=()
        for b in "${binaries[@]}"; do
            f="$OUT/$a/$b/bootstrap"
            [[ -f "$f" ]] || { log "missing $f (drop --no-build)"; exit 1; }
            args+=("$b=$f")
            e=$(event_for "$b")
            [[ -z "$e" ]] || args=(--event "$b=$ROOT/events/$e" "${args[@]}")
        done
        if [[ "$a" == arm64 ]]; then
            echo "## arm64 (aarch64, neoverse-n1 code) under $QEMU"
            "$harness" --runs "$runs" --runner "$QEMU -L $QEMU_LD" "${args[@]}"
        else
            echo "## x86-64, native"
            "$harness" --runs "$runs" "${args[@]}"
        fi
        echo
        echo "package (zip of bootstrap, deflate):"
        for b in "${binaries[@]}"; do
            python3 - "$b" "$OUT/$a/$b/bootstrap" <<'PY'
import io, os, sys, zipfile
name, path = sys.argv[1:3]
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(path, "bootstrap")
print(f"  {name:<18} bootstrap {os.path.getsize(path) / 1048576:6.2f} MiB   zip {len(buf.getvalue()) / 1048576:6.2f} MiB")
PY
        done
        echo
    done
} | tee "$OUT/results.txt"
