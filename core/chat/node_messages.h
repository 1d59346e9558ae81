// The node protocol's messages: the gateway <-> owner operations of ops.h as frames, for the
// links between gateway nodes and owner nodes (docs/CLUSTER.md, "The node protocol"). Framed
// as the client protocol is (docs/PROTOCOL.md §2-3: the 12-byte header, little-endian
// fields), with type codes from 0x80 up, which no client message uses. Like proto/messages.h,
// each struct lists its fields once, in Fields(), and decoded structs view the frame.
#pragma once

#include <cstdint>
#include <string_view>
#include <variant>

#include "proto/entry_list.h"
#include "proto/messages.h"
#include "proto/wire.h"

namespace hoot::core::chat::node {

using proto::EntryList;
using proto::MessageType;

constexpr MessageType Type(uint16_t code) { return static_cast<MessageType>(code); }

// "HNOD" as it appears on the wire (bytes 48 4e 4f 44), read as a little-endian u32.
inline constexpr uint32_t kNodeMagic = 0x444f4e48;
inline constexpr uint16_t kNodeVersion = 1;
inline constexpr size_t kNodeIdBytesMax = 64;
// The handshake's fresh random nonces, and its proofs (HMAC-SHA256 under the cluster's link
// key: docs/CLUSTER.md, "Links").
inline constexpr size_t kNodeNonceBytes = 16;
inline constexpr size_t kNodeProofBytes = 32;
// A page of client frames (a replay read, a history page, a fan-out batch) crosses in one
// frame: up to 1 MiB of records plus the record that crossed the mark.
inline constexpr uint32_t kPageFramesBytesMax = 2u << 20;
inline constexpr uint32_t kNodeFrameBytesMax = kPageFramesBytesMax + 4096;

// FetchHistory's range flags.
inline constexpr uint8_t kRangeSet = 0x01;
inline constexpr uint8_t kRangeSent = 0x02;
// AnswerSent's flags.
inline constexpr uint8_t kDuplicate = 0x01;
// AnswerHistoryPage's flags.
inline constexpr uint8_t kDone = 0x01;
// AnswerChannelReport's flags.
inline constexpr uint8_t kFenced = 0x01;

// ---- The link: one per (gateway node, owner shard), opened by the gateway.

struct NodeHello {
  static constexpr MessageType kType = Type(0x80);
  uint32_t magic = kNodeMagic;
  uint16_t version_min = kNodeVersion;
  uint16_t version_max = kNodeVersion;
  std::string_view cluster;
  std::string_view gateway_node;
  std::string_view owner_node;  // The node the gateway means to reach.
  uint16_t owner_shard = 0;
  std::string_view nonce;  // kNodeNonceBytes, fresh: what the owner's proof answers.
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U32("magic", m.magic);
    v.U16("version_min", m.version_min);
    v.U16("version_max", m.version_max);
    v.Str8("cluster", m.cluster, 1, kNodeIdBytesMax);
    v.Str8("gateway_node", m.gateway_node, 1, kNodeIdBytesMax);
    v.Str8("owner_node", m.owner_node, 1, kNodeIdBytesMax);
    v.U16("owner_shard", m.owner_shard);
    v.Str8("nonce", m.nonce, kNodeNonceBytes, kNodeNonceBytes);
  }
  bool operator==(const NodeHello&) const = default;
};

struct NodeWelcome {
  static constexpr MessageType kType = Type(0x81);
  uint16_t version = kNodeVersion;
  std::string_view owner_node;
  uint16_t owner_shard = 0;
  uint16_t shard_count = 0;
  uint64_t lease = 0;  // The owner's etcd lease now: a new one after it lost the old.
  std::string_view nonce;  // kNodeNonceBytes, fresh: what the gateway's proof answers.
  std::string_view proof;  // The owner's: it holds the link key (LinkProof).
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U16("version", m.version);
    v.Str8("owner_node", m.owner_node, 1, kNodeIdBytesMax);
    v.U16("owner_shard", m.owner_shard);
    v.U16("shard_count", m.shard_count);
    v.U64("lease", m.lease);
    v.Str8("nonce", m.nonce, kNodeNonceBytes, kNodeNonceBytes);
    v.Str8("proof", m.proof, kNodeProofBytes, kNodeProofBytes);
  }
  bool operator==(const NodeWelcome&) const = default;
};

