// Send deduplication on an owner: per channel, the last `window` (sender, client message id)
// pairs and the seq each got, so that a retried SEND is answered with its original instead of
// being appended twice. Senders are numbered for the tables (a 16-byte key allocates nothing
// per message), and only while some table remembers a message of theirs: the names kept are
// bounded by the windows, not by every user who ever sent.
#pragma once

#include <cstdint>
#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace hoot::core::chat {

// A retry must carry the same body as its original (else idempotency_conflict).
uint64_t BodyHash(std::string_view body);

struct DedupKey {
  uint64_t client_message_id = 0;
  uint32_t sender = 0;  // The sender's number (SenderNumbers).
  bool operator==(const DedupKey&) const = default;
  template <class H>
  friend H AbslHashValue(H hash, const DedupKey& key) {
    return H::combine(std::move(hash), key.client_message_id, key.sender);
  }
};

// One channel's table: key -> the seq it got, for the last `window` keys entered.
class Dedup {
 public:
  struct Entry {
    uint64_t seq = 0;
    uint64_t timestamp_unix_ns = 0;
    uint64_t body_hash = 0;
  };
  const Entry* Find(DedupKey key) const {
    auto found = by_key_.find(key);
    return found == by_key_.end() ? nullptr : &found->second;
  }
  // Returns whether `key` is new here; `forget` runs for each key the window drops.
  template <class Forget>
  bool Insert(DedupKey key, Entry entry, size_t window, Forget&& forget) {
    if (window == 0) return false;
    if (!by_key_.emplace(key, entry).second) return false;
    order_.push_back(key);
    while (order_.size() > window) {
      DedupKey dropped = order_.front();
      order_.pop_front();
      by_key_.erase(dropped);
      forget(dropped);
    }
    return true;
  }
  size_t size() const { return by_key_.size(); }

 private:
  absl::flat_hash_map<DedupKey, Entry> by_key_;
  std::deque<DedupKey> order_;
};

// The numbers of an owner's senders, shared by all its channels' tables. A number is held
// while any table has an entry under it, then given back and reused by the next new sender.
class SenderNumbers {
 public:
  std::optional<uint32_t> Find(std::string_view user) const;
  // The key of (user, id) if `user` has a number, for a lookup in any table.
  std::optional<DedupKey> KeyOf(std::string_view user, uint64_t client_message_id) const;
  // Enters (user, client message id) -> entry in `dedup`, numbering the user if new; returns
  // whether the key was new there.
  bool Remember(Dedup& dedup, size_t window, std::string_view user, uint64_t client_message_id,
                Dedup::Entry entry);
  // Senders numbered now.
  size_t size() const { return by_name_.size(); }

 private:
  struct Sender {
    uint32_t number = 0;
    uint32_t references = 0;  // Entries under this number, in every table.
  };
  void Release(uint32_t number);

  absl::flat_hash_map<std::string, Sender> by_name_;
  std::vector<std::string> names_;  // By number (a free number's is cleared).
  std::vector<uint32_t> free_;
};

}  // namespace hoot::core::chat
