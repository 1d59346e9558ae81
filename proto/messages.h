// The message set of the hoot protocol: one struct per MessageType, with its fields in wire
// order. Decoded structs hold views (std::string_view, EntryList) into the frame they were
// decoded from: they are valid only while that frame's bytes are.
//
// Each struct lists its fields once, in Fields(), as calls on a visitor; the codec's sizer,
// encoder, decoder and printer are such visitors, so the layout cannot differ between them.
// Visitor calls: U8/U16/U32/U64 (integers), Enum (a u8 or u16 enum, checked against its
// largest defined value), Flags (a u8 whose undefined bits must be 0), Str8 and Str16 (a
// length-prefixed string with min/max bytes), Bytes32 (a u32 length-prefixed byte string),
// List (a u32 count followed by entries).
#pragma once

#include <cstdint>
#include <span>
#include <string_view>
#include <variant>

#include "proto/entry_list.h"
#include "proto/wire.h"

namespace hoot::proto {

struct Hello {
  static constexpr MessageType kType = MessageType::kHello;
  uint32_t magic = kHelloMagic;
  uint16_t version_min = kVersionMin;
  uint16_t version_max = kVersionMax;
  std::string_view token;
  std::string_view client_name;  // Free text for operators' logs, e.g. "hoot-cli/1".
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.U32("magic", m.magic);
    v.U16("version_min", m.version_min);
    v.U16("version_max", m.version_max);
    v.Str16("token", m.token, 1, kTokenBytesMax);
    v.Str8("client_name", m.client_name, 0, kClientNameBytesMax);
  }
  bool operator==(const Hello&) const = default;
};

struct CreateChannel {
  static constexpr MessageType kType = MessageType::kCreateChannel;
  std::string_view channel;
  Visibility visibility = Visibility::kPublic;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.Enum("visibility", m.visibility, Visibility::kPrivate);
  }
  bool operator==(const CreateChannel&) const = default;
};

struct Join {
  static constexpr MessageType kType = MessageType::kJoin;
  std::string_view channel;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
  }
  bool operator==(const Join&) const = default;
};

struct Leave {
  static constexpr MessageType kType = MessageType::kLeave;
  std::string_view channel;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
  }
  bool operator==(const Leave&) const = default;
};

struct Invite {
  static constexpr MessageType kType = MessageType::kInvite;
  std::string_view channel;
  std::string_view user;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.Str8("user", m.user, 1, kUserNameBytesMax);
  }
  bool operator==(const Invite&) const = default;
};

struct ListChannels {
  static constexpr MessageType kType = MessageType::kListChannels;
  template <class M, class V> static constexpr void Fields(M&, V&) {}
  bool operator==(const ListChannels&) const = default;
};

struct Subscribe {
  static constexpr MessageType kType = MessageType::kSubscribe;
  std::string_view channel;
  uint64_t epoch = 0;      // 0: the client knows no epoch yet (then after_seq must be 0).
  uint64_t after_seq = 0;  // Replay (after_seq, head], then live.
  uint8_t flags = 0;       // kSubscribeFromReadCursor: ignore epoch/after_seq, use the cursor.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.U64("epoch", m.epoch);
    v.U64("after_seq", m.after_seq);
    v.Flags("flags", m.flags, kSubscribeFromReadCursor);
  }
  bool operator==(const Subscribe&) const = default;
};

struct Unsubscribe {
  static constexpr MessageType kType = MessageType::kUnsubscribe;
  std::string_view channel;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
  }
  bool operator==(const Unsubscribe&) const = default;
};

struct Send {
  static constexpr MessageType kType = MessageType::kSend;
  std::string_view channel;
  uint64_t client_message_id = 0;  // Unique per user; a retry reuses it.
  std::string_view body;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.U64("client_message_id", m.client_message_id);
    v.Bytes32("body", m.body, kBodyBytesMax);
  }
  bool operator==(const Send&) const = default;
};

struct FetchHistory {
  static constexpr MessageType kType = MessageType::kFetchHistory;
  std::string_view channel;
  uint64_t epoch = 0;
  uint64_t from_seq = 0;  // Inclusive. 0: the first retained (forward) or the head (backward).
  Direction direction = Direction::kForward;
  uint32_t limit = 0;  // Records wanted, 1..kHistoryLimitMax.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.U64("epoch", m.epoch);
    v.U64("from_seq", m.from_seq);
    v.Enum("direction", m.direction, Direction::kBackward);
    v.U32("limit", m.limit);
  }
  bool operator==(const FetchHistory&) const = default;
};
inline constexpr uint32_t kHistoryLimitMax = 10000;

struct SetCursor {
  static constexpr MessageType kType = MessageType::kSetCursor;
  std::string_view channel;
  uint64_t epoch = 0;
  uint64_t seq = 0;  // The last seq the user has read.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.U64("epoch", m.epoch);
    v.U64("seq", m.seq);
  }
  bool operator==(const SetCursor&) const = default;
};

