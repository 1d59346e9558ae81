// A gateway node's side of the node links (docs/CLUSTER.md, "The node protocol", "Routing"):
// the node holds one link to every shard of every live owner node, opened with an io_uring
// connect and NODE_HELLO, and reopened while the owner stays in the view. Each link lives on
// one gateway shard of the node, its *home* (LinkHome); the other shards' calls for it cross
// to the home over the runtime's rings, and come back the same way. Every shard routes its
// own gateway's calls: a channel's to the owner shard its placement names (placing it in etcd
// first on CREATE_CHANNEL, through the ClusterControl), a scatter's to every owner shard in
// turn. Answers, fan-out pages and revocations leave the link in its order; the home hands
// each answer to the shard that asked, and each page to every shard with subscriptions
// attached over the link (one page per gateway node from the owner, fanned out across the
// node's shards here). A link that closes tells every shard first, which ends the
// subscriptions of the channels it carried with SUBSCRIPTION_ENDED owner_unavailable, then
// fails its calls in flight retryably (owner_unavailable): nothing it still had reaches those
// subscriptions, and a resubscription from the last seq goes on where the client stopped.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "core/chat/gateway.h"
#include "core/chat/ops.h"
#include "core/cluster_control.h"
#include "core/server_options.h"
#include "core/shard.h"
#include "io/tcp.h"
#include "proto/codec.h"

namespace hoot::core {

// A link of the node closed: every gateway shard ends its subscriptions to the channels the
// link carried (the owner shard `shard` of node `node`; every shard of it when
// `owner_shards` is 0, the node having left the view).
struct LinkLoss {
  std::string node;
  unsigned shard = 0;
  unsigned owner_shards = 0;
};

// What a gateway shard's links reach on the node's other shards (ChatShard carries each over
// the runtime's rings, in order per pair of shards).
class LinkRelay {
 public:
  virtual ~LinkRelay() = default;
  // A call to the shard whose link carries it (GatewayLinks::SendHere there).
  virtual void CallToLinkHome(unsigned home, chat::Call* call) = 0;
  // An answer back to the shard that sent the call (call->gateway): Gateway::OnAnswer there.
  virtual void AnswerToGateway(chat::Call* call) = 0;
  virtual void FanOutToGateway(unsigned gateway, chat::Page* page) = 0;
  virtual void RevokeOnGateway(unsigned gateway, chat::Page* page) = 0;
  virtual void LinkLostOnGateway(unsigned gateway, std::unique_ptr<LinkLoss> loss) = 0;
};

// The gateway shard that holds the node's link to owner shard `owner_shard` of `owner_node`.
unsigned LinkHome(const std::string& owner_node, unsigned owner_shard, unsigned gateway_shards);

struct GatewayLinkStats {
  uint64_t links_opened = 0;  // Welcomed.
  uint64_t links_lost = 0;    // Closed after their welcome.
  uint64_t connect_failures = 0;
  uint64_t calls = 0;         // Sent on this shard's links, for any shard of the node.
  uint64_t calls_failed = 0;  // Answered owner_unavailable by the gateway itself.
  uint64_t pages = 0;         // Fan-out pages and revocations received.
};

class GatewayLinks : public io::TcpHandler {
 public:
  static absl::StatusOr<std::unique_ptr<GatewayLinks>> Create(Shard& shard, chat::Gateway& gateway,
                                                              LinkRelay& relay,
                                                              const ServerOptions& options);
  ~GatewayLinks() override;

  // The gateway's call on its way to an owner (GatewayHost::SendToOwner): routed, then sent
  // on the link here or handed to the link's home shard.
  void Send(chat::Call* call);
  // On the link's home: a routed call (call->owner_node, call->owner) from any shard.
  void SendHere(chat::Call* call);
  // On every shard: a link of the node closed (LinkRelay::LinkLostOnGateway).
  void OnLinkLost(const LinkLoss& loss);
  // Owner shards a scatter goes to: every owner shard of the view (0 without one: refused
  // owner_unavailable). A part whose link is not open is refused owner_unavailable, and so
  // is the scatter: never answered without an owner's rows.
  unsigned scatter_width() const;
  // The control thread's new view: links open to new owner nodes, close to those gone.
  void OnView(std::shared_ptr<const ClusterView> view);
  // Links homed on this shard and open.
  size_t open_links() const;
  const GatewayLinkStats& stats() const { return stats_; }
  // The shards are stopping: from now on every call fails here, reaching no other shard.
  void StopRouting() { shut_down_ = true; }

