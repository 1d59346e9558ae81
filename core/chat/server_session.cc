#include "core/chat/server_session.h"

#include <algorithm>

#include "base/check.h"
#include "core/chat/answer_frames.h"

namespace hoot::core::chat {

using proto::ErrorCode;

namespace {

// Client requests the gateway hands to channel owners (the rest it answers itself).
bool GoesToOwners(proto::MessageType type) {
  switch (type) {
    case proto::MessageType::kCreateChannel:
    case proto::MessageType::kJoin:
    case proto::MessageType::kLeave:
    case proto::MessageType::kInvite:
    case proto::MessageType::kListChannels:
    case proto::MessageType::kSubscribe:
    case proto::MessageType::kSend:
    case proto::MessageType::kFetchHistory:
    case proto::MessageType::kSetCursor:
    case proto::MessageType::kGetCursors:
    case proto::MessageType::kAdminStats:
    case proto::MessageType::kAdminChannel:
    case proto::MessageType::kAdminConnections: return true;
    default: return false;
  }
}

}  // namespace

ServerSession::ServerSession(uint64_t id, std::unique_ptr<Transport> transport, SessionHost& host,
                             const SessionConfig& config)
    : id_(id),
      transport_(std::move(transport)),
      host_(host),
      stats_(host.stats()),
      options_(*config.options),
      signer_(config.signer),
      limits_(config.limits) {
  accepted_at_ = last_received_ = host_.SteadyNow();
}

void ServerSession::OnAccept() {
  if (host_.draining()) {
    SendError(0, ErrorCode::kShuttingDown, "hootd is shutting down");
  } else if (!limits_->TryOpen(options_.connections_max)) {
    SendError(0, ErrorCode::kTooManyConnections,
              "the server has its limit of " + std::to_string(options_.connections_max) +
                  " connections open");
  } else {
    counted_ = true;
  }
}

// ---- Reading, and the bounds on what a client has in flight ----------------------------

void ServerSession::OnData(std::string_view data) {
  if (closing_) return;
  last_received_ = host_.SteadyNow();
  ping_outstanding_ = false;
  if (transport_->receiving_paused()) {
    // Taken by the receive before the pause ended it: kept, unparsed, for the resume.
    reader_.Hold(data);
    return;
  }
  ReadFrames(data);
}

void ServerSession::ReadFrames(std::string_view data) {
  proto::DecodeStatus status = reader_.Feed(data, [&](const proto::Frame& frame) {
    if (closing_) return false;
    HandleFrame(frame);
    return !PauseIfFull();
  });
  if (status != proto::DecodeStatus::kOk && !closing_) {
    SendError(0, proto::DecodeStatusError(status),
              status == proto::DecodeStatus::kFrameTooLarge
                  ? "frame larger than " + std::to_string(proto::kFrameBytesMax) + " bytes"
                  : std::string("bad frame header"));
  }
}

bool ServerSession::PauseIfFull() {
  bool requests_full = requests_in_flight_ >= options_.requests_in_flight_per_connection_max;
  bool answers_full = transport_->outbound_bytes() > options_.outbound_bytes_max;
  if (!requests_full && !answers_full) return false;
  // TCP pushes back on this client alone; OnAnswer and OnOutboundBelow resume it.
  transport_->PauseReceiving();
  if (answers_full) transport_->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
  return true;
}

void ServerSession::ResumeIfRoom() {
  if (!transport_->receiving_paused() || closing_) return;
  // Half way down both bounds, so that a client at its bound is not paused on every frame.
  if (requests_in_flight_ > options_.requests_in_flight_per_connection_max / 2) return;
  if (transport_->outbound_bytes() > options_.outbound_bytes_max / 2) {
    transport_->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
    return;
  }
  // The pause was the server's wait, not the client's silence.
  last_received_ = host_.SteadyNow();
  // What the socket gave before the pause comes first; the socket is read again only once
  // all of it is handled, so that what a session holds is one receive's worth at most.
  ReadFrames({});
  if (closing_ || reader_.holding()) return;
  if (requests_in_flight_ >= options_.requests_in_flight_per_connection_max ||
      transport_->outbound_bytes() > options_.outbound_bytes_max) {
    return;
  }
  transport_->ResumeReceiving();
}

void ServerSession::OnOutboundBelow() {
  if (closing_) return;
  std::vector<Subscription*> paused;
  for (auto& [channel, subscription] : subscriptions_) {
    if (subscription->paused) paused.push_back(subscription.get());
  }
  for (Subscription* subscription : paused) {
    subscription->paused = false;
    ContinueReplay(*subscription);
  }
  std::vector<Call*> history;
  history.swap(paused_history_);
  for (Call* call : history) {
    if (host_.draining()) {
      FreeCall(call);
    } else {
      host_.ToOwner(call);
    }
  }
  ResumeIfRoom();
}

void ServerSession::Close() {
  while (!subscriptions_.empty()) DetachSubscription(*subscriptions_.begin()->second);
  for (Call* call : paused_history_) FreeCall(call);
  paused_history_.clear();
  if (counted_) limits_->Closed();
  if (user_counted_) limits_->ClosedForUser(user_);
  counted_ = user_counted_ = false;
}

void ServerSession::Tick(SteadyTime now) {
  if (closing_) return;
  if (!welcomed_) {
    if (now - accepted_at_ > options_.handshake_timeout) {
      SendError(0, ErrorCode::kHandshakeTimeout,
                "no HELLO within " + std::to_string(options_.handshake_timeout.count()) + " ms");
    }
    return;
  }
  if (options_.idle_timeout.count() == 0) return;
  if (transport_->receiving_paused() &&
      transport_->outbound_bytes() <= options_.outbound_bytes_max) {
    // Not read because its requests are still at work: the wait is the server's.
    last_received_ = now;
    return;
  }
  auto silence = now - last_received_;
  if (silence > options_.idle_timeout) {
    SendError(0, ErrorCode::kIdleTimeout,
              "nothing received for " + std::to_string(options_.idle_timeout.count()) + " ms");
  } else if (silence > options_.idle_timeout / 2 && !ping_outstanding_) {
    ping_outstanding_ = true;
    proto::Ping ping;
    ping.nonce = ++ping_nonce_;
    SendFrame(ping, 0);
  }
}

// ---- Writing -------------------------------------------------------------------------------

void ServerSession::SendError(uint32_t correlation_id, ErrorCode code, std::string_view text) {
  stats_.CountError(code);
  if (!welcomed_ && !closing_ && proto::ErrorClosesConnection(code) &&
      code != ErrorCode::kHandshakeTimeout) {
    stats_.CountRefusal(code);
  }
  proto::Error error;
  error.code = code;
  error.text = text.substr(0, proto::kErrorTextBytesMax);
  SendFrame(error, correlation_id);
  if (proto::ErrorClosesConnection(code)) {
    closing_ = true;
    transport_->CloseAfterFlush();
    // A peer that does not read would keep the connection (and what is queued for it)
    // forever: after a grace period it is closed whatever is left.
    host_.CloseAfterGrace(id_);
  }
}

void ServerSession::SendAnswer(const Call& call) {
  if (std::holds_alternative<std::monostate>(call.result)) return;
  if (const auto* refused = std::get_if<Refused>(&call.result)) {
    stats_.CountError(refused->code);
  } else if (const auto* sent = std::get_if<SentAnswer>(&call.result)) {
    ++(sent->duplicate ? stats_.duplicates_answered : stats_.sends_acknowledged);
  }
  thread_local std::string scratch;
  scratch.clear();
  EncodeAnswer(call.result, call.channel, call.correlation_id, &scratch);
  transport_->Send(std::string_view(scratch));
}

// ---- Requests ------------------------------------------------------------------------------

void ServerSession::HandleFrame(const proto::Frame& frame) {
  ++stats_.frames_by_type[static_cast<uint16_t>(frame.type) & 0xff];
  if (!welcomed_ && frame.type != proto::MessageType::kHello) {
    return SendError(frame.correlation_id, ErrorCode::kUnexpectedType,
                     "the first frame must be HELLO");
  }
  proto::AnyMessage message = proto::MessageToDecodeInto();
  proto::DecodeStatus status = proto::DecodeMessage(frame, &message);
  if (status == proto::DecodeStatus::kUnknownType) {
    return SendError(frame.correlation_id, ErrorCode::kUnknownType,
                     "unknown message type " + std::to_string(static_cast<unsigned>(frame.type)));
  }
  if (frame.correlation_id == 0 && frame.type != proto::MessageType::kPong) {
    return SendError(0, ErrorCode::kMalformedFrame,
                     std::string(proto::MessageTypeName(frame.type)) +
                         " with correlation id 0, which only pushes carry");
  }
  if (status != proto::DecodeStatus::kOk) {
    return SendError(
        frame.correlation_id, ErrorCode::kMalformedFrame,
        std::string(proto::MessageTypeName(frame.type)) + " frame whose fields do not parse");
  }
  if (!welcomed_) return HandleHello(frame, std::get<proto::Hello>(message));
  if (host_.draining()) {
    return SendError(frame.correlation_id, ErrorCode::kShuttingDown, "hootd is shutting down");
  }
  HandleRequest(frame, message);
}

void ServerSession::HandleHello(const proto::Frame& frame, const proto::Hello& hello) {
  if (hello.magic != proto::kHelloMagic) {
    return SendError(frame.correlation_id, ErrorCode::kMalformedFrame,
                     "HELLO without the magic bytes \"HOOT\"");
  }
  uint16_t version = std::min(hello.version_max, proto::kVersionMax);
  if (version < hello.version_min || version < proto::kVersionMin) {
    return SendError(frame.correlation_id, ErrorCode::kUnsupportedVersion,
                     "this server speaks protocol versions " + std::to_string(proto::kVersionMin) +
                         " to " + std::to_string(proto::kVersionMax));
  }
  int64_t now_s = static_cast<int64_t>(host_.NowUnixNs() / 1000000000);
  auth::TokenCheck check = signer_->Verify(hello.token, now_s);
  if (check.error != auth::TokenError::kNone) {
    ErrorCode code = check.error == auth::TokenError::kExpired ? ErrorCode::kTokenExpired
                                                               : ErrorCode::kAuthFailed;
    return SendError(frame.correlation_id, code, check.message);
  }
  if (!limits_->TryOpenForUser(check.user, options_.connections_per_user_max)) {
    return SendError(frame.correlation_id, ErrorCode::kTooManyConnections,
                     check.user + " has its limit of " +
                         std::to_string(options_.connections_per_user_max) + " connections open");
  }
  user_counted_ = true;
  welcomed_ = true;
  user_ = check.user;
  role_ = check.role;
  client_name_ = hello.client_name;
  proto::Welcome welcome;
  welcome.version = version;
  welcome.idle_timeout_ms = static_cast<uint32_t>(options_.idle_timeout.count());
  welcome.server_time_unix_ns = host_.NowUnixNs();
  welcome.user = user_;
  SendFrame(welcome, frame.correlation_id);
}

Call* ServerSession::NewCall(Op op, uint32_t correlation_id, std::string_view channel) {
  Call* call = AllocateCall();
  call->op = std::move(op);
  call->gateway = host_.shard_id();
  call->connection_id = id_;
  call->correlation_id = correlation_id;
  call->user = user_;
  call->channel = channel;
  call->owner = channel.empty() ? host_.shard_id() : OwnerOf(channel, host_.shard_count());
  // What a client's frame asked for counts toward its bound; a replay's reads and a detach's
  // unsubscribe are the gateway's own (bounded by the subscriptions).
  if (!std::holds_alternative<ReplayReadOp>(call->op) &&
      !std::holds_alternative<UnsubscribeOp>(call->op)) {
    call->holds_slot = true;
    ++requests_in_flight_;
  }
  return call;
}

void ServerSession::ScatterToAllOwners(const Op& op, uint32_t correlation_id) {
  auto gather = std::make_shared<Gather>();
  unsigned owners = host_.owner_count();
  if (owners == 0) {
    return SendError(correlation_id, ErrorCode::kOwnerUnavailable,
                     "no owner node is reachable from this gateway now; retry");
  }
  gather->remaining = owners;
  for (unsigned owner = 0; owner < owners; ++owner) {
    Call* call = NewCall(op, correlation_id, "");
    call->owner = owner;
    call->gather = gather;
    host_.ToOwner(call);
  }
}

void ServerSession::HandleRequest(const proto::Frame& frame, const proto::AnyMessage& message) {
  uint32_t correlation = frame.correlation_id;
  if (GoesToOwners(frame.type) &&
      host_.waiting_for_rings() >= options_.requests_queued_per_shard_max) {
    // The rings to other shards are full and their overflow is at its bound: refusing here
    // keeps this shard's memory bounded however the owners fall behind.
    return SendError(correlation, ErrorCode::kBusy,
                     "hootd is overloaded (" + std::to_string(host_.waiting_for_rings()) +
                         " requests wait for another thread); nothing was done, retry later");
  }
  switch (frame.type) {
    case proto::MessageType::kPing: {
      proto::Pong pong;
      pong.nonce = std::get<proto::Ping>(message).nonce;
      SendFrame(pong, correlation);
      return;
    }
    case proto::MessageType::kPong: return;  // Any frame counts as a sign of life (OnData).
    case proto::MessageType::kCreateChannel: {
      const auto& create = std::get<proto::CreateChannel>(message);
      if (!CheckChannelName(correlation, create.channel)) return;
      return host_.ToOwner(
          NewCall(CreateChannelOp{create.visibility}, correlation, create.channel));
    }
    case proto::MessageType::kJoin: {
      const auto& join = std::get<proto::Join>(message);
      if (!CheckChannelName(correlation, join.channel)) return;
      return host_.ToOwner(NewCall(JoinOp{}, correlation, join.channel));
    }
    case proto::MessageType::kLeave: {
      const auto& leave = std::get<proto::Leave>(message);
      if (!CheckChannelName(correlation, leave.channel)) return;
      return host_.ToOwner(NewCall(LeaveOp{}, correlation, leave.channel));
    }
    case proto::MessageType::kInvite: {
      const auto& invite = std::get<proto::Invite>(message);
      if (!CheckChannelName(correlation, invite.channel)) return;
      if (!proto::IsValidUserName(invite.user)) {
        return SendError(correlation, ErrorCode::kInvalidUserName,
                         "user names are 1 to 64 bytes of A-Z a-z 0-9 . _ - and do not start "
                         "with '.'");
      }
      return host_.ToOwner(
          NewCall(InviteOp{std::string(invite.user)}, correlation, invite.channel));
    }
    case proto::MessageType::kListChannels:
      return ScatterToAllOwners(ListChannelsOp{}, correlation);
    case proto::MessageType::kSubscribe: {
      const auto& subscribe = std::get<proto::Subscribe>(message);
      if (!CheckChannelName(correlation, subscribe.channel)) return;
      return Subscribe(correlation, subscribe);
    }
    case proto::MessageType::kUnsubscribe: {
      const auto& unsubscribe = std::get<proto::Unsubscribe>(message);
      if (!CheckChannelName(correlation, unsubscribe.channel)) return;
      return Unsubscribe(correlation, unsubscribe.channel);
    }
    case proto::MessageType::kSend: {
      const auto& send = std::get<proto::Send>(message);
      if (!CheckChannelName(correlation, send.channel)) return;
      if (!host_.TakeSendToken(user_)) {
        return SendError(correlation, ErrorCode::kRateLimited,
                         "more than " +
                             std::to_string(static_cast<uint64_t>(options_.send_rate_per_user)) +
                             " sends a second; retry later");
      }
      Call* call = NewCall(SendOp{send.client_message_id, {}}, correlation, send.channel);
      // Into the body buffer a recycled call kept: no allocation once the pool is warm.
      std::get<SendOp>(call->op).body.assign(send.body);
      return host_.ToOwner(call);
    }
    case proto::MessageType::kFetchHistory: {
      const auto& fetch = std::get<proto::FetchHistory>(message);
      if (!CheckChannelName(correlation, fetch.channel)) return;
      if (fetch.limit == 0 || fetch.limit > proto::kHistoryLimitMax) {
        return SendError(correlation, ErrorCode::kInvalidArgument,
                         "limit must be 1 to " + std::to_string(proto::kHistoryLimitMax));
      }
      FetchHistoryOp op;
      op.epoch = fetch.epoch;
      op.from_seq = fetch.from_seq;
      op.direction = fetch.direction;
      op.limit = fetch.limit;
      return host_.ToOwner(NewCall(std::move(op), correlation, fetch.channel));
    }
    case proto::MessageType::kSetCursor: {
      const auto& set = std::get<proto::SetCursor>(message);
      if (!CheckChannelName(correlation, set.channel)) return;
      return host_.ToOwner(NewCall(SetCursorOp{set.epoch, set.seq}, correlation, set.channel));
    }
    case proto::MessageType::kGetCursors: {
      const auto& get = std::get<proto::GetCursors>(message);
      if (get.channel.empty()) return ScatterToAllOwners(GetCursorsOp{}, correlation);
      if (!CheckChannelName(correlation, get.channel)) return;
      return host_.ToOwner(NewCall(GetCursorsOp{}, correlation, get.channel));
    }
    case proto::MessageType::kAdminStats:
    case proto::MessageType::kAdminChannel:
    case proto::MessageType::kAdminConnections: return HandleAdminRequest(frame, message);
    case proto::MessageType::kHello:
      return SendError(correlation, ErrorCode::kUnexpectedType, "HELLO after the handshake");
    default:
      return SendError(
          correlation, ErrorCode::kUnexpectedType,
          std::string(proto::MessageTypeName(frame.type)) + " is sent by servers, not clients");
  }
}

bool ServerSession::CheckChannelName(uint32_t correlation, std::string_view channel) {
  if (proto::IsValidChannelName(channel)) return true;
  SendError(correlation, ErrorCode::kInvalidChannelName,
            "channel names are 1 to 64 bytes of A-Z a-z 0-9 . _ - and do not start with '.'");
  return false;
}

void ServerSession::HandleAdminRequest(const proto::Frame& frame,
                                       const proto::AnyMessage& message) {
  uint32_t correlation = frame.correlation_id;
  if (!admin()) {
    return SendError(correlation, ErrorCode::kForbidden,
                     std::string(proto::MessageTypeName(frame.type)) +
                         " needs an admin token (hootd token --admin); " + user_ +
                         "'s token is not one");
  }
  if (frame.type == proto::MessageType::kAdminChannel) {
    const auto& admin = std::get<proto::AdminChannel>(message);
    if (!CheckChannelName(correlation, admin.channel)) return;
    return host_.ToOwner(NewCall(AdminChannelOp{}, correlation, admin.channel));
  }
  auto* survey = new Survey;
  survey->asks = frame.type == proto::MessageType::kAdminStats ? Survey::Asks::kAdminStats
                                                               : Survey::Asks::kAdminConnections;
  survey->connection_id = id_;
  survey->correlation_id = correlation;
  ++requests_in_flight_;  // Until OnSurvey.
  host_.StartSurvey(survey);
}

void ServerSession::Subscribe(uint32_t correlation, const proto::Subscribe& subscribe) {
  std::string channel(subscribe.channel);
  if (subscriptions_.count(channel)) {
    return SendError(correlation, ErrorCode::kAlreadySubscribed,
                     "this connection is already subscribed to " + channel);
  }
  if (subscriptions_.size() >= options_.subscriptions_per_connection_max) {
    return SendError(correlation, ErrorCode::kTooManySubscriptions,
                     "at most " + std::to_string(options_.subscriptions_per_connection_max) +
                         " subscriptions per connection");
  }
  bool from_cursor = (subscribe.flags & proto::kSubscribeFromReadCursor) != 0;
  if (!from_cursor && subscribe.epoch == 0 && subscribe.after_seq != 0) {
    return SendError(correlation, ErrorCode::kInvalidArgument,
                     "after_seq without the epoch it belongs to");
  }
  auto subscription = std::make_unique<Subscription>();
  subscription->id = host_.NextSubscriptionId();
  subscription->channel = channel;
  subscription->session = this;
  Call* call =
      NewCall(SubscribeOp{subscribe.epoch, subscribe.after_seq, from_cursor}, correlation, channel);
  call->subscription_id = subscription->id;
  subscriptions_[channel] = std::move(subscription);
  host_.ToOwner(call);
}

void ServerSession::Unsubscribe(uint32_t correlation, std::string_view channel) {
  auto found = subscriptions_.find(std::string(channel));
  if (found == subscriptions_.end() || found->second->unsubscribe_requested) {
    return SendError(correlation, ErrorCode::kNotSubscribed,
                     "this connection is not subscribed to " + std::string(channel));
  }
  if (found->second->state == Subscription::State::kAttaching) {
    // The SUBSCRIBE is answered first (OnSubscribeAnswer), then this.
    found->second->unsubscribe_requested = true;
    found->second->unsubscribe_correlation = correlation;
    return;
  }
  DetachSubscription(*found->second);
  SendFrame(proto::Ok{}, correlation);
}

}  // namespace hoot::core::chat
