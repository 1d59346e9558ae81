// The ring itself: room for a fan-out's completions, and work gathered until submission.
#include "io/ring.h"

#include <gtest/gtest.h>

#include <vector>

namespace hoot::io {
namespace {

struct Counted : Completion {
  void Complete(int32_t, uint32_t) override { ++completed; }
  int completed = 0;
};

// A thousand operations completed in one submission (as a fan-out's sends are) all fit in
// the completion queue: none is pushed onto the kernel's overflow list.
TEST(RingTest, AThousandCompletionsOfOneSubmissionFitTheCompletionQueue) {
  auto ring = Ring::Create(RingOptions{.entries = 256, .completion_entries = 4096});
  ASSERT_TRUE(ring.ok()) << ring.status();
  EXPECT_GE((*ring)->raw()->cq.ring_entries, 4096u);
  Counted counted;
  for (int i = 0; i < 1000; ++i) io_uring_prep_nop((*ring)->GetSqe(&counted));
  (*ring)->Submit();
  EXPECT_EQ(IO_URING_READ_ONCE(*(*ring)->raw()->sq.kflags) & IORING_SQ_CQ_OVERFLOW, 0u);
  while (counted.completed < 1000) (*ring)->Reap(/*wait=*/true);
  EXPECT_EQ(counted.completed, 1000);
}

struct Gathering : BeforeSubmit {
  explicit Gathering(Ring* owner) : ring(owner) {}
  void Flush() override {
    ++flushes;
    for (int i = 0; i < gathered; ++i) io_uring_prep_nop(ring->GetSqe(&counted));
    gathered = 0;
  }
  Ring* ring;
  Counted counted;
  int gathered = 0;
  int flushes = 0;
};

TEST(RingTest, WorkGatheredDuringATurnIsQueuedJustBeforeTheRingSubmits) {
  auto ring = Ring::Create();
  ASSERT_TRUE(ring.ok());
  Gathering gathering(ring->get());
  (*ring)->AddBeforeSubmit(&gathering);
  gathering.gathered = 3;
  EXPECT_EQ((*ring)->Submit(), 3);  // Flushed, then submitted in the same call.
  while (gathering.counted.completed < 3) (*ring)->Reap(/*wait=*/true);
  gathering.gathered = 2;
  (*ring)->ReapWithTimeout(1'000'000);
  while (gathering.counted.completed < 5) (*ring)->Reap(/*wait=*/true);
  (*ring)->RemoveBeforeSubmit(&gathering);
  int flushes = gathering.flushes;
  (*ring)->Submit();
  EXPECT_EQ(gathering.flushes, flushes);  // Removed: no longer called.
}

}  // namespace
}  // namespace hoot::io
