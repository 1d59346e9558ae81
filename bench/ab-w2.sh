#!/bin/bash
# Before/after on W2: hootd built from BASE_REV against the hootd built here, alternating
# round by round on fresh data directories (the same client, the same minutes of noise), the
# current one with --metrics-listen and scraped every second as Prometheus would. Prints each
# round's acked msg/s, the medians and current/base. Used to show what a change (such as the
# metrics, issue 16) costs: `bench/ab-w2.sh e349d84 8`.
#
# Builds BASE_REV's hootd in a git worktree under build/ab-BASE (kept for the next run). Needs
# the current tree built (make build) and curl. Server on CPU 0, generator on CPU 1, one shard.
set -euo pipefail
base_rev=${1:?usage: bench/ab-w2.sh BASE_REV [ROUNDS] [SECONDS]}
rounds=${2:-8}
seconds=${3:-5}
root=$(cd "$(dirname "$0")/.." && pwd)
base=$(git -C "$root" rev-parse --short=12 "$base_rev")
current_hootd=$root/build/release/core/hootd
load=$root/build/release/tools/hoot-load
tree=$root/build/ab-$base
if [ ! -x "$tree/build/release/core/hootd" ]; then
  [ -d "$tree" ] || git -C "$root" worktree add --detach "$tree" "$base" >/dev/null
  (cd "$tree" && cmake --preset release >/dev/null && cmake --build --preset release --target hootd)
fi
base_hootd=$tree/build/release/core/hootd
work=$(mktemp -d)
pid=""
scraper=""
cleanup() {
  [ -n "$scraper" ] && kill "$scraper" 2>/dev/null || true
  [ -n "$pid" ] && kill -TERM "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT

run() {  # run WHICH: one W2 measurement; prints acked msg/s
  local which=$1 data=$work/data-$RANDOM
  local args=(--listen 127.0.0.1:0 --data-dir "$data" --shards 1 --cpus 0 --send-rate 0)
  if [ "$which" = base ]; then
    "$base_hootd" "${args[@]}" >"$work/out" 2>"$work/err" &
  else
    "$current_hootd" "${args[@]}" --metrics-listen 127.0.0.1:0 >"$work/out" 2>"$work/err" &
  fi
  pid=$!
  for _ in $(seq 100); do grep -q "ready on" "$work/out" && break; sleep 0.1; done
  local port metrics
  port=$(sed -n 's/^hootd: ready on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/out")
  [ -n "$port" ] || { echo "ab-w2: $which hootd did not start: $(cat "$work/err")" >&2; exit 1; }
  if [ "$which" = current ]; then
    metrics=$(sed -n 's/.*metrics on 127\.0\.0\.1:\([0-9]*\)).*/\1/p' "$work/out")
    (for _ in $(seq $((seconds + 10))); do
       curl -sf -o /dev/null "http://127.0.0.1:$metrics/metrics" || echo "ab-w2: scrape failed" >&2
       sleep 1
     done) &
    scraper=$!
  fi
  timeout $((seconds + 60)) "$load" W2 --server "127.0.0.1:$port" --data-dir "$data" --no-floors \
    --cpus 1 --warmup 1s --duration "${seconds}s" 2>/dev/null |
    awk '$1 == "acked" && $2 == "msg/s" {print $3}'
  if [ -n "$scraper" ]; then kill "$scraper" 2>/dev/null || true; wait "$scraper" 2>/dev/null || true; fi
  scraper=""
  kill -TERM "$pid"
  wait "$pid" || true
  pid=""
  rm -rf "$data"
}

median() { sort -g | awk '{v[NR] = $1} END {print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2}'; }

echo "W2 acked msg/s: hootd at $base (base) against this tree's (current, /metrics scraped every second); $rounds rounds of ${seconds}s"
: >"$work/base.txt"
: >"$work/current.txt"
for round in $(seq "$rounds"); do
  b=$(run base)
  c=$(run current)
  echo "$b" >>"$work/base.txt"
  echo "$c" >>"$work/current.txt"
  awk -v r="$round" -v b="$b" -v c="$c" \
    'BEGIN {printf "round %2d  base %10.0f  current %10.0f  current/base %.3f\n", r, b, c, c / b}'
done
mb=$(median <"$work/base.txt")
mc=$(median <"$work/current.txt")
awk -v b="$mb" -v c="$mc" \
  'BEGIN {printf "median    base %10.0f  current %10.0f  current/base %.3f\n", b, c, c / b}'