struct GetCursors {
  static constexpr MessageType kType = MessageType::kGetCursors;
  std::string_view channel;  // Empty: every channel the user belongs to.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 0, kChannelNameBytesMax);
  }
  bool operator==(const GetCursors&) const = default;
};

// The admin requests (an admin token's sessions only; see PROTOCOL.md section 6.9).
// ADMIN_STATS: every shard's metrics, as METRICS_TEXT.
struct AdminStats {
  static constexpr MessageType kType = MessageType::kAdminStats;
  template <class M, class V>
  static constexpr void Fields(M&, V&) {}
  bool operator==(const AdminStats&) const = default;
};

// ADMIN_CHANNEL: one channel as its owner sees it, as CHANNEL_REPORT.
struct AdminChannel {
  static constexpr MessageType kType = MessageType::kAdminChannel;
  std::string_view channel;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
  }
  bool operator==(const AdminChannel&) const = default;
};

// ADMIN_CONNECTIONS: every authenticated connection on every shard, as CONNECTION_LIST.
struct AdminConnections {
  static constexpr MessageType kType = MessageType::kAdminConnections;
  template <class M, class V>
  static constexpr void Fields(M&, V&) {}
  bool operator==(const AdminConnections&) const = default;
};

struct Ping {
  static constexpr MessageType kType = MessageType::kPing;
  uint64_t nonce = 0;
  template <class M, class V> static constexpr void Fields(M& m, V& v) { v.U64("nonce", m.nonce); }
  bool operator==(const Ping&) const = default;
};

struct Pong {
  static constexpr MessageType kType = MessageType::kPong;
  uint64_t nonce = 0;
  template <class M, class V> static constexpr void Fields(M& m, V& v) { v.U64("nonce", m.nonce); }
  bool operator==(const Pong&) const = default;
};

struct Welcome {
  static constexpr MessageType kType = MessageType::kWelcome;
  uint16_t version = kVersionMax;
  uint32_t frame_bytes_max = kFrameBytesMax;  // What this server accepts from the client.
  uint32_t body_bytes_max = kBodyBytesMax;
  uint32_t idle_timeout_ms = 0;  // Silence longer than this closes the connection.
  uint64_t server_time_unix_ns = 0;
  std::string_view user;  // Whom the token authenticated.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.U16("version", m.version);
    v.U32("frame_bytes_max", m.frame_bytes_max);
    v.U32("body_bytes_max", m.body_bytes_max);
    v.U32("idle_timeout_ms", m.idle_timeout_ms);
    v.U64("server_time_unix_ns", m.server_time_unix_ns);
    v.Str8("user", m.user, 1, kUserNameBytesMax);
  }
  bool operator==(const Welcome&) const = default;
};

struct Ok {
  static constexpr MessageType kType = MessageType::kOk;
  template <class M, class V> static constexpr void Fields(M&, V&) {}
  bool operator==(const Ok&) const = default;
};

struct ChannelInfo {
  static constexpr MessageType kType = MessageType::kChannelInfo;
  std::string_view channel;
  Visibility visibility = Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;  // First seq still retained (1 for a channel that never lost any).
  uint64_t head_seq = 0;   // Last durable seq; 0 for an empty channel.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.Enum("visibility", m.visibility, Visibility::kPrivate);
    v.U64("epoch", m.epoch);
    v.U64("first_seq", m.first_seq);
    v.U64("head_seq", m.head_seq);
  }
  bool operator==(const ChannelInfo&) const = default;
};

struct ChannelListEntry {
  std::string_view channel;
  Visibility visibility = Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t head_seq = 0;
  uint64_t read_cursor = 0;  // The user's stored read cursor in this channel (0: none).
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.Enum("visibility", m.visibility, Visibility::kPrivate);
    v.U64("epoch", m.epoch);
    v.U64("head_seq", m.head_seq);
    v.U64("read_cursor", m.read_cursor);
  }
  bool operator==(const ChannelListEntry&) const = default;
};

// One frame of the answer; a list too large for one frame continues in more, the final one
// flagged kLastFrame.
struct ChannelList {
  static constexpr MessageType kType = MessageType::kChannelList;
  uint8_t flags = kLastFrame;
  EntryList<ChannelListEntry> channels;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Flags("flags", m.flags, kLastFrame);
    v.List("channels", m.channels);
  }
  bool operator==(const ChannelList&) const = default;
};

struct Subscribed {
  static constexpr MessageType kType = MessageType::kSubscribed;
  std::string_view channel;
  uint64_t epoch = 0;
  uint64_t after_seq = 0;  // Where replay starts (resolved from the read cursor if asked).
  uint64_t head_seq = 0;   // Replay covers (after_seq, head_seq]; live messages follow.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.U64("epoch", m.epoch);
    v.U64("after_seq", m.after_seq);
    v.U64("head_seq", m.head_seq);
  }
  bool operator==(const Subscribed&) const = default;
};

