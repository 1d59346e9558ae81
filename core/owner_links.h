// An owner node's side of the node links (docs/CLUSTER.md, "The node protocol"): one shard's
// listener for gateway nodes. Each link that says NODE_HELLO (naming this cluster, node and
// shard) becomes a gateway index of the shard's owner, past its own shards' indices: calls
// read from it reach the owner as if a local gateway had sent them, and what the owner sends
// to that index (answers, fan-out pages, revocations) is encoded onto the link, in the order
// it was sent. A link that closes takes its subscriptions with it (Owner::ForgetGateway); the
// answers to its calls still at the owner are dropped when they come back.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/chat/owner.h"
#include "core/server_options.h"
#include "core/shard.h"
#include "io/tcp.h"
#include "proto/codec.h"

namespace hoot::core {

struct OwnerLinkStats {
  uint64_t links_accepted = 0;
  // A wrong NODE_HELLO or NODE_PROOF, none in time, a close after the welcome, too many in
  // their handshake, or a malformed frame.
  uint64_t links_refused = 0;
  uint64_t calls = 0;
  uint64_t answers = 0;
  uint64_t pages = 0;  // Fan-out pages and revocations.
};

class OwnerLinks : public io::TcpHandler {
 public:
  // Listens on options.link_host:link_port + shard (any free port when link_port is 0).
  static absl::StatusOr<std::unique_ptr<OwnerLinks>> Listen(Shard& shard, chat::Owner& owner,
                                                            const ServerOptions& options);
  ~OwnerLinks() override;

  uint16_t port() const { return tcp_->port(); }
  // Whether a gateway index is a link's (the owner's sends to it come here).
  bool IsLink(unsigned gateway) const { return gateway >= first_index_; }
  // What the owner sends to a link's gateway index. The call, page or revocation is done
  // with when these return (the owner's page goes back to its pool).
  void ToGateway(chat::Call* call);
  void FanOut(unsigned gateway, chat::Page* page);
  void Revoke(unsigned gateway, chat::Page* page);
  // Links open now (their gateway proven).
  size_t link_count() const;
  const OwnerLinkStats& stats() const { return stats_; }
  // Stops taking links and closes those open.
  void Shutdown();

  // io::TcpHandler.
  void OnAccept(io::TcpConnection& connection) override;
  void OnData(io::TcpConnection& connection, std::string_view data) override;
  void OnClose(io::TcpConnection& connection, int error) override;
  // A gateway node that does not read its link: closed rather than queued for without bound
  // (the gateway ends those subscriptions; its clients resume after their last seq).
  void OnOutboundCap(io::TcpConnection& connection) override;

 private:
  struct Link {
    io::TcpConnection* connection = nullptr;  // Null once closed.
    unsigned index = 0;                       // Its gateway index.
    bool welcomed = false;                    // NODE_WELCOME sent: its proof is awaited.
    bool proven = false;                      // The gateway's NODE_PROOF checked: calls are taken.
    std::string expected_proof;               // The gateway's, until it comes.
    std::string gateway_node;                 // As its NODE_HELLO named it.
    uint64_t accepted = 0;                    // Which accept this is (for its deadline).
    bool refused = false;                     // Closing for a fault of its own.
    size_t calls_at_owner = 0;  // Its slot is reused only once they are all back.
    proto::FrameReader reader;
    Link();
  };
  OwnerLinks(Shard& shard, chat::Owner& owner, const ServerOptions& options);
  Link* LinkOf(unsigned gateway);
  // Sends `page` to the gateway encoded by `encode`; a page that does not encode closes the link.
  void SendPage(unsigned gateway, const chat::Page& page,
                bool (*encode)(const chat::Page&, std::string*));
  // Handles one frame; false if the link must close (a wrong hello, a malformed frame).
  bool OnFrame(Link& link, const proto::Frame& frame);
  bool OnHello(Link& link, const proto::Frame& frame);
  bool OnProof(Link& link, const proto::Frame& frame);
  void Refuse(Link& link, std::string_view why);
  // Frees the link's slot if it is closed and none of its calls is still at the owner.
  void MaybeFree(Link& link);

  Shard& shard_;
  chat::Owner& owner_;
  const ServerOptions& options_;
  const unsigned first_index_;  // The shard count: indices below are this process's gateways.
  std::vector<std::unique_ptr<Link>> slots_;  // By index - first_index_; null: free.
  OwnerLinkStats stats_;
  std::string scratch_;  // Encoding buffer, reused.
  uint64_t accepts_ = 0;
  size_t handshakes_ = 0;  // Links accepted and not proven yet (open).
  TaskGuard guard_;  // Its timers do nothing once it is gone.
  // Last: destroying it closes the connections, whose OnClose needs the rest.
  std::unique_ptr<io::TcpServer> tcp_;
};

}  // namespace hoot::core
