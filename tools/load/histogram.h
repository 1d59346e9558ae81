// Latency histogram for hoot-load: HDR-style log-linear buckets, so recording is a few
// instructions and memory is fixed whatever the run length.
#pragma once

#include <cstddef>
#include <cstdint>
#include <utility>
#include <vector>

namespace hoot::load {

// Values are nanoseconds. Any value reported (percentiles, series) is within 0.1% of a value
// that was recorded: each power-of-two range is split into 1,024 equal steps. Values up to
// kHighestTrackable (about 73 minutes) are kept; larger ones are recorded as
// kHighestTrackable and counted by clamped_count(), so a stall shows up as a huge value rather
// than vanishing. min(), max() and mean() are exact over the (clamped) values.
// Not thread-safe: one per thread, then Merge.
class LatencyHistogram {
 public:
  static constexpr uint64_t kHighestTrackable = (uint64_t{1} << 42) - 1;

  // Allocates every bucket now: Record never allocates.
  LatencyHistogram();

  void Record(uint64_t value_ns) { RecordN(value_ns, 1); }
  void RecordN(uint64_t value_ns, uint64_t count);
  void Merge(const LatencyHistogram& other);
  void Reset();

  uint64_t count() const { return count_; }
  uint64_t clamped_count() const { return clamped_count_; }
  uint64_t min() const { return min_; }  // 0 when empty, as max()
  uint64_t max() const { return max_; }
  double mean() const;

  // percentile in [0, 100]. The highest value equivalent to the one at rank
  // ceil(percentile / 100 * count), at most max(); 0 gives min(), 100 gives max(); 0 when
  // empty.
  uint64_t ValueAtPercentile(double percentile) const;

  // (percentile, value) points for a percentile plot: 0, 10, ..., 50, then five points per
  // halving of the remaining distance to 100 (55, 60, ..., 75, 77.5, ...), while below
  // 99.9999 and until the rank reaches the last recorded value, then (100, max()).
  // Empty when nothing was recorded.
  std::vector<std::pair<double, uint64_t>> PercentileSeries() const;

 private:
  // One pass over the buckets answers every rank (ascending, each in 1..count()).
  std::vector<uint64_t> ValuesAtRanks(const std::vector<uint64_t>& ascending_ranks) const;
  uint64_t RankOf(double percentile) const;

  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t clamped_count_ = 0;
  uint64_t min_ = 0;
  uint64_t max_ = 0;
  __extension__ typedef unsigned __int128 Sum;
  Sum sum_ = 0;  // exact: hours of nanoseconds times billions of samples overflow 64 bits
};

}  // namespace hoot::load
