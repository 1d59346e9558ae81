#!/usr/bin/env bash
# The long soak (make soak): hootd on a fresh data directory under W1 (hoot-load) for
# SOAK_MINUTES (default 60), its resident set and open descriptors sampled every
# SOAK_SAMPLE_SECONDS (default 60). Passes when hoot-load reports no correctness error and
# neither figure grows more than SOAK_DRIFT_PERCENT (default 5) past its value once
# SOAK_WARM_MINUTES (default 5, at most half the run) have passed. Stops everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${SOAK_MINUTES:-60}
sample_seconds=${SOAK_SAMPLE_SECONDS:-60}
warm_minutes=${SOAK_WARM_MINUTES:-5}
drift_percent=${SOAK_DRIFT_PERCENT:-5}
if (( warm_minutes * 2 > minutes )); then warm_minutes=$(( minutes / 2 )); fi
hootd=build/release/core/hootd
load=build/release/tools/hoot-load
work=$(mktemp -d "${TMPDIR:-/tmp}/hoot-soak-XXXXXX")
hootd_pid=""
load_pid=""
cleanup() {
  [[ -n "$load_pid" ]] && kill "$load_pid" 2>/dev/null || true
  if [[ -n "$hootd_pid" ]]; then
    kill -TERM "$hootd_pid" 2>/dev/null || true
    for _ in $(seq 100); do kill -0 "$hootd_pid" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$hootd_pid" 2>/dev/null || true
  fi
  rm -rf "$work"
}
trap cleanup EXIT

"$hootd" --listen 127.0.0.1:0 --data-dir "$work/data" --send-rate 0 >"$work/hootd.log" 2>&1 &
hootd_pid=$!
port=""
for _ in $(seq 300); do
  port=$(sed -n 's/^hootd: ready on 127\.0\.0\.1:\([0-9]*\) .*/\1/p' "$work/hootd.log")
  [[ -n "$port" ]] && break
  sleep 0.1
done
[[ -n "$port" ]] || { echo "soak: hootd did not start:"; cat "$work/hootd.log"; exit 1; }
echo "soak: hootd (pid $hootd_pid) on port $port; W1 for $minutes min, sampled every ${sample_seconds}s"

timeout $(( minutes * 60 + 300 )) "$load" W1 --server "127.0.0.1:$port" --data-dir "$work/data" \
  --duration "${minutes}m" --no-floors --quiet >"$work/load.txt" 2>&1 &
load_pid=$!

samples=()  # "seconds rss_kib fds"
start=$(date +%s)
printf '%8s %12s %6s\n' elapsed rss_kib fds
while kill -0 "$load_pid" 2>/dev/null; do
  sleep "$sample_seconds" &
  wait $! || true
  kill -0 "$load_pid" 2>/dev/null || break
  elapsed=$(( $(date +%s) - start ))
  rss=$(awk '/^VmRSS:/ {print $2}' "/proc/$hootd_pid/status")
  fds=$(ls "/proc/$hootd_pid/fd" | wc -l)
  samples+=("$elapsed $rss $fds")
  printf '%7ss %12s %6s\n' "$elapsed" "$rss" "$fds"
done
load_status=0
wait "$load_pid" || load_status=$?
load_pid=""
cat "$work/load.txt"

verdict=0
if (( load_status != 0 )); then
  echo "soak: hoot-load exited $load_status (1: correctness errors)"
  verdict=1
fi
# Drift: the largest value after the warm-up against the first sample after it.
base_rss=""; base_fds=""; max_rss=0; max_fds=0
for sample in "${samples[@]}"; do
  read -r seconds rss fds <<<"$sample"
  (( seconds < warm_minutes * 60 )) && continue
  if [[ -z "$base_rss" ]]; then base_rss=$rss; base_fds=$fds; fi
  (( rss > max_rss )) && max_rss=$rss
  (( fds > max_fds )) && max_fds=$fds
done
if [[ -z "$base_rss" ]]; then
  echo "soak: no sample after the ${warm_minutes}-minute warm-up (SOAK_MINUTES too short)"
  exit 1
fi
rss_drift=$(awk -v a="$base_rss" -v b="$max_rss" 'BEGIN {printf "%.2f", (b - a) * 100 / a}')
fds_drift=$(awk -v a="$base_fds" -v b="$max_fds" 'BEGIN {printf "%.2f", (b - a) * 100 / a}')
echo "soak: after ${warm_minutes} min: resident set ${base_rss} KiB -> at most ${max_rss} KiB" \
     "(drift ${rss_drift}%); descriptors ${base_fds} -> at most ${max_fds} (drift ${fds_drift}%);" \
     "bound ${drift_percent}%"
for drift in "$rss_drift" "$fds_drift"; do
  if awk -v d="$drift" -v limit="$drift_percent" 'BEGIN {exit !(d > limit)}'; then verdict=1; fi
done
(( verdict == 0 )) && echo "soak: passed" || echo "soak: FAILED"
exit "$verdict"
