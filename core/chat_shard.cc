#include "core/chat_shard.h"

#include <xxhash.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdlib>
#include <limits>

#include "absl/container/flat_hash_map.h"
#include "base/check.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/status.h"
#include "core/chat/answer_frames.h"
#include "core/chat/dedup.h"
#include "core/chat/ops.h"
#include "core/server.h"
#include "log/uring_storage.h"

namespace hoot::core {

using chat::BodyHash;
using chat::Call;
using chat::Dedup;
using chat::Gather;
using chat::Page;
using chat::Row;
using proto::ErrorCode;

unsigned OwnerOf(std::string_view channel, unsigned shard_count) {
  return static_cast<unsigned>(XXH3_64bits(channel.data(), channel.size()) % shard_count);
}

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
      return true;
    default:
      return false;
  }
}

constexpr auto kHousekeepingPeriod = std::chrono::milliseconds(250);
constexpr auto kDrainPollPeriod = std::chrono::milliseconds(2);
constexpr auto kCloseGracePeriod = std::chrono::seconds(2);

}  // namespace

struct Subscription {
  enum class State : uint8_t { kAttaching, kReplaying, kLive };
  uint64_t id = 0;
  std::string channel;
  Session* session = nullptr;
  State state = State::kAttaching;
  uint64_t epoch = 0;
  uint64_t delivered = 0;  // The last seq sent to the client.
  bool read_in_flight = false;
  bool paused = false;   // Waiting for the socket to drain before reading more for it.
  bool lagging = false;  // Fell behind while live (STREAM_LAG from_log sent).
  // UNSUBSCRIBE while attaching: answered right after the SUBSCRIBE's answer.
  bool unsubscribe_requested = false;
  uint32_t unsubscribe_correlation = 0;
};

struct Session {
  io::TcpConnection* connection = nullptr;
  uint64_t id = 0;
  proto::FrameReader reader;
  bool welcomed = false;
  bool closing = false;
  std::string user;
  std::map<std::string, std::unique_ptr<Subscription>> subscriptions;
  std::chrono::steady_clock::time_point accepted_at;
  std::chrono::steady_clock::time_point last_received;
  bool ping_outstanding = false;
  uint64_t ping_nonce = 0;
  std::vector<Call*> paused_history;  // Pages waiting for the socket to drain.
  // Requests of this client's at owners, not yet answered in full. At the bound (or with its
  // outbound queue over the cap) the gateway stops reading the socket: see PauseIfFull.
  size_t requests_in_flight = 0;
  bool counted = false;       // In the server-wide connection count.
  bool user_counted = false;  // In its user's connection count.
};

// The envelope handlers: each runs on the receiving shard, or, once the shards have stopped,
// on the thread that joins them (no service left: the payload is only freed).
struct Envelopes {
  static ChatShard* Of(Shard& shard) { return static_cast<ChatShard*>(shard.context); }
  static void ToOwner(Shard& shard, core::Envelope& envelope) {
    auto* request = static_cast<Call*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->owner_->OnCall(request);
    chat::DiscardCall(request);
  }
  static void ToGateway(Shard& shard, core::Envelope& envelope) {
    auto* request = static_cast<Call*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->OnAnswer(request);
    chat::DiscardCall(request);
  }
  static void FanOut(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->OnFanOut(page);
    if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete page;
  }
  static void Revoke(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->OnRevoke(page);
    delete page;
  }
  static void PageHome(Shard& shard, core::Envelope& envelope) {
    auto* page = static_cast<Page*>(envelope.pointer);
    if (ChatShard* chat = Of(shard)) return chat->owner_->RecyclePage(page);
    delete page;
  }
};

namespace {

Envelope MakeEnvelope(void (*handler)(Shard&, Envelope&), void* pointer) {
  Envelope envelope;
  envelope.handler = handler;
  envelope.pointer = pointer;
  return envelope;
}

}  // namespace

// ---- Setting up ---------------------------------------------------------------------------

ChatShard::ChatShard(Shard& shard, const ServerOptions& options, const auth::TokenSigner* signer,
                     ConnectionLimits* limits)
    : shard_(shard), options_(options), signer_(signer), limits_(limits) {}

absl::StatusOr<std::unique_ptr<ChatShard>> ChatShard::Create(Shard& shard,
                                                            const ServerOptions& options,
                                                            const auth::TokenSigner* signer,
                                                            ConnectionLimits* limits) {
  std::unique_ptr<ChatShard> chat(new ChatShard(shard, options, signer, limits));
  std::unique_ptr<log::Storage> storage = std::make_unique<log::UringStorage>(&shard.ring());
  if (options.wrap_storage) storage = options.wrap_storage(shard.id(), std::move(storage));
  chat->storage_ = std::move(storage);
  log::LogOptions log_options;
  log_options.directory = ShardDirectory(options.data_directory, shard.id());
  log_options.journal_file_bytes = options.journal_file_bytes;
  log_options.segment_bytes = options.segment_bytes;
  log_options.cache_bytes_per_channel = options.cache_bytes_per_channel;
  HOOT_ASSIGN_OR_RETURN(chat->owner_,
                        chat::Owner::Open(*chat, options, chat->storage_.get(), log_options));
  io::TcpServerOptions tcp_options;
  tcp_options.host = options.listen_host;
  tcp_options.port = options.port;
  tcp_options.outbound_bytes_max = options.outbound_bytes_max;
  HOOT_ASSIGN_OR_RETURN(chat->tcp_, io::TcpServer::Listen(shard.ring(), tcp_options, chat.get()));
  shard.context = chat.get();
  chat->housekeeping_timer_ =
      shard.AddTimer(kHousekeepingPeriod, chat->Guarded([c = chat.get()] { c->Housekeeping(); }));
  return chat;
}

