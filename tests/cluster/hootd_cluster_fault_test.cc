// The cluster under faults (docs/CLUSTER.md): a retrying sender and a resubscribing reader
// through two gateways while nodes are killed (the kill loop: HOOT_CLUSTER_KILL_CYCLES cycles,
// default 6; `make soak` runs more) or their links are cut mid-stream. Nothing acknowledged is
// lost, nothing has a gap.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "auth/token.h"
#include "base/parse.h"
#include "client/client.h"
#include "tests/cluster/cutting_proxy.h"
#include "tests/cluster/hootd_cluster.h"
#include "tests/loopback.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;

// A client of the cluster that moves on to the next gateway when its connection fails, and
// retries what was refused retryably (owner_unavailable), within a deadline.
class ClusterClient {
 public:
  ClusterClient(const auth::TokenSigner& signer, std::string user,
                std::vector<base::HostPort> gateways)
      : signer_(signer), user_(std::move(user)), gateways_(std::move(gateways)) {}

  // The connected client, connecting first if it has none.
  client::Client* Get() {
    if (client_ == nullptr) {
      client::ConnectOptions options;
      options.token = signer_.Mint(user_, static_cast<int64_t>(std::time(nullptr)) + 3600);
      options.client_name = "cluster-kill-loop";
      options.timeout = milliseconds(3000);
      auto connected = client::Client::ConnectToAny(options, gateways_, &next_);
      if (!connected.ok()) return nullptr;
      client_ = std::move(*connected);
      ++connections;
    }
    return client_.get();
  }
  void Drop() {
    client_.reset();
    next_ = (next_ + 1) % gateways_.size();
  }
  // Runs `call` until it succeeds or fails for good: a connection failure reconnects, a
  // retryable refusal waits a moment; both try again until the deadline.
  template <typename Call>
  auto Retrying(Call call, milliseconds within = milliseconds(30000)) {
    auto deadline = std::chrono::steady_clock::now() + within;
    for (;;) {
      client::Client* client = Get();
      if (client != nullptr) {
        auto result = call(*client);
        if (result.ok() || std::chrono::steady_clock::now() >= deadline) return result;
        if (client::IsConnectionFailure(result.status())) {
          Drop();
        } else if (!absl::IsUnavailable(result.status())) {
          return result;  // Not retryable: the caller sees why.
        }
      } else if (std::chrono::steady_clock::now() >= deadline) {
        return decltype(call(*client))(absl::UnavailableError("no gateway answers"));
      }
      std::this_thread::sleep_for(milliseconds(50));
    }
  }

  uint64_t connections = 0;

 private:
  const auth::TokenSigner& signer_;
  std::string user_;
  std::vector<base::HostPort> gateways_;
  size_t next_ = 0;
  std::unique_ptr<client::Client> client_;
};

// Traffic through the cluster while it is being broken: a sender that retries each message
// with its id until it is acknowledged, and a reader subscribed to every channel that
// subscribes again after its last seq whenever its subscription ends or its connection fails.
// Check() then reads every channel's log back.
class Traffic {
 public:
  Traffic(const auth::TokenSigner& signer, std::vector<base::HostPort> gateways,
          std::vector<std::string> channels, std::map<std::string, uint64_t> epochs)
      : signer_(signer),
        sender_(signer, "ada", gateways),
        reader_(signer, "bo", gateways),
        gateways_(std::move(gateways)),
        channels_(std::move(channels)),
        epochs_(std::move(epochs)) {
    send_thread_ = std::thread([this] { Send(); });
    read_thread_ = std::thread([this] { Read(); });
  }
  ~Traffic() { Stop(); }

  struct Outcome {
    uint64_t acknowledged = 0;
    uint64_t lost = 0;           // Acknowledged, but not in the log at its seq.
    uint64_t gaps = 0;           // Seqs the reader missed, got twice or out of order.
    uint64_t send_failures = 0;  // Sends that were never acknowledged (30 s of retries).
    uint64_t resubscriptions = 0;
    uint64_t sender_connections = 0;
    std::string error;
  };

