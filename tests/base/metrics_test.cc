#include "base/metrics.h"

#include <gtest/gtest.h>

#include <string>

namespace hoot::base {
namespace {

TEST(Histogram, EachValueLandsInTheFirstBucketWhoseBoundHoldsIt) {
  Histogram histogram({10, 100, 1000});
  for (uint64_t value : {0, 10, 11, 100, 5000, 7}) histogram.Observe(value);
  EXPECT_EQ(histogram.counts(), (std::vector<uint64_t>{3, 2, 0, 1}));  // Last: +Inf.
  EXPECT_EQ(histogram.count(), 6u);
  EXPECT_EQ(histogram.sum(), 5128u);
  Histogram other({10, 100, 1000});
  other.Observe(500);
  histogram.Merge(other);
  EXPECT_EQ(histogram.counts(), (std::vector<uint64_t>{3, 2, 1, 1}));
  EXPECT_EQ(histogram.count(), 7u);
}

TEST(Histogram, OneTwoFiveBoundsSpanTheirRangeInclusive) {
  EXPECT_EQ(OneTwoFiveBounds(1, 100), (std::vector<uint64_t>{1, 2, 5, 10, 20, 50, 100}));
  EXPECT_EQ(OneTwoFiveBounds(10, 60), (std::vector<uint64_t>{10, 20, 50}));
}

TEST(MetricFamilies, RendersTheTextExpositionFormat) {
  MetricFamilies families;
  families.Counter("hoot_sends_total", "Sends.", {{"shard", "0"}}, 3);
  families.Gauge("hoot_open", "Open now.", {}, 2.5);
  Histogram latency({1000, 2000}, 1e-6);  // Microseconds, shown as seconds.
  latency.Observe(500);
  latency.Observe(1500);
  latency.Observe(9000);
  families.Histogram("hoot_latency_seconds", "Latency.", {{"shard", "0"}}, latency);
  families.Counter("hoot_sends_total", "", {{"shard", "1"}}, 4);  // Joins its family.
  EXPECT_EQ(families.Render(),
            "# HELP hoot_sends_total Sends.\n"
            "# TYPE hoot_sends_total counter\n"
            "hoot_sends_total{shard=\"0\"} 3\n"
            "hoot_sends_total{shard=\"1\"} 4\n"
            "# HELP hoot_open Open now.\n"
            "# TYPE hoot_open gauge\n"
            "hoot_open 2.5\n"
            "# HELP hoot_latency_seconds Latency.\n"
            "# TYPE hoot_latency_seconds histogram\n"
            "hoot_latency_seconds_bucket{shard=\"0\",le=\"0.001\"} 1\n"
            "hoot_latency_seconds_bucket{shard=\"0\",le=\"0.002\"} 2\n"
            "hoot_latency_seconds_bucket{shard=\"0\",le=\"+Inf\"} 3\n"
            "hoot_latency_seconds_sum{shard=\"0\"} 0.011\n"
            "hoot_latency_seconds_count{shard=\"0\"} 3\n");
}

TEST(MetricFamilies, MergeAppendsSamplesToTheFamiliesOfTheSameName) {
  MetricFamilies first;
  first.Counter("a_total", "A.", {{"shard", "0"}}, 1);
  MetricFamilies second;
  second.Counter("b_total", "B.", {{"shard", "1"}}, 2);
  second.Counter("a_total", "A.", {{"shard", "1"}}, 5);
  first.Merge(std::move(second));
  EXPECT_EQ(first.family_count(), 2u);
  EXPECT_EQ(first.Render(),
            "# HELP a_total A.\n# TYPE a_total counter\n"
            "a_total{shard=\"0\"} 1\na_total{shard=\"1\"} 5\n"
            "# HELP b_total B.\n# TYPE b_total counter\nb_total{shard=\"1\"} 2\n");
}

TEST(MetricFamilies, WholeNumbersAreRenderedExactly) {
  MetricFamilies families;
  families.Counter("bytes_total", "B.", {}, uint64_t{18'446'744'073'709'551'615u});
  families.Gauge("depth", "D.", {}, size_t{3});
  families.Gauge("ratio", "R.", {}, 0.25);
  std::string text = families.Render();
  // As a double this would be 1.84467441e+19.
  EXPECT_NE(text.find("bytes_total 18446744073709551615\n"), std::string::npos) << text;
  EXPECT_NE(text.find("depth 3\n"), std::string::npos) << text;
  EXPECT_NE(text.find("ratio 0.25\n"), std::string::npos) << text;
}

TEST(MetricFamilies, LabelValuesAreEscaped) {
  MetricFamilies families;
  families.Gauge("x", "X.", {{"path", "a\\b \"c\"\nd"}}, 1);
  EXPECT_NE(families.Render().find("x{path=\"a\\\\b \\\"c\\\"\\nd\"} 1\n"), std::string::npos);
}

}  // namespace
}  // namespace hoot::base
