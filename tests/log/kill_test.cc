// Real files, real crashes: a child process appends and commits on the real disk through
// io_uring and reports every durable watermark to the parent through a pipe; the parent kills
// it with SIGKILL at a random moment, recovers the log itself, and checks that every record
// reported durable is present and intact, contiguous from seq 1. Then again, on the same
// data, HOOT_KILL_CYCLES times (default 50; `make soak` runs more).
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <random>
#include <string>
#include <thread>

#include "log/log_store.h"
#include "log/uring_storage.h"
#include "tests/log/log_test_util.h"

namespace hoot::log {
namespace {

constexpr int kChannels = 4;

std::string ChannelName(int index) { return "channel-" + std::to_string(index); }

// The body of `seq` in a channel: its size and bytes follow from the seq, so the parent can
// check every record it reads back without having seen it.
std::string Body(int channel, uint64_t seq) {
  std::string body = std::to_string(channel) + ":" + std::to_string(seq) + ":";
  size_t size = 16 + (seq * 131 + static_cast<uint64_t>(channel) * 17) % 3000;
  while (body.size() < size) body += static_cast<char>('a' + (seq + body.size()) % 26);
  return body;
}

// Small files, so that the cycles cross journal switches, checkpoints and segment rolls.
LogOptions KillOptions(const std::string& directory) {
  return SizedLogOptions(directory, {.segment_bytes = 64u << 10,
                                     .segment_allocate_step_bytes = 16u << 10,
                                     .cache_bytes_per_channel = 32u << 10,
                                     .journal_file_bytes = 512u << 10});
}

// The child: appends until killed, writing (channel, durable seq) pairs to `report_fd`.
[[noreturn]] void RunWriter(const std::string& directory, int report_fd, uint64_t seed) {
  auto storage = UringStorage::Create();
  if (!storage.ok()) _exit(3);
  auto store = LogStore::Open(storage->get(), KillOptions(directory));
  if (!store.ok()) {
    std::fprintf(stderr, "child: open failed: %s\n", std::string(store.status().message()).c_str());
    _exit(4);
  }
  std::map<ChannelLog*, int> index_of;
  std::vector<ChannelLog*> channels;
  for (int i = 0; i < kChannels; ++i) {
    ChannelLog* channel = (*store)->FindChannel(ChannelName(i));
    if (channel == nullptr) channel = *(*store)->CreateChannel(ChannelName(i));
    channels.push_back(channel);
    index_of[channel] = i;
  }
  (*store)->set_commit_callback([&](ChannelLog* channel, uint64_t durable) {
    uint64_t report[2] = {static_cast<uint64_t>(index_of[channel]), durable};
    if (write(report_fd, report, sizeof(report)) != sizeof(report)) _exit(5);
  });
  std::mt19937_64 random(seed);
  while (true) {
    int burst = 1 + static_cast<int>(random() % 64);
    for (int i = 0; i < burst; ++i) {
      int c = static_cast<int>(random() % kChannels);
      uint64_t next = LogStore::AppendedSeq(channels[c]) + 1;
      std::string body = Body(c, next);
      uint64_t seq = 0;
      AppendStatus status =
          (*store)->Append(channels[c], RecordView{0, next, next, "writer", body}, &seq);
      if (status == AppendStatus::kBusy) break;
      if (status != AppendStatus::kOk) _exit(6);
    }
    (*store)->Flush();
    (*storage)->Poll(/*wait=*/(*store)->commit_in_flight() && random() % 2 == 0);
  }
}

TEST(KillTest, SigkillAtRandomMomentsLosesNoRecordReportedDurable) {
  const char* cycles_env = std::getenv("HOOT_KILL_CYCLES");
  const int cycles = cycles_env ? std::atoi(cycles_env) : 50;
  std::string directory = std::filesystem::temp_directory_path() /
                          ("hoot-kill-test-" + std::to_string(getpid()));
  std::filesystem::remove_all(directory);
  std::mt19937_64 random(2026);
  std::map<int, uint64_t> reported;  // Highest durable seq ever reported, per channel.
  uint64_t total_reports = 0;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    SCOPED_TRACE("cycle " + std::to_string(cycle));
    int pipe_fds[2];
    ASSERT_EQ(pipe(pipe_fds), 0);
    pid_t child = fork();
    ASSERT_GE(child, 0);
    if (child == 0) {
      close(pipe_fds[0]);
      RunWriter(directory, pipe_fds[1], random());
    }
    close(pipe_fds[1]);
    fcntl(pipe_fds[0], F_SETFL, O_NONBLOCK);
    auto deadline = std::chrono::steady_clock::now() +
                    std::chrono::milliseconds(20 + random() % 180);
    auto drain = [&] {
      uint64_t report[2];
      while (read(pipe_fds[0], report, sizeof(report)) == sizeof(report)) {
        reported[static_cast<int>(report[0])] =
            std::max(reported[static_cast<int>(report[0])], report[1]);
        ++total_reports;
      }
    };
    while (std::chrono::steady_clock::now() < deadline) {
      drain();
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    kill(child, SIGKILL);
    int status = 0;
    ASSERT_EQ(waitpid(child, &status, 0), child);
    drain();  // Reports written before the kill are still in the pipe.
    close(pipe_fds[0]);
    ASSERT_TRUE(WIFSIGNALED(status)) << "the writer exited on its own with " << WEXITSTATUS(status);

    auto storage = UringStorage::Create();
    ASSERT_TRUE(storage.ok());
    auto store = LogStore::Open(storage->get(), KillOptions(directory));
    ASSERT_TRUE(store.ok()) << store.status();
    for (int c = 0; c < kChannels; ++c) {
      ChannelLog* channel = (*store)->FindChannel(ChannelName(c));
      if (channel == nullptr) {
        ASSERT_EQ(reported[c], 0u);
        continue;
      }
      ASSERT_FALSE(LogStore::Damage(channel).fenced);
      ASSERT_GE(LogStore::DurableSeq(channel), reported[c]) << ChannelName(c);
      // Every record: present, intact, in order.
      uint64_t after = 0;
      while (after < LogStore::DurableSeq(channel)) {
        bool done = false;
        (*store)->Read(channel, after, 1000, 1u << 20, [&](ReadResult&& result) {
          ASSERT_EQ(result.status, ReadStatus::kOk);
          ASSERT_FALSE(result.records.empty());
          for (const RecordView& record : result.records) {
            ASSERT_EQ(record.seq, after + 1);
            ASSERT_EQ(record.body, Body(c, record.seq));
            after = record.seq;
          }
          done = true;
        });
        while (!done) (*storage)->Poll(true);
        if (::testing::Test::HasFatalFailure()) return;
      }
      // What recovery kept becomes the floor for the next cycle: a seq once durable must
      // stay (recovery may keep more than was reported, never less).
      reported[c] = LogStore::DurableSeq(channel);
    }
  }
  EXPECT_GT(total_reports, 0u);
  std::printf("kill test: %d cycles, %llu durable reports checked\n", cycles,
              static_cast<unsigned long long>(total_reports));
  std::filesystem::remove_all(directory);
}

}  // namespace
}  // namespace hoot::log
