// hoot across processes (docs/CLUSTER.md): a real 3-member etcd, two owner nodes and two
// gateway nodes, each a hootd of its own on loopback with its own data directory, linked by
// the node protocol. Clients reach channels through either gateway wherever their owner
// lives; an owner node that dies makes its channels' requests fail retryably and ends their
// subscriptions with a notice, and once it is back a retried send gets its one seq and a
// resubscription from the last seq sees no gap.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "auth/token.h"
#include "client/client.h"
#include "client/session.h"
#include "cluster/etcd_client.h"
#include "cluster/keys.h"
#include "tests/cluster/etcd_cluster.h"
#include "tests/server/hootd_process.h"
#include "tools/http_get.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;

constexpr char kCluster[] = "floor";

class HootdClusterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (std::string missing = EtcdMissing(); !missing.empty()) GTEST_SKIP() << missing;
    etcd_ = EtcdCluster::Start(3);
    ASSERT_NE(etcd_, nullptr);
    secret_file_ = FreshDirectory("cluster-secret") + "/secret";
    auto signer = auth::TokenSigner::LoadOrCreate(secret_file_);
    ASSERT_TRUE(signer.ok()) << signer.status();
    signer_ = std::make_unique<auth::TokenSigner>(std::move(*signer));
  }

  std::vector<std::string> NodeFlags(const std::string& role, const std::string& node_id) const {
    return {"--etcd",           absl::StrJoin(etcd_->endpoints(), ","),
            "--node-id",        node_id,
            "--cluster",        kCluster,
            "--node-ttl",       "2s",
            "--role",           role,
            "--secret-file",    secret_file_,
            "--metrics-listen", "127.0.0.1:0"};
  }

  std::unique_ptr<HootdProcess> StartNode(const std::string& role, const std::string& node_id,
                                          unsigned shards, const std::string& directory = "") {
    std::string data = directory.empty() ? FreshDirectory("node-" + node_id) : directory;
    directories_[node_id] = data;
    return StartHootdOn(data, shards, NodeFlags(role, node_id));
  }

  std::unique_ptr<client::Client> Connect(const HootdProcess& gateway, const std::string& user) {
    client::ConnectOptions options;
    options.port = gateway.port();
    options.token = signer_->Mint(user, static_cast<int64_t>(std::time(nullptr)) + 3600);
    options.client_name = "cluster-test";
    auto connected = client::Client::Connect(options);
    EXPECT_TRUE(connected.ok()) << connected.status();
    return connected.ok() ? std::move(*connected) : nullptr;
  }

  // The owner node etcd places `channel` on ("" if none).
  std::string OwnerOf(const std::string& channel) const {
    cluster::EtcdClient etcd(etcd_->ClientOptions());
    auto read = etcd.Get(cluster::ChannelKey(kCluster, channel));
    if (!read.ok() || read->kvs.empty()) return "";
    auto record = cluster::DecodePlacementRecord(read->kvs[0].value);
    return record ? record->owner : "";
  }

  bool NodeAlive(const std::string& node_id) const {
    cluster::EtcdClient etcd(etcd_->ClientOptions());
    auto read = etcd.Get(cluster::NodeKey(kCluster, node_id));
    return read.ok() && !read->kvs.empty();
  }

  // Until the gateway links to `links` owner shards.
  static bool Linked(const HootdProcess& gateway, double links) {
    return Eventually([&] {
      tools::HttpResponse metrics = tools::HttpGet(gateway.metrics_port(), "/metrics");
      return metrics.status == 200 &&
             tools::SumOfSamples(metrics.body, "hoot_gateway_links") == links;
    });
  }

  static std::optional<client::Message> NextMessage(client::Client& client) {
    auto push = client.NextPush(milliseconds(5000));
    if (!push.ok() || !push->has_value()) return std::nullopt;
    if (const auto* message = std::get_if<client::Message>(&**push)) return *message;
    ADD_FAILURE() << "a push that is not a MESSAGE";
    return std::nullopt;
  }

  std::unique_ptr<EtcdCluster> etcd_;
  std::string secret_file_;
  std::unique_ptr<auth::TokenSigner> signer_;
  std::map<std::string, std::string> directories_;
};

