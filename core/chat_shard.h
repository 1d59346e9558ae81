// The chat service on one shard: the composition of its two roles (core/chat/).
//
// - chat::Gateway: accepts clients on the shard's own SO_REUSEPORT listener, runs their
//   sessions (handshake, requests, subscriptions) and pushes messages to them;
// - chat::Owner: owns the channels whose name hashes to this shard (hash % shards). The owner
//   alone checks membership, deduplicates and appends sends, assigns seqs, group-commits them
//   to its log, and only after the commit acknowledges the sender and fans the messages out:
//   one ring entry per gateway shard with subscribers, whatever the number of subscribers.
//
// A cluster's nodes run one role each (ServerOptions::role): a gateway node has no owner, and
// reaches owner nodes through its GatewayLinks; an owner node has no gateway, and serves
// gateway nodes through its OwnerLinks, each link a gateway index past this process's shards.
//
// Gateways and owners talk only through the runtime's rings (core/shard.h), through the
// envelopes this composition defines, and memory that crosses goes back to the shard that
// allocated it: a chat::Call (a request) is the gateway's and comes back to it with its
// answer; a chat::Page (records read for a reader, or a fan-out batch) is the owner's and
// comes back to be reused. The composition also owns the shutdown drain.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "auth/token.h"
#include "core/chat/gateway.h"
#include "core/chat/ops.h"
#include "core/chat/owner.h"
#include "core/cluster_control.h"
#include "core/connection_limits.h"
#include "core/gateway_links.h"
#include "core/metrics_server.h"
#include "core/owner_links.h"
#include "core/server_options.h"
#include "core/shard.h"
#include "log/storage.h"

namespace hoot::core {

using chat::OwnerOf;

class ChatShard : private chat::OwnerHost, private chat::GatewayHost, private LinkRelay {
 public:
  // On the shard's thread: opens and recovers the shard's log and metadata, then listens.
  static absl::StatusOr<std::unique_ptr<ChatShard>> Create(Shard& shard,
                                                           const ServerOptions& options,
                                                           const auth::TokenSigner* signer,
                                                           ConnectionLimits* limits);
  ~ChatShard() override;

  // Shutdown, on the shard's thread: stop accepting, let requests in flight finish and their
  // commits complete, then tell every client `shutting_down` and close. `drained` runs once
  // that is done.
  void BeginDrain(std::function<void()> drained);
  // Where clients connect (0 on an owner node), and gateway nodes link (0 but on an owner
  // node).
  uint16_t port() const { return gateway_ ? gateway_->port() : 0; }
  uint16_t link_port() const { return owner_links_ ? owner_links_->port() : 0; }
  // Where this shard serves /metrics; 0 if it does not (only shard 0 may).
  uint16_t metrics_port() const { return metrics_ ? metrics_->port() : 0; }
  // This shard's metrics (on its thread): its loop, its gateway, its owner and log.
  void AddMetrics(base::MetricFamilies& families) const;
  // On the shard's thread: the node's lease holds again; the owner releases what it held.
  void ResumeAcknowledging() {
    if (owner_) owner_->ResumeAcknowledging();
  }
  // On the shard's thread, a cluster node's: the owner nodes and placements now. A gateway
  // routes by them; an owner serves only the channels placed on its node.
  void OnClusterView(std::shared_ptr<const ClusterView> view);

 private:
  friend struct Envelopes;
  ChatShard(Shard& shard, const ServerOptions& options);
  void CheckDrained();
  // A survey (core/chat/ops.h) starts from this shard (a session's, through GatewayHost, or
  // the metrics server's), adds this shard's part, goes to the next shard, and is answered
  // once back home.
  void StartSurvey(chat::Survey* survey) override;
  void AddToSurvey(chat::Survey& survey) const;
  void AddGatewayMetrics(base::MetricFamilies& out, const base::Label& shard) const;
  void AddOwnerMetrics(base::MetricFamilies& out, const base::Label& shard) const;
  void AddLinkMetrics(base::MetricFamilies& out, const base::Label& shard) const;
  void PassSurveyOn(chat::Survey* survey);
  void SurveyDone(chat::Survey* survey);

  // chat::OwnerHost (the owner's sends go through the shard's rings).
  unsigned shard_id() const override { return shard_.id(); }
  unsigned shard_count() const override { return shard_.shard_count(); }
  void ToGateway(chat::Call* call) override;
  void FanOut(unsigned gateway, chat::Page* page) override;
  void Revoke(unsigned gateway, chat::Page* page) override;
  void Post(std::function<void()> task) override;
  void OnLogFailure(const absl::Status& status) override;
  bool MayAcknowledge() override;
  std::string_view PlacedElsewhere(const std::string& channel) override;

  // chat::GatewayHost.
  void SendToOwner(chat::Call* call) override;
  void SendPageHome(chat::Page* page) override;
  unsigned owner_count() const override;
  void OnGatewaySettled() override { CheckDrained(); }

  // LinkRelay (a gateway node's links, homed on one shard each, reach the others).
  void CallToLinkHome(unsigned home, chat::Call* call) override;
  void AnswerToGateway(chat::Call* call) override;
  void FanOutToGateway(unsigned gateway, chat::Page* page) override;
  void RevokeOnGateway(unsigned gateway, chat::Page* page) override;
  void LinkLostOnGateway(unsigned gateway, std::unique_ptr<LinkLoss> loss) override;

  Shard& shard_;
  const ServerOptions& options_;
  bool closing_for_drain_ = false;
  bool closed_for_drain_ = false;
  bool drain_timer_armed_ = false;
  std::function<void()> drained_;  // Set while draining, until called (the gateway's
                                    // draining() says whether a drain began).

  // Destroyed in reverse: the gateway first (closing its sessions calls the owner), then the
  // owner, then the storage its log store uses. Which of them there are is the role's.
  std::unique_ptr<log::Storage> storage_;
  std::unique_ptr<chat::Owner> owner_;           // Not on a gateway node.
  std::unique_ptr<OwnerLinks> owner_links_;      // An owner node's.
  std::unique_ptr<chat::Gateway> gateway_;       // Not on an owner node.
  std::unique_ptr<GatewayLinks> gateway_links_;  // A gateway node's.
  std::unique_ptr<MetricsServer> metrics_;  // Shard 0's, with --metrics-listen.
  std::shared_ptr<const ClusterView> placements_;  // An owner node's, from its control.
  TaskGuard guard_;  // Its tasks and timers do nothing once it is gone.
};

}  // namespace hoot::core
