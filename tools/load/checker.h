// Delivery checking for hoot-load: every MESSAGE a subscriber receives is checked against the
// protocol's promise (each subscription sees its channel's seqs in order, no gap, no repeat)
// and, at the end, against what publishers were told is durable (every acknowledged seq
// reaches every subscription that covers it).
#pragma once

#include <cstdint>
#include <map>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace hoot::load {

struct CheckerCounts {
  uint64_t delivered = 0;     // every Delivered() call, whatever its verdict
  uint64_t gaps = 0;          // seqs jumped over (a delivery past the next expected seq)
  uint64_t gap_events = 0;    // deliveries that jumped
  uint64_t duplicates = 0;    // seqs delivered again to the same subscription
  uint64_t out_of_order = 0;  // seqs jumped over that arrived later
  uint64_t unexpected = 0;    // deliveries for a (subscriber, channel) never Subscribed()
  uint64_t missing = 0;       // acknowledged, covered, never delivered; only from Finish()
  bool ok() const {
    return gaps == 0 && gap_events == 0 && duplicates == 0 && out_of_order == 0 &&
           unexpected == 0 && missing == 0;
  }
};

// Disjoint [begin, end) runs of seqs: memory follows the number of holes, not of seqs, so a
// channel acknowledged in order is one run however long the run.
class SeqRuns {
 public:
  bool Insert(uint64_t seq);  // false when already present
  bool Erase(uint64_t seq);   // false when absent
  // Adds [begin, end), which must not overlap what is present.
  void InsertRange(uint64_t begin, uint64_t end);
  uint64_t CountIn(uint64_t begin, uint64_t end) const;  // seqs present in [begin, end)
  bool empty() const { return runs_.empty(); }
  uint64_t highest() const { return runs_.empty() ? 0 : runs_.rbegin()->second - 1; }
  const std::map<uint64_t, uint64_t>& runs() const { return runs_; }

 private:
  std::map<uint64_t, uint64_t> runs_;  // begin -> end
};

// Channels and subscribers are dense indexes chosen by the generator. Single-threaded: feed
// it from one thread (or behind one lock). Memory: one run set per channel, and per
// subscription two numbers plus the runs of seqs still skipped (empty on a clean run).
class DeliveryChecker {
 public:
  // A publisher got SENT with this seq. Acks may come in any order across publishers; the
  // same seq acknowledged again (a resent message deduplicated by the server) is ignored.
  void Acknowledged(uint32_t channel, uint64_t seq);
  // From first_expected_seq (SUBSCRIBED's after_seq + 1) on, this subscriber must see every
  // seq of the channel, in order. Subscribing again ends the previous subscription first.
  void Subscribed(uint32_t subscriber, uint32_t channel, uint64_t first_expected_seq);
  // The subscription then owes only the seqs acknowledged so far; call it once the server
  // confirmed (OK) and the channel is quiet, or acks racing the pushes count as missing.
  void Unsubscribed(uint32_t subscriber, uint32_t channel);
  void Delivered(uint32_t subscriber, uint32_t channel, uint64_t seq);

  // Running counts; missing stays 0 (it is only known at the end).
  CheckerCounts counts() const { return counts_; }
  // The counts with missing: for every subscription, each acknowledged seq from its
  // first_expected_seq (up to the highest acknowledged when Unsubscribed) not delivered to it.
  CheckerCounts Finish() const;

 private:
  struct Subscription {
    uint32_t channel = 0;
    uint64_t first_expected = 0;
    uint64_t next_expected = 0;
    uint64_t end = UINT64_MAX;  // exclusive bound of the seqs owed; set by Unsubscribed
    SeqRuns skipped;            // jumped over and not (yet) delivered
  };
  static uint64_t Key(uint32_t subscriber, uint32_t channel) {
    return uint64_t{subscriber} << 32 | channel;
  }
  uint64_t AcknowledgedEnd(uint32_t channel) const;
  uint64_t Missing(const Subscription& subscription) const;

  std::vector<SeqRuns> acknowledged_;  // by channel
  absl::flat_hash_map<uint64_t, Subscription> subscriptions_;
  static constexpr uint64_t kNoKey = ~uint64_t{0};
  uint64_t last_delivered_key_ = kNoKey;  // Delivered's last subscription, and where it is.
  Subscription* last_delivered_ = nullptr;
  std::vector<Subscription> ended_;  // replaced by a later Subscribed
  CheckerCounts counts_;
};

}  // namespace hoot::load
