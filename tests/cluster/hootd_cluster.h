// The fixture of the hootd cluster tests (docs/CLUSTER.md): a real 3-member etcd, and hootd
// nodes started on loopback in the roles a test asks for, each with its own data directory and
// the cluster's one secret file.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <ctime>
#include <initializer_list>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "auth/token.h"
#include "client/client.h"
#include "cluster/etcd_client.h"
#include "cluster/keys.h"
#include "tests/cluster/etcd_cluster.h"
#include "tests/server/hootd_process.h"
#include "tools/http_get.h"

namespace hoot::testing {

inline constexpr char kCluster[] = "floor";

class HootdClusterTest : public EtcdTest {
 protected:
  void SetUp() override {
    EtcdTest::SetUp();
    if (IsSkipped() || HasFatalFailure()) return;
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

  // A node on `directory` (a fresh one if empty), with `extra_flags` after the cluster's.
  std::unique_ptr<HootdProcess> StartNode(const std::string& role, const std::string& node_id,
                                          unsigned shards, const std::string& directory = "",
                                          const std::vector<std::string>& extra_flags = {}) {
    std::string data = directory.empty() ? FreshDirectory("node-" + node_id) : directory;
    directories_[node_id] = data;
    std::vector<std::string> flags = NodeFlags(role, node_id);
    flags.insert(flags.end(), extra_flags.begin(), extra_flags.end());
    return StartHootdOn(data, shards, flags);
  }

  // An owner node "owner-a" and a gateway node "gateway-a" linked to it (one shard each).
  struct OwnerAndGateway {
    std::unique_ptr<HootdProcess> owner;
    std::unique_ptr<HootdProcess> gateway;
  };
  OwnerAndGateway StartLinkedOwnerAndGateway() {
    OwnerAndGateway nodes{StartNode("owner", "owner-a", 1), StartNode("gateway", "gateway-a", 1)};
    if (!nodes.owner || !nodes.gateway || !Linked(*nodes.gateway, 1)) {
      ADD_FAILURE() << "no owner and gateway linked";
      return {};
    }
    return nodes;
  }

  // Owner nodes owner-a (of `owner_a_shards`) and owner-b, and gateway nodes gateway-a and
  // gateway-b (of `gateway_b_shards`, with `gateway_flags`), each gateway linked to every
  // owner shard.
  struct TwoOwnersTwoGateways {
    std::unique_ptr<HootdProcess> owner_a;
    std::unique_ptr<HootdProcess> owner_b;
    std::unique_ptr<HootdProcess> gateway_a;
    std::unique_ptr<HootdProcess> gateway_b;
  };
  TwoOwnersTwoGateways StartTwoOwnersTwoGateways(
      unsigned owner_a_shards = 1, unsigned gateway_b_shards = 1,
      const std::vector<std::string>& gateway_flags = {}) {
    TwoOwnersTwoGateways nodes{
        StartNode("owner", "owner-a", owner_a_shards), StartNode("owner", "owner-b", 1),
        StartNode("gateway", "gateway-a", 1, "", gateway_flags),
        StartNode("gateway", "gateway-b", gateway_b_shards, "", gateway_flags)};
    const double links = owner_a_shards + 1;  // One per owner shard, whatever the gateway's.
    if (!nodes.owner_a || !nodes.owner_b || !nodes.gateway_a || !nodes.gateway_b ||
        !Linked(*nodes.gateway_a, links) || !Linked(*nodes.gateway_b, links)) {
      ADD_FAILURE() << "no two owners and two gateways linked";
      return {};
    }
    return nodes;
  }

  std::unique_ptr<client::Client> Connect(const HootdProcess& gateway, const std::string& user) {
    client::ConnectOptions options;
    options.port = gateway.port();
    options.token = Token(user);
    options.client_name = "cluster-test";
    auto connected = client::Client::Connect(options);
    EXPECT_TRUE(connected.ok()) << connected.status();
    return connected.ok() ? std::move(*connected) : nullptr;
  }

  std::string Token(const std::string& user) const {
    return signer_->Mint(user, static_cast<int64_t>(std::time(nullptr)) + 3600);
  }

  // Ada and Bo on `gateway`: Ada creates "desk", Bo joins and subscribes from the start, and
  // Ada's first message reaches him. Both null (a failure added) if any step fails.
  struct Desk {
    std::unique_ptr<client::Client> ada;
    std::unique_ptr<client::Client> bo;
    uint64_t epoch = 0;
  };
  Desk DeskWithBoReading(const HootdProcess& gateway) {
    Desk desk{Connect(gateway, "ada"), Connect(gateway, "bo")};
    if (!desk.ada || !desk.bo) return {};
    auto created = desk.ada->CreateChannel("desk", proto::Visibility::kPublic);
    if (!created.ok() || !desk.bo->Join("desk").ok() || !desk.bo->Subscribe("desk", 0, 0).ok() ||
        !desk.ada->Send("desk", 1, "before").ok() || !NextMessage(*desk.bo).has_value()) {
      ADD_FAILURE() << "no desk with Bo reading: " << created.status();
      return {};
    }
    desk.epoch = created->epoch;
    return desk;
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

  // The sum of a metric's samples on `node`'s /metrics (-1 if it has none).
  static double Metric(const HootdProcess& node, const std::string& name) {
    tools::HttpResponse metrics = tools::HttpGet(node.metrics_port(), "/metrics");
    return tools::SumOfSamples(metrics.body, name).value_or(-1);
  }

  // Until the gateway links to `links` owner shards.
  static bool Linked(const HootdProcess& gateway, double links) {
    return Eventually([&] { return Metric(gateway, "hoot_gateway_links") == links; });
  }

  static std::optional<client::Message> NextMessage(client::Client& client) {
    auto push = client.NextPush(std::chrono::milliseconds(5000));
    if (!push.ok() || !push->has_value()) return std::nullopt;
    if (const auto* message = std::get_if<client::Message>(&**push)) return *message;
    ADD_FAILURE() << "a push that is not a MESSAGE";
    return std::nullopt;
  }

  // The next push is SUBSCRIPTION_ENDED for `channel`, because its owner is unavailable.
  static void ExpectOwnerUnavailableEnds(client::Client& client, const std::string& channel) {
    auto push = client.NextPush(std::chrono::milliseconds(5000));
    ASSERT_TRUE(push.ok() && push->has_value()) << push.status();
    const auto* ended = std::get_if<client::SubscriptionEnded>(&**push);
    ASSERT_NE(ended, nullptr);
    EXPECT_EQ(ended->channel, channel);
    EXPECT_EQ(ended->reason, proto::ErrorCode::kOwnerUnavailable);
  }

  static void ExpectEachStops(std::initializer_list<HootdProcess*> nodes) {
    for (HootdProcess* node : nodes) EXPECT_EQ(node->Stop(), 0);
  }

  std::string secret_file_;
  std::unique_ptr<auth::TokenSigner> signer_;
  std::map<std::string, std::string> directories_;
};

}  // namespace hoot::testing
