// ClientSession: the client side of the hoot protocol (docs/PROTOCOL.md) as a state machine
// without I/O. A transport feeds it the bytes it reads and writes the bytes it asks for; the
// blocking Client (client.h) drives it over a plain socket, the load generator over io_uring.
//
// What the session does for its transport:
//   - encodes requests, choosing correlation ids (non-zero, unique among requests in flight),
//     and refuses what the protocol forbids before a byte is written (section 4 limits, any
//     request before WELCOME, a second HELLO);
//   - splits the incoming stream into frames and decodes them into owned `Incoming`s;
//   - answers the server's PING with PONG by itself (section 5.3), so a transport that only
//     reads and writes keeps the connection alive;
//   - checks the server: every answer matches a request in flight and is of a type that
//     request allows, and every subscription's MESSAGE seqs go up by exactly one (section
//     6.3). A server that breaks the protocol makes Feed fail: the stream is untrustworthy
//     and the transport should drop the connection;
//   - keeps the handshake outcome and, per subscribed channel, the delivery position (epoch
//     and last seq received) a reconnecting client resubscribes from.
//
// One session per connection; not thread-safe. A new connection needs a new session (the
// old one's delivery positions are what the new one subscribes with).
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/codec.h"
#include "proto/messages.h"
#include "proto/wire.h"

namespace hoot::client {

// The server's side of the handshake, copied out of WELCOME.
struct WelcomeInfo {
  uint16_t version = 0;
  uint32_t frame_bytes_max = 0;  // The largest frame the server accepts from this client.
  uint32_t body_bytes_max = 0;   // Bodies above this are answered `body_too_large`.
  uint32_t idle_timeout_ms = 0;
  uint64_t server_time_unix_ns = 0;
  std::string user;  // Whom the token authenticated.
};

// Where a subscription's stream stands: the epoch it belongs to and the last seq received
// (SUBSCRIBED.after_seq until the first MESSAGE).
struct DeliveryPosition {
  uint64_t epoch = 0;
  uint64_t delivered_seq = 0;
  bool operator==(const DeliveryPosition&) const = default;
};

// One decoded frame from the server. `message` views `*bytes` (the frame, header included),
// which the shared_ptr keeps alive: an Incoming may be moved or copied freely and its views
// stay valid as long as any copy lives.
struct Incoming {
  std::shared_ptr<const std::string> bytes;
  uint32_t correlation_id = 0;  // 0 for pushes.
  proto::MessageType type{};
  proto::AnyMessage message;
  // True for an answer after which no more frames carry this correlation id (every answer
  // but a HISTORY frame without the `last` flag); false for pushes.
  bool completes_request = false;
};

// One frame as the zero-copy Feed hands it over: decoded in place and valid only during the
// call (`message` views `bytes`, which view the fed bytes or the session's buffer). For a
// transport on the hot path (the load generator, a million deliveries a second): no
// allocation, no copy.
struct FrameView {
  std::string_view bytes;  // The frame, header included.
  uint32_t correlation_id = 0;
  proto::MessageType type{};
  const proto::AnyMessage* message = nullptr;
  bool completes_request = false;  // As in Incoming.
};

// An `ERROR` from the server as a Status: message "<code name>: <text>", the code mapped to
// the closest absl code (auth_failed -> kUnauthenticated, not_member -> kPermissionDenied,
// no_such_channel -> kNotFound, ...; codes this version does not know -> kUnknown), and the
// proto::ErrorCode attached as a payload that ServerErrorCode reads back.
absl::Status ServerErrorStatus(proto::ErrorCode code, std::string_view text);
// The protocol error code a Status carries if it came from a server ERROR, else nullopt.
std::optional<proto::ErrorCode> ServerErrorCode(const absl::Status& status);

class ClientSession {
 public:
  ClientSession();
  ClientSession(const ClientSession&) = delete;
  ClientSession& operator=(const ClientSession&) = delete;

  // --- Outbound. Every request builder appends one frame to outbound() and returns the
  // correlation id it used, or an error and appends nothing: kFailedPrecondition before
  // WELCOME (or for a second HELLO); Feed's error once Feed has failed; kInvalidArgument for
  // a field the codec cannot encode (a name empty or over 64 bytes, a body over 65,536
  // bytes, a token outside 1..1,024 bytes, a client name over 64 bytes) or a frame over the
  // server's WELCOME.frame_bytes_max. Values the protocol can carry but the server refuses
  // (a bad name byte, a history limit of 0, a body over body_bytes_max) are sent: the server
  // answers them with an ERROR that does not close the connection.

  // The bytes to write, in order. The transport writes a prefix and calls ConsumeOutbound
  // with its length, or writes all of it and clears it.
  std::string& outbound() { return outbound_; }
  void ConsumeOutbound(size_t bytes);

