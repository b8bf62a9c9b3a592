#!/usr/bin/env bash
# The funnel goal at its own size: 100 million events (≈ 3 million visitors) ingested into one
# Footfall server over HTTP, then the 3-step funnel (benches/compare/queries.py) timed over
# POST /api/v1/sql. The NDJSON (≈ 50 GB at this size) never exists whole: footfall-gen writes it in
# parts and waits for each to be consumed (ingested and deleted) before writing more.
#
#   bash benches/funnel-at-scale.sh                        # 100M events, ≈ 25 minutes on 2 cores
#   bash benches/funnel-at-scale.sh --events 10000000      # a smaller check
#
# Options: --events N (100,000,000) --parts K (20) --seed S (42) --projects P (3) --days D (28)
# --runs R (5 hot runs) --keep (keep the server's data directory).
# Output: benches/results/funnel-<events>.json and docs/benchmarks-funnel.md (regenerated).
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$repo/target}"

events=100000000 parts=20 seed=42 projects=3 days=28 runs=5 keep=0
while [ $# -gt 0 ]; do
  case "$1" in
    --events) events=$2; shift 2 ;;
    --parts) parts=$2; shift 2 ;;
    --seed) seed=$2; shift 2 ;;
    --projects) projects=$2; shift 2 ;;
    --days) days=$2; shift 2 ;;
    --runs) runs=$2; shift 2 ;;
    --keep) keep=1; shift ;;
    *) echo "unknown option $1 (see the top of $0)" >&2; exit 2 ;;
  esac
done

echo "== building (release)" >&2
# The commit the binaries are built from, as the results record it (HEAD may move during a run).
export FOOTFALL_BENCH_COMMIT=${FOOTFALL_BENCH_COMMIT:-$(git describe --always --dirty --abbrev=7 2>/dev/null || echo unknown)}
cargo build --release -q -p footfall-server -p footfall-benches
bin="$CARGO_TARGET_DIR/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/footfall-funnel-XXXXXX")
port=$((20000 + RANDOM % 20000))
token=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n')
server_pid="" gen_pid=""
cleanup() {
  [ -n "$gen_pid" ] && kill "$gen_pid" 2>/dev/null || true
  [ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
  if [ "$keep" = 1 ]; then echo "== kept $work" >&2; else rm -rf "$work"; fi
}
trap cleanup EXIT

mkdir -p "$work/data"
FOOTFALL_ADMIN_TOKEN=$token "$bin/footfall" serve --listen "127.0.0.1:$port" --data-dir "$work/data" \
  >"$work/footfall.log" 2>&1 &
server_pid=$!
for _ in $(seq 100); do
  curl -fsS "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break
  sleep 0.1
done

started=$(date +%s)
echo "== footfall-gen: $events events in $parts parts" >&2
"$bin/footfall-gen" --events "$events" --seed "$seed" --projects "$projects" --days "$days" --parts "$parts" \
  --out "$work/gen.ndjson" 2>"$work/gen.log" &
gen_pid=$!
: >"$work/ingest.jsonl"
for k in $(seq 0 $((parts - 1))); do
  part="$work/gen.ndjson.part$k"
  while [ ! -e "$part.meta.json" ]; do
    kill -0 "$gen_pid" 2>/dev/null || [ -e "$part.meta.json" ] || { cat "$work/gen.log" >&2; exit 1; }
    sleep 0.5
  done
  "$bin/ingest-bench" --url "http://127.0.0.1:$port" --token "$token" --pid "$server_pid" \
    --data-dir "$work/data" --ndjson "$part" --no-compact --json --progress 0 >>"$work/ingest.jsonl" \
    2>"$work/ingest-$k.log" || { cat "$work/ingest-$k.log" >&2; exit 1; }
  rm -f "$part" "$part.meta.json"
  echo "   part $k ingested ($(( $(date +%s) - started )) s)" >&2
done
wait "$gen_pid"
gen_pid=""
ingest_secs=$(( $(date +%s) - started ))

python3 benches/compare/funnel_at_scale.py --url "http://127.0.0.1:$port" --token "$token" \
  --manifest "$work/gen.ndjson.meta.json" --ingest "$work/ingest.jsonl" --ingest-seconds "$ingest_secs" \
  --data-dir "$work/data" --runs "$runs" --pid "$server_pid" \
  --json "benches/results/funnel-$events.json" --md docs/benchmarks-funnel.md
