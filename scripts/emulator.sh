#!/usr/bin/env bash
# Local AWS emulator (moto's server: DynamoDB + Secrets Manager) for scimsync.
#
#   scripts/emulator.sh install
#       Create/refresh the project venv (.venv) from requirements-dev.txt.
#   scripts/emulator.sh start [--port P] [--pidfile F] [--watch-parent PID]
#       Start moto_server on 127.0.0.1:P in the background (P defaults to
#       $EMULATOR_PORT, else 4566; P = 0 picks a free port), wait until it
#       answers, print exactly one line "http://127.0.0.1:P" on stdout.
#       --pidfile F        write moto's pid to F
#       --watch-parent PID also kill moto as soon as process PID is gone
#   scripts/emulator.sh stop --pidfile F
#       Stop the emulator whose pid is in F (and remove F).
#
# Logs go to target/emulator-P.log. Everything else this script says goes to
# stderr, so `url=$(scripts/emulator.sh start ...)` captures only the URL.
# moto needs no credentials; clients still need dummy ones and a region.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
VENV="$ROOT/.venv"
REQUIREMENTS="$ROOT/requirements-dev.txt"
STAMP="$VENV/.scimsync-requirements.stamp"
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
HOST=127.0.0.1
READY_TIMEOUT_S=20

log() { printf 'emulator: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

usage() {
    sed -n '2,17s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
    exit 2
}

# What the venv was built from: the requirements file and the interpreter.
wanted_stamp() {
    {
        # Comments and blank lines do not count as a change.
        sed -e 's/[[:space:]]*#.*$//' -e '/^[[:space:]]*$/d' "$REQUIREMENTS"
        python3 -c 'import sys; print(sys.version)'
    } | sha256sum | cut -d' ' -f1
}

venv_ok() {
    [[ -x "$VENV/bin/python" && -x "$VENV/bin/moto_server" && -f "$STAMP" ]] &&
        [[ "$(cat "$STAMP")" == "$(wanted_stamp)" ]]
}

cmd_install() {
    [[ -f "$REQUIREMENTS" ]] || die "missing $REQUIREMENTS"
    command -v python3 >/dev/null || die "python3 not found on PATH"
    venv_ok && return 0
    mkdir -p "$TARGET_DIR"
    # Serialise concurrent installs (e.g. `make run` and `make test` at once).
    # The lock fd is closed again before anything long-lived is started.
    if command -v flock >/dev/null; then
        (
            flock 9
            build_venv
        ) 9>"$TARGET_DIR/.emulator-install.lock"
    else
        build_venv
    fi
}

build_venv() {
    venv_ok && return 0
    if [[ -d "$VENV" ]]; then
        log "rebuilding $VENV (requirements or python changed, or venv incomplete)"
        python3 -m venv --clear "$VENV"
    else
        log "creating $VENV"
        python3 -m venv "$VENV"
    fi
    log "installing $(grep -v '^[[:space:]]*#' "$REQUIREMENTS" | tr '\n' ' ')(about 40 s)"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
        --no-input -r "$REQUIREMENTS" >&2
    wanted_stamp >"$STAMP"
    log "venv ready"
}

# Is a process alive (and not a zombie)?
alive() {
    local pid=$1 state
    kill -0 "$pid" 2>/dev/null || return 1
    state=$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1) || return 1
    [[ "$state" != Z ]]
}

# Refuse to signal a recycled pid that is no longer moto.
is_moto() {
    tr '\0' ' ' <"/proc/$1/cmdline" 2>/dev/null | grep -q moto_server
}

port_free() {
    "$VENV/bin/python" - "$1" <<'PY'
import socket, sys
s = socket.socket()
# Same option the server sets: only a live listener makes the port "taken".
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
PY
}

free_port() {
    "$VENV/bin/python" -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

answers_http() {
    local code
    code=$(curl -s -o /dev/null -m 2 -w '%{http_code}' "http://$HOST:$1/moto-api/" 2>/dev/null) || true
    [[ -n "$code" && "$code" != 000 ]]
}

stop_pid() {
    local pid=$1 i
    alive "$pid" || return 0
    is_moto "$pid" || { log "pid $pid is not moto_server; not touching it"; return 0; }
    kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 50; i++)); do
        alive "$pid" || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

