#!/usr/bin/env bash
# Browser tests of the tracker: installs the pinned node dependencies (tracker/ and
# tests/browser/, `npm ci`), checks that tracker/dist/ is a fresh reproducible build within its
# size budget (prints every file's size), then runs `node --test` over tests/browser/ with
# headless Chromium (Debian's /usr/bin/chromium; Playwright's own browsers are never downloaded).
#
# Environment:
#   FOOTFALL_BIN       the server binary (default $CARGO_TARGET_DIR/debug/footfall)
#   CARGO_TARGET_DIR   default $HOME/.cache/footfall/target
#   CHROMIUM_PATH      default /usr/bin/chromium
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/../.."

export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/footfall/target}"
export FOOTFALL_BIN="${FOOTFALL_BIN:-$CARGO_TARGET_DIR/debug/footfall}"
export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1

chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
    echo "tests/browser/run.sh: $chromium not found (apt-get install chromium)" >&2
    exit 1
fi
if [ ! -x "$FOOTFALL_BIN" ]; then
    echo "tests/browser/run.sh: no server binary at $FOOTFALL_BIN (cargo build -p footfall-server)" >&2
    exit 1
fi

(cd tracker && npm ci --no-audit --no-fund --loglevel=error)
(cd tests/browser && npm ci --no-audit --no-fund --loglevel=error)

echo "tests/browser/run.sh: tracker build check"
(cd tracker && npm run --silent check)

echo "tests/browser/run.sh: browser tests ($("$chromium" --version 2>/dev/null | head -1))"
# One test file at a time: each starts its own server and browser, and two cores are shared.
node --test --test-concurrency=1 tests/browser/