struct Sent {
  static constexpr MessageType kType = MessageType::kSent;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  uint8_t flags = 0;  // kSentDuplicate: a retry; seq and timestamp are the original's.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.U64("epoch", m.epoch);
    v.U64("seq", m.seq);
    v.U64("timestamp_unix_ns", m.timestamp_unix_ns);
    v.Flags("flags", m.flags, kSentDuplicate);
  }
  bool operator==(const Sent&) const = default;
};

// One chat message as stored in a channel's log: the part of a pushed Message after the
// channel and epoch, and one entry of a History batch.
struct Record {
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  std::string_view sender;
  std::string_view body;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.U64("seq", m.seq);
    v.U64("timestamp_unix_ns", m.timestamp_unix_ns);
    v.Str8("sender", m.sender, 1, kUserNameBytesMax);
    v.Bytes32("body", m.body, kBodyBytesMax);
  }
  bool operator==(const Record&) const = default;
};

struct History {
  static constexpr MessageType kType = MessageType::kHistory;
  std::string_view channel;
  uint64_t epoch = 0;
  uint8_t flags = 0;  // kLastFrame on the final batch of an answer.
  EntryList<Record> records;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.U64("epoch", m.epoch);
    v.Flags("flags", m.flags, kLastFrame);
    v.List("records", m.records);
  }
  bool operator==(const History&) const = default;
};

struct CursorEntry {
  std::string_view channel;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.U64("epoch", m.epoch);
    v.U64("seq", m.seq);
  }
  bool operator==(const CursorEntry&) const = default;
};

// One frame of the answer, like ChannelList.
struct Cursors {
  static constexpr MessageType kType = MessageType::kCursors;
  uint8_t flags = kLastFrame;
  EntryList<CursorEntry> cursors;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Flags("flags", m.flags, kLastFrame);
    v.List("cursors", m.cursors);
  }
  bool operator==(const Cursors&) const = default;
};

struct Error {
  static constexpr MessageType kType = MessageType::kError;
  ErrorCode code = ErrorCode::kInternal;  // Any u16: clients must accept codes newer than them.
  std::string_view text;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Code("code", m.code);
    v.Str16("text", m.text, 0, kErrorTextBytesMax);
  }
  bool operator==(const Error&) const = default;
};

// One frame of the answer to ADMIN_STATS: the server's metrics in the Prometheus text
// exposition format 0.0.4 (what GET /metrics serves). An answer of several frames is split
// anywhere; the client concatenates the texts up to the frame flagged kLastFrame.
struct MetricsText {
  static constexpr MessageType kType = MessageType::kMetricsText;
  uint8_t flags = kLastFrame;
  std::string_view text;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Flags("flags", m.flags, kLastFrame);
    v.Bytes32("text", m.text, kMetricsTextBytesMax);
  }
  bool operator==(const MetricsText&) const = default;
};

struct MemberEntry {
  std::string_view user;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Str8("user", m.user, 1, kUserNameBytesMax);
  }
  bool operator==(const MemberEntry&) const = default;
};

// A channel's figures as ADMIN_CHANNEL reports them, in wire order (fenced is a flag of the
// frame, kChannelFenced).
struct ChannelFigures {
  Visibility visibility = Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;          // Last durable seq.
  uint64_t fenced_after_seq = 0;  // Fenced: the last good seq before the damage; else 0.
  uint32_t segments = 0;          // Segment files.
  uint64_t segment_bytes = 0;     // Record bytes in them.
  uint32_t subscriptions = 0;     // Attached to its fan-out, on every gateway shard.
  uint32_t member_count = 0;
  uint32_t invited_count = 0;  // Private channels: invited, not yet joined.
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Enum("visibility", m.visibility, Visibility::kPrivate);
    v.U64("epoch", m.epoch);
    v.U64("first_seq", m.first_seq);
    v.U64("head_seq", m.head_seq);
    v.U64("fenced_after_seq", m.fenced_after_seq);
    v.U32("segments", m.segments);
    v.U64("segment_bytes", m.segment_bytes);
    v.U32("subscriptions", m.subscriptions);
    v.U32("member_count", m.member_count);
    v.U32("invited_count", m.invited_count);
  }
  bool operator==(const ChannelFigures&) const = default;
};

