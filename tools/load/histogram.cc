#include "tools/load/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

#include "base/check.h"

namespace hoot::load {
namespace {

// Values below 2,048 get a bucket each. Above, each power of two [2^k, 2^(k+1)) is cut into
// 1,024 steps of 2^(k-10): under 1/1024 of any value in it, finer than the 1/1000 that three
// significant digits need.
constexpr unsigned kSubBucketBits = 11;
constexpr uint64_t kSubBucketCount = uint64_t{1} << kSubBucketBits;
constexpr unsigned kHalfBits = kSubBucketBits - 1;
constexpr uint64_t kHalfCount = uint64_t{1} << kHalfBits;

size_t IndexOf(uint64_t value) {
  const unsigned bucket = std::bit_width(value | (kSubBucketCount - 1)) - kSubBucketBits;
  return (size_t{bucket} << kHalfBits) + (value >> bucket);
}

uint64_t HighestEquivalent(size_t index) {
  if (index < kSubBucketCount) return index;
  const unsigned bucket = static_cast<unsigned>(index >> kHalfBits) - 1;
  const uint64_t sub_bucket = (index & (kHalfCount - 1)) + kHalfCount;
  return ((sub_bucket + 1) << bucket) - 1;
}

// HdrHistogram's percentile ticks: five levels per halving of the distance to 100%.
constexpr double kTicksPerHalfDistance = 5;
constexpr double kLastSeriesLevel = 99.9999;

}  // namespace

LatencyHistogram::LatencyHistogram() : counts_(IndexOf(kHighestTrackable) + 1, 0) {}

void LatencyHistogram::RecordN(uint64_t value_ns, uint64_t count) {
  if (count == 0) return;
  if (value_ns > kHighestTrackable) {
    value_ns = kHighestTrackable;
    clamped_count_ += count;
  }
  counts_[IndexOf(value_ns)] += count;
  if (count_ == 0 || value_ns < min_) min_ = value_ns;
  if (value_ns > max_) max_ = value_ns;
  count_ += count;
  sum_ += Sum{value_ns} * count;
}

void LatencyHistogram::Merge(const LatencyHistogram& other) {
  if (other.count_ == 0) return;
  for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
  min_ = count_ == 0 ? other.min_ : std::min(min_, other.min_);
  max_ = std::max(max_, other.max_);
  count_ += other.count_;
  clamped_count_ += other.clamped_count_;
  sum_ += other.sum_;
}

void LatencyHistogram::Reset() {
  std::fill(counts_.begin(), counts_.end(), 0);
  count_ = clamped_count_ = min_ = max_ = 0;
  sum_ = 0;
}

double LatencyHistogram::mean() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_) / static_cast<double>(count_);
}

uint64_t LatencyHistogram::RankOf(double percentile) const {
  const double exact = std::clamp(percentile, 0.0, 100.0) * static_cast<double>(count_) / 100.0;
  // 99.9% of 1,000,000 must be rank 999,000, not 999,001 because 99.9 is not exact in binary.
  const double nearest = std::round(exact);
  const double rank =
      std::abs(exact - nearest) <= 1e-9 * std::max(1.0, exact) ? nearest : std::ceil(exact);
  return std::clamp(static_cast<uint64_t>(rank), uint64_t{1}, count_);
}

std::vector<uint64_t> LatencyHistogram::ValuesAtRanks(
    const std::vector<uint64_t>& ascending_ranks) const {
  std::vector<uint64_t> values;
  values.reserve(ascending_ranks.size());
  uint64_t cumulative = 0;
  size_t next_index = 0;
  for (uint64_t rank : ascending_ranks) {
    HOOT_CHECK(rank >= 1 && rank <= count_);
    while (cumulative < rank) cumulative += counts_[next_index++];
    values.push_back(std::min(HighestEquivalent(next_index - 1), max_));
  }
  return values;
}

uint64_t LatencyHistogram::ValueAtPercentile(double percentile) const {
  if (count_ == 0) return 0;
  if (percentile <= 0) return min_;
  if (percentile >= 100) return max_;
  return ValuesAtRanks({RankOf(percentile)})[0];
}

std::vector<std::pair<double, uint64_t>> LatencyHistogram::PercentileSeries() const {
  if (count_ == 0) return {};
  std::vector<double> levels;
  std::vector<uint64_t> ranks;
  // The steps are 20 / 2^k, exact in binary, so each halving boundary is met exactly.
  for (double level = 0;;) {
    levels.push_back(level);
    ranks.push_back(RankOf(level));
    if (ranks.back() >= count_ || level >= kLastSeriesLevel) break;
    const double halvings = std::floor(std::log2(100.0 / (100.0 - level)));
    level += 100.0 / (kTicksPerHalfDistance * std::exp2(halvings + 1));
  }
  const std::vector<uint64_t> values = ValuesAtRanks(ranks);
  std::vector<std::pair<double, uint64_t>> series;
  series.reserve(levels.size() + 1);
  for (size_t i = 0; i < levels.size(); ++i) series.emplace_back(levels[i], values[i]);
  series.front().second = min_;  // as ValueAtPercentile(0)
  series.emplace_back(100.0, max_);
  return series;
}

}  // namespace hoot::load
