// hoot across processes (docs/CLUSTER.md): a real 3-member etcd, owner nodes and gateway
// nodes, each a hootd of its own on loopback with its own data directory, linked by the node
// protocol. Clients reach channels through either gateway wherever their owner lives; an owner
// node that dies makes its channels' requests fail retryably and ends their subscriptions with
// a notice, and once it is back a retried send gets its one seq and a resubscription from the
// last seq sees no gap. (Links: hootd_cluster_link_test.cc; faults in a loop:
// hootd_cluster_fault_test.cc.)
#include "tests/cluster/hootd_cluster.h"

#include <gtest/gtest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "client/client.h"
#include "tests/server/access_rules.h"
#include "tests/tools/hoot_cli_test_util.h"
#include "tools/http_get.h"
#include "tools/load/driver.h"
#include "tools/load/report.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;

TEST_F(HootdClusterTest, TheWorkedExampleAcrossTwoGatewaysAndTwoOwners) {
  // Each gateway links to owner-a's 2 shards and owner-b's 1, whatever its own shards.
  auto [owner_a, owner_b, gateway_a, gateway_b] = StartTwoOwnersTwoGateways(2, 2);
  ASSERT_TRUE(gateway_b);

  auto ada = Connect(*gateway_a, "ada");
  auto bo = Connect(*gateway_b, "bo");
  ASSERT_TRUE(ada && bo);
  // Channels until both owners have one: etcd places each on one of them.
  std::map<std::string, std::string> placed;  // owner -> a channel it owns
  for (int i = 0; i < 32 && placed.size() < 2; ++i) {
    std::string channel = "desk-" + std::to_string(i);
    auto created = ada->CreateChannel(channel, proto::Visibility::kPublic);
    ASSERT_TRUE(created.ok()) << channel << ": " << created.status();
    EXPECT_EQ(created->head_seq, 0u);
    std::string owner = OwnerOf(channel);
    ASSERT_TRUE(owner == "owner-a" || owner == "owner-b") << channel << " placed on " << owner;
    placed.try_emplace(owner, channel);
  }
  ASSERT_EQ(placed.size(), 2u);
  // A name is created once, whichever gateway asks.
  auto again = bo->CreateChannel(placed["owner-a"], proto::Visibility::kPublic);
  EXPECT_EQ(client::ServerErrorCode(again.status()), proto::ErrorCode::kChannelExists);

  for (const auto& [owner, channel] : placed) {
    SCOPED_TRACE(channel + " on " + owner);
    ASSERT_TRUE(bo->Join(channel).ok());
    ASSERT_TRUE(bo->Subscribe(channel, 0, 0).ok());
    uint64_t epoch = 0;
    for (uint64_t id = 1; id <= 3; ++id) {
      auto sent = ada->Send(channel, id, "msg " + std::to_string(id));
      ASSERT_TRUE(sent.ok()) << sent.status();
      EXPECT_EQ(sent->seq, id);
      epoch = sent->epoch;
    }
    for (uint64_t seq = 1; seq <= 3; ++seq) {
      auto message = NextMessage(*bo);
      ASSERT_TRUE(message.has_value());
      EXPECT_EQ(message->channel, channel);
      EXPECT_EQ(message->record.seq, seq);
      EXPECT_EQ(message->record.body, "msg " + std::to_string(seq));
    }
    // A retry through the other gateway is the same message.
    auto retried = bo->Send(channel, 99, "bo's");
    ASSERT_TRUE(retried.ok());
    EXPECT_EQ(retried->seq, 4u);
    ASSERT_TRUE(NextMessage(*bo).has_value());
    auto duplicate = bo->Send(channel, 99, "bo's");
    ASSERT_TRUE(duplicate.ok());
    EXPECT_EQ(duplicate->seq, 4u);
    EXPECT_TRUE(duplicate->duplicate);

    // Cy catches up through either gateway: the log, then live, no gap and no duplicate.
    for (HootdProcess* gateway : {gateway_a.get(), gateway_b.get()}) {
      auto cy = Connect(*gateway, "cy");
      ASSERT_TRUE(cy);
      ASSERT_TRUE(cy->Join(channel).ok());
      auto subscribed = cy->Subscribe(channel, epoch, 2);
      ASSERT_TRUE(subscribed.ok()) << subscribed.status();
      for (uint64_t seq = 3; seq <= 4; ++seq) {
        auto message = NextMessage(*cy);
        ASSERT_TRUE(message.has_value());
        EXPECT_EQ(message->record.seq, seq);
      }
      cy->Close();
    }
  }
  // A list gathers every owner shard's channels, through either gateway.
  auto listed = bo->ListChannels();
  ASSERT_TRUE(listed.ok()) << listed.status();
  std::set<std::string> names;
  for (const auto& entry : *listed) names.insert(entry.channel);
  for (const auto& [owner, channel] : placed) EXPECT_EQ(names.count(channel), 1u) << channel;
  auto missing = ada->Join("no-such-desk");
  EXPECT_EQ(client::ServerErrorCode(missing.status()), proto::ErrorCode::kNoSuchChannel);

  ada->Close();
  bo->Close();
  ExpectEachStops({gateway_a.get(), gateway_b.get(), owner_a.get(), owner_b.get()});
}