ChatShard::~ChatShard() {
  shard_.context = nullptr;
  shard_.CancelTimer(housekeeping_timer_);
  // Closing the connections detaches their subscriptions, which calls the owner: it goes
  // after them, and the storage after it.
  tcp_.reset();
  owner_.reset();
  storage_.reset();
}

// ---- Gateway: sessions --------------------------------------------------------------------

void ChatShard::OnAccept(io::TcpConnection& connection) {
  auto session = std::make_unique<Session>();
  session->connection = &connection;
  session->id = connection.id();
  session->accepted_at = session->last_received = std::chrono::steady_clock::now();
  connection.user_data = session.get();
  Session& accepted = *session;
  sessions_[connection.id()] = std::move(session);
  if (draining_) {
    SendError(accepted, 0, ErrorCode::kShuttingDown, "hootd is shutting down");
  } else if (!limits_->TryOpen(options_.connections_max)) {
    SendError(accepted, 0, ErrorCode::kTooManyConnections,
              "the server has its limit of " + std::to_string(options_.connections_max) +
                  " connections open");
  } else {
    accepted.counted = true;
  }
}

void ChatShard::OnData(io::TcpConnection& connection, std::string_view data) {
  auto* session = static_cast<Session*>(connection.user_data);
  if (session == nullptr || session->closing) return;
  session->last_received = std::chrono::steady_clock::now();
  session->ping_outstanding = false;
  if (connection.receiving_paused()) {
    // Taken by the receive before the pause ended it: kept, unparsed, for the resume.
    session->reader.Hold(data);
    return;
  }
  ReadFrames(*session, data);
}

void ChatShard::ReadFrames(Session& session, std::string_view data) {
  proto::DecodeStatus status = session.reader.Feed(data, [&](const proto::Frame& frame) {
    if (session.closing) return false;
    HandleFrame(session, frame);
    return !PauseIfFull(session);
  });
  if (status != proto::DecodeStatus::kOk && !session.closing) {
    SendError(session, 0, proto::DecodeStatusError(status),
              status == proto::DecodeStatus::kFrameTooLarge
                  ? "frame larger than " + std::to_string(proto::kFrameBytesMax) + " bytes"
                  : std::string("bad frame header"));
  }
}

bool ChatShard::PauseIfFull(Session& session) {
  bool requests_full = session.requests_in_flight >= options_.requests_in_flight_per_connection_max;
  bool answers_full = session.connection->outbound_bytes() > options_.outbound_bytes_max;
  if (!requests_full && !answers_full) return false;
  // TCP pushes back on this client alone; OnAnswer and OnOutboundBelow resume it.
  session.connection->PauseReceiving();
  if (answers_full) session.connection->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
  return true;
}

void ChatShard::ResumeIfRoom(Session& session) {
  if (!session.connection->receiving_paused() || session.closing) return;
  // Half way down both bounds, so that a client at its bound is not paused on every frame.
  if (session.requests_in_flight > options_.requests_in_flight_per_connection_max / 2) return;
  if (session.connection->outbound_bytes() > options_.outbound_bytes_max / 2) {
    session.connection->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
    return;
  }
  // The pause was the server's wait, not the client's silence.
  session.last_received = std::chrono::steady_clock::now();
  // What the socket gave before the pause comes first; the socket is read again only once
  // all of it is handled, so that what a session holds is one receive's worth at most.
  ReadFrames(session, {});
  if (session.closing || session.reader.holding()) return;
  if (session.requests_in_flight >= options_.requests_in_flight_per_connection_max ||
      session.connection->outbound_bytes() > options_.outbound_bytes_max) {
    return;
  }
  session.connection->ResumeReceiving();
}

void ChatShard::OnClose(io::TcpConnection& connection, int /*error*/) {
  auto* session = static_cast<Session*>(connection.user_data);
  if (session == nullptr) return;
  while (!session->subscriptions.empty()) {
    DetachSubscription(*session, *session->subscriptions.begin()->second);
  }
  for (Call* request : session->paused_history) delete request;
  session->paused_history.clear();
  if (session->counted) limits_->Closed();
  if (session->user_counted) limits_->ClosedForUser(session->user);
  connection.user_data = nullptr;
  sessions_.erase(session->id);
  CheckDrained();
}

void ChatShard::OnOutboundBelow(io::TcpConnection& connection) {
  auto* session = static_cast<Session*>(connection.user_data);
  if (session == nullptr || session->closing) return;
  std::vector<Subscription*> paused;
  for (auto& [channel, subscription] : session->subscriptions) {
    if (subscription->paused) paused.push_back(subscription.get());
  }
  for (Subscription* subscription : paused) {
    subscription->paused = false;
    ContinueReplay(*session, *subscription);
  }
  std::vector<Call*> history;
  history.swap(session->paused_history);
  for (Call* request : history) {
    if (draining_) {
      delete request;
    } else {
      ToOwner(request);
    }
  }
  ResumeIfRoom(*session);
}

