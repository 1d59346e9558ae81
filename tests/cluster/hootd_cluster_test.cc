// hoot across processes (docs/CLUSTER.md): a real 3-member etcd, two owner nodes and two
// gateway nodes, each a hootd of its own on loopback with its own data directory, linked by
// the node protocol. Clients reach channels through either gateway wherever their owner
// lives; an owner node that dies makes its channels' requests fail retryably and ends their
// subscriptions with a notice, and once it is back a retried send gets its one seq and a
// resubscription from the last seq sees no gap. The kill loop (HOOT_CLUSTER_KILL_CYCLES
// cycles, default 6; `make soak` runs more) kills a random node each cycle under a retrying
// sender and a resubscribing subscriber: nothing acknowledged is lost, nothing has a gap.
#include <gtest/gtest.h>
#include <signal.h>

#include <atomic>
#include <chrono>
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

#include "absl/strings/str_join.h"
#include "auth/token.h"
#include "base/parse.h"
#include "client/client.h"
#include "client/session.h"
#include "cluster/etcd_client.h"
#include "cluster/keys.h"
#include "core/chat/node_codec.h"
#include "core/link_auth.h"
#include "proto/codec.h"
#include "tests/cluster/cutting_proxy.h"
#include "tests/cluster/etcd_cluster.h"
#include "tests/loopback.h"
#include "tests/server/access_rules.h"
#include "tests/server/hootd_process.h"
#include "tests/tools/hoot_cli_test_util.h"
#include "tools/http_get.h"
#include "tools/load/driver.h"
#include "tools/load/report.h"

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
  ASSERT_TRUE(Linked(*gateway_b, 3));  // One link per owner shard, whatever its own shards.

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