TEST_F(HootdClusterTest, TheWorkedExampleAcrossTwoGatewaysAndTwoOwners) {
  auto owner_a = StartNode("owner", "owner-a", 2);
  auto owner_b = StartNode("owner", "owner-b", 1);
  auto gateway_a = StartNode("gateway", "gateway-a", 1);
  auto gateway_b = StartNode("gateway", "gateway-b", 2);
  ASSERT_TRUE(owner_a && owner_b && gateway_a && gateway_b);
  ASSERT_TRUE(Linked(*gateway_a, 3));  // owner-a's 2 shards and owner-b's 1.
  ASSERT_TRUE(Linked(*gateway_b, 6));  // From each of gateway-b's 2 shards.

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
  EXPECT_EQ(gateway_a->Stop(), 0);
  EXPECT_EQ(gateway_b->Stop(), 0);
  EXPECT_EQ(owner_a->Stop(), 0);
  EXPECT_EQ(owner_b->Stop(), 0);
}

TEST_F(HootdClusterTest, AnOwnerNodeThatDiesFailsItsRequestsRetryablyAndLosesNothing) {
  auto owner = StartNode("owner", "owner-a", 1);
  auto gateway = StartNode("gateway", "gateway-a", 1);
  ASSERT_TRUE(owner && gateway);
  ASSERT_TRUE(Linked(*gateway, 1));
  auto ada = Connect(*gateway, "ada");
  auto bo = Connect(*gateway, "bo");
  ASSERT_TRUE(ada && bo);
  ASSERT_TRUE(ada->CreateChannel("desk", proto::Visibility::kPublic).ok());
  ASSERT_TRUE(bo->Join("desk").ok());
  ASSERT_TRUE(bo->Subscribe("desk", 0, 0).ok());
  auto first = ada->Send("desk", 1, "before");
  ASSERT_TRUE(first.ok()) << first.status();
  ASSERT_TRUE(NextMessage(*bo).has_value());

  owner->Kill();  // SIGKILL: no goodbye, the link just closes.
  // Bo's subscription ends with a notice saying why.
  auto push = bo->NextPush(milliseconds(5000));
  ASSERT_TRUE(push.ok() && push->has_value()) << push.status();
  const auto* ended = std::get_if<client::SubscriptionEnded>(&**push);
  ASSERT_NE(ended, nullptr);
  EXPECT_EQ(ended->channel, "desk");
  EXPECT_EQ(ended->reason, proto::ErrorCode::kOwnerUnavailable);
  // A send now is refused retryably.
  auto refused = ada->Send("desk", 2, "during");
  EXPECT_EQ(client::ServerErrorCode(refused.status()), proto::ErrorCode::kOwnerUnavailable)
      << refused.status();
  EXPECT_TRUE(absl::IsUnavailable(refused.status()));

  // Back on its disk (once etcd has let its old lease go), it serves again: the retry gets
  // its one seq, and Bo resumes from his last seq with nothing missed.
  ASSERT_TRUE(Eventually([&] { return !NodeAlive("owner-a"); }, milliseconds(10000)));
  owner = StartNode("owner", "owner-a", 1, directories_["owner-a"]);
  ASSERT_TRUE(owner);
  ASSERT_TRUE(Linked(*gateway, 1));
  auto retried = ada->Send("desk", 2, "during");
  ASSERT_TRUE(retried.ok()) << retried.status();
  EXPECT_EQ(retried->seq, 2u);
  auto twice = ada->Send("desk", 2, "during");
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->seq, 2u);
  EXPECT_TRUE(twice->duplicate);
  auto resubscribed = bo->Subscribe("desk", first->epoch, 1);
  ASSERT_TRUE(resubscribed.ok()) << resubscribed.status();
  auto message = NextMessage(*bo);
  ASSERT_TRUE(message.has_value());
  EXPECT_EQ(message->record.seq, 2u);
  EXPECT_EQ(message->record.body, "during");

  ada->Close();
  bo->Close();
  EXPECT_EQ(gateway->Stop(), 0);
  EXPECT_EQ(owner->Stop(), 0);
}

}  // namespace
}  // namespace hoot::testing
