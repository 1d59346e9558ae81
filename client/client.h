// Client: a blocking hoot client over one TCP connection, built on ClientSession. The CLI
// (`hoot`) and the tests use it; every call returns owned results, so nothing it hands out
// views its buffers.
//
// Each request method sends its request and waits for the answer with the same correlation
// id. Pushes (correlation id 0) that arrive meanwhile are queued for NextPush, and answers to
// other requests in flight (SendAsync) are kept for their own wait, so calls may be mixed in
// any order. The server's PINGs are answered while the client is inside a call; a client left
// idle longer than WELCOME.idle_timeout_ms is disconnected by the server.
//
// An ERROR answer becomes an absl::Status carrying the protocol error code (ServerErrorCode,
// session.h). Every wait ends by ConnectOptions::timeout: kDeadlineExceeded naming what was
// awaited. A closed or failed connection (kUnavailable, or the server's closing ERROR, or
// kDataLoss if the server broke the protocol) fails the call and every later one; answers
// that had already arrived are still returned.
//
// One thread at a time; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "base/parse.h"
#include "client/session.h"
#include "proto/messages.h"
#include "proto/wire.h"

namespace hoot::client {

struct ConnectOptions {
  std::string host = "127.0.0.1";  // A name or a numeric IPv4/IPv6 address.
  uint16_t port = 0;
  std::string token;
  std::string client_name = "hoot-client";  // For the server's logs.
  // The bound on every wait: connecting plus the handshake, and each call after.
  std::chrono::milliseconds timeout{10000};
  // SO_RCVBUF before connecting; 0 leaves the kernel's autotuning (up to tcp_rmem's maximum,
  // often tens of MiB). A small buffer keeps an unread backlog on the server's side.
  int receive_buffer_bytes = 0;
};

// Owned copies of the protocol's answers and pushes (proto/messages.h has the field docs).

struct ChannelInfo {
  std::string channel;
  proto::Visibility visibility = proto::Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;
  bool operator==(const ChannelInfo&) const = default;
};

struct ChannelListEntry {
  std::string channel;
  proto::Visibility visibility = proto::Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t head_seq = 0;
  uint64_t read_cursor = 0;
  bool operator==(const ChannelListEntry&) const = default;
};

struct Subscribed {
  std::string channel;
  uint64_t epoch = 0;
  uint64_t after_seq = 0;
  uint64_t head_seq = 0;
  bool operator==(const Subscribed&) const = default;
};

// An answer to Subscribe or FetchHistory (not an error: the client decides where to start
// instead), or a push that ended a subscription.
struct HistoryReset {
  std::string channel;
  proto::ResetReason reason = proto::ResetReason::kEpochChanged;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;
  bool operator==(const HistoryReset&) const = default;
};

using SubscribeResult = std::variant<Subscribed, HistoryReset>;

struct Sent {
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  bool duplicate = false;  // A retry: seq and timestamp are the original's.
  bool operator==(const Sent&) const = default;
};

struct Record {
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  std::string sender;
  std::string body;
  bool operator==(const Record&) const = default;
};

// Every HISTORY frame of one answer, records concatenated in the order they came.
struct History {
  std::string channel;
  uint64_t epoch = 0;
  std::vector<Record> records;
  bool operator==(const History&) const = default;
};

using HistoryResult = std::variant<History, HistoryReset>;

struct Cursor {
  std::string channel;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  bool operator==(const Cursor&) const = default;
};

// ADMIN_CHANNEL's answer, every frame's members joined (proto::ChannelReport has the field
// docs).
struct ChannelReport {
  std::string channel;
  proto::ChannelFigures figures;
  bool fenced = false;
  std::vector<std::string> members;
  bool operator==(const ChannelReport&) const = default;
};

// One entry of ADMIN_CONNECTIONS's answer.
struct ConnectionInfo {
  unsigned shard = 0;
  uint64_t connection_id = 0;
  std::string user;
  std::string client_name;
  proto::ConnectionFigures figures;
  bool operator==(const ConnectionInfo&) const = default;
};

// Pushes.
struct Message {
  std::string channel;
  uint64_t epoch = 0;
  Record record;
  bool operator==(const Message&) const = default;
};

struct StreamLag {
  std::string channel;
  proto::StreamMode mode = proto::StreamMode::kFromLog;
  uint64_t delivered_seq = 0;
  uint64_t head_seq = 0;
  bool operator==(const StreamLag&) const = default;
};

struct SubscriptionEnded {
  std::string channel;
  proto::ErrorCode reason = proto::ErrorCode::kNotMember;
  bool operator==(const SubscriptionEnded&) const = default;
};

// A pushed HistoryReset ends the channel's subscription, as SubscriptionEnded does.
using Push = std::variant<Message, StreamLag, HistoryReset, SubscriptionEnded>;

// True for a failure of the connection rather than a refusal of the request: a reconnect, to
// the same server or another of its cluster, may cure it. Server ERRORs count only when they
// are about the connection (the server closes it: shutting_down, idle_timeout,
// handshake_timeout, too_many_connections).
bool IsConnectionFailure(const absl::Status& status);
// True for a failure that waiting and trying again, on a new connection if need be, may cure:
// a connection failure, or a cluster's owner node that cannot be reached now
// (owner_unavailable: PROTOCOL.md §8; a SEND retried with its client message id is safe).
bool IsTransientFailure(const absl::Status& status);

class Client {
 public:
  // Connects (TCP_NODELAY), sends HELLO and waits for WELCOME, all within options.timeout.
  // A server ERROR instead of WELCOME is returned as its Status (ServerErrorCode tells which:
  // auth_failed, token_expired, unsupported_version, too_many_connections, ...).
  static absl::StatusOr<std::unique_ptr<Client>> Connect(const ConnectOptions& options);
  // Connects to one of `servers` (options.host and port are ignored; base::ParseHostPortList
  // reads a list such as the gateway nodes of a cluster): each in turn from
  // servers[*next], wrapping round once, each within options.timeout, until one welcomes the
  // client; *next is then that server's index. A refusal that is not a connection failure
  // (auth_failed, token_expired, ...) ends it at once, since every server of a cluster would
  // say the same. When every server fails, the error names each and why.
  static absl::StatusOr<std::unique_ptr<Client>> ConnectToAny(
      ConnectOptions options, const std::vector<base::HostPort>& servers, size_t* next);

