#include "proto/wire.h"

namespace hoot::proto {
namespace {

bool IsNameByte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         c == '.' || c == '_' || c == '-';
}

// A leading '.' is refused so that no name is "." or ".." (channel names are directory names
// in the data directory) and no name is a hidden file.
bool IsValidName(std::string_view name, size_t bytes_max) {
  if (name.empty() || name.size() > bytes_max || name[0] == '.') return false;
  for (char c : name) {
    if (!IsNameByte(c)) return false;
  }
  return true;
}

}  // namespace

std::string_view ErrorCodeName(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformedFrame: return "malformed_frame";
    case ErrorCode::kFrameTooLarge: return "frame_too_large";
    case ErrorCode::kUnknownType: return "unknown_type";
    case ErrorCode::kUnsupportedVersion: return "unsupported_version";
    case ErrorCode::kAuthFailed: return "auth_failed";
    case ErrorCode::kTokenExpired: return "token_expired";
    case ErrorCode::kUnexpectedType: return "unexpected_type";
    case ErrorCode::kHandshakeTimeout: return "handshake_timeout";
    case ErrorCode::kIdleTimeout: return "idle_timeout";
    case ErrorCode::kTooManyConnections: return "too_many_connections";
    case ErrorCode::kShuttingDown: return "shutting_down";
    case ErrorCode::kInvalidArgument: return "invalid_argument";
    case ErrorCode::kInvalidChannelName: return "invalid_channel_name";
    case ErrorCode::kInvalidUserName: return "invalid_user_name";
    case ErrorCode::kNoSuchChannel: return "no_such_channel";
    case ErrorCode::kChannelExists: return "channel_exists";
    case ErrorCode::kNotMember: return "not_member";
    case ErrorCode::kForbidden: return "forbidden";
    case ErrorCode::kAlreadySubscribed: return "already_subscribed";
    case ErrorCode::kNotSubscribed: return "not_subscribed";
    case ErrorCode::kTooManySubscriptions: return "too_many_subscriptions";
    case ErrorCode::kBodyTooLarge: return "body_too_large";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kDiskFull: return "disk_full";
    case ErrorCode::kStorageFailed: return "storage_failed";
    case ErrorCode::kInternal: return "internal";
    case ErrorCode::kIdempotencyConflict: return "idempotency_conflict";
    case ErrorCode::kBusy: return "busy";
    case ErrorCode::kOwnerUnavailable: return "owner_unavailable";
  }
  return "unknown";
}

bool ErrorClosesConnection(ErrorCode code) {
  switch (code) {
    case ErrorCode::kMalformedFrame:
    case ErrorCode::kFrameTooLarge:
    case ErrorCode::kUnsupportedVersion:
    case ErrorCode::kAuthFailed:
    case ErrorCode::kTokenExpired:
    case ErrorCode::kUnexpectedType:
    case ErrorCode::kHandshakeTimeout:
    case ErrorCode::kIdleTimeout:
    case ErrorCode::kTooManyConnections:
    case ErrorCode::kShuttingDown:
      return true;
    default:
      return false;
  }
}

std::string_view MessageTypeName(MessageType type) {
  switch (type) {
    case MessageType::kHello: return "HELLO";
    case MessageType::kCreateChannel: return "CREATE_CHANNEL";
    case MessageType::kJoin: return "JOIN";
    case MessageType::kLeave: return "LEAVE";
    case MessageType::kInvite: return "INVITE";
    case MessageType::kListChannels: return "LIST_CHANNELS";
    case MessageType::kSubscribe: return "SUBSCRIBE";
    case MessageType::kUnsubscribe: return "UNSUBSCRIBE";
    case MessageType::kSend: return "SEND";
    case MessageType::kFetchHistory: return "FETCH_HISTORY";
    case MessageType::kSetCursor: return "SET_CURSOR";
    case MessageType::kGetCursors: return "GET_CURSORS";
    case MessageType::kAdminStats: return "ADMIN_STATS";
    case MessageType::kAdminChannel: return "ADMIN_CHANNEL";
    case MessageType::kAdminConnections: return "ADMIN_CONNECTIONS";
    case MessageType::kPing: return "PING";
    case MessageType::kPong: return "PONG";
    case MessageType::kWelcome: return "WELCOME";
    case MessageType::kOk: return "OK";
    case MessageType::kChannelInfo: return "CHANNEL_INFO";
    case MessageType::kChannelList: return "CHANNEL_LIST";
    case MessageType::kSubscribed: return "SUBSCRIBED";
    case MessageType::kSent: return "SENT";
    case MessageType::kHistory: return "HISTORY";
    case MessageType::kCursors: return "CURSORS";
    case MessageType::kError: return "ERROR";
    case MessageType::kMetricsText: return "METRICS_TEXT";
    case MessageType::kChannelReport: return "CHANNEL_REPORT";
    case MessageType::kConnectionList: return "CONNECTION_LIST";
    case MessageType::kMessage: return "MESSAGE";
    case MessageType::kHistoryReset: return "HISTORY_RESET";
    case MessageType::kStreamLag: return "STREAM_LAG";
    case MessageType::kSubscriptionEnded: return "SUBSCRIPTION_ENDED";
  }
  return "UNKNOWN";
}

std::string_view VisibilityName(Visibility visibility) {
  return visibility == Visibility::kPrivate ? "private" : "public";
}

std::string_view ResetReasonName(ResetReason reason) {
  switch (reason) {
    case ResetReason::kEpochChanged: return "epoch_changed";
    case ResetReason::kNotRetained: return "not_retained";
    case ResetReason::kDamaged: return "damaged";
  }
  return "unknown";
}

bool IsKnownMessageType(uint16_t type) {
  return MessageTypeName(static_cast<MessageType>(type)) != "UNKNOWN";
}

bool IsValidChannelName(std::string_view name) {
  return IsValidName(name, kChannelNameBytesMax);
}

bool IsValidUserName(std::string_view name) { return IsValidName(name, kUserNameBytesMax); }

}  // namespace hoot::proto
