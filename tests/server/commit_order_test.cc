// The one rule, asserted without timing: while the journal's write+fdatasync of a commit is
// held back (by a storage wrapper around the real io_uring storage), the sender gets no
// acknowledgement and no subscriber gets the message. Once the sync is let through, both come.
#include <poll.h>

#include <gtest/gtest.h>

#include <atomic>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "client/client.h"
#include "core/server.h"
#include "tests/server/forwarding_storage.h"
#include "tests/server/hootd_process.h"

namespace hoot::testing {
namespace {

// Holds every journal WriteThenSync while the gate is closed.
class GatedStorage : public ForwardingStorage {
 public:
  GatedStorage(std::unique_ptr<log::Storage> inner, std::atomic<bool>* closed,
               std::atomic<int>* held)
      : ForwardingStorage(std::move(inner)), closed_(closed), held_count_(held) {}

  absl::StatusOr<log::FileHandle> Open(const std::string& path, bool create) override {
    auto file = inner().Open(path, create);
    if (file.ok() && path.find("/journal/") != std::string::npos) journal_files_.insert(*file);
    return file;
  }
  void Close(log::FileHandle file) override {
    journal_files_.erase(file);
    inner().Close(file);
  }
  void WriteThenSync(log::FileHandle file, uint64_t offset, std::string_view data,
                     log::IoCallback done) override {
    if (closed_->load() && journal_files_.count(file)) {
      held_.push_back({file, offset, data, std::move(done)});
      held_count_->fetch_add(1);
      return;
    }
    inner().WriteThenSync(file, offset, data, std::move(done));
  }
  size_t in_flight() const override { return ForwardingStorage::in_flight() + held_.size(); }

  // On the shard's thread: lets the held commits go to the disk.
  void Release() {
    std::deque<Held> held;
    held.swap(held_);
    for (Held& op : held) inner().WriteThenSync(op.file, op.offset, op.data, std::move(op.done));
  }

 private:
  struct Held {
    log::FileHandle file;
    uint64_t offset;
    std::string_view data;
    log::IoCallback done;
  };
  std::atomic<bool>* closed_;
  std::atomic<int>* held_count_;
  std::set<log::FileHandle> journal_files_;
  std::deque<Held> held_;
};

bool NothingToRead(int fd, int wait_ms) {
  pollfd poll_fd{fd, POLLIN, 0};
  return ::poll(&poll_fd, 1, wait_ms) == 0;
}

TEST(CommitOrder, NoAcknowledgementAndNoPushBeforeTheCommit) {
  constexpr unsigned kShards = 2;
  std::atomic<bool> closed{false};
  std::atomic<int> held{0};
  std::mutex mutex;
  std::vector<GatedStorage*> gates(kShards, nullptr);

  core::ServerOptions options;
  options.port = 0;
  options.data_directory = FreshDirectory("commit-order");
  options.shards = kShards;
  options.pin_shards = false;
  options.journal_file_bytes = 4u << 20;
  options.segment_bytes = 4u << 20;
  options.wrap_storage = [&](unsigned shard, std::unique_ptr<log::Storage> inner) {
    auto gated = std::make_unique<GatedStorage>(std::move(inner), &closed, &held);
    std::lock_guard<std::mutex> lock(mutex);
    gates[shard] = gated.get();
    return std::unique_ptr<log::Storage>(std::move(gated));
  };
  auto server = core::Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto connect = [&](const std::string& user) {
    client::ConnectOptions connect_options;
    connect_options.port = (*server)->port();
    connect_options.token = (*server)->signer().Mint(user, std::time(nullptr) + 600);
    auto client = client::Client::Connect(connect_options);
    EXPECT_TRUE(client.ok()) << client.status();
    return client.ok() ? std::move(*client) : nullptr;
  };
  auto ada = connect("ada");
  auto bo = connect("bo");
  ASSERT_TRUE(ada && bo);
  // Channels on both shards, so that each shard's commit is held in turn.
  for (std::string channel : {"general", "desk-fx", "desk-rates", "ops"}) {
    auto info = ada->CreateChannel(channel, proto::Visibility::kPublic);
    ASSERT_TRUE(info.ok()) << info.status();
    ASSERT_TRUE(bo->Join(channel).ok());
    auto subscribed = bo->Subscribe(channel, info->epoch, 0);
    ASSERT_TRUE(subscribed.ok() && std::holds_alternative<client::Subscribed>(*subscribed));

    int held_before = held.load();
    closed = true;
    auto correlation = ada->SendAsync(channel, 1, "filed before delivered");
    ASSERT_TRUE(correlation.ok());
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (held.load() == held_before && std::chrono::steady_clock::now() < deadline) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    ASSERT_GT(held.load(), held_before) << "the commit never reached the storage";
    // The message is appended and its commit is waiting on the disk: nothing may have been
    // sent to anyone.
    // (The clients hold nothing read earlier either: the request is still in flight and no
    // push is queued.)
    EXPECT_TRUE(NothingToRead(ada->fd(), 200)) << channel << ": acknowledged before durable";
    EXPECT_TRUE(NothingToRead(bo->fd(), 50)) << channel << ": pushed before durable";
    EXPECT_TRUE(ada->session().request_in_flight(*correlation).has_value());
    EXPECT_EQ(bo->pushes_queued(), 0u);

    closed = false;
    for (unsigned shard = 0; shard < kShards; ++shard) {
      (*server)->runtime().RunOnShard(shard, [&, shard] { gates[shard]->Release(); });
    }
    auto sent = ada->WaitSent(*correlation);
    ASSERT_TRUE(sent.ok()) << sent.status();
    EXPECT_EQ(sent->seq, 1u);
    auto push = bo->NextPush(std::chrono::milliseconds(5000));
    ASSERT_TRUE(push.ok() && push->has_value());
    EXPECT_EQ(std::get<client::Message>(**push).record.seq, 1u);
  }
  EXPECT_TRUE((*server)->Stop().ok());
}

}  // namespace
}  // namespace hoot::testing