# Detached loop that stops moto once the watched process is gone. It ignores
# INT/HUP so a Ctrl-C aimed at the harness cannot kill the watchdog first.
spawn_watchdog() {
    local parent=$1 moto=$2
    (
        trap '' INT HUP
        while alive "$parent" && alive "$moto"; do
            sleep 1
        done
        if alive "$moto"; then
            log "watched process $parent is gone: stopping emulator (pid $moto)"
            stop_pid "$moto"
        fi
    ) </dev/null >/dev/null 2>>"$TARGET_DIR/emulator-watchdog.log" &
    disown || true
}

cmd_start() {
    local port="${EMULATOR_PORT:-4566}" pidfile="" parent="" auto=0
    while (($#)); do
        case "$1" in
            --port) port=${2:?--port needs a value}; shift 2 ;;
            --pidfile) pidfile=${2:?--pidfile needs a value}; shift 2 ;;
            --watch-parent) parent=${2:?--watch-parent needs a value}; shift 2 ;;
            -h | --help) usage ;;
            *) die "start: unknown argument '$1'" ;;
        esac
    done
    if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port > 65535)); then
        die "invalid port '$port'"
    fi
    if [[ -n "$parent" ]]; then
        [[ "$parent" =~ ^[0-9]+$ ]] || die "invalid --watch-parent pid '$parent'"
        alive "$parent" || die "--watch-parent: process $parent is not running"
    fi
    command -v curl >/dev/null || die "curl not found on PATH"

    cmd_install
    mkdir -p "$TARGET_DIR"

    ((port == 0)) && auto=1
    local _ pid logfile deadline
    for _ in 1 2 3; do
        ((auto)) && port=$(free_port)
        if ! port_free "$port"; then
            ((auto)) && continue
            die "port $port on $HOST is already in use (an emulator from \`make run\`?). Stop it, or pick another port with --port or EMULATOR_PORT."
        fi
        logfile="$TARGET_DIR/emulator-$port.log"
        # moto_server, but one request at a time: see the script for why.
        "$VENV/bin/python" "$ROOT/scripts/moto_server_serialized.py" -H "$HOST" -p "$port" \
            </dev/null >"$logfile" 2>&1 &
        pid=$!
        deadline=$((SECONDS + READY_TIMEOUT_S))
        while alive "$pid" && ! answers_http "$port"; do
            if ((SECONDS >= deadline)); then
                stop_pid "$pid"
                tail -n 20 "$logfile" >&2 || true
                die "moto_server did not answer on http://$HOST:$port within ${READY_TIMEOUT_S}s (log: $logfile)"
            fi
            sleep 0.2
        done
        if alive "$pid"; then
            [[ -n "$pidfile" ]] && { mkdir -p "$(dirname "$pidfile")"; echo "$pid" >"$pidfile"; }
            [[ -n "$parent" ]] && spawn_watchdog "$parent" "$pid"
            disown "$pid" 2>/dev/null || true
            log "moto_server pid $pid on http://$HOST:$port (log: $logfile)"
            echo "http://$HOST:$port"
            return 0
        fi
        # Died before answering: most likely lost a race for the port.
        if ((auto)) && grep -qi 'address already in use' "$logfile"; then
            continue
        fi
        tail -n 20 "$logfile" >&2 || true
        die "moto_server exited before it was ready (log: $logfile)"
    done
    die "could not find a free port after 3 attempts"
}

cmd_stop() {
    local pidfile=""
    while (($#)); do
        case "$1" in
            --pidfile) pidfile=${2:?--pidfile needs a value}; shift 2 ;;
            -h | --help) usage ;;
            *) die "stop: unknown argument '$1'" ;;
        esac
    done
    [[ -n "$pidfile" ]] || die "stop: --pidfile F is required"
    if [[ ! -f "$pidfile" ]]; then
        log "no pidfile $pidfile: nothing to stop"
        return 0
    fi
    local pid
    pid=$(tr -dc '0-9' <"$pidfile")
    [[ -n "$pid" ]] && stop_pid "$pid"
    rm -f "$pidfile"
    log "stopped${pid:+ (pid $pid)}"
}

(($#)) || usage
sub=$1
shift
case "$sub" in
    install) cmd_install ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    -h | --help | help) usage ;;
    *) log "unknown command '$sub'"; usage ;;
esac
