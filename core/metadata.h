// The durable metadata of the channels one shard owns: which channels exist, their
// visibility, members, invitations and the members' read cursors. Every change is a
// MetaEvent appended to the shard's metadata log (the log channel ".meta", a name no user
// channel can have) and committed with the shard's group commit like any message; on start
// the shard replays that log into a MetaState.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/status/statusor.h"
#include "proto/wire.h"

namespace hoot::core {

// The log channel holding a shard's metadata events.
inline constexpr std::string_view kMetaChannel = ".meta";

enum class MetaKind : uint8_t {
  kCreated = 1,  // `user` created `channel` with `visibility` (and is its first member).
  kJoined = 2,
  kLeft = 3,
  kInvited = 4,  // `user` may join the private `channel`.
  kCursor = 5,   // `user`'s read cursor in `channel` is (`epoch`, `seq`).
};

struct MetaEvent {
  MetaKind kind = MetaKind::kCreated;
  proto::Visibility visibility = proto::Visibility::kPublic;
  std::string channel;
  std::string user;
  uint64_t epoch = 0;
  uint64_t seq = 0;
  bool operator==(const MetaEvent&) const = default;
};

// Body layout, little-endian: u8 format version (1), u8 kind, u8 visibility, str8 channel,
// str8 user, u64 epoch, u64 seq.
std::string EncodeMetaEvent(const MetaEvent& event);
absl::StatusOr<MetaEvent> DecodeMetaEvent(std::string_view body);

struct ReadCursor {
  uint64_t epoch = 0;
  uint64_t seq = 0;
};

struct ChannelMeta {
  proto::Visibility visibility = proto::Visibility::kPublic;
  std::string creator;
  // Asked on every send (a hash set: the ordered set's string compares were 4% of the shard's
  // user time in W2); the channel report sorts it.
  absl::flat_hash_set<std::string> members;
  std::set<std::string> invited;  // Private channels: invited and not (yet) joined.
  std::map<std::string, ReadCursor> cursors;
};

class MetaState {
 public:
  // Applies an event that the owner validated (or that the log replays). Events that no
  // longer make sense (a join of a channel that does not exist) change nothing.
  void Apply(const MetaEvent& event);

  ChannelMeta* Find(const std::string& channel);
  bool IsMember(const std::string& channel, const std::string& user) const;
  // The channels of this shard `user` is a member of, by name.
  std::vector<std::string> ChannelsOf(const std::string& user) const;
  const std::map<std::string, ChannelMeta>& channels() const { return channels_; }

 private:
  std::map<std::string, ChannelMeta> channels_;
  std::map<std::string, std::set<std::string>> channels_of_user_;
};

}  // namespace hoot::core
