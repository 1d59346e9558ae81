#include "client/session.h"

#include <charconv>
#include <utility>
#include <variant>

#include "absl/strings/cord.h"
#include "base/check.h"
#include "base/status.h"
#include "base/strings.h"
#include "client/text.h"

namespace hoot::client {
namespace {

using internal::Cat;
using proto::MessageType;

// The payload that carries a server ERROR's code inside an absl::Status, as decimal text.
constexpr char kErrorCodePayloadUrl[] = "type.hoot.dev/hoot.proto.ErrorCode";

absl::StatusCode StatusCodeFor(proto::ErrorCode code) {
  using proto::ErrorCode;
  switch (code) {
    case ErrorCode::kAuthFailed:
    case ErrorCode::kTokenExpired: return absl::StatusCode::kUnauthenticated;
    case ErrorCode::kInvalidArgument:
    case ErrorCode::kInvalidChannelName:
    case ErrorCode::kInvalidUserName:
    case ErrorCode::kBodyTooLarge: return absl::StatusCode::kInvalidArgument;
    case ErrorCode::kNoSuchChannel: return absl::StatusCode::kNotFound;
    case ErrorCode::kChannelExists:
    case ErrorCode::kAlreadySubscribed:
    case ErrorCode::kIdempotencyConflict: return absl::StatusCode::kAlreadyExists;
    case ErrorCode::kNotMember:
    case ErrorCode::kForbidden: return absl::StatusCode::kPermissionDenied;
    case ErrorCode::kNotSubscribed: return absl::StatusCode::kFailedPrecondition;
    case ErrorCode::kTooManyConnections:
    case ErrorCode::kTooManySubscriptions:
    case ErrorCode::kRateLimited:
    case ErrorCode::kBusy:
    case ErrorCode::kDiskFull: return absl::StatusCode::kResourceExhausted;
    case ErrorCode::kHandshakeTimeout:
    case ErrorCode::kIdleTimeout:
    case ErrorCode::kShuttingDown:
    case ErrorCode::kOwnerUnavailable:
    case ErrorCode::kStorageFailed: return absl::StatusCode::kUnavailable;
    case ErrorCode::kUnsupportedVersion: return absl::StatusCode::kUnimplemented;
    // The server says this client broke the protocol, or the server itself has a bug.
    case ErrorCode::kMalformedFrame:
    case ErrorCode::kFrameTooLarge:
    case ErrorCode::kUnknownType:
    case ErrorCode::kUnexpectedType:
    case ErrorCode::kInternal: return absl::StatusCode::kInternal;
  }
  return absl::StatusCode::kUnknown;  // A code newer than this client.
}

// Which answers each request allows (PROTOCOL.md 5.2). ERROR may answer any request: a
// client must accept an ERROR it did not expect, if only `internal`.
bool Answers(MessageType request, MessageType answer) {
  if (answer == MessageType::kError) return true;
  switch (request) {
    case MessageType::kHello: return answer == MessageType::kWelcome;
    case MessageType::kCreateChannel:
    case MessageType::kJoin: return answer == MessageType::kChannelInfo;
    case MessageType::kLeave:
    case MessageType::kInvite:
    case MessageType::kUnsubscribe:
    case MessageType::kSetCursor: return answer == MessageType::kOk;
    case MessageType::kListChannels: return answer == MessageType::kChannelList;
    case MessageType::kSubscribe:
      return answer == MessageType::kSubscribed || answer == MessageType::kHistoryReset;
    case MessageType::kSend: return answer == MessageType::kSent;
    case MessageType::kFetchHistory:
      return answer == MessageType::kHistory || answer == MessageType::kHistoryReset;
    case MessageType::kGetCursors: return answer == MessageType::kCursors;
    case MessageType::kAdminStats: return answer == MessageType::kMetricsText;
    case MessageType::kAdminChannel: return answer == MessageType::kChannelReport;
    case MessageType::kAdminConnections: return answer == MessageType::kConnectionList;
    case MessageType::kPing: return answer == MessageType::kPong;
    default: return false;
  }
}

// Answers that may take several frames: the one flagged kLastFrame completes the request.
template <class M>
bool IsLastFrame(const proto::AnyMessage& message) {
  return (std::get<M>(message).flags & proto::kLastFrame) != 0;
}

absl::Status CheckLength(std::string_view what, std::string_view value, size_t bytes_min,
                         size_t bytes_max) {
  if (value.size() >= bytes_min && value.size() <= bytes_max) return absl::OkStatus();
  return absl::InvalidArgumentError(Cat(what, " is ", value.size(), " bytes; the protocol allows ",
                                        bytes_min, " to ", bytes_max));
}

absl::Status CheckChannel(std::string_view channel) {
  return CheckLength("channel name", channel, 1, proto::kChannelNameBytesMax);
}

std::string Quoted(std::string_view text) { return Cat("\"", base::CEscape(text), "\""); }

absl::Status Violation(std::string_view what) {
  return absl::DataLossError(Cat("server broke the protocol: ", what));
}

}  // namespace

absl::Status ServerErrorStatus(proto::ErrorCode code, std::string_view text) {
  absl::Status status(StatusCodeFor(code), Cat(proto::ErrorCodeName(code), ": ", text));
  status.SetPayload(kErrorCodePayloadUrl, absl::Cord(std::to_string(static_cast<uint32_t>(code))));
  return status;
}

std::optional<proto::ErrorCode> ServerErrorCode(const absl::Status& status) {
  auto payload = status.GetPayload(kErrorCodePayloadUrl);
  if (!payload.has_value()) return std::nullopt;
  std::string text(*payload);
  uint16_t value = 0;
  auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return static_cast<proto::ErrorCode>(value);
}

ClientSession::ClientSession() = default;

void ClientSession::ConsumeOutbound(size_t bytes) {
  HOOT_CHECK(bytes <= outbound_.size());
  outbound_.erase(0, bytes);
}

uint32_t ClientSession::NextCorrelationId() {
  // Terminates: fewer than 2^32 - 1 ids can be in flight (each holds memory).
  HOOT_CHECK(in_flight_.size() < UINT32_MAX - 1);
  uint32_t id = next_correlation_id_;
  while (id == 0 || in_flight_.contains(id)) ++id;  // Wraps past 0, which pushes carry.
  next_correlation_id_ = id + 1;
  return id;
}

template <class M>
absl::StatusOr<uint32_t> ClientSession::Encode(const M& message, Request request) {
  std::string_view name = proto::MessageTypeName(M::kType);
  if (!broken_.ok()) return broken_;
  if constexpr (M::kType == MessageType::kHello) {
    if (hello_sent_) return absl::FailedPreconditionError("HELLO was already sent");
  } else if (!welcome_.has_value()) {
    return absl::FailedPreconditionError(
        Cat(name, " before the handshake completed: until WELCOME only HELLO may be sent"));
  }
  size_t frame_bytes = proto::EncodedBytes(message);
  if (frame_bytes == 0) {
    return absl::InvalidArgumentError(
        Cat("cannot encode ", name, ": a field is outside its protocol limits"));
  }
  if (welcome_.has_value() && frame_bytes > welcome_->frame_bytes_max) {
    return absl::InvalidArgumentError(Cat(name, " frame of ", frame_bytes,
                                          " bytes is over the server's frame_bytes_max of ",
                                          welcome_->frame_bytes_max));
  }
  uint32_t correlation_id = NextCorrelationId();
  bool encoded = proto::EncodeTo(message, correlation_id, &outbound_);
  HOOT_CHECK(encoded);
  request.type = M::kType;
  in_flight_.emplace(correlation_id, std::move(request));
  if constexpr (M::kType == MessageType::kHello) hello_sent_ = true;
  return correlation_id;
}

absl::StatusOr<uint32_t> ClientSession::Hello(std::string_view token,
                                              std::string_view client_name) {
  HOOT_RETURN_IF_ERROR(CheckLength("token", token, 1, proto::kTokenBytesMax));
  HOOT_RETURN_IF_ERROR(CheckLength("client name", client_name, 0, proto::kClientNameBytesMax));
  proto::Hello hello;
  hello.token = token;
  hello.client_name = client_name;
  return Encode(hello, {});
}

absl::StatusOr<uint32_t> ClientSession::CreateChannel(std::string_view channel,
                                                      proto::Visibility visibility) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  return Encode(proto::CreateChannel{channel, visibility}, {});
}

