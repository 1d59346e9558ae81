// Disk failures, injected under the real io_uring storage of an in-process hootd: a full disk
// refuses sends with disk_full while reads go on, and sends work again once space returns; a
// failed fdatasync stops the server (exit 3, naming the file) without acknowledging anything
// that was not durable.
#include <gtest/gtest.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <ctime>

#include "client/client.h"
#include "core/server.h"
#include "tests/server/forwarding_storage.h"
#include "tests/server/hootd_process.h"
#include "tests/server/in_process_options.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;

// Fails fallocate with ENOSPC while `full` is set.
class FullDiskStorage : public ForwardingStorage {
 public:
  FullDiskStorage(std::unique_ptr<log::Storage> inner, std::atomic<bool>* full)
      : ForwardingStorage(std::move(inner)), full_(full) {}
  absl::Status Allocate(log::FileHandle file, uint64_t bytes) override {
    if (full_->load()) {
      return absl::ResourceExhaustedError("fallocate: No space left on device (injected)");
    }
    return inner().Allocate(file, bytes);
  }

 private:
  std::atomic<bool>* full_;
};

// Reports EIO for every journal write+fdatasync once `failing` is set.
class FailingSyncStorage : public ForwardingStorage {
 public:
  FailingSyncStorage(std::unique_ptr<log::Storage> inner, std::atomic<bool>* failing)
      : ForwardingStorage(std::move(inner)), failing_(failing) {}
  void WriteThenSync(log::FileHandle file, uint64_t offset, std::string_view data,
                     log::IoCallback done) override {
    if (!failing_->load()) return inner().WriteThenSync(file, offset, data, std::move(done));
    inner().WriteThenSync(file, offset, data,
                          [done = std::move(done)](int32_t) { done(-EIO); });
  }

 private:
  std::atomic<bool>* failing_;
};

std::unique_ptr<client::Client> Connect(core::Server& server, const std::string& user) {
  client::ConnectOptions options;
  options.port = server.port();
  options.token = server.signer().Mint(user, std::time(nullptr) + 600);
  auto client = client::Client::Connect(options);
  EXPECT_TRUE(client.ok()) << client.status();
  return client.ok() ? std::move(*client) : nullptr;
}

TEST(DiskFaults, FullDiskRefusesSendsWhileReadsGoOnAndRecovers) {
  std::atomic<bool> full{false};
  core::ServerOptions options = InProcessOptions("disk-full");
  options.wrap_storage = [&](unsigned, std::unique_ptr<log::Storage> inner) {
    return std::unique_ptr<log::Storage>(new FullDiskStorage(std::move(inner), &full));
  };
  auto server = core::Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto ada = Connect(**server, "ada");
  ASSERT_TRUE(ada);
  auto info = ada->CreateChannel("g", proto::Visibility::kPublic);
  ASSERT_TRUE(info.ok());
  ASSERT_TRUE(ada->Send("g", 1, "before").ok());

  full = true;
  uint64_t accepted = 1;
  absl::Status refused;
  // Segments take space a megabyte at a time: within a few megabytes a send needs more.
  for (uint64_t id = 2; id < 200 && refused.ok(); ++id) {
    auto sent = ada->Send("g", id, std::string(60000, 'f'));
    if (sent.ok()) {
      accepted = sent->seq;
    } else {
      refused = sent.status();
    }
  }
  ASSERT_FALSE(refused.ok()) << "no send was refused on a full disk";
  EXPECT_EQ(client::ServerErrorCode(refused), proto::ErrorCode::kDiskFull) << refused;
  // Reads go on: history and a subscription's replay.
  auto history = ada->FetchHistory("g", 0, 0, proto::Direction::kForward, 1000);
  ASSERT_TRUE(history.ok()) << history.status();
  EXPECT_EQ(std::get<client::History>(*history).records.size(), accepted);
  auto subscribed = ada->Subscribe("g", info->epoch, accepted - 1);
  ASSERT_TRUE(subscribed.ok() && std::holds_alternative<client::Subscribed>(*subscribed));
  auto replayed = ada->NextPush(milliseconds(5000));
  ASSERT_TRUE(replayed.ok() && replayed->has_value());
  EXPECT_EQ(std::get<client::Message>(**replayed).record.seq, accepted);

  full = false;
  auto again = ada->Send("g", 1000, "space is back");
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(again->seq, accepted + 1) << "a refused send left a trace in the log";
  std::printf("full disk: %llu sends accepted, then disk_full; after space returned, seq %llu\n",
              static_cast<unsigned long long>(accepted),
              static_cast<unsigned long long>(again->seq));
  EXPECT_TRUE((*server)->Stop().ok());
}

// The log refuses to go on after a failed fdatasync (the fsyncgate rule); the process is told
// (hootd exits 3 there: HootdPowerLoss checks it), and the in-process server refuses what
// waited for the failed commit and everything after, acknowledging none of it.
TEST(DiskFaults, AFailedFdatasyncAcknowledgesNothingMoreAndTellsTheProcess) {
  std::atomic<bool> failing{false};
  std::atomic<int> failures{0};
  std::string failure_text;
  core::ServerOptions options = InProcessOptions("sync-fails");
  options.wrap_storage = [&](unsigned, std::unique_ptr<log::Storage> inner) {
    return std::unique_ptr<log::Storage>(new FailingSyncStorage(std::move(inner), &failing));
  };
  options.on_log_failure = [&](unsigned, const absl::Status& status) {
    if (failures++ == 0) failure_text = std::string(status.message());
  };
  auto server = core::Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto ada = Connect(**server, "ada");
  ASSERT_TRUE(ada);
  ASSERT_TRUE(ada->CreateChannel("g", proto::Visibility::kPublic).ok());
  ASSERT_TRUE(ada->Send("g", 1, "durable").ok());
  failing = true;
  auto sent = ada->Send("g", 2, "never durable");
  ASSERT_FALSE(sent.ok()) << "acknowledged a message whose commit failed";
  EXPECT_EQ(client::ServerErrorCode(sent.status()), proto::ErrorCode::kStorageFailed)
      << sent.status();
  EXPECT_EQ(failures.load(), 1);
  EXPECT_NE(failure_text.find("journal write+fdatasync"), std::string::npos) << failure_text;
  failing = false;  // The disk is fine again; the log still refuses (the page cache may lie).
  auto after = ada->Send("g", 3, "after the failure");
  ASSERT_FALSE(after.ok());
  EXPECT_EQ(client::ServerErrorCode(after.status()), proto::ErrorCode::kStorageFailed);
  (void)(*server)->Stop();
}

}  // namespace
}  // namespace hoot::testing
