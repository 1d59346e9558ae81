// Send deduplication on an owner: per channel, the last `window` (sender, client message id)
// pairs and the seq each got, so that a retried SEND is answered with its original instead of
// being appended twice. Senders are numbered for the tables (a 16-byte key allocates nothing
// per message), and only while some table remembers a message of theirs: the names kept are
// bounded by the windows, not by every user who ever sent.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/hash/hash.h"
#include "base/huge_pages.h"

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

// One channel's table: key -> the seq it got, for the last `window` keys entered. The entries
// sit in a ring in the order entered (the oldest is overwritten by the newest), found through
// an open-addressing index of ring positions; a send then touches about two cache lines of a
// table of up to `window` entries (a map of entries plus an order queue touched four or five,
// and W2's 64 tables of 16,384 entries do not fit in any cache).
class Dedup {
 public:
  Dedup() = default;
  Dedup(const Dedup&) = delete;  // Its counters and blocks go together, or not at all.
  Dedup& operator=(const Dedup&) = delete;
  struct Entry {
    uint64_t seq = 0;
    uint64_t timestamp_unix_ns = 0;
    uint64_t body_hash = 0;
  };
  const Entry* Find(DedupKey key) const {
    size_t slot = FindSlot(key, Hash(key));
    return slot == kNone ? nullptr : &ring_[Position(index_[slot])].entry;
  }
  // Starts loading the index slot Find or Insert of `key` will look at first.
  void Prefetch(DedupKey key) const {
    if (index_.capacity() != 0) __builtin_prefetch(&index_[Home(Tag(Hash(key)))]);
  }
  // Returns whether `key` is new here; `forget` runs for each key the window drops.
  template <class Forget>
  bool Insert(DedupKey key, Entry entry, size_t window, Forget&& forget) {
    if (window == 0) return false;
    if (window != window_) Reshape(window, forget);
    uint64_t hash = Hash(key);
    if (FindSlot(key, hash) != kNone) return false;
    if (ring_size_ < window_) {
      if ((ring_size_ + 1) * 2 > index_.capacity()) GrowIndex();
      Push(Slot{key, entry});
      IndexInsert(hash, ring_size_ - 1);
      return true;
    }
    size_t position = next_;
    next_ = (next_ + 1) % window_;
    DedupKey dropped = ring_[position].key;
    EraseSlot(FindSlot(dropped, Hash(dropped)));
    ring_[position] = Slot{key, entry};
    IndexInsert(hash, position);
    // The next insert drops the entry at next_: its index slot is a cache miss (the index of
    // a full window is far larger than the caches), taken now while other work goes on.
    __builtin_prefetch(&index_[Home(Tag(Hash(ring_[next_].key)))]);
    forget(dropped);
    return true;
  }
  size_t size() const { return ring_size_; }

 private:
  struct Slot {
    DedupKey key;
    Entry entry;
  };
  static constexpr size_t kNone = ~size_t{0};
  // An index slot: 0 when empty, else the key's 32-bit tag (high half; its low bits are the
  // slot the key hashes to) and its ring position + 1 (low half).
  static uint64_t Hash(DedupKey key) { return absl::Hash<DedupKey>{}(key); }
  static uint32_t Tag(uint64_t hash) { return static_cast<uint32_t>(hash >> 32); }
  static size_t Position(uint64_t slot) { return static_cast<uint32_t>(slot) - 1; }
  size_t Home(uint32_t tag) const { return tag & (index_.capacity() - 1); }
  size_t FindSlot(DedupKey key, uint64_t hash) const;
  void IndexInsert(uint64_t hash, size_t position);
  // Empties a slot and moves later entries of its probe run back (no tombstones).
  void EraseSlot(size_t slot);
  void GrowIndex();
  // `count` zeroed index slots (a power of two, at least 16) in place of the old ones.
  void AssignIndex(size_t count);
  void Push(const Slot& slot) {
    if (ring_size_ == ring_.capacity())
      ring_.Grow(std::max<size_t>(16, 2 * ring_size_), ring_size_);
    ring_[ring_size_++] = slot;
  }
  template <class Forget>
  void Reshape(size_t window, Forget&& forget) {
    // A new window (in practice only the first insert sets it): keep the newest entries.
    std::vector<Slot> oldest_first;
    for (size_t i = 0; i < ring_size_; ++i) {
      oldest_first.push_back(ring_[(next_ + i) % ring_size_]);
    }
    size_t kept_from = oldest_first.size() > window ? oldest_first.size() - window : 0;
    ring_size_ = 0;
    AssignIndex(16);
    next_ = 0;
    window_ = window;
    for (size_t i = 0; i < oldest_first.size(); ++i) {
      if (i < kept_from) {
        forget(oldest_first[i].key);
        continue;
      }
      if ((ring_size_ + 1) * 2 > index_.capacity()) GrowIndex();
      Push(oldest_first[i]);
      IndexInsert(Hash(oldest_first[i].key), ring_size_ - 1);
    }
  }

  // Both in huge pages (base::HugePageArray): W2's 64 indexes of 256 KiB each on 4 KiB pages
  // made every first probe a page walk as well as a cache miss, and rings growing to their
  // windows faulted in fresh pages all through a run.
  base::HugePageArray<Slot> ring_;  // ring_size_ of them: grows to the window, then
  size_t ring_size_ = 0;            // next_ is the oldest.
  size_t next_ = 0;
  size_t window_ = 0;
  base::HugePageArray<uint64_t> index_;  // A power of two of slots, >= 2x the entries.
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
  // The same for a key KeyOf just gave (its sender numbered already): no name is looked up.
  bool Remember(Dedup& dedup, size_t window, DedupKey key, Dedup::Entry entry);
  // Senders numbered now.
  size_t size() const { return by_name_.size(); }

 private:
  struct Sender {
    std::string name;         // Empty while the number is free.
    uint32_t references = 0;  // Entries under this number, in every table.
  };
  void Release(uint32_t number);

  absl::flat_hash_map<std::string, uint32_t> by_name_;  // -> number.
  std::vector<Sender> senders_;                         // By number.
  std::vector<uint32_t> free_;
};

}  // namespace hoot::core::chat
