#include "tools/load/checker.h"

#include <algorithm>
#include <iterator>
#include <utility>

#include "base/check.h"

namespace hoot::load {

bool SeqRuns::Insert(uint64_t seq) {
  HOOT_CHECK(seq != UINT64_MAX);  // runs end one past their last seq
  auto next = runs_.upper_bound(seq);
  if (next != runs_.begin()) {
    auto previous = std::prev(next);
    if (seq < previous->second) return false;
    if (seq == previous->second) {  // the common case: extends the run before it
      previous->second = seq + 1;
      if (next != runs_.end() && next->first == seq + 1) {
        previous->second = next->second;
        runs_.erase(next);
      }
      return true;
    }
  }
  if (next != runs_.end() && next->first == seq + 1) {
    const uint64_t end = next->second;
    next = runs_.erase(next);
    runs_.emplace_hint(next, seq, end);
    return true;
  }
  runs_.emplace_hint(next, seq, seq + 1);
  return true;
}

bool SeqRuns::Erase(uint64_t seq) {
  auto next = runs_.upper_bound(seq);
  if (next == runs_.begin()) return false;
  auto run = std::prev(next);
  if (seq >= run->second) return false;
  const uint64_t end = run->second;
  if (seq == run->first) {
    runs_.erase(run);
  } else {
    run->second = seq;
  }
  if (seq + 1 < end) runs_.emplace_hint(next, seq + 1, end);
  return true;
}

void SeqRuns::InsertRange(uint64_t begin, uint64_t end) {
  if (begin >= end) return;
  HOOT_CHECK(CountIn(begin, end) == 0);
  runs_.emplace(begin, end);
}

uint64_t SeqRuns::CountIn(uint64_t begin, uint64_t end) const {
  if (begin >= end) return 0;
  uint64_t count = 0;
  auto run = runs_.upper_bound(begin);
  if (run != runs_.begin()) --run;
  for (; run != runs_.end() && run->first < end; ++run) {
    const uint64_t from = std::max(run->first, begin);
    const uint64_t to = std::min(run->second, end);
    if (from < to) count += to - from;
  }
  return count;
}

void DeliveryChecker::Acknowledged(uint32_t channel, uint64_t seq) {
  if (channel >= acknowledged_.size()) acknowledged_.resize(size_t{channel} + 1);
  acknowledged_[channel].Insert(seq);
}

uint64_t DeliveryChecker::AcknowledgedEnd(uint32_t channel) const {
  if (channel >= acknowledged_.size() || acknowledged_[channel].empty()) return 0;
  return acknowledged_[channel].highest() + 1;
}

void DeliveryChecker::Subscribed(uint32_t subscriber, uint32_t channel,
                                 uint64_t first_expected_seq) {
  last_delivered_key_ = kNoKey;  // An insert may move every entry.
  auto [it, inserted] = subscriptions_.try_emplace(Key(subscriber, channel));
  if (!inserted) {
    Subscription& previous = it->second;
    if (previous.end == UINT64_MAX) previous.end = AcknowledgedEnd(channel);
    ended_.push_back(std::move(previous));
    previous = Subscription{};
  }
  it->second.channel = channel;
  it->second.first_expected = first_expected_seq;
  it->second.next_expected = first_expected_seq;
}

void DeliveryChecker::Unsubscribed(uint32_t subscriber, uint32_t channel) {
  auto it = subscriptions_.find(Key(subscriber, channel));
  if (it != subscriptions_.end() && it->second.end == UINT64_MAX) {
    it->second.end = AcknowledgedEnd(channel);
  }
}

void DeliveryChecker::Delivered(uint32_t subscriber, uint32_t channel, uint64_t seq) {
  ++counts_.delivered;
  // A subscription's messages mostly come back to back: the last one found is tried first.
  const uint64_t key = Key(subscriber, channel);
  if (key != last_delivered_key_) {
    auto it = subscriptions_.find(key);
    if (it == subscriptions_.end()) {
      ++counts_.unexpected;
      return;
    }
    last_delivered_key_ = key;
    last_delivered_ = &it->second;
  }
  Subscription& subscription = *last_delivered_;
  if (seq == subscription.next_expected) {
    ++subscription.next_expected;
  } else if (seq > subscription.next_expected) {
    counts_.gaps += seq - subscription.next_expected;
    ++counts_.gap_events;
    subscription.skipped.InsertRange(subscription.next_expected, seq);
    subscription.next_expected = seq + 1;
  } else if (subscription.skipped.Erase(seq)) {
    ++counts_.out_of_order;
  } else {
    // Below first_expected_seq too: the subscriber said it already had those.
    ++counts_.duplicates;
  }
}

uint64_t DeliveryChecker::Missing(const Subscription& subscription) const {
  if (subscription.channel >= acknowledged_.size()) return 0;
  const SeqRuns& acked = acknowledged_[subscription.channel];
  const uint64_t never_reached = std::max(subscription.first_expected, subscription.next_expected);
  uint64_t missing = acked.CountIn(never_reached, subscription.end);
  for (const auto& [begin, end] : subscription.skipped.runs()) {
    missing += acked.CountIn(begin, std::min(end, subscription.end));
  }
  return missing;
}

CheckerCounts DeliveryChecker::Finish() const {
  CheckerCounts counts = counts_;
  for (const auto& [key, subscription] : subscriptions_) counts.missing += Missing(subscription);
  for (const Subscription& subscription : ended_) counts.missing += Missing(subscription);
  return counts;
}

}  // namespace hoot::load
