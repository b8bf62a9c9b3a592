#!/usr/bin/env bash
# Builds the server and the load generator in release mode, then runs the ingest benchmark with its
# default settings (2,000,000 events, 1000 per request, 8 connections, seed 42) and the beacon
# benchmark (POST /api/event, 64 connections, 20 s). Each starts its own server on a free loopback
# port with a fresh temporary data directory and stops it afterwards.
#
#   benches/run.sh                 # both, human-readable
#   benches/run.sh --json          # extra arguments go to both runs, e.g. --json or --seed 7
#   INGEST_ARGS="--connections 4" BEACON_ARGS="--duration 60" benches/run.sh
#
# Exits non-zero if either run failed or found a count mismatch.
set -euo pipefail

cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}"

echo "== building (release)" >&2
cargo build --release -p footfall-server -p footfall-benches

bench="$CARGO_TARGET_DIR/release/ingest-bench"
footfall="$CARGO_TARGET_DIR/release/footfall"
status=0

echo "== ingest: batches to POST /api/v1/events" >&2
# shellcheck disable=SC2086 # INGEST_ARGS / BEACON_ARGS are meant to split into words.
"$bench" --footfall-bin "$footfall" ${INGEST_ARGS:-} "$@" || status=$?

echo "== beacons: single events to POST /api/event" >&2
# shellcheck disable=SC2086
"$bench" --footfall-bin "$footfall" --beacons ${BEACON_ARGS:-} "$@" || status=$?

exit "$status"