  // Stops sending, lets the reader catch up with every acknowledged seq, then stops it and
  // reads every channel's log (as a third user, from seq 1).
  Outcome Finish() {
    stop_sending_.store(true);
    if (send_thread_.joinable()) send_thread_.join();
    std::map<std::string, uint64_t> heads;
    for (const auto& [channel, seqs] : acked_)
      heads[channel] = seqs.empty() ? 0 : seqs.rbegin()->first;
    Eventually(
        [&] {
          std::lock_guard lock(reader_mutex_);
          for (const auto& [channel, head] : heads) {
            if (last_[channel] < head) return false;
          }
          return true;
        },
        milliseconds(20000));
    Stop();
    Outcome outcome;
    outcome.gaps = gaps_;
    outcome.send_failures = send_failures_;
    outcome.resubscriptions = resubscriptions_;
    outcome.sender_connections = sender_.connections;
    outcome.error = error_;
    ClusterClient cy(signer_, "cy", gateways_);
    for (const std::string& channel : channels_) {
      outcome.acknowledged += acked_[channel].size();
      std::map<uint64_t, std::string> log = ReadLog(cy, channel);
      for (const auto& [seq, id] : acked_[channel]) {
        auto found = log.find(seq);
        if (found == log.end() || found->second != "m" + std::to_string(id)) ++outcome.lost;
      }
      std::set<std::string> bodies;
      for (const auto& [seq, body] : log) {
        if (!bodies.insert(body).second) outcome.error += " " + body + " twice in " + channel;
      }
    }
    return outcome;
  }

 private:
  void Stop() {
    stop_sending_.store(true);
    stop_reading_.store(true);
    if (send_thread_.joinable()) send_thread_.join();
    if (read_thread_.joinable()) read_thread_.join();
  }

  void Send() {
    for (uint64_t id = 1; !stop_sending_.load(); ++id) {
      const std::string& channel = channels_[id % channels_.size()];
      auto sent = sender_.Retrying(
          [&](client::Client& c) { return c.Send(channel, id, "m" + std::to_string(id)); });
      if (!sent.ok()) {
        ++send_failures_;
        error_ = std::string(sent.status().message());
        continue;
      }
      auto [at, fresh] = acked_[channel].emplace(sent->seq, id);
      if (!fresh && at->second != id) {
        error_ += " " + channel + " seq " + std::to_string(sent->seq) + " acknowledged twice";
      }
    }
  }

  void Read() {
    std::set<std::string> live;
    while (!stop_reading_.load()) {
      client::Client* client = reader_.Get();
      if (client == nullptr) {
        std::this_thread::sleep_for(milliseconds(50));
        continue;
      }
      for (const std::string& channel : channels_) {
        if (live.count(channel)) continue;
        uint64_t after = 0;
        {
          std::lock_guard lock(reader_mutex_);
          after = last_[channel];
        }
        auto subscribed = client->Subscribe(channel, after ? epochs_[channel] : 0, after);
        if (subscribed.ok()) {
          live.insert(channel);
          ++resubscriptions_;
        } else if (client::IsConnectionFailure(subscribed.status())) {
          break;
        }
      }
      auto push = client->NextPush(milliseconds(100));
      if (!push.ok()) {
        reader_.Drop();
        live.clear();
        continue;
      }
      if (!push->has_value()) continue;
      if (const auto* message = std::get_if<client::Message>(&**push)) {
        std::lock_guard lock(reader_mutex_);
        uint64_t& seen = last_[message->channel];
        if (message->record.seq != seen + 1) ++gaps_;  // Missed, twice, or out of order.
        seen = std::max(seen, message->record.seq);
      } else if (const auto* ended = std::get_if<client::SubscriptionEnded>(&**push)) {
        live.erase(ended->channel);
      } else {
        ++gaps_;  // A reset or a lag notice: not what a healthy cluster sends here.
      }
    }
  }

  // The channel's whole log, seq -> body, through a subscription from seq 1.
  static std::map<uint64_t, std::string> ReadLog(ClusterClient& reader,
                                                 const std::string& channel) {
    std::map<uint64_t, std::string> log;
    auto joined = reader.Retrying([&](client::Client& c) { return c.Join(channel); });
    client::Client* client = reader.Get();
    if (!joined.ok() || client == nullptr) return log;
    auto subscribed = client->Subscribe(channel, 0, 0);
    const auto* head = subscribed.ok() ? std::get_if<client::Subscribed>(&*subscribed) : nullptr;
    if (head == nullptr) return log;
    while (log.size() < head->head_seq) {
      auto push = client->NextPush(milliseconds(5000));
      if (!push.ok() || !push->has_value()) break;
      if (const auto* message = std::get_if<client::Message>(&**push)) {
        log[message->record.seq] = message->record.body;
      }
    }
    return log;
  }

