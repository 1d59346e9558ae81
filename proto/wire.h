// The constants of the hoot wire protocol, shared by every encoder and decoder.
// docs/PROTOCOL.md is the prose specification; this header and that document must agree
// (tests/proto/protocol_doc_test.cc decodes the document's examples with this code).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace hoot::proto {

// All integers on the wire are little-endian. Every frame starts with this header:
//   u32 frame_bytes      whole frame, header included
//   u16 type             a MessageType
//   u16 flags            reserved, 0 in version 1
//   u32 correlation_id   chosen by the client per request, echoed in every answer; 0 on pushes
inline constexpr size_t kFrameHeaderBytes = 12;
inline constexpr uint32_t kFrameBytesMax = 1u << 20;  // 1 MiB: a history batch fits.
inline constexpr uint32_t kBodyBytesMax = 64u << 10;  // 64 KiB per chat message body.
inline constexpr size_t kChannelNameBytesMax = 64;
inline constexpr size_t kUserNameBytesMax = 64;
inline constexpr size_t kClientNameBytesMax = 64;
inline constexpr size_t kTokenBytesMax = 1024;
inline constexpr size_t kErrorTextBytesMax = 1024;

// "HOOT" as it appears on the wire (bytes 48 4f 4f 54), read as a little-endian u32.
inline constexpr uint32_t kHelloMagic = 0x544f4f48;
inline constexpr uint16_t kVersionMin = 1;
inline constexpr uint16_t kVersionMax = 1;

enum class MessageType : uint16_t {
  // Client -> server requests.
  kHello = 0x01,
  kCreateChannel = 0x02,
  kJoin = 0x03,
  kLeave = 0x04,
  kInvite = 0x05,
  kListChannels = 0x06,
  kSubscribe = 0x07,
  kUnsubscribe = 0x08,
  kSend = 0x09,
  kFetchHistory = 0x0a,
  kSetCursor = 0x0b,
  kGetCursors = 0x0c,
  // Client -> server requests that only an admin token may make (others get `forbidden`).
  kAdminStats = 0x0d,
  kAdminChannel = 0x0e,
  kAdminConnections = 0x0f,
  // Either direction: the receiver answers a ping with a pong carrying the same nonce.
  kPing = 0x20,
  kPong = 0x21,
  // Server -> client answers (they carry the request's correlation id).
  kWelcome = 0x40,
  kOk = 0x41,
  kChannelInfo = 0x42,
  kChannelList = 0x43,
  kSubscribed = 0x44,
  kSent = 0x45,
  kHistory = 0x46,
  kCursors = 0x47,
  kError = 0x48,
  kMetricsText = 0x49,
  kChannelReport = 0x4a,
  kConnectionList = 0x4b,
  // Server -> client pushes and notices.
  kMessage = 0x60,
  kHistoryReset = 0x61,
  kStreamLag = 0x62,
  kSubscriptionEnded = 0x63,
};

enum class Visibility : uint8_t { kPublic = 0, kPrivate = 1 };
enum class Direction : uint8_t { kForward = 0, kBackward = 1 };
enum class ResetReason : uint8_t {
  kEpochChanged = 1,  // The channel's history was cut; the client's (epoch, seq) is void.
  kNotRetained = 2,   // The asked seq is below the first seq the log still keeps.
  kDamaged = 3,       // The log is fenced at damage; nothing past first/head is readable.
};
enum class StreamMode : uint8_t {
  kLive = 0,     // Caught up again: messages arrive as they are committed.
  kFromLog = 1,  // Fell behind: the rest is being replayed from the log as the socket drains.
};

// Bits of Subscribe::flags.
inline constexpr uint8_t kSubscribeFromReadCursor = 0x01;
// Bits of Sent::flags.
inline constexpr uint8_t kSentDuplicate = 0x01;
// Bits of the flags of answers that may take several frames (History, ChannelList, Cursors,
// MetricsText, ChannelReport, ConnectionList): set on the final frame of the answer.
inline constexpr uint8_t kLastFrame = 0x01;
// Bits of ChannelReport::flags besides kLastFrame.
inline constexpr uint8_t kChannelFenced = 0x02;
// The most bytes of metrics text one METRICS_TEXT frame carries.
inline constexpr uint32_t kMetricsTextBytesMax = 256u << 10;

enum class ErrorCode : uint16_t {
  kMalformedFrame = 1,
  kFrameTooLarge = 2,
  kUnknownType = 3,
  kUnsupportedVersion = 4,
  kAuthFailed = 5,
  kTokenExpired = 6,
  kUnexpectedType = 7,
  kHandshakeTimeout = 8,
  kIdleTimeout = 9,
  kTooManyConnections = 10,
  kShuttingDown = 11,
  kInvalidArgument = 12,
  kInvalidChannelName = 13,
  kInvalidUserName = 14,
  kNoSuchChannel = 15,
  kChannelExists = 16,
  kNotMember = 17,
  kForbidden = 18,
  kAlreadySubscribed = 19,
  kNotSubscribed = 20,
  kTooManySubscriptions = 21,
  kBodyTooLarge = 22,
  kRateLimited = 23,
  kDiskFull = 24,
  kStorageFailed = 25,
  kInternal = 26,
  kIdempotencyConflict = 27,
  kBusy = 28,
  kOwnerUnavailable = 29,
};

// The stable lower-case name of a code ("malformed_frame"), or "unknown" for a value this
// version does not define (a client must tolerate codes newer than itself).
std::string_view ErrorCodeName(ErrorCode code);
// True for the codes after which the server closes the connection.
bool ErrorClosesConnection(ErrorCode code);
std::string_view MessageTypeName(MessageType type);
// The stable lower-case names ("public", "private"; "epoch_changed", "not_retained",
// "damaged"), as the codec prints them; "unknown" for a reason this version does not define.
std::string_view VisibilityName(Visibility visibility);
std::string_view ResetReasonName(ResetReason reason);
bool IsKnownMessageType(uint16_t type);

// Channel and user names: 1..64 bytes of [A-Za-z0-9._-], not starting with '.'. The codec only
// bounds their length;
// the server answers kInvalidChannelName / kInvalidUserName using these.
bool IsValidChannelName(std::string_view name);
bool IsValidUserName(std::string_view name);

}  // namespace hoot::proto
