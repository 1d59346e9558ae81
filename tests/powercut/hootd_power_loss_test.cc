// hootd on hoot-powercut-fs under load from retrying senders (tests/server/retrying_sender.h),
// cycle after cycle: kill -9, then a power cut (every write and directory entry not made
// durable is lost, the last writes torn at sector granularity), a remount (a new daemon over
// what the disk kept), and a restart on it. Some cycles are a kill alone (the page cache
// survives) and some a failed fdatasync (hootd exits 3; restarted on the same "kernel", whose
// page cache still shows what never reached the disk; the next cut shows the disk). At the
// end every acknowledged message is in its channel at the seq it was acknowledged with, seqs
// contiguous from 1, nothing twice. HOOT_POWERCUT_CYCLES sets the cycles (default 20; `make
// soak` runs 1,000).
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <optional>
#include <random>
#include <thread>
#include <vector>

#include "tests/powercut/powercut_mount.h"
#include "tests/server/hootd_process.h"
#include "tests/server/retrying_sender.h"

namespace hoot::testing {
namespace {

constexpr int kSenders = 3;
constexpr int kChannels = 3;

TEST(HootdPowerLoss, AcknowledgedMessagesSurviveKillsPowerCutsAndFailedFsyncs) {
  std::string unavailable = PowercutMount::Unavailable();
  if (!unavailable.empty()) GTEST_SKIP() << unavailable;
  int cycles = 20;
  if (const char* env = std::getenv("HOOT_POWERCUT_CYCLES")) cycles = std::atoi(env);
  std::string root = FreshDirectory("powercut");
  std::string backing = root + "/backing";
  std::string mount = root + "/mnt";
  std::filesystem::create_directories(backing);
  std::filesystem::create_directories(mount);
  PowercutMount fs(backing, mount, root + "/fs");
  std::string skip;
  uint64_t fs_seed = 1;
  ASSERT_NO_FATAL_FAILURE(fs.Start(fs_seed, &skip));
  if (!skip.empty()) GTEST_SKIP() << skip;

  HootdProcess::Options options;
  options.data_directory = mount + "/data";
  options.shards = 2;
  // The smallest files: journal switches, checkpoints and segment rolls every few cycles.
  options.extra_flags = {"--journal-mib", "1", "--segment-mib", "1"};
  auto hootd = HootdProcess::Start(options);
  ASSERT_TRUE(hootd.ok()) << hootd.status();
  ASSERT_NO_FATAL_FAILURE(CreateChannelsAndMembers(**hootd, kSenders, kChannels));

  // Failed fdatasyncs: sends in flight are refused storage_failed as hootd goes down.
  SenderThreads senders(**hootd, kSenders, kChannels, /*storage_fails=*/true);
  std::mt19937 random(2027);
  int cuts = 0, kills_alone = 0, failed_fsyncs = 0, exits_3 = 0, failed_starts = 0;
  // Failures armed and not yet seen: the one of the two journal files that was not current
  // fires later, maybe at a restart's recovery (hootd then refuses to start, exit 1).
  int armed = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    std::this_thread::sleep_for(std::chrono::milliseconds(100 + random() % 300));
    int kind = static_cast<int>(random() % 10);
    bool cut = true;
    if (kind == 0) {
      // The journal's next fdatasync fails: hootd must exit 3 without acknowledging the batch.
      ++failed_fsyncs;
      for (const char* file : {"0.jnl", "1.jnl"}) {
        ASSERT_EQ(fs.Control("fail-next-fsync data/shards/0/journal/0/" + std::string(file)), 0);
        ++armed;
      }
      std::optional<int> status = (*hootd)->WaitExited(std::chrono::seconds(10));
      if (status.has_value()) {
        EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 3) << "status " << *status;
        ++exits_3;
        --armed;
      }
      cut = false;  // Restarted on the same kernel, whose page cache lies.
    } else if (kind <= 2) {
      ++kills_alone;
      cut = false;
    }
    // hootd may have exited 3 on its own, on a failure armed in an earlier cycle.
    if (std::optional<int> status = (*hootd)->WaitExited(std::chrono::milliseconds(0))) {
      EXPECT_TRUE(WIFEXITED(*status) && WEXITSTATUS(*status) == 3) << "status " << *status;
      ++exits_3;
      --armed;
    }
    (*hootd)->Kill();
    if (cut) {
      ++cuts;
      ASSERT_EQ(fs.Control(cycle % 2 == 0 ? "cut-tear" : "cut"), 0);
      fs.Stop();
      ASSERT_NO_FATAL_FAILURE(fs.Start(++fs_seed, &skip));
      ASSERT_TRUE(skip.empty()) << skip;
      armed = 0;  // A new daemon: what the old one had armed is gone with it.
    }
    hootd = HootdProcess::Start(options);
    while (!hootd.ok() && armed > 0) {
      // An armed failure fired during recovery: hootd refused to start. Once more.
      ++failed_starts;
      --armed;
      hootd = HootdProcess::Start(options);
    }
    ASSERT_TRUE(hootd.ok()) << "restart " << cycle << ": " << hootd.status() << "\n"
                            << ReadWholeFile(fs.log());
    senders.Retarget((*hootd)->port());
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(300));
  std::vector<SenderResult> results = senders.Finish();

  SenderTotals totals;
  ASSERT_NO_FATAL_FAILURE(AddUp(results, &totals));
  EXPECT_GE(totals.connections_lost, static_cast<uint64_t>(cycles) / 2);
  // A last cut after a clean stop, then the check, on what the disk kept.
  EXPECT_EQ((*hootd)->Stop(), 0);
  ASSERT_EQ(fs.Control("cut-tear"), 0);
  fs.Stop();
  ASSERT_NO_FATAL_FAILURE(fs.Start(++fs_seed, &skip));
  hootd = HootdProcess::Start(options);
  ASSERT_TRUE(hootd.ok()) << hootd.status();
  ASSERT_NO_FATAL_FAILURE(CheckExactlyTheAcknowledgedMessages(**hootd, results, kChannels, totals));
  std::printf(
      "hootd power-cut loop: %d cycles (%d power cuts, %d kills alone, %d failed "
      "fdatasyncs injected: %d exits with status 3, %d refused starts), %llu messages "
      "acknowledged, %llu retries answered as duplicates, %llu sends refused storage_failed "
      "and sent again, 0 lost\n",
      cycles, cuts, kills_alone, failed_fsyncs, exits_3, failed_starts,
      static_cast<unsigned long long>(totals.acked),
      static_cast<unsigned long long>(totals.duplicates_answered),
      static_cast<unsigned long long>(totals.storage_failed_refusals));
  EXPECT_EQ((*hootd)->Stop(), 0);
  fs.Stop();
}

}  // namespace
}  // namespace hoot::testing
