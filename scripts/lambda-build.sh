#!/usr/bin/env bash
# Build the Lambda packages: one `bootstrap` per function binary of
# infra/template.yaml, cross-compiled for arm64 (Graviton) with cargo-lambda,
# in release mode (the workspace's [profile.release]).
#
#   scripts/lambda-build.sh [--x86-64] [BINARY...]
#
# Default: every `Binary:` of the template's functions. Output:
#   target/lambda/<binary>/bootstrap        (what `make deploy` uploads)
# and a size table. --x86-64 builds for x86_64 instead (for local timing
# without emulation; not what is deployed).
#
# Tools: cargo-lambda and zig (PyPI `cargo-lambda`, `ziglang`) from
# requirements-deploy.txt in ./.venv-deploy, created on first use; the Rust
# target aarch64-unknown-linux-gnu is added with rustup if missing. A clean
# build takes about 6-10 minutes on 2 cores (fat LTO, one codegen unit).
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV=${SCIMSYNC_DEPLOY_VENV:-$ROOT/.venv-deploy}
TEMPLATE="$ROOT/infra/template.yaml"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"

log() { printf 'lambda-build: %s\n' "$*" >&2; }

arch=arm64
binaries=()
for arg in "$@"; do
    case "$arg" in
        --x86-64) arch=x86-64 ;;
        --arm64) arch=arm64 ;;
        -h | --help) sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2; exit 0 ;;
        -*) log "unknown option $arg"; exit 2 ;;
        *) binaries+=("$arg") ;;
    esac
done
if ((${#binaries[@]} == 0)); then
    # The template's `BuildProperties: Binary: <name>` lines.
    mapfile -t binaries < <(sed -n 's/^[[:space:]]*Binary:[[:space:]]*\([A-Za-z0-9_-]*\).*/\1/p' "$TEMPLATE")
    ((${#binaries[@]})) || { log "no Binary: in $TEMPLATE"; exit 1; }
fi

"$ROOT/scripts/pyvenv.sh" "$VENV" "$ROOT/requirements-deploy.txt"

if [[ "$arch" == arm64 ]]; then
    triple=aarch64-unknown-linux-gnu
else
    triple=x86_64-unknown-linux-gnu
fi
if ! rustup target list --installed | grep -qx "$triple"; then
    log "adding the Rust target $triple"
    rustup target add "$triple"
fi

# cargo-lambda finds zig through the venv's python3 (ziglang), so the venv
# goes first on PATH.
export PATH="$VENV/bin:$PATH"
# Position-dependent executables: a PIE's ~27,000 relative relocations are
# applied by the dynamic loader at every start, copying each page of
# .data.rel.ro they touch (0.5-1 ms of a 4 ms cold start; BENCHMARKS.md).
# The executable loses ASLR of its own image (stack, heap and libraries keep
# theirs), as Go's Lambda binaries always have. LAMBDA_PIE=1 builds PIEs. Set here,
# not in .cargo/config.toml: host builds (proc macros) need PIC, and
# cargo-lambda passes --target, so RUSTFLAGS reach the target crates only.
if [[ "${LAMBDA_PIE:-0}" != 1 ]]; then
    export RUSTFLAGS="${RUSTFLAGS:-} -C relocation-model=static"
fi
if [[ "$arch" == arm64 && "${RUSTFLAGS:-}" != *target-cpu* ]]; then
    # Graviton2 (Neoverse N1) and later: every arm64 Lambda.
    export RUSTFLAGS="${RUSTFLAGS:-} -C target-cpu=neoverse-n1"
fi
bin_args=()
for b in "${binaries[@]}"; do bin_args+=(--bin "$b"); done
log "cargo lambda build --release --$arch ${bin_args[*]}"
start=$SECONDS
(cd "$ROOT" && cargo lambda build --release "--$arch" "${bin_args[@]}")
log "built in $((SECONDS - start)) s"

printf '%-18s %12s %12s\n' binary "bootstrap KiB" "zipped KiB"
for b in "${binaries[@]}"; do
    f="$TARGET_DIR/lambda/$b/bootstrap"
    [[ -f "$f" ]] || { log "missing $f"; exit 1; }
    # The deployment package is a zip of the directory (deflate, as sam deploy makes it).
    zipped=$("$VENV/bin/python" - "$f" <<'PY'
import io, sys, zipfile
buf = io.BytesIO()
with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
    z.write(sys.argv[1], "bootstrap")
print(len(buf.getvalue()) // 1024)
PY
)
    printf '%-18s %12s %12s\n' "$b" "$(($(stat -c %s "$f") / 1024))" "$zipped"
done