bool ChatShard::TakeSendToken(const std::string& user) {
  if (options_.send_rate_per_user <= 0) return true;
  auto now = std::chrono::steady_clock::now();
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

Session* ChatShard::FindSession(uint64_t connection_id) {
  auto found = sessions_.find(connection_id);
  if (found == sessions_.end() || found->second->closing) return nullptr;
  return found->second.get();
}

template <class M>
bool ChatShard::SendFrame(Session& session, const M& message, uint32_t correlation_id) {
  thread_local std::string scratch;
  scratch.clear();
  if (!proto::EncodeTo(message, correlation_id, &scratch)) return false;
  session.connection->Send(std::string_view(scratch));
  return true;
}

template <class M, class Entry>
void ChatShard::SendInFrames(Session& session, uint32_t correlation_id,
                             std::span<const Entry> entries,
                             proto::EntryList<Entry> M::*list) {
  const size_t empty_bytes = proto::EncodedBytes(M{});
  size_t start = 0;
  do {
    size_t frame_bytes = empty_bytes;
    size_t end = start;
    while (end < entries.size()) {
      M one;
      one.*list = proto::EntryList<Entry>(entries.subspan(end, 1));
      size_t entry_bytes = proto::EncodedBytes(one) - empty_bytes;
      if (end > start && frame_bytes + entry_bytes > options_.answer_frame_bytes_max) break;
      frame_bytes += entry_bytes;
      ++end;
    }
    M frame;
    frame.flags = end == entries.size() ? proto::kLastFrame : 0;
    frame.*list = proto::EntryList<Entry>(entries.subspan(start, end - start));
    HOOT_CHECK(SendFrame(session, frame, correlation_id));  // Sized to fit above.
    start = end;
  } while (start < entries.size());
}

void ChatShard::SendError(Session& session, uint32_t correlation_id, ErrorCode code,
                          std::string_view text) {
  proto::Error error;
  error.code = code;
  error.text = text.substr(0, proto::kErrorTextBytesMax);
  SendFrame(session, error, correlation_id);
  if (proto::ErrorClosesConnection(code)) {
    session.closing = true;
    session.connection->CloseAfterFlush();
    // A peer that does not read would keep the connection (and what is queued for it)
    // forever: after a grace period it is closed whatever is left.
    uint64_t id = session.id;
    shard_.AddTimer(kCloseGracePeriod, Guarded([this, id] {
      auto found = sessions_.find(id);
      if (found != sessions_.end()) found->second->connection->Close();
    }));
  }
}

void ChatShard::SendAnswer(Session& session, const Call& request) {
  if (std::holds_alternative<std::monostate>(request.result)) return;
  answer_bytes_.clear();
  chat::EncodeAnswer(request.result, request.channel, request.correlation_id, &answer_bytes_);
  session.connection->Send(std::string_view(answer_bytes_));
}

void ChatShard::HandleFrame(Session& session, const proto::Frame& frame) {
  if (!session.welcomed && frame.type != proto::MessageType::kHello) {
    return SendError(session, frame.correlation_id, ErrorCode::kUnexpectedType,
                     "the first frame must be HELLO");
  }
  proto::AnyMessage message;
  proto::DecodeStatus status = proto::DecodeMessage(frame, &message);
  if (status == proto::DecodeStatus::kUnknownType) {
    return SendError(session, frame.correlation_id, ErrorCode::kUnknownType,
                     "unknown message type " + std::to_string(static_cast<unsigned>(frame.type)));
  }
  if (frame.correlation_id == 0 && frame.type != proto::MessageType::kPong) {
    return SendError(session, 0, ErrorCode::kMalformedFrame,
                     std::string(proto::MessageTypeName(frame.type)) +
                         " with correlation id 0, which only pushes carry");
  }
  if (status != proto::DecodeStatus::kOk) {
    return SendError(session, frame.correlation_id, ErrorCode::kMalformedFrame,
                     std::string(proto::MessageTypeName(frame.type)) +
                         " frame whose fields do not parse");
  }
  if (!session.welcomed) return HandleHello(session, frame, std::get<proto::Hello>(message));
  if (draining_) {
    return SendError(session, frame.correlation_id, ErrorCode::kShuttingDown,
                     "hootd is shutting down");
  }
  HandleRequest(session, frame, message);
}

void ChatShard::HandleHello(Session& session, const proto::Frame& frame,
                            const proto::Hello& hello) {
  if (hello.magic != proto::kHelloMagic) {
    return SendError(session, frame.correlation_id, ErrorCode::kMalformedFrame,
                     "HELLO without the magic bytes \"HOOT\"");
  }
  uint16_t version = std::min(hello.version_max, proto::kVersionMax);
  if (version < hello.version_min || version < proto::kVersionMin) {
    return SendError(session, frame.correlation_id, ErrorCode::kUnsupportedVersion,
                     "this server speaks protocol versions " + std::to_string(proto::kVersionMin) +
                         " to " + std::to_string(proto::kVersionMax));
  }
  int64_t now_s = static_cast<int64_t>(base::NowUnixNs() / 1000000000);
  auth::TokenCheck check = signer_->Verify(hello.token, now_s);
  if (check.error != auth::TokenError::kNone) {
    ErrorCode code = check.error == auth::TokenError::kExpired ? ErrorCode::kTokenExpired
                                                               : ErrorCode::kAuthFailed;
    return SendError(session, frame.correlation_id, code, check.message);
  }
  if (!limits_->TryOpenForUser(check.user, options_.connections_per_user_max)) {
    return SendError(session, frame.correlation_id, ErrorCode::kTooManyConnections,
                     check.user + " has its limit of " +
                         std::to_string(options_.connections_per_user_max) +
                         " connections open");
  }
  session.user_counted = true;
  session.welcomed = true;
  session.user = check.user;
  proto::Welcome welcome;
  welcome.version = version;
  welcome.idle_timeout_ms = static_cast<uint32_t>(options_.idle_timeout.count());
  welcome.server_time_unix_ns = base::NowUnixNs();
  welcome.user = session.user;
  SendFrame(session, welcome, frame.correlation_id);
}

Call* ChatShard::NewRequest(Session& session, chat::Op op, uint32_t correlation_id,
                               std::string_view channel) {
  auto* request = new Call;
  request->op = std::move(op);
  request->gateway = shard_.id();
  request->connection_id = session.id;
  request->correlation_id = correlation_id;
  request->user = session.user;
  request->channel = channel;
  request->owner = channel.empty() ? shard_.id() : OwnerOf(channel, shard_.shard_count());
  // What a client's frame asked for counts toward its bound; a replay's reads and a detach's
  // unsubscribe are the gateway's own (bounded by the subscriptions).
  if (!std::holds_alternative<chat::ReplayReadOp>(request->op) &&
      !std::holds_alternative<chat::UnsubscribeOp>(request->op)) {
    request->holds_slot = true;
    ++session.requests_in_flight;
  }
  return request;
}

void ChatShard::ToOwner(Call* request) {
  ++requests_in_flight_;
  shard_.Send(request->owner, MakeEnvelope(&Envelopes::ToOwner, request));
}

void ChatShard::ScatterToAllShards(Session& session, const chat::Op& op,
                                   uint32_t correlation_id) {
  auto gather = std::make_shared<Gather>();
  gather->remaining = shard_.shard_count();
  for (unsigned owner = 0; owner < shard_.shard_count(); ++owner) {
    Call* request = NewRequest(session, op, correlation_id, "");
    request->owner = owner;
    request->gather = gather;
    ToOwner(request);
  }
}

void ChatShard::HandleRequest(Session& session, const proto::Frame& frame,
                              const proto::AnyMessage& message) {
  uint32_t correlation = frame.correlation_id;
  auto check_channel = [&](std::string_view channel) {
    if (proto::IsValidChannelName(channel)) return true;
    SendError(session, correlation, ErrorCode::kInvalidChannelName,
              "channel names are 1 to 64 bytes of A-Z a-z 0-9 . _ - and do not start with '.'");
    return false;
  };
  if (GoesToOwners(frame.type) &&
      shard_.overflowed() >= options_.requests_queued_per_shard_max) {
    // The rings to other shards are full and their overflow is at its bound: refusing here
    // keeps this shard's memory bounded however the owners fall behind.
    return SendError(session, correlation, ErrorCode::kBusy,
                     "hootd is overloaded (" + std::to_string(shard_.overflowed()) +
                         " requests wait for another thread); nothing was done, retry later");
  }
  switch (frame.type) {
    case proto::MessageType::kPing: {
      proto::Pong pong;
      pong.nonce = std::get<proto::Ping>(message).nonce;
      SendFrame(session, pong, correlation);
      return;
    }
    case proto::MessageType::kPong:
      return;  // Any frame counts as a sign of life (OnData).
    case proto::MessageType::kCreateChannel: {
      const auto& create = std::get<proto::CreateChannel>(message);
      if (!check_channel(create.channel)) return;
      return ToOwner(NewRequest(session, chat::CreateChannelOp{create.visibility}, correlation,
                                create.channel));
    }
    case proto::MessageType::kJoin: {
      const auto& join = std::get<proto::Join>(message);
      if (!check_channel(join.channel)) return;
      return ToOwner(NewRequest(session, chat::JoinOp{}, correlation, join.channel));
    }
    case proto::MessageType::kLeave: {
      const auto& leave = std::get<proto::Leave>(message);
      if (!check_channel(leave.channel)) return;
      return ToOwner(NewRequest(session, chat::LeaveOp{}, correlation, leave.channel));
    }
    case proto::MessageType::kInvite: {
      const auto& invite = std::get<proto::Invite>(message);
      if (!check_channel(invite.channel)) return;
      if (!proto::IsValidUserName(invite.user)) {
        return SendError(session, correlation, ErrorCode::kInvalidUserName,
                         "user names are 1 to 64 bytes of A-Z a-z 0-9 . _ - and do not start "
                         "with '.'");
      }
      return ToOwner(NewRequest(session, chat::InviteOp{std::string(invite.user)}, correlation,
                                invite.channel));
    }
    case proto::MessageType::kListChannels:
      return ScatterToAllShards(session, chat::ListChannelsOp{}, correlation);
    case proto::MessageType::kSubscribe: {
      const auto& subscribe = std::get<proto::Subscribe>(message);
      if (!check_channel(subscribe.channel)) return;
      std::string channel(subscribe.channel);
      if (session.subscriptions.count(channel)) {
        return SendError(session, correlation, ErrorCode::kAlreadySubscribed,
                         "this connection is already subscribed to " + channel);
      }
      if (session.subscriptions.size() >= options_.subscriptions_per_connection_max) {
        return SendError(session, correlation, ErrorCode::kTooManySubscriptions,
                         "at most " + std::to_string(options_.subscriptions_per_connection_max) +
                             " subscriptions per connection");
      }
      bool from_cursor = (subscribe.flags & proto::kSubscribeFromReadCursor) != 0;
      if (!from_cursor && subscribe.epoch == 0 && subscribe.after_seq != 0) {
        return SendError(session, correlation, ErrorCode::kInvalidArgument,
                         "after_seq without the epoch it belongs to");
      }
      auto subscription = std::make_unique<Subscription>();
      subscription->id = next_subscription_id_++;
      subscription->channel = channel;
      subscription->session = &session;
      Call* request = NewRequest(
          session, chat::SubscribeOp{subscribe.epoch, subscribe.after_seq, from_cursor},
          correlation, channel);
      request->subscription_id = subscription->id;
      session.subscriptions[channel] = std::move(subscription);
      return ToOwner(request);
    }
    case proto::MessageType::kUnsubscribe: {
      const auto& unsubscribe = std::get<proto::Unsubscribe>(message);
      if (!check_channel(unsubscribe.channel)) return;
      auto found = session.subscriptions.find(std::string(unsubscribe.channel));
      if (found == session.subscriptions.end() || found->second->unsubscribe_requested) {
        return SendError(session, correlation, ErrorCode::kNotSubscribed,
                         "this connection is not subscribed to " +
                             std::string(unsubscribe.channel));
      }
      if (found->second->state == Subscription::State::kAttaching) {
        // The SUBSCRIBE is answered first (OnSubscribeAnswer), then this.
        found->second->unsubscribe_requested = true;
        found->second->unsubscribe_correlation = correlation;
        return;
      }
      DetachSubscription(session, *found->second);
      SendFrame(session, proto::Ok{}, correlation);
      return;
    }
    case proto::MessageType::kSend: {
      const auto& send = std::get<proto::Send>(message);
      if (!check_channel(send.channel)) return;
      if (!TakeSendToken(session.user)) {
        return SendError(session, correlation, ErrorCode::kRateLimited,
                         "more than " + std::to_string(static_cast<uint64_t>(
                                            options_.send_rate_per_user)) +
                             " sends a second; retry later");
      }
      return ToOwner(NewRequest(
          session, chat::SendOp{send.client_message_id, std::string(send.body)}, correlation,
          send.channel));
    }
    case proto::MessageType::kFetchHistory: {
      const auto& fetch = std::get<proto::FetchHistory>(message);
      if (!check_channel(fetch.channel)) return;
      if (fetch.limit == 0 || fetch.limit > proto::kHistoryLimitMax) {
        return SendError(session, correlation, ErrorCode::kInvalidArgument,
                         "limit must be 1 to " + std::to_string(proto::kHistoryLimitMax));
      }
      chat::FetchHistoryOp op;
      op.epoch = fetch.epoch;
      op.from_seq = fetch.from_seq;
      op.direction = fetch.direction;
      op.limit = fetch.limit;
      return ToOwner(NewRequest(session, std::move(op), correlation, fetch.channel));
    }
    case proto::MessageType::kSetCursor: {
      const auto& set = std::get<proto::SetCursor>(message);
      if (!check_channel(set.channel)) return;
      return ToOwner(
          NewRequest(session, chat::SetCursorOp{set.epoch, set.seq}, correlation, set.channel));
    }
    case proto::MessageType::kGetCursors: {
      const auto& get = std::get<proto::GetCursors>(message);
      if (get.channel.empty()) return ScatterToAllShards(session, chat::GetCursorsOp{}, correlation);
      if (!check_channel(get.channel)) return;
      return ToOwner(NewRequest(session, chat::GetCursorsOp{}, correlation, get.channel));
    }
    case proto::MessageType::kHello:
      return SendError(session, correlation, ErrorCode::kUnexpectedType,
                       "HELLO after the handshake");
    default:
      return SendError(session, correlation, ErrorCode::kUnexpectedType,
                       std::string(proto::MessageTypeName(frame.type)) +
                           " is sent by servers, not clients");
  }
}

// ---- Gateway: answers, replays, fan-out ---------------------------------------------------

void ChatShard::OnAnswer(Call* request) {
  HOOT_CHECK(requests_in_flight_ > 0);
  --requests_in_flight_;
  uint64_t connection_id = request->connection_id;
  Session* session = FindSession(connection_id);
  // A history answer of several pages holds its slot until its last page (or until it ends
  // without one: the client gone, or hootd stopping).
  const auto* history_page = std::get_if<chat::HistoryPageAnswer>(&request->result);
  bool complete = !std::holds_alternative<chat::FetchHistoryOp>(request->op) ||
                  history_page == nullptr || history_page->done ||
                  session == nullptr || draining_;
  if (request->holds_slot && complete) {
    request->holds_slot = false;
    if (session != nullptr) {
      HOOT_CHECK(session->requests_in_flight > 0);
      --session->requests_in_flight;
    }
  }
  if (std::holds_alternative<chat::SubscribeOp>(request->op)) {
    OnSubscribeAnswer(request, session);
  } else if (std::holds_alternative<chat::ReplayReadOp>(request->op)) {
    OnReadAnswer(request, session);
  } else if (std::holds_alternative<chat::FetchHistoryOp>(request->op)) {
    OnHistoryAnswer(request, session);
  } else if (std::holds_alternative<chat::UnsubscribeOp>(request->op)) {
    delete request;
  } else if (request->gather) {
    OnGatherAnswer(request, session);
  } else {
    if (session != nullptr) SendAnswer(*session, *request);
    delete request;
  }
  if (Session* still_open = FindSession(connection_id)) ResumeIfRoom(*still_open);
  CheckDrained();
}

void ChatShard::OnSubscribeAnswer(Call* request, Session* session) {
  Subscription* subscription = nullptr;
  if (session != nullptr) {
    auto found = session->subscriptions.find(request->channel);
    if (found != session->subscriptions.end() && found->second->id == request->subscription_id) {
      subscription = found->second.get();
    }
  }
  const auto* attached = std::get_if<chat::SubscribedAnswer>(&request->result);
  if (subscription != nullptr && subscription->unsubscribe_requested) {
    SendAnswer(*session, *request);
    SendFrame(*session, proto::Ok{}, subscription->unsubscribe_correlation);
    session->subscriptions.erase(request->channel);
    subscription = nullptr;
    if (attached == nullptr) {
      delete request;
      return;
    }
    request->op = chat::UnsubscribeOp{};
    request->result = {};
    ToOwner(request);
    return;
  }
  if (attached == nullptr) {
    if (subscription != nullptr) session->subscriptions.erase(request->channel);
    if (session != nullptr) SendAnswer(*session, *request);
    delete request;
    return;
  }
  if (subscription == nullptr) {
    // Disconnected while attaching: let the owner stop fanning out for it.
    request->op = chat::UnsubscribeOp{};
    request->result = {};
    ToOwner(request);
    return;
  }
  SendAnswer(*session, *request);
  subscription->epoch = attached->epoch;
  subscription->delivered = attached->after_seq;
  subscribers_[subscription->channel].insert(subscription);
  bool caught_up = attached->after_seq >= attached->head_seq;
  delete request;
  if (caught_up) {
    subscription->state = Subscription::State::kLive;
  } else {
    subscription->state = Subscription::State::kReplaying;
    ContinueReplay(*session, *subscription);
  }
}

void ChatShard::ContinueReplay(Session& session, Subscription& subscription) {
  if (subscription.read_in_flight || subscription.paused || draining_) return;
  if (session.connection->outbound_bytes() > options_.outbound_bytes_max / 2) {
    // Read more for it once its socket has drained (OnOutboundBelow).
    subscription.paused = true;
    session.connection->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
    return;
  }
  Call* request = NewRequest(
      session, chat::ReplayReadOp{subscription.epoch, subscription.delivered}, 0,
      subscription.channel);
  request->subscription_id = subscription.id;
  subscription.read_in_flight = true;
  ToOwner(request);
}

void ChatShard::OnReadAnswer(Call* request, Session* session) {
  bool ended = !std::holds_alternative<chat::ReplayPageAnswer>(request->result);
  Page* page = chat::TakePage(request->result);
  Subscription* subscription = nullptr;
  if (session != nullptr) {
    auto found = session->subscriptions.find(request->channel);
    if (found != session->subscriptions.end() && found->second->id == request->subscription_id) {
      subscription = found->second.get();
    }
  }
  if (subscription != nullptr) {
    subscription->read_in_flight = false;
    if (ended) {
      // A reset or an end: the read ended the subscription.
      SendAnswer(*session, *request);
      DetachSubscription(*session, *subscription);
    } else if (page != nullptr) {
      subscription->epoch = page->epoch;
      if (page->last_seq > subscription->delivered && !page->frame_ends.empty()) {
        HOOT_CHECK(page->first_seq <= subscription->delivered + 1);
        size_t skip = subscription->delivered + 1 - page->first_seq;
        size_t offset = skip == 0 ? 0 : page->frame_ends[skip - 1];
        session->connection->Send(std::string_view(page->frames).substr(offset));
        subscription->delivered = page->last_seq;
      }
      if (subscription->delivered >= page->live_from) {
        subscription->state = Subscription::State::kLive;
        if (subscription->lagging) {
          subscription->lagging = false;
          proto::StreamLag live;
          live.channel = subscription->channel;
          live.mode = proto::StreamMode::kLive;
          live.delivered_seq = subscription->delivered;
          live.head_seq = page->live_from;
          SendFrame(*session, live, 0);
        }
      } else {
        ContinueReplay(*session, *subscription);
      }
    }
  }
  if (page != nullptr) ReturnPage(page);
  delete request;
}

void ChatShard::OnHistoryAnswer(Call* request, Session* session) {
  const auto* history_page = std::get_if<chat::HistoryPageAnswer>(&request->result);
  bool more = history_page != nullptr && !history_page->done;
  Page* page = chat::TakePage(request->result);
  if (session != nullptr) {
    SendAnswer(*session, *request);
    if (page != nullptr) session->connection->Send(std::string_view(page->frames));
  }
  if (page != nullptr) ReturnPage(page);
  if (session != nullptr && more && !draining_) {
    request->result = {};
    if (session->connection->outbound_bytes() > options_.outbound_bytes_max / 2) {
      // The next page once the socket has drained (OnOutboundBelow).
      session->paused_history.push_back(request);
      session->connection->NotifyWhenOutboundBelow(options_.outbound_bytes_max / 2);
      return;
    }
    ToOwner(request);
    return;
  }
  delete request;
}

void ChatShard::OnGatherAnswer(Call* request, Session* session) {
  Gather& gather = *request->gather;
  if (Page* page = chat::TakePage(request->result)) {
    for (Row& row : page->rows) gather.rows.push_back(std::move(row));
    ReturnPage(page);
  }
  if (--gather.remaining == 0 && session != nullptr) {
    std::sort(gather.rows.begin(), gather.rows.end(),
              [](const Row& a, const Row& b) { return a.channel < b.channel; });
    if (std::holds_alternative<chat::ListChannelsOp>(request->op)) {
      std::vector<proto::ChannelListEntry> entries;
      for (const Row& row : gather.rows) {
        entries.push_back({row.channel, row.visibility, row.epoch, row.head_seq, row.cursor_seq});
      }
      SendInFrames<proto::ChannelList>(*session, request->correlation_id,
                                       std::span<const proto::ChannelListEntry>(entries),
                                       &proto::ChannelList::channels);
    } else {
      std::vector<proto::CursorEntry> entries;
      for (const Row& row : gather.rows) entries.push_back({row.channel, row.epoch, row.cursor_seq});
      SendInFrames<proto::Cursors>(*session, request->correlation_id,
                                   std::span<const proto::CursorEntry>(entries),
                                   &proto::Cursors::cursors);
    }
  }
  delete request;
}

void ChatShard::OnFanOut(Page* page) {
  auto found = subscribers_.find(page->channel);
  if (found != subscribers_.end()) {
    std::shared_ptr<const std::string> shared;  // One copy per gateway, shared by its members.
    std::vector<Subscription*> fell_behind;
    std::vector<Subscription*> lagging;
    for (Subscription* subscription : found->second) {
      if (subscription->state != Subscription::State::kLive) continue;
      if (page->last_seq <= subscription->delivered) continue;
      if (subscription->session->connection->outbound_bytes() > options_.outbound_bytes_max) {
        // A slow reader: stop queueing live messages for it; it is served from the log as
        // its socket drains, and goes live again once it has caught up.
        lagging.push_back(subscription);
        continue;
      }
      if (page->epoch != subscription->epoch || page->first_seq > subscription->delivered + 1) {
        // Not contiguous with what this subscriber has (its history was cut, or it missed a
        // batch): serve it from the log, which decides what it may read.
        fell_behind.push_back(subscription);
        continue;
      }
      size_t skip = subscription->delivered + 1 - page->first_seq;
      if (skip == 0) {
        if (shared == nullptr) shared = std::make_shared<const std::string>(page->frames);
        subscription->session->connection->Send(shared);
      } else {
        subscription->session->connection->Send(
            std::string_view(page->frames).substr(page->frame_ends[skip - 1]));
      }
      subscription->delivered = page->last_seq;
    }
    for (Subscription* subscription : lagging) {
      subscription->state = Subscription::State::kReplaying;
      subscription->lagging = true;
      proto::StreamLag lag;
      lag.channel = subscription->channel;
      lag.mode = proto::StreamMode::kFromLog;
      lag.delivered_seq = subscription->delivered;
      lag.head_seq = page->last_seq;
      SendFrame(*subscription->session, lag, 0);
      ContinueReplay(*subscription->session, *subscription);
    }
    for (Subscription* subscription : fell_behind) {
      subscription->state = Subscription::State::kReplaying;
      ContinueReplay(*subscription->session, *subscription);
    }
  }
  if (page->refs.fetch_sub(1, std::memory_order_acq_rel) == 1) ReturnPage(page);
}

void ChatShard::OnRevoke(Page* page) {
  std::vector<Subscription*> ending;
  auto found = subscribers_.find(page->channel);
  if (found != subscribers_.end()) {
    for (Subscription* subscription : found->second) {
      if (page->user.empty() || subscription->session->user == page->user) {
        ending.push_back(subscription);
      }
    }
  }
  for (Subscription* subscription : ending) {
    if (!page->frames.empty()) {
      // The notice the owner encoded (a HISTORY_RESET push when its log is damaged).
      subscription->session->connection->Send(std::string_view(page->frames));
      EndSubscription(*subscription->session, subscription->channel, /*notify=*/false,
                      ErrorCode::kStorageFailed);
    } else {
      EndSubscription(*subscription->session, subscription->channel, /*notify=*/true,
                      ErrorCode::kNotMember);
    }
  }
  ReturnPage(page);
}

void ChatShard::EndSubscription(Session& session, const std::string& channel, bool notify,
                                ErrorCode reason) {
  auto found = session.subscriptions.find(channel);
  if (found == session.subscriptions.end()) return;
  if (notify) {
    proto::SubscriptionEnded ended;
    ended.channel = channel;
    ended.reason = reason;
    SendFrame(session, ended, 0);
  }
  DetachSubscription(session, *found->second);
}

void ChatShard::DetachSubscription(Session& session, Subscription& subscription) {
  std::string channel = subscription.channel;
  if (subscription.state != Subscription::State::kAttaching) {
    ToOwner(NewRequest(session, chat::UnsubscribeOp{}, 0, channel));
    auto indexed = subscribers_.find(channel);
    if (indexed != subscribers_.end()) {
      indexed->second.erase(&subscription);
      if (indexed->second.empty()) subscribers_.erase(indexed);
    }
  }
  session.subscriptions.erase(channel);
}

void ChatShard::ReturnPage(Page* page) {
  if (page->owner == shard_.id()) return owner_->RecyclePage(page);
  shard_.Send(page->owner, MakeEnvelope(&Envelopes::PageHome, page));
}

void ChatShard::Housekeeping() {
  auto now = std::chrono::steady_clock::now();
  // A bucket refilled to its burst is what a fresh one would be: dropping it bounds the
  // buckets by the users who sent within the last burst / rate seconds.
  std::erase_if(send_buckets_, [&](const auto& entry) {
    double seconds = std::chrono::duration<double>(now - entry.second.refilled).count();
    return entry.second.tokens + seconds * options_.send_rate_per_user >=
           options_.send_burst_per_user;
  });
  std::vector<Session*> sessions;
  for (auto& [id, session] : sessions_) sessions.push_back(session.get());
  for (Session* session : sessions) {
    if (session->closing) continue;
    if (!session->welcomed) {
      if (now - session->accepted_at > options_.handshake_timeout) {
        SendError(*session, 0, ErrorCode::kHandshakeTimeout,
                  "no HELLO within " + std::to_string(options_.handshake_timeout.count()) + " ms");
      }
      continue;
    }
    if (options_.idle_timeout.count() == 0) continue;
    if (session->connection->receiving_paused() &&
        session->connection->outbound_bytes() <= options_.outbound_bytes_max) {
      // Not read because its requests are still at work: the wait is the server's.
      session->last_received = now;
      continue;
    }
    auto silence = now - session->last_received;
    if (silence > options_.idle_timeout) {
      SendError(*session, 0, ErrorCode::kIdleTimeout,
                "nothing received for " + std::to_string(options_.idle_timeout.count()) + " ms");
    } else if (silence > options_.idle_timeout / 2 && !session->ping_outstanding) {
      session->ping_outstanding = true;
      proto::Ping ping;
      ping.nonce = ++session->ping_nonce;
      SendFrame(*session, ping, 0);
    }
  }
  housekeeping_timer_ = shard_.AddTimer(kHousekeepingPeriod, Guarded([this] { Housekeeping(); }));
}

void ChatShard::BeginDrain(std::function<void()> drained) {
  draining_ = true;
  drained_ = std::move(drained);
  tcp_->StopAccepting();
  CheckDrained();
}

void ChatShard::CheckDrained() {
  if (!draining_ || !drained_) return;
  if (requests_in_flight_ > 0) return;  // Rechecked as each answer comes back.
  if (!owner_->Quiet()) {
    if (!drain_timer_armed_) {
      drain_timer_armed_ = true;
      shard_.AddTimer(kDrainPollPeriod, Guarded([this] {
        drain_timer_armed_ = false;
        CheckDrained();
      }));
    }
    return;
  }
  if (!closing_for_drain_) {
    closing_for_drain_ = true;
    std::vector<Session*> open;
    for (auto& [id, session] : sessions_) open.push_back(session.get());
    for (Session* session : open) {
      if (!session->closing) SendError(*session, 0, ErrorCode::kShuttingDown, "hootd is shutting down");
    }
  }
  if (!sessions_.empty()) return;  // Rechecked as each closes.
  auto drained = std::move(drained_);
  drained_ = nullptr;
  // A last checkpoint: every segment and directory entry durable and the journal retired, so
  // that the next start has nothing to recover.
  owner_->store().CheckpointAndRetireJournal([drained = std::move(drained)](absl::Status status) {
    if (!status.ok()) {
      base::Logf(base::LogLevel::kError, "the checkpoint at shutdown failed: %s",
                 status.message());
    }
    drained();
  });
}

// ---- The owner's host -----------------------------------------------------------------------

void ChatShard::ToGateway(Call* call) {
  shard_.Send(call->gateway, MakeEnvelope(&Envelopes::ToGateway, call));
}

void ChatShard::FanOut(unsigned gateway, Page* page) {
  shard_.Send(gateway, MakeEnvelope(&Envelopes::FanOut, page));
}

void ChatShard::Revoke(unsigned gateway, Page* page) {
  shard_.Send(gateway, MakeEnvelope(&Envelopes::Revoke, page));
}

void ChatShard::Post(std::function<void()> task) { shard_.Post(Guarded(std::move(task))); }

void ChatShard::OnLogFailure(const absl::Status& status) {
  if (options_.on_log_failure) options_.on_log_failure(shard_.id(), status);
}

}  // namespace hoot::core
