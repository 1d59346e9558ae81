#include "core/metadata.h"

#include <cstring>

#include "base/endian.h"

namespace hoot::core {
namespace {

constexpr uint8_t kMetaFormatVersion = 1;

void PutU64(std::string* out, uint64_t value) {
  char bytes[8];
  base::StoreLittleEndian(bytes, value);
  out->append(bytes, sizeof(bytes));
}

void PutStr8(std::string* out, std::string_view text) {
  out->push_back(static_cast<char>(text.size()));
  out->append(text);
}

class Reader {
 public:
  explicit Reader(std::string_view data) : data_(data) {}
  bool U8(uint8_t* value) {
    if (data_.empty()) return false;
    *value = static_cast<uint8_t>(data_[0]);
    data_.remove_prefix(1);
    return true;
  }
  bool U64(uint64_t* value) {
    if (data_.size() < 8) return false;
    *value = base::LoadLittleEndian<uint64_t>(data_.data());
    data_.remove_prefix(8);
    return true;
  }
  bool Str8(std::string* value) {
    uint8_t size = 0;
    if (!U8(&size) || data_.size() < size) return false;
    value->assign(data_.data(), size);
    data_.remove_prefix(size);
    return true;
  }
  bool AtEnd() const { return data_.empty(); }

 private:
  std::string_view data_;
};

}  // namespace

std::string EncodeMetaEvent(const MetaEvent& event) {
  std::string out;
  out.reserve(3 + 2 + event.channel.size() + event.user.size() + 16);
  out.push_back(static_cast<char>(kMetaFormatVersion));
  out.push_back(static_cast<char>(event.kind));
  out.push_back(static_cast<char>(event.visibility));
  PutStr8(&out, event.channel);
  PutStr8(&out, event.user);
  PutU64(&out, event.epoch);
  PutU64(&out, event.seq);
  return out;
}

absl::StatusOr<MetaEvent> DecodeMetaEvent(std::string_view body) {
  Reader reader(body);
  MetaEvent event;
  uint8_t version = 0, kind = 0, visibility = 0;
  if (!reader.U8(&version) || !reader.U8(&kind) || !reader.U8(&visibility) ||
      !reader.Str8(&event.channel) || !reader.Str8(&event.user) || !reader.U64(&event.epoch) ||
      !reader.U64(&event.seq) || !reader.AtEnd()) {
    return absl::DataLossError("metadata event cut short or too long");
  }
  if (version != kMetaFormatVersion) {
    return absl::DataLossError("metadata event of unknown format version " +
                               std::to_string(version));
  }
  if (kind < static_cast<uint8_t>(MetaKind::kCreated) ||
      kind > static_cast<uint8_t>(MetaKind::kCursor) ||
      visibility > static_cast<uint8_t>(proto::Visibility::kPrivate)) {
    return absl::DataLossError("metadata event with an undefined kind or visibility");
  }
  event.kind = static_cast<MetaKind>(kind);
  event.visibility = static_cast<proto::Visibility>(visibility);
  return event;
}

void MetaState::Apply(const MetaEvent& event) {
  if (event.kind == MetaKind::kCreated) {
    if (channels_.count(event.channel)) return;
    ChannelMeta& meta = channels_[event.channel];
    meta.visibility = event.visibility;
    meta.creator = event.user;
    meta.members.insert(event.user);
    channels_of_user_[event.user].insert(event.channel);
    return;
  }
  auto found = channels_.find(event.channel);
  if (found == channels_.end()) return;
  ChannelMeta& meta = found->second;
  switch (event.kind) {
    case MetaKind::kCreated:
      break;
    case MetaKind::kJoined:
      meta.members.insert(event.user);
      meta.invited.erase(event.user);
      channels_of_user_[event.user].insert(event.channel);
      break;
    case MetaKind::kLeft: {
      meta.members.erase(event.user);
      meta.cursors.erase(event.user);
      auto of_user = channels_of_user_.find(event.user);
      if (of_user != channels_of_user_.end()) {
        of_user->second.erase(event.channel);
        if (of_user->second.empty()) channels_of_user_.erase(of_user);
      }
      break;
    }
    case MetaKind::kInvited:
      if (!meta.members.count(event.user)) meta.invited.insert(event.user);
      break;
    case MetaKind::kCursor:
      if (meta.members.count(event.user)) meta.cursors[event.user] = {event.epoch, event.seq};
      break;
  }
}

ChannelMeta* MetaState::Find(const std::string& channel) {
  auto found = channels_.find(channel);
  return found == channels_.end() ? nullptr : &found->second;
}

bool MetaState::IsMember(const std::string& channel, const std::string& user) const {
  auto found = channels_.find(channel);
  return found != channels_.end() && found->second.members.count(user) > 0;
}

std::vector<std::string> MetaState::ChannelsOf(const std::string& user) const {
  auto found = channels_of_user_.find(user);
  if (found == channels_of_user_.end()) return {};
  return {found->second.begin(), found->second.end()};
}

}  // namespace hoot::core