// A gateway node holds one link to each owner shard, whatever its own shards: the owner sends
// one fan-out page per gateway node, and the gateway fans it out across its shards. Calls
// from every shard cross to the link's shard and back; a link that closes ends the
// subscriptions on every shard.
TEST_F(HootdClusterTest, AGatewayNodeLinksOnceToEachOwnerShardAndFansOutAcrossItsShards) {
  auto owner = StartNode("owner", "owner-a", 2);
  auto gateway = StartNode("gateway", "gateway-a", 2);
  ASSERT_TRUE(owner && gateway);
  ASSERT_TRUE(Linked(*gateway, 2));
  auto owner_metric = [&](const std::string& name) {
    tools::HttpResponse metrics = tools::HttpGet(owner->metrics_port(), "/metrics");
    return tools::SumOfSamples(metrics.body, name).value_or(-1);
  };
  EXPECT_EQ(owner_metric("hoot_owner_links"), 2);  // One on each owner shard.

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

  double pages_before = owner_metric("hoot_owner_link_pages_total");
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
  EXPECT_EQ(owner_metric("hoot_owner_link_pages_total") - pages_before,
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

// One end of a node link on a plain socket, speaking the handshake from docs/CLUSTER.md.
class RawNodeLink {
 public:
  explicit RawNodeLink(uint16_t port) : fd_(ConnectLoopback(port)) {}
  ~RawNodeLink() {
    if (fd_ >= 0) ::close(fd_);
  }
  bool Write(const std::string& bytes) {
    return fd_ >= 0 && ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL) ==
                           static_cast<ssize_t>(bytes.size());
  }
  // Whether the owner closes the link within `wait`, sending nothing.
  bool ClosedWithin(std::chrono::milliseconds wait) {
    pollfd readable{fd_, POLLIN, 0};
    char byte;
    return ::poll(&readable, 1, static_cast<int>(wait.count())) == 1 &&
           ::recv(fd_, &byte, 1, 0) == 0;
  }
  // The next frame's bytes; nullopt once the owner closed the link (or 5 s passed).
  std::optional<std::string> Read() {
    while (true) {
      proto::Frame frame;
      if (!pending_.empty() &&
          proto::ParseFrame(pending_, &frame, core::chat::node::kNodeFrameBytesMax) ==
              proto::DecodeStatus::kOk) {
        std::string bytes(frame.bytes);
        pending_.erase(0, bytes.size());
        return bytes;
      }
      pollfd readable{fd_, POLLIN, 0};
      if (::poll(&readable, 1, 5000) <= 0) return std::nullopt;
      char buffer[4096];
      ssize_t got = ::recv(fd_, buffer, sizeof(buffer), 0);
      if (got <= 0) return std::nullopt;
      pending_.append(buffer, static_cast<size_t>(got));
    }
  }

 private:
  int fd_;
  std::string pending_;
};

// A node link is only for nodes holding the cluster's key (derived from its one secret file):
// a gateway given another secret never links, and an owner takes no call before a correct
// proof, and closes a connection that does not prove itself within 5 s. A client that does prove itself, written from docs/CLUSTER.md, is served.
TEST_F(HootdClusterTest, ALinkWithoutTheClusterKeyIsRefused) {
  namespace node = core::chat::node;
  auto owner = StartNode("owner", "owner-a", 1);
  ASSERT_TRUE(owner);
  std::string other_secret = FreshDirectory("other-secret") + "/secret";
  ASSERT_TRUE(auth::TokenSigner::CreateSecretFile(other_secret).ok());
  std::vector<std::string> flags = NodeFlags("gateway", "gateway-a");
  for (size_t i = 0; i + 1 < flags.size(); ++i) {
    if (flags[i] == "--secret-file") flags[i + 1] = other_secret;
  }
  auto stranger = StartHootdOn(FreshDirectory("node-gateway-a"), 1, flags);
  ASSERT_TRUE(stranger);
  auto metric = [](const HootdProcess& process, const std::string& name) {
    tools::HttpResponse metrics = tools::HttpGet(process.metrics_port(), "/metrics");
    return tools::SumOfSamples(metrics.body, name).value_or(-1);
  };
  // It keeps trying, and every try is refused: the owner's proof does not hold under its key.
  ASSERT_TRUE(Eventually(
      [&] { return metric(*stranger, "hoot_gateway_link_connect_failures_total") >= 3; }));
  EXPECT_EQ(metric(*stranger, "hoot_gateway_links"), 0);
  EXPECT_EQ(metric(*owner, "hoot_owner_links"), 0);
  // The owner sees it too: each try hangs up on the welcome.
  EXPECT_GE(metric(*owner, "hoot_owner_links_refused_total"), 3);
  EXPECT_EQ(stranger->Stop(), 0);

  const std::string link_key = signer_->DeriveKey(core::kLinkKeyPurpose);
  const std::string gateway_nonce = auth::RandomBytes(node::kNodeNonceBytes);
  // The handshake up to the owner's welcome, whose proof holds under the cluster's key.
  auto welcomed = [&](RawNodeLink& link, std::string* owner_nonce) {
    node::NodeHello hello;
    hello.cluster = kCluster;
    hello.gateway_node = "raw-gateway";
    hello.owner_node = "owner-a";
    hello.owner_shard = 0;
    hello.nonce = gateway_nonce;
    std::string bytes;
    if (!node::EncodeNodeMessage(hello, 0, &bytes) || !link.Write(bytes)) return false;
    std::optional<std::string> answer = link.Read();
    if (!answer.has_value()) return false;
    proto::Frame frame;
    node::AnyNodeMessage message;
    if (proto::ParseFrame(*answer, &frame, node::kNodeFrameBytesMax) != proto::DecodeStatus::kOk ||
        node::DecodeNodeMessage(frame, &message) != proto::DecodeStatus::kOk) {
      return false;
    }
    const auto* welcome = std::get_if<node::NodeWelcome>(&message);
    if (welcome == nullptr) return false;
    *owner_nonce = std::string(welcome->nonce);
    core::LinkTranscript transcript{kCluster, "raw-gateway", "owner-a",
                                    0,        gateway_nonce, *owner_nonce};
    EXPECT_EQ(std::string(welcome->proof),
              core::LinkProof(link_key, core::LinkSide::kOwner, transcript));
    return true;
  };
  auto list_call = [] {
    core::chat::Call call;
    call.connection_id = 1;
    call.user = "ada";
    call.op = core::chat::ListChannelsOp{};
    std::string bytes;
    EXPECT_TRUE(node::EncodeCall(call, 1, &bytes));
    return bytes;
  };
  auto proof_frame = [](const std::string& proof) {
    node::NodeProof message;
    message.proof = proof;
    std::string bytes;
    EXPECT_TRUE(node::EncodeNodeMessage(message, 0, &bytes));
    return bytes;
  };
  double refused_before = metric(*owner, "hoot_owner_links_refused_total");
  RawNodeLink silent(owner->port());  // Says nothing: closed at the handshake's deadline (5 s).
  RawNodeLink unproven(owner->port());  // Stops after its hello: the same.
  std::string unproven_nonce;
  ASSERT_TRUE(welcomed(unproven, &unproven_nonce));
  {
    SCOPED_TRACE("a call straight after the welcome, with no proof");
    RawNodeLink link(owner->port());
    std::string owner_nonce;
    ASSERT_TRUE(welcomed(link, &owner_nonce));
    ASSERT_TRUE(link.Write(list_call()));
    EXPECT_FALSE(link.Read().has_value()) << "the owner answered a call before any proof";
  }
  {
    SCOPED_TRACE("a proof under another key");
    RawNodeLink link(owner->port());
    std::string owner_nonce;
    ASSERT_TRUE(welcomed(link, &owner_nonce));
    core::LinkTranscript transcript{kCluster, "raw-gateway", "owner-a",
                                    0,        gateway_nonce, owner_nonce};
    ASSERT_TRUE(link.Write(
        proof_frame(core::LinkProof(std::string(32, 'x'), core::LinkSide::kGateway, transcript)) +
        list_call()));
    EXPECT_FALSE(link.Read().has_value()) << "the owner took a wrong proof";
  }
  {
    SCOPED_TRACE("the owner's own proof sent back");
    RawNodeLink link(owner->port());
    std::string owner_nonce;
    ASSERT_TRUE(welcomed(link, &owner_nonce));
    core::LinkTranscript transcript{kCluster, "raw-gateway", "owner-a",
                                    0,        gateway_nonce, owner_nonce};
    ASSERT_TRUE(link.Write(
        proof_frame(core::LinkProof(link_key, core::LinkSide::kOwner, transcript)) + list_call()));
    EXPECT_FALSE(link.Read().has_value()) << "the owner took its own proof as the gateway's";
  }
  EXPECT_TRUE(silent.ClosedWithin(milliseconds(10000)));
  EXPECT_TRUE(unproven.ClosedWithin(milliseconds(10000)));
  EXPECT_EQ(metric(*owner, "hoot_owner_links_refused_total") - refused_before, 5);
  EXPECT_EQ(metric(*owner, "hoot_owner_link_calls_total"), 0);
  {
    SCOPED_TRACE("the right proof");
    RawNodeLink link(owner->port());
    std::string owner_nonce;
    ASSERT_TRUE(welcomed(link, &owner_nonce));
    core::LinkTranscript transcript{kCluster, "raw-gateway", "owner-a",
                                    0,        gateway_nonce, owner_nonce};
    ASSERT_TRUE(
        link.Write(proof_frame(core::LinkProof(link_key, core::LinkSide::kGateway, transcript)) +
                   list_call()));
    std::optional<std::string> answer = link.Read();
    ASSERT_TRUE(answer.has_value());
    proto::Frame frame;
    ASSERT_EQ(proto::ParseFrame(*answer, &frame, node::kNodeFrameBytesMax),
              proto::DecodeStatus::kOk);
    EXPECT_EQ(frame.type, node::AnswerRows::kType);
    EXPECT_EQ(frame.correlation_id, 1u);
    EXPECT_EQ(metric(*owner, "hoot_owner_links"), 1);
  }
  EXPECT_EQ(owner->Stop(), 0);
}

// The fence's second half: an owner serves a channel only while its placement in etcd names
// the owner's node. Rewritten to name another (a move), the old owner ends the channel's
// subscriptions and refuses its calls, even from a link that still sends them there.
TEST_F(HootdClusterTest, AnOwnerServesNoChannelItsPlacementNoLongerNames) {
  namespace node = core::chat::node;
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
  ASSERT_TRUE(ada->Send("desk", 1, "before").ok());
  ASSERT_TRUE(NextMessage(*bo).has_value());

  // A link of our own to the owner, written from docs/CLUSTER.md, proven with the cluster's
  // key: it reaches the owner whatever the gateways' placements say.
  RawNodeLink link(owner->port());
  const std::string link_key = signer_->DeriveKey(core::kLinkKeyPurpose);
  const std::string gateway_nonce = auth::RandomBytes(node::kNodeNonceBytes);
  {
    node::NodeHello hello;
    hello.cluster = kCluster;
    hello.gateway_node = "raw-gateway";
    hello.owner_node = "owner-a";
    hello.nonce = gateway_nonce;
    std::string bytes;
    ASSERT_TRUE(node::EncodeNodeMessage(hello, 0, &bytes) && link.Write(bytes));
    std::optional<std::string> answer = link.Read();
    ASSERT_TRUE(answer.has_value());
    proto::Frame frame;
    node::AnyNodeMessage message;
    ASSERT_EQ(proto::ParseFrame(*answer, &frame, node::kNodeFrameBytesMax),
              proto::DecodeStatus::kOk);
    ASSERT_EQ(node::DecodeNodeMessage(frame, &message), proto::DecodeStatus::kOk);
    const auto* welcome = std::get_if<node::NodeWelcome>(&message);
    ASSERT_NE(welcome, nullptr);
    std::string proof = core::LinkProof(
        link_key, core::LinkSide::kGateway,
        {kCluster, "raw-gateway", "owner-a", 0, gateway_nonce, std::string(welcome->nonce)});
    node::NodeProof proven;
    proven.proof = proof;
    bytes.clear();
    ASSERT_TRUE(node::EncodeNodeMessage(proven, 0, &bytes) && link.Write(bytes));
  }
  uint32_t call_id = 0;
  auto send_on_link = [&](uint64_t client_message_id) {
    core::chat::Call call;
    call.connection_id = 1;
    call.user = "ada";
    call.channel = "desk";
    call.op = core::chat::SendOp{client_message_id, "over the raw link"};
    std::string bytes;
    EXPECT_TRUE(node::EncodeCall(call, ++call_id, &bytes) && link.Write(bytes));
    std::optional<std::string> answer = link.Read();
    EXPECT_TRUE(answer.has_value());
    proto::Frame frame;
    core::chat::Page page;
    if (!answer.has_value() ||
        proto::ParseFrame(*answer, &frame, node::kNodeFrameBytesMax) != proto::DecodeStatus::kOk ||
        node::DecodeAnswer(frame, &call, &page) != proto::DecodeStatus::kOk) {
      ADD_FAILURE() << "no answer on the raw link";
      return core::chat::Answer{};
    }
    EXPECT_EQ(frame.correlation_id, call_id);
    return call.result;
  };
  core::chat::Answer sent = send_on_link(2);
  ASSERT_TRUE(std::holds_alternative<core::chat::SentAnswer>(sent));
  EXPECT_EQ(std::get<core::chat::SentAnswer>(sent).seq, 2u);
  ASSERT_TRUE(NextMessage(*bo).has_value());

  // The channel moves: its placement names owner-b.
  cluster::EtcdClient etcd(etcd_->ClientOptions());
  ASSERT_TRUE(etcd.Put(cluster::ChannelKey(kCluster, "desk"),
                       cluster::EncodePlacementRecord({"owner-b", "moved-by-the-test"}))
                  .ok());
  // Bo's subscription ends, from the owner, which no longer holds the channel.
  auto push = bo->NextPush(milliseconds(5000));
  ASSERT_TRUE(push.ok() && push->has_value()) << push.status();
  const auto* ended = std::get_if<client::SubscriptionEnded>(&**push);
  ASSERT_NE(ended, nullptr);
  EXPECT_EQ(ended->channel, "desk");
  EXPECT_EQ(ended->reason, proto::ErrorCode::kOwnerUnavailable);
  // A call that still reaches the old owner is refused, retryably, and appends nothing.
  core::chat::Answer refused = send_on_link(3);
  const auto* refusal = std::get_if<core::chat::Refused>(&refused);
  ASSERT_NE(refusal, nullptr);
  EXPECT_EQ(refusal->code, proto::ErrorCode::kOwnerUnavailable) << refusal->text;
  // Through the gateway, which follows the placement to owner-b, not in the cluster: the
  // same, and it names where the channel is now.
  ASSERT_TRUE(Eventually([&] {
    auto through_gateway = ada->Send("desk", 4, "after the move");
    return client::ServerErrorCode(through_gateway.status()) ==
               proto::ErrorCode::kOwnerUnavailable &&
           through_gateway.status().message().find("owner node owner-b, which is not in the "
                                                   "cluster") != std::string_view::npos;
  }));

  // Moved back, the owner serves it again, from where it was: seq 3 is the next.
  ASSERT_TRUE(etcd.Put(cluster::ChannelKey(kCluster, "desk"),
                       cluster::EncodePlacementRecord({"owner-a", "moved-back-by-the-test"}))
                  .ok());
  ASSERT_TRUE(Eventually([&] {
    auto again = ada->Send("desk", 5, "back home");
    return again.ok() && again->seq == 3;
  }));
  ada->Close();
  bo->Close();
  EXPECT_EQ(gateway->Stop(), 0);
  EXPECT_EQ(owner->Stop(), 0);
}

// hoot-load spread over two gateways, to channels on two owners: the operator's way to size
// a cluster. Every acknowledged message reaches every subscriber, whichever gateway holds it.
TEST_F(HootdClusterTest, HootLoadSpreadsOverTheGatewaysAndEveryMessageArrives) {
  auto owner_a = StartNode("owner", "owner-a", 1);
  auto owner_b = StartNode("owner", "owner-b", 1);
  std::vector<std::string> unlimited = {"--send-rate", "0"};
  auto gateway_flags = [&](const std::string& id) {
    std::vector<std::string> flags = NodeFlags("gateway", id);
    flags.insert(flags.end(), unlimited.begin(), unlimited.end());
    return flags;
  };
  directories_["gateway-a"] = FreshDirectory("load-gateway-a");
  directories_["gateway-b"] = FreshDirectory("load-gateway-b");
  auto gateway_a = StartHootdOn(directories_["gateway-a"], 1, gateway_flags("gateway-a"));
  auto gateway_b = StartHootdOn(directories_["gateway-b"], 1, gateway_flags("gateway-b"));
  ASSERT_TRUE(owner_a && owner_b && gateway_a && gateway_b);
  ASSERT_TRUE(Linked(*gateway_a, 2) && Linked(*gateway_b, 2));

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
  for (HootdProcess* node : {gateway_a.get(), gateway_b.get(), owner_a.get(), owner_b.get()}) {
    EXPECT_EQ(node->Stop(), 0);
  }
}

// `hoot send` and `hoot tail` through a gateway ride out their channel's owner node dying and
// coming back: send sends again (same ids) what owner_unavailable refused, tail subscribes
// again after its last seq; every line is acknowledged and printed once, in order.
TEST_F(HootdClusterTest, HootSendAndTailRideOutTheirOwnerNodesRestart) {
  auto owner = StartNode("owner", "owner-a", 1);
  auto gateway = StartNode("gateway", "gateway-a", 1);
  ASSERT_TRUE(owner && gateway);
  ASSERT_TRUE(Linked(*gateway, 1));
  auto as = [&](const std::string& user, std::vector<std::string> args) {
    std::vector<std::string> full = {
        "--server", "127.0.0.1:" + std::to_string(gateway->port()), "--token",
        signer_->Mint(user, static_cast<int64_t>(std::time(nullptr)) + 3600)};
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
  EXPECT_EQ(gateway->Stop(), 0);
  EXPECT_EQ(owner->Stop(), 0);
}

// The same access rules as one hootd's (tests/server/access_rules.h), with Ada and Bo on
// different gateways and the channels placed on two owners.
TEST_F(HootdClusterTest, TheAccessRulesHoldThroughGateways) {
  auto owner_a = StartNode("owner", "owner-a", 1);
  auto owner_b = StartNode("owner", "owner-b", 1);
  auto gateway_a = StartNode("gateway", "gateway-a", 1);
  auto gateway_b = StartNode("gateway", "gateway-b", 1);
  ASSERT_TRUE(owner_a && owner_b && gateway_a && gateway_b);
  ASSERT_TRUE(Linked(*gateway_a, 2) && Linked(*gateway_b, 2));
  auto ada = Connect(*gateway_a, "ada");
  auto bo = Connect(*gateway_b, "bo");
  ASSERT_TRUE(ada && bo);
  CheckAccessRules(*ada, *bo);
  ada->Close();
  bo->Close();
  for (HootdProcess* node : {gateway_a.get(), gateway_b.get(), owner_a.get(), owner_b.get()}) {
    EXPECT_EQ(node->Stop(), 0);
  }
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