// The gateway's proof that it holds the link key; the owner takes calls only after it.
struct NodeProof {
  static constexpr MessageType kType = Type(0x82);
  std::string_view proof;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Str8("proof", m.proof, kNodeProofBytes, kNodeProofBytes);
  }
  bool operator==(const NodeProof&) const = default;
};

// ---- Calls, gateway -> owner. The header's correlation id is the link's call id, which
// the answer echoes. Every call starts with its route: the client's connection on the
// gateway node, the user it acts for, and the channel (empty for the scatters).

struct Route {
  uint64_t connection_id = 0;
  std::string_view user;
  std::string_view channel;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U64("connection_id", m.connection_id);
    v.Str8("user", m.user, 1, proto::kUserNameBytesMax);
    v.Str8("channel", m.channel, 0, proto::kChannelNameBytesMax);
  }
  bool operator==(const Route&) const = default;
};

struct CallCreateChannel {
  static constexpr MessageType kType = Type(0x88);
  Route route;
  proto::Visibility visibility = proto::Visibility::kPublic;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    Route::Fields(m.route, v);
    v.Enum("visibility", m.visibility, proto::Visibility::kPrivate);
  }
  bool operator==(const CallCreateChannel&) const = default;
};

// The calls that are their route alone.
template <uint16_t kCode>
struct RouteOnly {
  static constexpr MessageType kType = Type(kCode);
  Route route;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    Route::Fields(m.route, v);
  }
  bool operator==(const RouteOnly&) const = default;
};
using CallJoin = RouteOnly<0x89>;
using CallLeave = RouteOnly<0x8a>;
using CallListChannels = RouteOnly<0x8c>;  // A scatter: the channel is empty.
using CallUnsubscribe = RouteOnly<0x8e>;
using CallGetCursors = RouteOnly<0x93>;  // Empty channel: every channel of the user.
using CallAdminChannel = RouteOnly<0x94>;

struct CallInvite {
  static constexpr MessageType kType = Type(0x8b);
  Route route;
  std::string_view invitee;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    Route::Fields(m.route, v);
    v.Str8("invitee", m.invitee, 1, proto::kUserNameBytesMax);
  }
  bool operator==(const CallInvite&) const = default;
};

struct CallSubscribe {
  static constexpr MessageType kType = Type(0x8d);
  Route route;
  uint64_t epoch = 0;
  uint64_t after_seq = 0;
  uint8_t flags = 0;  // proto::kSubscribeFromReadCursor.
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    Route::Fields(m.route, v);
    v.U64("epoch", m.epoch);
    v.U64("after_seq", m.after_seq);
    v.Flags("flags", m.flags, proto::kSubscribeFromReadCursor);
  }
  bool operator==(const CallSubscribe&) const = default;
};

struct CallReplayRead {
  static constexpr MessageType kType = Type(0x8f);
  Route route;
  uint64_t epoch = 0;
  uint64_t after_seq = 0;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    Route::Fields(m.route, v);
    v.U64("epoch", m.epoch);
    v.U64("after_seq", m.after_seq);
  }
  bool operator==(const CallReplayRead&) const = default;
};

struct CallSend {
  static constexpr MessageType kType = Type(0x90);
  Route route;
  uint64_t client_message_id = 0;
  std::string_view body;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    Route::Fields(m.route, v);
    v.U64("client_message_id", m.client_message_id);
    v.Bytes32("body", m.body, proto::kBodyBytesMax);
  }
  bool operator==(const CallSend&) const = default;
};

struct CallFetchHistory {
  static constexpr MessageType kType = Type(0x91);
  Route route;
  uint64_t epoch = 0;
  uint64_t from_seq = 0;
  proto::Direction direction = proto::Direction::kForward;
  uint32_t limit = 0;
  uint8_t range_flags = 0;  // kRangeSet, kRangeSent: the paging state of ops.h HistoryRange.
  uint64_t range_low = 0;
  uint64_t range_high = 0;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    Route::Fields(m.route, v);
    v.U64("epoch", m.epoch);
    v.U64("from_seq", m.from_seq);
    v.Enum("direction", m.direction, proto::Direction::kBackward);
    v.U32("limit", m.limit);
    v.Flags("range_flags", m.range_flags, kRangeSet | kRangeSent);
    v.U64("range_low", m.range_low);
    v.U64("range_high", m.range_high);
  }
  bool operator==(const CallFetchHistory&) const = default;
};