// One frame of the answer to ADMIN_CHANNEL. Every frame repeats the channel's figures; the
// members (in name order) continue across frames up to the one flagged kLastFrame.
struct ChannelReport {
  static constexpr MessageType kType = MessageType::kChannelReport;
  uint8_t flags = kLastFrame;  // kLastFrame, kChannelFenced.
  std::string_view channel;
  ChannelFigures figures;
  EntryList<MemberEntry> members;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Flags("flags", m.flags, kLastFrame | kChannelFenced);
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    ChannelFigures::Fields(m.figures, v);
    v.List("members", m.members);
  }
  bool operator==(const ChannelReport&) const = default;
};

// A connection's figures as ADMIN_CONNECTIONS reports them, in wire order (after who it is).
struct ConnectionFigures {
  uint64_t connected_ms = 0;  // Since the connection was accepted.
  uint32_t subscriptions = 0;
  uint32_t subscriptions_from_log = 0;  // Fell behind: served from the log (slow).
  uint32_t requests_in_flight = 0;
  uint64_t queued_bytes = 0;  // Outbound, not yet taken by the kernel.
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U64("connected_ms", m.connected_ms);
    v.U32("subscriptions", m.subscriptions);
    v.U32("subscriptions_from_log", m.subscriptions_from_log);
    v.U32("requests_in_flight", m.requests_in_flight);
    v.U64("queued_bytes", m.queued_bytes);
  }
  bool operator==(const ConnectionFigures&) const = default;
};

struct ConnectionEntry {
  uint16_t shard = 0;  // The gateway shard that holds the connection.
  uint64_t connection_id = 0;
  std::string_view user;
  std::string_view client_name;  // What its HELLO said.
  ConnectionFigures figures;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U16("shard", m.shard);
    v.U64("connection_id", m.connection_id);
    v.Str8("user", m.user, 1, kUserNameBytesMax);
    v.Str8("client_name", m.client_name, 0, kClientNameBytesMax);
    ConnectionFigures::Fields(m.figures, v);
  }
  bool operator==(const ConnectionEntry&) const = default;
};

// One frame of the answer to ADMIN_CONNECTIONS, like ChannelList.
struct ConnectionList {
  static constexpr MessageType kType = MessageType::kConnectionList;
  uint8_t flags = kLastFrame;
  EntryList<ConnectionEntry> connections;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Flags("flags", m.flags, kLastFrame);
    v.List("connections", m.connections);
  }
  bool operator==(const ConnectionList&) const = default;
};

// A live or replayed chat message of a subscribed channel: encoded once per message and the
// same bytes sent to every subscriber (its correlation id is 0).
struct Message {
  static constexpr MessageType kType = MessageType::kMessage;
  std::string_view channel;
  uint64_t epoch = 0;
  Record record;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.U64("epoch", m.epoch);
    Record::Fields(m.record, v);
  }
  bool operator==(const Message&) const = default;
};

struct HistoryReset {
  static constexpr MessageType kType = MessageType::kHistoryReset;
  std::string_view channel;
  ResetReason reason = ResetReason::kEpochChanged;
  uint64_t epoch = 0;      // The channel's current epoch.
  uint64_t first_seq = 0;  // First seq readable now.
  uint64_t head_seq = 0;   // Last durable seq now.
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.EnumFrom("reason", m.reason, ResetReason::kEpochChanged, ResetReason::kDamaged);
    v.U64("epoch", m.epoch);
    v.U64("first_seq", m.first_seq);
    v.U64("head_seq", m.head_seq);
  }
  bool operator==(const HistoryReset&) const = default;
};

struct StreamLag {
  static constexpr MessageType kType = MessageType::kStreamLag;
  std::string_view channel;
  StreamMode mode = StreamMode::kFromLog;
  uint64_t delivered_seq = 0;  // Last seq this connection has been sent in the channel.
  uint64_t head_seq = 0;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.Enum("mode", m.mode, StreamMode::kFromLog);
    v.U64("delivered_seq", m.delivered_seq);
    v.U64("head_seq", m.head_seq);
  }
  bool operator==(const StreamLag&) const = default;
};

struct SubscriptionEnded {
  static constexpr MessageType kType = MessageType::kSubscriptionEnded;
  std::string_view channel;
  ErrorCode reason = ErrorCode::kNotMember;
  template <class M, class V> static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, kChannelNameBytesMax);
    v.Code("reason", m.reason);
  }
  bool operator==(const SubscriptionEnded&) const = default;
};

// Every message of the protocol; DecodeMessage fills the alternative named by the frame type.
using AnyMessage =
    std::variant<Hello, CreateChannel, Join, Leave, Invite, ListChannels, Subscribe, Unsubscribe,
                 Send, FetchHistory, SetCursor, GetCursors, AdminStats, AdminChannel,
                 AdminConnections, Ping, Pong, Welcome, Ok, ChannelInfo, ChannelList, Subscribed,
                 Sent, History, Cursors, Error, MetricsText, ChannelReport, ConnectionList, Message,
                 HistoryReset, StreamLag, SubscriptionEnded>;

}  // namespace hoot::proto