  absl::StatusOr<uint32_t> Hello(std::string_view token, std::string_view client_name);
  absl::StatusOr<uint32_t> CreateChannel(std::string_view channel, proto::Visibility visibility);
  absl::StatusOr<uint32_t> Join(std::string_view channel);
  absl::StatusOr<uint32_t> Leave(std::string_view channel);
  absl::StatusOr<uint32_t> Invite(std::string_view channel, std::string_view user);
  absl::StatusOr<uint32_t> ListChannels();
  absl::StatusOr<uint32_t> Subscribe(std::string_view channel, uint64_t epoch, uint64_t after_seq,
                                     bool from_read_cursor);
  absl::StatusOr<uint32_t> Unsubscribe(std::string_view channel);
  absl::StatusOr<uint32_t> Send(std::string_view channel, uint64_t client_message_id,
                                std::string_view body);
  absl::StatusOr<uint32_t> FetchHistory(std::string_view channel, uint64_t epoch, uint64_t from_seq,
                                        proto::Direction direction, uint32_t limit);
  absl::StatusOr<uint32_t> SetCursor(std::string_view channel, uint64_t epoch, uint64_t seq);
  absl::StatusOr<uint32_t> GetCursors(std::string_view channel);  // Empty: every channel.
  absl::StatusOr<uint32_t> Ping(uint64_t nonce);
  // Admin requests (an admin token's sessions only; others are answered `forbidden`).
  absl::StatusOr<uint32_t> AdminStats();
  absl::StatusOr<uint32_t> AdminChannel(std::string_view channel);
  absl::StatusOr<uint32_t> AdminConnections();

  // --- Inbound.

  // Takes bytes from the connection in any split. Appends every whole frame to *out in
  // arrival order, except the PINGs it answers itself and frames of types this version does
  // not know (skipped, PROTOCOL.md section 6). Returns an error (kDataLoss) if the server
  // broke the protocol: a frame that does not decode, a known type in the wrong direction or
  // place, an answer to no request in flight or of a type its request does not allow, a
  // MESSAGE outside a subscription, of another epoch, or whose seq is not the last + 1.
  // Frames before the offending one are still appended. The error is sticky: later Feeds and
  // requests return it.
  absl::Status Feed(std::string_view bytes, std::vector<Incoming>* out);
  // The same checks and effects, with each frame handed to `visit` in place instead of copied
  // into an Incoming.
  absl::Status Feed(std::string_view bytes, absl::FunctionRef<void(const FrameView&)> visit);

  // --- State.

  bool handshake_complete() const { return welcome_.has_value(); }
  // Set once WELCOME arrived.
  const std::optional<WelcomeInfo>& welcome() const { return welcome_; }
  // The authenticated user; empty before WELCOME.
  std::string_view user() const;
  // OK unless Feed failed.
  const absl::Status& status() const { return broken_; }

  // The last seq received in a subscribed channel (SUBSCRIBED.after_seq until the first
  // MESSAGE); nullopt if the channel has no subscription (never had one, or it ended with
  // OK to UNSUBSCRIBE, SUBSCRIPTION_ENDED or a pushed HISTORY_RESET).
  std::optional<uint64_t> delivered_seq(std::string_view channel) const;
  std::optional<DeliveryPosition> subscription(std::string_view channel) const;
  // Every open subscription, by channel name.
  const std::map<std::string, DeliveryPosition, std::less<>>& subscriptions() const {
    return subscriptions_;
  }

  // The request type sent with `correlation_id`, if its answer has not completed yet.
  std::optional<proto::MessageType> request_in_flight(uint32_t correlation_id) const;
  size_t requests_in_flight() const { return in_flight_.size(); }

  // Makes the next request use `correlation_id` (or the first id after it that is non-zero
  // and not in flight), to test the wrap-around.
  void set_next_correlation_id_for_testing(uint32_t correlation_id) {
    next_correlation_id_ = correlation_id;
  }

 private:
  struct Request {
    proto::MessageType type{};
    std::string channel;  // Kept for SUBSCRIBE and UNSUBSCRIBE only.
    uint64_t nonce = 0;   // PING only.
  };

  template <class M>
  absl::StatusOr<uint32_t> Encode(const M& message, Request request);
  uint32_t NextCorrelationId();
  // Feeds the reader and runs `on_frame` on each whole frame until one fails (sticky).
  absl::Status FeedFrames(std::string_view bytes,
                          absl::FunctionRef<absl::Status(const proto::Frame&)> on_frame);
  absl::Status OnFrame(const proto::Frame& frame, absl::FunctionRef<void(const FrameView&)> visit);
  absl::Status OnPush(const FrameView& incoming);
  absl::Status OnAnswer(FrameView& incoming);
  absl::Status OnMessage(const proto::Message& message);

  std::string outbound_;
  proto::FrameReader reader_;
  absl::Status broken_;
  bool hello_sent_ = false;
  std::optional<WelcomeInfo> welcome_;
  uint32_t next_correlation_id_ = 1;
  absl::flat_hash_map<uint32_t, Request> in_flight_;
  std::map<std::string, DeliveryPosition, std::less<>> subscriptions_;
  // The subscription the last MESSAGE was of (end(): none); reset whenever one is erased.
  std::map<std::string, DeliveryPosition, std::less<>>::iterator last_message_subscription_ =
      subscriptions_.end();
};

}  // namespace hoot::client