absl::StatusOr<uint32_t> ClientSession::Join(std::string_view channel) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  return Encode(proto::Join{channel}, {});
}

absl::StatusOr<uint32_t> ClientSession::Leave(std::string_view channel) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  return Encode(proto::Leave{channel}, {});
}

absl::StatusOr<uint32_t> ClientSession::Invite(std::string_view channel, std::string_view user) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  HOOT_RETURN_IF_ERROR(CheckLength("user name", user, 1, proto::kUserNameBytesMax));
  return Encode(proto::Invite{channel, user}, {});
}

absl::StatusOr<uint32_t> ClientSession::ListChannels() { return Encode(proto::ListChannels{}, {}); }

absl::StatusOr<uint32_t> ClientSession::Subscribe(std::string_view channel, uint64_t epoch,
                                                  uint64_t after_seq, bool from_read_cursor) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  uint8_t flags = from_read_cursor ? proto::kSubscribeFromReadCursor : 0;
  return Encode(proto::Subscribe{channel, epoch, after_seq, flags},
                Request{.channel = std::string(channel)});
}

absl::StatusOr<uint32_t> ClientSession::Unsubscribe(std::string_view channel) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  return Encode(proto::Unsubscribe{channel}, Request{.channel = std::string(channel)});
}

absl::StatusOr<uint32_t> ClientSession::Send(std::string_view channel, uint64_t client_message_id,
                                             std::string_view body) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  HOOT_RETURN_IF_ERROR(CheckLength("message body", body, 0, proto::kBodyBytesMax));
  return Encode(proto::Send{channel, client_message_id, body}, {});
}