struct CallSetCursor {
  static constexpr MessageType kType = Type(0x92);
  Route route;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    Route::Fields(m.route, v);
    v.U64("epoch", m.epoch);
    v.U64("seq", m.seq);
  }
  bool operator==(const CallSetCursor&) const = default;
};

// ---- Answers, owner -> gateway, under the call's id.

struct AnswerRefused {
  static constexpr MessageType kType = Type(0xa1);
  proto::ErrorCode code = proto::ErrorCode::kInternal;
  std::string_view text;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Code("code", m.code);
    v.Str16("text", m.text, 0, proto::kErrorTextBytesMax);
  }
  bool operator==(const AnswerRefused&) const = default;
};

struct AnswerReset {
  static constexpr MessageType kType = Type(0xa2);
  proto::ResetReason reason = proto::ResetReason::kEpochChanged;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.EnumFrom("reason", m.reason, proto::ResetReason::kEpochChanged, proto::ResetReason::kDamaged);
    v.U64("epoch", m.epoch);
    v.U64("first_seq", m.first_seq);
    v.U64("head_seq", m.head_seq);
  }
  bool operator==(const AnswerReset&) const = default;
};

struct AnswerChannelInfo {
  static constexpr MessageType kType = Type(0xa3);
  proto::Visibility visibility = proto::Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t head_seq = 0;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Enum("visibility", m.visibility, proto::Visibility::kPrivate);
    v.U64("epoch", m.epoch);
    v.U64("first_seq", m.first_seq);
    v.U64("head_seq", m.head_seq);
  }
  bool operator==(const AnswerChannelInfo&) const = default;
};

struct AnswerOk {
  static constexpr MessageType kType = Type(0xa4);
  template <class M, class V>
  static constexpr void Fields(M&, V&) {}
  bool operator==(const AnswerOk&) const = default;
};

struct AnswerSubscribed {
  static constexpr MessageType kType = Type(0xa5);
  uint64_t epoch = 0;
  uint64_t after_seq = 0;
  uint64_t head_seq = 0;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U64("epoch", m.epoch);
    v.U64("after_seq", m.after_seq);
    v.U64("head_seq", m.head_seq);
  }
  bool operator==(const AnswerSubscribed&) const = default;
};

struct AnswerEnded {
  static constexpr MessageType kType = Type(0xa6);
  proto::ErrorCode reason = proto::ErrorCode::kNotMember;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Code("reason", m.reason);
  }
  bool operator==(const AnswerEnded&) const = default;
};

struct AnswerSent {
  static constexpr MessageType kType = Type(0xa7);
  uint64_t epoch = 0;
  uint64_t seq = 0;
  uint64_t timestamp_unix_ns = 0;
  uint8_t flags = 0;  // kDuplicate.
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U64("epoch", m.epoch);
    v.U64("seq", m.seq);
    v.U64("timestamp_unix_ns", m.timestamp_unix_ns);
    v.Flags("flags", m.flags, kDuplicate);
  }
  bool operator==(const AnswerSent&) const = default;
};

struct AnswerCursor {
  static constexpr MessageType kType = Type(0xa8);
  uint64_t epoch = 0;
  uint64_t seq = 0;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U64("epoch", m.epoch);
    v.U64("seq", m.seq);
  }
  bool operator==(const AnswerCursor&) const = default;
};

struct AnswerChannelReport {
  static constexpr MessageType kType = Type(0xa9);
  uint8_t flags = 0;              // kFenced.
  proto::ChannelFigures figures;  // member_count is the members' count.
  EntryList<proto::MemberEntry> members;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Flags("flags", m.flags, kFenced);
    proto::ChannelFigures::Fields(m.figures, v);
    v.List("members", m.members);
  }
  bool operator==(const AnswerChannelReport&) const = default;
};

