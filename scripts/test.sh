#!/usr/bin/env bash
# Everything `make test` runs, in order: the GoogleTest suites under ctest in the release
# build (g++), again under ASan+UBSan (clang), and the suites labelled "tsan" (the cross-core
# runtime, and the cluster's control plane with its threads) under ThreadSanitizer; every
# fuzz target for FUZZ_SECONDS from its seed corpus; every benchmark once in smoke mode (it
# must run; speed is not judged here).
# Ends with one line "make test: N passed, N failed" counting the test cases of all runs.
set -uo pipefail
cd "$(dirname "$0")/.."
fuzz_seconds=${FUZZ_SECONDS:-30}
jobs=${JOBS:-$(nproc)}
passed=0
failed=0
log_dir=build/test-logs
mkdir -p "$log_dir"

step() { echo; echo "=== $* ==="; }

# Configures and builds a preset; a build failure stops everything.
build_preset() {
  cmake --preset "$1" >"$log_dir/configure-$1.log" 2>&1 || { cat "$log_dir/configure-$1.log"; exit 1; }
  cmake --build --preset "$1" -j "$jobs" || exit 1
}

run_ctest() {
  local preset=$1
  shift
  local log="$log_dir/ctest-$preset.log"
  ctest --preset "$preset" -j "$jobs" --timeout 1200 "$@" 2>&1 | tee "$log"
  local line
  line=$(grep -E '[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" | tail -1)
  if [[ -z $line ]]; then
    echo "make test: ctest ($preset) printed no summary"
    failed=$((failed + 1))
    return
  fi
  local total bad
  total=$(sed -E 's/.*out of ([0-9]+).*/\1/' <<<"$line")
  bad=$(sed -E 's/.*, ([0-9]+) tests? failed.*/\1/' <<<"$line")
  passed=$((passed + total - bad))
  failed=$((failed + bad))
}

step "release build (g++)"
build_preset release
step "release tests"
run_ctest release

step "ASan+UBSan build (clang)"
build_preset asan
step "ASan+UBSan tests"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 run_ctest asan

step "ThreadSanitizer build of the tsan-labelled suites (clang)"
cmake --preset tsan >"$log_dir/configure-tsan.log" 2>&1 || { cat "$log_dir/configure-tsan.log"; exit 1; }
cmake --build --preset tsan -j "$jobs" --target core_test cluster_test || exit 1
step "ThreadSanitizer tests"
TSAN_OPTIONS=halt_on_error=1 run_ctest tsan -L tsan

step "fuzz build (clang, libFuzzer+ASan+UBSan)"
build_preset fuzz
step "fuzz: every target for ${fuzz_seconds}s"
fuzz/run.sh build/fuzz "$fuzz_seconds" || failed=$((failed + 1))

step "benchmarks (smoke mode)"
for bench in build/release/bench/*_bench; do
  echo "--- $(basename "$bench")"
  "$bench" --benchmark_min_time=0.01 --benchmark_color=false || failed=$((failed + 1))
done
step "end to end (quick): hootd, a cluster of two gateways and two owners, and W1..W4 through hoot-load"
build/release/bench/e2e --quick --cluster || failed=$((failed + 1))

echo
echo "make test: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
