// The gateway role of the chat service on one shard: it accepts clients on the shard's own
// SO_REUSEPORT listener, runs a ServerSession for each, indexes their subscriptions by
// channel, delivers the owners' fan-out pages and revocations to them, routes the owners'
// answers back to their sessions, and keeps the per-user send buckets and the sessions'
// timeouts. It reaches owners only through its GatewayHost (ChatShard sends over the shard's
// rings).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "auth/token.h"
#include "core/chat/ops.h"
#include "core/chat/server_session.h"
#include "core/connection_limits.h"
#include "core/server_options.h"
#include "core/shard.h"
#include "io/tcp.h"

namespace hoot::core::chat {

// What a gateway needs from the shard's composition.
class GatewayHost {
 public:
  virtual ~GatewayHost() = default;
  // The call to its owner (call->owner), over the ring: it comes back through OnAnswer.
  virtual void SendToOwner(Call* call) = 0;
  // Owners a scatter asks (SessionHost::owner_count).
  virtual unsigned owner_count() const = 0;
  // A page back to the owner that lent it.
  virtual void SendPageHome(Page* page) = 0;
  // A call came back or a session closed: a drain may be complete.
  virtual void OnGatewaySettled() = 0;
  // A session's survey around the shards: it comes back through OnSurvey.
  virtual void StartSurvey(Survey* survey) = 0;
};

class Gateway : public io::TcpHandler, private SessionHost {
 public:
  // Listens on options.listen_host:port on the shard's ring.
  static absl::StatusOr<std::unique_ptr<Gateway>> Listen(Shard& shard, GatewayHost& host,
                                                         const ServerOptions& options,
                                                         const auth::TokenSigner* signer,
                                                         ConnectionLimits* limits);
  ~Gateway() override;

  uint16_t port() const { return tcp_->port(); }
  // Owners' messages for this gateway.
  void OnAnswer(Call* call);
  void OnFanOut(Page* page);
  void OnRevoke(Page* page);
  // An admin survey back from every shard: answered to its session, if still open, and freed.
  void OnSurvey(Survey* survey);

  // Shutdown: stop accepting; from then on requests are refused with shutting_down.
  void BeginDrain();
  // Tells every open session `shutting_down` (which closes it once flushed).
  void SayShuttingDownToAll();
  // Calls sent to owners and not yet back.
  size_t calls_out() const { return calls_out_; }
  size_t session_count() const { return sessions_.size(); }
  const std::unordered_map<uint64_t, std::unique_ptr<ServerSession>>& sessions() const {
    return sessions_;
  }
  // Channels with a subscription on this gateway.
  std::vector<std::string> SubscribedChannels() const;
  // For metrics.
  const GatewayStats& counters() const { return stats_; }
  const io::TcpStats& tcp_stats() const { return tcp_->stats(); }

  // io::TcpHandler.
  void OnAccept(io::TcpConnection& connection) override;
  void OnData(io::TcpConnection& connection, std::string_view data) override;
  void OnClose(io::TcpConnection& connection, int error) override;
  void OnOutboundBelow(io::TcpConnection& connection) override;

 private:
  Gateway(Shard& shard, GatewayHost& host, const ServerOptions& options,
          const auth::TokenSigner* signer, ConnectionLimits* limits);
  ServerSession* FindSession(uint64_t connection_id);
  void Housekeeping();

  // SessionHost.
  unsigned shard_id() const override { return shard_.id(); }
  unsigned shard_count() const override { return shard_.shard_count(); }
  unsigned owner_count() const override { return host_.owner_count(); }
  void ToOwner(Call* call) override;
  size_t waiting_for_rings() const override { return shard_.overflowed(); }
  bool TakeSendToken(const std::string& user) override;
  bool draining() const override { return draining_; }
  uint64_t NextSubscriptionId() override { return next_subscription_id_++; }
  void Index(Subscription& subscription) override;
  void Unindex(Subscription& subscription) override;
  void CloseAfterGrace(uint64_t session_id) override;
  void ReturnPage(Page* page) override { host_.SendPageHome(page); }
  SteadyTime SteadyNow() override { return std::chrono::steady_clock::now(); }
  uint64_t NowUnixNs() override;
  GatewayStats& stats() override { return stats_; }
  void StartSurvey(Survey* survey) override { host_.StartSurvey(survey); }

  Shard& shard_;
  GatewayHost& host_;
  const ServerOptions& options_;
  SessionConfig session_config_;
  struct SendBucket {
    double tokens = 0;
    SteadyTime refilled;
  };
  std::unordered_map<std::string, SendBucket> send_buckets_;
  std::unordered_map<uint64_t, std::unique_ptr<ServerSession>> sessions_;
  // Channel -> the local subscriptions to it, for fan-out.
  std::unordered_map<std::string, std::set<Subscription*>> subscribers_;
  uint64_t next_subscription_id_ = 1;
  size_t calls_out_ = 0;
  GatewayStats stats_;
  bool draining_ = false;
  TimerId housekeeping_timer_ = 0;
  TaskGuard guard_;  // Its tasks and timers do nothing once it is gone.
  // Last: destroying it closes the connections, whose sessions need the rest.
  std::unique_ptr<io::TcpServer> tcp_;
};

}  // namespace hoot::core::chat