  ~Client();  // Closes the connection.
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const WelcomeInfo& welcome() const { return *session_.welcome(); }
  const std::string& user() const { return session_.welcome()->user; }
  // The socket; -1 once closed.
  int fd() const { return fd_; }
  // The protocol state: delivery positions (delivered_seq), requests in flight.
  const ClientSession& session() const { return session_; }
  // Closes the connection; every later call fails. Idempotent.
  void Close();

  absl::StatusOr<ChannelInfo> CreateChannel(std::string_view channel, proto::Visibility visibility);
  absl::StatusOr<ChannelInfo> Join(std::string_view channel);
  absl::Status Leave(std::string_view channel);
  absl::Status Invite(std::string_view channel, std::string_view user);
  absl::StatusOr<std::vector<ChannelListEntry>> ListChannels();
  // The MESSAGEs that follow SUBSCRIBED arrive through NextPush.
  absl::StatusOr<SubscribeResult> Subscribe(std::string_view channel, uint64_t epoch,
                                            uint64_t after_seq, bool from_read_cursor = false);
  absl::Status Unsubscribe(std::string_view channel);
  absl::StatusOr<Sent> Send(std::string_view channel, uint64_t client_message_id,
                            std::string_view body);
  // Pipelining: SendAsync writes a SEND (waiting only while the socket is full) and returns
  // its correlation id; WaitSent waits for that SEND's answer. Any number may be in flight,
  // and they may be waited for in any order.
  absl::StatusOr<uint32_t> SendAsync(std::string_view channel, uint64_t client_message_id,
                                     std::string_view body);
  absl::StatusOr<Sent> WaitSent(uint32_t correlation_id);
  absl::StatusOr<HistoryResult> FetchHistory(std::string_view channel, uint64_t epoch,
                                             uint64_t from_seq, proto::Direction direction,
                                             uint32_t limit);
  absl::Status SetCursor(std::string_view channel, uint64_t epoch, uint64_t seq);
  // Empty channel: the cursors of every channel the user is a member of.
  absl::StatusOr<std::vector<Cursor>> GetCursors(std::string_view channel = {});
  // The round trip of one PING.
  absl::StatusOr<std::chrono::nanoseconds> Ping();

  // The admin requests: they need a token minted with `hootd token --admin` (others are
  // answered `forbidden`). AdminStats is the server's metrics in the Prometheus text format.
  absl::StatusOr<std::string> AdminStats();
  absl::StatusOr<ChannelReport> AdminChannel(std::string_view channel);
  absl::StatusOr<std::vector<ConnectionInfo>> AdminConnections();

  // The oldest push not yet returned, waiting up to `timeout` for one; nullopt if none came.
  // Pushes queued before the connection failed are returned before its error.
  absl::StatusOr<std::optional<Push>> NextPush(std::chrono::milliseconds timeout);
  size_t pushes_queued() const { return pushes_.size(); }

 private:
  using Clock = std::chrono::steady_clock;

  explicit Client(const ConnectOptions& options);
  absl::Status Open(Clock::time_point deadline);
  template <class Build>
  absl::StatusOr<Incoming> Call(Build&& build);
  absl::Status Flush(Clock::time_point deadline);
  absl::StatusOr<Incoming> Await(uint32_t correlation_id, Clock::time_point deadline);
  // An answer of several frames of type M (the first is `answer`): `take` sees each, up to
  // the one that completes the request.
  template <class M, class Take>
  absl::Status TakeFrames(Incoming answer, Clock::time_point deadline, Take&& take);
  // A request answered with a list that continues across frames of type M (frame.*list):
  // every entry of every frame, in order, each made an owned T by `own`.
  template <class T, class M, class Entry, class Build, class Own>
  absl::StatusOr<std::vector<T>> CallForList(Build&& build, proto::EntryList<Entry> M::*list,
                                             Own&& own);
  absl::StatusOr<Incoming> NextFrame(uint32_t correlation_id, std::string_view what,
                                     Clock::time_point deadline);
  void Turn(Clock::time_point deadline);
  void WriteSome();
  void ReadSome();
  void Fail(absl::Status status);
  absl::Status Failure(std::string_view what) const;
  absl::Status Timeout(std::string_view what) const;

  ConnectOptions options_;
  int fd_ = -1;
  ClientSession session_;
  absl::Status broken_;  // Why the connection is unusable; OK while it is usable.
  std::deque<Incoming> pushes_;
  absl::flat_hash_map<uint32_t, std::deque<Incoming>> answers_;  // Arrived, not yet awaited.
  std::vector<Incoming> incoming_;  // Scratch for Feed, kept to reuse its capacity.
  std::vector<char> read_buffer_;
  uint64_t next_ping_nonce_ = 1;
};

}  // namespace hoot::client