  const auth::TokenSigner& signer_;
  ClusterClient sender_;
  ClusterClient reader_;
  std::vector<base::HostPort> gateways_;
  std::vector<std::string> channels_;
  std::map<std::string, uint64_t> epochs_;
  std::atomic<bool> stop_sending_{false};
  std::atomic<bool> stop_reading_{false};
  // The sender's, read once it has stopped.
  std::map<std::string, std::map<uint64_t, uint64_t>> acked_;  // channel -> seq -> id
  uint64_t send_failures_ = 0;
  std::string error_;
  // The reader's.
  std::mutex reader_mutex_;  // Guards last_ for Finish.
  std::map<std::string, uint64_t> last_;
  uint64_t gaps_ = 0;
  uint64_t resubscriptions_ = 0;
  std::thread send_thread_;
  std::thread read_thread_;
};

// Creates `count` channels through the gateways, with Bo a member of each.
void CreateChannels(const auth::TokenSigner& signer, const std::vector<base::HostPort>& gateways,
                    int count, std::vector<std::string>* channels,
                    std::map<std::string, uint64_t>* epochs) {
  ClusterClient ada(signer, "ada", gateways);
  ClusterClient bo(signer, "bo", gateways);
  for (int i = 0; i < count; ++i) {
    std::string channel = "desk-" + std::to_string(i);
    auto created = ada.Retrying(
        [&](client::Client& c) { return c.CreateChannel(channel, proto::Visibility::kPublic); });
    ASSERT_TRUE(created.ok()) << created.status();
    auto joined = bo.Retrying([&](client::Client& c) { return c.Join(channel); });
    ASSERT_TRUE(joined.ok()) << joined.status();
    channels->push_back(channel);
    (*epochs)[channel] = created->epoch;
  }
}

void ExpectClean(const Traffic::Outcome& outcome) {
  EXPECT_EQ(outcome.lost, 0u);
  EXPECT_EQ(outcome.gaps, 0u);
  EXPECT_EQ(outcome.send_failures, 0u) << outcome.error;
  EXPECT_TRUE(outcome.error.empty()) << outcome.error;
  EXPECT_GT(outcome.acknowledged, 0u);
}

TEST_F(HootdClusterTest, AKillLoopOverGatewaysAndOwnersLosesNothingAcknowledgedAndLeavesNoGap) {
  int cycles = 6;
  if (const char* env = std::getenv("HOOT_CLUSTER_KILL_CYCLES")) cycles = std::atoi(env);
  struct Node {
    std::string role;
    std::string id;
    uint16_t port = 0;  // A gateway's, kept across restarts: clients know it.
    std::unique_ptr<HootdProcess> process;
  };
  std::vector<Node> nodes(4);
  nodes[0].role = nodes[1].role = "owner";
  nodes[2].role = nodes[3].role = "gateway";
  nodes[0].id = "owner-a";
  nodes[1].id = "owner-b";
  nodes[2].id = "gateway-a";
  nodes[3].id = "gateway-b";
  nodes[2].port = FreeLoopbackPort();
  nodes[3].port = FreeLoopbackPort();
  auto start = [&](Node& node, bool fresh) {
    HootdProcess::Options options;
    if (fresh) directories_[node.id] = FreshDirectory("kill-" + node.id);
    options.data_directory = directories_[node.id];
    // Gateways of two shards: each owner's link lives on one, and calls and pages cross.
    options.shards = node.role == "gateway" ? 2 : 1;
    options.extra_flags = NodeFlags(node.role, node.id);
    if (node.port != 0) options.listen = "127.0.0.1:" + std::to_string(node.port);
    auto started = HootdProcess::Start(options);
    ASSERT_TRUE(started.ok()) << node.id << ": " << started.status();
    node.process = std::move(*started);
  };
  for (Node& node : nodes) {
    start(node, /*fresh=*/true);
    ASSERT_NE(node.process, nullptr);
  }
  auto all_linked = [&] { return Linked(*nodes[2].process, 2) && Linked(*nodes[3].process, 2); };
  ASSERT_TRUE(all_linked());
  std::vector<base::HostPort> gateways = {{"127.0.0.1", nodes[2].port},
                                          {"127.0.0.1", nodes[3].port}};
  std::vector<std::string> channels;
  std::map<std::string, uint64_t> epochs;
  CreateChannels(*signer_, gateways, 4, &channels, &epochs);
  ASSERT_EQ(channels.size(), 4u);

  Traffic traffic(*signer_, gateways, channels, epochs);
  std::mt19937 random(20261207);
  std::map<std::string, int> kills;
  for (int cycle = 0; cycle < cycles; ++cycle) {
    std::this_thread::sleep_for(milliseconds(800));
    Node& victim = nodes[random() % nodes.size()];
    victim.process->Kill();
    ++kills[victim.role];
    // etcd lets the dead node's lease go before a process may take its id again.
    ASSERT_TRUE(Eventually([&] { return !NodeAlive(victim.id); }, milliseconds(15000)));
    start(victim, /*fresh=*/false);
    ASSERT_NE(victim.process, nullptr);
    ASSERT_TRUE(all_linked()) << "cycle " << cycle;
  }
  std::this_thread::sleep_for(milliseconds(500));
  Traffic::Outcome outcome = traffic.Finish();
  std::printf(
      "cluster kill loop: %d cycles, killed %d gateway and %d owner nodes; %lu "
      "acknowledged, lost %lu, gaps %lu, resubscriptions %lu, sender connections %lu, "
      "sends never acknowledged %lu\n",
      cycles, kills["gateway"], kills["owner"], static_cast<unsigned long>(outcome.acknowledged),
      static_cast<unsigned long>(outcome.lost), static_cast<unsigned long>(outcome.gaps),
      static_cast<unsigned long>(outcome.resubscriptions),
      static_cast<unsigned long>(outcome.sender_connections),
      static_cast<unsigned long>(outcome.send_failures));
  ExpectClean(outcome);
  for (Node& node : nodes) EXPECT_EQ(node.process->Stop(), 0) << node.id;
}