absl::StatusOr<uint32_t> ClientSession::FetchHistory(std::string_view channel, uint64_t epoch,
                                                     uint64_t from_seq, proto::Direction direction,
                                                     uint32_t limit) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  return Encode(proto::FetchHistory{channel, epoch, from_seq, direction, limit}, {});
}

absl::StatusOr<uint32_t> ClientSession::SetCursor(std::string_view channel, uint64_t epoch,
                                                  uint64_t seq) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  return Encode(proto::SetCursor{channel, epoch, seq}, {});
}

absl::StatusOr<uint32_t> ClientSession::GetCursors(std::string_view channel) {
  HOOT_RETURN_IF_ERROR(CheckLength("channel name", channel, 0, proto::kChannelNameBytesMax));
  return Encode(proto::GetCursors{channel}, {});
}

absl::StatusOr<uint32_t> ClientSession::Ping(uint64_t nonce) {
  return Encode(proto::Ping{nonce}, Request{.nonce = nonce});
}

absl::StatusOr<uint32_t> ClientSession::AdminStats() { return Encode(proto::AdminStats{}, {}); }

absl::StatusOr<uint32_t> ClientSession::AdminChannel(std::string_view channel) {
  HOOT_RETURN_IF_ERROR(CheckChannel(channel));
  return Encode(proto::AdminChannel{channel}, {});
}

absl::StatusOr<uint32_t> ClientSession::AdminConnections() {
  return Encode(proto::AdminConnections{}, {});
}

absl::Status ClientSession::FeedFrames(
    std::string_view bytes, absl::FunctionRef<absl::Status(const proto::Frame&)> on_frame) {
  if (!broken_.ok()) return broken_;
  proto::DecodeStatus status = reader_.Feed(bytes, [this, &on_frame](const proto::Frame& frame) {
    // The reader hands out the rest of this read even after a bad frame; none of it counts.
    if (broken_.ok()) broken_ = on_frame(frame);
  });
  if (broken_.ok() && status != proto::DecodeStatus::kOk) {
    broken_ = Violation(Cat("undecodable byte stream (", proto::DecodeStatusName(status), ")"));
  }
  return broken_;
}

absl::Status ClientSession::Feed(std::string_view bytes,
                                 absl::FunctionRef<void(const FrameView&)> visit) {
  return FeedFrames(bytes,
                    [this, &visit](const proto::Frame& frame) { return OnFrame(frame, visit); });
}