// A gateway node holds one link to each owner shard, whatever its own shards: the owner sends
// one fan-out page per gateway node, and the gateway fans it out across its shards. Calls
// from every shard cross to the link's shard and back; a link that closes ends the
// subscriptions on every shard.
TEST_F(HootdClusterTest, AGatewayNodeLinksOnceToEachOwnerShardAndFansOutAcrossItsShards) {
  auto owner = StartNode("owner", "owner-a", 2);
  auto gateway = StartNode("gateway", "gateway-a", 2);
  ASSERT_TRUE(owner && gateway);
  ASSERT_TRUE(Linked(*gateway, 2));
  EXPECT_EQ(Metric(*owner, "hoot_owner_links"), 2);  // One on each owner shard.

  auto ada = Connect(*gateway, "ada");
  ASSERT_TRUE(ada);
  // Channels on the owner's shards, each with calls from both gateway shards.
  std::vector<std::string> channels = {"desk-0", "desk-1", "desk-2", "desk-3"};
  for (const std::string& channel : channels) {
    ASSERT_TRUE(ada->CreateChannel(channel, proto::Visibility::kPublic).ok()) << channel;
  }
  // Readers until both gateway shards hold some: the kernel spreads connections over the
  // shards' SO_REUSEPORT listeners.
  auto sessions_on = [&](int shard) {
    tools::HttpResponse metrics = tools::HttpGet(gateway->metrics_port(), "/metrics");
    return tools::SumOfSamples(metrics.body, "hoot_sessions_authenticated",
                               {"shard=\"" + std::to_string(shard) + "\""})
        .value_or(0);
  };
  const double ada_on[2] = {sessions_on(0), sessions_on(1)};
  auto readers_on = [&](int shard) { return sessions_on(shard) - ada_on[shard]; };
  std::vector<std::unique_ptr<client::Client>> readers;
  while (readers.size() < 4 ||
         ((readers_on(0) == 0 || readers_on(1) == 0) && readers.size() < 24)) {
    auto reader = Connect(*gateway, "reader-" + std::to_string(readers.size()));
    ASSERT_TRUE(reader);
    for (const std::string& channel : channels) {
      ASSERT_TRUE(reader->Join(channel).ok()) << channel;
      auto subscribed = reader->Subscribe(channel, 0, 0);
      ASSERT_TRUE(subscribed.ok()) << channel << ": " << subscribed.status();
    }
    readers.push_back(std::move(reader));
  }
  ASSERT_GT(readers_on(0), 0);
  ASSERT_GT(readers_on(1), 0);

  double pages_before = Metric(*owner, "hoot_owner_link_pages_total");
  constexpr uint64_t kMessages = 5;
  for (uint64_t id = 1; id <= kMessages; ++id) {
    for (const std::string& channel : channels) {
      auto sent = ada->Send(channel, id, channel + " " + std::to_string(id));
      ASSERT_TRUE(sent.ok()) << sent.status();
      ASSERT_EQ(sent->seq, id);
      // Every reader has it before the next goes: one fan-out page each.
      for (auto& reader : readers) {
        auto message = NextMessage(*reader);
        ASSERT_TRUE(message.has_value());
        EXPECT_EQ(message->channel, channel);
        EXPECT_EQ(message->record.seq, id);
      }
    }
  }
  // One page per message for the whole gateway node, however many shards and readers.
  EXPECT_EQ(Metric(*owner, "hoot_owner_link_pages_total") - pages_before,
            static_cast<double>(kMessages * channels.size()));

  // The owner stops: its links close, and every reader, on either shard, hears why on each
  // channel.
  EXPECT_EQ(owner->Stop(), 0);
  for (auto& reader : readers) {
    std::set<std::string> ended;
    while (ended.size() < channels.size()) {
      auto push = reader->NextPush(milliseconds(5000));
      ASSERT_TRUE(push.ok() && push->has_value()) << push.status();
      const auto* end = std::get_if<client::SubscriptionEnded>(&**push);
      ASSERT_NE(end, nullptr);
      EXPECT_EQ(end->reason, proto::ErrorCode::kOwnerUnavailable);
      ended.insert(end->channel);
    }
  }
  auto refused = ada->Send(channels[0], kMessages + 1, "while it is away");
  EXPECT_EQ(client::ServerErrorCode(refused.status()), proto::ErrorCode::kOwnerUnavailable)
      << refused.status();
  for (auto& reader : readers) reader->Close();
  ada->Close();
  EXPECT_EQ(gateway->Stop(), 0);
}

