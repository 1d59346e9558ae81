// Every queue a shard keeps beyond the per-connection bound has a bound of its own
// (--max-queued-requests, PROTOCOL.md §4): appends waiting for journal room, metadata changes
// waiting for their commit, and requests waiting for room in a full ring to another shard.
// Each test holds a real server at one of them (commits held back, or the owner's thread
// stopped), pipelines past the bound, and checks that what lies past it is answered busy at
// once with nothing done, and that everything within it is answered normally afterwards.
#include <poll.h>

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <ctime>
#include <functional>
#include <future>
#include <mutex>
#include <string>
#include <vector>

#include "core/chat_shard.h"
#include "core/server.h"
#include "core/shard.h"
#include "tests/server/gated_storage.h"
#include "tests/server/hootd_process.h"
#include "tests/server/in_process_options.h"
#include "tests/server/raw_client.h"

namespace hoot::testing {
namespace {

constexpr size_t kQueuedMax = 32;

std::string Token(core::Server& server, const std::string& user) {
  return server.signer().Mint(user, std::time(nullptr) + 600);
}

// One shard whose journal commits are held while `closed` is set.
struct GatedServer {
  std::atomic<bool> closed{false};
  std::atomic<int> held{0};
  std::mutex mutex;
  GatedStorage* gate = nullptr;
  std::unique_ptr<core::Server> server;

  // A test that failed with commits held lets them go, or the server could not stop.
  ~GatedServer() {
    if (server != nullptr && closed) Open();
  }