struct RowEntry {
  std::string_view channel;
  proto::Visibility visibility = proto::Visibility::kPublic;
  uint64_t epoch = 0;
  uint64_t head_seq = 0;
  uint64_t cursor_seq = 0;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, proto::kChannelNameBytesMax);
    v.Enum("visibility", m.visibility, proto::Visibility::kPrivate);
    v.U64("epoch", m.epoch);
    v.U64("head_seq", m.head_seq);
    v.U64("cursor_seq", m.cursor_seq);
  }
  bool operator==(const RowEntry&) const = default;
};

struct AnswerRows {
  static constexpr MessageType kType = Type(0xaa);
  EntryList<RowEntry> rows;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.List("rows", m.rows);
  }
  bool operator==(const AnswerRows&) const = default;
};

// `frames`: client MESSAGE frames (replay) or HISTORY frames (history), whole and back to
// back, as the gateway sends them on.
struct AnswerReplayPage {
  static constexpr MessageType kType = Type(0xab);
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  uint64_t live_from = 0;
  std::string_view frames;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.U64("epoch", m.epoch);
    v.U64("first_seq", m.first_seq);
    v.U64("last_seq", m.last_seq);
    v.U64("live_from", m.live_from);
    v.Bytes32("frames", m.frames, kPageFramesBytesMax);
  }
  bool operator==(const AnswerReplayPage&) const = default;
};

// Unless kDone, the gateway asks for the next page with the call again, carrying the range
// this answer gives back.
struct AnswerHistoryPage {
  static constexpr MessageType kType = Type(0xac);
  uint8_t flags = kDone;
  uint8_t range_flags = 0;
  uint64_t range_low = 0;
  uint64_t range_high = 0;
  std::string_view frames;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Flags("flags", m.flags, kDone);
    v.Flags("range_flags", m.range_flags, kRangeSet | kRangeSent);
    v.U64("range_low", m.range_low);
    v.U64("range_high", m.range_high);
    v.Bytes32("frames", m.frames, kPageFramesBytesMax);
  }
  bool operator==(const AnswerHistoryPage&) const = default;
};

// ---- Pushes, owner -> gateway (correlation id 0).

// One commit's messages of a channel, once per gateway node with subscribers to it.
struct FanOutPage {
  static constexpr MessageType kType = Type(0xb0);
  std::string_view channel;
  uint64_t epoch = 0;
  uint64_t first_seq = 0;
  uint64_t last_seq = 0;
  std::string_view frames;  // Client MESSAGE frames, seqs first_seq..last_seq in order.
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, proto::kChannelNameBytesMax);
    v.U64("epoch", m.epoch);
    v.U64("first_seq", m.first_seq);
    v.U64("last_seq", m.last_seq);
    v.Bytes32("frames", m.frames, kPageFramesBytesMax);
  }
  bool operator==(const FanOutPage&) const = default;
};

// Subscriptions to the channel end: the user's (they left or were removed), or every one
// when `user` is empty (the log was damaged; `frames` is then the HISTORY_RESET notice each
// subscriber gets).
struct Revocation {
  static constexpr MessageType kType = Type(0xb1);
  std::string_view channel;
  std::string_view user;
  std::string_view frames;
  template <class M, class V>
  static constexpr void Fields(M& m, V& v) {
    v.Str8("channel", m.channel, 1, proto::kChannelNameBytesMax);
    v.Str8("user", m.user, 0, proto::kUserNameBytesMax);
    v.Bytes32("frames", m.frames, kPageFramesBytesMax);
  }
  bool operator==(const Revocation&) const = default;
};

using AnyNodeMessage =
    std::variant<NodeHello, NodeWelcome, NodeProof, CallCreateChannel, CallJoin, CallLeave,
                 CallInvite, CallListChannels, CallSubscribe, CallUnsubscribe, CallReplayRead,
                 CallSend, CallFetchHistory, CallSetCursor, CallGetCursors, CallAdminChannel,
                 AnswerRefused, AnswerReset, AnswerChannelInfo, AnswerOk, AnswerSubscribed,
                 AnswerEnded, AnswerSent, AnswerCursor, AnswerChannelReport, AnswerRows,
                 AnswerReplayPage, AnswerHistoryPage, FanOutPage, Revocation>;

}  // namespace hoot::core::chat::node