// hoot-load spread over two gateways, to channels on two owners: the operator's way to size
// a cluster. Every acknowledged message reaches every subscriber, whichever gateway holds it.
TEST_F(HootdClusterTest, HootLoadSpreadsOverTheGatewaysAndEveryMessageArrives) {
  auto [owner_a, owner_b, gateway_a, gateway_b] =
      StartTwoOwnersTwoGateways(1, 1, {"--send-rate", "0"});
  ASSERT_TRUE(gateway_b);

  load::LoadConfig config;
  config.servers = {{"127.0.0.1", gateway_a->port()}, {"127.0.0.1", gateway_b->port()}};
  config.secret_file = secret_file_;
  config.floors = false;
  config.progress = false;
  config.workload.name = "small-W1";
  config.workload.channels = 4;
  config.workload.subscribers = 8;
  config.workload.channels_per_subscriber = 2;
  config.workload.publishers = 2;
  config.workload.mode = load::LoopMode::kOpen;
  config.workload.rate = 500;
  config.workload.warmup = milliseconds(500);
  config.workload.duration = milliseconds(2000);
  config.workload.drain = milliseconds(3000);
  load::RunResult result = load::RunLoad(config, nullptr);
  ASSERT_TRUE(result.setup_error.ok()) << result.setup_error;
  EXPECT_EQ(load::ExitCode(result), 0) << load::FormatReport(result);
  EXPECT_TRUE(result.checks.ok()) << load::FormatReport(result);
  EXPECT_EQ(result.checks.missing, 0u);
  EXPECT_EQ(result.errors.Total(), 0u) << result.errors.first_error;
  EXPECT_EQ(result.acked_total, result.sent_total);
  EXPECT_GT(result.sent_total, 1000u);
  // 4 subscribers a channel: each message reached all of them, across both gateways.
  EXPECT_EQ(result.delivered_total, 4 * result.acked_total);
  ExpectEachStops({gateway_a.get(), gateway_b.get(), owner_a.get(), owner_b.get()});
}