  bool Start(const std::string& name) {
    core::ServerOptions options = InProcessOptions(name);
    options.send_rate_per_user = 0;
    options.requests_in_flight_per_connection_max = 1000000;
    options.requests_queued_per_shard_max = kQueuedMax;
    options.journal_file_bytes = 1u << 20;  // A pending batch of at most 512 KiB.
    options.wrap_storage = [this](unsigned, std::unique_ptr<log::Storage> inner) {
      auto gated = std::make_unique<GatedStorage>(std::move(inner), &closed, &held);
      std::lock_guard<std::mutex> lock(mutex);
      gate = gated.get();
      return std::unique_ptr<log::Storage>(std::move(gated));
    };
    auto started = core::Server::Start(options);
    if (!started.ok()) {
      ADD_FAILURE() << started.status();
      return false;
    }
    server = std::move(*started);
    return true;
  }
  // Ada, connected raw, with `channel` created and its answer read.
  std::unique_ptr<RawClient> AdaWithChannel(const std::string& channel,
                                            proto::Visibility visibility) {
    auto raw = RawClient::Connect(server->port(), Token(*server, "ada"));
    if (raw == nullptr || !raw->session().CreateChannel(channel, visibility).ok() ||
        !raw->Exchange(1)) {
      ADD_FAILURE() << "ada could not create " << channel;
      return nullptr;
    }
    raw->frames().clear();
    return raw;
  }
  void Open() {
    closed = false;
    server->runtime().RunOnShard(0, [this] { gate->Release(); });
  }
};

bool IsBusy(const client::Incoming& frame) {
  return frame.type == proto::MessageType::kError &&
         std::get<proto::Error>(frame.message).code == proto::ErrorCode::kBusy;
}

// Reads until the answer to `correlation` has come.
bool ReadUntilAnswered(RawClient& raw, uint32_t correlation) {
  return raw.ReadUntil([&] {
    for (const client::Incoming& frame : raw.frames()) {
      if (frame.correlation_id == correlation) return true;
    }
    return false;
  });
}

// The answers to `correlations` (written in that order) once all have come: the first ones
// of `ok_type`, then only busy ones. Returns how many were answered `ok_type`.
size_t AnsweredThenBusy(RawClient& raw, const std::vector<uint32_t>& correlations,
                        proto::MessageType ok_type) {
  EXPECT_TRUE(raw.ReadUntil([&] { return raw.frames().size() >= correlations.size(); }))
      << raw.frames().size() << " of " << correlations.size() << " answers came";
  std::vector<const client::Incoming*> by_request(correlations.size(), nullptr);
  for (const client::Incoming& frame : raw.frames()) {
    for (size_t i = 0; i < correlations.size(); ++i) {
      if (correlations[i] == frame.correlation_id) by_request[i] = &frame;
    }
  }
  size_t ok = 0;
  while (ok < by_request.size() && by_request[ok] != nullptr && by_request[ok]->type == ok_type) {
    ++ok;
  }
  for (size_t i = ok; i < by_request.size(); ++i) {
    EXPECT_TRUE(by_request[i] != nullptr && IsBusy(*by_request[i]))
        << "request " << i << " of " << by_request.size() << " after " << ok
        << " answered normally is neither answered normally nor busy";
  }
  return ok;
}

// With the server held (commits or an owner's thread), writes the `count` requests `encode`
// makes and reads until the last is answered: everything answered while held must be busy.
// Then `release` lets the server go on. Returns how many were answered `ok_type` (the first
// ones; the rest were busy).
size_t PipelinePastTheBound(RawClient& raw, size_t count,
                            const std::function<absl::StatusOr<uint32_t>(size_t)>& encode,
                            const std::function<void()>& release, proto::MessageType ok_type) {
  std::vector<uint32_t> correlations;
  for (size_t i = 0; i < count; ++i) {
    auto correlation = encode(i);
    EXPECT_TRUE(correlation.ok()) << correlation.status();
    if (!correlation.ok()) return 0;
    correlations.push_back(*correlation);
  }
  EXPECT_TRUE(raw.Flush());
  EXPECT_TRUE(ReadUntilAnswered(raw, correlations.back()));
  size_t refused_while_held = raw.frames().size();
  for (const client::Incoming& frame : raw.frames()) EXPECT_TRUE(IsBusy(frame));
  release();
  size_t ok = AnsweredThenBusy(raw, correlations, ok_type);
  EXPECT_EQ(ok + refused_while_held, count) << "answered busy after the hold ended";
  EXPECT_LT(ok, count) << "nothing was refused: the queue has no bound";
  if (ok_type == proto::MessageType::kSent) {
    for (size_t i = 0; i < ok; ++i) {
      for (const client::Incoming& frame : raw.frames()) {
        if (frame.correlation_id != correlations[i]) continue;
        EXPECT_EQ(std::get<proto::Sent>(frame.message).seq, i + 1);
      }
    }
  }
  return ok;
}

TEST(QueueBounds, AppendsWaitingForJournalRoomStopAtTheBound) {
  GatedServer gated;
  ASSERT_TRUE(gated.Start("queue-bounds-journal"));
  auto raw = gated.AdaWithChannel("desk", proto::Visibility::kPublic);
  ASSERT_NE(raw, nullptr);

  // With commits held, 16 KiB sends fill the pending batch (about 31 of them), the next
  // kQueuedMax wait for journal room, and the rest are answered busy.
  constexpr size_t kSends = 200;
  gated.closed = true;
  size_t sent = PipelinePastTheBound(
      *raw, kSends,
      [&](size_t i) { return raw->session().Send("desk", i + 1, std::string(16 << 10, 'j')); },
      [&] { gated.Open(); }, proto::MessageType::kSent);
  EXPECT_GT(sent, kQueuedMax) << "the waiting appends were not all kept";
  std::printf("%zu of %zu sends acknowledged, %zu refused busy (queue bound %zu)\n", sent, kSends,
              kSends - sent, kQueuedMax);

  // Nothing refused was appended: the next send follows the acknowledged ones.
  raw->frames().clear();
  ASSERT_TRUE(raw->session().Send("desk", kSends + 1, "after").ok());
  ASSERT_TRUE(raw->Exchange(1));
  ASSERT_EQ(raw->frames()[0].type, proto::MessageType::kSent);
  EXPECT_EQ(std::get<proto::Sent>(raw->frames()[0].message).seq, sent + 1);
  raw.reset();
  EXPECT_TRUE(gated.server->Stop().ok());
}

TEST(QueueBounds, MetadataChangesWaitingForTheirCommitStopAtTheBound) {
  GatedServer gated;
  ASSERT_TRUE(gated.Start("queue-bounds-meta"));
  auto raw = gated.AdaWithChannel("board", proto::Visibility::kPrivate);
  ASSERT_NE(raw, nullptr);

  // Each invitation of a new user is a metadata change answered after its commit.
  constexpr size_t kInvites = 100;
  gated.closed = true;
  size_t invited = PipelinePastTheBound(
      *raw, kInvites,
      [&](size_t i) { return raw->session().Invite("board", "guest" + std::to_string(i)); },
      [&] { gated.Open(); }, proto::MessageType::kOk);
  EXPECT_EQ(invited, kQueuedMax) << "metadata changes waiting for one commit";
  std::printf("%zu of %zu invitations made, %zu refused busy (queue bound %zu)\n", invited,
              kInvites, kInvites - invited, kQueuedMax);

  // A refused invitation was not made: its guest cannot join; an accepted one can.
  auto guest_joins = [&](size_t i) {
    auto guest = RawClient::Connect(gated.server->port(),
                                    Token(*gated.server, "guest" + std::to_string(i)));
    EXPECT_NE(guest, nullptr);
    if (guest == nullptr) return false;
    EXPECT_TRUE(guest->session().Join("board").ok());
    EXPECT_TRUE(guest->Exchange(1));
    return guest->frames()[0].type == proto::MessageType::kChannelInfo;
  };
  EXPECT_TRUE(guest_joins(0));
  EXPECT_TRUE(guest_joins(invited - 1));
  EXPECT_FALSE(guest_joins(invited));
  EXPECT_FALSE(guest_joins(kInvites - 1));
  raw.reset();
  EXPECT_TRUE(gated.server->Stop().ok());
}

// Stops one shard's thread (a task that waits on it) until Release.
class ShardStopper {
 public:
  explicit ShardStopper(core::Runtime& runtime) : runtime_(runtime) {}
  ~ShardStopper() { Release(); }
  void Stop(unsigned shard) {
    release_ = std::promise<void>();
    std::promise<void> entered;
    auto entered_future = entered.get_future();
    std::shared_future<void> release = release_.get_future().share();
    runtime_.RunOnShard(shard, [&entered, release] {
      entered.set_value();
      release.wait();
    });
    entered_future.wait();
    stopped_ = true;
  }
  void Release() {
    if (stopped_) release_.set_value();
    stopped_ = false;
  }

