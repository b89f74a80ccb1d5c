#!/usr/bin/env bash
# Run a command with the local AWS emulator up, and stop the emulator when the
# command ends, fails, or this script gets INT/TERM/HUP (Ctrl-C).
#
#   scripts/with-emulator.sh [--port P] [--] CMD [ARGS...]
#
# --port P   emulator port; 0 (the default) picks a free one, so a test run never
#            collides with a running `make run` on 4566.
# The command sees:
#   SCIMSYNC_EMULATOR_URL  http://127.0.0.1:<port>
#   EMULATOR_PORT          <port>
# The exit status is the command's. If this script is killed outright, the
# emulator's watchdog (--watch-parent) stops it within about a second.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
EMULATOR="$ROOT/scripts/emulator.sh"

port=0
while (($#)); do
    case "$1" in
        --port) port=${2:?--port needs a value}; shift 2 ;;
        --) shift; break ;;
        -*) echo "with-emulator: unknown option '$1'" >&2; exit 2 ;;
        *) break ;;
    esac
done
(($#)) || { echo "usage: $0 [--port P] [--] CMD [ARGS...]" >&2; exit 2; }

mkdir -p "$TARGET_DIR"
pidfile="$TARGET_DIR/emulator-session-$$.pid"
child=""
signals=0

# shellcheck disable=SC2329 # invoked by trap
cleanup() {
    local rc=$?
    trap - EXIT INT TERM HUP
    if [[ -n "$child" ]] && kill -0 "$child" 2>/dev/null; then
        kill -TERM "$child" 2>/dev/null || true
        wait "$child" 2>/dev/null || true
    fi
    "$EMULATOR" stop --pidfile "$pidfile" || true
    exit "$rc"
}

# The command runs in our process group, so a terminal Ctrl-C reaches it
# directly: give it a moment to exit on its own before forwarding anything.
# A second signal kills it.
# shellcheck disable=SC2329 # invoked by trap
on_signal() {
    local sig=$1 i
    signals=$((signals + 1))
    [[ -n "$child" ]] || exit $((128 + $(kill -l "$sig")))
    if ((signals > 1)); then
        kill -KILL "$child" 2>/dev/null || true
        return
    fi
    if [[ "$sig" == INT ]]; then
        for ((i = 0; i < 30; i++)); do
            kill -0 "$child" 2>/dev/null || return 0
            sleep 0.1
        done
    fi
    kill -"$sig" "$child" 2>/dev/null || true
}

trap cleanup EXIT
trap 'on_signal INT' INT
trap 'on_signal TERM' TERM
trap 'on_signal HUP' HUP

url=$("$EMULATOR" start --port "$port" --pidfile "$pidfile" --watch-parent "$$")
SCIMSYNC_EMULATOR_URL=$url
EMULATOR_PORT=${url##*:}
export SCIMSYNC_EMULATOR_URL EMULATOR_PORT
echo "with-emulator: SCIMSYNC_EMULATOR_URL=$url" >&2

# Run the command in the background so the traps fire while it runs (bash
# defers traps while a foreground child runs), but undo what bash does to
# background jobs without job control: restore SIGINT/SIGQUIT and stdin.
exec 3<&0
(
    trap - INT QUIT
    exec "$@"
) 0<&3 3<&- &
child=$!

rc=0
while :; do
    rc=0
    wait "$child" || rc=$?
    # wait returns early (>128) when a trapped signal arrives; keep waiting
    # until the command itself has exited.
    kill -0 "$child" 2>/dev/null || break
done
child=""
exit "$rc"