  // io::TcpHandler.
  void OnAccept(io::TcpConnection& connection) override;
  void OnData(io::TcpConnection& connection, std::string_view data) override;
  void OnClose(io::TcpConnection& connection, int error) override;
  // An owner that does not read its link: it is closed (its calls fail retryably).
  void OnOutboundCap(io::TcpConnection& connection) override;

 private:
  struct Link {
    std::string node;
    unsigned shard = 0;
    OwnerNode::Address address;
    // kIdle: no connection (a retry may be due); kHello: connecting, then waiting for
    // NODE_WELCOME; kReady: calls go on it.
    enum class State { kIdle, kHello, kReady } state = State::kIdle;
    io::TcpConnection* connection = nullptr;
    proto::FrameReader reader;
    std::string nonce;  // NODE_HELLO's, until the owner's proof is checked.
    absl::flat_hash_map<uint32_t, chat::Call*> calls;  // In flight, by link call id.
    uint32_t next_call_id = 1;
    // Channel -> subscriptions attached over the link, by gateway shard: where its pages go.
    absl::flat_hash_map<std::string, std::vector<uint32_t>> subscribers;
    TimerId timer = 0;  // The retry due (kIdle), or the welcome's deadline (kHello).
    // This link's life since its last welcome: what its subscriptions' unsubscribes carry
    // (Call::attachment), so that none of a lost life reaches a later one.
    uint64_t incarnation = 0;
    Link();
  };
  using LinkKey = std::pair<std::string, unsigned>;  // (owner node, owner shard)

  GatewayLinks(Shard& shard, chat::Gateway& gateway, LinkRelay& relay,
               const ServerOptions& options);
  // Opens the link: a non-blocking connect, the socket adopted at once (io_uring's sends and
  // receives wait for it to connect), NODE_HELLO queued, and a deadline for the welcome.
  void Connect(Link& link);
  void RetryLater(Link& link);
  // The link leaves the view: lost, then destroyed.
  void Retire(std::unique_ptr<Link> link, std::string_view why);
  bool OnFrame(Link& link, const proto::Frame& frame);
  // Closes the link (if open), ends its channels' subscriptions on every shard, fails its
  // calls.
  void Lost(Link& link, std::string_view why);
  // Sets the call's owner shard of `owner_node` and hands it to that link's home.
  void Forward(chat::Call* call, const std::string& owner_node, unsigned owner_shard);
  // Gateway shards with subscriptions to `channel` attached over `link`.
  std::vector<unsigned> Subscribed(const Link& link, const std::string& channel) const;
  void DeliverFanOut(Link& link, std::unique_ptr<chat::Page> page);
  void DeliverRevocation(Link& link, std::unique_ptr<chat::Page> page);
  // The answer to the shard that asked (here, or over the rings).
  void Deliver(chat::Call* call);
  // The owner node a channel is placed on, as far as this shard knows ("" if unknown).
  const std::string* KnownPlacement(const std::string& channel) const;
  void SendOn(Link& link, chat::Call* call);
  void AskPlacement(const std::string& channel, bool create);
  void OnPlaced(const std::string& channel, absl::StatusOr<std::string> owner);
  // Answers the call on the gateway's behalf (on a later turn: never inside the sender).
  void Fail(chat::Call* call, proto::ErrorCode code, std::string text);
  // Hands the call back to the gateway on a later turn (answered here, not by an owner).
  void AnswerLater(chat::Call* call);

  Shard& shard_;
  chat::Gateway& gateway_;
  const ServerOptions& options_;
  std::shared_ptr<const ClusterView> view_;
  LinkRelay& relay_;
  std::map<LinkKey, std::unique_ptr<Link>> links_;  // Homed on this shard.
  std::vector<LinkKey> owner_shards_;  // Every owner shard of the view: a scatter's targets.
  // Placements this shard learned from the control (ahead of the view's copy).
  absl::flat_hash_map<std::string, std::string> learned_;
  // Calls waiting for a placement answer, by channel (one question at a time per channel).
  absl::flat_hash_map<std::string, std::vector<chat::Call*>> waiting_;
  std::vector<chat::Call*> answered_;  // By AnswerLater, not handed back yet.
  bool answer_posted_ = false;
  bool shut_down_ = false;
  uint64_t next_incarnation_ = 1;
  GatewayLinkStats stats_;
  std::string scratch_;
  TaskGuard guard_;
  std::shared_ptr<GatewayLinks*> self_ = std::make_shared<GatewayLinks*>(this);  // For Place.
  // Last: destroying it closes the connections, whose OnClose needs the rest.
  std::unique_ptr<io::TcpServer> tcp_;
};

}  // namespace hoot::core
