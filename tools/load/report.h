// What hoot-load prints: the progress line (a second at a time, for people watching), the
// final table (for people), one JSON object (for machines) and the percentile plot (SVG).
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <string>

#include "tools/load/driver.h"

namespace hoot::load {

// One second of a run, as the driver saw it.
struct ProgressSnapshot {
  std::string workload;
  std::string phase;  // "warm-up", "measure", "drain", "fill", "replay".
  double elapsed_seconds = 0;
  double sent_per_second = 0;
  double acked_per_second = 0;
  double delivered_per_second = 0;
  // The phase's latencies so far; nullopt where there are none to speak of (replay).
  std::optional<uint64_t> ack_p99_ns;
  std::optional<uint64_t> e2e_p99_ns;
  uint64_t errors = 0;
  double cpu_share = 0;         // Of one core, over the second.
  int64_t schedule_lag_ns = 0;  // The most a due send waited in the second.
  std::string note;             // Phase-specific, e.g. "412000 of 1000000 acknowledged".
};

// A send schedule lagging more than this, or a generator thread busy this share of the time,
// makes the line say GENERATOR BEHIND.
inline constexpr int64_t kGeneratorBehindLagNs = 10'000'000;
inline constexpr double kGeneratorSaturatedShare = 0.95;

// The generator's thread wanted a whole core: busy, or ready and waiting for a CPU, for
// kGeneratorSaturatedShare of the measurement.
inline bool GeneratorSaturated(const GeneratorStats& generator) {
  return generator.cpu_share + std::max(0.0, generator.wait_share) >= kGeneratorSaturatedShare;
}

std::string FormatProgressLine(const ProgressSnapshot& snapshot);

// The final table, several lines, each ending in '\n'.
std::string FormatReport(const RunResult& result);

// The same as one JSON object (one line, '\n'-terminated); latencies in ns, 64-bit integers
// exact.
std::string FormatReportJson(const RunResult& result);

// The ack and end-to-end percentile curves, with the disk floor's when it was measured.
std::string FormatPlot(const RunResult& result);

}  // namespace hoot::load
