#include "core/chat/dedup.h"

#include <xxhash.h>

#include <algorithm>
#include <cstring>

#include "base/check.h"

namespace hoot::core::chat {

uint64_t BodyHash(std::string_view body) { return XXH3_64bits(body.data(), body.size()); }

size_t Dedup::FindSlot(DedupKey key, uint64_t hash) const {
  if (index_.capacity() == 0) return kNone;
  uint32_t tag = Tag(hash);
  size_t mask = index_.capacity() - 1;
  for (size_t slot = Home(tag);; slot = (slot + 1) & mask) {
    uint64_t held = index_[slot];
    if (held == 0) return kNone;
    if (static_cast<uint32_t>(held >> 32) == tag && ring_[Position(held)].key == key) return slot;
  }
}

void Dedup::IndexInsert(uint64_t hash, size_t position) {
  uint32_t tag = Tag(hash);
  size_t mask = index_.capacity() - 1;
  size_t slot = Home(tag);
  while (index_[slot] != 0) slot = (slot + 1) & mask;
  index_[slot] = (uint64_t{tag} << 32) | (position + 1);
}

void Dedup::EraseSlot(size_t hole) {
  HOOT_CHECK(hole != kNone);
  size_t mask = index_.capacity() - 1;
  for (size_t next = (hole + 1) & mask; index_[next] != 0; next = (next + 1) & mask) {
    size_t home = Home(static_cast<uint32_t>(index_[next] >> 32));
    // The entry at `next` may move into the hole only if its home is not in (hole, next]
    // (cyclically): else a lookup from its home would stop at the hole before reaching it.
    bool home_after_hole = hole <= next ? (home > hole && home <= next)
                                        : (home > hole || home <= next);
    if (home_after_hole) continue;
    index_[hole] = index_[next];
    hole = next;
  }
  index_[hole] = 0;
}

void Dedup::AssignIndex(size_t count) {
  HOOT_CHECK(count >= 16 && (count & (count - 1)) == 0);
  index_ = base::HugePageArray<uint64_t>(count);  // Exactly `count`: 8-byte slots fill a block.
  std::memset(index_.data(), 0, count * sizeof(uint64_t));
}

void Dedup::GrowIndex() {
  HOOT_CHECK(window_ < (size_t{1} << 31));
  AssignIndex(std::max<size_t>(16, index_.capacity() * 2));
  for (size_t position = 0; position < ring_size_; ++position) {
    IndexInsert(Hash(ring_[position].key), position);
  }
}

std::optional<uint32_t> SenderNumbers::Find(std::string_view user) const {
  auto found = by_name_.find(absl::string_view(user.data(), user.size()));
  if (found == by_name_.end()) return std::nullopt;
  return found->second;
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
      found->second = static_cast<uint32_t>(senders_.size());
      senders_.push_back(Sender{found->first, 0});
    } else {
      found->second = free_.back();
      free_.pop_back();
      senders_[found->second].name = found->first;
    }
  }
  return Remember(dedup, window, DedupKey{client_message_id, found->second}, entry);
}

bool SenderNumbers::Remember(Dedup& dedup, size_t window, DedupKey key, Dedup::Entry entry) {
  HOOT_CHECK(key.sender < senders_.size() && !senders_[key.sender].name.empty());
  // Held before the insert: the window may drop this sender's only other entry, and the
  // number must not be given back while the new entry is filed under it.
  ++senders_[key.sender].references;
  bool inserted =
      dedup.Insert(key, entry, window, [this](DedupKey dropped) { Release(dropped.sender); });
  if (!inserted) Release(key.sender);
  return inserted;
}

void SenderNumbers::Release(uint32_t number) {
  HOOT_CHECK(number < senders_.size() && senders_[number].references > 0);
  Sender& sender = senders_[number];
  if (--sender.references > 0) return;
  by_name_.erase(sender.name);
  sender.name.clear();
  free_.push_back(number);
}

}  // namespace hoot::core::chat
