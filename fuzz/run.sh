#!/usr/bin/env bash
# Runs every fuzz target in BUILD_DIR for SECONDS each, starting from its checked-in seed
# corpus (read-only here: new inputs go to a scratch corpus under the build directory), and
# prints the execution count of each. Exits non-zero on the first crash, leak or timeout.
# Usage: fuzz/run.sh BUILD_DIR SECONDS
set -euo pipefail
build_dir=${1:?usage: fuzz/run.sh BUILD_DIR SECONDS}
seconds=${2:?usage: fuzz/run.sh BUILD_DIR SECONDS}
source_dir=$(cd "$(dirname "$0")" && pwd)
status=0
summary=()
# FUZZ_SKIP: targets to leave out (space-separated names).
skip=" ${FUZZ_SKIP:-} "
for target in "$build_dir"/fuzz/*_fuzz; do
  name=$(basename "$target")
  if [[ $skip == *" $name "* ]]; then
    echo "fuzz: $name skipped (FUZZ_SKIP)"
    continue
  fi
  seeds="$source_dir/corpus/${name%_fuzz}"
  scratch="$build_dir/fuzz-scratch/$name"
  mkdir -p "$scratch"
  dict="$source_dir/$name.dict"
  [[ -f $dict ]] || dict="$source_dir/${name%%_*}.dict"
  args=(-max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1
        -artifact_prefix="$build_dir/fuzz-scratch/$name-")
  [[ -f $dict ]] && args+=(-dict="$dict")
  # Extra libFuzzer flags of a target, one per line, in NAME.flags.
  flags="$source_dir/$name.flags"
  [[ -f $flags ]] && mapfile -t extra <"$flags" && args+=("${extra[@]}")
  log="$build_dir/fuzz-scratch/$name.log"
  echo "fuzz: $name for ${seconds}s (seeds: corpus/${name%_fuzz})"
  if ! "$target" "${args[@]}" "$scratch" "$seeds" >"$log" 2>&1; then
    tail -50 "$log"
    echo "fuzz: $name FAILED; the reproducer is in $build_dir/fuzz-scratch/"
    status=1
  fi
  runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo '?')
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  summary+=("$(printf '%-28s %12s executions  %s' "$name" "$runs" "$cov")")
done
echo "fuzz summary:"
printf '  %s\n' "${summary[@]}"
exit $status
