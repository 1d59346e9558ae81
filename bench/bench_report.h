// The ratios a Google Benchmark program prints after its runs, between benchmarks of the same
// run (for example decode throughput against a memcpy of the same bytes), since the machines
// are shared and noisy and only figures measured side by side are comparable. With
// --benchmark_repetitions the ratios use the medians.
#pragma once

#include <benchmark/benchmark.h>

#include <cstdio>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace hoot::bench {

struct Ratio {
  std::string label;
  std::string numerator;    // Benchmark name, e.g. "BM_Decode/128".
  std::string denominator;  // Benchmark name, e.g. "BM_Memcpy/128"; empty: use `constant`.
  std::string metric;       // "bytes_per_second", "items_per_second" or "real_time".
  double target;            // The ratio the component is meant to reach; 0: none, shown only.
  bool higher_is_better;    // For times, lower is better.
  double constant = 0;      // The denominator when `denominator` is empty (an absolute goal).
};

class RatioReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.error_occurred) continue;
      bool median = run.run_type == Run::RT_Aggregate && run.aggregate_name == "median";
      bool single = run.run_type == Run::RT_Iteration;
      if (!median && !single) continue;
      std::string name = run.run_name.str();
      if (single && medians_.count(name)) continue;
      std::map<std::string, double>& metrics = metrics_[name];
      for (const auto& [counter, value] : run.counters) metrics[counter] = value;
      metrics["real_time"] = run.GetAdjustedRealTime();
      if (median) medians_.insert(name);
    }
  }

  // Prints one line per ratio; returns how many could be computed.
  int PrintRatios(const std::vector<Ratio>& ratios) const {
    int printed = 0;
    std::printf("\n%-40s %12s %10s  %s\n", "ratio", "measured", "target", "verdict");
    for (const Ratio& ratio : ratios) {
      double numerator = 0;
      double denominator = 0;
      bool have_denominator = ratio.denominator.empty()
                                  ? (denominator = ratio.constant) != 0
                                  : Lookup(ratio.denominator, ratio.metric, &denominator);
      if (!Lookup(ratio.numerator, ratio.metric, &numerator) || !have_denominator ||
          denominator == 0) {
        std::printf("%-40s %12s %10.2f  not measured in this run\n", ratio.label.c_str(), "-",
                    ratio.target);
        continue;
      }
      double value = numerator / denominator;
      if (ratio.target <= 0) {
        std::printf("%-40s %12.3f %10s  (no target)\n", ratio.label.c_str(), value, "-");
        ++printed;
        continue;
      }
      bool met = ratio.higher_is_better ? value >= ratio.target : value <= ratio.target;
      std::printf("%-40s %12.3f %9s%.2f  %s\n", ratio.label.c_str(), value,
                  ratio.higher_is_better ? ">=" : "<=", ratio.target,
                  met ? "meets target" : "BELOW TARGET");
      ++printed;
    }
    return printed;
  }

 private:
  bool Lookup(const std::string& name, const std::string& metric, double* value) const {
    auto run = metrics_.find(name);
    if (run == metrics_.end()) return false;
    auto found = run->second.find(metric);
    if (found == run->second.end()) return false;
    *value = found->second;
    return true;
  }

  std::map<std::string, std::map<std::string, double>> metrics_;
  std::set<std::string> medians_;
};

// What the program's benchmarks are judged by: each bench program defines this, and the main
// they share (bench_main.cc) prints them after running the benchmarks.
std::vector<Ratio> ProgramRatios();

}  // namespace hoot::bench
