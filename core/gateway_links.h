// A gateway node's side of the node links (docs/CLUSTER.md, "The node protocol", "Routing"):
// on each gateway shard, one link to every shard of every live owner node, opened with an
// io_uring connect and NODE_HELLO, and reopened while the owner stays in the view. It routes
// the gateway's calls: a channel's to the shard its placement names (placing it in etcd
// first on CREATE_CHANNEL, through the ClusterControl), a scatter's to every linked owner
// shard in turn. Answers, fan-out pages and revocations come back to the gateway in the
// link's order. A link that closes fails its calls in flight retryably (owner_unavailable)
// and ends the subscriptions of the channels it carried with SUBSCRIPTION_ENDED
// owner_unavailable, before anything else reaches them: no gap, and a resubscription from
// the last seq goes on where the client stopped.
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

struct GatewayLinkStats {
  uint64_t links_opened = 0;  // Welcomed.
  uint64_t links_lost = 0;    // Closed after their welcome.
  uint64_t connect_failures = 0;
  uint64_t calls = 0;
  uint64_t calls_failed = 0;  // Answered owner_unavailable by the gateway itself.
  uint64_t pages = 0;         // Fan-out pages and revocations received.
};

class GatewayLinks : public io::TcpHandler {
 public:
  static absl::StatusOr<std::unique_ptr<GatewayLinks>> Create(Shard& shard, chat::Gateway& gateway,
                                                              const ServerOptions& options);
  ~GatewayLinks() override;

  // The gateway's call on its way to an owner (GatewayHost::SendToOwner).
  void Send(chat::Call* call);
  // Owner shards a scatter goes to: every owner shard of the view, when each has an open link;
  // else 0 (the scatter is refused owner_unavailable rather than answered without them).
  unsigned scatter_width() const;
  // The control thread's new view: links open to new owner nodes, close to those gone.
  void OnView(std::shared_ptr<const ClusterView> view);
  size_t open_links() const { return ready_.size(); }
  const GatewayLinkStats& stats() const { return stats_; }
  // Stops reconnecting and closes every link (their calls fail).
  void Shutdown();

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
    absl::flat_hash_map<uint32_t, chat::Call*> calls;  // In flight, by link call id.
    uint32_t next_call_id = 1;
    TimerId timer = 0;  // The retry due (kIdle), or the welcome's deadline (kHello).
    Link();
  };
  using LinkKey = std::pair<std::string, unsigned>;  // (owner node, owner shard)

  GatewayLinks(Shard& shard, chat::Gateway& gateway, const ServerOptions& options);
  // Opens the link: a non-blocking connect, the socket adopted at once (io_uring's sends and
  // receives wait for it to connect), NODE_HELLO queued, and a deadline for the welcome.
  void Connect(Link& link);
  void RetryLater(Link& link);
  // The link leaves the view: lost, then destroyed.
  void Retire(std::unique_ptr<Link> link, std::string_view why);
  bool OnFrame(Link& link, const proto::Frame& frame);
  // Closes the link (if open), ends its channels' subscriptions, fails its calls.
  void Lost(Link& link, std::string_view why);
  void RebuildReady();
  // Where a placed channel's calls go; null when that owner node or its link is not there.
  Link* Route(const std::string& channel, const std::string& owner_node);
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
  std::map<LinkKey, std::unique_ptr<Link>> links_;
  std::vector<Link*> ready_;  // Welcomed links, in key order: a scatter's targets.
  // Placements this shard learned from the control (ahead of the view's copy).
  absl::flat_hash_map<std::string, std::string> learned_;
  // Calls waiting for a placement answer, by channel (one question at a time per channel).
  absl::flat_hash_map<std::string, std::vector<chat::Call*>> waiting_;
  std::vector<chat::Call*> answered_;  // By AnswerLater, not handed back yet.
  bool answer_posted_ = false;
  bool shut_down_ = false;
  GatewayLinkStats stats_;
  std::string scratch_;
  TaskGuard guard_;
  std::shared_ptr<GatewayLinks*> self_ = std::make_shared<GatewayLinks*>(this);  // For Place.
  // Last: destroying it closes the connections, whose OnClose needs the rest.
  std::unique_ptr<io::TcpServer> tcp_;
};

}  // namespace hoot::core
