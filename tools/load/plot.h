// The classic HdrHistogram percentile chart as a standalone SVG file, so a load run's
// latencies can be compared by eye (one line per measured quantity or per run).
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace hoot::load {

struct PlotSeries {
  std::string name;
  // (percentile in [0, 100], nanoseconds), ascending percentiles: as from
  // LatencyHistogram::PercentileSeries().
  std::vector<std::pair<double, uint64_t>> points;
};

struct PlotOptions {
  std::string title = "Latency by percentile";
  int width = 900;   // pixels
  int height = 500;  // pixels
};

// x: percentile on a log scale of 1 / (1 - p), one decade per "9" (ticks "0%", "90%", "99%",
// "99.9%", ...), as far as the data reaches (at least 99.9%, at most 99.9999%); the 100% point
// (the maximum) is drawn at the right edge. y: milliseconds, linear from 0, round ticks.
// Series are drawn in distinct colours, named in a legend; names and title are XML-escaped.
std::string LatencyPercentilePlotSvg(const std::vector<PlotSeries>& series,
                                     const PlotOptions& options);

}  // namespace hoot::load
