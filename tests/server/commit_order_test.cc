// The one rule, asserted without timing: while the journal's write+fdatasync of a commit is
// held back (by a storage wrapper around the real io_uring storage), the sender gets no
// acknowledgement and no subscriber gets the message. Once the sync is let through, both come.
#include <poll.h>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <mutex>
#include <thread>

#include "client/client.h"
#include "core/server.h"
#include "tests/server/gated_storage.h"
#include "tests/server/hootd_process.h"
#include "tests/server/in_process_options.h"
#include "tests/server/raw_client.h"

namespace hoot::testing {
namespace {

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

  core::ServerOptions options = InProcessOptions("commit-order", kShards);
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

// PROTOCOL.md 5.4: once the server is stopping, a request it receives is answered
// shutting_down with that request's own correlation id and has no effect; a send it had read
// before is finished. Here the stop waits on a held commit, so the order is certain.
TEST(CommitOrder, ASendReceivedDuringTheStopIsRefusedWithItsOwnIdAndNotAppended) {
  std::atomic<bool> closed{false};
  std::atomic<int> held{0};
  GatedStorage* gate = nullptr;
  core::ServerOptions options = InProcessOptions("send-during-stop");
  core::ServerOptions gated_options = options;
  gated_options.wrap_storage = [&](unsigned, std::unique_ptr<log::Storage> inner) {
    auto gated = std::make_unique<GatedStorage>(std::move(inner), &closed, &held);
    gate = gated.get();
    return std::unique_ptr<log::Storage>(std::move(gated));
  };
  auto server = core::Server::Start(gated_options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto token = (*server)->signer().Mint("ada", std::time(nullptr) + 600);
  auto raw = RawClient::Connect((*server)->port(), token);
  ASSERT_NE(raw, nullptr);
  ASSERT_TRUE(raw->session().CreateChannel("close", proto::Visibility::kPublic).ok());
  ASSERT_TRUE(raw->Exchange(1));
  raw->frames().clear();

  closed = true;
  auto first = raw->session().Send("close", 1, "read before the stop");
  ASSERT_TRUE(first.ok());
  ASSERT_TRUE(raw->Flush());
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (held.load() == 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  ASSERT_GT(held.load(), 0) << "the first send's commit never reached the storage";

  // The stop waits for that commit; it has begun once the server refuses new connections.
  std::thread stopping([&] { EXPECT_TRUE((*server)->Stop().ok()); });
  bool refusing = false;
  while (!refusing && std::chrono::steady_clock::now() < deadline) {
    int fd = ConnectLoopback((*server)->port());
    refusing = fd < 0;
    if (fd >= 0) ::close(fd);
    if (!refusing) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ASSERT_TRUE(refusing) << "the server never began to stop";

  auto second = raw->session().Send("close", 2, "received during the stop");
  ASSERT_TRUE(second.ok());
  ASSERT_TRUE(raw->Flush());
  bool refused = false;
  raw->ReadUntil([&] {
    for (const client::Incoming& frame : raw->frames()) {
      if (frame.correlation_id != *second) continue;
      EXPECT_EQ(frame.type, proto::MessageType::kError);
      if (frame.type == proto::MessageType::kError) {
        EXPECT_EQ(std::get<proto::Error>(frame.message).code, proto::ErrorCode::kShuttingDown);
      }
      refused = true;
    }
    return refused;
  });
  EXPECT_TRUE(refused) << "the send received during the stop got no answer of its own";

  closed = false;
  (*server)->runtime().RunOnShard(0, [&] { gate->Release(); });
  stopping.join();
  raw.reset();
  server->reset();  // Releases the data directory.

  // After a restart: the send read before the stop is there, the refused one is not.
  auto again = core::Server::Start(options);
  ASSERT_TRUE(again.ok()) << again.status();
  client::ConnectOptions connect_options;
  connect_options.port = (*again)->port();
  connect_options.token = (*again)->signer().Mint("ada", std::time(nullptr) + 600);
  auto reader = client::Client::Connect(connect_options);
  ASSERT_TRUE(reader.ok()) << reader.status();
  auto history = (*reader)->FetchHistory("close", 0, 0, proto::Direction::kForward, 100);
  ASSERT_TRUE(history.ok()) << history.status();
  const auto& records = std::get<client::History>(*history).records;
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].body, "read before the stop");
  reader->reset();
  EXPECT_TRUE((*again)->Stop().ok());
}

}  // namespace
}  // namespace hoot::testing