absl::Status ClientSession::Feed(std::string_view bytes, std::vector<Incoming>* out) {
  return FeedFrames(bytes, [this, out](const proto::Frame& frame) {
    // The frame views the reader's buffer only during this call: copy it once and decode the
    // copy, so that the message's views live as long as the Incoming's bytes.
    auto copy = std::make_shared<const std::string>(frame.bytes);
    proto::Frame owned;
    proto::DecodeStatus parsed = proto::ParseFrame(*copy, &owned);
    HOOT_CHECK(parsed == proto::DecodeStatus::kOk);
    return OnFrame(owned, [&](const FrameView& view) {
      out->push_back(
          Incoming{copy, view.correlation_id, view.type, *view.message, view.completes_request});
    });
  });
}

absl::Status ClientSession::OnFrame(const proto::Frame& frame,
                                    absl::FunctionRef<void(const FrameView&)> visit) {
  proto::AnyMessage message = proto::MessageToDecodeInto();
  proto::DecodeStatus decoded = proto::DecodeMessage(frame, &message);
  // PROTOCOL.md section 6: a type this client does not know is skipped; the framing is intact.
  // (The decoder's table says so: no second look-up by name on every frame.)
  if (decoded == proto::DecodeStatus::kUnknownType) return absl::OkStatus();
  if (decoded != proto::DecodeStatus::kOk) {
    return Violation(Cat("a ", proto::MessageTypeName(frame.type), " frame (correlation id ",
                         frame.correlation_id, ") that does not decode"));
  }
  FrameView view{frame.bytes, frame.correlation_id, frame.type, &message, false};
  if (view.type == MessageType::kPing) {
    // Section 5.3: answered with the same nonce and correlation id, and not surfaced.
    proto::Pong pong;
    pong.nonce = std::get<proto::Ping>(message).nonce;
    bool encoded = proto::EncodeTo(pong, view.correlation_id, &outbound_);
    HOOT_CHECK(encoded);
    return absl::OkStatus();
  }
  HOOT_RETURN_IF_ERROR(view.correlation_id == 0 ? OnPush(view) : OnAnswer(view));
  visit(view);
  return absl::OkStatus();
}

absl::Status ClientSession::OnPush(const FrameView& incoming) {
  switch (incoming.type) {
    case MessageType::kMessage: return OnMessage(std::get<proto::Message>(*incoming.message));
    case MessageType::kHistoryReset:
    case MessageType::kSubscriptionEnded: {
      // Either ends the channel's subscription on this connection.
      std::string_view channel =
          incoming.type == MessageType::kHistoryReset
              ? std::get<proto::HistoryReset>(*incoming.message).channel
              : std::get<proto::SubscriptionEnded>(*incoming.message).channel;
      auto it = subscriptions_.find(channel);
      if (it != subscriptions_.end()) {
        last_message_subscription_ = subscriptions_.end();
        subscriptions_.erase(it);
      }
      return absl::OkStatus();
    }
    case MessageType::kStreamLag:
    case MessageType::kError:  // About the connection, usually just before the server closes.
      return absl::OkStatus();
    default:
      return Violation(Cat(proto::MessageTypeName(incoming.type),
                           " with correlation id 0, which only pushes carry"));
  }
}

absl::Status ClientSession::OnMessage(const proto::Message& message) {
  // A stream is mostly one channel's messages back to back: the last one found is tried first.
  auto it = last_message_subscription_;
  if (it == subscriptions_.end() || it->first != message.channel) {
    it = subscriptions_.find(message.channel);
    last_message_subscription_ = it;
  }
  if (it == subscriptions_.end()) {
    return Violation(Cat("MESSAGE seq ", message.record.seq, " of channel ",
                         Quoted(message.channel), ", which has no subscription"));
  }
  DeliveryPosition& position = it->second;
  if (message.epoch != position.epoch) {
    return Violation(Cat("MESSAGE of epoch ", message.epoch, " in channel ",
                         Quoted(message.channel), ", subscribed at epoch ", position.epoch));
  }
  // Section 6.3: within a subscription seqs go up by exactly one.
  if (message.record.seq != position.delivered_seq + 1) {
    return Violation(Cat("MESSAGE seq ", message.record.seq, " in channel ",
                         Quoted(message.channel), " after seq ", position.delivered_seq, ": a ",
                         message.record.seq > position.delivered_seq ? "gap" : "repeat"));
  }
  position.delivered_seq = message.record.seq;
  return absl::OkStatus();
}