// Links that drop mid-stream: the owner's links pass through a proxy that cuts each after a
// random few kilobytes, and all of them every 300 ms. Calls in flight are answered once or
// fail retryably, subscriptions end with a notice and resume, and nothing has a gap.
TEST_F(HootdClusterTest, LinksCutMidStreamLoseNothingAcknowledgedAndLeaveNoGap) {
  const uint16_t link_port = FreeLoopbackPort();
  CuttingProxy proxy(link_port, /*cut_after_bytes_max=*/64 << 10, /*seed=*/7);
  std::vector<std::string> owner_flags = NodeFlags("owner", "owner-a");
  owner_flags.insert(owner_flags.end(),
                     {"--advertise", "127.0.0.1:" + std::to_string(proxy.port()), "--link-listen",
                      "127.0.0.1:" + std::to_string(link_port)});
  directories_["owner-a"] = FreshDirectory("cut-owner-a");
  auto owner = StartHootdOn(directories_["owner-a"], 1, owner_flags);
  auto gateway_a = StartNode("gateway", "gateway-a", 1);
  auto gateway_b = StartNode("gateway", "gateway-b", 2);  // Its other shard's calls cross.
  ASSERT_TRUE(owner && gateway_a && gateway_b);
  ASSERT_TRUE(Linked(*gateway_a, 1) && Linked(*gateway_b, 1));
  std::vector<base::HostPort> gateways = {{"127.0.0.1", gateway_a->port()},
                                          {"127.0.0.1", gateway_b->port()}};
  std::vector<std::string> channels;
  std::map<std::string, uint64_t> epochs;
  CreateChannels(*signer_, gateways, 3, &channels, &epochs);
  ASSERT_EQ(channels.size(), 3u);

  Traffic traffic(*signer_, gateways, channels, epochs);
  for (int round = 0; round < 15; ++round) {
    std::this_thread::sleep_for(milliseconds(300));
    proxy.CutAll();
  }
  ASSERT_TRUE(Linked(*gateway_a, 1) && Linked(*gateway_b, 1));
  Traffic::Outcome outcome = traffic.Finish();
  std::printf(
      "links cut: %lu cuts over %lu links; %lu acknowledged, lost %lu, gaps %lu, "
      "resubscriptions %lu\n",
      static_cast<unsigned long>(proxy.cuts()), static_cast<unsigned long>(proxy.accepted()),
      static_cast<unsigned long>(outcome.acknowledged), static_cast<unsigned long>(outcome.lost),
      static_cast<unsigned long>(outcome.gaps),
      static_cast<unsigned long>(outcome.resubscriptions));
  ExpectClean(outcome);
  EXPECT_GE(proxy.cuts(), 15u);
  EXPECT_EQ(gateway_a->Stop(), 0);
  EXPECT_EQ(gateway_b->Stop(), 0);
  EXPECT_EQ(owner->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
