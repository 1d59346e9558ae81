// Metrics as Prometheus reads them (text exposition format 0.0.4). Each shard keeps its own
// counters and histograms as plain numbers written only by its thread (nothing shared, no
// atomics); a scrape asks every shard, on its own thread, to add what it has to a
// MetricFamilies, gathers those and renders them once.
#pragma once

#include <concepts>
#include <cstdint>
#include <initializer_list>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace hoot::base {

// A distribution with fixed bucket bounds, written by one thread. Values are whole numbers in
// the unit the code measures (nanoseconds, bytes, records); `scale` turns them into the unit
// the metric's name says when rendered (1e-9 for nanoseconds shown as seconds).
class Histogram {
 public:
  // `upper_bounds` ascending; a value lands in the first bucket whose bound is >= it, past
  // the last in +Inf.
  explicit Histogram(std::vector<uint64_t> upper_bounds, double scale = 1.0);

  void Observe(uint64_t value) {
    size_t bucket = 0;
    while (bucket < upper_bounds_.size() && value > upper_bounds_[bucket]) ++bucket;
    ++counts_[bucket];
    sum_ += value;
    ++count_;
  }
  // Adds another histogram with the same bounds (shards' histograms into one).
  void Merge(const Histogram& other);

  const std::vector<uint64_t>& upper_bounds() const { return upper_bounds_; }
  // Per bucket (not cumulative), the last one +Inf.
  const std::vector<uint64_t>& counts() const { return counts_; }
  uint64_t sum() const { return sum_; }
  uint64_t count() const { return count_; }
  double scale() const { return scale_; }

 private:
  std::vector<uint64_t> upper_bounds_;
  std::vector<uint64_t> counts_;
  uint64_t sum_ = 0;
  uint64_t count_ = 0;
  double scale_;
};

// Bounds of 1, 2, 5 times each power of ten from `from` up to `to` (both included).
std::vector<uint64_t> OneTwoFiveBounds(uint64_t from, uint64_t to);

// One label, rendered name="value" with the value escaped.
struct Label {
  std::string_view name;
  std::string_view value;
};

// Metric families in the order first added, each with its samples; what a scrape renders.
class MetricFamilies {
 public:
  enum class Type { kCounter, kGauge, kHistogram };

  void Counter(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
               double value);
  void Gauge(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
             double value);
  // Whole numbers (counts, bytes) are rendered exactly: a double would round them past 2^53.
  template <std::integral T>
  void Counter(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
               T value) {
    AddSample(Type::kCounter, name, help, labels, std::to_string(value));
  }
  template <std::integral T>
  void Gauge(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
             T value) {
    AddSample(Type::kGauge, name, help, labels, std::to_string(value));
  }
  void Histogram(std::string_view name, std::string_view help, std::initializer_list<Label> labels,
                 const base::Histogram& histogram);
  // Appends `other`'s samples to the families of the same name (adding those it lacks).
  void Merge(MetricFamilies&& other);

  // The text exposition format 0.0.4: for each family a HELP and a TYPE line, then its
  // samples; histograms as cumulative _bucket{le=...} lines, _sum and _count.
  std::string Render() const;

  size_t family_count() const { return order_.size(); }

 private:
  struct Family {
    Type type;
    std::string help;
    std::string samples;  // Rendered sample lines.
  };
  Family& FamilyFor(std::string_view name, std::string_view help, Type type);
  void AddSample(Type type, std::string_view name, std::string_view help,
                 std::initializer_list<Label> labels, std::string_view value);

  std::map<std::string, Family, std::less<>> families_;
  std::vector<std::string> order_;
};

// A label value escaped as the format asks (backslash, double quote and line feed).
std::string EscapeLabelValue(std::string_view value);

}  // namespace hoot::base
