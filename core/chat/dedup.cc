#include "core/chat/dedup.h"

#include <xxhash.h>

#include "base/check.h"

namespace hoot::core::chat {

uint64_t BodyHash(std::string_view body) { return XXH3_64bits(body.data(), body.size()); }

std::optional<uint32_t> SenderNumbers::Find(std::string_view user) const {
  auto found = by_name_.find(absl::string_view(user.data(), user.size()));
  if (found == by_name_.end()) return std::nullopt;
  return found->second.number;
}

std::optional<DedupKey> SenderNumbers::KeyOf(std::string_view user,
                                             uint64_t client_message_id) const {
  std::optional<uint32_t> number = Find(user);
  if (!number.has_value()) return std::nullopt;
  return DedupKey{client_message_id, *number};
}

bool SenderNumbers::Remember(Dedup& dedup, size_t window, std::string_view user,
                             uint64_t client_message_id, Dedup::Entry entry) {
  auto [found, fresh] = by_name_.try_emplace(absl::string_view(user.data(), user.size()));
  if (fresh) {
    if (free_.empty()) {
      found->second.number = static_cast<uint32_t>(names_.size());
      names_.push_back(found->first);
    } else {
      found->second.number = free_.back();
      free_.pop_back();
      names_[found->second.number] = found->first;
    }
  }
  uint32_t number = found->second.number;
  // Held before the insert: the window may drop this sender's only other entry, and the
  // number must not be given back while the new entry is filed under it.
  ++found->second.references;
  bool inserted = dedup.Insert(DedupKey{client_message_id, number}, entry, window,
                               [this](DedupKey dropped) { Release(dropped.sender); });
  if (!inserted) Release(number);
  return inserted;
}

void SenderNumbers::Release(uint32_t number) {
  HOOT_CHECK(number < names_.size());
  auto sender = by_name_.find(names_[number]);
  HOOT_CHECK(sender != by_name_.end() && sender->second.number == number &&
             sender->second.references > 0);
  if (--sender->second.references > 0) return;
  free_.push_back(number);
  names_[number].clear();
  by_name_.erase(sender);
}

}  // namespace hoot::core::chat