 private:
  core::Runtime& runtime_;
  std::promise<void> release_;
  bool stopped_ = false;
};

TEST(QueueBounds, RequestsWaitingForRoomInAFullRingStopAtTheBound) {
  constexpr unsigned kShards = 2;
  core::ServerOptions options = InProcessOptions("queue-bounds-ring", kShards);
  options.send_rate_per_user = 0;
  options.requests_in_flight_per_connection_max = 1000000;
  options.requests_queued_per_shard_max = kQueuedMax;
  auto server = core::Server::Start(options);
  ASSERT_TRUE(server.ok()) << server.status();
  auto raw = RawClient::Connect((*server)->port(), Token(**server, "ada"));
  ASSERT_NE(raw, nullptr);
  // A channel owned by each shard.
  std::vector<std::string> channel_of(kShards);
  for (int i = 0; std::find(channel_of.begin(), channel_of.end(), "") != channel_of.end(); ++i) {
    std::string name = "desk-" + std::to_string(i);
    std::string& slot = channel_of[core::OwnerOf(name, kShards)];
    if (!slot.empty()) continue;
    slot = name;
    ASSERT_TRUE(raw->session().CreateChannel(name, proto::Visibility::kPublic).ok());
    ASSERT_TRUE(raw->Exchange(1));
    ASSERT_EQ(raw->frames()[0].type, proto::MessageType::kChannelInfo);
    raw->frames().clear();
  }

  // Stop the shard that is not this connection's gateway: one that, stopped, still lets a
  // PING be answered.
  ShardStopper stopper((*server)->runtime());
  int owner = -1;
  for (unsigned shard = 0; shard < kShards && owner < 0; ++shard) {
    stopper.Stop(shard);
    ASSERT_TRUE(raw->session().Ping(shard + 1).ok());
    ASSERT_TRUE(raw->Flush());
    pollfd poll_fd{raw->fd(), POLLIN, 0};
    if (::poll(&poll_fd, 1, 500) == 1) {
      owner = static_cast<int>(shard);
    } else {
      stopper.Release();
    }
    ASSERT_TRUE(raw->ReadUntil([&] { return !raw->frames().empty(); }));
    ASSERT_EQ(raw->frames()[0].type, proto::MessageType::kPong);
    raw->frames().clear();
  }
  ASSERT_GE(owner, 0) << "no shard could be stopped with the gateway still answering";

  // The ring to the stopped owner takes its capacity, the overflow kQueuedMax more; the rest
  // are refused by the gateway at once.
  const size_t ring_capacity = core::RuntimeOptions{}.mesh_ring_capacity;
  const size_t sends = ring_capacity + kQueuedMax + 300;
  size_t sent = PipelinePastTheBound(
      *raw, sends, [&](size_t i) { return raw->session().Send(channel_of[owner], i + 1, "r"); },
      [&] { stopper.Release(); }, proto::MessageType::kSent);
  EXPECT_LE(sent, ring_capacity + kQueuedMax) << "the overflow queue went past its bound";
  EXPECT_GE(sent, kQueuedMax);
  std::printf("%zu of %zu sends acknowledged, %zu refused busy (ring %zu, overflow bound %zu)\n",
              sent, sends, sends - sent, ring_capacity, kQueuedMax);
  raw.reset();
  EXPECT_TRUE((*server)->Stop().ok());
}

}  // namespace
}  // namespace hoot::testing
