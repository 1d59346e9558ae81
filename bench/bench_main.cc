// The main of every bench program: runs the registered benchmarks, then prints the program's
// ratios (ProgramRatios) from the same run.
#include <benchmark/benchmark.h>

#include "bench/bench_report.h"

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  hoot::bench::RatioReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintRatios(hoot::bench::ProgramRatios());
  benchmark::Shutdown();
  return 0;
}
