#!/usr/bin/env bash
# Footfall side by side with DuckDB, chDB (embedded ClickHouse) and PostgreSQL, on the same machine,
# the same data and in the same run; then regenerates docs/benchmarks.md and its chart.
#
#   bash benches/compare.sh --events 1000000              # ~7 minutes on the 2-core machine, builds warm
#   bash benches/compare.sh --events 100000000 --days 90  # the full size
#   bash benches/compare.sh --events 10000000 --doc benchmarks-10m --beacon-duration 0 --no-micro
#                                                         # docs/benchmarks-10m.md (≈ 15 minutes)
#
# Options: --events N (1,000,000) --seed S (42) --projects P (3) --days D (28) --runs R (5 hot runs
# per query) --beacon-duration SECS (20; 0 skips) --systems LIST --core-types-only (auto: on when
# the server predates the event model) --no-cold --keep (keep the work directory) --no-report
# --no-micro (skip the criterion micro-benchmarks) --doc NAME (write docs/NAME.md and
# docs/NAME-queries.svg; default benchmarks).
#
# What it does: creates a venv with the pinned peers (benches/compare/requirements.txt), installs
# PostgreSQL from Debian's packages if absent, builds footfall and the bench tools in release mode,
# generates the data set once per (events, seed, projects, days) with footfall-gen, runs
# benches/compare/run.py (results: benches/results/compare-<events>.json) and
# benches/compare/report.py (docs/benchmarks.md, docs/benchmarks-queries.svg).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

events=1000000 seed=42 projects=3 days=28 runs=5 beacons=20 systems="" core="auto" keep=0 report=1 cold=1 micro=1
doc=benchmarks
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --projects) projects=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --beacon-duration) beacons=$2; shift 2 ;;
    --systems) systems=$2; shift 2 ;;
    --core-types-only) core=1; shift ;;
    --no-cold) cold=0; shift ;;
    --keep) keep=1; shift ;;
    --no-report) report=0; shift ;;
    --no-micro) micro=0; shift ;;
    --doc) doc=$2; shift 2 ;;
    *) echo "unknown option $1 (see the top of $0)" >&2; exit 2 ;;
  esac
done

venv="${FOOTFALL_BENCH_VENV:-$HOME/.cache/footfall/bench-venv}"
data="${FOOTFALL_BENCH_DATA:-$HOME/.cache/footfall/bench-data}"
mkdir -p "$data"

echo "== venv with the peers: $venv" >&2
[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
"$venv/bin/pip" install -q -r benches/compare/requirements.txt

if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then
  echo "== installing PostgreSQL from Debian's packages" >&2
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
fi

echo "== building (release)" >&2
# The commit the binaries are built from, as the results record it (HEAD may move during a run).
export FOOTFALL_BENCH_COMMIT=${FOOTFALL_BENCH_COMMIT:-$(git describe --always --dirty --abbrev=7 2>/dev/null || echo unknown)}
cargo build --release -p footfall-server -p footfall-benches

if [ "$core" = auto ]; then
  # The event model (spec §1) brings the types beyond pageview/event; older servers reject them.
  if grep -rqs '"vitals"' server/src engine/src; then core=0; else core=1; fi
fi
suffix=""; gen_flags=()
if [ "$core" = 1 ]; then suffix="-core"; gen_flags=(--core-types-only); fi
ndjson="$data/gen-$events-s$seed-p$projects-d$days$suffix.ndjson"
if [ ! -s "$ndjson.meta.json" ]; then
  echo "== generating $ndjson" >&2
  "$CARGO_TARGET_DIR/release/footfall-gen" --events "$events" --seed "$seed" --projects "$projects" \
    --days "$days" "${gen_flags[@]}" --out "$ndjson"
fi

if [ "$micro" = 1 ]; then
  echo "== criterion micro-benchmarks" >&2
  rm -rf "$CARGO_TARGET_DIR/criterion"
  cargo bench -p footfall-benches --bench '*' -- --warm-up-time 1 --measurement-time 3 >&2
fi

work="$data/run-$$"
mkdir -p "$work" benches/results
trap '[ "$keep" = 1 ] || rm -rf "$work"' EXIT
out="benches/results/compare-$events.json"
args=(--ndjson "$ndjson" --footfall-bin "$CARGO_TARGET_DIR/release/footfall"
      --ingest-bench "$CARGO_TARGET_DIR/release/ingest-bench" --work "$work" --out "$out"
      --runs "$runs" --beacon-duration "$beacons")
[ -n "$systems" ] && args+=(--systems "$systems")
[ "$cold" = 0 ] && args+=(--no-cold)
[ "$micro" = 1 ] && args+=(--criterion-dir "$CARGO_TARGET_DIR/criterion")
status=0
"$venv/bin/python" benches/compare/run.py "${args[@]}" || status=$?
if [ "$report" = 1 ] && [ -s "$out" ]; then
  "$venv/bin/python" benches/compare/report.py "$out" --md "docs/$doc.md" --svg "docs/$doc-queries.svg"
fi
exit "$status"
