#include "core/chat/gateway.h"

#include <algorithm>
#include <vector>

#include "base/check.h"
#include "base/clock.h"

namespace hoot::core::chat {

namespace {

constexpr auto kHousekeepingPeriod = std::chrono::milliseconds(250);
constexpr auto kCloseGracePeriod = std::chrono::seconds(2);

// A session's transport: its TCP connection on the shard's ring.
class TcpTransport final : public Transport {
 public:
  explicit TcpTransport(io::TcpConnection& connection) : connection_(connection) {}
  void Send(std::string_view bytes) override { connection_.Send(bytes); }
  void Send(std::shared_ptr<const std::string> bytes) override {
    connection_.Send(std::move(bytes));
  }
  size_t outbound_bytes() const override { return connection_.outbound_bytes(); }
  void NotifyWhenOutboundBelow(size_t bytes) override {
    connection_.NotifyWhenOutboundBelow(bytes);
  }
  void PauseReceiving() override { connection_.PauseReceiving(); }
  void ResumeReceiving() override { connection_.ResumeReceiving(); }
  bool receiving_paused() const override { return connection_.receiving_paused(); }
  void CloseAfterFlush() override { connection_.CloseAfterFlush(); }
  void Close() override { connection_.Close(); }

 private:
  io::TcpConnection& connection_;
};

ServerSession* SessionOf(io::TcpConnection& connection) {
  return static_cast<ServerSession*>(connection.user_data);
}

}  // namespace

Gateway::Gateway(Shard& shard, GatewayHost& host, const ServerOptions& options,
                 const auth::TokenSigner* signer, ConnectionLimits* limits)
    : shard_(shard), host_(host), options_(options) {
  session_config_.options = &options;
  session_config_.signer = signer;
  session_config_.limits = limits;
}

absl::StatusOr<std::unique_ptr<Gateway>> Gateway::Listen(Shard& shard, GatewayHost& host,
                                                         const ServerOptions& options,
                                                         const auth::TokenSigner* signer,
                                                         ConnectionLimits* limits) {
  std::unique_ptr<Gateway> gateway(new Gateway(shard, host, options, signer, limits));
  io::TcpServerOptions tcp_options;
  tcp_options.host = options.listen_host;
  tcp_options.port = options.port;
  tcp_options.outbound_bytes_max = options.outbound_bytes_max;
  auto tcp = io::TcpServer::Listen(shard.ring(), tcp_options, gateway.get());
  if (!tcp.ok()) return tcp.status();
  gateway->tcp_ = std::move(*tcp);
  gateway->housekeeping_timer_ = shard.AddTimer(
      kHousekeepingPeriod, gateway->guard_.Wrap([g = gateway.get()] { g->Housekeeping(); }));
  return gateway;
}

Gateway::~Gateway() {
  shard_.CancelTimer(housekeeping_timer_);
  // Closing the connections closes their sessions, which detach their subscriptions (calls to
  // the owners): before the rest of the gateway goes.
  tcp_.reset();
}

// ---- Connections ---------------------------------------------------------------------------

void Gateway::OnAccept(io::TcpConnection& connection) {
  SessionHost& host = *this;
  auto session = std::make_unique<ServerSession>(
      connection.id(), std::make_unique<TcpTransport>(connection), host, session_config_);
  connection.user_data = session.get();
  ServerSession& accepted = *session;
  sessions_[connection.id()] = std::move(session);
  accepted.OnAccept();
}

void Gateway::OnData(io::TcpConnection& connection, std::string_view data) {
  if (ServerSession* session = SessionOf(connection)) session->OnData(data);
}

void Gateway::OnOutboundBelow(io::TcpConnection& connection) {
  if (ServerSession* session = SessionOf(connection)) session->OnOutboundBelow();
}

void Gateway::OnClose(io::TcpConnection& connection, int /*error*/) {
  ServerSession* session = SessionOf(connection);
  if (session == nullptr) return;
  session->Close();
  connection.user_data = nullptr;
  sessions_.erase(session->id());
  host_.OnGatewaySettled();
}

ServerSession* Gateway::FindSession(uint64_t connection_id) {
  auto found = sessions_.find(connection_id);
  if (found == sessions_.end() || found->second->closing()) return nullptr;
  return found->second.get();
}

void Gateway::CloseAfterGrace(uint64_t session_id) {
  shard_.AddTimer(kCloseGracePeriod, guard_.Wrap([this, session_id] {
    auto found = sessions_.find(session_id);
    if (found != sessions_.end()) found->second->transport().Close();
  }));
}

void Gateway::Housekeeping() {
  auto now = SteadyNow();
  // A bucket refilled to its burst is what a fresh one would be: dropping it bounds the
  // buckets by the users who sent within the last burst / rate seconds.
  std::erase_if(send_buckets_, [&](const auto& entry) {
    double seconds = std::chrono::duration<double>(now - entry.second.refilled).count();
    return entry.second.tokens + seconds * options_.send_rate_per_user >=
           options_.send_burst_per_user;
  });
  std::vector<ServerSession*> sessions;
  for (auto& [id, session] : sessions_) sessions.push_back(session.get());
  for (ServerSession* session : sessions) session->Tick(now);
  housekeeping_timer_ =
      shard_.AddTimer(kHousekeepingPeriod, guard_.Wrap([this] { Housekeeping(); }));
}

void Gateway::BeginDrain() {
  draining_ = true;
  tcp_->StopAccepting();
}

void Gateway::SayShuttingDownToAll() {
  std::vector<ServerSession*> open;
  for (auto& [id, session] : sessions_) open.push_back(session.get());
  for (ServerSession* session : open) {
    if (!session->closing()) {
      session->SendError(0, proto::ErrorCode::kShuttingDown, "hootd is shutting down");
    }
  }
}

// ---- Sessions' services --------------------------------------------------------------------

void Gateway::ToOwner(Call* call) {
  ++calls_out_;
  host_.SendToOwner(call);
}

bool Gateway::TakeSendToken(const std::string& user) {
  if (options_.send_rate_per_user <= 0) return true;
  auto now = SteadyNow();
  auto [found, fresh] = send_buckets_.try_emplace(user);
  SendBucket& bucket = found->second;
  if (fresh) {
    bucket.tokens = options_.send_burst_per_user;
  } else {
    double seconds = std::chrono::duration<double>(now - bucket.refilled).count();
    bucket.tokens = std::min(options_.send_burst_per_user,
                             bucket.tokens + seconds * options_.send_rate_per_user);
  }
  bucket.refilled = now;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

void Gateway::Index(Subscription& subscription) {
  subscribers_[subscription.channel].insert(&subscription);
}

void Gateway::Unindex(Subscription& subscription) {
  auto indexed = subscribers_.find(subscription.channel);
  if (indexed == subscribers_.end()) return;
  indexed->second.erase(&subscription);
  if (indexed->second.empty()) subscribers_.erase(indexed);
}

uint64_t Gateway::NowUnixNs() { return base::NowUnixNs(); }

// ---- Owners' messages ----------------------------------------------------------------------

void Gateway::OnAnswer(Call* call) {
  HOOT_CHECK(calls_out_ > 0);
  --calls_out_;
  uint64_t connection_id = call->connection_id;
  if (ServerSession* session = FindSession(connection_id)) {
    session->OnAnswer(call);
  } else {
    ServerSession::DropAnswer(call, *this);
  }
  if (ServerSession* still_open = FindSession(connection_id)) still_open->ResumeIfRoom();
  host_.OnGatewaySettled();
}

void Gateway::OnSurvey(Survey* survey) {
  std::unique_ptr<Survey> owned(survey);
  if (ServerSession* session = FindSession(survey->connection_id)) session->OnSurvey(*survey);
}

void Gateway::OnFanOut(Page* page) {
  ++stats_.fanout_pages;
  auto found = subscribers_.find(page->channel);
  if (found != subscribers_.end()) {
    std::shared_ptr<const std::string> shared;  // One copy per gateway, shared by its members.
    std::vector<Subscription*> slow;
    std::vector<Subscription*> fell_behind;
    for (Subscription* subscription : found->second) {
      switch (subscription->session->DeliverLive(*subscription, *page, &shared)) {
        case LiveDelivery::kSlowReader: slow.push_back(subscription); break;
        case LiveDelivery::kNotContiguous: fell_behind.push_back(subscription); break;
        case LiveDelivery::kSent:
        case LiveDelivery::kAlreadyHad: break;
      }
    }
    // After the loop: what they do may change the index.
    for (Subscription* subscription : slow) {
      subscription->session->SwitchToLog(*subscription, page->last_seq);
    }
    for (Subscription* subscription : fell_behind) {
      subscription->session->CatchUpFromLog(*subscription);
    }
  }
  if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) ReturnPage(page);
}

std::vector<std::string> Gateway::SubscribedChannels() const {
  std::vector<std::string> channels;
  for (const auto& [channel, subscriptions] : subscribers_) {
    if (!subscriptions.empty()) channels.push_back(channel);
  }
  return channels;
}

void Gateway::OnRevoke(Page* page) {
  std::vector<Subscription*> ending;
  auto found = subscribers_.find(page->channel);
  if (found != subscribers_.end()) {
    for (Subscription* subscription : found->second) {
      if (page->user.empty() || subscription->session->user() == page->user) {
        ending.push_back(subscription);
      }
    }
  }
  // The notice (if any) is the owner's: a HISTORY_RESET push when its log is damaged.
  for (Subscription* subscription : ending)
    subscription->session->Revoked(*subscription, page->frames);
  ReturnPage(page);
}

}  // namespace hoot::core::chat
