#!/usr/bin/env bash
# Runs every test of the workspace (unit, sqllogictest, end-to-end) on a
# fresh machine: sets up an S3 emulator (moto_server in a venv) for the
# s3_storage e2e test, builds the binaries, runs `cargo test --workspace`,
# then the tracker's browser tests in headless Chromium (tests/browser/run.sh).
#
# Environment:
#   CARGO_TARGET_DIR   default $HOME/.cache/footfall/target
#   FOOTFALL_VENV      default $HOME/.cache/footfall/venv (moto is installed there once)
#   extra arguments are passed to `cargo test` (e.g. `-- --test-threads 1`)
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall/target}"
venv="${FOOTFALL_VENV:-$HOME/.cache/footfall/venv}"

# --- S3 emulator -----------------------------------------------------------
if [ ! -x "$venv/bin/moto_server" ]; then
    echo "run.sh: installing moto[server] into $venv"
    if [ ! -x "$venv/bin/python" ]; then
        python3 -m venv "$venv"
    fi
    "$venv/bin/python" -m pip install --quiet 'moto[server]'
fi

port="$("$venv/bin/python" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
moto_log="$(mktemp -t footfall-moto.XXXXXX.log)"
"$venv/bin/moto_server" -H 127.0.0.1 -p "$port" >"$moto_log" 2>&1 &
moto_pid=$!
cleanup() {
    kill "$moto_pid" 2>/dev/null || true
    wait "$moto_pid" 2>/dev/null || true
    rm -f "$moto_log"
}
trap cleanup EXIT

endpoint="http://127.0.0.1:$port"
ready=0
for _ in $(seq 1 150); do
    if ! kill -0 "$moto_pid" 2>/dev/null; then
        echo "run.sh: moto_server exited early:" >&2
        cat "$moto_log" >&2
        exit 1
    fi
    if "$venv/bin/python" -c "import urllib.request, sys; urllib.request.urlopen('$endpoint/', timeout=1)" 2>/dev/null; then
        ready=1
        break
    fi
    sleep 0.2
done
if [ "$ready" != 1 ]; then
    echo "run.sh: moto_server did not answer on $endpoint within 30 s:" >&2
    cat "$moto_log" >&2
    exit 1
fi
echo "run.sh: S3 emulator (moto_server) at $endpoint"
export FOOTFALL_TEST_S3_ENDPOINT="$endpoint"

# --- build and test --------------------------------------------------------
# `--tests` too: it selects the same feature set as `cargo test` (dev-dependency
# features included), so the binary is not built twice with different features.
cargo build --workspace --bins --tests
export FOOTFALL_BIN="${FOOTFALL_BIN:-$CARGO_TARGET_DIR/debug/footfall}"

status=0
cargo test --workspace "$@" || status=$?
bash tests/browser/run.sh || status=$?
exit "$status"