absl::Status ClientSession::OnAnswer(FrameView& incoming) {
  std::string_view name = proto::MessageTypeName(incoming.type);
  auto it = in_flight_.find(incoming.correlation_id);
  if (it == in_flight_.end()) {
    return Violation(Cat(name, " with correlation id ", incoming.correlation_id,
                         ", which no request in flight carries"));
  }
  const Request& request = it->second;
  if (!Answers(request.type, incoming.type)) {
    return Violation(Cat(name, " in answer to ", proto::MessageTypeName(request.type),
                         " (correlation id ", incoming.correlation_id, ")"));
  }
  incoming.completes_request = true;
  switch (incoming.type) {
    case MessageType::kWelcome: {
      const auto& welcome = std::get<proto::Welcome>(*incoming.message);
      if (welcome.version < proto::kVersionMin || welcome.version > proto::kVersionMax) {
        return Violation(Cat("WELCOME with version ", welcome.version, ", outside the ",
                             proto::kVersionMin, "..", proto::kVersionMax, " offered"));
      }
      welcome_ = WelcomeInfo{
          welcome.version,         welcome.frame_bytes_max,     welcome.body_bytes_max,
          welcome.idle_timeout_ms, welcome.server_time_unix_ns, std::string(welcome.user)};
      break;
    }
    case MessageType::kSubscribed: {
      const auto& subscribed = std::get<proto::Subscribed>(*incoming.message);
      if (subscribed.channel != request.channel) {
        return Violation(Cat("SUBSCRIBED to ", Quoted(subscribed.channel),
                             " in answer to SUBSCRIBE to ", Quoted(request.channel)));
      }
      subscriptions_.insert_or_assign(request.channel,
                                      DeliveryPosition{subscribed.epoch, subscribed.after_seq});
      break;
    }
    case MessageType::kOk:
      if (request.type == MessageType::kUnsubscribe) {
        last_message_subscription_ = subscriptions_.end();
        subscriptions_.erase(request.channel);
      }
      break;
    case MessageType::kPong: {
      uint64_t nonce = std::get<proto::Pong>(*incoming.message).nonce;
      if (nonce != request.nonce) {
        return Violation(
            Cat("PONG with nonce ", nonce, " in answer to PING with nonce ", request.nonce));
      }
      break;
    }
    case MessageType::kHistory:
      incoming.completes_request = IsLastFrame<proto::History>(*incoming.message);
      break;
    case MessageType::kChannelList:
      incoming.completes_request = IsLastFrame<proto::ChannelList>(*incoming.message);
      break;
    case MessageType::kCursors:
      incoming.completes_request = IsLastFrame<proto::Cursors>(*incoming.message);
      break;
    case MessageType::kMetricsText:
      incoming.completes_request = IsLastFrame<proto::MetricsText>(*incoming.message);
      break;
    case MessageType::kChannelReport:
      incoming.completes_request = IsLastFrame<proto::ChannelReport>(*incoming.message);
      break;
    case MessageType::kConnectionList:
      incoming.completes_request = IsLastFrame<proto::ConnectionList>(*incoming.message);
      break;
    default: break;
  }
  if (incoming.completes_request) in_flight_.erase(it);
  return absl::OkStatus();
}

std::string_view ClientSession::user() const {
  return welcome_.has_value() ? std::string_view(welcome_->user) : std::string_view();
}

std::optional<uint64_t> ClientSession::delivered_seq(std::string_view channel) const {
  std::optional<DeliveryPosition> position = subscription(channel);
  if (!position.has_value()) return std::nullopt;
  return position->delivered_seq;
}

std::optional<DeliveryPosition> ClientSession::subscription(std::string_view channel) const {
  auto it = subscriptions_.find(channel);
  if (it == subscriptions_.end()) return std::nullopt;
  return it->second;
}

std::optional<proto::MessageType> ClientSession::request_in_flight(uint32_t correlation_id) const {
  auto it = in_flight_.find(correlation_id);
  if (it == in_flight_.end()) return std::nullopt;
  return it->second.type;
}

}  // namespace hoot::client
