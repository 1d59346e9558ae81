#!/usr/bin/env bash
# The long soak (make soak): hootd on a fresh data directory under W1 (hoot-load) for
# SOAK_MINUTES (default 60), its resident set and open descriptors sampled every
# SOAK_SAMPLE_SECONDS (default 60). Passes when hoot-load reports no correctness error and
# neither figure drifts more than SOAK_DRIFT_PERCENT (default 5): the peak of the last
# SOAK_WINDOW_MINUTES (default 10) against the peak of the first window once
# SOAK_WARM_MINUTES (default 5) have passed. Peaks of windows, not single samples, because
# hootd's descriptors rise and fall with each segment cycle (a channel's next segment file is
# opened once its active one is half full, and the sealed one closed after the roll): a
# bounded cycle, not a leak. Segments are 4 MiB (--segment-mib 4): at W1's rate a channel
# fills one in about 15 minutes, with its next file open for the second half, so every window
# of more than 7.5 minutes holds the cycle's peak (and the soak crosses many rolls). Stops
# everything it started.
set -euo pipefail
cd "$(dirname "$0")/.."
minutes=${SOAK_MINUTES:-60}
sample_seconds=${SOAK_SAMPLE_SECONDS:-60}
warm_minutes=${SOAK_WARM_MINUTES:-5}
drift_percent=${SOAK_DRIFT_PERCENT:-5}
window_minutes=${SOAK_WINDOW_MINUTES:-10}
if (( warm_minutes * 2 > minutes )); then warm_minutes=$(( minutes / 2 )); fi
if (( warm_minutes + 2 * window_minutes > minutes )); then
  window_minutes=$(( (minutes - warm_minutes) / 2 ))
fi
(( window_minutes >= 1 )) || { echo "soak: SOAK_MINUTES=$minutes leaves no window after the warm-up"; exit 1; }
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

"$hootd" --listen 127.0.0.1:0 --data-dir "$work/data" --send-rate 0 \
  --segment-mib 4 >"$work/hootd.log" 2>&1 &
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
# Drift: the peak of the last window against the peak of the first window after the warm-up.
elapsed_end=$(( $(date +%s) - start ))
first_from=$(( warm_minutes * 60 )); first_to=$(( first_from + window_minutes * 60 ))
last_from=$(( elapsed_end - window_minutes * 60 ))
peak() {  # peak FIELD(2 rss, 3 fds) FROM TO
  local field=$1 from=$2 to=$3 best=0 sample seconds rss fds value
  for sample in "${samples[@]}"; do
    read -r seconds rss fds <<<"$sample"
    (( seconds < from || seconds >= to )) && continue
    value=$rss; [[ $field == 3 ]] && value=$fds
    (( value > best )) && best=$value
  done
  echo "$best"
}
first_rss=$(peak 2 "$first_from" "$first_to"); last_rss=$(peak 2 "$last_from" $(( elapsed_end + 1 )))
first_fds=$(peak 3 "$first_from" "$first_to"); last_fds=$(peak 3 "$last_from" $(( elapsed_end + 1 )))
if (( first_rss == 0 || last_rss == 0 )); then
  echo "soak: no sample in a window (SOAK_MINUTES too short for the warm-up and two windows)"
  exit 1
fi
rss_drift=$(awk -v a="$first_rss" -v b="$last_rss" 'BEGIN {printf "%.2f", (b - a) * 100 / a}')
fds_drift=$(awk -v a="$first_fds" -v b="$last_fds" 'BEGIN {printf "%.2f", (b - a) * 100 / a}')
echo "soak: peaks of minutes ${warm_minutes}-$(( warm_minutes + window_minutes )) and of the last" \
     "${window_minutes}: resident set ${first_rss} -> ${last_rss} KiB (drift ${rss_drift}%);" \
     "descriptors ${first_fds} -> ${last_fds} (drift ${fds_drift}%); bound ${drift_percent}%"
for drift in "$rss_drift" "$fds_drift"; do
  if awk -v d="$drift" -v limit="$drift_percent" 'BEGIN {exit !(d > limit)}'; then verdict=1; fi
done
(( verdict == 0 )) && echo "soak: passed" || echo "soak: FAILED"
exit "$verdict"
