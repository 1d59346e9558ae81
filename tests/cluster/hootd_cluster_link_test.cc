// Node links between hootd processes (docs/CLUSTER.md): only nodes holding the cluster's key
// link, and an owner serves a channel only while its placement in etcd names the owner's node.
// A link of the test's own (tests/cluster/raw_node_link.h) sends the owner what no gateway of
// ours would.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <variant>
#include <vector>

#include "auth/token.h"
#include "client/client.h"
#include "cluster/etcd_client.h"
#include "cluster/keys.h"
#include "core/chat/node_codec.h"
#include "core/link_auth.h"
#include "tests/cluster/hootd_cluster.h"
#include "tests/cluster/raw_node_link.h"

namespace hoot::testing {
namespace {

using std::chrono::milliseconds;

core::chat::Call ListCall() {
  core::chat::Call call;
  call.connection_id = 1;
  call.user = "ada";
  call.op = core::chat::ListChannelsOp{};
  return call;
}

// A node link is only for nodes holding the cluster's key (derived from its one secret file):
// a gateway given another secret never links, and an owner takes no call before a correct
// proof, and closes a connection that does not prove itself within 5 s. A client that does
// prove itself, written from docs/CLUSTER.md, is served.
TEST_F(HootdClusterTest, ALinkWithoutTheClusterKeyIsRefused) {
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
  // It keeps trying, and every try is refused: the owner's proof does not hold under its key.
  ASSERT_TRUE(Eventually(
      [&] { return Metric(*stranger, "hoot_gateway_link_connect_failures_total") >= 3; }));
  EXPECT_EQ(Metric(*stranger, "hoot_gateway_links"), 0);
  EXPECT_EQ(Metric(*owner, "hoot_owner_links"), 0);
  // The owner sees it too: each try hangs up on the welcome.
  EXPECT_GE(Metric(*owner, "hoot_owner_links_refused_total"), 3);
  EXPECT_EQ(stranger->Stop(), 0);

  const std::string link_key = signer_->DeriveKey(core::kLinkKeyPurpose);
  const std::string list_call = RawNodeLink::CallFrame(ListCall(), 1);
  double refused_before = Metric(*owner, "hoot_owner_links_refused_total");
  // Says nothing: closed at the handshake's deadline (5 s).
  RawNodeLink silent(owner->port(), kCluster, "owner-a");
  RawNodeLink unproven(owner->port(), kCluster, "owner-a");  // Stops after its hello: the same.
  ASSERT_TRUE(unproven.Hello(link_key));
  {
    SCOPED_TRACE("a call straight after the welcome, with no proof");
    RawNodeLink link(owner->port(), kCluster, "owner-a");
    ASSERT_TRUE(link.Hello(link_key));
    ASSERT_TRUE(link.Write(list_call));
    EXPECT_FALSE(link.Read().has_value()) << "the owner answered a call before any proof";
  }
  {
    SCOPED_TRACE("a proof under another key");
    RawNodeLink link(owner->port(), kCluster, "owner-a");
    ASSERT_TRUE(link.Hello(link_key));
    std::string proof =
        core::LinkProof(std::string(32, 'x'), core::LinkSide::kGateway, link.Transcript());
    ASSERT_TRUE(link.Write(RawNodeLink::ProofFrame(proof) + list_call));
    EXPECT_FALSE(link.Read().has_value()) << "the owner took a wrong proof";
  }
  {
    SCOPED_TRACE("the owner's own proof sent back");
    RawNodeLink link(owner->port(), kCluster, "owner-a");
    ASSERT_TRUE(link.Hello(link_key));
    std::string proof = core::LinkProof(link_key, core::LinkSide::kOwner, link.Transcript());
    ASSERT_TRUE(link.Write(RawNodeLink::ProofFrame(proof) + list_call));
    EXPECT_FALSE(link.Read().has_value()) << "the owner took its own proof as the gateway's";
  }
  EXPECT_TRUE(silent.ClosedWithin(milliseconds(10000)));
  EXPECT_TRUE(unproven.ClosedWithin(milliseconds(10000)));
  EXPECT_EQ(Metric(*owner, "hoot_owner_links_refused_total") - refused_before, 5);
  EXPECT_EQ(Metric(*owner, "hoot_owner_link_calls_total"), 0);
  {
    SCOPED_TRACE("the right proof");
    RawNodeLink link(owner->port(), kCluster, "owner-a");
    ASSERT_TRUE(link.Handshake(link_key));
    std::optional<core::chat::Answer> answer = link.Call(ListCall(), 1);
    ASSERT_TRUE(answer.has_value());
    EXPECT_TRUE(std::holds_alternative<core::chat::RowsAnswer>(*answer));
    EXPECT_EQ(Metric(*owner, "hoot_owner_links"), 1);
  }
  EXPECT_EQ(owner->Stop(), 0);
}

// The fence's second half: an owner serves a channel only while its placement in etcd names
// the owner's node. Rewritten to name another (a move), the old owner ends the channel's
// subscriptions and refuses its calls, even from a link that still sends them there.
TEST_F(HootdClusterTest, AnOwnerServesNoChannelItsPlacementNoLongerNames) {
  auto [owner, gateway] = StartLinkedOwnerAndGateway();
  ASSERT_TRUE(owner && gateway);
  Desk desk = DeskWithBoReading(*gateway);
  ASSERT_TRUE(desk.ada);

  // A link of our own to the owner, proven with the cluster's key: it reaches the owner
  // whatever the gateways' placements say.
  RawNodeLink link(owner->port(), kCluster, "owner-a");
  ASSERT_TRUE(link.Handshake(signer_->DeriveKey(core::kLinkKeyPurpose)));
  uint32_t call_id = 0;
  auto send_on_link = [&](uint64_t client_message_id) {
    core::chat::Call call;
    call.connection_id = 1;
    call.user = "ada";
    call.channel = "desk";
    call.op = core::chat::SendOp{client_message_id, "over the raw link"};
    std::optional<core::chat::Answer> answer = link.Call(std::move(call), ++call_id);
    EXPECT_TRUE(answer.has_value()) << "no answer on the raw link";
    return answer.value_or(core::chat::Answer{});
  };
  core::chat::Answer sent = send_on_link(2);
  ASSERT_TRUE(std::holds_alternative<core::chat::SentAnswer>(sent));
  EXPECT_EQ(std::get<core::chat::SentAnswer>(sent).seq, 2u);
  ASSERT_TRUE(NextMessage(*desk.bo).has_value());

  // The channel moves: its placement names owner-b.
  cluster::EtcdClient etcd(etcd_->ClientOptions());
  ASSERT_TRUE(etcd.Put(cluster::ChannelKey(kCluster, "desk"),
                       cluster::EncodePlacementRecord({"owner-b", "moved-by-the-test"}))
                  .ok());
  // Bo's subscription ends, from the owner, which no longer holds the channel.
  ASSERT_NO_FATAL_FAILURE(ExpectOwnerUnavailableEnds(*desk.bo, "desk"));
  // A call that still reaches the old owner is refused, retryably, and appends nothing.
  core::chat::Answer refused = send_on_link(3);
  const auto* refusal = std::get_if<core::chat::Refused>(&refused);
  ASSERT_NE(refusal, nullptr);
  EXPECT_EQ(refusal->code, proto::ErrorCode::kOwnerUnavailable) << refusal->text;
  // Through the gateway, which follows the placement to owner-b, not in the cluster: the
  // same, and it names where the channel is now.
  ASSERT_TRUE(Eventually([&] {
    auto through_gateway = desk.ada->Send("desk", 4, "after the move");
    return client::ServerErrorCode(through_gateway.status()) ==
               proto::ErrorCode::kOwnerUnavailable &&
           through_gateway.status().message().find(
               "owner node owner-b, which is not in the "
               "cluster") != std::string_view::npos;
  }));

  // Moved back, the owner serves it again, from where it was: seq 3 is the next.
  ASSERT_TRUE(etcd.Put(cluster::ChannelKey(kCluster, "desk"),
                       cluster::EncodePlacementRecord({"owner-a", "moved-back-by-the-test"}))
                  .ok());
  ASSERT_TRUE(Eventually([&] {
    auto again = desk.ada->Send("desk", 5, "back home");
    return again.ok() && again->seq == 3;
  }));
  desk.ada->Close();
  desk.bo->Close();
  ExpectEachStops({gateway.get(), owner.get()});
}

}  // namespace
}  // namespace hoot::testing