// `hoot send` and `hoot tail` through a gateway ride out their channel's owner node dying and
// coming back: send sends again (same ids) what owner_unavailable refused, tail subscribes
// again after its last seq; every line is acknowledged and printed once, in order.
TEST_F(HootdClusterTest, HootSendAndTailRideOutTheirOwnerNodesRestart) {
  auto [owner, gateway] = StartLinkedOwnerAndGateway();
  ASSERT_TRUE(owner && gateway);
  const uint16_t gateway_port = gateway->port();
  auto as = [&](const std::string& user, std::vector<std::string> args) {
    std::vector<std::string> full = {"--server", "127.0.0.1:" + std::to_string(gateway_port),
                                     "--token", Token(user)};
    full.insert(full.end(), args.begin(), args.end());
    return full;
  };
  ASSERT_EQ(Hoot(as("ada", {"create", "floor"})).code, 0);
  ASSERT_EQ(Hoot(as("bo", {"join", "floor"})).code, 0);
  auto tail = HootChild::Start(as("bo", {"tail", "floor", "--from", "1"}));
  auto send = HootChild::Start(as("ada", {"send", "floor"}));
  ASSERT_TRUE(tail && send);
  auto batch = [](int from, int to) {
    std::string lines;
    for (int i = from; i <= to; ++i) lines += "line " + std::to_string(i) + "\n";
    return lines;
  };
  ASSERT_TRUE(send->Write(batch(1, 20)));
  ASSERT_TRUE(send->WaitForLines(20)) << send->out() << send->err();
  ASSERT_TRUE(tail->WaitForLines(20)) << tail->out() << tail->err();

  owner->Kill();
  ASSERT_TRUE(send->Write(batch(21, 40)));
  ASSERT_TRUE(Eventually([&] { return !NodeAlive("owner-a"); }, milliseconds(10000)));
  owner = StartNode("owner", "owner-a", 1, directories_["owner-a"]);
  ASSERT_TRUE(owner);
  ASSERT_TRUE(send->Write(batch(41, 60)));
  send->CloseStdin();
  ASSERT_NO_FATAL_FAILURE(ExpectEachLineAcknowledgedAndPrintedOnce(*send, *tail, 60));
  EXPECT_NE(send->err().find("cannot reach the channel's owner"), std::string::npos) << send->err();
  EXPECT_NE(tail->err().find("owner node is unreachable"), std::string::npos) << tail->err();
  EXPECT_NE(tail->err().find("resumed floor after seq 20"), std::string::npos) << tail->err();
  ExpectEachStops({gateway.get(), owner.get()});
}

// The same access rules as one hootd's (tests/server/access_rules.h), with Ada and Bo on
// different gateways and the channels placed on two owners.
TEST_F(HootdClusterTest, TheAccessRulesHoldThroughGateways) {
  auto [owner_a, owner_b, gateway_a, gateway_b] = StartTwoOwnersTwoGateways();
  ASSERT_TRUE(gateway_b);
  auto ada = Connect(*gateway_a, "ada");
  auto bo = Connect(*gateway_b, "bo");
  ASSERT_TRUE(ada && bo);
  CheckAccessRules(*ada, *bo);
  ada->Close();
  bo->Close();
  ExpectEachStops({gateway_a.get(), gateway_b.get(), owner_a.get(), owner_b.get()});
}

TEST_F(HootdClusterTest, AnOwnerNodeThatDiesFailsItsRequestsRetryablyAndLosesNothing) {
  auto [owner, gateway] = StartLinkedOwnerAndGateway();
  ASSERT_TRUE(owner && gateway);
  Desk desk = DeskWithBoReading(*gateway);
  ASSERT_TRUE(desk.ada);

  owner->Kill();  // SIGKILL: no goodbye, the link just closes.
  // Bo's subscription ends with a notice saying why.
  ASSERT_NO_FATAL_FAILURE(ExpectOwnerUnavailableEnds(*desk.bo, "desk"));
  // A send now is refused retryably.
  auto refused = desk.ada->Send("desk", 2, "during");
  EXPECT_EQ(client::ServerErrorCode(refused.status()), proto::ErrorCode::kOwnerUnavailable)
      << refused.status();
  EXPECT_TRUE(absl::IsUnavailable(refused.status()));

  // Back on its disk (once etcd has let its old lease go), it serves again: the retry gets
  // its one seq, and Bo resumes from his last seq with nothing missed.
  ASSERT_TRUE(Eventually([&] { return !NodeAlive("owner-a"); }, milliseconds(10000)));
  owner = StartNode("owner", "owner-a", 1, directories_["owner-a"]);
  ASSERT_TRUE(owner);
  ASSERT_TRUE(Linked(*gateway, 1));
  auto retried = desk.ada->Send("desk", 2, "during");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->seq, 2u);
  auto twice = desk.ada->Send("desk", 2, "during");
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->seq, 2u);
  EXPECT_TRUE(twice->duplicate);
  auto resubscribed = desk.bo->Subscribe("desk", desk.epoch, 1);
  ASSERT_TRUE(resubscribed.ok()) << resubscribed.status();
  auto message = NextMessage(*desk.bo);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->record.seq, 2u);
  EXPECT_EQ(message->record.body, "during");

  desk.ada->Close();
  desk.bo->Close();
  ExpectEachStops({gateway.get(), owner.get()});
}

}  // namespace
}  // namespace hoot::testing
