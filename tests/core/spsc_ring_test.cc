// Runs under ThreadSanitizer too (label "tsan").
#include "core/spsc_ring.h"

#include <gtest/gtest.h>

#include <atomic>
#include <thread>

namespace hoot::core {
namespace {

// Counts live objects, so that a leak or a double destruction shows; carries a sequence
// number, so that reordering shows.
struct Tracked {
  static std::atomic<int64_t> live;
  int64_t sequence = -1;
  bool owns = false;
  Tracked() = default;
  explicit Tracked(int64_t s) : sequence(s), owns(true) { live.fetch_add(1); }
  Tracked(Tracked&& other) noexcept : sequence(other.sequence), owns(other.owns) {
    other.owns = false;
  }
  Tracked& operator=(Tracked&& other) noexcept {
    if (this != &other) {
      if (owns) live.fetch_sub(1);
      sequence = other.sequence;
      owns = other.owns;
      other.owns = false;
    }
    return *this;
  }
  ~Tracked() {
    if (owns) live.fetch_sub(1);
  }
};
std::atomic<int64_t> Tracked::live{0};

TEST(SpscRingTest, FullIsBackPressureAndEmptyIsNothingToPop) {
  SpscRing<int> ring(4);
  int value = 0;
  EXPECT_FALSE(ring.TryPop(&value));
  for (int i = 0; i < 4; ++i) EXPECT_TRUE(ring.TryPush(int(i)));
  EXPECT_FALSE(ring.TryPush(99));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(ring.TryPop(&value));
    EXPECT_EQ(value, i);
  }
  EXPECT_FALSE(ring.TryPop(&value));
}

TEST(SpscRingTest, DrainTakesABatchInOrderAndLeavesTheRest) {
  SpscRing<int> ring(8);
  for (int i = 0; i < 6; ++i) ASSERT_TRUE(ring.TryPush(int(i)));
  std::vector<int> seen;
  EXPECT_EQ(ring.Drain([&](int& v) { seen.push_back(v); }, 4), 4u);
  EXPECT_EQ(seen, (std::vector<int>{0, 1, 2, 3}));
  EXPECT_EQ(ring.Drain([&](int& v) { seen.push_back(v); }, 100), 2u);
  EXPECT_EQ(ring.Drain([&](int& v) { seen.push_back(v); }, 100), 0u);
}

TEST(SpscRingTest, TwoThreadsMoveAMillionObjectsInOrderWithoutLeaks) {
  constexpr int64_t kCount = 1'000'000;
  {
    SpscRing<Tracked> ring(64);  // Small: the producer keeps hitting a full ring.
    std::thread producer([&] {
      for (int64_t i = 0; i < kCount;) {
        if (ring.TryEmplace(i)) ++i;
      }
    });
    int64_t expected = 0;
    while (expected < kCount) {
      if (expected % 2 == 0) {
        Tracked item;
        if (ring.TryPop(&item)) {
          ASSERT_EQ(item.sequence, expected);
          ++expected;
        }
      } else {
        ring.Drain(
            [&](Tracked& item) {
              ASSERT_EQ(item.sequence, expected);
              ++expected;
            },
            7);
      }
    }
    producer.join();
    EXPECT_TRUE(ring.EmptyApprox());
  }
  EXPECT_EQ(Tracked::live.load(), 0);
}

TEST(SpscRingTest, ObjectsLeftInTheRingAreDestroyedWithIt) {
  {
    SpscRing<Tracked> ring(8);
    for (int i = 0; i < 5; ++i) ASSERT_TRUE(ring.TryEmplace(i));
    EXPECT_EQ(Tracked::live.load(), 5);
  }
  EXPECT_EQ(Tracked::live.load(), 0);
}

}  // namespace
}  // namespace hoot::core
