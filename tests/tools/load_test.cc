// hoot-load's measurement core (tools/load/): histograms against exact percentiles, the
// delivery checker on doctored streams, and the SVG plot's shape.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "tools/load/checker.h"
#include "tools/load/histogram.h"
#include "tools/load/plot.h"

namespace hoot::testing {
namespace {

using load::CheckerCounts;
using load::DeliveryChecker;
using load::LatencyHistogram;

// The histogram reports the highest value of the exact value's bucket: never below it, and
// at most 0.1% above.
void ExpectWithinOneThousandth(uint64_t reported, uint64_t exact, double percentile) {
  EXPECT_GE(reported, exact) << "p" << percentile;
  EXPECT_LE(static_cast<double>(reported), static_cast<double>(exact) * 1.001) << "p" << percentile;
}

// --- LatencyHistogram.

TEST(LatencyHistogram, UniformOneToMillionPercentilesWithinOneThousandth) {
  LatencyHistogram histogram;
  for (uint64_t value = 1; value <= 1'000'000; ++value) histogram.Record(value);
  EXPECT_EQ(histogram.count(), 1'000'000u);
  EXPECT_EQ(histogram.min(), 1u);
  EXPECT_EQ(histogram.max(), 1'000'000u);
  EXPECT_DOUBLE_EQ(histogram.mean(), 500'000.5);
  EXPECT_EQ(histogram.clamped_count(), 0u);
  ExpectWithinOneThousandth(histogram.ValueAtPercentile(50), 500'000, 50);
  ExpectWithinOneThousandth(histogram.ValueAtPercentile(99), 990'000, 99);
  ExpectWithinOneThousandth(histogram.ValueAtPercentile(99.9), 999'000, 99.9);
  EXPECT_EQ(histogram.ValueAtPercentile(100), 1'000'000u);
  EXPECT_EQ(histogram.ValueAtPercentile(0), 1u);
}

TEST(LatencyHistogram, ExponentialMatchesExactSortedPercentiles) {
  std::mt19937_64 random(20261127);
  std::exponential_distribution<double> one_ms_mean(1.0 / 1e6);
  LatencyHistogram histogram;
  std::vector<uint64_t> values;
  constexpr uint64_t kCount = 1'000'000;
  for (uint64_t i = 0; i < kCount; ++i) {
    values.push_back(static_cast<uint64_t>(std::llround(one_ms_mean(random))) + 1);
    histogram.Record(values.back());
  }
  std::sort(values.begin(), values.end());
  // Rank ceil(p / 100 * count), 1-based.
  const std::vector<std::pair<double, uint64_t>> ranks = {
      {50, 500'000}, {90, 900'000}, {99, 990'000}, {99.9, 999'000}, {99.99, 999'900}};
  for (const auto& [percentile, rank] : ranks) {
    ExpectWithinOneThousandth(histogram.ValueAtPercentile(percentile), values[rank - 1],
                              percentile);
  }
  EXPECT_EQ(histogram.min(), values.front());
  EXPECT_EQ(histogram.max(), values.back());
  EXPECT_NEAR(histogram.mean(), 1e6, 1e6 * 0.01);
}

TEST(LatencyHistogram, MergeEqualsRecordingAllIntoOne) {
  std::mt19937_64 random(7);
  std::lognormal_distribution<double> latency(12, 1.5);
  LatencyHistogram first, second, all;
  for (int i = 0; i < 100'000; ++i) {
    const auto value = static_cast<uint64_t>(latency(random));
    (i % 3 == 0 ? first : second).Record(value);
    all.Record(value);
  }
  first.RecordN(LatencyHistogram::kHighestTrackable + 5, 3);
  all.RecordN(LatencyHistogram::kHighestTrackable + 5, 3);
  first.Merge(second);
  EXPECT_EQ(first.count(), all.count());
  EXPECT_EQ(first.min(), all.min());
  EXPECT_EQ(first.max(), all.max());
  EXPECT_EQ(first.mean(), all.mean());
  EXPECT_EQ(first.clamped_count(), 3u);
  for (double percentile : {0.0, 1.0, 25.0, 50.0, 90.0, 99.0, 99.9, 99.99, 99.999, 100.0}) {
    EXPECT_EQ(first.ValueAtPercentile(percentile), all.ValueAtPercentile(percentile));
  }
  EXPECT_EQ(first.PercentileSeries(), all.PercentileSeries());

  LatencyHistogram empty;
  empty.Merge(all);
  EXPECT_EQ(empty.PercentileSeries(), all.PercentileSeries());
}

TEST(LatencyHistogram, SingleValueIsEveryPercentile) {
  LatencyHistogram histogram;
  histogram.Record(1'234'567);
  for (double percentile : {0.0, 50.0, 99.9, 100.0}) {
    EXPECT_EQ(histogram.ValueAtPercentile(percentile), 1'234'567u);
  }
  EXPECT_EQ(histogram.min(), 1'234'567u);
  EXPECT_EQ(histogram.mean(), 1'234'567.0);
  const auto series = histogram.PercentileSeries();
  EXPECT_EQ(series.front(), std::make_pair(0.0, uint64_t{1'234'567}));
  EXPECT_EQ(series.back(), std::make_pair(100.0, uint64_t{1'234'567}));
}

TEST(LatencyHistogram, SmallValuesAreExact) {
  LatencyHistogram histogram;
  histogram.RecordN(3, 10);
  histogram.RecordN(2047, 10);
  histogram.RecordN(9, 0);  // nothing
  EXPECT_EQ(histogram.count(), 20u);
  EXPECT_EQ(histogram.ValueAtPercentile(50), 3u);
  EXPECT_EQ(histogram.ValueAtPercentile(50.1), 2047u);
}

TEST(LatencyHistogram, ValuesAboveOneHourAreClampedAndCounted) {
  constexpr uint64_t kOneHour = 3'600'000'000'000;
  ASSERT_GE(LatencyHistogram::kHighestTrackable, kOneHour);
  LatencyHistogram histogram;
  histogram.Record(kOneHour);
  EXPECT_EQ(histogram.clamped_count(), 0u);
  ExpectWithinOneThousandth(histogram.ValueAtPercentile(50), kOneHour, 50);
  histogram.Record(2 * kOneHour);
  histogram.Record(UINT64_MAX);
  EXPECT_EQ(histogram.clamped_count(), 2u);
  EXPECT_EQ(histogram.max(), LatencyHistogram::kHighestTrackable);
  EXPECT_EQ(histogram.ValueAtPercentile(100), LatencyHistogram::kHighestTrackable);
  EXPECT_EQ(histogram.min(), kOneHour);
}

TEST(LatencyHistogram, EmptyAndResetReportZeros) {
  LatencyHistogram histogram;
  auto expect_empty = [&] {
    EXPECT_EQ(histogram.count(), 0u);
    EXPECT_EQ(histogram.min(), 0u);
    EXPECT_EQ(histogram.max(), 0u);
    EXPECT_EQ(histogram.mean(), 0.0);
    EXPECT_EQ(histogram.clamped_count(), 0u);
    EXPECT_EQ(histogram.ValueAtPercentile(50), 0u);
    EXPECT_EQ(histogram.ValueAtPercentile(100), 0u);
    EXPECT_TRUE(histogram.PercentileSeries().empty());
  };
  expect_empty();
  histogram.Record(500);
  histogram.Record(UINT64_MAX);
  histogram.Reset();
  expect_empty();
  histogram.Record(42);
  EXPECT_EQ(histogram.min(), 42u);
}

TEST(LatencyHistogram, PercentileSeriesFollowsHalvingTicksToMax) {
  LatencyHistogram histogram;
  for (uint64_t value = 1; value <= 2'000'000; ++value) histogram.Record(value);
  const auto series = histogram.PercentileSeries();
  ASSERT_GT(series.size(), 10u);
  const std::vector<double> first_levels = {0,  10, 20, 30, 40,   50,   55,
                                            60, 65, 70, 75, 77.5, 80.0, 82.5};
  for (size_t i = 0; i < first_levels.size(); ++i) EXPECT_EQ(series[i].first, first_levels[i]);
  EXPECT_EQ(series.front().second, 1u);
  EXPECT_EQ(series.back(), std::make_pair(100.0, uint64_t{2'000'000}));
  EXPECT_GE(series[series.size() - 2].first, 99.9999);
  EXPECT_LT(series[series.size() - 3].first, 99.9999);
  for (size_t i = 1; i < series.size(); ++i) {
    EXPECT_GT(series[i].first, series[i - 1].first);
    EXPECT_GE(series[i].second, series[i - 1].second);
    EXPECT_EQ(series[i].second, histogram.ValueAtPercentile(series[i].first));
  }
}

TEST(LatencyHistogram, PercentileSeriesStopsWhereTheDataEnds) {
  LatencyHistogram histogram;
  for (uint64_t value = 1; value <= 1000; ++value) histogram.Record(value * 1000);
  const auto series = histogram.PercentileSeries();
  EXPECT_EQ(series.back(), std::make_pair(100.0, uint64_t{1'000'000}));
  EXPECT_EQ(series[series.size() - 2].second, 1'000'000u);  // the first level at the max
  EXPECT_LT(series[series.size() - 3].second, 1'000'000u);
  EXPECT_LT(series[series.size() - 2].first, 99.99);
}

// --- DeliveryChecker.

TEST(SeqRuns, MergesSplitsAndCounts) {
  load::SeqRuns runs;
  EXPECT_TRUE(runs.Insert(5));
  EXPECT_TRUE(runs.Insert(7));
  EXPECT_FALSE(runs.Insert(7));
  EXPECT_TRUE(runs.Insert(6));  // joins 5 and 7
  EXPECT_EQ(runs.runs().size(), 1u);
  EXPECT_TRUE(runs.Insert(4));
  EXPECT_EQ(runs.CountIn(0, 100), 4u);
  EXPECT_EQ(runs.highest(), 7u);
  EXPECT_TRUE(runs.Erase(6));  // splits
  EXPECT_FALSE(runs.Erase(6));
  EXPECT_EQ(runs.runs().size(), 2u);
  EXPECT_EQ(runs.CountIn(5, 8), 2u);
  runs.InsertRange(10, 20);
  EXPECT_EQ(runs.CountIn(0, 15), 8u);
  EXPECT_TRUE(runs.Erase(10));
  EXPECT_TRUE(runs.Erase(19));
  EXPECT_EQ(runs.CountIn(0, UINT64_MAX), 11u);
}

constexpr uint64_t kFirstSeq = 101;  // seqs start anywhere
constexpr uint64_t kSeqs = 1000;

// 3 subscribers x 2 channels, each subscribed from kFirstSeq; `deliver` may doctor the stream
// of subscriber 1, channel 0; everything else is clean.
template <typename Doctor>
CheckerCounts RunStream(Doctor doctor, uint64_t acked_seqs = kSeqs) {
  DeliveryChecker checker;
  for (uint32_t subscriber = 0; subscriber < 3; ++subscriber) {
    for (uint32_t channel = 0; channel < 2; ++channel) {
      checker.Subscribed(subscriber, channel, kFirstSeq);
    }
  }
  for (uint64_t seq = kFirstSeq; seq < kFirstSeq + kSeqs; ++seq) {
    for (uint32_t channel = 0; channel < 2; ++channel) {
      if (seq < kFirstSeq + acked_seqs) checker.Acknowledged(channel, seq);
      for (uint32_t subscriber = 0; subscriber < 3; ++subscriber) {
        if (subscriber == 1 && channel == 0) {
          doctor(checker, seq);
        } else {
          checker.Delivered(subscriber, channel, seq);
        }
      }
    }
  }
  return checker.Finish();
}

TEST(DeliveryChecker, CleanStreamCountsOnlyDeliveries) {
  const CheckerCounts counts =
      RunStream([](DeliveryChecker& checker, uint64_t seq) { checker.Delivered(1, 0, seq); });
  EXPECT_EQ(counts.delivered, 6000u);
  EXPECT_TRUE(counts.ok());  // every other count is zero
}

TEST(DeliveryChecker, DroppedSeqIsAGapAndMissing) {
  const CheckerCounts counts = RunStream([](DeliveryChecker& checker, uint64_t seq) {
    if (seq != 600) checker.Delivered(1, 0, seq);
  });
  EXPECT_EQ(counts.delivered, 5999u);
  EXPECT_EQ(counts.gaps, 1u);
  EXPECT_EQ(counts.gap_events, 1u);
  EXPECT_EQ(counts.missing, 1u);
  EXPECT_EQ(counts.duplicates + counts.out_of_order, 0u);
  EXPECT_FALSE(counts.ok());
}

TEST(DeliveryChecker, RepeatedSeqIsADuplicate) {
  const CheckerCounts counts = RunStream([](DeliveryChecker& checker, uint64_t seq) {
    checker.Delivered(1, 0, seq);
    if (seq == 600) checker.Delivered(1, 0, seq);
  });
  EXPECT_EQ(counts.duplicates, 1u);
  EXPECT_EQ(counts.gaps + counts.out_of_order + counts.missing, 0u);
  EXPECT_FALSE(counts.ok());
}

TEST(DeliveryChecker, SwappedNeighboursAreOutOfOrderButNotMissing) {
  const CheckerCounts counts = RunStream([](DeliveryChecker& checker, uint64_t seq) {
    if (seq == 600) return;
    checker.Delivered(1, 0, seq);
    if (seq == 601) checker.Delivered(1, 0, 600);
  });
  EXPECT_EQ(counts.out_of_order, 1u);
  EXPECT_EQ(counts.gaps, 1u);  // seen as a gap when 601 came first
  EXPECT_EQ(counts.duplicates + counts.missing, 0u);
  EXPECT_FALSE(counts.ok());
}

TEST(DeliveryChecker, AcknowledgedTailNeverDeliveredIsMissing) {
  const CheckerCounts counts = RunStream([](DeliveryChecker& checker, uint64_t seq) {
    if (seq < kFirstSeq + 900) checker.Delivered(1, 0, seq);
  });
  EXPECT_EQ(counts.missing, 100u);
  EXPECT_EQ(counts.gaps, 0u);  // nothing after the tail shows the hole
}

TEST(DeliveryChecker, UnacknowledgedDeliveriesAreFine) {
  // Warm-up traffic and sends still waiting for SENT: delivered but never acknowledged.
  const CheckerCounts counts =
      RunStream([](DeliveryChecker& checker, uint64_t seq) { checker.Delivered(1, 0, seq); },
                /*acked_seqs=*/500);
  EXPECT_TRUE(counts.ok());
  const CheckerCounts dropped = RunStream(
      [](DeliveryChecker& checker, uint64_t seq) {
        if (seq != kFirstSeq + 700) checker.Delivered(1, 0, seq);
      },
      /*acked_seqs=*/500);
  EXPECT_EQ(dropped.gaps, 1u);
  EXPECT_EQ(dropped.missing, 0u);  // never acknowledged: nothing owed
}

TEST(DeliveryChecker, AcknowledgementsOutOfOrderAcrossPublishers) {
  std::vector<uint64_t> seqs;
  for (uint64_t seq = 1; seq <= 5000; ++seq) seqs.push_back(seq);
  std::shuffle(seqs.begin(), seqs.end(), std::mt19937_64(3));
  DeliveryChecker checker;
  checker.Subscribed(0, 0, 1);
  checker.Subscribed(1, 0, 1);
  for (size_t i = 0; i < seqs.size(); ++i) {
    checker.Acknowledged(0, seqs[i]);
    checker.Delivered(0, 0, i + 1);
    if (i + 1 != 2500) checker.Delivered(1, 0, i + 1);
  }
  checker.Acknowledged(0, 17);  // a resend answered with its original seq
  const CheckerCounts counts = checker.Finish();
  EXPECT_EQ(counts.delivered, 9999u);
  EXPECT_EQ(counts.gaps, 1u);
  EXPECT_EQ(counts.missing, 1u);
  EXPECT_EQ(checker.counts().missing, 0u);  // running counts leave missing to Finish
}

TEST(DeliveryChecker, SubscriptionStartsAtFirstExpectedSeq) {
  DeliveryChecker checker;
  for (uint64_t seq = 1; seq <= 20; ++seq) checker.Acknowledged(3, seq);
  checker.Subscribed(7, 3, 11);  // had 1..10 already
  for (uint64_t seq = 11; seq <= 20; ++seq) checker.Delivered(7, 3, seq);
  EXPECT_TRUE(checker.Finish().ok());
  checker.Delivered(7, 3, 5);  // before where it asked to start
  EXPECT_EQ(checker.Finish().duplicates, 1u);
}

TEST(DeliveryChecker, UnsubscribedOwesOnlyWhatWasAcknowledgedThen) {
  DeliveryChecker checker;
  checker.Subscribed(0, 0, 1);
  for (uint64_t seq = 1; seq <= 10; ++seq) checker.Acknowledged(0, seq);
  for (uint64_t seq = 1; seq <= 8; ++seq) checker.Delivered(0, 0, seq);
  checker.Unsubscribed(0, 0);
  for (uint64_t seq = 11; seq <= 30; ++seq) checker.Acknowledged(0, seq);
  EXPECT_EQ(checker.Finish().missing, 2u);  // 9 and 10, not 11..30

  // Subscribing again (after a reconnect) starts a new subscription; the old one still owes.
  checker.Subscribed(0, 0, 21);
  for (uint64_t seq = 21; seq <= 30; ++seq) checker.Delivered(0, 0, seq);
  const CheckerCounts counts = checker.Finish();
  EXPECT_EQ(counts.missing, 2u);
  EXPECT_EQ(counts.gaps + counts.duplicates, 0u);
}

TEST(DeliveryChecker, DeliveryWithoutSubscriptionIsUnexpected) {
  DeliveryChecker checker;
  checker.Delivered(4, 2, 1);
  EXPECT_EQ(checker.counts().unexpected, 1u);
  EXPECT_EQ(checker.counts().delivered, 1u);
  EXPECT_FALSE(checker.Finish().ok());
}

// --- LatencyPercentilePlotSvg.

size_t Occurrences(const std::string& text, const std::string& needle) {
  size_t count = 0;
  for (size_t at = text.find(needle); at != std::string::npos; at = text.find(needle, at + 1)) {
    ++count;
  }
  return count;
}

TEST(LatencyPercentilePlotSvg, DrawsOneLinePerSeriesWithTicksAndEscapedNames) {
  LatencyHistogram uniform, spread;
  for (uint64_t value = 1; value <= 1'000'000; ++value) {
    uniform.Record(value * 3);
    spread.Record(value * value / 1000);
  }
  const std::string svg =
      load::LatencyPercentilePlotSvg({{"ack <p50> & \"friends\"", uniform.PercentileSeries()},
                                      {"end-to-end", spread.PercentileSeries()}},
                                     {.title = "W1 floor & co", .width = 800, .height = 400});
  EXPECT_EQ(svg.rfind("<svg", 0), 0u);
  EXPECT_NE(svg.find("xmlns=\"http://www.w3.org/2000/svg\""), std::string::npos);
  EXPECT_EQ(Occurrences(svg, "<polyline"), 2u);
  EXPECT_NE(svg.find("ack &lt;p50&gt; &amp; &quot;friends&quot;"), std::string::npos);
  EXPECT_EQ(svg.find("<p50>"), std::string::npos);
  EXPECT_NE(svg.find("W1 floor &amp; co"), std::string::npos);
  for (const char* label : {">0%<", ">90%<", ">99%<", ">99.9%<", ">99.99%<", ">99.999%<"}) {
    EXPECT_NE(svg.find(label), std::string::npos) << label;
  }
  EXPECT_EQ(svg.find("nan"), std::string::npos);
  EXPECT_EQ(svg.find("inf"), std::string::npos);
  EXPECT_EQ(svg.substr(svg.size() - 7), "</svg>\n");
}

TEST(LatencyPercentilePlotSvg, EmptySeriesAndNoSeriesStillDraw) {
  const std::string one_empty =
      load::LatencyPercentilePlotSvg({{"nothing yet", {}}}, load::PlotOptions{});
  EXPECT_EQ(one_empty.rfind("<svg", 0), 0u);
  EXPECT_EQ(Occurrences(one_empty, "<polyline"), 1u);
  EXPECT_NE(one_empty.find(">99.9%<"), std::string::npos);
  const std::string none = load::LatencyPercentilePlotSvg({}, load::PlotOptions{});
  EXPECT_EQ(Occurrences(none, "<polyline"), 0u);
  EXPECT_NE(none.find("</svg>"), std::string::npos);
}

}  // namespace
}  // namespace hoot::testing
