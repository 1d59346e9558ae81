// SIGKILL of hootd under load, HOOT_HOOTD_KILL_CYCLES times (default 20; `make soak` runs
// more), with retrying senders (retrying_sender.h). After the last restart: every
// acknowledged message is in its channel at the seq it was acknowledged with, seqs are
// contiguous from 1, and no message is there twice.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <deque>
#include <map>
#include <mutex>
#include <random>
#include <thread>

#include "client/client.h"
#include "tests/server/hootd_process.h"
#include "tests/server/retrying_sender.h"

namespace hoot::testing {
namespace {

constexpr int kSenders = 3;
constexpr int kChannels = 2;

TEST(HootdKill, AcknowledgedMessagesSurviveSigkill) {
  int cycles = 20;
  if (const char* env = std::getenv("HOOT_HOOTD_KILL_CYCLES")) cycles = std::atoi(env);
  HootdProcess::Options options;
  options.data_directory = FreshDirectory("hootd-kill");
  options.shards = 2;
  auto hootd = HootdProcess::Start(options);
  ASSERT_TRUE(hootd.ok()) << hootd.status();
  ASSERT_NO_FATAL_FAILURE(CreateChannelsAndMembers(**hootd, kSenders, kChannels));

  SenderThreads senders(**hootd, kSenders, kChannels);
  std::mt19937 random(12345);
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + random() % 300));
    (*hootd)->Kill();
    hootd = HootdProcess::Start(options);
    ASSERT_TRUE(hootd.ok()) << "restart " << cycle << ": " << hootd.status();
    senders.Retarget((*hootd)->port());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  std::vector<SenderResult> results = senders.Finish();

  SenderTotals totals;
  ASSERT_NO_FATAL_FAILURE(AddUp(results, &totals));
  // Each kill must have cut the senders off mid-stream, or the test proved nothing.
  EXPECT_GE(totals.connections_lost, static_cast<uint64_t>(cycles));

  // Read every channel back whole, from a clean restart.
  EXPECT_EQ((*hootd)->Stop(), 0);
  hootd = HootdProcess::Start(options);
  ASSERT_TRUE(hootd.ok()) << hootd.status();
  ASSERT_NO_FATAL_FAILURE(CheckExactlyTheAcknowledgedMessages(**hootd, results, kChannels, totals));
  std::printf(
      "hootd kill loop: %d SIGKILL cycles, %llu messages acknowledged, %llu retries "
      "answered as duplicates, %llu connections, %llu lost mid-stream\n",
      cycles, static_cast<unsigned long long>(totals.acked),
      static_cast<unsigned long long>(totals.duplicates_answered),
      static_cast<unsigned long long>(totals.reconnects),
      static_cast<unsigned long long>(totals.connections_lost));
  EXPECT_EQ((*hootd)->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
